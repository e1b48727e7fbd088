"""First-party losses on latents and adaptor parameters (no network needed)."""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_losses(register: Register) -> None:
    from cfs_plugins.latent_losses.losses import AdaptorL2, LatentL2, LatentL2Mean

    for loss in (LatentL2, LatentL2Mean, AdaptorL2):
        register(loss)
