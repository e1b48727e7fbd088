"""The base-clipart embedding ``b`` of the gap loss (spec clipfaceshop.md §1.2, §2.0, §2.2).

The gap loss asks the photo's CLIP change to point like "average clipart → target clipart",
``ĝ = unit(t̂ − b̂)``. The reference's ``b`` (``dirs/s/u_fc.pt``) is the **mean of the unit CLIP
ViT-B/32 image embeddings of 1666 plain clipart heads** (not re-normalised; norm 0.92). It only
fits OpenAI's ViT-B/32, so cfs resolves ``b`` per run, in this order (option ``base``):

1. a path: a ``.safetensors``/``.pt``/``.npy`` file holding a ``[D]`` vector (e.g. written by
   :func:`save_base_embedding`), or a folder of clipart images, reduced with
   :func:`base_embedding_from_images` — the reference's procedure, for any CLIP model;
2. ``auto``: the model set's optional resource ``"clip_base"`` (a ``[D]`` tensor) when provided;
3. ``auto`` without that resource, or ``fallback``: :func:`fallback_base_embedding`, computed
   from the CLIP model and the generator alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from cfs_core.errors import InputError
from cfs_core.nets.protocols import CLIP, mean_unit_image_embedding
from cfs_core.artifacts import tensor_digest

if TYPE_CHECKING:
    from cfs_core.methods import EditContext
    from cfs_core.nets.protocols import ClipEncoder
    from cfs_core.stylegan2 import Generator

BASE_RESOURCE = "clip_base"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
VECTOR_SUFFIXES = (".safetensors", ".pt", ".pth", ".npy")
CLIPART_PROMPT, PHOTO_PROMPT = "a clipart of a face", "a photo of a face"
FALLBACK_SAMPLES, FALLBACK_PSI, FALLBACK_SEED, FALLBACK_VERSION = 8, 0.7, 0, 1


def base_embedding_from_images(clip: ClipEncoder, images: Sequence[np.ndarray | str | Path],
                               chunk: int = 64) -> torch.Tensor:
    """The reference's ``u_fc`` procedure for any CLIP model: the mean of the unit CLIP image
    embeddings of a set of clipart images (uint8 RGB arrays or image paths), ``[D]`` float32,
    **not** re-normalised (the gap loss normalises it). Images get CLIP's standard
    preprocessing (``encode_images``), as the target clipart does."""
    from cfs_core.imageio import read_image

    if not images:
        raise InputError("base embedding: no clipart images given")
    total = torch.zeros(())
    for start in range(0, len(images), chunk):  # read a chunk at a time: a clipart set may be large
        arrays = [im if isinstance(im, np.ndarray) else read_image(im) for im in images[start:start + chunk]]
        total = total + mean_unit_image_embedding(clip, arrays, chunk) * len(arrays)
    return total / len(images)


def clipart_files(folder: str | Path) -> list[Path]:
    """The image files (PNG/JPEG/WebP) directly in ``folder``, sorted by name."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of clipart images")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{root}: no PNG/JPEG/WebP images in this folder")
    return files


def save_base_embedding(vector: torch.Tensor, path: str | Path) -> Path:
    """Write a ``[D]`` base embedding as ``.safetensors`` (entry ``clip_base``) for option ``base``
    or a model set's ``clip_base`` resource."""
    from safetensors.torch import save_file

    from cfs_core.fileio import atomic_path

    dest = Path(path)
    with atomic_path(dest) as tmp:
        save_file({BASE_RESOURCE: vector.detach().float().reshape(-1).cpu().contiguous()}, str(tmp))
    return dest


