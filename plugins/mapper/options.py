"""Options of the ``mapper`` method (spec ``styleclip_stylegan2.md`` §6).

Inference: ``strength`` (StyleCLIP's 0.1 in ``w + 0.1·M(w)``) and ``checkpoint`` (a trained mapper
file; then nothing is trained). Training (``cfs train mapper``, or the first edit of a prompt):
StyleCLIP's coach defaults except ``steps`` — the reference trains 50,000 steps on a GPU
(``max_steps``); the default here, 300, is a CPU-sized run for the demo pack (the prompt's
direction is visible on a small generator; use thousands of steps on real FFHQ weights).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cfs_core.methods import MethodOptions

DEFAULT_STEPS = 300

# Options that do not change the trained mapper (left out of its cache key).
NOT_IN_KEY = frozenset({"strength", "checkpoint", "steps", "save_every"})


class MapperOptions(MethodOptions):
    """``-o key=value`` options of ``mapper`` (training options also apply to ``cfs train mapper``)."""

    strength: float = Field(0.1, ge=-10.0, le=10.0,
                            description="step along the mapper's output: w + strength·M(w) (StyleCLIP: 0.1)")
    checkpoint: str | None = Field(
        None, description="a trained mapper file (StyleCLIP .pt or cfs .safetensors); skips training and the cache")
    steps: int = Field(DEFAULT_STEPS, ge=1, le=1_000_000,
                       description="training steps (StyleCLIP trains 50,000 on a GPU; 300 is a CPU-sized default)")
    batch_size: int = Field(2, ge=1, le=1024, description="training latents per step")
    lr: float = Field(0.5, gt=0.0, le=100.0, description="learning rate")
    optimizer: Literal["ranger", "adam"] = Field("ranger", description="ranger (RAdam + Lookahead + centralisation) or adam")
    clip_lambda: float = Field(1.0, ge=0.0, description="weight of clip-target (CLIP distance to the text)")
    id_lambda: float = Field(0.1, ge=0.0, description="weight of identity (0 trains without an identity net)")
    l2_lambda: float = Field(0.8, ge=0.0, description="weight of latent-l2-mean (mean squared W+ change)")
    no_coarse_mapper: bool = Field(False, description="leave W+ entries 0-3 unchanged")
    no_medium_mapper: bool = Field(False, description="leave W+ entries 4-7 unchanged")
    no_fine_mapper: bool = Field(False, description="leave W+ entries 8+ unchanged (keeps colours; StyleCLIP hair edits)")
    truncation: float = Field(0.7, gt=0.0, le=1.0, description="psi of the sampled training latents (when none are given)")
    save_every: int = Field(100, ge=1, description="save a resumable training state every N steps")

    @model_validator(mode="after")
    def _something_to_map(self) -> MapperOptions:
        if self.no_coarse_mapper and self.no_medium_mapper and self.no_fine_mapper:
            raise ValueError("no_coarse_mapper, no_medium_mapper and no_fine_mapper are all set: nothing left to map")
        return self

    def loss_weights(self) -> dict[str, float]:
        """``{loss id: weight}`` of the training loss (spec §6: λ_CLIP, λ_ID, λ_L2 in mean form)."""
        return {"clip-target": self.clip_lambda, "identity": self.id_lambda, "latent-l2-mean": self.l2_lambda}

    def training_key(self) -> dict[str, object]:
        """The options that determine the trained mapper (for the cache key; steps are keyed apart)."""
        return {k: v for k, v in self.model_dump().items() if k not in NOT_IN_KEY}
