"""``cfs_core.losses.compose`` (id × weight, lazy resources) and ``cfs_core.resources.Resources``."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
import torch

import cfs_plugins.latent_losses
from cfs_core import hookimpl
from cfs_core.errors import InputError
from cfs_core.losses import ComposedLoss, Loss, LossInputs, compose
from cfs_core.registration import Table
from cfs_core.resources import Resources
from cfs_registry.plugins import PluginHost


class ClipLoss(Loss):
    """Needs ``clip``: returns the mean of what the (fake) clip resource maps the latents to."""

    loss_id: ClassVar[str] = "fake-clip"
    description: ClassVar[str] = "needs the clip resource"
    requires: ClassVar[frozenset[str]] = frozenset({"clip"})

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        assert inputs.latents is not None
        return self.resources.get("clip")(inputs.latents).mean()


class IdLoss(Loss):
    loss_id: ClassVar[str] = "fake-id"
    description: ClassVar[str] = "needs the identity net and the parser"
    requires: ClassVar[frozenset[str]] = frozenset({"arcface", "parser"})

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        return torch.tensor(0.0)


class FakeLosses:
    @hookimpl
    def register_losses(self, register: Any) -> None:
        register(ClipLoss)
        register(IdLoss)


@pytest.fixture
def table() -> Table[type[Loss]]:
    host = PluginHost(autoload=False, plugins=[("latent_losses", cfs_plugins.latent_losses), ("fake", FakeLosses())])
    return host.losses


def twos() -> LossInputs:
    w0 = torch.zeros(2, 3, 4)
    return LossInputs(latents=(w0 + 2).requires_grad_(True), source_latents=w0)


class Counter:
    """A resource factory that counts its calls."""

    def __init__(self, value: Any) -> None:
        self.value, self.calls = value, 0

    def __call__(self) -> Any:
        self.calls += 1
        return self.value


# ----------------------------------------------------------------------------- compose


def test_weighted_sum_and_parts(table: Table[type[Loss]]) -> None:
    composed = compose(table, {"latent-l2": 0.5, "latent-l2-mean": 2.0}, Resources(), "method 'demo'")
    assert isinstance(composed, ComposedLoss)
    total, parts = composed(twos())
    assert parts == {"latent-l2": pytest.approx(48.0), "latent-l2-mean": pytest.approx(4.0)}
    assert total.item() == pytest.approx(0.5 * 48 + 2.0 * 4)


def test_total_is_differentiable(table: Table[type[Loss]]) -> None:
    inputs = twos()
    total, _ = compose(table, {"latent-l2-mean": 3.0}, Resources(), "m")(inputs)
    total.backward()
    assert inputs.latents is not None and inputs.latents.grad is not None
    assert torch.allclose(inputs.latents.grad, torch.full((2, 3, 4), 3.0 * 2 * 2 / 24))


def test_zero_weight_drops_the_loss_and_never_builds_its_resources(table: Table[type[Loss]]) -> None:
    clip = Counter(lambda x: x)
    resources = Resources({"clip": clip})
    composed = compose(table, {"latent-l2": 1.0, "fake-clip": 0}, resources, "m")
    assert [loss_id for loss_id, _, _ in composed.terms] == ["latent-l2"]
    total, parts = composed(twos())
    assert list(parts) == ["latent-l2"] and total.item() == pytest.approx(48.0)
    assert clip.calls == 0 and resources.built() == []


def test_zero_weight_loss_needs_no_resource_at_all(table: Table[type[Loss]]) -> None:
    composed = compose(table, {"latent-l2": 1.0, "fake-clip": 0.0, "fake-id": 0.0}, Resources(), "m")
    assert [t[0] for t in composed.terms] == ["latent-l2"]


def test_resources_are_built_on_first_use_only(table: Table[type[Loss]]) -> None:
    clip = Counter(lambda x: x * 10)
    resources = Resources({"clip": clip, "parser": Counter(object())})
    composed = compose(table, {"fake-clip": 1.0}, resources, "m")
    assert clip.calls == 0 and resources.built() == []  # compose checks, it does not build
    total, parts = composed(twos())
    assert parts == {"fake-clip": pytest.approx(20.0)}
    composed(twos())
    assert clip.calls == 1 and resources.built() == ["clip"]


def test_unknown_loss_id_lists_the_known_ones(table: Table[type[Loss]]) -> None:
    with pytest.raises(InputError) as info:
        compose(table, {"latent-l2": 1.0, "latent-l3": 1.0}, Resources(), "method 'demo'")
    message = str(info.value)
    assert message == ("method 'demo': unknown loss latent-l3 "
                       "(known: latent-l2, latent-l2-mean, adaptor-l2, fake-clip, fake-id)")


def test_unknown_loss_id_is_refused_even_with_zero_weight(table: Table[type[Loss]]) -> None:
    with pytest.raises(InputError, match="unknown loss typo"):
        compose(table, {"typo": 0}, Resources(), "m")


def test_missing_resource_is_named(table: Table[type[Loss]]) -> None:
    with pytest.raises(InputError) as info:
        compose(table, {"latent-l2": 1.0, "fake-clip": 0.5}, Resources({"parser": object}), "method 'demo'")
    assert str(info.value) == "method 'demo' needs clip, which this model set does not provide"


def test_every_missing_resource_is_named_at_once(table: Table[type[Loss]]) -> None:
    with pytest.raises(InputError, match="needs arcface, clip, which"):
        compose(table, {"fake-clip": 1.0, "fake-id": 1.0}, Resources({"parser": object}), "m")


def test_compose_with_the_real_host_table() -> None:
    table = PluginHost().losses
    total, parts = compose(table, {"latent-l2": 1.0}, Resources(), "m")(twos())
    assert parts == {"latent-l2": pytest.approx(48.0)}


# ----------------------------------------------------------------------------- Resources


def test_resources_are_lazy() -> None:
    clip, arcface = Counter("clip-net"), Counter("arcface-net")
    resources = Resources({"clip": clip, "arcface": arcface})
    assert resources.built() == [] and resources.available() == ["arcface", "clip"]
    assert resources.get("clip") == "clip-net"
    assert resources.get("clip") == "clip-net"
    assert clip.calls == 1 and arcface.calls == 0
    assert resources.built() == ["clip"]


def test_provide_replaces_and_rebuilds() -> None:
    resources = Resources({"clip": Counter("old")})
    assert resources.get("clip") == "old"
    new = Counter("new")
    resources.provide("clip", new)
    assert resources.built() == [] and new.calls == 0
    assert resources.get("clip") == "new" and new.calls == 1


def test_provide_value() -> None:
    resources = Resources()
    resources.provide_value("parser", "ready")
    assert resources.get("parser") == "ready" and resources.available() == ["parser"]


def test_missing_resource_lists_the_available_ones() -> None:
    with pytest.raises(InputError, match=r"resource 'clip' is not available \(available: none\)"):
        Resources().get("clip")
    with pytest.raises(InputError, match=r"\(available: arcface, parser\)"):
        Resources({"parser": object, "arcface": object}).get("clip")


def test_check_passes_when_everything_is_provided() -> None:
    resources = Resources({"clip": Counter(1)})
    resources.check({"clip"}, "m")
    resources.check(set(), "m")
    assert resources.built() == []


def test_failing_factory_is_retried() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("download interrupted")
        return "net"

    resources = Resources({"clip": flaky})
    with pytest.raises(RuntimeError):
        resources.get("clip")
    assert resources.built() == []
    assert resources.get("clip") == "net"


def test_all_zero_weights_is_a_clear_error(table: Table[type[Loss]]) -> None:
    with pytest.raises(InputError, match="every loss weight is zero"):
        compose(table, {"latent-l2": 0.0}, Resources(), "method 'demo'")


def test_digest_comes_from_the_provider_without_building() -> None:
    built: list[str] = []
    res = Resources()
    res.provide("clip", lambda: built.append("clip") or torch.nn.Linear(2, 2), digest=lambda: "file:abc")
    assert res.digest("clip") == "file:abc" and built == []
    res.provide("identity", lambda: torch.nn.Linear(2, 2))  # no digest given: the built module's fingerprint
    from cfs_core.artifacts import model_digest

    assert res.digest("identity") == model_digest(res.get("identity"))
    res.provide_value("clip", torch.nn.Linear(2, 2))  # a replaced resource forgets the provider's digest
    assert res.digest("clip") == model_digest(res.get("clip")) != "file:abc"
