"""Latent L2 regularisers in the two forms the references use.

* ``latent-l2`` (StyleCLIP latent optimisation, spec §5): ``Σ (w − w₀)²`` over every element,
  divided by the batch size.
* ``latent-l2-mean``: ``mean((w − w₀)²)`` over every element (the mapper's form).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from cfs_core.errors import InputError
from cfs_core.losses import Loss, LossInputs


def _pair(inputs: LossInputs, loss_id: str) -> tuple[torch.Tensor, torch.Tensor]:
    if inputs.latents is None or inputs.source_latents is None:
        raise InputError(f"loss '{loss_id}' needs the edited and the source latents")
    return inputs.latents, inputs.source_latents


class LatentL2(Loss):
    loss_id: ClassVar[str] = "latent-l2"
    description: ClassVar[str] = "squared distance of the edited latent to the source latent (sum form)"
    formula: ClassVar[str] = "sum((w - w0)^2) / B"

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        w, w0 = _pair(inputs, self.loss_id)
        return (w - w0).pow(2).sum() / w.shape[0]


class LatentL2Mean(Loss):
    loss_id: ClassVar[str] = "latent-l2-mean"
    description: ClassVar[str] = "squared distance of the edited latent to the source latent (mean form)"
    formula: ClassVar[str] = "mean((w - w0)^2)"

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        w, w0 = _pair(inputs, self.loss_id)
        return (w - w0).pow(2).mean()
