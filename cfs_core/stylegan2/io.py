"""Reading and writing StyleGAN2 checkpoints without executing pickled code.

Layouts read (spec §1.10, parity README "Checkpoint layout files"):

* **rosinality converted** ``.pt``: ``{"g_ema", "latent_avg"[, "g", "d"]}``;
* **rosinality training snapshot** ``.pt``: ``{"g", "d", "g_ema", "g_optim", "d_optim", "args",
  "ada_aug_p"}`` — ``args`` is an ``argparse.Namespace``, allowed through torch's
  ``weights_only`` unpickler as a plain attribute bag (no code runs);
* a **bare state dict** (``.pt`` or ``.safetensors``) with rosinality generator keys;
* **cfs native** ``.safetensors``: ``generator.*`` [``discriminator.*``] [``latent_avg``] tensors
  and the architecture configs as JSON in the file metadata.

Every ``torch.load`` here uses ``weights_only=True``. The architecture is inferred from tensor
shapes when no config is stored. Loading is strict except for the FIR kernel buffers (constants
that some converters drop), and an error names the missing/unexpected keys.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from cfs_core.checkpoints import check_model_path, load_state_checked, read_safetensors, tensor_dict, torch_load_safe
from cfs_core.errors import InputError, ModelLoadError
from cfs_core.fileio import atomic_path, sha256_file
from cfs_core.stylegan2.config import (
    DiscriminatorConfig,
    GeneratorConfig,
    infer_discriminator_config,
    infer_generator_config,
)
from cfs_core.stylegan2.discriminator import Discriminator
from cfs_core.stylegan2.generator import Generator

NATIVE_FORMAT = "cfs.stylegan2"
NATIVE_VERSION = "1"
_GEN_WHICH = ("g_ema", "g")


@dataclass
class RawCheckpoint:
    """A checkpoint's tensors, split by role, before any module is built."""

    path: Path
    layout: str  # "rosinality-converted" | "rosinality-training" | "state-dict" | "cfs-native"
    generators: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)  # "g_ema"/"g" -> state dict
    discriminator: dict[str, torch.Tensor] | None = None
    latent_avg: torch.Tensor | None = None
    generator_config: GeneratorConfig | None = None
    discriminator_config: DiscriminatorConfig | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # args, optimiser presence, metadata

    @property
    def default_generator(self) -> str:
        return "g_ema" if "g_ema" in self.generators else next(iter(self.generators), "")


@dataclass
class LoadedGenerator:
    """A built generator (and optional discriminator) with where it came from."""

    generator: Generator
    discriminator: Discriminator | None
    checkpoint: RawCheckpoint
    which: str


# ---------------------------------------------------------------------------- reading
def _read_safetensors(path: Path) -> RawCheckpoint:
    tensors, meta = read_safetensors(path)
    if meta.get("format_name") == NATIVE_FORMAT:
        raw = RawCheckpoint(path, "cfs-native", extras={"metadata": meta})
        raw.generators["g_ema"] = {k[10:]: v for k, v in tensors.items() if k.startswith("generator.")}
        disc = {k[14:]: v for k, v in tensors.items() if k.startswith("discriminator.")}
        raw.discriminator = disc or None
        raw.latent_avg = tensors.get("latent_avg")
        try:
            if "generator_config" in meta:
                raw.generator_config = GeneratorConfig.from_dict(json.loads(meta["generator_config"]))
            if "discriminator_config" in meta:
                raw.discriminator_config = DiscriminatorConfig.from_dict(json.loads(meta["discriminator_config"]))
        except (ValueError, TypeError) as exc:
            raise ModelLoadError(f"{path}: invalid architecture config in metadata ({exc})") from None
        return raw
    raw = RawCheckpoint(path, "state-dict", extras={"metadata": meta})
    _assign_bare(raw, tensors)
    return raw


def _assign_bare(raw: RawCheckpoint, sd: dict[str, torch.Tensor]) -> None:
    if "input.input" in sd:
        raw.generators["g_ema"] = sd
    elif "convs.0.0.weight" in sd and "final_linear.0.weight" in sd:
        raw.discriminator = sd
    else:
        raise ModelLoadError(f"{raw.path}: tensors do not look like a StyleGAN2 generator or discriminator")


def read_checkpoint(path: str | os.PathLike[str]) -> RawCheckpoint:
    """Read any supported StyleGAN2 file into a :class:`RawCheckpoint` (no module is built)."""
    path = check_model_path(path)
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    obj = torch_load_safe(path)
    if not isinstance(obj, Mapping):
        raise ModelLoadError(f"{path}: expected a dict checkpoint, found {type(obj).__name__}")
    if any(k in obj for k in ("g_ema", "g", "d")):
        layout = "rosinality-training" if "g_optim" in obj or "args" in obj else "rosinality-converted"
        raw = RawCheckpoint(path, layout)
        for which in _GEN_WHICH:
            if which in obj:
                raw.generators[which] = tensor_dict(obj[which], path, which)
        if "d" in obj:
            raw.discriminator = tensor_dict(obj["d"], path, "d")
        if isinstance(obj.get("latent_avg"), torch.Tensor):
            raw.latent_avg = obj["latent_avg"]
        if isinstance(obj.get("args"), argparse.Namespace):
            raw.extras["args"] = {k: v for k, v in vars(obj["args"]).items() if isinstance(v, (int, float, str, bool, type(None)))}
        raw.extras["contents"] = sorted(str(k) for k in obj)
        if "args" in raw.extras and raw.generators:
            lr = raw.extras["args"].get("lr_mlp")
            if isinstance(lr, float):
                raw.extras["lr_mlp"] = lr
        return raw
    raw = RawCheckpoint(path, "state-dict")
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        raise ModelLoadError(f"{path}: a 'state_dict' checkpoint (e.g. an encoder), not a StyleGAN2 generator")
    _assign_bare(raw, tensor_dict(obj, path, "state dict"))
    return raw


