"""CLIP, identity, background and adaptor losses: hand-computable values, gradients, resources."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import cfs_plugins.clip_losses as clip_plugin
import cfs_plugins.face_losses as face_plugin
import cfs_plugins.latent_losses as latent_plugin
from cfs_core.errors import InputError
from cfs_core.guidance import Guidance, text_digest
from cfs_core.losses import LossInputs, compose
from cfs_core.nets.protocols import CELEBAMASK_LABELS, unit
from cfs_core.resources import Resources
from cfs_core.testing import FakeClip, FakeIdentity, FakeParser, LossTests, registered_table
from cfs_plugins.clip_losses.losses import ClipConsistency, ClipDirection, ClipSource, ClipTarget
from cfs_plugins.face_losses.losses import BackgroundL1, Identity
from cfs_plugins.latent_losses.losses import AdaptorL2


class VectorClip:
    """A stub whose 'images' are vectors: [B, 3, 1, 1] → unit([B, 3]); makes values hand-computable."""

    def __init__(self) -> None:
        self.calls = 0

    def encode_generated(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return unit(images.flatten(1))


def vec(*rows: tuple[float, float, float], grad: bool = False) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32).view(len(rows), 3, 1, 1).requires_grad_(grad)


def stub_resources(**values: Any) -> Resources:
    res = Resources()
    for name, value in values.items():
        res.provide_value(name, value)
    return res


# ------------------------------------------------------------------ the kit, with the fakes
def _fake_inputs() -> LossInputs:
    torch.manual_seed(0)
    src = torch.rand(2, 3, 16, 16) * 2 - 1
    return LossInputs(images=(src + 0.3 * torch.randn_like(src)).requires_grad_(True), source_images=src,
                      guidance=Guidance("text", "a face", text="a face", digest=text_digest("a face")),
                      extras={"clip.base": torch.randn(16)})


def _fake_resources() -> Resources:
    return Resources({"clip": FakeClip, "identity": FakeIdentity, "parser": FakeParser})


class TestClipTarget(LossTests):
    plugin, loss_cls = clip_plugin, ClipTarget
    get_inputs, get_resources = staticmethod(_fake_inputs), staticmethod(_fake_resources)


class TestClipDirection(LossTests):
    plugin, loss_cls = clip_plugin, ClipDirection
    get_inputs, get_resources = staticmethod(_fake_inputs), staticmethod(_fake_resources)


class TestClipConsistency(LossTests):
    plugin, loss_cls = clip_plugin, ClipConsistency
    get_inputs, get_resources = staticmethod(_fake_inputs), staticmethod(_fake_resources)


class TestClipSource(LossTests):
    plugin, loss_cls = clip_plugin, ClipSource
    get_inputs, get_resources = staticmethod(_fake_inputs), staticmethod(_fake_resources)


class TestIdentity(LossTests):
    plugin, loss_cls = face_plugin, Identity
    get_inputs, get_resources = staticmethod(_fake_inputs), staticmethod(_fake_resources)


class TestBackground(LossTests):
    plugin, loss_cls = face_plugin, BackgroundL1
    get_inputs, get_resources = staticmethod(_fake_inputs), staticmethod(_fake_resources)


class TestAdaptor(LossTests):
    plugin, loss_cls = latent_plugin, AdaptorL2

    def get_inputs(self) -> LossInputs:
        return LossInputs(extras={"adaptor.A": torch.ones(1, 4, 3), "adaptor.d": torch.ones(1, 4, 3)})


# ------------------------------------------------------------------ hand-computed values
def test_clip_target_and_source_values() -> None:
    res = stub_resources(clip=VectorClip())
    inputs = LossInputs(images=vec((3, 0, 0), (0, 2, 0)), source_images=vec((1, 0, 0), (1, 0, 0)),
                        extras={"clip.target": torch.tensor([1.0, 0, 0])})
    assert ClipTarget(res)(inputs).item() == pytest.approx(1 - (1 + 0) / 2)
    assert ClipSource(res)(inputs).item() == pytest.approx(1 - (1 + 0) / 2)


def test_clip_direction_value() -> None:
    res = stub_resources(clip=VectorClip())
    inputs = LossInputs(images=vec((0, 1, 0)), source_images=vec((1, 0, 0)),
                        extras={"clip.target": torch.tensor([0.0, 0, 1]), "clip.base": torch.tensor([1.0, 0, 0])})
    # Δ = unit(-1, 1, 0), ĝ = unit(-1, 0, 1): Δ·ĝ = 1/2
    assert ClipDirection(res)(inputs).item() == pytest.approx(0.5)


def test_clip_direction_needs_a_base() -> None:
    inputs = LossInputs(images=vec((0, 1, 0)), source_images=vec((1, 0, 0)), extras={"clip.target": torch.ones(3)})
    with pytest.raises(InputError, match=r"needs extras\['clip.base'\]"):
        ClipDirection(stub_resources(clip=VectorClip()))(inputs)


def test_clip_consistency_values() -> None:
    res = stub_resources(clip=VectorClip())
    same = LossInputs(images=vec((0, 1, 0), (0, 2, 0)), source_images=vec((1, 0, 0), (2, 0, 0)))
    assert ClipConsistency(res)(same).item() == pytest.approx(0.0, abs=1e-6)
    opposite = LossInputs(images=vec((0, 1, 0), (1, 0, 0)), source_images=vec((1, 0, 0), (0, 1, 0)))
    assert ClipConsistency(res)(opposite).item() == pytest.approx(2.0)  # (1 - (-1)) · 2 pairs / (4 - 2)
    single = LossInputs(images=vec((0, 1, 0), grad=True), source_images=vec((1, 0, 0)))
    value = ClipConsistency(res)(single)
    assert value.item() == 0.0
    value.backward()  # defined (and zero) for a batch of one


def test_identity_value_and_gradient() -> None:
    class VectorIdentity:
        def embed(self, images: torch.Tensor) -> torch.Tensor:
            return unit(images.flatten(1))

    res = stub_resources(identity=VectorIdentity())
    source = vec((1, 0, 0), (0, 1, 0), grad=True)
    edited = vec((1, 0, 0), (1, 0, 0), grad=True)
    value = Identity(res)(LossInputs(images=edited, source_images=source))
    assert value.item() == pytest.approx(((1 - 1) + (1 - 0)) / 2)
    value.backward()
    assert edited.grad is not None and source.grad is None


class OnesParser:
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        logits = torch.full((b, len(CELEBAMASK_LABELS), h, w), -100.0)
        logits[:, CELEBAMASK_LABELS.index("background")] = 100.0
        return logits

    def region_mask(self, images: torch.Tensor, region: str) -> torch.Tensor:
        return torch.ones_like(images[:, :1])


def test_background_values_corrected_and_faithful() -> None:
    source = torch.zeros(2, 3, 4, 4)
    edited = torch.zeros(2, 3, 4, 4)
    edited[0, :, 0, 0] = 1.0  # 3 elements differ by 1
    res = stub_resources(parser=OnesParser())
    corrected = BackgroundL1(res)(LossInputs(images=edited, source_images=source))
    assert corrected.item() == pytest.approx(3 / (2 * 3 * 16))
    faithful = BackgroundL1(res)(LossInputs(images=edited, source_images=source, extras={"background.faithful": True}))
    assert faithful.item() == pytest.approx(3 / 2)  # sum / N, mask σ(100) + σ(-100) = 1


def test_background_gradient_reaches_edited_pixels_through_the_mask() -> None:
    parser = FakeParser()
    source = torch.rand(1, 3, 8, 8) * 2 - 1
    edited = (source + 0.5).requires_grad_(True)
    BackgroundL1(stub_resources(parser=parser))(LossInputs(images=edited, source_images=source)).backward()
    assert edited.grad is not None and edited.grad.abs().sum() > 0


def test_adaptor_value_with_mask() -> None:
    mask = torch.zeros(1, 4, 1)
    mask[:, :2] = 1
    inputs = LossInputs(extras={"adaptor.A": torch.full((1, 4, 3), 2.0), "adaptor.d": torch.ones(1, 4, 3),
                                "adaptor.mask": mask})
    assert AdaptorL2(Resources())(inputs).item() == pytest.approx(0.5 * (4 * 6) + 0.5 * 6)


# ------------------------------------------------------------------ sharing and resources
def test_losses_share_embeddings_within_a_step() -> None:
    clip = FakeClip()
    table = registered_table(clip_plugin, "register_losses")
    composed = compose(table, {"clip-target": 1.0, "clip-direction": 1.0, "clip-source": 0.3, "clip-consistency": 0.1},
                       stub_resources(clip=clip), "test")
    total, parts = composed(_fake_inputs())
    assert set(parts) == {"clip-target", "clip-direction", "clip-source", "clip-consistency"}
    assert clip.calls == {"generated": 2, "text": 1}  # edited once, source once, target once
    assert math.isfinite(total.item())


def test_guidance_image_target_uses_encode_images() -> None:
    clip = FakeClip()
    image = (torch.rand(24, 24, 3) * 255).to(torch.uint8).numpy()
    inputs = LossInputs(images=torch.rand(1, 3, 8, 8), guidance=Guidance("clipart", "c.png", image=image, digest="x"))
    ClipTarget(stub_resources(clip=clip))(inputs)
    assert clip.calls == {"generated": 1, "images": 1}


def test_templates_flag_reaches_the_text_encoder() -> None:
    clip = FakeClip()
    g = Guidance("text", "red hair", text="red hair", digest=text_digest("red hair"))
    images = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    plain = ClipTarget(stub_resources(clip=clip))(LossInputs(images=images, guidance=g))
    templ = ClipTarget(stub_resources(clip=clip))(LossInputs(images=images, guidance=g, extras={"clip.templates": True}))
    assert plain.item() != pytest.approx(templ.item())


def test_unused_nets_are_never_built() -> None:
    built: list[str] = []
    res = Resources({name: (lambda n=name: built.append(n) or {"clip": FakeClip, "identity": FakeIdentity,
                                                                 "parser": FakeParser}[n]())
                     for name in ("clip", "identity", "parser")})
    table = registered_table(face_plugin, "register_losses")
    compose(table, {"identity": 1.0, "background-l1": 0.0}, res, "test")(_fake_inputs())
    assert built == ["identity"]


@pytest.mark.parametrize("loss_cls", [ClipTarget, ClipDirection, ClipConsistency, ClipSource])
def test_clip_gradients_reach_edited_images_only(loss_cls: type) -> None:
    edited = vec((0, 1, 0), (0, 1, 1), grad=True)
    source = vec((1, 0, 0), (1, 0, 1), grad=True)
    target = torch.tensor([0.0, 0.6, 0.8], requires_grad=True)
    base = torch.tensor([1.0, 0.0, 0.0], requires_grad=True)
    inputs = LossInputs(images=edited, source_images=source, extras={"clip.target": target, "clip.base": base})
    loss_cls(stub_resources(clip=VectorClip()))(inputs).backward()
    assert edited.grad is not None and edited.grad.abs().sum() > 0
    assert source.grad is None and target.grad is None and base.grad is None


def test_identity_uses_given_source_embeddings() -> None:
    ident = FakeIdentity()
    res = stub_resources(identity=ident)
    images = torch.rand(2, 3, 8, 8)
    given = ident.embed(images)
    calls = ident.calls
    value = Identity(res)(LossInputs(images=images, extras={"identity.source": given}))
    assert ident.calls == calls + 1  # only the edited images were embedded
    assert value.item() == pytest.approx(0.0, abs=1e-6)
