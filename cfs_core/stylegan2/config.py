"""Architecture configs of the StyleGAN2 generator and discriminator, and their inference.

A config is a small frozen dataclass that round-trips through JSON (it is stored in the metadata
of cfs' native safetensors files and in ``registry/configs``). The channel table is explicit
(resolution → channels); :func:`channel_table` builds rosinality's table from
``channel_multiplier`` (config-f is ``channel_multiplier=2``), optionally capped by
``channel_max`` (NVlabs' knob) for small models.

:func:`infer_generator_config` / :func:`infer_discriminator_config` recover the architecture from
the shapes of a rosinality-layout ``state_dict``, so any public or user checkpoint loads without a
config file. ``lr_mlp`` cannot be seen in the weights; it defaults to the public 0.01.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from cfs_core.errors import ModelLoadError

DEFAULT_BLUR_KERNEL: tuple[float, ...] = (1.0, 3.0, 3.0, 1.0)


def channel_table(size: int, channel_multiplier: int = 2, channel_max: int | None = None) -> dict[int, int]:
    """Rosinality's channel table for resolutions 4..``size``, optionally capped at ``channel_max``."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    table: dict[int, int] = {}
    res = 4
    while res <= size:
        ch = base[res] * (channel_multiplier if res >= 64 else 1) if res in base else max(16 * 1024 // res, 1)
        table[res] = min(ch, channel_max) if channel_max else ch
        res *= 2
    return table


def _check_size(size: int) -> int:
    if size < 8 or size & (size - 1):
        raise ValueError(f"size must be a power of two >= 8, got {size}")
    return size


def _channels_from_json(raw: Mapping[Any, Any]) -> dict[int, int]:
    return {int(k): int(v) for k, v in raw.items()}


@dataclass(frozen=True)
class GeneratorConfig:
    """StyleGAN2 generator architecture (rosinality ``Generator`` arguments, channels explicit)."""

    size: int  # output resolution, a power of two
    style_dim: int = 512  # width of z, w and the mapping MLP
    n_mlp: int = 8  # number of mapping layers
    channels: dict[int, int] = field(default_factory=dict)  # resolution -> feature channels
    lr_mlp: float = 0.01  # learning-rate multiplier of the mapping (scales weights and biases)
    blur_kernel: tuple[float, ...] = DEFAULT_BLUR_KERNEL  # 1-D FIR taps

    def __post_init__(self) -> None:
        _check_size(self.size)
        if not self.channels:
            object.__setattr__(self, "channels", channel_table(self.size))
        object.__setattr__(self, "channels", _channels_from_json(self.channels))
        object.__setattr__(self, "blur_kernel", tuple(float(t) for t in self.blur_kernel))
        missing = [r for r in self.resolutions if r not in self.channels]
        if missing:
            raise ValueError(f"channel table lacks resolutions {missing}")

    @classmethod
    def from_multiplier(
        cls, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
        channel_max: int | None = None, lr_mlp: float = 0.01,
    ) -> GeneratorConfig:
        """Config from rosinality's constructor arguments (``Generator(size, style_dim, n_mlp, cm)``)."""
        return cls(size, style_dim, n_mlp, channel_table(size, channel_multiplier, channel_max), lr_mlp)

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def resolutions(self) -> list[int]:
        return [2**i for i in range(2, self.log_size + 1)]

    @property
    def n_latent(self) -> int:
        """Number of W+ slots (18 at 1024, 14 at 256)."""
        return self.log_size * 2 - 2

    @property
    def num_layers(self) -> int:
        """Number of noise inputs (17 at 1024)."""
        return (self.log_size - 2) * 2 + 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = {str(k): v for k, v in sorted(self.channels.items())}
        d["blur_kernel"] = list(self.blur_kernel)
        return {"kind": "stylegan2.generator", **d}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GeneratorConfig:
        data = dict(data)
        data.pop("kind", None)
        if "channels" not in data and "channel_multiplier" in data:
            return cls.from_multiplier(
                int(data["size"]), int(data.get("style_dim", 512)), int(data.get("n_mlp", 8)),
                int(data["channel_multiplier"]), data.get("channel_max"), float(data.get("lr_mlp", 0.01)),
            )
        known = {"size", "style_dim", "n_mlp", "channels", "lr_mlp", "blur_kernel"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown generator config keys: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """StyleGAN2 discriminator architecture (rosinality ``Discriminator``, channels explicit)."""

    size: int
    channels: dict[int, int] = field(default_factory=dict)
    blur_kernel: tuple[float, ...] = DEFAULT_BLUR_KERNEL
    stddev_group: int = 4
    stddev_feat: int = 1

    def __post_init__(self) -> None:
        _check_size(self.size)
        if not self.channels:
            object.__setattr__(self, "channels", channel_table(self.size))
        object.__setattr__(self, "channels", _channels_from_json(self.channels))
        object.__setattr__(self, "blur_kernel", tuple(float(t) for t in self.blur_kernel))

    @classmethod
    def from_multiplier(cls, size: int, channel_multiplier: int = 2, channel_max: int | None = None) -> DiscriminatorConfig:
        return cls(size, channel_table(size, channel_multiplier, channel_max))

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = {str(k): v for k, v in sorted(self.channels.items())}
        d["blur_kernel"] = list(self.blur_kernel)
        return {"kind": "stylegan2.discriminator", **d}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiscriminatorConfig:
        data = dict(data)
        data.pop("kind", None)
        if "channels" not in data and "channel_multiplier" in data:
            return cls.from_multiplier(int(data["size"]), int(data["channel_multiplier"]), data.get("channel_max"))
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _shape(sd: Mapping[str, torch.Tensor], key: str, what: str) -> tuple[int, ...]:
    if key not in sd:
        raise ModelLoadError(f"not a StyleGAN2 {what} state_dict: key '{key}' is missing")
    return tuple(sd[key].shape)


def _blur_taps(sd: Mapping[str, torch.Tensor], key: str | None) -> tuple[float, ...]:
    """Recover 1-D taps from a stored 2-D kernel buffer (a scaled outer product), else the default."""
    if key is None or key not in sd:
        return DEFAULT_BLUR_KERNEL
    k2 = sd[key].detach().float().cpu()
    row = k2.sum(dim=1)
    taps = row / row.abs().min().clamp_min(1e-12)
    taps_t = tuple(round(float(t), 4) for t in taps)
    return DEFAULT_BLUR_KERNEL if taps_t == DEFAULT_BLUR_KERNEL else taps_t


def infer_generator_config(sd: Mapping[str, torch.Tensor], lr_mlp: float = 0.01) -> GeneratorConfig:
    """Infer a :class:`GeneratorConfig` from a rosinality-layout generator ``state_dict``."""
    const = _shape(sd, "input.input", "generator")
    style_dim = _shape(sd, "conv1.conv.modulation.weight", "generator")[1]
    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    n_convs = 0
    while f"convs.{n_convs}.conv.weight" in sd:
        n_convs += 1
    if n_convs % 2:
        raise ModelLoadError(f"generator state_dict has an odd number of convs ({n_convs})")
    log_size = n_convs // 2 + 2
    channels = {4: const[1]}
    for k in range(n_convs // 2):
        channels[2 ** (k + 3)] = _shape(sd, f"convs.{2 * k}.conv.weight", "generator")[1]
    blur_key = "convs.0.conv.blur.kernel" if n_convs else None
    return GeneratorConfig(2**log_size, style_dim, n_mlp, channels, lr_mlp, _blur_taps(sd, blur_key))


def infer_discriminator_config(sd: Mapping[str, torch.Tensor]) -> DiscriminatorConfig:
    """Infer a :class:`DiscriminatorConfig` from a rosinality-layout discriminator ``state_dict``."""
    first = _shape(sd, "convs.0.0.weight", "discriminator")
    n_blocks = 0
    while f"convs.{n_blocks + 1}.conv1.0.weight" in sd:
        n_blocks += 1
    size = 2 ** (n_blocks + 2)
    channels = {size: first[0]}
    for j in range(1, n_blocks + 1):
        channels[size >> j] = _shape(sd, f"convs.{j}.conv2.1.weight", "discriminator")[0]
    blur_key = "convs.1.conv2.0.kernel" if n_blocks else None
    return DiscriminatorConfig(size, channels, _blur_taps(sd, blur_key))
