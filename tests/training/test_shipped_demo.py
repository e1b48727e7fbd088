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


def _card(name: str) -> dict:
    return json.loads((DEMO / f"{name}.json").read_text())


def _shipped(name: str) -> bool:
    return (DEMO / f"{name}.safetensors").is_file()


@pytest.mark.skipif(not _shipped("generator") or not _shipped("evaluator"), reason="not shipped")
def test_shipped_generator_draws_the_faces_its_latents_name() -> None:
    from cfs_core.nets.evaluator import Evaluator
    from cfs_core.stylegan2 import load_generator
    from cfs_core.training.generator import evaluate_generator

    g = load_generator(DEMO / "generator.safetensors").generator
    figures = evaluate_generator(g, Evaluator.from_file(DEMO / "evaluator.safetensors"), n=24, batch=24)
    card = _card("generator")["evaluation"]
    assert figures["mean_agreement"] >= card["mean_agreement"] - 0.1  # 24 faces vs the card's 500
    assert figures["l1"] <= card["l1"] + 0.05


@pytest.mark.skipif(not _shipped("clip"), reason="not shipped")
def test_shipped_clip_reads_attributes_in_every_style() -> None:
    from cfs_core.clip import ClipModel
    from cfs_core.training.clip import evaluate_clip

    clip = ClipModel.from_file(DEMO / "clip.safetensors")
    figures = evaluate_clip(clip, n=16, batch=16)
    card = _card("clip")["evaluation"]
    assert figures["mean_attribute_accuracy"] >= card["mean_attribute_accuracy"] - 0.1
    red, blue = clip.encode_text(["a photo of a person with long red hair", "a photo of a person with long blue hair"])
    assert float(red @ blue) < 0.999  # the colour word matters


@pytest.mark.skipif(not _shipped("identity"), reason="not shipped")
def test_shipped_identity_net_separates_identities() -> None:
    from cfs_core.nets.identity import IdentityNet
    from cfs_core.training.identity import evaluate_identity

    figures = evaluate_identity(IdentityNet.from_file(DEMO / "identity.safetensors"), n_identities=16, variants=3, size=64)
    assert figures["auc"] >= _card("identity")["evaluation"]["auc"] - 0.1


@pytest.mark.skipif(not _shipped("encoder") or not _shipped("generator"), reason="not shipped")
def test_shipped_encoder_inverts_held_out_photos() -> None:
    from cfs_core.nets.e4e import E4E
    from cfs_core.stylegan2 import load_generator
    from cfs_core.training.encoder import evaluate_encoder

    g = load_generator(DEMO / "generator.safetensors").generator
    figures = evaluate_encoder(E4E.from_file(DEMO / "encoder.safetensors"), g, n=8, batch=8, samples=0)
    assert figures["l1"] < figures["baseline_l1"]  # better than the mean face
    assert figures["l1"] <= _card("encoder")["evaluation"]["l1"] + 0.05


def test_shipped_global_direction_statistics_need_no_warm_up(tmp_path: Path) -> None:
    from cfs_plugins.global_directions.method import GlobalDirections
    from cfs_plugins.global_directions.precompute import non_torgb_layers
    from cfs_registry.plugins import PluginHost
    from cfs_registry.session import ModelSession

    session = ModelSession.open("demo")
    ctx = session.context(PluginHost(), cache_dir=tmp_path)  # an empty user cache: only the shipped files
    options = session.options_for(GlobalDirections, {})
    assert options.n_images == 8  # the demo set's defaults for this small generator
    assert options.all_layers  # its hair colour lives in the 64 px layers, beyond the reference's size/8 cut
    method = GlobalDirections()
    mean, std, info = method.stats(ctx, options)
    assert info["source"] == "cache" and Path(info["path"]).is_relative_to(DEMO / "artifacts")
    fs3, info = method.relevance(ctx, options, ctx.resources.get("clip"), mean, std)
    assert info["source"] == "cache" and Path(info["path"]).is_relative_to(DEMO / "artifacts")
    assert fs3.shape[0] == info["rows"] and not list(tmp_path.iterdir())  # nothing computed, nothing written
    assert info["rows"] == sum(layer.channels for layer in non_torgb_layers(ctx.generator))


def test_the_demo_set_offers_its_clip_base_unless_the_clip_is_replaced(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from cfs_core.errors import InputError
    from cfs_plugins.clipart.base import resolve_base
    from cfs_registry.plugins import PluginHost
    from cfs_registry.session import ModelSession, load_value

    session = ModelSession.open("demo")
    res = session.resources()
    vector = res.get("clip_base")
    assert vector.shape == (res.get("clip").embed_dim,) and 0.0 < float(vector.norm()) < 1.0
    assert session.describe()["values"]["clip_base"].endswith("clip_base.safetensors")
    ctx = session.context(PluginHost(), cache_dir=tmp_path)
    assert resolve_base(ctx, "auto").source == "resource:clip_base"  # ClipFaceShop uses it by default
    other = ModelSession.open("demo", files={"clip": DEMO / "clip.safetensors"})  # a user's CLIP: base withdrawn
    assert "clip_base" not in other.resources().available() and "values" not in other.describe()
    assert resolve_base(other.context(PluginHost(), cache_dir=tmp_path), "auto").source == "fallback"
    two = tmp_path / "two.safetensors"
    save_file({"a": vector, "b": vector.clone()}, str(two))
    with pytest.raises(InputError, match="holds exactly one tensor, found 2"):
        load_value(two)
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(InputError, match="unreadable value file"):
        load_value(tmp_path / "bad.safetensors")


def test_the_clip_base_was_made_with_the_shipped_clip() -> None:
    card = json.loads((DEMO / "clip_base.json").read_text())
    assert card["depends_on"]["clip"] == sha256_file(DEMO / "clip.safetensors")
