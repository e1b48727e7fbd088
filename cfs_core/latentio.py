"""Reading and writing latent codes (W, W+) as files: .safetensors, .npy or .pt.

Reading never runs pickled code (``.npy`` with ``allow_pickle=False``, ``.pt`` with
``weights_only=True``). A file holds one tensor (or a ``wplus``/``latents``/``w`` entry) of
shape ``[B, L, D]`` (W+), ``[L, D]`` (one W+), ``[B, D]`` or ``[D]`` (W, broadcast to W+).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cfs_core.checkpoints import check_model_path, first_line, read_safetensors, torch_load_safe
from cfs_core.errors import InputError, ModelLoadError
from cfs_core.fileio import atomic_path

KEYS = ("wplus", "latents", "latent", "w")
SUFFIXES = (".safetensors", ".npy", ".pt", ".pth")


def _pick(obj: Any, path: Path) -> torch.Tensor:
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, Mapping):
        for key in KEYS:
            if isinstance(obj.get(key), torch.Tensor):
                return obj[key]  # type: ignore[no-any-return]
        tensors = [v for v in obj.values() if isinstance(v, torch.Tensor)]
        if len(tensors) == 1:
            return tensors[0]
    raise InputError(f"{path}: expected one latent tensor (or an entry named {', '.join(KEYS)})")


def read_latents(path: str | os.PathLike[str], n_latent: int, style_dim: int) -> torch.Tensor:
    """Read latents as float32 W+ ``[B, n_latent, style_dim]``; one-line errors for anything else."""
    path = check_model_path(path)
    if path.suffix not in SUFFIXES:
        raise InputError(f"{path}: latent files are {', '.join(SUFFIXES)}")
    try:
        if path.suffix == ".npy":
            tensor = torch.from_numpy(np.load(path, allow_pickle=False))
        elif path.suffix == ".safetensors":
            tensor = _pick(read_safetensors(path)[0], path)
        else:
            tensor = _pick(torch_load_safe(path), path)
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable latent file ({first_line(exc)})") from None
    except ModelLoadError as exc:
        raise InputError(str(exc)) from None
    tensor = tensor.detach().float()
    shape = tuple(tensor.shape)
    if shape == (style_dim,):
        tensor = tensor[None]
    if tensor.ndim == 2 and tensor.shape == (n_latent, style_dim) and n_latent != 1:
        tensor = tensor[None]
    if tensor.ndim == 2 and tensor.shape[1] == style_dim:
        tensor = tensor[:, None].repeat(1, n_latent, 1)
    if tensor.ndim != 3 or tuple(tensor.shape[1:]) != (n_latent, style_dim) or tensor.shape[0] == 0:
        raise InputError(f"{path}: latents of shape {shape} do not fit this generator (W+ is [B, {n_latent}, {style_dim}])")
    if not torch.isfinite(tensor).all():
        raise InputError(f"{path}: latents contain NaN or infinite values")
    return tensor


def write_latents(path: str | os.PathLike[str], wplus: torch.Tensor, metadata: Mapping[str, str] | None = None) -> Path:
    """Write W+ codes as ``.safetensors`` (entry ``wplus``) or ``.npy``, atomically."""
    path = Path(path)
    data = wplus.detach().float().cpu().contiguous()
    with atomic_path(path) as tmp:
        if path.suffix == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, data.numpy())
        elif path.suffix == ".safetensors":
            from safetensors.torch import save_file

            save_file({"wplus": data}, str(tmp), metadata=dict(metadata or {}))
        else:
            raise InputError(f"{path}: write latents as .safetensors or .npy")
    return path
