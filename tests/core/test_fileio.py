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


def test_storage_half_keeps_what_fp16_cannot_hold(tmp_path: Path) -> None:
    import torch

    from cfs_core.fileio import storage_half

    assert storage_half(torch.tensor([1.5, -2.0])).dtype == torch.float16
    big = torch.tensor([1.6e5, 1.0])  # a BatchNorm running variance the demo encoder really has: inf in fp16
    assert storage_half(big).dtype == torch.float32 and torch.equal(storage_half(big), big)
    assert storage_half(torch.tensor([3, 4])).dtype == torch.int64


def test_half_e4e_file_with_a_large_running_variance_still_inverts(tmp_path: Path) -> None:
    import torch

    from cfs_core.nets.e4e import E4E, E4EConfig, Encoder4Editing, save_e4e_native

    enc = Encoder4Editing(E4EConfig(stem=8, widths=(8, 8, 8), units=(1, 1, 1), se_reduction=4, input_size=32, style_count=4,
                                    style_dim=16)).eval()
    bn = next(m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d))
    with torch.no_grad():
        bn.running_var.mul_(2e5)  # out of fp16 range
    e4e = E4E(enc, None, None, {"w_code": True})
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    save_e4e_native(tmp_path / "e.safetensors", e4e, half=True)
    back = E4E.from_file(tmp_path / "e.safetensors")
    with torch.no_grad():
        assert torch.isfinite(back.invert(x)).all() and torch.allclose(back.invert(x), e4e.invert(x), atol=0.05, rtol=0.05)
