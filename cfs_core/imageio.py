"""Images in and out: safe reading of user files, tensor ↔ uint8 conversion, atomic PNG writes.

Importing this module does not import torch (the tensor helpers import it when called).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cfs_core.errors import InputError
from cfs_core.fileio import atomic_path

if TYPE_CHECKING:
    import torch

READABLE_FORMATS = ("PNG", "JPEG", "WEBP")
# PIL names some files of a readable format otherwise: a camera JPEG carrying a preview picture
# opens as MPO (multi-picture JPEG); its first picture is the photo.
FORMAT_ALIASES = {"MPO": "JPEG"}
MAX_PIXELS = 50_000_000  # refuse larger images (decompression bombs, accidental panoramas)
MIN_SIDE = 16


def read_image(
    path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS, min_side: int = MIN_SIDE,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """Read a PNG, JPEG or WebP file as uint8 RGB ``[H, W, 3]``, whatever its mode.

    EXIF orientation is applied; transparency (RGBA, LA, palette with transparency) is
    composited on ``background``; grayscale, 16-bit and CMYK images become RGB. Missing,
    truncated, corrupt, unsupported, too large or too small files raise
    :class:`~cfs_core.errors.InputError` with a one-line message.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        with Image.open(path) as img:
            if FORMAT_ALIASES.get(str(img.format), img.format) not in READABLE_FORMATS:
                raise InputError(f"{path}: {img.format} images are not supported (use PNG, JPEG or WebP)")
            w, h = img.size
            if w * h > max_pixels:
                raise InputError(f"{path}: image is too large ({w}×{h}; the limit is {max_pixels / 1e6:g} megapixels)")
            if min(w, h) < min_side:
                raise InputError(f"{path}: image is too small ({w}×{h}; at least {min_side} px per side)")
            img.load()
            return _to_rgb(_upright(img), background)
    except InputError:
        raise
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image file (or a format PIL cannot read)") from None
    except Image.DecompressionBombError:
        raise InputError(f"{path}: image is too large (decompression bomb protection)") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{path}: corrupt or truncated image ({exc})") from None


def _upright(img: Image.Image) -> Image.Image:
    """``img`` turned as its EXIF orientation says.

    An unreadable EXIF block leaves the image as stored: the pixels are fine (and PIL's JPEG
    reader already skips such a block, so every format behaves the same).
    """
    try:
        return ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError):
        return img


def _to_rgb(img: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        img = Image.alpha_composite(canvas, rgba)
    elif img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float64)
        # 16-bit modes span 0..65535 even when every value is small; for 32-bit ones, guess
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] or [3, H, W] in [-1, 1] → uint8 [B, H, W, 3] (values clamped)."""
    import torch

    if images.ndim == 3:
        images = images.unsqueeze(0)
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] or [B, H, W, 3] → float [B, 3, H, W] in [-1, 1]."""
    import torch

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
