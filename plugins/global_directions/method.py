"""The ``global`` editing method: StyleCLIP global directions in StyleSpace.

Spec ``styleclip_stylegan2.md`` §7.3–§7.5 (text direction, Δs, thresholds, rosinality mapping),
§7.1–§7.2 via :mod:`cfs_plugins.global_directions.precompute`, §2 (CLIP), §9.

An edit, for a target text and a neutral text:

1. ``Δt = normalise(t_target − t_neutral)``, each ``t`` averaged over the 79 ImageNet templates
   (``clip.encode_text([...], templates=True)``; StyleCLIP's ``zeroshot_classifier``);
2. ``r = fs3 @ Δt`` (one relevance per channel); channels with ``|r| < β`` are zeroed, the
   survivors are ``num_c``; ``r /= max|r|`` (none surviving is a one-line error);
3. ``r`` is split into StyleSpace layers in non-ToRGB order (ToRGB layers and layers without
   ``fs3`` rows get zeros) and scaled by the per-channel std: ``Δs_l = r_l · std_l``;
4. ``s' = s + α·Δs`` with ``s = generator.styles(W+)`` and the image rendered from ``s'`` with
   the generator's constant noise. α is measured in channel stds of the strongest channel.

``beta="auto"`` is the GUI's rule (``Inference.py::GetDt2``): the largest β of
``numpy.arange(auto_beta_start, auto_beta_stop, auto_beta_step)`` (0.1…0.29) that leaves more than
``auto_beta_min_channels`` channels (20 for ffhq; the GUI uses 100 for other datasets), else
``auto_beta_fallback`` (0.1).

``fs3`` and the S statistics come from the cache (``ctx.cache_dir``, keyed by generator, CLIP
and precompute options; ``cfs train global`` fills it, and an edit computes what is missing),
or from StyleCLIP's own files with ``fs3_path`` / ``stats_path``.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from cfs_core.artifacts import artifact_key, tensor_digest
from cfs_core.errors import InputError
from cfs_core.nets.protocols import CLIP
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, LatentSpace, MethodOptions
from cfs_core.stylegan2 import Generator

from cfs_plugins.global_directions.precompute import PrecomputeSettings, compute_relevance, compute_stats, \
    generator_identity, non_torgb_layers, relevance_layers
from cfs_plugins.global_directions.styleclip_files import load_fs3, load_stats, split_rows

STATS_KIND, FS3_KIND = "global_stats", "global_fs3"


class GlobalOptions(MethodOptions):
    """Options of ``global`` (``-o alpha=3 -o beta=auto -o neutral="face with hair"``)."""

    alpha: float = Field(4.1, description="strength α: channel stds added to the strongest channel (negative reverses)")
    beta: float | Literal["auto"] = Field(
        0.15, description="relevance threshold β in [0, 1] (fewer channels when higher), or 'auto' (the GUI rule)")
    neutral: str = Field("face", min_length=1, description="neutral text of Δt (e.g. 'face', 'face with hair')")
    auto_beta_start: float = Field(0.1, ge=0.0, le=1.0, description="beta=auto: first β tried")
    auto_beta_stop: float = Field(0.3, ge=0.0, le=1.0, description="beta=auto: β range end (exclusive)")
    auto_beta_step: float = Field(0.01, gt=0.0, description="beta=auto: β step")
    auto_beta_min_channels: int = Field(20, ge=0, description="beta=auto: β must leave more than this many channels")
    auto_beta_fallback: float = Field(0.1, ge=0.0, le=1.0, description="beta=auto: β when no candidate qualifies")
    fs3_path: str | None = Field(None, description="StyleCLIP fs3.npy to use instead of the cached relevance")
    stats_path: str | None = Field(None, description="StyleCLIP S_mean_std pickle to use instead of the cached stats")
    # precomputation (cfs train global; also run by an edit when the cache misses)
    n_stats: int = Field(100_000, ge=2, description="W samples for the S mean/std")
    n_images: int = Field(100, ge=1, description="images per channel for the relevance")
    stats_seed: int = Field(5, ge=0, le=2**32 - 1, description="numpy RandomState seed of the W samples")
    truncation: float = Field(0.7, ge=0.0, le=1.0, description="truncation psi of the W samples")
    max_resolution: int | None = Field(
        None, ge=4, description="relevance for non-ToRGB layers up to this resolution (default max(4, size/8))")
    all_layers: bool = Field(False, description="relevance for every non-ToRGB layer")
    sigma: float = Field(5.0, gt=0.0, description="± this many stds per channel edit")
    clip_input: Literal["images", "generated"] = Field(
        "images", description="images: uint8 + CLIP's own transform (reference); generated: encode_generated")
    batch_size: int = Field(32, ge=1, description="images per synthesis batch during the precomputation")
    faithful: bool = Field(False, description="reproduce the reference's shallow-copy quirk (channels stay at mean)")

    @model_validator(mode="after")
    def _check(self) -> GlobalOptions:
        if isinstance(self.beta, float) and not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1] or 'auto' (got {self.beta})")
        if self.auto_beta_stop <= self.auto_beta_start:
            raise ValueError("auto_beta_stop must be above auto_beta_start")
        return self

    def settings(self) -> PrecomputeSettings:
        return PrecomputeSettings(n_stats=self.n_stats, n_images=self.n_images, seed=self.stats_seed,
                                  truncation=self.truncation, max_resolution=self.max_resolution,
                                  all_layers=self.all_layers, sigma=self.sigma, clip_input=self.clip_input,
                                  faithful=self.faithful, batch_size=self.batch_size)


# ---------------------------------------------------------------------------------------------
# Δt, β and Δs (§7.3–§7.4)


def text_direction(clip: Any, target: str, neutral: str) -> torch.Tensor:
    """``Δt = normalise(t_target − t_neutral)`` over the 79 templates, float32 on CPU."""
    t = clip.encode_text([target, neutral], templates=True).detach().float().cpu()
    d = t[0] - t[1]
    norm = float(d.norm())
    if norm == 0.0:
        raise InputError(f"target {target!r} and neutral {neutral!r} give the same CLIP embedding; change the neutral text")
    return d / norm


def auto_beta(r: torch.Tensor, start: float, stop: float, step: float, min_channels: int,
              fallback: float) -> tuple[float, list[float], list[int]]:
    """The GUI's β: the largest of ``arange(start, stop, step)`` leaving more than ``min_channels``."""
    betas = np.arange(start, stop, step)
    magnitude = r.abs().numpy()
    counts = np.array([int((magnitude >= b).sum()) for b in betas])
    select = counts > min_channels
    beta = float(betas[select][-1]) if select.any() else float(fallback)
    return beta, [round(float(b), 6) for b in betas], [int(c) for c in counts]


