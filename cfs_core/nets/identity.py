"""The ``"identity"`` resource: ArcFace IR-SE embeddings of generator images (spec §3; ClipFaceShop §2.5).

:class:`IdentityNet` implements :class:`~cfs_core.nets.protocols.IdentityEncoder`. Its
preprocessing is the references' ``IDLoss.extract_feats`` (StyleCLIP ``criteria/id_loss.py``,
ClipFaceShop ``experiments/Losses.py``, pSp/e4e/TargetCLIP), generalised:

Reference (images in [-1, 1], no mean/std normalisation, backbone input 112)::

    if H != 256: x = AdaptiveAvgPool2d((256, 256))(x)
    x = x[:, :, 35:223, 32:220]            # 188×188, not centred
    x = AdaptiveAvgPool2d((112, 112))(x)

Generalised rule (S = the backbone's input size, any input ``H × W``):

1. the *frame* is ``F = round(256 · S / 112)`` pixels square (256 for the 112 backbones);
2. if ``(H, W) != (F, F)`` the image is adaptive-average-pooled to ``F × F`` (upsampling small
   images by the same adaptive pooling, i.e. pixel replication/averaging, as the reference);
3. the crop box is the reference box scaled by ``F / 256`` and rounded to whole pixels: rows
   ``[round(35F/256), round(223F/256))``, columns ``[round(32F/256), round(220F/256))``;
4. the crop is adaptive-average-pooled to ``S × S``.

For ``S = 112`` this is the reference exactly, for every square input size (256, 1024, 64, …).
It differs only for non-square images whose height is already 256 (the reference looks at the
height alone and would crop without resizing). The backbone runs in eval mode with frozen
weights; :meth:`IdentityNet.embed` stays differentiable with respect to the images.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.nets.irse import IRSEBackbone, load_irse

REFERENCE_FRAME = 256  # the references pool every image to 256×256 …
REFERENCE_BOX = (35, 223, 32, 220)  # … and crop rows 35:223, columns 32:220
REFERENCE_INPUT = 112  # IR-SE50's input size


def identity_frame(input_size: int) -> int:
    """Frame size ``F`` the crop box lives in, for a backbone of input size ``S``: ``round(256·S/112)``."""
    return round(REFERENCE_FRAME * input_size / REFERENCE_INPUT)


def identity_crop_box(frame: int = REFERENCE_FRAME) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the face crop in a ``frame × frame`` image (the reference's at 256)."""
    return tuple(round(v * frame / REFERENCE_FRAME) for v in REFERENCE_BOX)  # type: ignore[return-value]


def identity_preprocess(images: torch.Tensor, input_size: int = REFERENCE_INPUT) -> torch.Tensor:
    """``[B, 3, H, W]`` in [-1, 1] → the backbone's ``[B, 3, S, S]`` face crop (rule in the module doc)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images [B, 3, H, W], got {tuple(images.shape)}")
    frame = identity_frame(input_size)
    x = images
    if tuple(x.shape[-2:]) != (frame, frame):
        x = F.adaptive_avg_pool2d(x, (frame, frame))
    top, bottom, left, right = identity_crop_box(frame)
    x = x[:, :, top:bottom, left:right]
    return F.adaptive_avg_pool2d(x, (input_size, input_size))


def identity_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of identity embeddings along the last dim (``[…, E]`` → ``[…]``).

    For the unit embeddings of :meth:`IdentityNet.embed` this is the references' dot product;
    the identity loss is ``mean(1 - identity_similarity(embed(edited), embed(source).detach()))``.
    """
    return F.cosine_similarity(a, b, dim=-1, eps=1e-12)


class IdentityNet(nn.Module):
    """ArcFace IR-SE identity embeddings of face images of any size (resource ``"identity"``)."""

    def __init__(self, backbone: IRSEBackbone) -> None:
        super().__init__()
        self.backbone = backbone.requires_grad_(False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu") -> IdentityNet:
        """Load ``model_ir_se50.pth`` (or any IR-SE file :func:`~cfs_core.nets.irse.load_irse` reads)."""
        return cls(load_irse(path)).to(device)

    def train(self, mode: bool = True) -> IdentityNet:
        """Always eval: BatchNorm statistics and Dropout stay frozen even inside a training module."""
        return super().train(False)

    @property
    def input_size(self) -> int:
        """The backbone's input size ``S`` (112 for IR-SE50)."""
        return self.backbone.input_size

    @property
    def embedding_dim(self) -> int:
        return self.backbone.config.embedding_dim

    @property
    def frame_size(self) -> int:
        return identity_frame(self.input_size)

    @property
    def crop_box(self) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` in the ``frame_size`` image."""
        return identity_crop_box(self.frame_size)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [-1, 1] → ``[B, 3, S, S]`` face crops (see the module doc)."""
        return identity_preprocess(images, self.input_size)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [-1, 1], any size → ``[B, E]`` unit embeddings, differentiable w.r.t. images."""
        param = next(self.backbone.parameters())
        return self.backbone(self.preprocess(images.to(device=param.device, dtype=param.dtype)))

    forward = embed
