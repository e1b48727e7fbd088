"""What losses, methods and metrics may expect of each named resource.

Resource names (``requires`` of methods, losses and metrics) and their protocols:

* ``"clip"`` → :class:`ClipEncoder`: joint image/text embedding space;
* ``"identity"`` → :class:`IdentityEncoder`: ArcFace-style face embeddings;
* ``"parser"`` → :class:`FaceParser`: per-pixel CelebAMask-HQ classes;
* ``"encoder"`` → :class:`ImageEncoder`: image → W+ inversion.

All image tensors are ``[B, 3, H, W]`` in [-1, 1] (the generator's range) unless stated.
Embeddings are L2-normalised along the last dim. Small fakes for tests are in
:mod:`cfs_core.testing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

CLIP = "clip"
IDENTITY = "identity"
PARSER = "parser"
ENCODER = "encoder"

# CelebAMask-HQ's 19 classes in the order of its U-Net parser (and of cfs' synthetic world).
CELEBAMASK_LABELS: tuple[str, ...] = (
    "background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
    "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)

# Named regions as sets of labels (for masks).
REGIONS: dict[str, tuple[str, ...]] = {
    "background": ("background",),
    "cloth": ("cloth",),
    "outside_face": ("background", "cloth"),  # what ClipFaceShop's background loss keeps fixed
    "hair": ("hair",),
    "face": ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
             "mouth", "u_lip", "l_lip", "ear_r"),
    "head": ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
             "mouth", "u_lip", "l_lip", "ear_r", "hair", "hat"),
}


@runtime_checkable
class ClipEncoder(Protocol):
    """Resource ``"clip"``: a CLIP model behind cfs' preprocessing rules."""

    embed_dim: int

    def encode_generated(self, images: torch.Tensor) -> torch.Tensor:
        """Generator images ``[B, 3, H, W]`` in [-1, 1] → ``[B, D]`` unit vectors, differentiable.

        Uses the adapter's configured mode for generated images (the references' path by
        default: nearest ×7 upsampling, average pooling to the model's input size, no mean/std
        normalisation).
        """
        ...

    def encode_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """Guidance images (uint8 RGB ``[H, W, 3]``) → ``[N, D]`` unit vectors, standard
        preprocessing, no gradients, cached by content."""
        ...

    def encode_text(self, texts: Sequence[str], templates: bool = False) -> torch.Tensor:
        """Texts → ``[N, D]`` unit vectors (no gradients, cached by content). With
        ``templates=True`` each text is averaged over the 79 ImageNet prompt templates."""
        ...


@runtime_checkable
class IdentityEncoder(Protocol):
    """Resource ``"identity"``: face-identity embeddings (ArcFace IR-SE)."""

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [-1, 1], any size → ``[B, E]`` unit vectors, differentiable."""
        ...


@runtime_checkable
class FaceParser(Protocol):
    """Resource ``"parser"``: per-pixel face parsing in CelebAMask-HQ's 19 classes."""

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [-1, 1] → ``[B, 19, H, W]`` logits in :data:`CELEBAMASK_LABELS` order."""
        ...

    def region_mask(self, images: torch.Tensor, region: str) -> torch.Tensor:
        """Soft mask ``[B, 1, H, W]`` in [0, 1] of a :data:`REGIONS` name, differentiable."""
        ...


@runtime_checkable
class ImageEncoder(Protocol):
    """Resource ``"encoder"``: inversion of images into the generator's W+."""

    def invert(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` in [-1, 1] → W+ codes ``[B, L, D]`` of the paired generator."""
        ...


def unit(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """L2-normalise along the last dim."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


@torch.no_grad()
def mean_unit_image_embedding(clip: ClipEncoder, images: Sequence[np.ndarray], chunk: int = 64) -> torch.Tensor:
    """The mean of the unit CLIP image embeddings of uint8 RGB ``images`` (CLIP's standard
    preprocessing, :meth:`ClipEncoder.encode_images`), ``[D]`` float32 on the CPU, **not**
    re-normalised — ClipFaceShop's base-clipart embedding when the images are plain cliparts."""
    if not images:
        raise ValueError("mean_unit_image_embedding: no images")
    total: torch.Tensor | None = None
    for start in range(0, len(images), chunk):
        emb = unit(clip.encode_images(list(images[start:start + chunk])).float()).sum(0).cpu()
        total = emb if total is None else total + emb
    assert total is not None
    return total / len(images)
