"""StyleCLIP LevelsMapper: parity with the reference, the full-size manifest, checkpoint layouts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from cfs_core.errors import InputError, ModelLoadError
from cfs_core.nets.mapper import LevelsMapper, LevelsMapperConfig, load_mapper, save_mapper
from cfs_core.testing import tiny_generator

MAPPER = Path(__file__).parent.parent / "fixtures" / "mapper"
MANIFEST = json.loads((Path(__file__).parent.parent / "fixtures" / "manifests" / "styleclip_levels_mapper_512.json").read_text())
SPEC = json.loads((MAPPER / "tiny_config.json").read_text())
FULL, NO_FINE = MAPPER / "tiny_levels_mapper_weights.safetensors", MAPPER / "tiny_levels_mapper_no_fine_weights.safetensors"


def check(actual: torch.Tensor, expected: torch.Tensor, name: str) -> None:
    atol = SPEC["fixture_tensors"][name]["suggested_atol"]
    torch.testing.assert_close(actual, expected, atol=atol, rtol=1e-5)


@pytest.fixture(scope="module")
def fx() -> dict[str, torch.Tensor]:
    return load_file(MAPPER / "tiny_levels_mapper_fixture.safetensors")


def test_parity_both_variants(fx: dict[str, torch.Tensor]) -> None:
    full = load_mapper(FULL).mapper
    no_fine = load_mapper(NO_FINE).mapper
    assert full.config == LevelsMapperConfig(latent_dim=64)
    assert no_fine.config == LevelsMapperConfig(latent_dim=64, no_fine_mapper=True)
    assert [[k, list(v.shape), "float32"] for k, v in full.state_dict().items()] == SPEC["state_dict_order"]
    assert [[k, list(v.shape), "float32"] for k, v in no_fine.state_dict().items()] == SPEC["state_dict_order_no_fine_mapper"]
    with torch.no_grad():
        check(full(fx["in.x"]), fx["out.out"], "out.out")
        out = no_fine(fx["in.x"])
        check(out, fx["out.out_no_fine_mapper"], "out.out_no_fine_mapper")
        assert torch.equal(out[:, 8:], torch.zeros_like(out[:, 8:]))
        assert full.course_mapping is not None
        check(full.course_mapping.mapping[0](fx["in.x"][:, :4]), fx["out.coarse_after_pixelnorm"], "out.coarse_after_pixelnorm")
        check(full.apply(fx["in.x"]), fx["in.x"] + 0.1 * fx["out.out"], "out.out")
        check(full.apply(fx["in.x"], strength=0.5), fx["in.x"] + 0.5 * fx["out.out"], "out.out")


@pytest.mark.parametrize("level", ["coarse", "medium", "fine"])
def test_disabled_levels_output_zeros_and_have_no_keys(level: str, fx: dict[str, torch.Tensor]) -> None:
    full = load_mapper(FULL).mapper
    cfg = LevelsMapperConfig(latent_dim=64, **{f"no_{level}_mapper": True})
    part = LevelsMapper(cfg)
    prefix = {"coarse": "course_mapping.", "medium": "medium_mapping.", "fine": "fine_mapping."}[level]
    part.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith(prefix)}, strict=True)
    assert not any(k.startswith(prefix) for k in part.state_dict())
    with torch.no_grad():
        want, got = full(fx["in.x"]), part(fx["in.x"])
    sl = full.level_slices(18)[level]
    assert torch.equal(got[:, sl], torch.zeros_like(got[:, sl]))
    keep = torch.ones(18, dtype=torch.bool)
    keep[sl] = False
    check(got[:, keep], want[:, keep], "out.out")


def test_full_size_matches_manifest() -> None:
    with torch.device("meta"):
        mapper = LevelsMapper()
    got = [(f"mapper.{k}", list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in mapper.state_dict().items()]
    assert got == [(k, v["shape"], v["dtype"]) for k, v in MANIFEST["state_dict"].items()]
    assert sum(p.numel() for p in mapper.parameters()) == MANIFEST["num_parameters"] == 3_151_872
    assert MANIFEST["buffers"] == [] and list(mapper.buffers()) == []
    with torch.device("meta"):
        no_fine = LevelsMapper(LevelsMapperConfig(no_fine_mapper=True))
    assert [f"mapper.{k}" for k in no_fine.state_dict()] == [k for k in MANIFEST["state_dict"] if ".fine_mapping." not in k]


def test_level_boundaries_for_any_n_latent() -> None:
    mapper = LevelsMapper(LevelsMapperConfig(latent_dim=8))
    assert mapper.level_slices(18) == {"coarse": slice(0, 4), "medium": slice(4, 8), "fine": slice(8, 18)}
    assert mapper.level_slices(14)["fine"] == slice(8, 14)  # 256 px: 6 fine entries, as StyleCLIP
    assert mapper.level_slices(6) == {"coarse": slice(0, 4), "medium": slice(4, 6), "fine": slice(6, 6)}
    w = torch.randn(2, 6, 8)
    assert mapper(w).shape == (2, 6, 8)
    gen = tiny_generator()  # the cfs test generator: its own n_latent and style_dim
    m = LevelsMapper(LevelsMapperConfig(latent_dim=gen.config.style_dim, boundaries=(2, 4)))
    w = gen.mapping(torch.randn(3, gen.config.style_dim)).unsqueeze(1).repeat(1, gen.config.n_latent, 1)
    assert m.apply(w).shape == w.shape
    assert m.level_slices(gen.config.n_latent)["medium"] == slice(2, 4)
    with pytest.raises(InputError, match="W\\+"):
        mapper(torch.randn(2, 8))
    with pytest.raises(ValueError, match="boundaries"):
        LevelsMapperConfig(boundaries=(8, 4))


def test_trainable_and_module_apply_still_recurses() -> None:
    mapper = LevelsMapper(LevelsMapperConfig(latent_dim=8))
    w = torch.randn(1, 18, 8)
    mapper.apply(w).sum().backward()
    assert all(p.grad is not None for p in mapper.parameters())
    seen: list[str] = []
    wrapper = nn.Sequential(mapper)
    wrapper.apply(lambda m: seen.append(type(m).__name__))
    assert seen.count("EqualLinear") == 12 and "LevelsMapper" in seen


def test_styleclip_checkpoint_layout(tmp_path: Path, fx: dict[str, torch.Tensor]) -> None:
    no_fine = load_file(NO_FINE)
    decoder = tiny_generator().state_dict()
    sd = {f"mapper.{k}": v for k, v in no_fine.items()} | {f"decoder.{k}": v for k, v in decoder.items()}
    opts = {"mapper_type": "LevelsMapper", "no_coarse_mapper": False, "no_medium_mapper": False,
            "no_fine_mapper": True, "stylegan_size": 1024, "description": "mohawk hairstyle"}
    path = tmp_path / "mohawk.pt"
    torch.save({"state_dict": sd, "opts": opts}, path)
    loaded = load_mapper(path)
    assert loaded.layout == "styleclip" and loaded.opts == opts
    assert loaded.decoder_state is not None and set(loaded.decoder_state) == set(decoder)
    assert not any(p.requires_grad for p in loaded.mapper.parameters())
    with torch.no_grad():
        check(loaded.mapper(fx["in.x"]), fx["out.out_no_fine_mapper"], "out.out_no_fine_mapper")
    # opts as an argparse.Namespace (allowed through the weights-only loader as plain data)
    ns = tmp_path / "ns.pt"
    torch.save({"state_dict": sd, "opts": argparse.Namespace(**opts)}, ns)
    assert load_mapper(ns).opts["description"] == "mohawk hairstyle"
    # inconsistent opts: the file says no_fine_mapper=False but has no fine keys
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": sd, "opts": opts | {"no_fine_mapper": False}}, bad)
    with pytest.raises(ModelLoadError, match="no_fine_mapper=False but the state dict lacks fine_mapping"):
        load_mapper(bad)


def test_bare_and_native_layouts(tmp_path: Path, fx: dict[str, torch.Tensor]) -> None:
    full = load_file(FULL)
    bare = tmp_path / "bare.pt"
    torch.save(full, bare)
    prefixed = tmp_path / "prefixed.pt"
    torch.save({f"mapper.{k}": v for k, v in full.items()}, prefixed)
    for path in (bare, prefixed):
        loaded = load_mapper(path)
        assert loaded.layout == "state-dict" and loaded.decoder_state is None
        with torch.no_grad():
            check(loaded.mapper(fx["in.x"]), fx["out.out"], "out.out")
    custom = LevelsMapper(LevelsMapperConfig(latent_dim=64, boundaries=(3, 9)))
    custom.load_state_dict(full)
    native = save_mapper(tmp_path / "m.safetensors", custom, {"description": "test"})
    loaded = load_mapper(native)
    assert loaded.layout == "cfs-native" and loaded.mapper.config.boundaries == (3, 9)
    with torch.no_grad():
        torch.testing.assert_close(loaded.mapper(fx["in.x"]), custom(fx["in.x"]))
    with pytest.raises(InputError, match="end in .safetensors"):
        save_mapper(tmp_path / "m.pt", custom)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_mapper(tmp_path / "nope.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01")
    with pytest.raises(ModelLoadError):
        load_mapper(junk)
    other = tmp_path / "other.pt"
    torch.save({"conv1.conv1.0.weight": torch.zeros(1)}, other)
    with pytest.raises(ModelLoadError, match="no LevelsMapper keys"):
        load_mapper(other)
    only_decoder = tmp_path / "dec.pt"
    torch.save({"state_dict": {"decoder.input.input": torch.zeros(1, 8, 4, 4)}, "opts": {}}, only_decoder)
    with pytest.raises(ModelLoadError, match="no mapper"):
        load_mapper(only_decoder)
    broken = tmp_path / "broken.pt"
    sd = load_file(FULL)
    del sd["medium_mapping.mapping.3.bias"]
    torch.save(sd, broken)
    with pytest.raises(ModelLoadError, match="missing: medium_mapping.mapping.3.bias") as err:
        load_mapper(broken)
    assert "\n" not in str(err.value)
    listed = tmp_path / "list.pt"
    torch.save([1, 2], listed)
    with pytest.raises(ModelLoadError, match="expected a dict"):
        load_mapper(listed)
