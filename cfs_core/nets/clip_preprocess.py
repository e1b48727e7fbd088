"""CLIP input preprocessing for generated images, and the 79 ImageNet prompt templates.

Pure torch (no open_clip); used by :mod:`cfs_core.clip`.

Two paths for generator images ``[B, 3, H, W]`` in [-1, 1] (``clipfaceshop.md`` §2.0,
``styleclip_stylegan2.md`` §5, §8, §9 item 1):

* :func:`reference_resize` — the references' ``AvgPool2d(kernel=7·H // S)(Upsample(scale_factor=7,
  mode='nearest')(x))`` (StyleCLIP ``criteria/clip_loss.py``, TargetCLIP, ClipFaceShop
  ``CLIPLoss.encode``), **without** CLIP's mean/std normalisation — the references' quirk, kept on
  purpose. Exact integer rule whenever ``7·H`` is a multiple of the model size ``S`` (1024 → 7168/32
  → 224, 512 → 3584/16 → 224, 256 → 1792/8 → 224, 128 → 896/4 → 224; a 128 px generator and a 64 px
  CLIP: 896/14 → 64). Otherwise (e.g. 16 px → 32 px, or 1000 px → 224 where the reference's
  ``7000 // 224 = 31`` kernel would give 225 px and break the ViT) cfs falls back to **adaptive**
  average pooling of the ×7 nearest-upsampled image (``F.adaptive_avg_pool2d`` bins), which equals
  the integer rule whenever that rule is exact. Height and width are handled separately.
  The ×7 image is never materialised: both steps are linear and separable, so the result is
  ``A_h · x · A_wᵀ`` with a small pooling matrix per axis — identical up to float rounding
  (tested against the literal pipeline at 1024 → 224 and 256 → 224) and free of the 7168² buffer.
* :func:`normalized_resize` — the proper CLIP path: ``(x + 1) / 2``, bicubic (antialiased) resize of
  the shorter side to the model size, centre crop, mean/std normalisation. No clamp, so gradients
  survive pixels slightly outside [-1, 1].

:data:`TEMPLATES` are StyleCLIP's 79 templates for global directions (``styleclip_stylegan2.md``
§7.3): OpenAI's 80 ImageNet templates without ``'a photo of many {}.'`` (commented out in
StyleCLIP ``global_torch/StyleCLIP.py``); the order is OpenAI's (= open_clip
``OPENAI_IMAGENET_TEMPLATES`` minus that one).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

UPSAMPLE = 7  # the references' nearest-upsampling factor

TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.", "a sculpture of a {}.", "a photo of the hard to see {}.",
    "a low resolution photo of the {}.", "a rendering of a {}.", "graffiti of a {}.",
    "a bad photo of the {}.", "a cropped photo of the {}.", "a tattoo of a {}.", "the embroidered {}.",
    "a photo of a hard to see {}.", "a bright photo of a {}.", "a photo of a clean {}.",
    "a photo of a dirty {}.", "a dark photo of the {}.", "a drawing of a {}.", "a photo of my {}.",
    "the plastic {}.", "a photo of the cool {}.", "a close-up photo of a {}.",
    "a black and white photo of the {}.", "a painting of the {}.", "a painting of a {}.",
    "a pixelated photo of the {}.", "a sculpture of the {}.", "a bright photo of the {}.",
    "a cropped photo of a {}.", "a plastic {}.", "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.", "a blurry photo of the {}.", "a photo of the {}.",
    "a good photo of the {}.", "a rendering of the {}.", "a {} in a video game.", "a photo of one {}.",
    "a doodle of a {}.", "a close-up photo of the {}.", "a photo of a {}.", "the origami {}.",
    "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.", "a origami {}.",
    "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
    "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.",
    "a photo of a nice {}.", "a photo of a weird {}.", "a blurry photo of a {}.", "a cartoon {}.",
    "art of a {}.", "a sketch of the {}.", "a embroidered {}.", "a pixelated photo of a {}.",
    "itap of the {}.", "a jpeg corrupted photo of the {}.", "a good photo of a {}.", "a plushie {}.",
    "a photo of the nice {}.", "a photo of the small {}.", "a photo of the weird {}.",
    "the cartoon {}.", "art of the {}.", "a drawing of the {}.", "a photo of the large {}.",
    "a black and white photo of a {}.", "the plushie {}.", "a dark photo of a {}.", "itap of a {}.",
    "graffiti of the {}.", "a toy {}.", "itap of my {}.", "a photo of a cool {}.",
    "a photo of a small {}.", "a tattoo of the {}.",
)


def size_pair(size: int | Sequence[int]) -> tuple[int, int]:
    """``(H, W)`` of an int or a pair (open_clip stores image sizes as either)."""
    if isinstance(size, int):
        return size, size
    h, w = (int(v) for v in size)
    return h, w


def reference_kernel(length: int, size: int) -> int | None:
    """The references' integer ``AvgPool2d`` kernel ``7·length // size`` when it is exact, else None."""
    up = UPSAMPLE * length
    return up // size if up % size == 0 else None


