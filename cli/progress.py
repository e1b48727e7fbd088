"""Progress events → rich progress bars (the only place the CLI draws bars).

Core code and plugins report :class:`cfs_core.methods.ProgressEvent`s through a callback; the
CLI passes the callback from :func:`progress_bars`, which draws one bar per stage on stderr. Bars
are off when stderr is not a terminal or with ``--quiet`` (the callback then does nothing).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cfs_cli._common import err_console, show_progress
from cfs_core.methods import ProgressCallback, ProgressEvent


def _describe(event: ProgressEvent) -> str:
    values = " ".join(f"{k}={v:.4g}" for k, v in event.values.items())
    return " · ".join(part for part in (event.stage, event.message, values) if part)


@contextlib.contextmanager
def progress_bars(
    enabled: bool | None = None, console: Console | None = None, transient: bool = True,
) -> Iterator[ProgressCallback]:
    """Yield a progress callback that draws one bar per stage (or ignores events if disabled).

    ``transient`` bars disappear when done (the default on a terminal); tests keep them.
    """
    if not (show_progress() if enabled is None else enabled):
        yield lambda event: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console or err_console, transient=transient) as bars:
        tasks: dict[str, int] = {}

        def on_event(event: ProgressEvent) -> None:
            if event.stage not in tasks:
                tasks[event.stage] = bars.add_task(event.stage, total=event.total)
            bars.update(tasks[event.stage], completed=event.step, total=event.total, description=_describe(event))

        yield on_event


def method_options(method_cls: type, pairs: list[str]) -> object:
    """Validate ``-o key=value`` pairs with a method's ``Options`` model (one-line errors)."""
    from cfs_core.methods import parse_option_pairs

    return method_cls.parse_options(parse_option_pairs(pairs))  # type: ignore[attr-defined]
