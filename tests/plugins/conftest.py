"""Plugin-test fixtures: a fake site folder for installed distributions, a CLI runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from plugin_helpers import FakeSite  # type: ignore[import-not-found]
from typer.testing import CliRunner, Result

from cfs_registry.plugins import ENV_NO_AUTOLOAD, ENV_ONLY, ENV_STRICT, PluginHost


@pytest.fixture(autouse=True)
def _clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No plugin switch leaks in from the calling shell."""
    for name in (ENV_STRICT, ENV_NO_AUTOLOAD, ENV_ONLY):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    fake = FakeSite(tmp_path / "site", monkeypatch)
    fake.root.mkdir()
    yield fake
    fake.cleanup()


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``invoke(host, *args)``: run ``cfs ARGS…`` on ``make_app(host)`` (wide console)."""
    from cfs_cli import _common
    from cfs_cli.main import make_app

    monkeypatch.setattr(_common.console, "_width", 200)
    monkeypatch.setattr(_common.err_console, "_width", 200)
    monkeypatch.setattr(_common.STATE, "host", _common.STATE.host)  # make_app replaces it

    def run(host: PluginHost, *args: str) -> Result:
        return CliRunner().invoke(make_app(host), list(args), catch_exceptions=False)

    return run