@lru_cache(maxsize=32)
def _pool_matrix(length: int, size: int) -> torch.Tensor:
    """``[size, length]`` float64 matrix of ×7 nearest upsampling followed by (adaptive) avg pooling.

    Bin ``i`` covers upsampled pixels ``[floor(i·U/size), ceil((i+1)·U/size))`` with ``U = 7·length``
    (torch's adaptive pooling bins; with ``U % size == 0`` they are the integer kernel's bins); input
    pixel ``j`` covers ``[7j, 7j + 7)``. The entry is the overlap over the bin length.
    """
    up = UPSAMPLE * length
    i = torch.arange(size, dtype=torch.float64)
    start = torch.div(i * up, size, rounding_mode="floor")
    end = torch.div((i + 1) * up + size - 1, size, rounding_mode="floor")
    j = torch.arange(length, dtype=torch.float64) * UPSAMPLE
    overlap = (torch.minimum(end[:, None], j[None] + UPSAMPLE) - torch.maximum(start[:, None], j[None])).clamp_min(0)
    return overlap / (end - start)[:, None]


def reference_resize(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """The references' ``Upsample(×7, nearest) → AvgPool2d(7·H // S)`` path (see module doc).

    ``images`` ``[B, C, H, W]`` (any range; no normalisation) → ``[B, C, S_h, S_w]``, differentiable.
    """
    if images.ndim != 4:
        raise ValueError(f"expected images [B, C, H, W], got shape {tuple(images.shape)}")
    out_h, out_w = size_pair(size)
    a_h = _pool_matrix(int(images.shape[-2]), out_h).to(device=images.device, dtype=images.dtype)
    a_w = _pool_matrix(int(images.shape[-1]), out_w).to(device=images.device, dtype=images.dtype)
    return torch.matmul(torch.matmul(a_h, images), a_w.T)


def resize_shorter_center_crop(images: torch.Tensor, size: int | Sequence[int]) -> torch.Tensor:
    """Bicubic (antialiased) resize of the shorter side, then centre crop to ``size`` (torchvision
    ``Resize`` + ``CenterCrop`` on tensors, as open_clip's eval transform)."""
    out_h, out_w = size_pair(size)
    h, w = int(images.shape[-2]), int(images.shape[-1])
    scale = max(out_h / h, out_w / w)
    new_h, new_w = max(out_h, round(h * scale)), max(out_w, round(w * scale))
    x = images
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bicubic", align_corners=False, antialias=True)
    top = int(round((new_h - out_h) / 2.0))
    left = int(round((new_w - out_w) / 2.0))
    return x[..., top:top + out_h, left:left + out_w]


def normalized_resize(images: torch.Tensor, size: int | Sequence[int], mean: Sequence[float],
                      std: Sequence[float]) -> torch.Tensor:
    """Proper CLIP input from [-1, 1] images: [0, 1], resize + centre crop, mean/std; differentiable."""
    if images.ndim != 4 or images.shape[1] != len(mean):
        raise ValueError(f"expected images [B, {len(mean)}, H, W], got shape {tuple(images.shape)}")
    x = resize_shorter_center_crop((images + 1.0) / 2.0, size)
    m = torch.tensor(list(mean), dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(list(std), dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s

