"""Content digests for the adaptor cache (spec clipfaceshop.md §1.1: one adaptor per clipart).

A trained adaptor depends on the clipart, on the frozen models it was trained against and on the
training options, so the cache key is built from digests of all of them
(:func:`cfs_core.artifacts.artifact_key`). Models that are ``nn.Module`` are hashed with
:func:`cfs_core.artifacts.fingerprint` (cached on the module); adapters that wrap a module (the
CLIP adapter's ``.model``) hash the module plus their own simple settings; anything else (test
fakes) is hashed from the modules, tensors, strings, floats, dtypes, tuples and plain dicts in its
``__dict__`` — not from ints, bools or counters, which are call counts and flags more often than
settings (sizes come with the tensors).

:func:`model_digest` is generic enough for ``cfs_core.artifacts``; it lives here until a second
plugin needs it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
from torch import nn

from cfs_core.artifacts import fingerprint

_PLAIN = (bool, int, float, str)  # allowed inside tuples


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's shape, dtype and values."""
    data = tensor.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tuple(data.shape)}|{data.dtype}|".encode())
    digest.update(data.view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def model_digest(obj: Any) -> str:
    """A stable digest of a frozen model (generator, CLIP adapter, identity net, parser, fake)."""
    if isinstance(obj, nn.Module):
        return fingerprint(obj)
    digest = hashlib.sha256(f"{type(obj).__module__}.{type(obj).__qualname__}|".encode())
    for name, value in sorted(vars(obj).items()):
        if name.startswith("_"):
            continue
        if isinstance(value, nn.Module):
            digest.update(f"{name}=module:{fingerprint(value)}|".encode())
        elif isinstance(value, torch.Tensor):
            digest.update(f"{name}=tensor:{tensor_digest(value)}|".encode())
        elif isinstance(value, (str, float, torch.dtype)) or (
                isinstance(value, tuple) and all(isinstance(v, _PLAIN) for v in value)):
            digest.update(f"{name}={value!r}|".encode())
        elif type(value) is dict:  # plain configs only (not counters and other mutable state)
            digest.update(f"{name}={json.dumps(value, sort_keys=True, default=str)}|".encode())
    return digest.hexdigest()
