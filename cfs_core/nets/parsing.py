"""The ``"parser"`` resource: face parsing in CelebAMask-HQ's 19 classes, whatever the network.

Spec: ``clipfaceshop.md`` §2.6 (background loss and its mask quirks) and §5 (``mask_net.pth``);
parity README §5–6. :class:`Parser` implements :class:`~cfs_core.nets.protocols.FaceParser`
around either network:

* ``"unet"`` — ClipFaceShop's CelebAMask-HQ U-Net (:mod:`cfs_core.nets.unet`): takes the [-1, 1]
  image as is (it was trained with ``Normalize(0.5, 0.5)``), at any size divisible by 16; other
  sizes are replicate-padded up to a multiple of 16 and the logits cropped back. ClipFaceShop
  feeds 1024² generator output unresized (default ``size=None``).
* ``"bisenet"`` — face-parsing.PyTorch's BiSeNet (:mod:`cfs_core.nets.bisenet`): the image is
  mapped to [0, 1] and ImageNet-normalised inside, resized to 512² (its demo's size, default
  ``size=512``; bilinear, antialiased when shrinking), and its logits are reordered from
  face-parsing.PyTorch's label order into :data:`CELEBAMASK_LABELS` order.

Whatever the size the network runs at, :meth:`Parser.logits` returns ``[B, 19, H, W]`` at the
input's size (bilinear). The network is frozen (eval mode, no parameter gradients) but everything
is differentiable w.r.t. the images. BatchNorm follows :attr:`Parser.batchnorm` (``"eval"`` by
default; ``"batch"`` = ClipFaceShop's train-mode batch statistics without touching the running
statistics; ``"batch_update"`` also updates them, exactly as the reference's side effect).

:meth:`Parser.region_mask` is the saner soft mask (softmax probabilities summed over a region's
labels, per image). :meth:`Parser.faithful_clipfaceshop_mask` reproduces the reference's
``σ(P[0, 0]) + σ(P[0, 18])`` (sigmoid on logits, image 0 only, batch-statistics BatchNorm by
default) broadcast to the batch, for methods' ``faithful`` option.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.checkpoints import read_state_dict
from cfs_core.errors import InputError, ModelLoadError
from cfs_core.fileio import atomic_path
from cfs_core.nets.bisenet import (
    BISENET_TO_CELEBAMASK,
    IMAGENET_MEAN,
    IMAGENET_STD,
    BiSeNet,
    BiSeNetConfig,
    build_bisenet,
)
from cfs_core.nets.protocols import CELEBAMASK_LABELS, REGIONS
from cfs_core.nets.unet import BATCHNORM_MODES, BatchNormMode, UNet, UNetConfig, batchnorm_mode, build_unet

ParserKind = Literal["unet", "bisenet"]
KINDS: tuple[str, ...] = ("unet", "bisenet")
DEFAULT_SIZE: dict[str, int | None] = {"unet": None, "bisenet": 512}
NATIVE_FORMAT = "cfs.parser"
NATIVE_VERSION = "1"
_BACKGROUND = CELEBAMASK_LABELS.index("background")  # 0
_CLOTH = CELEBAMASK_LABELS.index("cloth")  # 18


def label_indices(region: str) -> list[int]:
    """Channel indices (CelebAMask order) of a :data:`REGIONS` name or of a single label name."""
    if region in REGIONS:
        return [CELEBAMASK_LABELS.index(name) for name in REGIONS[region]]
    if region in CELEBAMASK_LABELS:
        return [CELEBAMASK_LABELS.index(region)]
    raise InputError(f"unknown face region '{region}' (regions: {', '.join(REGIONS)}; or a label: {', '.join(CELEBAMASK_LABELS)})")


def region_mask_from_logits(logits: torch.Tensor, region: str) -> torch.Tensor:
    """``[B, 19, H, W]`` CelebAMask logits → ``[B, 1, H, W]`` softmax probability of ``region``."""
    probs = torch.softmax(logits, dim=1)
    return probs[:, label_indices(region)].sum(dim=1, keepdim=True)


def detect_kind(sd: Mapping[str, torch.Tensor]) -> str:
    """``"unet"`` or ``"bisenet"`` from a state dict's key names."""
    if "conv1.conv1.0.weight" in sd and "final.weight" in sd:
        return "unet"
    if "cp.resnet.conv1.weight" in sd:
        return "bisenet"
    raise ModelLoadError("not a face-parser state dict (neither CelebAMask-HQ unet nor BiSeNet keys)")


