"""The ``stylemix`` editing method: move chosen W+ slots toward the face of a seed.

For guidance ``seed:N`` the target is the code the generator draws for seed ``N``: ``z`` from a
CPU ``torch.Generator`` seeded with ``N`` (as :meth:`Generator.sample` and ``cfs generate --seed
N`` draw it), mapped to ``w`` and truncated toward :meth:`Generator.truncation_center`. On the
slots chosen by ``layers`` (see :mod:`cfs_stylemix.slots`) the source code moves toward it::

    w'[:, slots] = w[:, slots] + strength · (w_target − w[:, slots])

The method uses only the generator's documented API (``mapping``, ``truncate``,
``truncation_center``, ``to_wplus``, ``synthesis``, ``n_latent``, ``style_dim``) and never
changes its weights. It is deterministic: nothing random happens beyond the seeded ``z``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field

from cfs_core.errors import InputError
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, LatentSpace, MethodOptions
from cfs_stylemix.slots import slot_ranges


class StyleMixOptions(MethodOptions):
    """Options of ``stylemix`` (``-o layers=coarse -o strength=0.5``)."""

    layers: Literal["coarse", "middle", "fine", "all"] = Field(
        "middle", description="which W+ slots move: coarse (pose, shape), middle (features), fine (colours), all")
    strength: float = Field(1.0, ge=0.0, le=1.0, description="0 keeps the source, 1 takes the seed's slots")
    truncation: float = Field(0.7, ge=0.0, le=2.0, description="truncation psi of the seed's face (1 = none)")


class StyleMix(EditingMethod):
    """Style mixing toward the face a generator draws for a seed."""

    method_id: ClassVar[str] = "stylemix"
    description: ClassVar[str] = "style mixing: move coarse/middle/fine W+ slots toward the face of a seed"
    accepts: ClassVar[frozenset[str]] = frozenset({"seed"})
    latent_space: ClassVar[LatentSpace] = "w+"
    Options: ClassVar[type[MethodOptions]] = StyleMixOptions
    strength_option: ClassVar[str | None] = "strength"

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        options: StyleMixOptions = request.options  # type: ignore[assignment]  # validated by the host
        seed = request.guidance.meta.get("seed")
        if not isinstance(seed, int):
            raise InputError(f"method '{self.method_id}' needs guidance loaded by the 'seed' kind (got {request.guidance.kind})")
        gen = ctx.generator
        slots = slot_ranges(gen.n_latent)[options.layers]

        with torch.no_grad():
            ctx.report("stylemix", 0, 3, f"mapping seed {seed}")
            z = torch.randn(1, gen.style_dim, generator=torch.Generator().manual_seed(seed)).to(ctx.device)
            w_target = gen.mapping(z)
            if options.truncation != 1.0:
                w_target = gen.truncate(w_target, options.truncation, gen.truncation_center())
            target = gen.to_wplus(w_target)  # [1, L, D]

            ctx.report("stylemix", 1, 3, f"mixing slots {slots.start}-{slots.stop - 1}")
            source = gen.to_wplus(request.latents.to(ctx.device))
            mixed = source.clone()  # never mutate the caller's latents
            # torch.lerp is start + weight·(end − start), exact at weight 0 and 1.
            mixed[:, slots] = torch.lerp(source[:, slots], target[:, slots].expand_as(source[:, slots]), options.strength)

            ctx.report("stylemix", 2, 3, "rendering")
            images = gen.synthesis(mixed)
            ctx.report("stylemix", 3, 3, "done")

        info = {"seed": seed, "layers": options.layers, "slots": list(slots), "n_latent": gen.n_latent,
                "strength": options.strength, "truncation": options.truncation}
        return EditResult(images=images, latents=mixed, latent_space=self.latent_space, info=info)
