"""The attribute evaluator: a small multi-head CNN that reads every world attribute off an image.

It is the resource ``"evaluator"`` (:data:`EVALUATOR`) used **only** by benchmarks and tests to
measure whether an edit did what it claimed; no editing method may require it. One head per
attribute of :data:`cfs_core.training.data.ATTRIBUTES` (the categorical parameters of the
world's ``attribute`` group); a head's classes are the parameter's choices in schema order.

Architecture (:class:`EvaluatorConfig`): images in [-1, 1] are resized to ``size``; a stack of
stages, each ``Conv3×3 stride 2 → BN → ReLU → Conv3×3 → BN → ReLU`` with ``widths[i]`` channels;
global average and max pooling concatenated; one linear head per attribute.

Files are cfs native safetensors: the state dict plus ``format_name = "cfs.evaluator"`` and the
config as JSON in the metadata (:meth:`Evaluator.save`, :meth:`Evaluator.from_file`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.checkpoints import read_state_dict
from cfs_core.errors import InputError, ModelLoadError
from cfs_core.fileio import atomic_path, storage_half

EVALUATOR = "evaluator"
NATIVE_FORMAT = "cfs.evaluator"
NATIVE_VERSION = "1"


def default_attributes() -> dict[str, tuple[str, ...]]:
    """The world's categorical attributes and their choices (schema order)."""
    from cfs_core.world import SPECS

    return {n: s.choices for n, s in SPECS.items() if s.group == "attribute" and s.choices}


@dataclass(frozen=True)
class EvaluatorConfig:
    """Architecture of an :class:`Evaluator`."""

    size: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 256)
    attributes: dict[str, tuple[str, ...]] = field(default_factory=default_attributes)

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 8:
            raise InputError(f"evaluator size must be an integer >= 8, got {self.size!r}")
        if not self.widths or min(self.widths) < 1:
            raise InputError(f"evaluator widths must be positive, got {list(self.widths)}")
        if not self.attributes or any(len(c) < 2 for c in self.attributes.values()):
            raise InputError("an evaluator needs attributes with at least two choices each")

    def to_json(self) -> str:
        return json.dumps({"size": self.size, "widths": list(self.widths),
                           "attributes": {k: list(v) for k, v in self.attributes.items()}})

    @classmethod
    def from_json(cls, text: str) -> EvaluatorConfig:
        d = json.loads(text)
        return cls(size=int(d["size"]), widths=tuple(int(w) for w in d["widths"]),
                   attributes={k: tuple(v) for k, v in d["attributes"].items()})


def _stage(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class Evaluator(nn.Module):
    """Multi-head attribute classifier (module docstring). ``forward`` → ``{attribute: logits}``."""

    def __init__(self, config: EvaluatorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or EvaluatorConfig()
        chans = (3, *config.widths)
        self.features = nn.Sequential(*[_stage(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.heads = nn.ModuleDict({n: nn.Linear(2 * chans[-1], len(c)) for n, c in config.attributes.items()})

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(self.config.attributes)

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"evaluator input must be images [B, 3, H, W] in [-1, 1], got {list(images.shape)}")
        x = images.to(next(self.parameters()).dtype)
        s = self.config.size
        if tuple(x.shape[-2:]) != (s, s):
            shrink = x.shape[-1] > s or x.shape[-2] > s
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=shrink)
        return x

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(self._prepare(images))
        pooled = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return {n: head(pooled) for n, head in self.heads.items()}

    def predict_indices(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{attribute: [B] int64 class index}`` (eval mode, no gradients)."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                return {n: v.argmax(dim=1) for n, v in self(images).items()}
        finally:
            self.train(was)

    def predict(self, images: torch.Tensor) -> dict[str, list[str]]:
        """``{attribute: [value per image]}`` for images ``[B, 3, H, W]`` in [-1, 1]."""
        idx = self.predict_indices(images)
        return {n: [self.config.attributes[n][int(i)] for i in v] for n, v in idx.items()}

    # ------------------------------------------------------------------------ files
    def save(self, dest: str | os.PathLike[str], extra_metadata: Mapping[str, str] | None = None,
             half: bool = False) -> Path:
        """Write the native ``.safetensors`` (``half``: store floating tensors as fp16)."""
        from safetensors.torch import save_file

        dest = Path(dest)
        if dest.suffix != ".safetensors":
            raise InputError(f"{dest}: native model files end in .safetensors")
        tensors = {}
        for k, v in self.state_dict().items():
            v = v.detach().cpu().contiguous()
            tensors[k] = storage_half(v) if half else v
        meta = {"format": "pt", "format_name": NATIVE_FORMAT, "format_version": NATIVE_VERSION,
                "config": self.config.to_json()}
        meta.update(extra_metadata or {})
        with atomic_path(dest) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return dest

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Evaluator:
        """Load a native evaluator file (fp16 tensors are widened to fp32); eval mode, frozen."""
        path, sd, meta = read_state_dict(path)
        if meta.get("format_name") != NATIVE_FORMAT:
            raise ModelLoadError(f"{path}: not a cfs evaluator file (format_name={meta.get('format_name')!r})")
        try:
            config = EvaluatorConfig.from_json(meta["config"])
        except (KeyError, ValueError, TypeError, InputError) as exc:
            raise ModelLoadError(f"{path}: invalid evaluator metadata ({exc})") from None
        net = cls(config)
        sd = {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}
        try:
            net.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise ModelLoadError(f"{path}: evaluator weights do not match its config ({exc})") from None
        return net.eval().requires_grad_(False).to(device)

    def describe(self) -> dict[str, Any]:
        """Architecture and parameter count (for listings)."""
        return {"size": self.config.size, "widths": list(self.config.widths), "attributes": list(self.attributes),
                "parameters": sum(p.numel() for p in self.parameters())}
