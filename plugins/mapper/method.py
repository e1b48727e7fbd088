"""StyleCLIP latent mapper (method ``mapper``): a network trained per prompt edits any face in one pass.

Spec ``styleclip_stylegan2.md`` §6 (architecture, checkpoints, inference, training), §2, §3, §9.
The network is :class:`cfs_core.nets.mapper.LevelsMapper` (coarse/medium/fine ``Mapper`` s with
StyleCLIP's PixelNorm-over-entries and last-dim-bias quirks, level slices generalised to any
``n_latent``). Inference, as ``mapper/scripts/inference.py``::

    ŵ = w + strength · M(w)      (strength 0.1)
    x̂ = G(ŵ)                     (stored noise: randomize_noise=False, truncation 1)

The mapper comes from ``-o checkpoint=FILE`` (a StyleCLIP ``.pt`` — ``{'state_dict': mapper.*,
decoder.*, 'opts'}`` — or a cfs mapper ``.safetensors``; its width must equal the generator's
``style_dim``; nothing is trained), or else from the artefact cache, trained first when missing
(:mod:`cfs_plugins.mapper.training`; ``cfs train mapper --text …`` does the same ahead of time).
Neither path changes the generator; the edit itself draws no randomness.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from cfs_core.errors import InputError
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, LatentSpace, MethodOptions
from cfs_core.nets.mapper import LevelsMapper, load_mapper
from cfs_plugins.mapper.options import MapperOptions
from cfs_plugins.mapper.training import obtain_mapper


class StyleClipMapper(EditingMethod):
    """StyleCLIP's latent mapper: ``w + 0.1·M(w)`` with a LevelsMapper trained for the prompt."""

    method_id: ClassVar[str] = "mapper"
    description: ClassVar[str] = "StyleCLIP latent mapper: a per-prompt network edits W+ as w + 0.1·M(w) (trainable)"
    accepts: ClassVar[frozenset[str]] = frozenset({"text"})
    latent_space: ClassVar[LatentSpace] = "w+"
    Options: ClassVar[type[MethodOptions]] = MapperOptions
    default_losses: ClassVar[dict[str, float]] = {"clip-target": 1.0, "identity": 0.1, "latent-l2-mean": 0.8}
    requires: ClassVar[frozenset[str]] = frozenset({"clip"})
    strength_option: ClassVar[str | None] = "strength"

    def train(self, ctx: EditContext, request: EditRequest) -> dict[str, Any]:
        """Train (or resume, or find cached) the mapper for ``request.guidance.text``.

        Trains on ``request.latents`` when it holds any, else on seeded ψ-truncated samples of
        the generator (what an edit that finds no mapper trains on).
        """
        options: MapperOptions = request.options  # type: ignore[assignment]
        if options.checkpoint is not None:
            raise InputError("mapper: option 'checkpoint' names an already trained mapper; drop it to train one")
        latents = request.latents if request.latents is not None and request.latents.numel() > 0 else None
        return obtain_mapper(ctx, request.guidance, options, latents).facts

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        options: MapperOptions = request.options  # type: ignore[assignment]
        gen = ctx.generator
        mapper, about = self._mapper(ctx, request, options)
        ctx.report("edit", 0, 1, "mapping")
        with torch.no_grad():
            w = gen.to_wplus(request.latents.to(ctx.device))
            w_hat = mapper.apply(w, options.strength)  # a new tensor: request.latents is untouched
            images = gen.synthesis(w_hat, noise="const")
        ctx.report("edit", 1, 1, "done")
        info = {"strength": options.strength, "mapper": about,
                "delta_norm": [float(v) for v in (w_hat - w).flatten(1).norm(dim=1)]}
        return EditResult(images=images, latents=w_hat, latent_space=self.latent_space, info=info)

    def _mapper(self, ctx: EditContext, request: EditRequest, options: MapperOptions) -> tuple[LevelsMapper, dict[str, Any]]:
        """The mapper to apply and JSON-able facts about where it came from."""
        if options.checkpoint is None:
            trained = obtain_mapper(ctx, request.guidance, options)
            return trained.mapper, {"source": "cache" if trained.facts["cached"] else "trained", **trained.facts}
        loaded = load_mapper(options.checkpoint, ctx.device)
        width = loaded.mapper.config.latent_dim
        if width != ctx.generator.style_dim:
            raise InputError(f"{options.checkpoint}: a mapper of width {width} does not fit a generator with "
                             f"style_dim {ctx.generator.style_dim}")
        trained_for = loaded.opts.get("description")
        about = {"source": "checkpoint", "path": str(loaded.path), "layout": loaded.layout,
                 "levels": [lv for lv in ("coarse", "medium", "fine") if loaded.mapper.config.enabled(lv)]}
        if trained_for is not None:
            about["trained_for"] = str(trained_for)
        return loaded.mapper, about
