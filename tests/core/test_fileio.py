"""Atomic writes: all or nothing, and finished files get the usual permissions (not mkstemp's 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cfs_core.fileio import atomic_path, atomic_write_text


def test_atomic_write_is_all_or_nothing_and_follows_the_umask(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "a.txt"
    old = os.umask(0o022)
    try:
        atomic_write_text(dest, "one")
    finally:
        os.umask(old)
    assert dest.read_text() == "one" and stat.S_IMODE(dest.stat().st_mode) == 0o644
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert dest.read_text() == "one" and [p.name for p in dest.parent.iterdir()] == ["a.txt"]
