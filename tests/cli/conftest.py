"""CLI test helpers: a runner over the real ``cfs`` app."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from typer.testing import CliRunner, Result

from cfs_cli.main import make_app


@pytest.fixture
def cfs() -> Callable[..., Result]:
    """Run ``cfs ARGS…`` in-process; returns typer's Result (exit_code, stdout, stderr)."""
    runner = CliRunner()
    app = make_app()

    def run(*args: str) -> Result:
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run
