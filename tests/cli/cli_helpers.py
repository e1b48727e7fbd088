"""Helpers shared by the CLI tests (imported as ``cli_helpers``, like ``zoo_helpers``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest


def use_fake_roles(monkeypatch: pytest.MonkeyPatch, fakes: Mapping[str, Callable[[], Any]]) -> None:
    """Role files given for ``fakes`` load as those fakes, and a session has only the roles given
    as files (whatever the demo pack ships), so tests do not depend on the shipped models."""
    from cfs_registry import session as session_module
    from cfs_registry.modelsets import ROLES

    real_load, real_open = session_module._load_file, session_module.ModelSession.open.__func__

    def load(role: str, path: Path, device: str) -> Any:
        return fakes[role]() if role in fakes else real_load(role, path, device)

    def only_given_files(cls: Any, models: Any = None, files: Any = None, device: str = "cpu") -> Any:
        opened = real_open(cls, models, files, device)
        for role in ROLES:
            if role not in (files or {}):
                opened.problems[role] = "not given in this test"
        return opened

    monkeypatch.setattr(session_module, "_load_file", load)
    monkeypatch.setattr(session_module.ModelSession, "open", classmethod(only_given_files))
