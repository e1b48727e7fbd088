"""Reading model files safely, and loading state dicts with errors that name the keys.

Shared by every network of cfs (StyleGAN2, IR-SE, e4e, parsers, mapper): ``.pt``/``.pth`` files
are read with ``torch.load(weights_only=True)`` only (``argparse.Namespace`` is allowed as plain
data, as rosinality training snapshots need); safetensors files are read with their metadata.
"""

from __future__ import annotations

import argparse
import os
import pickle
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cfs_core.errors import InputError, ModelLoadError, UnsafeCheckpointError


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type name)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_model_path(path: str | os.PathLike[str]) -> Path:
    """The path as a :class:`Path`; one-line errors for a missing file or a directory."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a model file")
    return path


def _looks_like_torch_file(path: Path) -> bool:
    """PyTorch files are zip archives (torch >= 1.6) or legacy pickles (protocol byte 0x80)."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head.startswith(b"PK") or head[:1] == b"\x80"


def _refusal_reason(exc: BaseException) -> str:
    """The informative line of torch's weights-only refusal (which global or opcode)."""
    for line in str(exc).splitlines():
        if "GLOBAL" in line or "Unsupported" in line:
            return line.strip()
    return first_line(exc)


def torch_load_safe(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors; never runs pickled code."""
    path = check_model_path(path)
    if not _looks_like_torch_file(path):
        raise ModelLoadError(f"{path}: not a PyTorch checkpoint (neither a zip archive nor a pickle)")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on pickle protocols: not for users
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"{path}: refused to unpickle it ({_refusal_reason(exc)}); cfs loads only tensors and plain data"
            " from .pt files and never runs pickled code"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable PyTorch checkpoint ({first_line(exc)})") from None


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the metadata of a safetensors file; one-line errors."""
    from safetensors import SafetensorError, safe_open

    path = check_model_path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable safetensors file ({first_line(exc)})") from None
    return tensors, meta


def tensor_dict(obj: Any, path: Path, what: str) -> dict[str, torch.Tensor]:
    """``obj`` as a ``{str: Tensor}`` state dict, or a one-line error naming ``what``."""
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"{path}: '{what}' is not a state dict of tensors")
    return {str(k): v for k, v in obj.items()}


def _shown(keys: list[str]) -> str:
    return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")


def load_state_checked(
    module: nn.Module, sd: Mapping[str, torch.Tensor], path: Path | str, what: str,
    may_be_missing: Callable[[str], bool] = lambda key: False,
) -> None:
    """Strict ``load_state_dict`` whose error names missing, unexpected and mis-shaped keys.

    Keys for which ``may_be_missing(key)`` is true (constants such as FIR kernels, or BatchNorm
    ``num_batches_tracked`` counters) may be absent; the module keeps its own values for them.
    """
    expected = module.state_dict()
    missing = [k for k in expected if k not in sd and not may_be_missing(k)]
    unexpected = [k for k in sd if k not in expected]
    wrong = [f"{k} {tuple(sd[k].shape)}≠{tuple(v.shape)}" for k, v in expected.items() if k in sd and sd[k].shape != v.shape]
    problems = [f"{len(keys)} {label}: {_shown(keys)}" for label, keys in
                (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
    if problems:
        raise ModelLoadError(f"{path}: {what} does not match its architecture: " + "; ".join(problems))
    module.load_state_dict(sd, strict=False)


def strip_module_prefix(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a ``module.`` prefix present on every key (checkpoints saved from ``DataParallel``)."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module."):]: v for k, v in sd.items()}
    return sd


def read_state_dict(path: str | os.PathLike[str], what: str = "state dict") -> tuple[Path, dict[str, torch.Tensor], dict[str, str]]:
    """A network's state dict (and safetensors metadata), read without running pickled code.

    ``.pt``/``.pth``: a plain state dict or a dict with a ``state_dict`` entry; ``.safetensors``:
    every tensor plus the file's metadata. A ``module.`` prefix on every key is dropped.
    """
    path = check_model_path(path)
    meta: dict[str, str] = {}
    if path.suffix == ".safetensors":
        sd, meta = read_safetensors(path)
    else:
        obj = torch_load_safe(path)
        if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
            obj = obj["state_dict"]
        sd = tensor_dict(obj, path, what)
    return path, strip_module_prefix(sd), meta


def is_num_batches_tracked(key: str) -> bool:
    """BatchNorm counters: optional in old checkpoints, never used by eval-mode outputs."""
    return key.endswith("num_batches_tracked")
