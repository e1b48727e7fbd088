"""Shared CLI plumbing: global state, consoles and the one-line error policy.

Every command body runs inside :func:`cli_command`, which turns a user error into one line on
stderr and a non-zero exit (``--verbose`` shows the traceback instead). Heavy imports (torch)
happen inside command bodies so that ``cfs --help`` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from cfs_registry.plugins import PluginHost

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


@dataclass
class CliState:
    """Global options of one ``cfs`` invocation (set by the root callback)."""

    device: str = "auto"
    verbose: bool = False
    quiet: bool = False
    host: PluginHost | None = None  # the plugin host of the running app


def get_host() -> PluginHost:
    """The plugin host of the running ``cfs`` app (built on demand outside an app)."""
    if STATE.host is None:
        from cfs_registry.plugins import PluginHost

        STATE.host = PluginHost()
    return STATE.host


STATE = CliState()
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def resolve_device(name: str | None = None) -> str:
    """Map ``auto``/``cpu``/``cuda`` (default: the global ``--device``) to a torch device string."""
    name = name or STATE.device
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            from cfs_core.errors import InputError

            raise InputError("--device cuda was asked for, but no CUDA device is available")
    return name


def fail(message: str, code: int = EXIT_USER_ERROR) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


def info(message: str) -> None:
    """Print a status line on stderr unless ``--quiet``."""
    if not STATE.quiet:
        err_console.print(message, soft_wrap=True)


def show_progress() -> bool:
    """Progress bars are drawn only on a terminal and without ``--quiet``."""
    return not STATE.quiet and sys.stderr.isatty()


def cli_command(func: F) -> F:
    """Run a command body under the error policy (one line, non-zero exit, no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from cfs_core.errors import CfsError

        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", EXIT_INTERRUPTED) from None
        except CfsError as exc:
            if STATE.verbose:
                raise
            raise fail(str(exc)) from None
        except OSError as exc:
            if STATE.verbose:
                raise
            raise fail(_os_error_line(exc)) from None
        except Exception as exc:  # noqa: BLE001 - the policy is: never a traceback by default
            if STATE.verbose or os.environ.get("CFS_DEBUG"):
                raise
            raise fail(
                f"internal error: {type(exc).__name__}: {exc} (run with --verbose for the traceback)",
                EXIT_INTERNAL_ERROR,
            ) from None

    return wrapper  # type: ignore[return-value]


def _os_error_line(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.filename:
        return f"{exc.filename}: {reason}"
    return reason
