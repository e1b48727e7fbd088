"""StyleCLIP latent optimisation (``latent-opt``, ``latent-opt-s``): the conformance kit plus behaviour.

Behaviour is checked with ``FakeClip`` on the 16 px test generator: the CLIP target distance goes
down (text and image targets, W+ and StyleSpace), ``l2_lambda`` holds the code near the source,
the identity net is built only when ``id_lambda > 0``, and a line-by-line port of the reference
loop (spec styleclip_stylegan2.md §5) reproduces both the corrected and the ``faithful`` output.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pytest
import torch

import cfs_plugins.latent_opt as plugin
from cfs_core.errors import InputError
from cfs_core.fakes import FakeClip, FakeIdentity
from cfs_core.guidance import Guidance, image_digest, text_digest
from cfs_core.methods import EditContext, EditRequest, EditResult, ProgressEvent
from cfs_core.resources import Resources
from cfs_core.testing import EditingMethodTests, fake_context, first_party_losses, registered_table, source_latents
from cfs_plugins.latent_opt.method import LatentOptimisation, LatentOptimisationS

torch.set_num_threads(1)

TEXT = "a person with purple hair"
METHODS = {"w+": LatentOptimisation, "s": LatentOptimisationS}


class TestLatentOpt(EditingMethodTests):
    plugin = plugin
    method_cls = LatentOptimisation

    def get_dummy_context(self) -> EditContext:
        return fake_context()

    def get_dummy_request(self, ctx: EditContext) -> EditRequest:
        return self.request(ctx, kind="text", source=TEXT, options={"steps": 3}, batch=2)


class TestLatentOptStyleSpace(TestLatentOpt):
    method_cls = LatentOptimisationS


# ------------------------------------------------------------------ helpers


def text_guidance(text: str = TEXT) -> Guidance:
    return Guidance("text", text, text=text, digest=text_digest(text))


def image_guidance(ctx: EditContext, kind: str = "exemplar", seed: int = 7) -> Guidance:
    """Another face of the generator as the guidance image (uint8 HWC)."""
    image = ctx.generator.sample(1, seed=seed, truncation=0.7)[0][0]
    pixels = ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    pixels = np.ascontiguousarray(pixels)
    return Guidance(kind, f"{kind}.png", image=pixels, digest=image_digest(pixels))


def edit(space: str = "w+", guidance: Guidance | None = None, ctx: EditContext | None = None, batch: int = 1,
         events: list[ProgressEvent] | None = None, **options: Any) -> tuple[EditContext, EditRequest, EditResult]:
    ctx = ctx or fake_context()
    if events is not None:
        ctx.progress = events.append
    method = METHODS[space]
    request = EditRequest(source_latents(ctx.generator, batch), guidance or text_guidance(),
                          method.parse_options({"steps": 12, **options}))
    return ctx, request, method().edit(ctx, request)


def clip_distance(images: torch.Tensor, target: torch.Tensor) -> float:
    """``1 − mean_i ê_i·t̂`` with a fresh FakeClip (same fixed projection as the context's)."""
    return float(1 - (FakeClip().encode_generated(images) * target).sum(-1).mean())


def fake_target(guidance: Guidance, templates: bool = False) -> torch.Tensor:
    clip = FakeClip()
    if guidance.kind == "text":
        return clip.encode_text([guidance.text or ""], templates=templates)
    return clip.encode_images([guidance.image])


def squared_distance(result: EditResult, request: EditRequest, gen: Any) -> float:
    if result.latent_space == "w+":
        return float((result.latents - request.latents).pow(2).sum())
    return sum(float((s - s0).pow(2).sum()) for s, s0 in zip(result.latents, gen.styles(request.latents)))


# ------------------------------------------------------------------ registration


def test_the_hook_registers_both_variants() -> None:
    table = registered_table(plugin, "register_methods")
    assert table.ids() == ["latent-opt", "latent-opt-s"]
    assert table.get("latent-opt").latent_space == "w+" and table.get("latent-opt-s").latent_space == "s"
    assert LatentOptimisation.accepts == {"text", "clipart", "sketch", "exemplar"}
    defaults = LatentOptimisation.parse_options()
    assert (defaults.steps, defaults.lr, defaults.l2_lambda, defaults.id_lambda) == (300, 0.1, 0.008, 0.0)
    assert (defaults.templates, defaults.faithful) == (False, False)


# ------------------------------------------------------------------ the edit works


@pytest.mark.parametrize("space", ["w+", "s"])
@pytest.mark.parametrize("target", ["text", "clipart", "sketch", "exemplar"])
def test_target_distance_goes_down(space: str, target: str) -> None:
    ctx = fake_context()
    guidance = text_guidance() if target == "text" else image_guidance(ctx, target)
    ctx, request, result = edit(space, guidance, ctx)
    t = fake_target(guidance)
    before = clip_distance(ctx.generator.synthesis(request.latents), t)
    after = clip_distance(result.images, t)
    assert after < 0.5 * before, (before, after)
    assert result.info["losses"]["source"]["clip-target"] == pytest.approx(before, abs=1e-5)
    assert result.info["losses"]["final"]["clip-target"] == pytest.approx(after, abs=1e-5)
    assert result.info["target"] == target and result.info["space"] == space


@pytest.mark.parametrize("space", ["w+", "s"])
def test_returned_latents_render_the_returned_images(space: str) -> None:
    ctx, _, result = edit(space)
    gen = ctx.generator
    again = gen.synthesis(result.latents) if space == "w+" else gen.synthesis_from_styles(result.latents)
    assert torch.allclose(result.images, again, atol=1e-6)


@pytest.mark.parametrize("space", ["w+", "s"])
def test_l2_lambda_keeps_the_code_closer(space: str) -> None:
    distances = []
    for l2 in (0.0, 0.05, 1.0):
        ctx, request, result = edit(space, l2_lambda=l2)
        distances.append(squared_distance(result, request, ctx.generator))
        if l2 > 0:  # the reported latent-l2 part is that same distance
            assert result.info["losses"]["final"]["latent-l2"] == pytest.approx(distances[-1], rel=1e-4)
        else:
            assert "latent-l2" not in result.info["losses"]["final"]  # weight 0: not composed
    assert distances[0] > distances[1] > distances[2] > 0


def test_stylespace_moves_only_non_torgb_entries() -> None:
    ctx, request, result = edit("s")
    gen = ctx.generator
    source = gen.styles(request.latents)
    for layer, s, s0 in zip(gen.stylespace, result.latents, source):
        if layer.is_torgb:
            assert torch.equal(s, s0), layer.name
        else:
            assert not torch.equal(s, s0), layer.name
    assert result.info["optimised_entries"] == [layer.index for layer in gen.stylespace if not layer.is_torgb]


def test_first_step_has_zero_learning_rate() -> None:
    # get_lr(0) = 0: a one-step run returns the source exactly
    ctx, request, result = edit(steps=1)
    assert torch.equal(result.latents, request.latents)
    assert torch.equal(result.images, ctx.generator.synthesis(request.latents))


def test_batch_edits_each_face_as_alone() -> None:
    # the losses are per-image means and Adam is scale-invariant: a batch of two ≈ two single edits
    ctx, request, both = edit(batch=2)
    for i in range(2):
        single_request = EditRequest(request.latents[i:i + 1], text_guidance(), request.options)
        single = LatentOptimisation().edit(fake_context(), single_request)
        assert torch.allclose(both.latents[i:i + 1], single.latents, atol=1e-4)


# ------------------------------------------------------------------ losses and resources


class CountingIdentity(FakeIdentity):
    built = 0

    def __init__(self) -> None:
        super().__init__()
        CountingIdentity.built += 1


def counting_context() -> EditContext:
    CountingIdentity.built = 0
    resources = Resources({"clip": FakeClip, "identity": CountingIdentity})
    return EditContext(generator=fake_context().generator, device=torch.device("cpu"), resources=resources,
                       losses=first_party_losses())


@pytest.mark.parametrize("space", ["w+", "s"])
def test_identity_net_is_built_only_when_weighted(space: str) -> None:
    ctx, _, result = edit(space, ctx=counting_context(), id_lambda=0.0)
    assert CountingIdentity.built == 0 and ctx.resources.built() == ["clip"]
    assert "identity" not in result.info["losses"]["final"]

    ctx, _, result = edit(space, ctx=counting_context(), id_lambda=0.5, steps=4)
    assert CountingIdentity.built == 1 and ctx.resources.built() == ["clip", "identity"]
    assert ctx.resources.get("identity").calls > 0
    assert result.info["losses"]["source"]["identity"] == pytest.approx(0.0, abs=1e-6)  # the source vs itself
    assert result.info["losses"]["final"]["identity"] > 0


def test_identity_loss_keeps_the_identity() -> None:
    ident = FakeIdentity()
    drift = []
    for id_lambda in (0.0, 5.0):
        ctx, request, result = edit(id_lambda=id_lambda, l2_lambda=0.0)
        e, e0 = ident.embed(result.images), ident.embed(ctx.generator.synthesis(request.latents))
        drift.append(float(1 - (e * e0).sum(-1).mean()))
    assert drift[1] < drift[0]


def test_identity_without_an_identity_net_is_a_clear_error() -> None:
    ctx = EditContext(generator=fake_context().generator, device=torch.device("cpu"),
                      resources=Resources({"clip": FakeClip}), losses=first_party_losses())
    with pytest.raises(InputError, match="needs identity"):
        edit(ctx=ctx, id_lambda=0.005)


def test_text_target_is_encoded_once_without_templates_by_default() -> None:
    ctx, _, plain = edit(steps=6)
    assert ctx.resources.get("clip").calls == Counter({"generated": 7, "text": 1})  # 6 steps + final render
    assert plain.info["templates"] is False
    _, _, templated = edit(steps=6, templates=True)
    assert templated.info["templates"] is True
    t_plain, t_templated = fake_target(text_guidance()), fake_target(text_guidance(), templates=True)
    assert plain.info["losses"]["final"]["clip-target"] == pytest.approx(clip_distance(plain.images, t_plain), abs=1e-5)
    assert templated.info["losses"]["final"]["clip-target"] == pytest.approx(
        clip_distance(templated.images, t_templated), abs=1e-5)
    assert not torch.equal(plain.latents, templated.latents)


def test_templates_do_not_apply_to_image_targets() -> None:
    ctx = fake_context()
    guidance = image_guidance(ctx)
    _, _, with_templates = edit(guidance=guidance, ctx=ctx, templates=True)
    _, _, without = edit(guidance=guidance)
    assert with_templates.info["templates"] is False
    assert torch.equal(with_templates.latents, without.latents)


def test_image_kind_without_image_is_refused() -> None:
    with pytest.raises(InputError, match="carries no image"):
        edit(guidance=Guidance("clipart", "x.png", text="x.png", digest=text_digest("x.png")))


# ------------------------------------------------------------------ progress and info


def test_reports_the_loss_every_step() -> None:
    events: list[ProgressEvent] = []
    _, _, result = edit(events=events, steps=5)
    assert [(e.stage, e.step, e.total) for e in events] == [("optimise", i, 5) for i in range(1, 6)]
    assert [e.values["loss"] for e in events] == result.info["loss_curve"]
    assert all({"clip-target", "latent-l2"} <= set(e.values) for e in events)
    assert result.info["loss_curve"][-1] < result.info["loss_curve"][0]


# ------------------------------------------------------------------ reference port and `faithful`


def reference_get_lr(t: float, initial_lr: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """SC ``optimization/run_optimization.py::get_lr`` (§5)."""
    lr_ramp = min(1, (1 - t) / rampdown)
    lr_ramp = 0.5 - 0.5 * math.cos(lr_ramp * math.pi)
    lr_ramp = lr_ramp * min(1, t / rampup)
    return initial_lr * lr_ramp


def reference_run(gen: Any, latent_code_init: torch.Tensor, steps: int, stylespace: bool,
                  lr0: float = 0.1, l2_lambda: float = 0.008) -> tuple[torch.Tensor, Any]:
    """The reference loop, ported line by line (§5 steps 4–6): returns ``img_gen`` and ``latent``."""
    clip = FakeClip()
    text = clip.encode_text([TEXT])
    if stylespace:
        latent_code_init = [s.detach() for s in gen.styles(latent_code_init)]
        latent = [s.detach().clone() for s in latent_code_init]
        for c, s in enumerate(latent):
            if not gen.stylespace[c].is_torgb:
                s.requires_grad = True
        optimizer = torch.optim.Adam(latent, lr=lr0)
    else:
        latent = latent_code_init.detach().clone()
        latent.requires_grad = True
        optimizer = torch.optim.Adam([latent], lr=lr0)
    for i in range(steps):
        optimizer.param_groups[0]["lr"] = reference_get_lr(i / steps, lr0)
        img_gen = gen.synthesis_from_styles(latent) if stylespace else gen.synthesis(latent)
        c_loss = 1 - clip.encode_generated(img_gen) @ text.t()
        if stylespace:
            l2_loss = sum(((latent_code_init[c] - latent[c]) ** 2).sum() for c in range(len(latent_code_init)))
        else:
            l2_loss = ((latent_code_init - latent) ** 2).sum()
        loss = c_loss + l2_lambda * l2_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i % 20 == 0:  # --save_intermediate_image_every 20 re-renders after the update
            with torch.no_grad():
                img_gen = gen.synthesis_from_styles(latent) if stylespace else gen.synthesis(latent)
    return img_gen.detach(), latent


@pytest.mark.parametrize("space", ["w+", "s"])
def test_faithful_matches_the_reference_loop(space: str) -> None:
    steps = 14
    ctx, request, faithful = edit(space, steps=steps, faithful=True)
    _, _, corrected = edit(space, steps=steps)
    ref_image, ref_latent = reference_run(ctx.generator, request.latents, steps, stylespace=space == "s")
    final = ref_latent if space == "w+" else list(ref_latent)

    assert torch.allclose(faithful.images, ref_image, atol=1e-5)  # image of the last forward
    assert faithful.info["returned"].startswith("last forward")
    if space == "w+":
        assert torch.allclose(corrected.latents, final, atol=1e-5)
        assert not torch.allclose(faithful.latents, corrected.latents, atol=1e-7)  # one update apart
    else:
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(corrected.latents, final))
    render = ctx.generator.synthesis if space == "w+" else ctx.generator.synthesis_from_styles
    assert torch.allclose(corrected.images, render(final), atol=1e-5)  # corrected: the final code
    assert not torch.allclose(faithful.images, corrected.images, atol=1e-7)


def test_faithful_follows_the_reference_rerender_on_the_last_step() -> None:
    # steps - 1 = 20 is a multiple of 20: the reference's intermediate save re-renders after the update
    ctx, request, faithful = edit(steps=21, faithful=True)
    _, _, corrected = edit(steps=21)
    ref_image, _ = reference_run(ctx.generator, request.latents, 21, stylespace=False)
    assert torch.allclose(ref_image, corrected.images, atol=1e-5)
    assert torch.equal(faithful.images, corrected.images) and torch.equal(faithful.latents, corrected.latents)
    assert faithful.info["returned"].startswith("final code (reference")
