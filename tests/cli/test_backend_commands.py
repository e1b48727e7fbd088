"""``cfs generate``, ``cfs models inspect|convert`` and ``cfs bench generator`` end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file
from typer.testing import Result

FIX = Path(__file__).parent.parent / "fixtures" / "stylegan2"
Cfs = Callable[..., Result]


def test_help_lists_the_groups(cfs: Cfs) -> None:
    result = cfs("--help")
    assert result.exit_code == 0
    for name in ("generate", "models", "world", "bench"):
        assert name in result.stdout


def test_generate_folder_is_deterministic(cfs: Cfs, tmp_path: Path) -> None:
    for out in ("a", "b"):
        result = cfs("generate", "--model", FIX / "ros_converted_tiny.pt", "--seed", "7", "--n", "3",
                     "--truncation", "0.7", "--out", tmp_path / out, "--latents", tmp_path / f"{out}.safetensors")
        assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["seed7_0000.png", "seed7_0001.png", "seed7_0002.png"]
    for name in files:
        a, b = (np.asarray(Image.open(tmp_path / d / name)) for d in ("a", "b"))
        assert a.shape == (32, 32, 3) and np.array_equal(a, b)
    assert load_file(tmp_path / "a.safetensors")["wplus"].shape == (3, 8, 32)
    first = np.asarray(Image.open(tmp_path / "a" / files[0]))
    assert not np.array_equal(first, np.asarray(Image.open(tmp_path / "a" / files[1])))


def test_generate_grid_file_and_architecture_name(cfs: Cfs, tmp_path: Path) -> None:
    result = cfs("generate", "--model", "test-tiny", "--n", "4", "--out", tmp_path / "grid.png")
    assert result.exit_code == 0
    assert "random weights" in result.stderr
    assert Image.open(tmp_path / "grid.png").size == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-arch"], "unknown stylegan2 architecture 'no-such-arch'"),
        (["--model", "missing/file.pt"], "no such file"),
        (["--model", str(FIX / "tiny_d_weights.safetensors")], "no generator"),
        (["--model", "test-tiny", "--noise", "loud"], "--noise must be const or random"),
        (["--model", "test-tiny", "--latents", "w.npy"], "must end in .safetensors"),
    ],
)
def test_generate_bad_input_is_one_line(cfs: Cfs, tmp_path: Path, args: list[str], message: str) -> None:
    result = cfs("generate", *args, "--out", tmp_path / "x.png")
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("name", ["ros_converted_tiny.pt", "ros_converted_tiny_nokernels.pt", "ros_training_tiny.pt"])
def test_inspect_json(cfs: Cfs, name: str) -> None:
    result = cfs("models", "inspect", FIX / name, "--json")
    assert result.exit_code == 0, result.output
    facts = json.loads(result.stdout)
    g = facts["generators"]["g_ema"]
    assert g["resolution"] == 32 and g["wplus_shape"] == [8, 32] and g["parameters"] == 87_635
    assert g["architecture"]["channels"] == {"4": 48, "8": 40, "16": 24, "32": 16}
    assert len(facts["sha256"]) == 64


def test_inspect_table(cfs: Cfs) -> None:
    result = cfs("models", "inspect", FIX / "ros_training_tiny.pt")
    assert result.exit_code == 0
    for text in ("rosinality-training", "87,635", "8 × 32", "discriminator", "112,961"):
        assert text in result.stdout


def test_convert_then_inspect_and_generate(cfs: Cfs, tmp_path: Path) -> None:
    dst = tmp_path / "tiny.safetensors"
    assert cfs("models", "convert", FIX / "ros_training_tiny.pt", dst, "--with-discriminator").exit_code == 0
    facts = json.loads(cfs("models", "inspect", dst, "--json").stdout)
    assert facts["layout"] == "cfs-native" and "discriminator" in facts
    again = cfs("models", "convert", FIX / "ros_training_tiny.pt", dst)
    assert again.exit_code == 2 and "already exists" in again.stderr
    a = cfs("generate", "--model", dst, "--out", tmp_path / "a.png")
    b = cfs("generate", "--model", FIX / "ros_training_tiny.pt", "--out", tmp_path / "b.png")
    assert a.exit_code == b.exit_code == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png")))


def test_convert_corrupt_source_leaves_nothing(cfs: Cfs, tmp_path: Path) -> None:
    src = tmp_path / "bad.pt"
    src.write_bytes(b"\x80\x04garbage")
    result = cfs("models", "convert", src, tmp_path / "out.safetensors")
    assert result.exit_code == 2
    assert list(tmp_path.iterdir()) == [src]


def test_bench_generator_json(cfs: Cfs) -> None:
    result = cfs("bench", "generator", "--models", "test-tiny", "--batch", "1,2", "--repeats", "1", "--warmup", "0", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [r["batch"] for r in data["results"]] == [1, 2]
    assert all(r["median_ms"] > 0 and r["resolution"] == 32 for r in data["results"])
    bad = cfs("bench", "generator", "--batch", "x")
    assert bad.exit_code == 2 and "comma-separated integers" in bad.stderr


def test_bench_world_is_the_world_benchmark(cfs: Cfs) -> None:
    result = cfs("bench", "world", "--n", "2", "--styles", "clipart", "--size", "64")
    assert result.exit_code == 0, result.output
    assert "clipart" in result.stdout and "images/s at 64px" in result.stdout
