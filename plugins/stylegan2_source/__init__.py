"""First-party generator source: StyleGAN2 files (rosinality ``.pt`` layouts, cfs ``.safetensors``)."""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_generators(register: Register) -> None:
    from cfs_plugins.stylegan2_source.source import StyleGAN2Source

    register(StyleGAN2Source)
