"""Reading StyleCLIP's global-direction files: ``fs3.npy`` and ``S_mean_std``.

Spec ``styleclip_stylegan2.md`` §7.1 (``S_mean_std``), §7.2 (``fs3`` rows and their order), §7.5.

* ``fs3.npy``: a numpy ``.npy`` array ``(n_channels, D)``, read with ``allow_pickle=False``. Rows
  are consumed in non-ToRGB StyleSpace order (``mindexs``) and must cover a prefix of those
  layers (5,376 rows = the 11 layers up to 128 px at 1024, 6,048 = all 17); layers without rows
  get zeros when the direction is split (:func:`split_rows`).
* ``S_mean_std``: a **Python pickle** of ``[means, stds]``, two lists of one numpy array per
  StyleSpace layer (26 at 1024, ToRGB included). cfs never unpickles a model file with arbitrary
  globals. ``torch.load(weights_only=True)`` cannot read a plain pickle (it expects torch's own
  container), so the file goes through :class:`NumpyOnlyUnpickler`, a ``pickle.Unpickler``
  whose ``find_class`` resolves exactly the globals numpy arrays need —
  ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct`` (numpy 1 / 2
  names), ``numpy.core.numeric._frombuffer`` / ``numpy._core.numeric._frombuffer`` (protocol 5),
  ``numpy.ndarray``, ``numpy.dtype`` — plus ``_codecs.encode`` (how protocol ≤ 2 pickles store
  bytes). Anything else (``os.system``, ``builtins.eval``, …) is refused before it is called,
  persistent ids too. Loaded values must be float arrays of the generator's StyleSpace sizes.

This restricted unpickler is generic (any numpy-only pickle); if a second plugin needs it, it
belongs in ``cfs_core.checkpoints``.
"""

from __future__ import annotations

import codecs
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cfs_core.checkpoints import check_model_path, first_line
from cfs_core.errors import ModelLoadError, UnsafeCheckpointError
from cfs_core.stylegan2 import Generator

from cfs_plugins.global_directions.precompute import non_torgb_layers, valid_row_counts

_ARRAY = np.zeros(1, dtype=np.float32)
_RECONSTRUCT = _ARRAY.__reduce__()[0]  # numpy's _reconstruct, whatever module numpy keeps it in
_FROMBUFFER = _ARRAY.__reduce_ex__(5)[0]  # numpy's _frombuffer (pickle protocol 5)

ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers, and nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def load_numpy_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle a numpy-only pickle safely; one-line errors (:class:`UnsafeCheckpointError` when refused)."""
    path = check_model_path(path)
    try:
        with open(path, "rb") as handle:
            return NumpyOnlyUnpickler(handle).load()
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(f"{path}: refused to unpickle it ({first_line(exc)}); cfs reads only numpy "
                                    "arrays from StyleCLIP's pickles and never runs pickled code") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError, OSError) as exc:
        raise ModelLoadError(f"{path}: not a readable pickle ({first_line(exc)})") from None


def _float_vector(value: Any, path: Path, what: str, channels: int) -> torch.Tensor:
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        kind = f"{value.dtype} array" if isinstance(value, np.ndarray) else type(value).__name__
        raise ModelLoadError(f"{path}: {what} must be a float numpy array, got {kind}")
    if value.size != channels or value.squeeze().ndim > 1:
        raise ModelLoadError(f"{path}: {what} has shape {value.shape}, this generator's layer has {channels} channels")
    return torch.from_numpy(np.ascontiguousarray(value.reshape(-1), dtype=np.float32))


def load_stats(path: str | os.PathLike[str], gen: Generator) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """StyleCLIP's ``S_mean_std`` → (means, stds), one float32 ``[C_i]`` per StyleSpace layer."""
    path = check_model_path(path)
    obj = load_numpy_pickle(path)
    dims = gen.stylespace_dims
    if not isinstance(obj, (list, tuple)) or len(obj) != 2 or not all(isinstance(x, (list, tuple)) for x in obj):
        raise ModelLoadError(f"{path}: expected StyleCLIP's S_mean_std, a pickled [means, stds] pair of lists")
    means, stds = obj
    if len(means) != len(dims) or len(stds) != len(dims):
        raise ModelLoadError(f"{path}: holds {len(means)} means and {len(stds)} stds; this generator has "
                             f"{len(dims)} StyleSpace layers")
    mean = [_float_vector(m, path, f"mean {i}", c) for i, (m, c) in enumerate(zip(means, dims))]
    std = [_float_vector(s, path, f"std {i}", c) for i, (s, c) in enumerate(zip(stds, dims))]
    return mean, std


def load_fs3(path: str | os.PathLike[str], gen: Generator) -> torch.Tensor:
    """StyleCLIP's ``fs3.npy`` → float32 ``[n_channels, D]``, rows checked against the layer prefixes."""
    path = check_model_path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ModelLoadError(f"{path}: not a readable .npy array ({first_line(exc)})") from None
    if not isinstance(array, np.ndarray) or array.ndim != 2 or array.dtype.kind != "f":
        what = f"{array.dtype} {array.shape}" if isinstance(array, np.ndarray) else type(array).__name__
        raise ModelLoadError(f"{path}: fs3 must be a 2-D float array (n_channels, D), got {what}")
    counts = valid_row_counts(gen)
    if array.shape[0] not in counts:
        raise ModelLoadError(f"{path}: {array.shape[0]} rows match no prefix of this generator's non-ToRGB layers "
                             f"(valid row counts: {', '.join(map(str, counts))})")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def split_rows(values: torch.Tensor, gen: Generator) -> list[torch.Tensor]:
    """Per-channel values in non-ToRGB order → one ``[C_i]`` vector per StyleSpace layer (official
    ``SplitS``): ToRGB layers and layers beyond the covered prefix get zeros."""
    out = [torch.zeros(c, dtype=values.dtype, device=values.device) for c in gen.stylespace_dims]
    offset = 0
    for layer in non_torgb_layers(gen):
        if offset >= values.shape[0]:
            break
        out[layer.index] = values[offset:offset + layer.channels]
        offset += layer.channels
    return out