# ---------------------------------------------------------------------------- building
def _is_kernel_key(key: str) -> bool:
    """FIR kernel buffers are constants; some converters drop them."""
    return key.endswith(".kernel")


def build_generator(raw: RawCheckpoint, which: str | None = None) -> Generator:
    """Build the generator ``which`` (``g_ema`` by default) of a checkpoint, weights loaded."""
    which = which or raw.default_generator
    if which not in raw.generators:
        have = ", ".join(raw.generators) or "none"
        raise ModelLoadError(f"{raw.path}: no generator '{which}' in this checkpoint (has: {have})")
    sd = raw.generators[which]
    config = raw.generator_config or infer_generator_config(sd, lr_mlp=raw.extras.get("lr_mlp", 0.01))
    gen = Generator(config)
    load_state_checked(gen, sd, raw.path, f"generator '{which}'", _is_kernel_key)
    if raw.latent_avg is not None:
        if raw.latent_avg.numel() != config.style_dim:
            raise ModelLoadError(f"{raw.path}: latent_avg has {raw.latent_avg.numel()} values, style_dim is {config.style_dim}")
        gen.latent_avg = raw.latent_avg.detach().float().reshape(1, -1).clone()
    return gen.eval().requires_grad_(False)


def build_discriminator(raw: RawCheckpoint) -> Discriminator:
    """Build the checkpoint's discriminator, weights loaded."""
    if raw.discriminator is None:
        raise ModelLoadError(f"{raw.path}: this checkpoint has no discriminator")
    config = raw.discriminator_config or infer_discriminator_config(raw.discriminator)
    disc = Discriminator(config)
    load_state_checked(disc, raw.discriminator, raw.path, "discriminator", _is_kernel_key)
    return disc.eval()


def load_generator(
    path: str | os.PathLike[str], which: str | None = None, device: str | torch.device = "cpu",
    with_discriminator: bool = False,
) -> LoadedGenerator:
    """Load a StyleGAN2 generator from any supported file; the public entry point.

    Args:
        path: a rosinality ``.pt`` (converted or training snapshot), a bare state dict, or a
            cfs native ``.safetensors``.
        which: ``"g_ema"`` (default when present) or ``"g"``.
        device: where to put the modules.
        with_discriminator: also build the discriminator (error if the file has none).
    """
    raw = read_checkpoint(path)
    if not raw.generators:
        raise ModelLoadError(f"{raw.path}: this file holds no generator (only a discriminator)")
    chosen = which or raw.default_generator
    gen = build_generator(raw, chosen).to(device)
    disc = build_discriminator(raw).to(device) if with_discriminator else None
    return LoadedGenerator(gen, disc, raw, chosen)


# ---------------------------------------------------------------------------- writing
def save_native(
    dest: str | os.PathLike[str], generator: Generator, discriminator: Discriminator | None = None,
    extra_metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write cfs' native ``.safetensors`` (generator, optional discriminator, latent_avg, configs).

    The file is written atomically. Tensor names are ``generator.<rosinality key>``, so the
    generator's ``state_dict`` can be recovered by stripping the prefix.
    """
    from safetensors.torch import save_file

    dest = Path(dest)
    if dest.suffix != ".safetensors":
        raise InputError(f"{dest}: native model files end in .safetensors")
    tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in generator.state_dict().items()}
    meta = {"format": "pt", "format_name": NATIVE_FORMAT, "format_version": NATIVE_VERSION,
            "generator_config": generator.config.to_json()}
    if generator.latent_avg is not None:
        tensors["latent_avg"] = generator.latent_avg.detach().cpu().reshape(-1).contiguous()
    if discriminator is not None:
        tensors.update({f"discriminator.{k}": v.detach().cpu().contiguous() for k, v in discriminator.state_dict().items()})
        meta["discriminator_config"] = discriminator.config.to_json()
    meta.update(extra_metadata or {})
    with atomic_path(dest) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return dest


def convert(
    src: str | os.PathLike[str], dest: str | os.PathLike[str], which: str | None = None,
    with_discriminator: bool = False,
) -> Path:
    """Convert any supported StyleGAN2 file to cfs' native format (checked by building it)."""
    loaded = load_generator(src, which=which, with_discriminator=with_discriminator)
    src_path = Path(src)
    meta = {"source_file": src_path.name, "source_sha256": sha256_file(src_path),
            "source_layout": loaded.checkpoint.layout, "source_generator": loaded.which}
    if Path(dest).resolve() == src_path.resolve():
        raise InputError(f"{dest}: destination is the source file")
    return save_native(dest, loaded.generator, loaded.discriminator, meta)
