"""The dataset writer writes what its manifest says, resumes, and refuses mixed options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cfs_core.errors import InputError
from cfs_core.world import (
    FaceParams,
    benchmark,
    gallery,
    item_seed,
    read_manifest,
    sample_params,
    write_dataset,
)


def test_writes_what_the_manifest_says(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    summary = write_dataset(tmp_path, 3, ("photo", "sketch"), size=64, seed=5, n_captions=2,
                            progress=lambda done, total: calls.append((done, total)))
    assert (summary.written, summary.skipped) == (3, 0)
    assert calls == [(1, 3), (2, 3), (3, 3)]
    items = read_manifest(tmp_path)
    assert [item["id"] for item in items] == ["000000", "000001", "000002"]
    for index, item in enumerate(items):
        assert item["seed"] == item_seed(5, index)
        params = FaceParams.from_dict(item["params"])
        assert params == sample_params(item["seed"])
        assert set(item["images"]) == {"photo", "sketch"}
        for rel in item["images"].values():
            with Image.open(tmp_path / rel) as image:
                assert (image.size, image.mode) == ((64, 64), "RGB")
        labels = np.asarray(Image.open(tmp_path / item["labels"]))
        assert labels.shape == (64, 64) and labels.max() < 19
        record = json.loads((tmp_path / item["record"]).read_text())
        assert record["params"] == item["params"] and record["captions"] == item["captions"]
        assert set(item["captions"]) == {"plain", "photo", "sketch"}
        assert all(len(texts) == 2 for texts in item["captions"].values())
    config = json.loads((tmp_path / "world.json").read_text())
    assert config["n"] == 3 and config["options"]["styles"] == ["photo", "sketch"]
    assert config["labels"][13] == "hair"


def test_resumes_and_extends(tmp_path: Path) -> None:
    write_dataset(tmp_path, 3, ("clipart",), size=64)
    first = (tmp_path / "clipart/000001.png").read_bytes()
    again = write_dataset(tmp_path, 3, ("clipart",), size=64)
    assert (again.written, again.skipped) == (0, 3)
    (tmp_path / "params/000001.json").unlink()  # as if interrupted before the item finished
    resumed = write_dataset(tmp_path, 4, ("clipart",), size=64)
    assert (resumed.written, resumed.skipped) == (2, 2)
    assert (tmp_path / "clipart/000001.png").read_bytes() == first
    assert len(read_manifest(tmp_path)) == 4
    assert not list(tmp_path.rglob("*.part*"))  # no temporary files left behind


def test_refuses_other_options_in_the_same_folder(tmp_path: Path) -> None:
    write_dataset(tmp_path, 1, ("clipart",), size=64)
    with pytest.raises(InputError, match="made with size=64"):
        write_dataset(tmp_path, 1, ("clipart",), size=128)
    with pytest.raises(InputError, match="unknown style 'oil'"):
        write_dataset(tmp_path / "other", 1, ("oil",))
    with pytest.raises(InputError, match="n must be at least 1"):
        write_dataset(tmp_path / "other", 0)


def test_parallel_workers_write_the_same_dataset(tmp_path: Path) -> None:
    write_dataset(tmp_path / "one", 4, ("sketch",), size=64)
    write_dataset(tmp_path / "two", 4, ("sketch",), size=64, workers=2)
    assert read_manifest(tmp_path / "one") == read_manifest(tmp_path / "two")
    for index in range(4):
        name = f"sketch/{index:06d}.png"
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_gallery_and_benchmark() -> None:
    image = gallery(2, 3, 64, styles=("photo", "clipart"))
    assert image.shape == (2 * 64, 2 * 3 * 64 + 16, 3)
    assert np.array_equal(image[:64, :64], gallery(1, 1, 64, styles=("photo",)))
    rates = benchmark(64, 3, ("clipart",))
    assert set(rates) == {"clipart", "labels"} and all(r > 0 for r in rates.values())
