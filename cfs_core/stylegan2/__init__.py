"""The one shared StyleGAN2 backend of cfs (rosinality state-dict layout, pure PyTorch ops).

Public API::

    from cfs_core.stylegan2 import Generator, GeneratorConfig, load_generator
    loaded = load_generator("stylegan2-ffhq-config-f.pt")        # or a cfs .safetensors
    g = loaded.generator
    w = g.mapping(z)                                             # Z -> W
    w = g.truncate(w, 0.7, g.truncation_center())                # truncation
    img = g.synthesis(g.to_wplus(w))                             # W / W+ -> image
    s = g.styles(wplus); img = g.synthesis_from_styles(s)        # StyleSpace out / in
"""

from __future__ import annotations

from cfs_core.stylegan2.config import (
    DiscriminatorConfig,
    GeneratorConfig,
    channel_table,
    infer_discriminator_config,
    infer_generator_config,
)
from cfs_core.stylegan2.describe import describe_checkpoint, describe_generator_config
from cfs_core.stylegan2.discriminator import Discriminator
from cfs_core.stylegan2.generator import Generator, NoiseSpec, StyleLayer
from cfs_core.stylegan2.io import (
    LoadedGenerator,
    RawCheckpoint,
    build_discriminator,
    build_generator,
    convert,
    load_generator,
    read_checkpoint,
    save_native,
)

__all__ = [
    "Discriminator",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "LoadedGenerator",
    "NoiseSpec",
    "RawCheckpoint",
    "StyleLayer",
    "build_discriminator",
    "build_generator",
    "channel_table",
    "convert",
    "describe_checkpoint",
    "describe_generator_config",
    "infer_discriminator_config",
    "infer_generator_config",
    "load_generator",
    "read_checkpoint",
    "save_native",
]
