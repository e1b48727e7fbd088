"""First-party guidance kinds: ``text``, ``clipart``, ``sketch``, ``exemplar``."""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_guidance_kinds(register: Register) -> None:
    from cfs_plugins.guidance.kinds import ClipartKind, ExemplarKind, SketchKind, TextKind

    for kind in (TextKind, ClipartKind, SketchKind, ExemplarKind):
        register(kind)
