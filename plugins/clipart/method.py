"""ClipFaceShop ("Bring Clipart to Life", ICCV 2023) as the cfs method ``clipart`` (spec clipfaceshop.md).

One global edit per clipart (§1.1): an affine map ``w' = (M⊙A + 1 − M)⊙w + M⊙d`` on the
top-``mpp_d`` W+ slots of a layer ranking (§1.3, :mod:`~cfs_plugins.clipart.ranking`), trained
on batches of a latent pool with the paper's losses (§2) and schedule (§1.5,
:mod:`~cfs_plugins.clipart.training`). The trained adaptor is cached (safetensors + its options)
under ``<cache_dir>/clipart-adaptor/<key>.safetensors``, keyed by the clipart's content digest,
the digests of the models it was trained against, the base embedding, the ranking, the training
options and the seed: a second face edited with the same clipart costs one generator pass.

``cfs train clipart --clipart c.png`` trains (or finds) the adaptor; ``cfs edit`` loads it,
training first when missing, and applies it (§3) in the ``form`` chosen: ``full`` (A⊙w + d, as
trained) or ``shift`` (w + d, what the released demo renders), scaled by ``strength``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from cfs_core.artifacts import artifact_key
from cfs_core.errors import InputError
from cfs_core.losses import ComposedLoss
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, LatentSpace, MethodOptions
from cfs_core.nets.protocols import CLIP, IDENTITY, PARSER, unit
from cfs_plugins.clipart import training
from cfs_plugins.clipart.adaptor import Adaptor, initial_parameters
from cfs_plugins.clipart.base import resolve_base
from cfs_core.artifacts import model_digest, tensor_digest
from cfs_plugins.clipart.ranking import layer_mask, ranking_key_part, resolve_ranking, top_slots

ARTIFACT_KIND = "clipart-adaptor"
ARTIFACT_VERSION = 1
POOL_RNG, INIT_RNG = 0, 1  # ctx.rng offsets
# The reference's background weight 1e-7 on Σ|…|/N equals this weight on the per-pixel mean at
# 1024² (1e-7 · 3 · 1024² = 0.3146, spec §2.6): the corrected loss's default.
REFERENCE_BACKGROUND = 1e-7
CORRECTED_BACKGROUND = REFERENCE_BACKGROUND * 3 * 1024 * 1024
GAP_EPS = 1e-5
APPLY_OPTIONS = frozenset({"form", "strength"})  # options that do not change the trained adaptor


class ClipartOptions(MethodOptions):
    """Options of ``clipart`` (defaults: the README command, spec §1.6)."""

    steps: int = Field(300, ge=1, description="training steps (one fresh batch each)")
    batch: int = Field(3, ge=1, description="training batch size N (the reference's --num_images)")
    lr: float = Field(0.1, gt=0, description="peak Adam lr of TargetCLIP's warm-up/cosine schedule")
    mpp_d: int = Field(5, ge=1, description="number of W+ slots the adaptor edits (top of the ranking)")
    ranking: str = Field("auto", description="layer ranking: auto (FFHQ-1024's for an 18x512 generator, else "
                                             "sensitivity), ffhq, sensitivity, or slots '4,6,8,2,3'")
    truncation: float = Field(0.7, ge=0.0, le=2.0, description="psi of the sampled pool and of d's random init")
    pool: Literal["sample", "latents"] = Field("sample", description="training pool: seeded psi samples of the "
                                               "generator, or the request's latents (e.g. inverted photos)")
    pool_size: int | None = Field(None, ge=1, description="sampled pool size (default steps x batch: one pass)")
    base: str = Field("auto", description="base clipart embedding: auto (resource clip_base, else fallback), "
                                          "fallback, a [D] vector file, or a folder of clipart images")
    lambda_transfer: float = Field(1.0, ge=0, description="weight of clip-target (transfer, §2.1)")
    lambda_gaps: float = Field(1.0, ge=0, description="weight of clip-direction (gap vs the base clipart, §2.2)")
    lambda_consistency: float = Field(0.1, ge=0, description="weight of clip-consistency (§2.3)")
    lambda_sourcesim: float = Field(0.3, ge=0, description="weight of clip-source (§2.4)")
    lambda_id: float = Field(1.5, ge=0, description="weight of identity (ArcFace, §2.5)")
    lambda_background: float | None = Field(None, ge=0, description="weight of background-l1 (§2.6); default "
                                            "1e-7 (faithful, sum form) or 0.3146 (corrected, per-pixel mean)")
    weight_decay: float = Field(5e-5, ge=0, description="weight of adaptor-l2 (§2.7)")
    faithful: bool = Field(False, description="reproduce the reference's quirks (spec §6: A init, best snapshot, "
                                              "background mask, last-step d in the shift form)")
    form: Literal["full", "shift"] = Field("full", description="apply A*w + d (as trained) or w + d (the demo)")
    strength: float = Field(1.0, ge=-10.0, le=10.0, description="1 = as trained, 0 = unedited, in between interpolates")


class ClipFaceShop(EditingMethod):
    """ClipFaceShop's selective feature adaptor, trained once per clipart and cached."""

    method_id: ClassVar[str] = "clipart"
    description: ClassVar[str] = "ClipFaceShop: a per-clipart W+ adaptor (A*w + d on selected layers), trained, cached"
    accepts: ClassVar[frozenset[str]] = frozenset({"clipart", "sketch", "exemplar"})
    latent_space: ClassVar[LatentSpace] = "w+"
    Options: ClassVar[type[MethodOptions]] = ClipartOptions
    default_losses: ClassVar[dict[str, float]] = {
        "clip-target": 1.0, "clip-direction": 1.0, "clip-consistency": 0.1, "clip-source": 0.3, "identity": 1.5,
        "background-l1": CORRECTED_BACKGROUND, "adaptor-l2": 5e-5,
    }
    requires: ClassVar[frozenset[str]] = frozenset({CLIP})
    strength_option: ClassVar[str | None] = "strength"

    # ------------------------------------------------------------------ entry points
    def train(self, ctx: EditContext, request: EditRequest) -> dict[str, Any]:
        """Train (or find in the cache) the adaptor of ``request.guidance``; JSON-able facts."""
        _, facts = self.adaptor(ctx, request)
        return facts

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        """Apply the clipart's adaptor (trained first when not cached) to ``request.latents``."""
        options: ClipartOptions = request.options  # type: ignore[assignment]
        adaptor, facts = self.adaptor(ctx, request)
        gen = ctx.generator
        ctx.report("edit", 0, 1, f"applying the adaptor ({options.form} form)")
        with torch.no_grad():
            w = gen.to_wplus(request.latents.to(ctx.device))
            edited = adaptor.to(w.device).apply(w, options.form, options.strength,
                                                last_shift=options.faithful and options.form == "shift")
            images = gen.synthesis(edited)
        ctx.report("edit", 1, 1, "rendered")
        info = {"form": options.form, "strength": options.strength, "faithful": options.faithful, **facts}
        artifacts = {**adaptor.tensors(), "ranking": torch.tensor(facts["ranking"], dtype=torch.int64)}
        return EditResult(images=images, latents=edited, latent_space=self.latent_space, info=info, artifacts=artifacts)

    # ------------------------------------------------------------------ the adaptor
    def weights(self, options: ClipartOptions) -> dict[str, float]:
        """Loss id → weight from the options (spec §2.8)."""
        background = options.lambda_background
        if background is None:
            background = REFERENCE_BACKGROUND if options.faithful else CORRECTED_BACKGROUND
        return {"clip-target": options.lambda_transfer, "clip-direction": options.lambda_gaps,
                "clip-consistency": options.lambda_consistency, "clip-source": options.lambda_sourcesim,
                "identity": options.lambda_id, "background-l1": background, "adaptor-l2": options.weight_decay}

    def adaptor(self, ctx: EditContext, request: EditRequest) -> tuple[Adaptor, dict[str, Any]]:
        """The cached adaptor for this request, or a freshly trained (and cached) one."""
        options: ClipartOptions = request.options  # type: ignore[assignment]
        guidance = request.guidance
        self.check_guidance(guidance.kind)
        if guidance.image is None:
            raise InputError(f"method '{self.method_id}' needs an image guidance ({guidance.kind} has none)")
        weights = self.weights(options)
        loss = ctx.compose_losses(weights, needed_by=f"method '{self.method_id}'")
        base_spec = resolve_base(ctx, options.base) if weights["clip-direction"] else None
        key_parts = self._key_parts(ctx, request, weights, base_spec.digest if base_spec else "unused")
        key = artifact_key(ARTIFACT_KIND, **key_parts)
        cache = ctx.artifacts()
        hit = cache.load(ARTIFACT_KIND, key)
        if hit is not None and {"A", "d", "mask"} <= set(hit[0]):
            tensors, meta = hit
            ctx.report("adaptor", 1, 1, "cached adaptor")
            facts = {**meta.get("facts", {}), "cached": True, "key": key, "path": str(cache.path(ARTIFACT_KIND, key))}
            return Adaptor.from_tensors(tensors).to(ctx.device), facts
        adaptor, tensors, facts = self._train(ctx, request, loss, weights, base_spec)
        meta = {"format": "cfs.clipart-adaptor", "version": ARTIFACT_VERSION, "options": self._train_options(options),
                "weights": weights, "key_parts": key_parts, "facts": facts}
        path = cache.save(ARTIFACT_KIND, key, {**adaptor.tensors(), **tensors}, meta)
        return adaptor, {**facts, "cached": False, "key": key, "path": str(path) if path else None}

    def _train_options(self, options: ClipartOptions) -> dict[str, Any]:
        return options.model_dump(exclude=set(APPLY_OPTIONS))

    def _key_parts(self, ctx: EditContext, request: EditRequest, weights: dict[str, float],
                   base: str) -> dict[str, Any]:
        options: ClipartOptions = request.options  # type: ignore[assignment]
        models = {"generator": model_digest(ctx.generator), "clip": ctx.resources.digest(CLIP)}
        if weights["identity"]:
            models["identity"] = ctx.resources.digest(IDENTITY)
        if weights["background-l1"]:
            models["parser"] = ctx.resources.digest(PARSER)
        pool = "sample" if options.pool == "sample" else "latents:" + tensor_digest(request.latents.float())
        return {"version": ARTIFACT_VERSION, "guidance": request.guidance.digest, "models": models, "base": base,
                "ranking": ranking_key_part(ctx, options.ranking), "options": self._train_options(options),
                "weights": weights, "pool": pool, "seed": ctx.seed}

    def _pool(self, ctx: EditContext, request: EditRequest, options: ClipartOptions) -> torch.Tensor:
        """The training W+ pool (spec §1.2: the reference's file is missing; ψ samples or given codes)."""
        gen = ctx.generator
        if options.pool == "latents":
            if request.latents.shape[0] == 0:
                raise InputError(f"method '{self.method_id}': option pool=latents needs latents to train on")
            return gen.to_wplus(request.latents.to(ctx.device)).detach()
        size = options.pool_size or options.steps * options.batch
        with torch.no_grad():
            z = torch.randn(size, gen.style_dim, generator=ctx.rng(POOL_RNG)).to(ctx.device)
            center = gen.truncation_center().to(ctx.device)
            w = torch.cat([gen.mapping(chunk) for chunk in z.split(256)])
            return gen.to_wplus(gen.truncate(w, options.truncation, center))

    def _train(self, ctx: EditContext, request: EditRequest, loss: ComposedLoss, weights: dict[str, float],
               base_spec: Any) -> tuple[Adaptor, dict[str, torch.Tensor], dict[str, Any]]:
        options: ClipartOptions = request.options  # type: ignore[assignment]
        gen, device = ctx.generator, ctx.device
        ranking, ranking_source, ranking_facts = resolve_ranking(ctx, options.ranking)
        slots = top_slots(ranking, options.mpp_d, gen.n_latent)
        mask = layer_mask(slots, gen.n_latent, device)
        clip = ctx.resources.get(CLIP)
        target = clip.encode_images([request.guidance.image]).float().to(device).reshape(1, -1)
        base = base_spec.compute().float().to(device).reshape(-1) if base_spec is not None else None
        facts: dict[str, Any] = {"slots": slots, "ranking": list(ranking), "ranking_source": ranking_source,
                                 **ranking_facts, "base_source": base_spec.source if base_spec else "unused",
                                 "weights": weights, "guidance": request.guidance.describe()}
        extra = {"ranking": torch.tensor(ranking, dtype=torch.int64), "target": target.reshape(-1).cpu()}
        if base is not None:
            extra["base"] = base.cpu()
            gap = (unit(target.reshape(-1)) - unit(base)).norm()
            if float(gap) < GAP_EPS:  # §2.0: "gap is zero so this stage is skipped"
                ident = Adaptor.from_parameters(torch.ones_like(mask.expand(1, -1, gen.style_dim)),
                                                torch.zeros(1, gen.n_latent, gen.style_dim, device=device), mask)
                return ident, extra, {**facts, "skipped": "the target equals the base clipart (zero gap)", "steps": 0}
        pool = self._pool(ctx, request, options)
        A0, d0 = initial_parameters(gen, ctx.rng(INIT_RNG), options.truncation, options.faithful, device)
        setup = training.Setup(pool=pool, mask=mask, A=A0, d=d0, target=target, base=base, guidance=request.guidance,
                               loss=loss, steps=options.steps, batch=options.batch, lr=options.lr,
                               faithful=options.faithful)
        parser = ctx.resources.get(PARSER) if options.faithful and weights["background-l1"] else None
        with training.parser_batchnorm(parser, "batch" if parser is not None else None):
            outcome = training.train(ctx, setup)
        adaptor = Adaptor.from_parameters(outcome.A, outcome.d, mask, outcome.d_last)
        return adaptor, extra, {**facts, **outcome.facts(), "pool_size": int(pool.shape[0])}
