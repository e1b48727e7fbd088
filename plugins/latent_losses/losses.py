"""Latent L2 regularisers in the two forms the references use.

* ``latent-l2`` (StyleCLIP latent optimisation, spec §5): ``Σ (w − w₀)²`` over every element,
  divided by the batch size.
* ``latent-l2-mean``: ``mean((w − w₀)²)`` over every element (the mapper's form).
* ``adaptor-l2``: ClipFaceShop's regulariser of its adaptor parameters.
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


class AdaptorL2(Loss):
    """ClipFaceShop's regulariser of the adaptor (spec clipfaceshop.md §2.7).

    ``L = ½‖M ⊙ A‖² + ½‖M ⊙ d‖²`` for the adaptor scale ``A`` and shift ``d`` (``extras['adaptor.A']``,
    ``extras['adaptor.d']``, both ``[1, L, D]``) and the layer mask ``M`` (``extras['adaptor.mask']``,
    ``[1, L, 1]``; all layers when absent). It pulls A toward 0, not 1, as the reference does; the
    reference weight is 5e-5.
    """

    loss_id: ClassVar[str] = "adaptor-l2"
    description: ClassVar[str] = "L2 regulariser of an adaptor's scale A and shift d on its selected layers"
    formula: ClassVar[str] = "0.5*||M*A||^2 + 0.5*||M*d||^2"

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        scale = inputs.need("adaptor.A", self.loss_id)
        shift = inputs.need("adaptor.d", self.loss_id)
        mask = inputs.extras.get("adaptor.mask")
        if mask is not None:
            scale, shift = mask * scale, mask * shift
        return 0.5 * scale.pow(2).sum() + 0.5 * shift.pow(2).sum()
