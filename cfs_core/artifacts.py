"""Content-addressed cache of trained artefacts (ClipFaceShop adaptors, StyleCLIP mappers, …).

A trained artefact is keyed by everything that determined it — the guidance content, the model
digests, the options — so the second edit with the same clipart costs no training. Files are
safetensors (tensors + JSON metadata), written atomically.

:func:`model_digest` identifies any frozen model a method was trained against: an
``nn.Module`` by :func:`fingerprint`; an adapter that wraps modules (the CLIP adapter's
``.model``) or a test fake by the modules, tensors, strings, floats, dtypes, tuples and plain
dicts in its ``__dict__`` — not ints, bools or counters, which are call counts and flags more
often than settings (sizes come with the tensors).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cfs_core.fileio import atomic_path


def fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's state dict (names, shapes, dtypes, values); cached on the module.

    The cached value is reused only while no tensor was replaced or modified in place (tensor
    version counters), so hashing a 30 M-parameter generator happens once per load.
    """
    state = module.state_dict()
    marker = tuple((k, v.data_ptr(), v._version, tuple(v.shape)) for k, v in state.items())
    cached = getattr(module, "_cfs_fingerprint", None)
    if cached is not None and cached[0] == marker:
        return cached[1]  # type: ignore[no-any-return]
    digest = hashlib.sha256()
    for key, value in state.items():
        digest.update(f"{key}|{tuple(value.shape)}|{value.dtype}|".encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    result = digest.hexdigest()
    object.__setattr__(module, "_cfs_fingerprint", (marker, result))
    return result


_PLAIN = (bool, int, float, str)  # allowed inside tuples


def tensor_digest(*tensors: torch.Tensor) -> str:
    """SHA-256 of tensors' shapes, dtypes and values."""
    digest = hashlib.sha256()
    for tensor in tensors:
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{tuple(data.shape)}|{data.dtype}|".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
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


def artifact_key(kind: str, **parts: Any) -> str:
    """A stable key from JSON-able parts (sorted), e.g. guidance digest, model fingerprints, options."""
    blob = json.dumps({"kind": kind, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class ArtifactCache:
    """``root/<kind>/<key>.safetensors``; ``root=None`` disables caching (loads miss, saves skip).

    ``fallbacks`` are read-only folders of the same layout searched after ``root`` (a model set's
    shipped artefacts, e.g. the demo pack's precomputed global-direction statistics): a hit there
    is used as is, and saves always go to ``root``.
    """

    def __init__(self, root: str | os.PathLike[str] | None, fallbacks: Sequence[str | os.PathLike[str]] = ()) -> None:
        self.root = Path(root) if root is not None else None
        self.fallbacks = tuple(Path(f) for f in fallbacks)

    def path(self, kind: str, key: str) -> Path | None:
        """Where the artefact is (root first, then the fallbacks), else where it would be saved."""
        own = self.root / kind / f"{key}.safetensors" if self.root is not None else None
        if own is not None and own.exists():
            return own
        for folder in self.fallbacks:
            shipped = folder / kind / f"{key}.safetensors"
            if shipped.exists():
                return shipped
        return own

    def load(self, kind: str, key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """Tensors and metadata of a cached artefact, or None (also for an unreadable file)."""
        path = self.path(kind, key)
        if path is None or not path.exists():
            return None
        from safetensors import SafetensorError
        from safetensors.torch import load_file, safe_open

        try:
            tensors = load_file(str(path))
            with safe_open(str(path), framework="pt") as handle:
                meta = json.loads((handle.metadata() or {}).get("cfs", "{}"))
        except (SafetensorError, OSError, ValueError):
            return None
        return tensors, meta

    def save(self, kind: str, key: str, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> Path | None:
        """Store an artefact atomically under ``root``; returns its path (None when caching is off)."""
        path = self.root / kind / f"{key}.safetensors" if self.root is not None else None
        if path is None:
            return None
        from safetensors.torch import save_file

        data = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        with atomic_path(path) as tmp:
            save_file(data, str(tmp), metadata={"format": "pt", "cfs": json.dumps(dict(meta), sort_keys=True, default=str)})
        return path
