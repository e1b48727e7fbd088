"""First-party face losses: ArcFace identity and parser-masked background L1."""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_losses(register: Register) -> None:
    from cfs_plugins.face_losses.losses import BackgroundL1, Identity

    register(Identity)
    register(BackgroundL1)
