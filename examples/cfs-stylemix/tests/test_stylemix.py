"""Tests of the cfs-stylemix example plugin: the conformance kit plus behaviour tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import cfs_stylemix
from cfs_core.errors import InputError
from cfs_core.methods import EditContext, EditRequest
from cfs_core.resources import Resources
from cfs_core.testing import EditingMethodTests, GuidanceKindTests, registered_table, source_latents, tiny_generator
from cfs_stylemix.kinds import SeedKind
from cfs_stylemix.method import StyleMix
from cfs_stylemix.slots import n_latent_for_size, slot_ranges

# ------------------------------------------------------------------ the conformance kit


class TestSeedKind(GuidanceKindTests):
    plugin = cfs_stylemix
    kind_cls = SeedKind

    def get_valid_source(self, tmp_path: Path) -> str:
        return "42"

    def get_invalid_sources(self, tmp_path: Path) -> list[str]:
        return ["", "   ", "forty-two", "4.2", "-3", "1e3", str(2**40)]


class TestStyleMix(EditingMethodTests):
    plugin = cfs_stylemix
    method_cls = StyleMix

    def get_dummy_request(self, ctx: EditContext) -> EditRequest:
        return self.request(ctx, kind="seed", source="5", options={"layers": "middle", "strength": "0.5"},
                            batch=2, kind_cls=SeedKind)


# ------------------------------------------------------------------ behaviour


@pytest.fixture(scope="module")
def gen() -> torch.nn.Module:
    return tiny_generator()


def edit(gen, seed: int = 5, batch: int = 1, **options: object):
    ctx = EditContext(generator=gen, device=torch.device("cpu"), resources=Resources())
    request = EditRequest(source_latents(gen, batch), SeedKind().load(str(seed)), StyleMix.parse_options(options))
    return request, StyleMix().edit(ctx, request)


def test_seed_kind_records_the_seed() -> None:
    guidance = SeedKind().load("  007 ")
    assert guidance.meta == {"seed": 7}
    assert guidance.text == "7" and guidance.digest == SeedKind().load("7").digest
    assert guidance.describe()["seed"] == 7


@pytest.mark.parametrize(("source", "message"), [("abc", "whole number"), ("-1", "between 0 and"), ("", "empty")])
def test_seed_kind_errors_are_one_line(source: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        SeedKind().load(source)
    assert "\n" not in str(info.value)


def test_strength_zero_is_the_plain_reconstruction(gen) -> None:
    request, result = edit(gen, strength=0, layers="all")
    assert torch.equal(result.latents, request.latents)
    assert torch.equal(result.images, gen.synthesis(request.latents))


def test_strength_one_on_all_is_the_seeds_face(gen) -> None:
    _, result = edit(gen, seed=9, strength=1, layers="all", truncation=0.7)
    images, wplus = gen.sample(1, seed=9, truncation=0.7)  # what `cfs generate --seed 9 -t 0.7` draws
    assert torch.equal(result.latents, wplus)
    assert torch.allclose(result.images, images, atol=1e-6)


@pytest.mark.parametrize("layers", ["coarse", "middle", "fine"])
def test_only_the_chosen_slots_change(gen, layers: str) -> None:
    request, result = edit(gen, batch=2, strength=0.5, layers=layers)
    chosen = list(slot_ranges(gen.n_latent)[layers])
    changed = (result.latents != request.latents).any(dim=2).any(dim=0)  # [L]
    assert changed.nonzero().flatten().tolist() == chosen
    assert result.info["slots"] == chosen and result.info["seed"] == 5


def test_strength_interpolates_linearly(gen) -> None:
    request, half = edit(gen, strength=0.5, layers="fine")
    _, full = edit(gen, strength=1.0, layers="fine")
    assert torch.allclose(half.latents, (request.latents + full.latents) / 2, atol=1e-6)


def test_options_are_validated() -> None:
    with pytest.raises(InputError, match="option 'strength'"):
        StyleMix.parse_options({"strength": "1.5"})
    with pytest.raises(InputError, match="option 'layers'"):
        StyleMix.parse_options({"layers": "ears"})


def test_needs_seed_guidance(gen) -> None:
    ctx = EditContext(generator=gen, device=torch.device("cpu"))
    request = EditRequest(source_latents(gen), TestStyleMix().request(ctx, "seed", "5").guidance, StyleMix.parse_options())
    with pytest.raises(InputError, match="'seed' kind"):
        StyleMix().edit(ctx, request)


def test_slot_ranges_cover_every_slot() -> None:
    assert n_latent_for_size(1024) == 18 and n_latent_for_size(16) == tiny_generator().n_latent
    ranges = slot_ranges(18)
    assert (list(ranges["coarse"]), list(ranges["middle"]), list(ranges["fine"])) == ([0, 1, 2, 3], [4, 5, 6, 7], list(range(8, 18)))
    for n in range(3, 30):
        r = slot_ranges(n)
        assert [*r["coarse"], *r["middle"], *r["fine"]] == list(r["all"]) == list(range(n))
        assert all(len(r[k]) >= 1 for k in ("coarse", "middle", "fine"))


def test_registers_the_command() -> None:
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    app.callback()(lambda: None)  # keep the command a sub-command, as under `cfs`
    cfs_stylemix.register_commands(app=app)
    result = CliRunner().invoke(app, ["stylemix-slots", "--size", "256"])
    assert result.exit_code == 0, result.output
    assert "14 W+ slots" in result.output and "coarse  slots 0-2" in result.output
    assert CliRunner().invoke(app, ["stylemix-slots", "--size", "100"]).exit_code == 2


def test_seed_kind_is_registered_alone() -> None:
    assert registered_table(cfs_stylemix, "register_guidance_kinds").ids() == ["seed"]
