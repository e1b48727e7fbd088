"""The ``clipart`` method (ClipFaceShop adaptor, spec clipfaceshop.md) on the tiny generator and fakes."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import cfs_plugins.clipart
from cfs_core.errors import InputError
from cfs_core.fakes import FakeParser
from cfs_core.guidance import Guidance, image_digest, text_digest
from cfs_core.imageio import save_png
from cfs_core.methods import EditContext, EditRequest, ProgressEvent
from cfs_core.nets.protocols import unit
from cfs_core.testing import EditingMethodTests, fake_context, source_latents, tiny_generator
from cfs_plugins.clipart import training
from cfs_plugins.clipart.adaptor import initial_parameters
from cfs_plugins.clipart.base import base_embedding_from_images, fallback_base_embedding, save_base_embedding
from cfs_plugins.clipart.method import CORRECTED_BACKGROUND, ClipFaceShop
from cfs_plugins.clipart.ranking import FFHQ_RANKING, resolve_ranking, top_slots

pytestmark = pytest.mark.usefixtures("one_thread")

CACHE = Path(tempfile.mkdtemp(prefix="cfs-clipart-tests-"))
atexit.register(shutil.rmtree, CACHE, ignore_errors=True)


def clipart_image(red: int = 200, square: int = 30) -> np.ndarray:
    """A flat red 'clipart' with a dark square in the middle."""
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., 0] = red
    img[8:24, 8:24] = square
    return img


def guidance(image: np.ndarray | None = None, kind: str = "clipart") -> Guidance:
    image = clipart_image() if image is None else image
    return Guidance(kind, "c.png", image=image, digest=image_digest(image))


def request(ctx: EditContext, options: dict[str, Any] | None = None, batch: int = 2, seed: int = 7,
            image: np.ndarray | None = None) -> EditRequest:
    opts = {"steps": 3, "batch": 2, **(options or {})}
    latents = source_latents(ctx.generator, batch, seed=seed)
    return EditRequest(latents, guidance(image), ClipFaceShop.parse_options(opts))


def cos_to_target(ctx: EditContext, images: torch.Tensor, image: np.ndarray) -> torch.Tensor:
    clip = ctx.resources.get("clip")
    with torch.no_grad():
        return (clip.encode_generated(images) * clip.encode_images([image])).sum(-1)


class TestClipart(EditingMethodTests):
    plugin = cfs_plugins.clipart
    method_cls = ClipFaceShop

    def get_dummy_context(self) -> EditContext:
        return fake_context(cache_dir=CACHE)

    def get_dummy_request(self, ctx: EditContext) -> EditRequest:
        return request(ctx, {"steps": 2})


# ------------------------------------------------------------------------------------ effect
def test_training_moves_new_faces_toward_the_clipart(tmp_path: Path) -> None:
    ctx = fake_context(cache_dir=tmp_path)
    req = request(ctx, {"steps": 30}, batch=3, seed=11)  # faces the training pool never saw
    result = ClipFaceShop().edit(ctx, req)
    before = cos_to_target(ctx, ctx.generator.synthesis(req.latents), clipart_image())
    after = cos_to_target(ctx, result.images, clipart_image())
    assert after.mean() > before.mean() + 0.2, (before, after)
    history = result.info["loss_history"]
    assert result.info["best_loss"] == pytest.approx(min(history), abs=1e-5) and min(history) < history[0]
    assert result.info["slots"] == sorted(result.info["ranking"][:5])


def test_training_is_deterministic_for_a_seed() -> None:
    runs = [ClipFaceShop().edit(ctx, request(ctx)) for ctx in (fake_context(), fake_context())]
    assert runs[0].info["cached"] is False and torch.equal(runs[0].images, runs[1].images)
    assert torch.equal(runs[0].artifacts["A"], runs[1].artifacts["A"])
    other = ClipFaceShop().edit(fake_context(seed=1), request(fake_context()))
    assert not torch.equal(other.artifacts["d"], runs[0].artifacts["d"])


def test_progress_reports_each_training_step_with_its_loss() -> None:
    ctx = fake_context()
    events: list[ProgressEvent] = []
    ctx.progress = events.append
    ClipFaceShop().edit(ctx, request(ctx, {"steps": 4}))
    train = [e for e in events if e.stage == "train"]
    assert [e.step for e in train] == [1, 2, 3, 4] and all(e.total == 4 and "loss" in e.values for e in train)


# ------------------------------------------------------------------------------------ cache
def test_second_face_with_the_same_clipart_costs_one_generator_pass(tmp_path: Path) -> None:
    method = ClipFaceShop()
    ctx = fake_context(cache_dir=tmp_path)
    first = method.edit(ctx, request(ctx))
    assert first.info["cached"] is False and Path(first.info["path"]).is_file()

    ctx2 = fake_context(cache_dir=tmp_path)  # a new process: fresh models, same weights
    req2 = request(ctx2, batch=1, seed=99, options={"strength": 0.5, "form": "shift"})
    clip = ctx2.resources.get("clip")
    calls: list[int] = []
    synthesis = ctx2.generator.synthesis
    ctx2.generator.synthesis = lambda *a, **k: calls.append(1) or synthesis(*a, **k)  # type: ignore[method-assign]
    events: list[ProgressEvent] = []
    ctx2.progress = events.append
    second = method.edit(ctx2, req2)
    assert second.info["cached"] is True and second.info["key"] == first.info["key"]
    assert len(calls) == 1 and sum(clip.calls.values()) == 0
    assert not [e for e in events if e.stage in ("train", "ranking")]
    for name in ("A", "d", "mask"):
        assert torch.equal(second.artifacts[name], first.artifacts[name])


def _file_digests(ctx: EditContext, refuse: bool = False) -> EditContext:
    """Offer clip, identity and parser with a digest (as the model session does: the file's sha256);
    ``refuse``: building any of them fails the test."""
    for name in ("clip", "identity", "parser"):
        built = ctx.resources.get(name)

        def factory(n: str = name, obj: Any = built) -> Any:
            assert not refuse, f"{n} was loaded on a cache hit"
            return obj

        ctx.resources.provide(name, factory, digest=lambda n=name: f"file:{n}-weights")
    return ctx


def test_a_cached_adaptor_is_found_without_loading_clip_identity_or_parser(tmp_path: Path) -> None:
    method = ClipFaceShop()
    first = method.edit(_file_digests(fake_context(cache_dir=tmp_path)), request(fake_context()))
    assert first.info["cached"] is False
    ctx = _file_digests(fake_context(cache_dir=tmp_path), refuse=True)
    second = method.edit(ctx, request(ctx, batch=1))
    assert second.info["cached"] is True and second.info["key"] == first.info["key"]
    assert not {"clip", "identity", "parser"} & set(ctx.resources.built())


def test_cache_key_follows_clipart_models_and_training_options(tmp_path: Path) -> None:
    method = ClipFaceShop()
    ctx = fake_context(cache_dir=tmp_path)
    key = method.edit(ctx, request(ctx)).info["key"]
    for other in ({"mpp_d": 3}, {"lambda_id": 0.5}, {"faithful": True}):
        assert method.edit(ctx, request(ctx, other)).info["key"] != key
    assert method.edit(ctx, request(ctx, image=clipart_image(red=40))).info["key"] != key
    assert method.edit(fake_context(seed=1, cache_dir=tmp_path), request(ctx)).info["key"] != key
    other_gen = fake_context(cache_dir=tmp_path, seed=0)
    other_gen.generator = tiny_generator(seed=3)
    assert method.edit(other_gen, request(other_gen)).info["cached"] is False


def test_train_then_edit_and_the_artefact_on_disk(tmp_path: Path) -> None:
    from safetensors import safe_open

    method = ClipFaceShop()
    ctx = fake_context(cache_dir=tmp_path)
    options = ClipFaceShop.parse_options({"steps": 3, "batch": 2})
    facts = method.train(ctx, EditRequest(torch.empty(0, 6, 16), guidance(), options))
    json.dumps(facts)
    assert facts["cached"] is False and facts["steps"] == 3
    with safe_open(facts["path"], framework="pt") as handle:
        meta = json.loads(handle.metadata()["cfs"])
        assert set(handle.keys()) >= {"A", "d", "mask", "d_last", "ranking", "target", "base"}
        A, d, mask = handle.get_tensor("A"), handle.get_tensor("d"), handle.get_tensor("mask")
    assert meta["options"]["steps"] == 3 and "strength" not in meta["options"]
    assert meta["facts"]["slots"] == [i for i in range(6) if mask[0, i, 0] == 1]
    off = mask[0, :, 0] == 0
    assert torch.equal(A[0, off], torch.ones_like(A[0, off])) and torch.equal(d[0, off], torch.zeros_like(d[0, off]))
    edited = method.edit(ctx, request(ctx, {"steps": 3}))
    assert edited.info["cached"] is True and edited.info["key"] == facts["key"]


# ------------------------------------------------------------------------------------ forms
def test_full_and_shift_forms_and_strength() -> None:
    method = ClipFaceShop()
    ctx = fake_context(cache_dir=CACHE)
    full = method.edit(ctx, request(ctx))
    w = request(ctx).latents
    A, d, mask = full.artifacts["A"], full.artifacts["d"], full.artifacts["mask"]
    assert torch.allclose(full.latents, A * w + d)
    shift = method.edit(ctx, request(ctx, {"form": "shift"}))
    assert torch.allclose(shift.latents, w + d)
    off = mask[0, :, 0] == 0
    assert torch.equal(full.latents[:, off], w[:, off]) and torch.equal(shift.latents[:, off], w[:, off])
    zero = method.edit(ctx, request(ctx, {"strength": 0.0}))
    assert torch.equal(zero.latents, w)
    assert torch.allclose(zero.images, ctx.generator.synthesis(w))
    half = method.edit(ctx, request(ctx, {"strength": 0.5}))
    assert torch.allclose(half.latents, (w + full.latents) / 2, atol=1e-6)


# ------------------------------------------------------------------------------------ faithful vs corrected
def test_initialisation_faithful_and_corrected() -> None:
    gen = tiny_generator()
    A_f, d_f = initial_parameters(gen, torch.Generator().manual_seed(0), 0.7, True, torch.device("cpu"))
    A_c, d_c = initial_parameters(gen, torch.Generator().manual_seed(0), 0.7, False, torch.device("cpu"))
    assert torch.equal(A_c, torch.ones_like(A_c)) and abs(float(A_f.mean())) < 0.2 and 0.7 < float(A_f.std()) < 1.3
    center = gen.truncation_center()
    assert torch.allclose(d_f - center, d_c, atol=1e-6)  # same draw: a full code vs its offset
    assert torch.equal(d_f[:, 0], d_f[:, -1])  # one W code broadcast over the slots


def _setup(ctx: EditContext, faithful: bool, weights: dict[str, float]) -> training.Setup:
    gen = ctx.generator
    pool = source_latents(gen, 8, seed=3)
    mask = torch.zeros(1, gen.n_latent, 1)
    mask[0, [1, 2]] = 1
    A, d = initial_parameters(gen, torch.Generator().manual_seed(0), 0.7, faithful, torch.device("cpu"))
    target = ctx.resources.get("clip").encode_images([clipart_image()])
    return training.Setup(pool=pool, mask=mask, A=A, d=d, target=target, base=None, guidance=guidance(),
                          loss=ctx.compose_losses(weights, "test"), steps=6, batch=2, lr=0.1, faithful=faithful)


@pytest.mark.parametrize("faithful", [False, True])
def test_best_snapshot_is_the_best_losss_parameters_or_one_step_later(faithful: bool) -> None:
    ctx = fake_context()
    seen: list[tuple[torch.Tensor, torch.Tensor, float]] = []
    out = training.train(ctx, _setup(ctx, faithful, {"clip-target": 1.0, "clip-source": 0.3}),
                         on_step=lambda i, A, d, v: seen.append((A, d, v)))
    best = min(range(len(seen)), key=lambda i: seen[i][2])
    assert out.best_step == best and out.best_loss == seen[best][2]
    if faithful:  # §6.5: copied after optimizer.step()
        after = (out.A_last, out.d_last) if best == len(seen) - 1 else seen[best + 1][:2]
        assert torch.equal(out.A, after[0]) and torch.equal(out.d, after[1])
        assert not torch.equal(out.d, seen[best][1])
    else:
        assert torch.equal(out.A, seen[best][0]) and torch.equal(out.d, seen[best][1])


@pytest.mark.parametrize("faithful", [False, True])
def test_regulariser_pulls_A_toward_one_or_zero(faithful: bool) -> None:
    ctx = fake_context()
    setup = _setup(ctx, faithful, {"adaptor-l2": 1.0})
    setup.steps = 20
    out = training.train(ctx, setup)
    A = out.A_last[0, [1, 2]]
    d_before, d_after = setup.d[0, [1, 2]].norm(), out.d_last[0, [1, 2]].norm()
    assert d_after < d_before  # d shrinks toward 0 in both forms
    if faithful:
        assert A.abs().mean() < setup.A[0, [1, 2]].abs().mean() * 0.9
    else:
        assert torch.equal(A, torch.ones_like(A))  # starts at 1: no pull at all


class RecordingParser(FakeParser):
    """A FakeParser with the real parser's ``batchnorm`` setting, recording it at every call."""

    def __init__(self) -> None:
        super().__init__()
        self.batchnorm = "eval"
        self.modes: list[str] = []

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        self.modes.append(self.batchnorm)
        return super().logits(images)


@pytest.mark.parametrize("faithful", [False, True])
def test_background_loss_form_and_parser_batchnorm(faithful: bool) -> None:
    ctx = fake_context()
    parser = RecordingParser()
    ctx.resources.provide_value("parser", parser)
    opts = {"lambda_transfer": 1.0, "lambda_gaps": 0, "lambda_id": 0, "lambda_consistency": 0, "lambda_sourcesim": 0,
            "faithful": faithful}
    result = ClipFaceShop().edit(ctx, request(ctx, opts))
    assert set(parser.modes) == {"batch" if faithful else "eval"} and parser.batchnorm == "eval"
    assert result.info["weights"]["background-l1"] == (1e-7 if faithful else CORRECTED_BACKGROUND)
    term = result.info["final_terms"]["background-l1"]
    assert term > 10 if faithful else term < 2  # Σ|…|/N over 3·16·16 elements vs a per-pixel mean


def test_faithful_shift_form_renders_the_last_step_d() -> None:
    method = ClipFaceShop()
    ctx = fake_context(cache_dir=CACHE)
    req = request(ctx, {"faithful": True, "form": "shift", "steps": 4})
    out = method.edit(ctx, req)
    assert not torch.equal(out.artifacts["d_last"], out.artifacts["d"])
    assert torch.allclose(out.latents, req.latents + out.artifacts["d_last"])
    full = method.edit(ctx, request(ctx, {"faithful": True, "form": "full", "steps": 4}))
    assert torch.allclose(full.latents, out.artifacts["A"] * req.latents + out.artifacts["d"])


# ------------------------------------------------------------------------------------ ranking
def test_ffhq_ranking_is_the_default_for_an_18_by_512_generator() -> None:
    ctx = fake_context()
    ctx.generator = tiny_generator(size=1024, style_dim=512)
    ranking, source, _ = resolve_ranking(ctx, "auto")
    assert source == "ffhq" and ranking == FFHQ_RANKING
    assert top_slots(ranking, 5, 18) == [2, 3, 4, 6, 8]  # README --mpp_d 5
    assert top_slots(ranking, 9, 18) == [1, 2, 3, 4, 5, 6, 8, 12, 13]  # argparse default 9
    assert ctx.resources.built() == []  # no CLIP needed


def test_sensitivity_ranking_is_computed_once_per_pair_and_cached(tmp_path: Path) -> None:
    ctx = fake_context(cache_dir=tmp_path)
    ranking, source, facts = resolve_ranking(ctx, "auto")
    assert source == "sensitivity" and sorted(ranking) == list(range(ctx.generator.n_latent))
    assert facts["ranking_cached"] is False
    scores = facts["ranking_scores"]
    assert [scores[s] for s in ranking] == sorted(scores, reverse=True)
    again = fake_context(cache_dir=tmp_path)
    assert resolve_ranking(again, "sensitivity")[:2] == (ranking, "sensitivity")
    assert sum(again.resources.get("clip").calls.values()) == 0


def test_explicit_ranking_and_bad_values() -> None:
    ctx = fake_context()
    out = ClipFaceShop().edit(ctx, request(ctx, {"ranking": "5,4,0", "mpp_d": 2}))
    assert out.info["slots"] == [4, 5] and out.info["ranking_source"] == "given"
    for bad, match in (({"ranking": "1,1"}, "distinct"), ({"ranking": "9"}, "distinct"), ({"ranking": "x"}, "neither"),
                       ({"mpp_d": 7}, "mpp_d"), ({"ranking": "ffhq"}, "18 slots")):
        with pytest.raises(InputError, match=match):
            ClipFaceShop().edit(ctx, request(ctx, bad))


# ------------------------------------------------------------------------------------ base embedding
def test_base_embedding_from_a_folder_of_clipart(tmp_path: Path) -> None:
    ctx = fake_context()
    clip = ctx.resources.get("clip")
    images = [clipart_image(red=r) for r in (10, 120, 250)]
    for i, image in enumerate(images):
        save_png(image, tmp_path / f"{i}.png")
    expected = unit(clip.encode_images(images)).mean(0)
    assert torch.allclose(base_embedding_from_images(clip, images, chunk=2), expected, atol=1e-6)
    out = ClipFaceShop().edit(ctx, request(ctx, {"base": str(tmp_path)}))
    assert out.info["base_source"] == f"folder:{tmp_path}"


def test_base_from_resource_file_or_fallback(tmp_path: Path) -> None:
    method = ClipFaceShop()
    ctx = fake_context(cache_dir=tmp_path)
    fallback = method.edit(ctx, request(ctx))
    assert fallback.info["base_source"] == "fallback"
    vec = fallback_base_embedding(ctx.resources.get("clip"), ctx.generator)
    assert torch.equal(vec, fallback_base_embedding(ctx.resources.get("clip"), ctx.generator))
    path = save_base_embedding(vec * 0.5 + 0.1, tmp_path / "base.safetensors")
    from_file = method.edit(ctx, request(ctx, {"base": str(path)}))
    assert from_file.info["base_source"] == f"file:{path}" and from_file.info["key"] != fallback.info["key"]
    ctx.resources.provide_value("clip_base", vec * 0.3)
    from_resource = method.edit(ctx, request(ctx))
    assert from_resource.info["base_source"] == "resource:clip_base"
    assert from_resource.info["key"] not in (fallback.info["key"], from_file.info["key"])
    with pytest.raises(InputError, match="option 'base'"):
        method.edit(ctx, request(ctx, {"base": str(tmp_path / "missing.npy")}))


def test_zero_gap_skips_training_with_an_identity_adaptor() -> None:
    ctx = fake_context()
    ctx.resources.provide_value("clip_base", ctx.resources.get("clip").encode_images([clipart_image()])[0])
    req = request(ctx)
    out = ClipFaceShop().edit(ctx, req)
    assert "skipped" in out.info and torch.equal(out.latents, req.latents)


# ------------------------------------------------------------------------------------ inputs
def test_pool_of_given_latents_and_guidance_kinds() -> None:
    ctx = fake_context()
    out = ClipFaceShop().edit(ctx, request(ctx, {"pool": "latents"}, batch=3))
    assert out.info["pool_size"] == 3
    with pytest.raises(InputError, match="pool=latents"):
        options = ClipFaceShop.parse_options({"pool": "latents"})
        ClipFaceShop().train(ctx, EditRequest(torch.empty(0, 6, 16), guidance(), options))
    for kind in ("sketch", "exemplar"):
        options = ClipFaceShop.parse_options({"steps": 2})
        req = EditRequest(source_latents(ctx.generator, 1), guidance(kind=kind), options)
        assert ClipFaceShop().edit(ctx, req).images.shape == (1, 3, 16, 16)
    text = EditRequest(source_latents(ctx.generator, 1), Guidance("text", "x", text="x", digest=text_digest("x")),
                       ClipFaceShop.parse_options({}))
    with pytest.raises(InputError, match="accepts only"):
        ClipFaceShop().edit(ctx, text)