def boundary(r: torch.Tensor, beta: float) -> tuple[torch.Tensor, int]:
    """Zero ``|r| < β``, scale the survivors by ``1/max|r|``; returns (direction, num_c)."""
    keep = r.abs() >= beta
    num_c = int(keep.sum())
    if num_c == 0:
        raise InputError(f"no channel passes β={beta:g} (largest |relevance| is {float(r.abs().max()):.3g}); lower beta")
    out = torch.where(keep, r, torch.zeros_like(r))
    return out / out.abs().max(), num_c


def channel_names(gen: Generator, rows: int) -> list[tuple[str, int]]:
    """(layer name, channel) of each of the first ``rows`` non-ToRGB channels."""
    names = [(layer.name, c) for layer in non_torgb_layers(gen) for c in range(layer.channels)]
    return names[:rows]


# ---------------------------------------------------------------------------------------------
# The method


class GlobalDirections(EditingMethod):
    """StyleCLIP global directions: a text direction mapped onto StyleSpace channels."""

    method_id: ClassVar[str] = "global"
    description: ClassVar[str] = "StyleCLIP global directions: text Δt → StyleSpace channels by CLIP relevance (fs3)"
    accepts: ClassVar[frozenset[str]] = frozenset({"text"})
    latent_space: ClassVar[LatentSpace] = "s"
    Options: ClassVar[type[MethodOptions]] = GlobalOptions
    requires: ClassVar[frozenset[str]] = frozenset({"clip"})
    strength_option: ClassVar[str | None] = "alpha"

    # -- artefacts -------------------------------------------------------------------------------

    def stats(self, ctx: EditContext, options: GlobalOptions) -> tuple[list[torch.Tensor], list[torch.Tensor], dict[str, Any]]:
        """S mean/std: from ``stats_path``, the cache, or computed now (and cached)."""
        gen = ctx.generator
        if options.stats_path:
            mean, std = load_stats(options.stats_path, gen)
            return mean, std, {"source": "file", "path": str(options.stats_path)}
        settings, cache = options.settings(), ctx.artifacts()
        key = artifact_key(STATS_KIND, generator=generator_identity(gen), **settings.stats_key())
        hit = cache.load(STATS_KIND, key)
        n = len(gen.stylespace)
        if hit is not None and all(f"mean.{i}" in hit[0] and f"std.{i}" in hit[0] for i in range(n)):
            path = cache.path(STATS_KIND, key)
            return ([hit[0][f"mean.{i}"] for i in range(n)], [hit[0][f"std.{i}"] for i in range(n)],
                    {"source": "cache", "path": str(path), "key": key})
        start = time.perf_counter()
        mean, std = compute_stats(ctx, settings)
        seconds = time.perf_counter() - start
        tensors = {**{f"mean.{i}": m for i, m in enumerate(mean)}, **{f"std.{i}": s for i, s in enumerate(std)}}
        path = cache.save(STATS_KIND, key, tensors, {**settings.stats_key(), "seconds": seconds})
        return mean, std, {"source": "computed", "path": str(path) if path else None, "key": key,
                           "seconds": round(seconds, 3), **settings.stats_key()}

    def relevance(self, ctx: EditContext, options: GlobalOptions, clip: Any, mean: list[torch.Tensor],
                  std: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
        """``fs3``: from ``fs3_path``, the cache, or computed now (and cached)."""
        gen = ctx.generator
        if options.fs3_path:
            fs3 = load_fs3(options.fs3_path, gen)
            return fs3, {"source": "file", "path": str(options.fs3_path), "rows": int(fs3.shape[0])}
        settings, cache = options.settings(), ctx.artifacts()
        key = artifact_key(FS3_KIND, generator=generator_identity(gen), clip=ctx.resources.digest(CLIP),
                           stats=tensor_digest(*mean, *std), **settings.relevance_key())
        rows = sum(layer.channels for layer in relevance_layers(gen, settings.max_resolution, settings.all_layers))
        hit = cache.load(FS3_KIND, key)
        if hit is not None and "fs3" in hit[0] and hit[0]["fs3"].shape[0] == rows:
            fs3 = hit[0]["fs3"]
            return fs3, {"source": "cache", "path": str(cache.path(FS3_KIND, key)), "key": key, "rows": rows}
        start = time.perf_counter()
        fs3, layers = compute_relevance(ctx, clip, mean, std, settings)
        seconds = time.perf_counter() - start
        meta = {**settings.relevance_key(), "layers": [layer.name for layer in layers], "rows": int(fs3.shape[0]),
                "seconds": seconds}
        path = cache.save(FS3_KIND, key, {"fs3": fs3}, meta)
        return fs3, {"source": "computed", "path": str(path) if path else None, "key": key,
                     "layers": meta["layers"], "rows": int(fs3.shape[0]), "seconds": round(seconds, 3),
                     "synthesized_images": int(fs3.shape[0]) * 2 * settings.n_images}

    # -- entry points ----------------------------------------------------------------------------

    def train(self, ctx: EditContext, request: EditRequest) -> dict[str, Any]:
        """Precompute (or find in the cache) the S statistics and ``fs3``; the guidance is unused."""
        options: GlobalOptions = request.options  # type: ignore[assignment]
        start = time.perf_counter()
        with torch.no_grad():
            mean, std, stats_info = self.stats(ctx, options)
            clip = ctx.resources.get("clip") if not options.fs3_path else None
            _, fs3_info = self.relevance(ctx, options, clip, mean, std)
        return {"stats": stats_info, "fs3": fs3_info, "seconds": round(time.perf_counter() - start, 3)}

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        options: GlobalOptions = request.options  # type: ignore[assignment]  # validated by the host
        target = request.guidance.text
        if not target:
            raise InputError(f"method '{self.method_id}' needs a text guidance (got {request.guidance.kind})")
        gen, start = ctx.generator, time.perf_counter()
        clip = ctx.resources.get("clip")
        with torch.no_grad():
            ctx.report("global", 0, 4, "S statistics")
            mean, std, stats_info = self.stats(ctx, options)
            ctx.report("global", 1, 4, "channel relevance")
            fs3, fs3_info = self.relevance(ctx, options, clip, mean, std)
            ctx.report("global", 2, 4, "text direction")
            dt = text_direction(clip, target, options.neutral)
            if fs3.shape[1] != dt.shape[0]:
                raise InputError(f"fs3 has {fs3.shape[1]}-D rows but this CLIP embeds in {dt.shape[0]} dims; "
                                 "use the fs3 of this CLIP model")
            # float64 copies: fresh, aligned memory, so a file and the cache give bit-identical r
            r = fs3.double() @ dt.double()
            auto: dict[str, Any] = {}
            if options.beta == "auto":
                beta, betas, counts = auto_beta(r, options.auto_beta_start, options.auto_beta_stop,
                                                options.auto_beta_step, options.auto_beta_min_channels,
                                                options.auto_beta_fallback)
                auto = {"betas": betas, "num_channels": counts, "min_channels": options.auto_beta_min_channels}
            else:
                beta = float(options.beta)
            direction, num_c = boundary(r, beta)
            delta = [d * s for d, s in zip(split_rows(direction, gen), std)]
            ctx.report("global", 3, 4, f"editing {num_c} channels")
            styles = gen.styles(request.latents.to(ctx.device))
            edited = [s + options.alpha * d.to(s) for s, d in zip(styles, delta)]
            images = gen.synthesis_from_styles(edited, noise="const")
            ctx.report("global", 4, 4, "done")
        order = torch.argsort(direction.abs(), descending=True)[: min(10, num_c)]
        names = channel_names(gen, fs3.shape[0])
        info = {
            "target": target, "neutral": options.neutral, "alpha": options.alpha, "beta": round(beta, 6),
            "beta_rule": "auto" if options.beta == "auto" else "fixed", "num_channels": num_c,
            "channels_per_layer": {layer.name: int((delta[layer.index] != 0).sum()) for layer in gen.stylespace
                                   if int((delta[layer.index] != 0).sum())},
            "top_channels": [[names[i][0], names[i][1], round(float(r[i]), 4)] for i in order.tolist()],
            "fs3": fs3_info, "stats": stats_info, "seconds": round(time.perf_counter() - start, 3),
        }
        if auto:
            info["auto_beta"] = auto
        return EditResult(images=images, latents=edited, latent_space=self.latent_space, info=info)
