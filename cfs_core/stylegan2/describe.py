"""A JSON-able description of a StyleGAN2 model file (what ``cfs models inspect`` prints)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cfs_core.fileio import sha256_file
from cfs_core.stylegan2.config import GeneratorConfig, infer_discriminator_config, infer_generator_config
from cfs_core.stylegan2.discriminator import Discriminator
from cfs_core.stylegan2.generator import Generator
from cfs_core.stylegan2.io import RawCheckpoint, read_checkpoint


def _param_count(module_factory: Any) -> int:
    with torch.device("meta"):
        module = module_factory()
    return sum(p.numel() for p in module.parameters())


def describe_generator_config(config: GeneratorConfig) -> dict[str, Any]:
    """Architecture facts of a generator config: resolution, W+ size, StyleSpace, parameters."""
    with torch.device("meta"):
        gen = Generator(config)
    return {
        "architecture": config.to_dict(),
        "resolution": config.size,
        "parameters": sum(p.numel() for p in gen.parameters()),
        "wplus_shape": [config.n_latent, config.style_dim],
        "noise_layers": config.num_layers,
        "stylespace_layers": len(gen.stylespace),
        "stylespace_channels": sum(gen.stylespace_dims),
        "stylespace_channels_non_torgb": sum(layer.channels for layer in gen.stylespace if not layer.is_torgb),
    }


def describe_checkpoint(path: str | os.PathLike[str], raw: RawCheckpoint | None = None) -> dict[str, Any]:
    """Describe a model file: layout, contents, sha256 and each network's architecture."""
    path = Path(path)
    raw = raw or read_checkpoint(path)
    info: dict[str, Any] = {
        "file": str(path),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "layout": raw.layout,
        "generators": {},
        "latent_avg": raw.latent_avg is not None,
    }
    if "contents" in raw.extras:
        info["contents"] = raw.extras["contents"]
    for which, sd in raw.generators.items():
        config = raw.generator_config or infer_generator_config(sd)
        info["generators"][which] = describe_generator_config(config)
    if raw.generators:
        info["default_generator"] = raw.default_generator
    if raw.discriminator is not None:
        dconfig = raw.discriminator_config or infer_discriminator_config(raw.discriminator)
        info["discriminator"] = {
            "architecture": dconfig.to_dict(),
            "parameters": _param_count(lambda: Discriminator(dconfig)),
        }
    if "args" in raw.extras:
        info["training_args"] = raw.extras["args"]
    meta = raw.extras.get("metadata") or {}
    source = {k: v for k, v in meta.items() if k.startswith("source_")}
    if source:
        info["source"] = source
    return info