class Parser(nn.Module):
    """A frozen face parser with cfs' input conventions (module docstring); a ``FaceParser``.

    Args:
        net: a loaded :class:`UNet` or :class:`BiSeNet` with 19 classes.
        size: run the network at ``size × size`` (``None``: at the input's own size);
            ``"default"``: 512 for BiSeNet, ``None`` for the U-Net.
        batchnorm: ``"eval"``, ``"batch"`` or ``"batch_update"`` (see :func:`~cfs_core.nets.unet.batchnorm_mode`).
    """

    net: UNet | BiSeNet

    def __init__(self, net: UNet | BiSeNet, size: int | None | Literal["default"] = "default",
                 batchnorm: BatchNormMode = "eval") -> None:
        super().__init__()
        if isinstance(net, UNet):
            self.kind: str = "unet"
            n_classes = net.config.n_classes
        elif isinstance(net, BiSeNet):
            self.kind = "bisenet"
            n_classes = net.config.n_classes
        else:
            raise TypeError(f"Parser wraps a UNet or a BiSeNet, not {type(net).__name__}")
        if n_classes != len(CELEBAMASK_LABELS):
            raise ModelLoadError(f"a face parser needs {len(CELEBAMASK_LABELS)} classes, this {self.kind} has {n_classes}")
        if batchnorm not in BATCHNORM_MODES:
            raise InputError(f"batchnorm must be one of {', '.join(BATCHNORM_MODES)}, not '{batchnorm}'")
        self.size: int | None = DEFAULT_SIZE[self.kind] if size == "default" else size
        if self.size is not None and (not isinstance(self.size, int) or self.size < 16):
            raise InputError(f"parser size must be an integer >= 16 or None, not {self.size!r}")
        self.batchnorm: BatchNormMode = batchnorm
        self.net = net.eval().requires_grad_(False)
        self.register_buffer("_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_order", torch.tensor(BISENET_TO_CELEBAMASK), persistent=False)
        super().train(False)

    labels_order: tuple[str, ...] = CELEBAMASK_LABELS

    def train(self, mode: bool = True) -> Parser:
        """Always stays in eval mode: BatchNorm behaviour is chosen by :attr:`batchnorm` instead."""
        return super().train(False)

    # ------------------------------------------------------------------------ network input
    def _check(self, images: torch.Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"parser input must be images [B, 3, H, W] in [-1, 1], got {list(images.shape)}")

    def _resize(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) == size:
            return x
        shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)

    def _net_logits(self, x: torch.Tensor, batchnorm: BatchNormMode) -> torch.Tensor:
        """Network logits in the network's own label order at the network's input size."""
        with batchnorm_mode(self.net, batchnorm):
            if self.kind == "bisenet":
                if batchnorm != "eval" and x.shape[0] < 2:
                    # its attention BatchNorms see 1×1 maps: one image gives no batch statistics
                    raise InputError("BiSeNet with batch-statistics BatchNorm needs at least 2 images per call")
                x = ((x + 1) / 2 - self._mean) / self._std
                assert isinstance(self.net, BiSeNet)
                return self.net.logits(x)
            h, w = x.shape[-2:]
            ph, pw = -h % 16, -w % 16
            if ph or pw:
                x = F.pad(x, [0, pw, 0, ph], mode="replicate")
            return self.net(x)[..., :h, :w]

    def _logits(self, images: torch.Tensor, batchnorm: BatchNormMode) -> torch.Tensor:
        self._check(images)
        size = tuple(images.shape[-2:])
        x = images.to(self._mean.dtype)
        if self.size is not None:
            x = self._resize(x, (self.size, self.size))
        out = self._net_logits(x, batchnorm)
        if self.kind == "bisenet":
            out = out.index_select(1, self._order)
        return self._resize(out, size)  # type: ignore[arg-type]

    # ------------------------------------------------------------------------ FaceParser API
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [-1, 1] → ``[B, 19, H, W]`` logits in :data:`CELEBAMASK_LABELS` order."""
        return self._logits(images, self.batchnorm)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(images)

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Softmax over the 19 classes, ``[B, 19, H, W]``."""
        return torch.softmax(self.logits(images), dim=1)

    def region_mask(self, images: torch.Tensor, region: str) -> torch.Tensor:
        """Soft mask ``[B, 1, H, W]`` in [0, 1]: softmax probabilities summed over the labels of
        ``region`` (a :data:`REGIONS` name or one label name), per image, differentiable."""
        indices = label_indices(region)  # validate before running the network
        probs = torch.softmax(self.logits(images), dim=1)
        return probs[:, indices].sum(dim=1, keepdim=True)

    def labels(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, H, W]`` int64 argmax labels in :data:`CELEBAMASK_LABELS` order (no gradients)."""
        with torch.no_grad():
            return self.logits(images).argmax(dim=1)

    def faithful_clipfaceshop_mask(self, images: torch.Tensor, batchnorm: BatchNormMode = "batch") -> torch.Tensor:
        """ClipFaceShop's background mask (§2.6): ``σ(P[0, 0]) + σ(P[0, 18])`` broadcast to ``[B, 1, H, W]``.

        ``P`` is computed on the **whole batch** (train-mode BatchNorm uses its statistics, as the
        never-``eval()``-ed reference does; pass ``batchnorm="eval"`` for running statistics, or
        ``"batch_update"`` to also reproduce the running-statistics side effect), but only image
        0's mask is kept, for every image. Values lie in [0, 2]; sigmoid is applied to the logits.
        """
        p = self._logits(images, batchnorm)
        m = torch.sigmoid(p[0, _BACKGROUND]) + torch.sigmoid(p[0, _CLOTH])
        return m.expand(images.shape[0], 1, *m.shape)

    # ------------------------------------------------------------------------ files
    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor], kind: str = "auto", path: Path | str = "<state dict>",
                        size: int | None | Literal["default"] = "default", batchnorm: BatchNormMode = "eval",
                        config: UNetConfig | BiSeNetConfig | None = None) -> Parser:
        """Build a parser from a state dict; ``kind="auto"`` detects the network from its keys."""
        if kind not in ("auto", *KINDS):
            raise InputError(f"parser kind must be auto, unet or bisenet, not '{kind}'")
        try:
            found = detect_kind(sd)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{path}: {exc}") from None
        if kind != "auto" and kind != found:
            raise ModelLoadError(f"{path}: expected a {kind} parser, the keys are those of a {found}")
        if found == "unet":
            net: UNet | BiSeNet = build_unet(sd, path, config if isinstance(config, UNetConfig) else None)
        else:
            net = build_bisenet(sd, path, config if isinstance(config, BiSeNetConfig) else None)
        return cls(net, size=size, batchnorm=batchnorm)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], kind: str = "auto", device: str | torch.device = "cpu",
                  size: int | None | Literal["default"] = "default", batchnorm: BatchNormMode | None = None) -> Parser:
        """Load ``mask_net.pth``, ``79999_iter.pth``, a bare safetensors state dict, or a cfs native
        parser file (:meth:`save`). The architecture is inferred from tensor shapes (native files
        carry it in their metadata, with their ``size``/``batchnorm`` settings, which explicit
        arguments override)."""
        path, sd, meta = read_state_dict(path)
        config: UNetConfig | BiSeNetConfig | None = None
        if meta.get("format_name") == NATIVE_FORMAT:
            try:
                settings = json.loads(meta["settings"])
                stored_kind = meta["kind"]
                config = (UNetConfig if stored_kind == "unet" else BiSeNetConfig).from_dict(json.loads(meta["config"]))
            except (KeyError, ValueError, TypeError) as exc:
                raise ModelLoadError(f"{path}: invalid cfs parser metadata ({exc})") from None
            if size == "default":
                size = settings.get("size")
            batchnorm = batchnorm or settings.get("batchnorm", "eval")
        parser = cls.from_state_dict(sd, kind, path, size, batchnorm or "eval", config)
        return parser.to(device)

    def save(self, dest: str | os.PathLike[str], extra_metadata: Mapping[str, str] | None = None) -> Path:
        """Write cfs' native parser ``.safetensors``: the network's state dict under its reference
        key names, with kind, architecture config and input settings as JSON in the metadata."""
        from safetensors.torch import save_file

        dest = Path(dest)
        if dest.suffix != ".safetensors":
            raise InputError(f"{dest}: native model files end in .safetensors")
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        meta = {"format": "pt", "format_name": NATIVE_FORMAT, "format_version": NATIVE_VERSION, "kind": self.kind,
                "config": self.net.config.to_json(),
                "settings": json.dumps({"size": self.size, "batchnorm": self.batchnorm}),
                "labels": json.dumps(list(CELEBAMASK_LABELS))}
        meta.update(extra_metadata or {})
        with atomic_path(dest) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return dest

    def describe(self) -> dict[str, Any]:
        """Kind, architecture, settings and parameter count (for listings)."""
        return {"kind": self.kind, "architecture": self.net.config.to_dict(), "size": self.size,
                "batchnorm": self.batchnorm, "parameters": sum(p.numel() for p in self.net.parameters())}


def faithful_clipfaceshop_mask(parser: Parser, images: torch.Tensor, batchnorm: BatchNormMode = "batch") -> torch.Tensor:
    """Module-level alias of :meth:`Parser.faithful_clipfaceshop_mask`."""
    return parser.faithful_clipfaceshop_mask(images, batchnorm)


def load_parser(path: str | os.PathLike[str], kind: str = "auto", device: str | torch.device = "cpu", **kwargs: Any) -> Parser:
    """Alias of :meth:`Parser.from_file`."""
    return Parser.from_file(path, kind=kind, device=device, **kwargs)
