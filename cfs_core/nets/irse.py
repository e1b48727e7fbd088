"""IR-SE ArcFace backbone with TreB1eN's key names, any width/depth (spec §3; parity README §3).

The module tree *is* the checkpoint format of ``model_ir_se50.pth`` (TreB1eN
``Backbone(50, 0.6, 'ir_se')`` = StyleCLIP/pSp/e4e ``Backbone(112, 50, 'ir_se', 0.6)``):

* ``input_layer`` = ``[Conv2d(3, stem, 3, 1, 1, no bias), BatchNorm2d, PReLU]``;
* ``output_layer`` = ``[BatchNorm2d(last), Dropout, Flatten, Linear(last·s·s → emb), BatchNorm1d(emb)]``
  (``s`` = the body's output size, 7 for a 112 input) — registered *before* ``body``, as in the
  reference, so ``state_dict`` order matches;
* ``body.N`` = IR-SE bottleneck units; the first unit of every stage has stride 2. A unit is
  ``shortcut_layer`` (``MaxPool2d(1, stride)`` without keys when in == depth, else
  ``[Conv2d 1×1 stride, BatchNorm2d]``) + ``res_layer`` = ``[BN(in), Conv3×3(in→depth), PReLU,
  Conv3×3(depth→depth, stride), BN(depth), SE(fc1, fc2)]``.

The forward returns the embedding divided by its L2 norm (``torch.norm``, no epsilon, as
``l2_norm``). :class:`IRSEConfig` holds stem width, per-stage widths and unit counts, input size
and embedding width, so the tiny parity configuration and the full IR-SE50 are the same code; the
e4e encoder (:mod:`cfs_core.nets.e4e`) reuses :func:`build_input_layer` / :func:`build_body`.

BatchNorm ``num_batches_tracked`` counters are optional when loading (whether the public file has
them is unverified, spec §10); every other key is loaded strictly, and errors name the keys.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cfs_core.checkpoints import is_num_batches_tracked, load_state_checked, read_state_dict
from cfs_core.errors import InputError, ModelLoadError
from cfs_core.fileio import atomic_path

# TreB1eN ``get_blocks``: units per stage for the IR(-SE) depths.
UNITS_BY_DEPTH: dict[int, tuple[int, ...]] = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
IRSE_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)


def _halve(size: int) -> int:
    """Output size of a stride-2 3×3/pad-1 conv (and of ``MaxPool2d(1, 2)``): ``ceil(size / 2)``."""
    return (size + 1) // 2


@dataclass(frozen=True)
class IRSEConfig:
    """IR-SE backbone architecture (defaults: IR-SE50 of ``model_ir_se50.pth``, spec §3)."""

    stem: int = 64  # channels of input_layer (the reference hard-codes 64 = first stage width)
    widths: tuple[int, ...] = IRSE_WIDTHS  # depth of each stage
    units: tuple[int, ...] = UNITS_BY_DEPTH[50]  # bottleneck units of each stage
    input_size: int = 112  # square input the output Linear was built for (112 → 7×7 features)
    embedding_dim: int = 512  # output_layer Linear / BatchNorm1d width
    se_reduction: int = 16  # SE hidden width = depth // se_reduction
    drop_ratio: float = 0.6  # Dropout in output_layer (inactive in eval)

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        if not self.widths or len(self.widths) != len(self.units):
            raise ValueError(f"widths {self.widths} and units {self.units} must be non-empty and of equal length")
        if min(self.units) < 1 or min(self.widths) < 1 or self.stem < 1:
            raise ValueError("stem, widths and units must be positive")
        if min(self.widths) // self.se_reduction < 1:
            raise ValueError(f"every width must be >= se_reduction ({self.se_reduction}), got {self.widths}")
        if self.input_size < 1 or self.embedding_dim < 1:
            raise ValueError("input_size and embedding_dim must be positive")

    @classmethod
    def from_depth(cls, num_layers: int = 50, **kwargs: Any) -> IRSEConfig:
        """TreB1eN's ``Backbone(num_layers, …)``: 50, 100 or 152 layers."""
        if num_layers not in UNITS_BY_DEPTH:
            raise ValueError(f"num_layers must be one of {sorted(UNITS_BY_DEPTH)}, got {num_layers}")
        return cls(units=UNITS_BY_DEPTH[num_layers], **kwargs)

    def unit_plan(self) -> list[tuple[int, int, int]]:
        """``(in_channels, depth, stride)`` of every ``body`` unit, in order."""
        plan, in_ch = [], self.stem
        for depth, n in zip(self.widths, self.units):
            plan += [(in_ch, depth, 2)] + [(depth, depth, 1)] * (n - 1)
            in_ch = depth
        return plan

    def feature_sizes(self, input_size: int | None = None) -> list[int]:
        """Spatial size of every ``body`` unit's output for a square input (default ``input_size``)."""
        size, out = input_size or self.input_size, []
        for _, _, stride in self.unit_plan():
            size = _halve(size) if stride == 2 else size
            out.append(size)
        return out

    @property
    def out_size(self) -> int:
        """Spatial size of the body output at ``input_size`` (7 for IR-SE50 at 112)."""
        return self.feature_sizes()[-1]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"], d["units"] = list(self.widths), list(self.units)
        return {"kind": "irse", **d}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IRSEConfig:
        data = dict(data)
        data.pop("kind", None)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown IR-SE config keys: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


