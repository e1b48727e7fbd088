"""Every shipped card and model set validates; the cache folder, the index, sets resolution."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from zoo_helpers import card_data  # type: ignore[import-not-found]

from cfs_core.errors import InputError
from cfs_registry import modelsets
from cfs_registry.architectures import list_architectures
from cfs_registry.zoo import Card, Zoo, default_cache_dir, load_cards, read_card, shipped_cards_dir

SHIPPED = load_cards([shipped_cards_dir()])
INLINE_FAMILIES = {"e4e", "irse", "unet", "bisenet", "open_clip", "styleclip.levels_mapper", "styleclip.global_directions"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_card_is_complete(name: str) -> None:
    card = read_card(shipped_cards_dir() / f"{name}.json")
    if isinstance(card.architecture, str):
        assert card.kind == "generator" and card.architecture in list_architectures("stylegan2")
    else:
        assert card.architecture.family in INLINE_FAMILIES
    if card.commercial_use == "no":  # say it plainly
        assert "non-commercial" in card.terms.lower()
    assert card.paper.url.startswith("https://") and card.licence and card.terms
    for source in card.sources:
        assert source.url.startswith("https://")
        if "drive.google.com" in source.url:
            assert source.kind == "browser" and source.note  # says how to fetch it by hand


def test_the_issue_s_cards_are_shipped() -> None:
    g = SHIPPED["stylegan2-ffhq-1024.rosinality"]
    assert (g.file, g.bytes, g.sha256) == ("stylegan2-ffhq-config-f.pt", 381_462_551,
                                           "bae494ef77e32a9cd1792a81a3c167692a0e64f6bcd8b06592ff42917e2ed46e")
    e = SHIPPED["e4e-ffhq-1024.omertov"]
    assert (e.file, e.bytes, e.sha256) == ("e4e_ffhq_encode.pt", 1_201_649_680,
                                           "2ace1d9a8c05c10a399bcd500b8dda118f759ff1aac89dbdab7435f2136a0999")
    files = {c.file for c in SHIPPED.values()}
    assert {"model_ir_se50.pth", "mask_net.pth", "79999_iter.pth", "ViT-B-32.pt", "fs3.npy", "S_mean_std"} <= files
    clip = SHIPPED["clip-vit-b-32.openai"]
    assert clip.open_clip is not None and (clip.open_clip["model"], clip.open_clip["pretrained"]) == ("ViT-B-32-quickgelu", "openai")
    assert sum(c.kind == "mapper" for c in SHIPPED.values()) == 14
    kinds = {c.kind for c in SHIPPED.values()}
    assert kinds == {"generator", "encoder", "clip", "identity", "parser", "mapper", "global-directions"}


def test_unknown_sizes_and_hashes_are_null_not_guessed() -> None:
    known = {n for n, c in SHIPPED.items() if c.sha256}
    assert known == {"stylegan2-ffhq-1024.rosinality", "e4e-ffhq-1024.omertov", "clip-vit-b-32.openai"}
    assert {n for n, c in SHIPPED.items() if c.bytes} == {"stylegan2-ffhq-1024.rosinality", "e4e-ffhq-1024.omertov"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "ABC"}, "sha256: String should match pattern"),
        ({"kind": "vae"}, "kind: Input should be"),
        ({"file": "../escape.pt"}, "file: Value error"),
        ({"sources": []}, "sources: List should have at least 1 item"),
        ({"licence_typo": "MIT"}, "licence_typo: Extra inputs are not permitted"),
    ],
)
def test_invalid_card_is_one_line(tmp_path: Path, change: dict[str, object], message: str) -> None:
    path = tmp_path / "test-file.bad.json"
    path.write_text(json.dumps(card_data("test-file.bad", **change)))
    with pytest.raises(InputError) as err:
        read_card(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_duplicate_and_misnamed_cards_are_refused(tmp_path: Path) -> None:
    (tmp_path / "wrong-name.json").write_text(json.dumps(card_data("test-file.good")))
    with pytest.raises(InputError, match="must be named after the card"):
        load_cards([tmp_path])
    (tmp_path / "wrong-name.json").unlink()
    (tmp_path / "stylegan2-ffhq-1024.rosinality.json").write_text(json.dumps(card_data("stylegan2-ffhq-1024.rosinality")))
    with pytest.raises(InputError, match="already defined"):
        load_cards([shipped_cards_dir(), tmp_path])


def test_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_cache_dir() == tmp_path / "cache"  # CFS_MODEL_DIR (conftest)
    monkeypatch.delenv("CFS_MODEL_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "cfs" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "cfs" / "models"


def test_broken_index_is_one_line(zoo: Zoo) -> None:
    zoo.cache.mkdir(parents=True)
    zoo.index_path.write_text("{not json")
    with pytest.raises(InputError, match="unreadable model index .* fix or delete it"):
        zoo.user_models()


def test_zoo_modules_do_not_import_torch() -> None:
    code = ("import sys; import cfs_registry.zoo, cfs_registry.download, cfs_registry.modelsets; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- model sets -------------------------------------------------------------------------------------


def test_shipped_sets_are_valid(zoo: Zoo) -> None:
    sets = modelsets.load_model_sets()
    assert set(sets) == {"ffhq-1024", "demo"} and modelsets.default_model_set() == "demo"
    assert modelsets.validate_sets(zoo) == []
    assert modelsets.set_models("ffhq-1024") == ["stylegan2-ffhq-1024.rosinality", "e4e-ffhq-1024.omertov",
                                                 "clip-vit-b-32.openai", "arcface-ir-se50.treb1en",
                                                 "unet-celebamask-19.clipfaceshop"]


def test_demo_set_is_the_shipped_pack(zoo: Zoo) -> None:
    resolved = modelsets.resolve_model_set("demo", zoo)  # every role packaged with cfs: nothing to pull
    assert resolved.status == "available" and not resolved.missing
    assert all(r.model.startswith("packaged:demo/") for r in resolved.roles.values())
    assert resolved.roles["clip"].loader == modelsets.LOADERS["clip-native"]
    demo = modelsets.get_model_set("demo")
    assert demo.artifact_dir() is not None and demo.artifact_dir().is_dir()
    assert demo.method_defaults["global"]["n_images"] == 8


def test_a_set_not_yet_available_says_why(tmp_path: Path, zoo: Zoo) -> None:
    data = {"name": "later", "description": "d", "status": "not-yet-available", "status_note": "being built",
            "roles": {r: {"packaged": "demo/parser.safetensors"} for r in modelsets.ROLES}}
    (tmp_path / "later.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="model set 'later' is not yet available: being built"):
        modelsets.resolve_model_set("later", zoo, folder=tmp_path)
    resolved = modelsets.resolve_model_set("later", zoo, require=False, folder=tmp_path)
    assert resolved.status == "not-yet-available" and not resolved.missing


@pytest.fixture
def no_open_clip_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever this machine's Hugging Face cache holds, the CLIP role looks only in the cfs cache."""
    monkeypatch.setattr(modelsets, "open_clip_cached_file", lambda oc: None)


