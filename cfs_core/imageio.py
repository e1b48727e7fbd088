"""Image conversion and saving: generator tensors ([-1, 1], NCHW) ↔ PIL / uint8, atomic PNG writes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cfs_core.fileio import atomic_path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] or [3, H, W] in [-1, 1] → uint8 [B, H, W, 3] (values clamped)."""
    if images.ndim == 3:
        images = images.unsqueeze(0)
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] or [B, H, W, 3] → float [B, 3, H, W] in [-1, 1]."""
    if array.ndim == 3:
        array = array[None]
    return torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).float() / 127.5 - 1


def grid(images: np.ndarray, ncols: int | None = None, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile uint8 [B, H, W, 3] images into one uint8 [H', W', 3] grid."""
    b, h, w, c = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(b)))
    nrows = int(np.ceil(b / ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), fill, np.uint8)
    for i in range(b):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        out[y : y + h, x : x + w] = images[i]
    return out


def save_png(array: np.ndarray, dest: str | os.PathLike[str]) -> Path:
    """Write a uint8 [H, W, 3] or [H, W] array as PNG, atomically."""
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
    return dest


def save_images(images: torch.Tensor, paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Save each image of a [-1, 1] batch to its path (atomic writes)."""
    arrays = to_uint8(images)
    if len(arrays) != len(paths):
        raise ValueError(f"{len(arrays)} images but {len(paths)} paths")
    return [save_png(a, p) for a, p in zip(arrays, paths)]
