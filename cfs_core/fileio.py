"""Small file helpers shared by every writer in cfs: atomic writes and content hashes.

Nothing a user made is ever left half-written: every file cfs writes goes to a temporary name in
the destination folder first and is renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on success rename it onto ``dest``.

    On any exception the temporary file is removed and ``dest`` is untouched. The temporary name
    keeps ``dest``'s suffix so that writers choosing a format by extension (PIL) still work.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".part{dest.suffix}", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a finished file gets the usual mode
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(dest: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``dest`` atomically."""
    atomic_write_bytes(dest, text.encode("utf-8"))


def storage_half(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` as fp16 for storage when that is lossless in range: floating tensors whose
    values fit fp16 (|x| <= 65504) become fp16; others (integers, and e.g. BatchNorm running
    variances of 1.6e5 in the demo encoder, which would turn to inf) are kept as they are."""
    import torch

    if not tensor.is_floating_point() or tensor.dtype == torch.float16:
        return tensor
    if tensor.numel() and float(tensor.detach().abs().max()) > float(torch.finfo(torch.float16).max):
        return tensor
    return tensor.half()
