"""``cfs world``: render, schema, sample, gallery and bench through the real app."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import Result

from cfs_core.world import (
    SPECS,
    FaceParams,
    colorize_labels,
    render,
    render_labels,
    sample_params,
)

Cli = Callable[..., Result]


def test_render_writes_the_image_labels_params_and_captions(cfs: Cli, tmp_path: Path) -> None:
    out, labels, raw, params = tmp_path / "face.png", tmp_path / "labels.png", tmp_path / "raw.png", tmp_path / "p.json"
    attrs = "hair=long,hair_color=red,glasses=round"
    result = cfs("world", "render", "--attrs", attrs, "--style", "clipart", "--size", 96, "--seed", 3,
                       "--out", out, "--labels", labels, "--params-json", params, "--caption")
    assert result.exit_code == 0, result.output
    face = sample_params(3, hair="long", hair_color="red", glasses="round")
    assert np.array_equal(np.asarray(Image.open(out)), render(face, "clipart", 96, seed=3))
    assert np.array_equal(np.asarray(Image.open(labels)), colorize_labels(render_labels(face, 96)))
    assert FaceParams.from_dict(json.loads(params.read_text())) == face
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 5 and all("long red hair" in line or "round glasses" in line for line in lines[:1])
    assert cfs("world", "render", "--seed", 3, "--size", 64, "--out", out, "--labels", raw,
                     "--labels-raw").exit_code == 0
    assert np.array_equal(np.asarray(Image.open(raw)), render_labels(sample_params(3), 64))


def test_bad_attribute_is_one_error_line_and_exit_2(cfs: Cli, tmp_path: Path) -> None:
    for attrs, words in (("hair=longg", "allowed: bald, short"), ("wings=2", "unknown parameter 'wings'"),
                         ("eye_size=9", "out of range")):
        result = cfs("world", "render", "--attrs", attrs, "--out", tmp_path / "x.png")
        assert result.exit_code == 2
        assert result.stderr.startswith("error: ") and words in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()
    result = cfs("world", "render", "--size", 20, "--out", tmp_path / "x.png")
    assert result.exit_code == 2 and "from 64 to 1024" in result.stderr


def test_schema_json_and_table(cfs: Cli) -> None:
    result = cfs("world", "schema", "--json")
    assert result.exit_code == 0
    assert [p["name"] for p in json.loads(result.stdout)["parameters"]] == list(SPECS)
    table = cfs("world", "schema")
    assert table.exit_code == 0
    assert all(name in table.stdout for name in SPECS) and "mohawk" in table.stdout


def test_sample_writes_and_resumes_a_dataset(cfs: Cli, tmp_path: Path) -> None:
    args = ("world", "sample", "--n", 2, "--styles", "photo,clipart", "--size", 64, "--out", tmp_path, "--seed", 1)
    first = cfs(*args)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == str(tmp_path / "manifest.jsonl")
    assert "2 written, 0 already there" in first.stderr
    assert len((tmp_path / "manifest.jsonl").read_text().splitlines()) == 2
    assert "0 written, 2 already there" in cfs(*args).stderr
    bad = cfs("world", "sample", "--n", 2, "--styles", "photo,oil", "--out", tmp_path / "b")
    assert bad.exit_code == 2 and "unknown style 'oil'" in bad.stderr


def test_gallery_and_bench(cfs: Cli, tmp_path: Path) -> None:
    out = tmp_path / "gallery.png"
    result = cfs("world", "gallery", "--out", out, "--rows", 1, "--cols", 2, "--size", 64,
                       "--styles", "sketch")
    assert result.exit_code == 0 and Image.open(out).size == (128, 64)
    bench = cfs("world", "bench", "--n", 2, "--size", 64, "--styles", "clipart")
    assert bench.exit_code == 0 and "images/s" in bench.stdout