def test_ffhq_set_resolves_to_paths_and_loaders(zoo: Zoo, no_open_clip_cache: None) -> None:
    with pytest.raises(InputError) as err:
        modelsets.resolve_model_set("ffhq-1024", zoo)
    assert "missing 5 of 5 files" in str(err.value) and "cfs models pull ffhq-1024" in str(err.value)
    for name in modelsets.set_models("ffhq-1024"):
        path = zoo.path(name)
        path.parent.mkdir(parents=True)
        path.write_bytes(b"stand-in")
    resolved = modelsets.resolve_model_set("ffhq-1024", zoo)
    assert resolved.paths()["generator"] == zoo.path("stylegan2-ffhq-1024.rosinality")
    roles = resolved.roles
    assert roles["generator"].architecture == "stylegan2-ffhq-1024" and roles["encoder"].card["kind"] == "encoder"
    assert roles["clip"].open_clip["model"] == "ViT-B-32-quickgelu" and roles["clip"].loader.endswith("from_open_clip")
    zoo.path("arcface-ir-se50.treb1en").unlink()
    with pytest.raises(InputError) as err:
        modelsets.resolve_model_set("ffhq-1024", zoo)
    assert str(err.value).startswith("model set 'ffhq-1024': the identity arcface-ir-se50.treb1en is not here (")
    assert "cfs models pull arcface-ir-se50.treb1en" in str(err.value)


def test_a_users_generator_replaces_the_set_s(zoo: Zoo, no_open_clip_cache: None, fixtures_dir: Path) -> None:
    zoo.add(fixtures_dir / "stylegan2" / "ros_converted_tiny.pt", "my-faces")
    resolved = modelsets.resolve_model_set("ffhq-1024", zoo, require=False, overrides={"generator": "my-faces"})
    assert resolved.roles["generator"].available and resolved.roles["generator"].architecture == "test-tiny"
    with pytest.raises(InputError, match="unknown role 'vae'"):
        modelsets.resolve_model_set("ffhq-1024", zoo, require=False, overrides={"vae": "my-faces"})


def test_invalid_set_is_one_line(tmp_path: Path, zoo: Zoo) -> None:
    (tmp_path / "half.json").write_text(json.dumps({"name": "half", "description": "x",
                                                     "roles": {"generator": {"model": "a.b"}}}))
    with pytest.raises(InputError, match=r"half.json: invalid model set: Value error, missing roles: encoder, clip"):
        modelsets.load_model_sets(tmp_path)
    (tmp_path / "half.json").write_text(json.dumps({"name": "half", "description": "x", "roles": {
        r: {"model": "arcface-ir-se50.treb1en"} for r in modelsets.ROLES}}))
    problems = modelsets.validate_sets(zoo, folder=tmp_path)
    assert "half.generator: arcface-ir-se50.treb1en is a identity, not a generator" in problems


@pytest.mark.parametrize("role", sorted(modelsets.LOADERS))
def test_loader_table_points_at_callables(role: str) -> None:
    module_name, _, attr = modelsets.LOADERS[role].partition(":")
    obj: object = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    assert callable(obj)


def test_card_model_round_trips() -> None:
    card = SHIPPED["e4e-ffhq-1024.omertov"]
    assert Card.model_validate(json.loads(card.model_dump_json())) == card
    assert (card.family, card.tag) == ("e4e-ffhq-1024", "omertov")


def test_set_values_are_validated(tmp_path: Path) -> None:
    roles = {r: {"packaged": "demo/parser.safetensors"} for r in modelsets.ROLES}
    for values, message in (({"clip": {"packaged": "demo/x.safetensors"}}, "may not be named like a role: clip"),
                            ({"v": {"packaged": "demo/x.safetensors", "depends_on": ["colour"]}}, "values.v.depends_on"),
                            ({"v": {"file": "x"}}, "values.v.packaged")):
        (tmp_path / "s.json").write_text(json.dumps({"name": "s", "description": "d", "roles": roles, "values": values}))
        with pytest.raises(InputError, match=message):
            modelsets.load_model_sets(tmp_path)
    demo = modelsets.get_model_set("demo").values["clip_base"]
    assert demo.depends_on == ("clip",) and demo.path().is_file()