class SEModule(nn.Module):
    """Squeeze-excitation: avgpool → ``fc1`` (1×1, no bias) → ReLU → ``fc2`` → sigmoid → scale."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, padding=0, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, padding=0, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIRSE(nn.Module):
    """``bottleneck_IR_SE``: stride on the *second* 3×3 conv; the branch starts with a BatchNorm."""

    def __init__(self, in_ch: int, depth: int, stride: int, se_reduction: int = 16) -> None:
        super().__init__()
        if in_ch == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)  # subsampling when stride 2, no keys
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_ch, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth, se_reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def build_input_layer(stem: int) -> nn.Sequential:
    """``input_layer``: Conv2d(3, stem, 3, 1, 1, no bias), BatchNorm2d, PReLU."""
    return nn.Sequential(nn.Conv2d(3, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.PReLU(stem))


def build_body(config: IRSEConfig) -> nn.Sequential:
    """``body``: the IR-SE units of :meth:`IRSEConfig.unit_plan`."""
    return nn.Sequential(*(BottleneckIRSE(i, d, s, config.se_reduction) for i, d, s in config.unit_plan()))


class IRSEBackbone(nn.Module):
    """TreB1eN ``Backbone(mode='ir_se')``: ``[B, 3, S, S]`` in [-1, 1] → unit ``[B, E]`` embeddings."""

    def __init__(self, config: IRSEConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or IRSEConfig()
        last, s = config.widths[-1], config.out_size
        self.input_layer = build_input_layer(config.stem)
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(last), nn.Dropout(config.drop_ratio), nn.Flatten(),
            nn.Linear(last * s * s, config.embedding_dim), nn.BatchNorm1d(config.embedding_dim),
        )
        self.body = build_body(config)

    @property
    def input_size(self) -> int:
        return self.config.input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"IR-SE expects [B, 3, {self.input_size}, {self.input_size}] inputs, got {tuple(x.shape)}")
        x = self.output_layer(self.body(self.input_layer(x)))
        return x / torch.norm(x, 2, 1, True)  # reference l2_norm: no epsilon


# ---------------------------------------------------------------------------- config inference
def _shape(sd: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    if key not in sd:
        raise ModelLoadError(f"not an IR-SE state dict: key '{key}' is missing")
    return tuple(sd[key].shape)


def infer_trunk(sd: Mapping[str, torch.Tensor]) -> tuple[int, tuple[int, ...], tuple[int, ...], int]:
    """``(stem, widths, units, se_reduction)`` from ``input_layer``/``body`` shapes.

    A stage starts at unit 0 and wherever a unit changes the width (in ≠ depth), which holds for
    every IR/IR-SE depth of TreB1eN and pSp (stride is not visible in the weights).
    """
    stem = _shape(sd, "input_layer.0.weight")[0]
    indices = [int(k.split(".")[1]) for k in sd if k.startswith("body.") and k.split(".")[1].isdigit()]
    if not indices:
        raise ModelLoadError("not an IR-SE state dict: no 'body.*' keys")
    n = max(indices) + 1
    widths: list[int] = []
    units: list[int] = []
    for i in range(n):
        depth, in_ch = _shape(sd, f"body.{i}.res_layer.1.weight")[:2]
        if i == 0 or in_ch != depth:
            widths.append(int(depth))
            units.append(0)
        units[-1] += 1
    hidden = [(int(sd[f"body.{i}.res_layer.1.weight"].shape[0]), _shape(sd, f"body.{i}.res_layer.5.fc1.weight")[0])
              for i in range(n)]
    for reduction in (16, *range(1, widths[0] + 1)):  # the reference's 16 first
        if all(depth // reduction == h for depth, h in hidden):
            return int(stem), tuple(widths), tuple(units), reduction
    raise ModelLoadError("not an IR-SE state dict: SE widths fit no single reduction factor")


def infer_irse_config(sd: Mapping[str, torch.Tensor], drop_ratio: float = 0.6) -> IRSEConfig:
    """Infer an :class:`IRSEConfig` from a backbone ``state_dict`` (``input_size`` = 16 × s for 4 stages)."""
    stem, widths, units, reduction = infer_trunk(sd)
    emb, in_features = _shape(sd, "output_layer.3.weight")
    side = math.isqrt(in_features // widths[-1])
    if side * side * widths[-1] != in_features:
        raise ModelLoadError(f"output_layer.3.weight takes {in_features} features, not {widths[-1]}·s·s")
    try:
        return IRSEConfig(stem, widths, units, side * 2 ** len(widths), emb, reduction, drop_ratio)
    except ValueError as exc:
        raise ModelLoadError(f"inconsistent IR-SE shapes ({exc})") from None


# ---------------------------------------------------------------------------- loading
NATIVE_FORMAT = "cfs.irse"


def read_irse_state(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], IRSEConfig | None, Path]:
    """The backbone ``state_dict`` of a file, and its stored config if it has one.

    Accepts ``model_ir_se50.pth`` (a plain state dict), the same wrapped as ``{"state_dict": …}``
    or with a ``module.`` (DataParallel) prefix on every key, and ``.safetensors`` (bare, or cfs
    native with an ``irse_config`` JSON in the metadata).
    """
    path, sd, meta = read_state_dict(path, "IR-SE backbone")
    config = None
    if "irse_config" in meta:
        try:
            config = IRSEConfig.from_dict(json.loads(meta["irse_config"]))
        except (ValueError, TypeError) as exc:
            raise ModelLoadError(f"{path}: invalid IR-SE config in metadata ({exc})") from None
    if "output_layer.3.weight" not in sd:
        hint = " (it looks like an e4e/pSp encoder)" if "styles.0.linear.weight" in sd else ""
        raise ModelLoadError(f"{path}: not an IR-SE ArcFace backbone: no 'output_layer.3.weight'{hint}")
    return sd, config, path


def load_irse(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> IRSEBackbone:
    """Load an IR-SE backbone (e.g. ``model_ir_se50.pth``) strictly, frozen, in eval mode.

    The architecture comes from the file's metadata or is inferred from tensor shapes; only
    BatchNorm ``num_batches_tracked`` keys may be absent.
    """
    sd, config, path = read_irse_state(path)
    if config is None:
        try:
            config = infer_irse_config(sd)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{path}: {exc}") from None
    net = IRSEBackbone(config)
    load_state_checked(net, sd, path, "IR-SE backbone", is_num_batches_tracked)
    return net.eval().requires_grad_(False).to(device)


def save_irse_native(dest: str | os.PathLike[str], net: IRSEBackbone, extra_metadata: Mapping[str, str] | None = None) -> Path:
    """Write a backbone as cfs native ``.safetensors`` (TreB1eN keys, config JSON in metadata)."""
    from safetensors.torch import save_file

    dest = Path(dest)
    if dest.suffix != ".safetensors":
        raise InputError(f"{dest}: native model files end in .safetensors")
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    meta = {"format": "pt", "format_name": NATIVE_FORMAT, "format_version": "1", "irse_config": net.config.to_json()}
    meta.update(extra_metadata or {})
    with atomic_path(dest) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return dest
