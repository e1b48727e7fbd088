"""First-party CLIP losses: target similarity, directional (gap), consistency, source similarity."""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_losses(register: Register) -> None:
    from cfs_plugins.clip_losses.losses import ClipConsistency, ClipDirection, ClipSource, ClipTarget

    for loss in (ClipTarget, ClipDirection, ClipConsistency, ClipSource):
        register(loss)
