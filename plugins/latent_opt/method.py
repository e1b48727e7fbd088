"""StyleCLIP latent optimisation (spec ``styleclip_stylegan2.md`` §5), W+ and StyleSpace variants.

Per edit, starting from the source code ``c₀`` (W+ ``w_s``, or its StyleSpace vectors ``s_s``)::

    L(c) = D_CLIP(G(c), t) + λ_L2 · Σ (c − c₀)² + λ_ID · (1 − ⟨R(G(c₀)), R(G(c))⟩)

composed from the registered losses ``clip-target`` (weight 1), ``latent-l2`` (``l2_lambda``, the
sum form of §5/§9.8, per image) and ``identity`` (``id_lambda``; composed only when it is > 0, so
the identity net is never built otherwise, as the reference skips ``IDLoss`` at λ_ID = 0).
Adam (default betas) runs ``steps`` steps with StyleCLIP's ``get_lr`` schedule
(:func:`cfs_core.schedules.styleclip_lr`: lr 0 at step 0, full after 5 %, cosine decay over the
last 25 %). Noise is the generator's stored noise (``randomize_noise=False``, §9.5), so nothing
is random and the result depends on the inputs only.

Targets: ``text`` guidance is one prompt with no templates (the reference's
``clip.tokenize(description)``; ``templates=true`` averages the 79 ImageNet templates instead);
``clipart``, ``sketch`` and ``exemplar`` guidance is a CLIP image embedding with the model's
standard preprocessing, as TargetCLIP embeds its target photo (§8). Generated images always go
through the adapter's generated-image path (nearest ×7, average pooling, no normalisation; §2,
§9.1). The target is embedded once per edit and reaches the loss as ``extras['clip.target']``.

Variants (two method ids, so that ``EditResult.latents`` always renders to ``EditResult.images``
in the declared ``latent_space``):

* ``latent-opt``: the variable is the full W+ ``[B, L, D]``; returns W+.
* ``latent-opt-s``: the reference's ``--work_in_stylespace``: the variable is the StyleSpace list
  of the source (``G.styles(w_s)``); only the non-ToRGB entries are optimised, the ToRGB ones stay
  bit-identical; L2 = Σ over all entries of Σ (s_c − s_c,0)²; returns the StyleSpace list
  ``[B, C_i]`` (``latent_space = "s"``; the edit has no W+ equivalent).

What is returned (``faithful``): the reference returns ``img_gen`` of the **last forward**, i.e.
the image *before* the final Adam update — except when its intermediate-image saving
(``--save_intermediate_image_every 20``) re-renders the code after the update on the last step,
which happens when ``(steps − 1) % 20 == 0``. ``faithful=true`` reproduces exactly that (and
returns the code that rendered the returned image); the default renders the final code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import Field

from cfs_core.errors import InputError
from cfs_core.guidance import Guidance
from cfs_core.losses import ComposedLoss, LossInputs
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, LatentSpace, MethodOptions
from cfs_core.nets.protocols import CLIP, ClipEncoder
from cfs_core.schedules import styleclip_lr

if TYPE_CHECKING:
    from cfs_core.stylegan2 import Generator

ACCEPTS = frozenset({"text", "clipart", "sketch", "exemplar"})
STAGE = "optimise"
# SC run_optimization.py: --save_intermediate_image_every default; the re-render it triggers
# decides which image the reference returns (module docstring, ``faithful``).
REFERENCE_SAVE_EVERY = 20
DEFAULT_LOSSES = {"clip-target": 1.0, "latent-l2": 0.008, "identity": 0.0}


class LatentOptOptions(MethodOptions):
    """Options of ``latent-opt`` / ``latent-opt-s`` (defaults: the reference script's, §5)."""

    steps: int = Field(300, ge=1, le=100_000, description=(
        "Adam steps (reference script default 300; the StyleCLIP notebook uses 40 with id_lambda=0.005 — "
        "the lr schedule is relative to the step count, so fewer steps give a weaker, faster edit)"))
    lr: float = Field(0.1, gt=0.0, le=10.0, description="peak learning rate of the StyleCLIP cosine schedule")
    l2_lambda: float = Field(0.008, ge=0.0, description="weight of latent-l2, the summed squared distance to the source code")
    id_lambda: float = Field(0.0, ge=0.0, description=(
        "weight of the identity loss (0: the identity net is never built; the notebook uses 0.005)"))
    templates: bool = Field(False, description=(
        "text targets only: average the 79 ImageNet prompt templates (reference: the bare prompt)"))
    faithful: bool = Field(False, description=(
        "return what the reference returns: the image of the last forward, before the final update"))


@dataclass
class _Code:
    """The optimised code: W+ as one ``[B, L, D]`` entry, or the StyleSpace list ``[B, C_i]``."""

    space: LatentSpace
    entries: list[torch.Tensor]  # trainable ones require grad
    source: list[torch.Tensor]

    @classmethod
    def start(cls, gen: Generator, wplus: torch.Tensor, space: LatentSpace) -> _Code:
        with torch.no_grad():
            if space == "w+":
                source = [wplus.detach().clone()]
                trainable = [True]
            else:  # §5 StyleSpace variant: s from the source W+, only non-ToRGB entries get gradients
                source = [s.detach().clone() for s in gen.styles(wplus)]
                trainable = [not layer.is_torgb for layer in gen.stylespace]
        entries = [s.clone().requires_grad_(grad) for s, grad in zip(source, trainable)]
        return cls(space, entries, source)

    @property
    def params(self) -> list[torch.Tensor]:
        return [e for e in self.entries if e.requires_grad]

    def render(self, gen: Generator) -> torch.Tensor:
        if self.space == "w+":
            return gen.synthesis(self.entries[0], noise="const")
        return gen.synthesis_from_styles(self.entries, noise="const")

    def l2_pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(edited, source) for ``latent-l2``: W+ as is; StyleSpace flattened to ``[B, ΣC_i]``, whose
        summed squared difference is §5's Σ_c Σ (s_c − s_c,0)²."""
        if self.space == "w+":
            return self.entries[0], self.source[0]
        return torch.cat(self.entries, 1), torch.cat(self.source, 1)

    def snapshot(self) -> torch.Tensor | list[torch.Tensor]:
        if self.space == "w+":
            return self.entries[0].detach().clone()
        return [e.detach().clone() for e in self.entries]


def target_embedding(clip: ClipEncoder, guidance: Guidance, templates: bool) -> torch.Tensor:
    """``t̂`` ``[1, D]``: the text prompt (one prompt, or the 79-template average) or the guidance image."""
    if guidance.kind == "text":
        if not guidance.text:
            raise InputError("latent-opt: text guidance without text")
        return clip.encode_text([guidance.text], templates=templates).reshape(1, -1)
    if guidance.image is None:
        raise InputError(f"latent-opt: '{guidance.kind}' guidance carries no image (load it with its guidance kind)")
    return clip.encode_images([guidance.image]).reshape(1, -1)


class _LatentOptimisation(EditingMethod):
    """Shared implementation; the subclasses fix the variable's space."""

    accepts: ClassVar[frozenset[str]] = ACCEPTS
    Options: ClassVar[type[MethodOptions]] = LatentOptOptions
    default_losses: ClassVar[Mapping[str, float]] = DEFAULT_LOSSES
    requires: ClassVar[frozenset[str]] = frozenset({CLIP})
    # No option goes linearly from "no change" to "full edit": the edit's strength is set by the
    # step count and (inversely) by l2_lambda, so --strength / --sweep do not apply.
    strength_option: ClassVar[str | None] = None

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        options: LatentOptOptions = request.options  # type: ignore[assignment]  # validated by the host
        gen, started = ctx.generator, time.perf_counter()
        weights = {"clip-target": 1.0, "latent-l2": options.l2_lambda, "identity": options.id_lambda}
        losses = ctx.compose_losses(weights, needed_by=f"method '{self.method_id}'")  # identity only if > 0

        with torch.no_grad():
            wplus = gen.to_wplus(request.latents.detach().to(ctx.device))
            source_images = gen.synthesis(wplus, noise="const")  # img_orig (§5 step 3)
            templates = options.templates and request.guidance.kind == "text"
            target = target_embedding(ctx.resources.get(CLIP), request.guidance, templates)
        code = _Code.start(gen, wplus, self.latent_space)
        extras = {"clip.target": target, "clip.templates": templates}

        def inputs(images: torch.Tensor) -> LossInputs:
            edited, source = code.l2_pair()
            return LossInputs(images=images, source_images=source_images, latents=edited, source_latents=source,
                              guidance=request.guidance, extras=dict(extras))

        run = _optimise(ctx, gen, code, losses, inputs, options)
        info: dict[str, Any] = {
            "space": self.latent_space, "target": request.guidance.kind, "steps": options.steps, "lr": options.lr,
            "l2_lambda": options.l2_lambda, "id_lambda": options.id_lambda, "templates": templates,
            "faithful": options.faithful, "returned": run.returned, "loss": run.final_total,
            "losses": {"source": run.source_parts, "final": run.final_parts}, "loss_curve": run.curve,
            "seconds": round(time.perf_counter() - started, 3),
        }
        if self.latent_space == "s":
            info["optimised_entries"] = [layer.index for layer in gen.stylespace if not layer.is_torgb]
        return EditResult(images=run.images, latents=run.latents, latent_space=self.latent_space, info=info)


@dataclass
class _Run:
    images: torch.Tensor
    latents: torch.Tensor | list[torch.Tensor]
    returned: str
    curve: list[float]
    source_parts: dict[str, float]
    final_parts: dict[str, float]
    final_total: float


def _optimise(ctx: EditContext, gen: Generator, code: _Code, losses: ComposedLoss,
              inputs: Callable[[torch.Tensor], LossInputs], options: LatentOptOptions) -> _Run:
    """The loop of §5 step 5 (Adam, ``get_lr`` each step, forward, loss, update)."""
    steps, params = options.steps, code.params
    optimizer = torch.optim.Adam(params, lr=options.lr)
    curve: list[float] = []
    source_parts: dict[str, float] = {}
    last: tuple[torch.Tensor, Any, dict[str, float], float] | None = None
    for i in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = styleclip_lr(i, steps, options.lr)
        images = code.render(gen)
        total, parts = losses(inputs(images))
        # autograd.grad, not backward(): nothing accumulates in the generator's or the nets' .grad
        grads = torch.autograd.grad(total, params, allow_unused=True)
        value = float(total.detach())
        curve.append(value)
        if i == 0:
            source_parts = {**parts, "total": value}  # step 0 renders the untouched source code
        if i == steps - 1:
            last = (images.detach(), code.snapshot(), parts, value)
        for p, g in zip(params, grads):
            p.grad = g if g is not None else torch.zeros_like(p)
        optimizer.step()
        ctx.report(STAGE, i + 1, steps, loss=value, **parts)
    for p in params:
        p.grad = None
    assert last is not None  # steps >= 1

    if options.faithful and (steps - 1) % REFERENCE_SAVE_EVERY != 0:
        images, latents, parts, value = last
        return _Run(images, latents, "last forward, before the final update (reference)", curve, source_parts,
                    {**parts, "total": value}, value)
    with torch.no_grad():
        images = code.render(gen)
        total, parts = losses(inputs(images))
    value = float(total)
    returned = "final code (reference: re-rendered by its intermediate saving)" if options.faithful else "final code"
    return _Run(images, code.snapshot(), returned, curve, source_parts, {**parts, "total": value}, value)


class LatentOptimisation(_LatentOptimisation):
    """StyleCLIP latent optimisation of the W+ code (§5)."""

    method_id: ClassVar[str] = "latent-opt"
    description: ClassVar[str] = "StyleCLIP latent optimisation: Adam on the W+ code toward a CLIP text or image target"
    latent_space: ClassVar[LatentSpace] = "w+"


class LatentOptimisationS(_LatentOptimisation):
    """StyleCLIP latent optimisation of the StyleSpace vectors (§5, ``--work_in_stylespace``)."""

    method_id: ClassVar[str] = "latent-opt-s"
    description: ClassVar[str] = (
        "StyleCLIP latent optimisation in StyleSpace: Adam on the non-ToRGB style vectors toward a CLIP target")
    latent_space: ClassVar[LatentSpace] = "s"


METHODS: Sequence[type[EditingMethod]] = (LatentOptimisation, LatentOptimisationS)
