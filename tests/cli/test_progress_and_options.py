"""Progress events as rich bars, ``-o key=value`` options, and the --verbose error policy."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import ClassVar

import pytest
from pydantic import Field
from rich.console import Console
from typer.testing import Result

from cfs_cli.progress import method_options, progress_bars
from cfs_core.errors import InputError
from cfs_core.methods import EditingMethod, MethodOptions, ProgressEvent


class _Options(MethodOptions):
    steps: int = Field(300, ge=1)
    lr: float = 0.1
    faithful: bool = False


class _Method(EditingMethod):
    method_id: ClassVar[str] = "demo"
    description: ClassVar[str] = "demo"
    accepts: ClassVar[frozenset[str]] = frozenset({"text"})
    Options = _Options

    def edit(self, ctx, request):  # type: ignore[no-untyped-def]  # never called here
        raise NotImplementedError


def test_events_become_one_bar_per_stage() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with progress_bars(enabled=True, console=console, transient=False) as report:
        for step in range(1, 4):
            report(ProgressEvent("invert", step, 3))
        report(ProgressEvent("train", 5, 10, values={"loss": 0.25}))
    text = out.getvalue()
    assert "invert" in text and "3/3" in text
    assert "train" in text and "loss=0.25" in text and "5/10" in text


def test_disabled_bars_draw_nothing() -> None:
    out = io.StringIO()
    with progress_bars(enabled=False, console=Console(file=out, force_terminal=True)) as report:
        report(ProgressEvent("invert", 1, 3))
    assert out.getvalue() == ""


def test_bars_are_off_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import cfs_cli.progress as progress

    drawn: list[object] = []
    monkeypatch.setattr(progress, "Progress", lambda *a, **k: drawn.append(a))  # would be built if bars were on
    with progress_bars() as report:  # pytest's stderr is not a TTY
        report(ProgressEvent("x", 1, 1))
    assert drawn == []


def test_option_pairs_are_validated_by_the_method_model() -> None:
    options = method_options(_Method, ["steps=5", "lr=0.01", "faithful=true"])
    assert isinstance(options, _Options)
    assert (options.steps, options.lr, options.faithful) == (5, 0.01, True)


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["steps"], "not of the form key=value"),
        (["=3"], "not of the form key=value"),
        (["stepz=3"], "unknown option 'stepz' (options: steps, lr, faithful)"),
        (["steps=many"], "option 'steps'"),
        (["steps=0"], "greater than or equal to 1"),
    ],
)
def test_bad_option_pairs_are_one_line_errors(pairs: list[str], message: str) -> None:
    with pytest.raises(InputError) as info:
        method_options(_Method, pairs)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_verbose_shows_the_traceback(cfs: Callable[..., Result]) -> None:
    quiet = cfs("generate", "--model", "no-such-arch", "--out", "x.png")
    assert quiet.exit_code == 2 and quiet.exception is not None and "Traceback" not in quiet.output
    with pytest.raises(InputError, match="unknown stylegan2 architecture"):
        cfs("-v", "generate", "--model", "no-such-arch", "--out", "x.png")
