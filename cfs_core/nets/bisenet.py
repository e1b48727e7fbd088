"""BiSeNet face parser of face-parsing.PyTorch (``79999_iter.pth``), with its key names and quirks.

Spec: parity README §6 (reduced configuration, pitfalls); ``clipfaceshop.md`` §2.6 for what the
parser is used for. Module tree (``zllrunning/face-makeup.PyTorch`` ``model.py`` + ``resnet.py``;
the spatial path was deleted upstream and has no keys):

* ``cp.resnet``: ResNet-18 (``conv1`` 7×7/2 no bias, ``bn1``, max-pool 3/2/1, ``layer1..4`` of two
  ``BasicBlock``s each, ``downsample`` = 1×1 conv + BN where channels or stride change; ReLU
  after the residual sum) returning the 1/8, 1/16 and 1/32 maps;
* ``cp.arm16``/``cp.arm32``: attention refinement (ConvBNReLU 3×3, global average, 1×1 conv
  without bias, ``bn_atten``, sigmoid, multiply); ``cp.conv_avg`` (ConvBNReLU 1×1 on the global
  average of layer4), ``cp.conv_head32``/``cp.conv_head16`` (ConvBNReLU 3×3); every upsampling
  inside the context path is **nearest**;
* ``ffm``: feature fusion of ``cat[layer2 output, context 1/8 feature]`` (ConvBNReLU 1×1, global
  average, 1×1 to C/4, ReLU, 1×1 back, sigmoid, ``feat * atten + feat``);
* ``conv_out``, ``conv_out16`` (on the 1/8 context feature), ``conv_out32`` (on the 1/16 one):
  ConvBNReLU 3×3 then 1×1 conv without bias; each output is upsampled to the input size with
  **bilinear, align_corners=True**. ``forward`` returns ``(out, out16, out32)``; parsing uses ``out``.

Widths are configurable (:class:`BiSeNetConfig`) so the tiny parity fixture runs through the same
code. Labels come in face-parsing.PyTorch's order (:data:`BISENET_LABELS`), which differs from
CelebAMask-HQ's; :data:`BISENET_TO_CELEBAMASK` reorders them (the :class:`~cfs_core.nets.parsing.Parser`
wrapper does it). The public model expects 512×512 ImageNet-normalised input (demo ``test.py``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.checkpoints import is_num_batches_tracked, load_state_checked, read_state_dict
from cfs_core.errors import ModelLoadError
from cfs_core.nets.protocols import CELEBAMASK_LABELS

# face-parsing.PyTorch's label order (index = output channel of 79999_iter.pth).
BISENET_LABELS: tuple[str, ...] = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)
# logits_celebamask = logits_bisenet[:, BISENET_TO_CELEBAMASK]
BISENET_TO_CELEBAMASK: tuple[int, ...] = tuple(BISENET_LABELS.index(name) for name in CELEBAMASK_LABELS)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class BiSeNetConfig:
    """Widths of a BiSeNet (defaults = ``BiSeNet(n_classes=19)``, i.e. ``79999_iter.pth``).

    ``widths``: ResNet-18 stem and ``layer1..4`` outputs; ``cp``: context-path width (ARMs, heads,
    ``conv_avg``); ``ffm``: fusion width (also ``conv_out``'s middle width); ``mid``: middle width of
    ``conv_out16``/``conv_out32``. The fusion input is ``widths[2] + cp``.
    """

    widths: tuple[int, int, int, int, int] = (64, 64, 128, 256, 512)
    cp: int = 128
    ffm: int = 256
    mid: int = 64
    n_classes: int = 19

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if len(self.widths) != 5 or min(self.widths) < 1 or min(self.cp, self.ffm, self.mid, self.n_classes) < 1:
            raise ValueError(f"invalid BiSeNet widths {self.widths}, cp {self.cp}, ffm {self.ffm}, mid {self.mid}")
        if self.ffm < 4:
            raise ValueError("BiSeNet ffm width must be at least 4 (its attention uses ffm // 4)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BiSeNetConfig:
        unknown = set(d) - {"widths", "cp", "ffm", "mid", "n_classes"}
        if unknown:
            raise ValueError(f"unknown BiSeNet config keys: {sorted(unknown)}")
        return cls(**{k: (tuple(v) if k == "widths" else v) for k, v in d.items()})


class ConvBNReLU(nn.Module):
    """``conv`` (no bias) + ``bn`` + ReLU."""

    def __init__(self, cin: int, cout: int, ks: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size=ks, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet basic block; ReLU after the residual sum."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Sequential | None = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = self.downsample(x) if self.downsample is not None else x
        return F.relu(shortcut + residual)


class Resnet18(nn.Module):
    """ResNet-18 trunk returning the 1/8, 1/16 and 1/32 feature maps."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        w = widths
        self.conv1 = nn.Conv2d(3, w[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w[0])
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(w[0], w[1], 1), BasicBlock(w[1], w[1]))
        self.layer2 = nn.Sequential(BasicBlock(w[1], w[2], 2), BasicBlock(w[2], w[2]))
        self.layer3 = nn.Sequential(BasicBlock(w[2], w[3], 2), BasicBlock(w[3], w[3]))
        self.layer4 = nn.Sequential(BasicBlock(w[3], w[4], 2), BasicBlock(w[4], w[4]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        feat32 = self.layer4(feat16)
        return feat8, feat16, feat32


class AttentionRefinementModule(nn.Module):
    """ConvBNReLU, then channel attention from the global average (``conv_atten``, ``bn_atten``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, kernel_size=1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        atten = torch.sigmoid(self.bn_atten(self.conv_atten(F.avg_pool2d(feat, feat.shape[2:]))))
        return feat * atten


class ContextPath(nn.Module):
    """ResNet-18 + ARMs + global context; nearest upsampling throughout."""

    def __init__(self, cfg: BiSeNetConfig) -> None:
        super().__init__()
        w, c = cfg.widths, cfg.cp
        self.resnet = Resnet18(w)
        self.arm16 = AttentionRefinementModule(w[3], c)
        self.arm32 = AttentionRefinementModule(w[4], c)
        self.conv_head32 = ConvBNReLU(c, c)
        self.conv_head16 = ConvBNReLU(c, c)
        self.conv_avg = ConvBNReLU(w[4], c, ks=1, padding=0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        avg = self.conv_avg(F.avg_pool2d(feat32, feat32.shape[2:]))
        avg_up = F.interpolate(avg, feat32.shape[2:], mode="nearest")
        feat32_up = F.interpolate(self.arm32(feat32) + avg_up, feat16.shape[2:], mode="nearest")
        feat32_up = self.conv_head32(feat32_up)
        feat16_up = F.interpolate(self.arm16(feat16) + feat32_up, feat8.shape[2:], mode="nearest")
        feat16_up = self.conv_head16(feat16_up)
        return feat8, feat16_up, feat32_up  # 1/8, 1/8, 1/16


class FeatureFusionModule(nn.Module):
    """``convblk`` on the concatenation, then ``feat * atten + feat`` with a squeeze-excite attention."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, ks=1, padding=0)
        self.conv1 = nn.Conv2d(cout, cout // 4, kernel_size=1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, kernel_size=1, bias=False)

    def forward(self, fsp: torch.Tensor, fcp: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(F.avg_pool2d(feat, feat.shape[2:])))))
        return feat * atten + feat


class BiSeNetOutput(nn.Module):
    """ConvBNReLU 3×3 then a 1×1 classifier without bias."""

    def __init__(self, cin: int, mid: int, n_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, n_classes, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """``BiSeNet(n_classes)`` of face-parsing.PyTorch; ``forward(x)`` → ``(out, out16, out32)``.

    ``x``: ImageNet-normalised ``[B, 3, H, W]``; outputs ``[B, n_classes, H, W]`` in
    :data:`BISENET_LABELS` order. :meth:`logits` returns ``out`` only.
    """

    def __init__(self, config: BiSeNetConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or BiSeNetConfig()
        self.cp = ContextPath(cfg)
        self.ffm = FeatureFusionModule(cfg.widths[2] + cfg.cp, cfg.ffm)
        self.conv_out = BiSeNetOutput(cfg.ffm, cfg.ffm, cfg.n_classes)
        self.conv_out16 = BiSeNetOutput(cfg.cp, cfg.mid, cfg.n_classes)
        self.conv_out32 = BiSeNetOutput(cfg.cp, cfg.mid, cfg.n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = x.shape[2:]
        feat_res8, feat_cp8, feat_cp16 = self.cp(x)
        feat_fuse = self.ffm(feat_res8, feat_cp8)
        outs = (self.conv_out(feat_fuse), self.conv_out16(feat_cp8), self.conv_out32(feat_cp16))
        up = [F.interpolate(o, size, mode="bilinear", align_corners=True) for o in outs]
        return up[0], up[1], up[2]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The first output only (what parsing uses), without computing the two auxiliary heads."""
        feat_res8, feat_cp8, _ = self.cp(x)
        out = self.conv_out(self.ffm(feat_res8, feat_cp8))
        return F.interpolate(out, x.shape[2:], mode="bilinear", align_corners=True)


def infer_bisenet_config(sd: Mapping[str, torch.Tensor]) -> BiSeNetConfig:
    """The :class:`BiSeNetConfig` whose module has the shapes of state dict ``sd``."""
    names = ["cp.resnet.conv1.weight"] + [f"cp.resnet.layer{i}.0.conv1.weight" for i in range(1, 5)]
    names += ["cp.arm16.conv.conv.weight", "ffm.convblk.conv.weight", "conv_out16.conv.conv.weight",
              "conv_out.conv_out.weight"]
    missing = [n for n in names if n not in sd]
    if missing:
        raise ModelLoadError(f"not a BiSeNet state dict (no {missing[0]})")
    w = tuple(int(sd[n].shape[0]) for n in names[:5])
    try:
        return BiSeNetConfig(widths=w, cp=int(sd[names[5]].shape[0]), ffm=int(sd[names[6]].shape[0]),  # type: ignore[arg-type]
                             mid=int(sd[names[7]].shape[0]), n_classes=int(sd[names[8]].shape[0]))
    except ValueError as exc:
        raise ModelLoadError(f"BiSeNet shapes give no valid architecture ({exc})") from None


def build_bisenet(sd: Mapping[str, torch.Tensor], path: Path | str, config: BiSeNetConfig | None = None) -> BiSeNet:
    """A :class:`BiSeNet` with ``sd`` loaded strictly (``num_batches_tracked`` optional), in eval mode."""
    try:
        cfg = config or infer_bisenet_config(sd)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path}: {exc}") from None
    net = BiSeNet(cfg)
    load_state_checked(net, sd, path, "BiSeNet parser", is_num_batches_tracked)
    return net.eval().requires_grad_(False)


def load_bisenet(path: str | os.PathLike[str]) -> BiSeNet:
    """Load ``79999_iter.pth`` (a plain state dict, read with ``weights_only``) or a bare safetensors
    state dict; the widths come from the tensor shapes."""
    path, sd, _ = read_state_dict(path)
    return build_bisenet(sd, path)
