"""The demo pack's shipped files: they match their cards, load through the public loaders, and work."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from cfs_core.fileio import sha256_file

DEMO = Path(str(resources.files("cfs_registry").joinpath("demo")))
CARDS = sorted(DEMO.glob("*.json"))


@pytest.mark.parametrize("card", CARDS, ids=[c.stem for c in CARDS])
def test_card_matches_its_file(card: Path) -> None:
    data = json.loads(card.read_text())
    path = DEMO / data["file"]
    assert path.stat().st_size == data["bytes"]
    assert sha256_file(path) == data["sha256"]
    assert data["evaluation"]["command"] and data["trained_with"].startswith("cfs demo train")


def test_total_size_is_within_budget() -> None:
    assert sum(p.stat().st_size for p in DEMO.glob("*.safetensors")) <= 60 * 1024 * 1024


def test_shipped_parser_parses_held_out_faces() -> None:
    from cfs_core.nets.parsing import Parser
    from cfs_core.nets.protocols import FaceParser
    from cfs_core.training.loops import evaluate_parser

    parser = Parser.from_file(DEMO / "parser.safetensors")
    assert isinstance(parser, FaceParser)
    result = evaluate_parser(parser, n=24, size=128, batch=24)
    card = json.loads((DEMO / "parser.json").read_text())
    assert result["mean_iou"] >= card["evaluation"]["bar"] - 0.05  # 24 faces: a little below the n=500 figure is noise
