"""Latent files: formats, shapes, and nothing pickled ever runs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cfs_core.errors import InputError
from cfs_core.latentio import read_latents, write_latents


@pytest.mark.parametrize("suffix", [".safetensors", ".npy"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    w = torch.randn(3, 8, 32)
    back = read_latents(write_latents(tmp_path / f"w{suffix}", w), 8, 32)
    assert torch.equal(back, w)
    assert not list(tmp_path.glob("*.part*"))


@pytest.mark.parametrize(("shape", "batch"), [((8, 32), 1), ((32,), 1), ((5, 32), 5), ((2, 8, 32), 2)])
def test_shapes_broadcast_to_wplus(tmp_path: Path, shape: tuple[int, ...], batch: int) -> None:
    torch.save({"latent": torch.randn(shape)}, tmp_path / "w.pt")
    assert read_latents(tmp_path / "w.pt", 8, 32).shape == (batch, 8, 32)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: np.save(p / "w.npy", np.zeros((2, 7, 32), np.float32)), "do not fit this generator"),
        (lambda p: np.save(p / "w.npy", np.full((1, 8, 32), np.nan, np.float32)), "NaN"),
        (lambda p: np.save(p / "w.npy", np.array([{"a": 1}], dtype=object)), "not a readable latent file"),
        (lambda p: (p / "w.npy").write_bytes(b"junk"), "not a readable latent file"),
        (lambda p: torch.save({"a": torch.zeros(8, 32), "b": torch.zeros(8, 32)}, p / "w.pt"), "expected one latent tensor"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    make(tmp_path)
    path = next(tmp_path.iterdir())
    with pytest.raises(InputError, match=message) as info:
        read_latents(path, 8, 32)
    assert "\n" not in str(info.value)


def test_pickled_code_in_a_latent_file_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    torch.save({"wplus": Evil()}, tmp_path / "w.pt")
    with pytest.raises(InputError, match="refused to unpickle"):
        read_latents(tmp_path / "w.pt", 8, 32)
    assert not marker.exists()
