"""The ``mapper`` method (StyleCLIP latent mapper): conformance kit plus behaviour tests.

Everything runs on the kit's tiny 16 px generator (W+ ``[B, 6, 16]``) with FakeClip/FakeIdentity;
training steps take ~15 ms each.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import cfs_plugins.mapper as plugin
from cfs_core.errors import InputError
from cfs_core.guidance import Guidance, text_digest
from cfs_core.methods import EditContext, EditRequest, EditResult, ProgressEvent
from cfs_core.nets.mapper import LevelsMapper, LevelsMapperConfig
from cfs_core.resources import Resources
from cfs_core.testing import EditingMethodTests, FakeClip, fake_context, source_latents
from cfs_plugins.mapper.method import StyleClipMapper
from cfs_plugins.mapper.ranger import Ranger

pytestmark = pytest.mark.usefixtures("one_thread")

KIT_CACHE = Path(tempfile.mkdtemp(prefix="cfs-mapper-kit-"))  # shared by the kit's edits (2nd edit: cached)
atexit.register(shutil.rmtree, KIT_CACHE, ignore_errors=True)
TEXT = "purple hair"


def guidance(text: str = TEXT) -> Guidance:
    return Guidance("text", text, text=text, digest=text_digest(text))


def context(cache: Path | None, events: list[ProgressEvent] | None = None, seed: int = 0) -> EditContext:
    ctx = fake_context(seed=seed, cache_dir=cache)
    if events is not None:
        ctx.progress = events.append
    return ctx


def request(ctx: EditContext, options: dict[str, Any], text: str = TEXT, latents: torch.Tensor | None = None,
            batch: int = 2) -> EditRequest:
    w = latents if latents is not None else source_latents(ctx.generator, batch, seed=7)
    return EditRequest(w, guidance(text), StyleClipMapper.parse_options(options))


def edit(ctx: EditContext, options: dict[str, Any], **kw: Any) -> EditResult:
    return StyleClipMapper().edit(ctx, request(ctx, options, **kw))


def train(ctx: EditContext, options: dict[str, Any], latents: torch.Tensor | None = None) -> dict[str, Any]:
    empty = torch.empty(0, ctx.generator.n_latent, ctx.generator.style_dim)
    return StyleClipMapper().train(ctx, request(ctx, options, latents=empty if latents is None else latents))


def train_steps(events: list[ProgressEvent]) -> list[int]:
    return [e.step for e in events if e.stage == "train" and not e.message]


def state_step(cache: Path) -> int:
    (path,) = (cache / "mapper-train").glob("*.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        return int(json.loads(handle.metadata()["cfs"])["step"])


# ------------------------------------------------------------------ the conformance kit
class TestMapperKit(EditingMethodTests):
    plugin = plugin
    method_cls = StyleClipMapper

    def get_dummy_context(self) -> EditContext:
        return fake_context(cache_dir=KIT_CACHE)

    def get_dummy_request(self, ctx: EditContext) -> EditRequest:
        return self.request(ctx, kind="text", source=TEXT, options={"steps": 2})


# ------------------------------------------------------------------ training effect
@pytest.mark.parametrize(("optimizer", "lr", "steps"), [("adam", 0.5, 15), ("ranger", 20.0, 30)])
def test_training_lowers_clip_distance_on_held_out_latents(optimizer: str, lr: float, steps: int) -> None:
    ctx = context(None)
    clip: FakeClip = ctx.resources.get("clip")
    target = clip.encode_text([TEXT])
    held_out = source_latents(ctx.generator, 8, seed=123)  # training draws its own samples

    def distance(images: torch.Tensor) -> float:
        return float(1 - (clip.encode_generated(images) * target).sum(-1).mean())

    with torch.no_grad():
        source = distance(ctx.generator.synthesis(held_out))
    options = {"optimizer": optimizer, "lr": lr, "id_lambda": 0.1}
    one = distance(edit(ctx, {**options, "steps": 1}, latents=held_out).images)
    trained = distance(edit(ctx, {**options, "steps": steps}, latents=held_out).images)
    assert trained < source - 0.03 and trained < one - 0.03, (source, one, trained)


def test_level_flags_keep_their_entries(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    w = source_latents(ctx.generator, 2, seed=3)
    out = edit(ctx, {"steps": 3, "no_coarse_mapper": True}, latents=w).latents
    assert torch.equal(out[:, :4], w[:, :4]) and not torch.equal(out[:, 4:], w[:, 4:])
    out = edit(ctx, {"steps": 3, "no_medium_mapper": True}, latents=w).latents
    assert torch.equal(out[:, 4:], w[:, 4:]) and not torch.equal(out[:, :4], w[:, :4])
    with pytest.raises(InputError, match="no W\\+ entries"):  # 16 px: no fine entries at all
        edit(ctx, {"steps": 3, "no_coarse_mapper": True, "no_medium_mapper": True}, latents=w)
    with pytest.raises(InputError, match="nothing left to map"):
        StyleClipMapper.parse_options({"no_coarse_mapper": True, "no_medium_mapper": True, "no_fine_mapper": True})


def test_strength_scales_the_step_and_training_is_deterministic() -> None:
    a = edit(context(None), {"steps": 4})
    b = edit(context(None), {"steps": 4})
    assert torch.equal(a.images, b.images) and a.info["mapper"]["source"] == "trained"
    w = source_latents(context(None).generator, 2, seed=7)
    half = edit(context(None), {"steps": 4, "strength": 0.05})
    torch.testing.assert_close(half.latents - w, (a.latents - w) / 2, rtol=1e-4, atol=1e-6)
    assert not torch.equal(edit(context(None, seed=1), {"steps": 4}).images, a.images)


def test_generator_untouched_by_training(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    gen = ctx.generator.requires_grad_(True)  # even a generator that would take gradients
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    facts = train(ctx, {"steps": 3})
    assert facts["trained_steps"] == 3 and json.dumps(facts)
    assert all(p.requires_grad and p.grad is None for p in gen.parameters())
    assert all(torch.equal(before[k], v) for k, v in gen.state_dict().items())


# ------------------------------------------------------------------ cache and resume
def test_cache_makes_the_second_edit_skip_training(tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    first = edit(context(tmp_path, events), {"steps": 5})
    assert train_steps(events) == [0, 1, 2, 3, 4, 5] and first.info["mapper"]["source"] == "trained"
    events.clear()
    ctx = context(tmp_path, events)
    second = edit(ctx, {"steps": 5, "strength": 0.1})
    assert second.info["mapper"]["source"] == "cache" and train_steps(events) == []
    assert ctx.resources.get("clip").calls["generated"] == 0  # no training step ran
    assert torch.equal(first.images, second.images)
    # `cfs train` and `cfs edit` share the cache; training options and the seed are in the key
    assert train(context(tmp_path), {"steps": 5})["cached"] is True
    assert train(context(tmp_path), {"steps": 5, "l2_lambda": 0.5})["cached"] is False
    assert train(context(tmp_path, seed=1), {"steps": 5})["cached"] is False
    assert edit(context(tmp_path), {"steps": 5}, text="a smile").info["mapper"]["source"] == "trained"
    # the cached file is a cfs mapper file: it loads through the checkpoint option, same output
    again = edit(context(None), {"checkpoint": first.info["mapper"]["path"]})
    assert torch.equal(again.images, first.images)


def test_training_on_given_latents_is_keyed_apart(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    latents = source_latents(ctx.generator, 3, seed=11)
    facts = train(ctx, {"steps": 3, "batch_size": 2}, latents=latents)
    assert facts["data"]["source"] == "latents" and facts["data"]["n"] == 3 and not facts["cached"]
    assert train(context(tmp_path), {"steps": 3})["data"] == {"source": "samples", "truncation": 0.7}


@pytest.mark.parametrize("optimizer", ["ranger", "adam"])
def test_interrupted_training_resumes_identically(tmp_path: Path, optimizer: str) -> None:
    options = {"steps": 8, "save_every": 2, "optimizer": optimizer}  # Lookahead syncs at step 6
    whole = train(context(tmp_path / "whole"), options)

    cache = tmp_path / "stopped"
    seen: list[int] = []

    def stop_at_3(event: ProgressEvent) -> None:
        if event.stage == "train" and not event.message:
            if event.step == 2:
                seen.append(state_step(cache))  # the periodic save happened before the report
            if event.step == 3:
                raise KeyboardInterrupt

    ctx = context(cache)
    ctx.progress = stop_at_3
    with pytest.raises(KeyboardInterrupt):
        train(ctx, options)
    assert seen == [2] and state_step(cache) == 3  # Ctrl-C between steps keeps step 3
    assert not (cache / "mapper").exists()

    events: list[ProgressEvent] = []
    resumed = train(context(cache, events), options)
    assert resumed["resumed_from"] == 3 and resumed["trained_steps"] == 5
    assert train_steps(events) == [4, 5, 6, 7, 8]
    a, b = load_file(whole["path"]), load_file(resumed["path"])
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_more_steps_continue_a_finished_run(tmp_path: Path) -> None:
    whole = train(context(tmp_path / "whole"), {"steps": 6})
    train(context(tmp_path / "grown"), {"steps": 3})
    grown = train(context(tmp_path / "grown"), {"steps": 6})
    assert grown["resumed_from"] == 3
    a, b = load_file(whole["path"]), load_file(grown["path"])
    assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------ StyleCLIP checkpoints
def styleclip_checkpoint(path: Path, style_dim: int, decoder: dict[str, torch.Tensor]) -> LevelsMapper:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        mapper = LevelsMapper(LevelsMapperConfig(latent_dim=style_dim, no_fine_mapper=True))
        for p in mapper.parameters():  # non-zero biases, so a wrong bias axis would show
            p.data.add_(torch.randn_like(p) * (10.0 if p.ndim == 1 else 1.0))
    sd = {f"mapper.{k}": v for k, v in mapper.state_dict().items()}
    sd.update({f"decoder.{k}": v for k, v in decoder.items()})
    torch.save({"state_dict": sd, "opts": {"description": "purple hair", "no_fine_mapper": True, "lr": 0.5}}, path)
    return mapper.eval()


def test_styleclip_checkpoint_gives_w_plus_a_tenth_of_m(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    gen = ctx.generator
    mapper = styleclip_checkpoint(tmp_path / "purple_hair.pt", gen.style_dim, gen.state_dict())
    w = source_latents(gen, 2, seed=4)
    result = edit(ctx, {"checkpoint": str(tmp_path / "purple_hair.pt")}, latents=w)
    with torch.no_grad():
        expected = w + 0.1 * mapper(w)
        assert torch.equal(result.latents, expected)
        assert torch.equal(result.images, gen.synthesis(expected, noise="const"))
    assert result.info["mapper"] == {"source": "checkpoint", "path": str(tmp_path / "purple_hair.pt"),
                                     "layout": "styleclip", "levels": ["coarse", "medium"], "trained_for": "purple hair"}
    assert ctx.resources.built() == [] and not (tmp_path / "mapper").exists()  # no CLIP, no training
    half = edit(ctx, {"checkpoint": str(tmp_path / "purple_hair.pt"), "strength": 0.5}, latents=w)
    with torch.no_grad():
        torch.testing.assert_close(half.latents, w + 0.5 * mapper(w))


def test_checkpoint_of_another_width_is_refused(tmp_path: Path) -> None:
    ctx = context(None)
    styleclip_checkpoint(tmp_path / "wide.pt", 2 * ctx.generator.style_dim, {})
    with pytest.raises(InputError, match="width 32 does not fit"):
        edit(ctx, {"checkpoint": str(tmp_path / "wide.pt")})


# ------------------------------------------------------------------ refusals
def test_refusals(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with pytest.raises(InputError, match="already trained"):
        train(ctx, {"checkpoint": "x.pt"})
    with pytest.raises(InputError, match="give a text"):
        StyleClipMapper().train(ctx, request(ctx, {}, text=""))
    no_identity = EditContext(ctx.generator, ctx.device, resources=Resources({"clip": FakeClip}), losses=ctx.losses)
    with pytest.raises(InputError, match="id_lambda=0"):
        edit(no_identity, {"steps": 1})
    edit(no_identity, {"steps": 1, "id_lambda": 0})
    assert no_identity.resources.built() == ["clip"]


# ------------------------------------------------------------------ Ranger
def test_ranger_first_step_is_centralised_sgd_and_lookahead_halves() -> None:
    g2 = torch.tensor([[1.0, 3.0], [2.0, -2.0]])
    g1 = torch.tensor([0.5, -1.5])

    def run(alpha: float, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.ones(2))
        opt = Ranger([a, b], lr=0.5, alpha=alpha)
        for _ in range(steps):
            opt.zero_grad()
            ((a * g2).sum() + (b * g1).sum()).backward()  # constant gradients
            opt.step()
        return a.detach(), b.detach()

    a1, b1 = run(0.5, 1)  # ρ_1 ≤ 5: un-rectified, m/(1-β1) = g → p − lr·g, rows centred (dim > 1)
    torch.testing.assert_close(a1, -0.5 * (g2 - g2.mean(1, keepdim=True)))
    torch.testing.assert_close(b1, 1 - 0.5 * g1)
    fast_a, fast_b = run(1.0, 6)  # alpha 1: Lookahead copies the fast weights
    slow_a, slow_b = run(0.5, 6)  # alpha 0.5: halfway back to the start at step k = 6
    torch.testing.assert_close(slow_a, 0.5 * fast_a)
    torch.testing.assert_close(slow_b, 1 + 0.5 * (fast_b - 1))
