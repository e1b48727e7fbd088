"""cfs-stylemix: an example cfs plugin (a guidance kind, an editing method and a CLI command).

This module is what the ``cfs`` entry point names (``stylemix = "cfs_stylemix"``). cfs imports it
on every ``cfs`` run, ``cfs --help`` included, so its top level imports only ``cfs_core`` (which
does not import torch): the classes, and torch with them, are imported inside the hook
functions, which cfs calls only when a table or the command line is actually built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cfs_core import hookimpl
from cfs_core.hookspecs import Register

if TYPE_CHECKING:
    import typer

__version__ = "0.1"


@hookimpl
def register_guidance_kinds(register: Register) -> None:
    from cfs_stylemix.kinds import SeedKind

    register(SeedKind)


@hookimpl
def register_methods(register: Register) -> None:
    from cfs_stylemix.method import StyleMix  # imports torch: only when methods are needed

    register(StyleMix)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    from cfs_stylemix.cli import stylemix_slots  # typer only; no torch

    app.command("stylemix-slots")(stylemix_slots)
