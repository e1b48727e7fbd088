"""ClipFaceShop's face parser: the CelebAMask-HQ ``unet`` (``mask_net.pth``).

Spec: ``clipfaceshop.md`` §2.6 (background loss, train-mode BatchNorm quirk) and §5 (parser keys);
parity README §5. The module tree reproduces ``switchablenorms/CelebAMask-HQ``
``face_parsing/unet.py`` + ``model_utils.py`` (identical to ClipFaceShop's
``torch_utils/model_utils.py::unet``), so ``mask_net.pth`` (a plain state dict) loads unchanged:

* ``conv{1..4}``, ``center``: ``unetConv2`` = ``conv1``/``conv2``, each
  ``Sequential(Conv2d 3×3 pad 1 with bias, BatchNorm2d, ReLU)`` (keys ``.0`` conv, ``.1`` BN);
  2×2 max pooling between stages;
* ``up_concat{4..1}``: ``conv`` (a ``unetConv2`` with BatchNorm, declared first, hence first in
  the ``state_dict``) applied to ``cat([skip, up(x)])``, ``up`` = ``ConvTranspose2d(k2, s2)``
  (weights laid out ``(C_in, C_out, 2, 2)``); the skip is zero-padded by half the size difference
  on each side (zero for sizes divisible by 16);
* ``final``: 1×1 ``Conv2d`` to ``n_classes`` with bias.

Filters are ``int([64, 128, 256, 512, 1024][i] / feature_scale)``: 16…256 for ``mask_net.pth``
(``feature_scale=4``), 4…64 for the tiny parity fixture (``feature_scale=16``).

BatchNorm behaviour (§2.6): ClipFaceShop never calls ``.eval()``, so BatchNorm uses the statistics
of the current batch (and updates its running statistics as a side effect). :func:`batchnorm_mode`
reproduces either behaviour without changing the module's ``training`` flag elsewhere: ``"eval"``
(running statistics), ``"batch"`` (batch statistics, running statistics untouched — for a loss
network) or ``"batch_update"`` (batch statistics and the reference's running-statistics update).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.checkpoints import is_num_batches_tracked, load_state_checked, read_state_dict
from cfs_core.errors import ModelLoadError

BatchNormMode = Literal["eval", "batch", "batch_update"]
BATCHNORM_MODES: tuple[str, ...] = ("eval", "batch", "batch_update")
_BASE_FILTERS = (64, 128, 256, 512, 1024)


@dataclass(frozen=True)
class UNetConfig:
    """Constructor arguments of the reference ``unet`` (defaults = ``mask_net.pth``)."""

    feature_scale: float = 4
    n_classes: int = 19
    is_deconv: bool = True
    in_channels: int = 3
    is_batchnorm: bool = True

    def __post_init__(self) -> None:
        if not self.is_deconv:
            # The reference's bilinear branch keeps C_in channels, so cat([skip, up]) has
            # C_in + C_out channels while its conv expects C_in: it cannot run.
            raise ValueError("unet with is_deconv=False cannot run in the reference (channel mismatch); use is_deconv=True")
        if min(self.filters) < 1:
            raise ValueError(f"feature_scale {self.feature_scale} leaves a stage without channels")

    @property
    def filters(self) -> list[int]:
        return [int(x / self.feature_scale) for x in _BASE_FILTERS]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UNetConfig:
        known = {"feature_scale", "n_classes", "is_deconv", "in_channels", "is_batchnorm"}
        unknown = set(d) - known - {"filters"}
        if unknown:
            raise ValueError(f"unknown unet config keys: {sorted(unknown)}")
        cfg = cls(**{k: v for k, v in d.items() if k in known})
        if "filters" in d and list(d["filters"]) != cfg.filters:
            raise ValueError(f"filters {list(d['filters'])} do not follow feature_scale {cfg.feature_scale}")
        return cfg


class UNetConv2(nn.Module):
    """``unetConv2``: two [Conv3×3 (bias), BatchNorm, ReLU] blocks, keys ``conv1.{0,1}``, ``conv2.{0,1}``."""

    def __init__(self, in_size: int, out_size: int, is_batchnorm: bool) -> None:
        super().__init__()

        def block(cin: int) -> nn.Sequential:
            if is_batchnorm:
                return nn.Sequential(nn.Conv2d(cin, out_size, 3, 1, 1), nn.BatchNorm2d(out_size), nn.ReLU())
            return nn.Sequential(nn.Conv2d(cin, out_size, 3, 1, 1), nn.ReLU())

        self.conv1 = block(in_size)
        self.conv2 = block(out_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class UNetUp(nn.Module):
    """``unetUp``: transposed-conv ×2 of the deeper map, concatenated after the skip, then ``unetConv2``."""

    def __init__(self, in_size: int, out_size: int, is_batchnorm: bool) -> None:
        super().__init__()
        self.conv = UNetConv2(in_size, out_size, is_batchnorm)  # declared first: first in state_dict
        self.up = nn.ConvTranspose2d(in_size, out_size, kernel_size=2, stride=2)

    def forward(self, skip: torch.Tensor, deeper: torch.Tensor) -> torch.Tensor:
        up = self.up(deeper)
        offset = up.shape[2] - skip.shape[2]
        if offset:
            half = offset // 2
            skip = F.pad(skip, [half, half, half, half])  # the reference's padding (from the heights)
        return self.conv(torch.cat([skip, up], 1))


class UNet(nn.Module):
    """The reference ``unet(feature_scale, n_classes, is_deconv, in_channels, is_batchnorm)``.

    ``forward(x)``: ``[B, in_channels, H, W]`` (H, W divisible by 16; ClipFaceShop feeds generator
    output in [-1, 1] as is) → ``[B, n_classes, H, W]`` logits in CelebAMask-HQ's label order.
    """

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or UNetConfig()
        f, bn = config.filters, config.is_batchnorm
        self.conv1 = UNetConv2(config.in_channels, f[0], bn)
        self.maxpool1 = nn.MaxPool2d(kernel_size=2)
        self.conv2 = UNetConv2(f[0], f[1], bn)
        self.maxpool2 = nn.MaxPool2d(kernel_size=2)
        self.conv3 = UNetConv2(f[1], f[2], bn)
        self.maxpool3 = nn.MaxPool2d(kernel_size=2)
        self.conv4 = UNetConv2(f[2], f[3], bn)
        self.maxpool4 = nn.MaxPool2d(kernel_size=2)
        self.center = UNetConv2(f[3], f[4], bn)
        self.up_concat4 = UNetUp(f[4], f[3], bn)
        self.up_concat3 = UNetUp(f[3], f[2], bn)
        self.up_concat2 = UNetUp(f[2], f[1], bn)
        self.up_concat1 = UNetUp(f[1], f[0], bn)
        self.final = nn.Conv2d(f[0], config.n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1 = self.conv1(x)
        c2 = self.conv2(self.maxpool1(c1))
        c3 = self.conv3(self.maxpool2(c2))
        c4 = self.conv4(self.maxpool3(c3))
        center = self.center(self.maxpool4(c4))
        up = self.up_concat4(c4, center)
        up = self.up_concat3(c3, up)
        up = self.up_concat2(c2, up)
        up = self.up_concat1(c1, up)
        return self.final(up)


@contextlib.contextmanager
def batchnorm_mode(module: nn.Module, mode: BatchNormMode) -> Iterator[None]:
    """Run ``module``'s BatchNorm layers in ``mode`` inside the block, then restore their flags.

    * ``"eval"``: running statistics (``module.eval()`` behaviour);
    * ``"batch"``: statistics of the current batch, running statistics and ``num_batches_tracked``
      left untouched (train-mode output without side effects);
    * ``"batch_update"``: exactly train mode, including the running-statistics update (momentum
      0.1) that ClipFaceShop's never-``eval()``-ed parser performs.

    Only BatchNorm layers change; the rest of the module keeps its flags (the U-Net has no dropout).
    """
    if mode not in BATCHNORM_MODES:
        raise ValueError(f"batchnorm mode must be one of {BATCHNORM_MODES}, not {mode!r}")
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.training, m.track_running_stats) for m in norms]
    try:
        for m in norms:
            m.training = mode != "eval"
            m.track_running_stats = mode != "batch"
        yield
    finally:
        for m, (training, track) in zip(norms, saved):
            m.training, m.track_running_stats = training, track


def infer_unet_config(sd: Mapping[str, torch.Tensor]) -> UNetConfig:
    """The :class:`UNetConfig` whose module has the shapes of state dict ``sd``."""
    try:
        first = sd["conv1.conv1.0.weight"]
        final = sd["final.weight"]
    except KeyError as exc:
        raise ModelLoadError(f"not a CelebAMask-HQ unet state dict (no {exc.args[0]})") from None
    filters0 = int(first.shape[0])
    scale: float = 64 / filters0
    if scale == int(scale):
        scale = int(scale)
    try:
        return UNetConfig(feature_scale=scale, n_classes=int(final.shape[0]), in_channels=int(first.shape[1]),
                          is_batchnorm="conv1.conv1.1.weight" in sd, is_deconv=True)
    except ValueError as exc:
        raise ModelLoadError(f"unet shapes give no valid architecture ({exc})") from None


def build_unet(sd: Mapping[str, torch.Tensor], path: Path | str, config: UNetConfig | None = None) -> UNet:
    """A :class:`UNet` with ``sd`` loaded strictly (``num_batches_tracked`` optional), in eval mode."""
    try:
        cfg = config or infer_unet_config(sd)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    net = UNet(cfg)
    load_state_checked(net, sd, path, "unet parser", is_num_batches_tracked)
    return net.eval().requires_grad_(False)


def load_unet(path: str | os.PathLike[str]) -> UNet:
    """Load ``mask_net.pth`` (a plain ``unet`` state dict, read with ``weights_only``) or a bare
    safetensors state dict; the architecture comes from the tensor shapes."""
    path, sd, _ = read_state_dict(path)
    return build_unet(sd, path)