def load_base_embedding(path: str | Path) -> torch.Tensor:
    """Read a ``[D]`` vector from ``.safetensors`` (one tensor, or ``clip_base``), ``.pt`` or ``.npy``."""
    from cfs_core.checkpoints import read_safetensors, torch_load_safe

    src = Path(path).expanduser()
    if src.suffix not in VECTOR_SUFFIXES or not src.is_file():
        raise InputError(f"option 'base': {src} is not a {'/'.join(VECTOR_SUFFIXES)} file or a folder of images")
    try:
        if src.suffix == ".npy":
            obj: object = torch.from_numpy(np.load(src, allow_pickle=False))
        elif src.suffix == ".safetensors":
            tensors = read_safetensors(src)[0]
            obj = tensors.get(BASE_RESOURCE, next(iter(tensors.values())) if len(tensors) == 1 else None)
        else:
            obj = torch_load_safe(src)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a one-line input error
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"option 'base': cannot read {src} ({why})") from None
    if not isinstance(obj, torch.Tensor) or obj.numel() == 0 or obj.squeeze().ndim != 1:
        raise InputError(f"option 'base': {src} must hold one [D] vector")
    return obj.detach().float().reshape(-1)


@torch.no_grad()
def fallback_base_embedding(clip: ClipEncoder, gen: Generator, samples: int = FALLBACK_SAMPLES) -> torch.Tensor:
    """A base embedding from the CLIP model and the generator, when no clipart set is at hand.

    ``b = mean_i ê(G(w_i)) + (τ(clipart) − τ(photo))``: the mean unit CLIP embedding of
    ``samples`` generated faces (ψ 0.7, fixed seed 0) moved by the text direction from
    "a photo of a face" to "a clipart of a face" (both averaged over the prompt templates). A bare
    text embedding would sit on the text side of CLIP's modality gap, so ``t̂ − b̂`` would mostly
    be image-minus-text rather than this-clipart-minus-average-clipart; anchoring on image
    embeddings of faces and shifting by a text *difference* (as StyleGAN-NADA does) keeps ``b``
    on the image side. ``[D]``, not normalised.
    """
    device = gen.input.input.device
    z = torch.randn(samples, gen.style_dim, generator=torch.Generator().manual_seed(FALLBACK_SEED)).to(device)
    w = gen.to_wplus(gen.truncate(gen.mapping(z), FALLBACK_PSI, gen.truncation_center()))
    photos = clip.encode_generated(gen.synthesis(w)).float().mean(0)
    texts = clip.encode_text([CLIPART_PROMPT, PHOTO_PROMPT], templates=True).float().to(photos.device)
    return (photos + texts[0] - texts[1]).cpu()


@dataclass
class BaseSpec:
    """A resolved ``base`` option: where ``b`` comes from, a digest for the cache key, and how to
    compute it (only when training)."""

    source: str
    digest: str
    compute: Callable[[], torch.Tensor]


def resolve_base(ctx: EditContext, option: str) -> BaseSpec:
    """Resolve option ``base`` (``auto``, ``fallback`` or a path) without computing a fallback."""
    if option == "fallback" or (option == "auto" and BASE_RESOURCE not in ctx.resources.available()):
        tag = f"fallback:v{FALLBACK_VERSION}:{FALLBACK_SAMPLES}"
        return BaseSpec("fallback", tag, lambda: fallback_base_embedding(ctx.resources.get(CLIP), ctx.generator))
    if option == "auto":
        vector = torch.as_tensor(ctx.resources.get(BASE_RESOURCE)).detach().float().reshape(-1)
        return BaseSpec(f"resource:{BASE_RESOURCE}", tensor_digest(vector), lambda: vector)
    path = Path(option).expanduser()
    if path.is_dir():
        files = clipart_files(path)
        digest = hashlib.sha256()
        for file in files:
            digest.update(f"{file.name}|".encode())
            digest.update(file.read_bytes())
        return BaseSpec(f"folder:{path}", "images:" + digest.hexdigest(),
                        lambda: base_embedding_from_images(ctx.resources.get(CLIP), files))
    vector = load_base_embedding(path)
    return BaseSpec(f"file:{path}", tensor_digest(vector), lambda: vector)
