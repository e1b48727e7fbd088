"""First-party latent-space losses (no network needed)."""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_losses(register: Register) -> None:
    from cfs_plugins.latent_losses.losses import LatentL2, LatentL2Mean

    register(LatentL2)
    register(LatentL2Mean)
