"""The first-party latent losses through the conformance kit, with hand-computed values."""

from __future__ import annotations

import pytest
import torch

import cfs_plugins.latent_losses
from cfs_core.errors import InputError
from cfs_core.losses import LossInputs
from cfs_core.resources import Resources
from cfs_core.testing import LossTests
from cfs_plugins.latent_losses.losses import LatentL2, LatentL2Mean


def twos_inputs() -> LossInputs:
    """w − w0 = 2 everywhere, shape (2, 3, 4)."""
    w0 = torch.linspace(-1, 1, 24).reshape(2, 3, 4)
    return LossInputs(latents=(w0 + 2).requires_grad_(True), source_latents=w0)


class TestLatentL2(LossTests):
    plugin = cfs_plugins.latent_losses
    loss_cls = LatentL2

    def get_inputs(self) -> LossInputs:
        return twos_inputs()


class TestLatentL2Mean(LossTests):
    plugin = cfs_plugins.latent_losses
    loss_cls = LatentL2Mean

    def get_inputs(self) -> LossInputs:
        return twos_inputs()


def test_sum_form_value() -> None:
    # Σ (w − w0)² / B = 4 · (3·4·2 elements) / 2 = 48
    assert LatentL2(Resources())(twos_inputs()).item() == pytest.approx(48.0)


def test_mean_form_value() -> None:
    assert LatentL2Mean(Resources())(twos_inputs()).item() == pytest.approx(4.0)


def test_zero_when_unchanged() -> None:
    w = torch.randn(3, 5, 8)
    inputs = LossInputs(latents=w.clone(), source_latents=w)
    assert LatentL2(Resources())(inputs).item() == 0.0
    assert LatentL2Mean(Resources())(inputs).item() == 0.0


def test_sum_form_is_per_sample() -> None:
    """Doubling the batch with the same rows leaves the sum form unchanged (it divides by B)."""
    inputs = twos_inputs()
    assert inputs.latents is not None and inputs.source_latents is not None
    doubled = LossInputs(latents=torch.cat([inputs.latents] * 2), source_latents=torch.cat([inputs.source_latents] * 2))
    assert LatentL2(Resources())(doubled).item() == pytest.approx(48.0)
    assert LatentL2Mean(Resources())(doubled).item() == pytest.approx(4.0)


def test_hand_computed_mixed_differences() -> None:
    w0 = torch.zeros(1, 2, 2)
    w = torch.tensor([[[1.0, -2.0], [0.0, 3.0]]])
    inputs = LossInputs(latents=w, source_latents=w0)
    assert LatentL2(Resources())(inputs).item() == pytest.approx(14.0)  # 1 + 4 + 0 + 9
    assert LatentL2Mean(Resources())(inputs).item() == pytest.approx(3.5)


@pytest.mark.parametrize(("loss_cls", "grad_value"), [(LatentL2, 2 * 2 / 2), (LatentL2Mean, 2 * 2 / 24)])
def test_gradient_flows_to_latents_only(loss_cls: type, grad_value: float) -> None:
    inputs = twos_inputs()
    assert inputs.latents is not None and inputs.source_latents is not None
    value = loss_cls(Resources())(inputs)
    assert value.requires_grad
    value.backward()
    assert inputs.latents.grad is not None
    assert torch.allclose(inputs.latents.grad, torch.full((2, 3, 4), grad_value))
    assert inputs.source_latents.grad is None and not inputs.source_latents.requires_grad


def test_no_graph_without_trainable_latents() -> None:
    w0 = torch.zeros(1, 2, 3)
    value = LatentL2(Resources())(LossInputs(latents=w0 + 1, source_latents=w0))
    assert not value.requires_grad


@pytest.mark.parametrize("missing", ["latents", "source_latents"])
@pytest.mark.parametrize("loss_cls", [LatentL2, LatentL2Mean])
def test_missing_latents_are_an_input_error(loss_cls: type, missing: str) -> None:
    inputs = twos_inputs()
    setattr(inputs, missing, None)
    with pytest.raises(InputError, match=f"loss '{loss_cls.loss_id}' needs the edited and the source latents"):
        loss_cls(Resources())(inputs)


def test_declared_metadata() -> None:
    assert LatentL2.describe() == {"id": "latent-l2", "description": LatentL2.description,
                                   "formula": "sum((w - w0)^2) / B", "requires": []}
    assert LatentL2Mean.describe()["formula"] == "mean((w - w0)^2)"
    assert LatentL2.requires == frozenset() and LatentL2Mean.requires == frozenset()
