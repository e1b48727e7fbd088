"""The first-party metrics (``cfs_plugins.metrics``) on hand-made tensors, with exact expected values.

The stub resources below embed an image as its unit mean colour, so every expected value is a
cosine that can be worked out by hand; the ``cfs_core.fakes`` resources check the invariants
(an unchanged edit is identity 1, background 0, direction 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest
import torch

import cfs_plugins.metrics
from cfs_core.errors import InputError
from cfs_core.fakes import FakeClip, FakeIdentity, FakeParser
from cfs_core.guidance import Guidance
from cfs_core.metrics import MetricSample
from cfs_core.nets.protocols import CELEBAMASK_LABELS, unit
from cfs_core.resources import Resources
from cfs_plugins.metrics.background import Background
from cfs_plugins.metrics.cost import PeakMemory, Seconds
from cfs_plugins.metrics.similarity import NEUTRAL_TEXT, ClipDirection, ClipTarget, IdentitySimilarity
from cfs_registry.plugins import PluginHost

TEXTS = {"red": (1.0, 0.0, 0.0), NEUTRAL_TEXT: (0.0, 1.0, 0.0)}


def colour(*rgb: float, batch: int = 1, size: int = 4) -> torch.Tensor:
    """A ``[batch, 3, size, size]`` image of one colour (values in [-1, 1])."""
    return torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1).expand(batch, 3, size, size).clone()


class MeanColour:
    """Stub ``identity``/``clip``: an image's embedding is its unit mean colour; texts map through TEXTS."""

    embed_dim = 3

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return unit(images.mean((2, 3)))

    encode_generated = embed

    def encode_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        return torch.cat([self.embed(torch.from_numpy(a).permute(2, 0, 1)[None].float() / 127.5 - 1) for a in images])

    def encode_text(self, texts: Sequence[str], templates: bool = False) -> torch.Tensor:
        return unit(torch.tensor([TEXTS[t] for t in texts]))


class BrightHead:
    """Stub ``parser``: the ``head`` region is every pixel brighter than 0.5 (a hard mask)."""

    def logits(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - not used by the metric
        return torch.zeros(images.shape[0], len(CELEBAMASK_LABELS), *images.shape[-2:])

    def region_mask(self, images: torch.Tensor, region: str) -> torch.Tensor:
        assert region == "head"
        return (images.mean(1, keepdim=True) > 0.5).float()


def text(value: str = "red") -> Guidance:
    return Guidance("text", value, text=value)


def image_guidance(rgb: tuple[int, int, int]) -> Guidance:
    return Guidance("clipart", "c.png", image=np.full((8, 8, 3), rgb, np.uint8))


def sample(source: torch.Tensor, edited: torch.Tensor, guidance: Guidance | None = None, **kw: object) -> MetricSample:
    return MetricSample(source, edited, guidance or text(), **kw)  # type: ignore[arg-type]


STUB = Resources({"identity": MeanColour, "clip": MeanColour, "parser": BrightHead})
FAKES = Resources({"identity": FakeIdentity, "clip": FakeClip, "parser": FakeParser})


def test_identity_is_the_cosine_of_the_embeddings() -> None:
    metric = IdentitySimilarity(STUB)
    red = colour(1, 0, 0)
    assert metric.compute(sample(red, colour(0, 1, 0))) == pytest.approx([0.0], abs=1e-7)
    assert metric.compute(sample(red, colour(1, 1, 0))) == pytest.approx([1 / math.sqrt(2)])
    assert metric.compute(sample(red, colour(-1, 0, 0))) == pytest.approx([-1.0])
    faces = torch.rand(2, 3, 16, 16) * 2 - 1
    assert IdentitySimilarity(FAKES).compute(sample(faces, faces.clone())) == pytest.approx([1.0, 1.0], abs=1e-6)


def test_clip_target_uses_the_guidance_text_or_image() -> None:
    metric = ClipTarget(STUB)
    source = colour(0, 0, 1)
    assert metric.compute(sample(source, colour(1, 0, 0))) == pytest.approx([1.0])
    assert metric.compute(sample(source, colour(1, 1, 0))) == pytest.approx([1 / math.sqrt(2)])
    # image guidance: (255, 0, 0) is (1, -1, -1) in [-1, 1]
    assert metric.compute(sample(source, colour(1, -1, -1), image_guidance((255, 0, 0)))) == pytest.approx([1.0])
    assert metric.compute(sample(source, colour(1, 1, 1), image_guidance((255, 0, 0)))) == pytest.approx([-1 / 3])
    with pytest.raises(InputError, match="neither text nor image"):
        metric.compute(sample(source, source, Guidance("odd", "?")))


def test_clip_direction_text_runs_from_the_neutral_prompt() -> None:
    metric = ClipDirection(STUB)
    # g = unit(red − neutral) = unit(1, −1, 0); Δ = unit((1,0,0) − (0,0,1)) = unit(1, 0, −1): cos = 1/2
    assert metric.compute(sample(colour(0, 0, 1), colour(1, 0, 0))) == pytest.approx([0.5])
    # moving from green toward red is exactly the text direction
    assert metric.compute(sample(colour(0, 1, 0), colour(1, 0, 0))) == pytest.approx([1.0])
    assert metric.compute(sample(colour(1, 0, 0), colour(0, 1, 0))) == pytest.approx([-1.0])
    unchanged = torch.rand(2, 3, 16, 16) * 2 - 1
    assert ClipDirection(FAKES).compute(sample(unchanged, unchanged.clone())) == [0.0, 0.0]


def test_clip_direction_image_runs_from_each_source() -> None:
    metric = ClipDirection(STUB)
    guidance = image_guidance((255, 0, 0))  # embedding unit(1, −1, −1)
    source = torch.cat([colour(0, 0, 1), colour(0, 1, 0)])
    to_target = colour(1, -1, -1, batch=2)  # each edit lands on the guidance: Δ = g for both sources
    assert metric.compute(sample(source, to_target, guidance)) == pytest.approx([1.0, 1.0])
    # source blue, edit to (1, 0, 0): Δ = unit(1, 0, −1), g = unit(1/√3, −1/√3, −1/√3 − 1)
    t = unit(torch.tensor([1.0, -1.0, -1.0]))
    g = unit(t - torch.tensor([0.0, 0.0, 1.0]))
    expected = float((unit(torch.tensor([1.0, 0.0, -1.0])) * g).sum())
    assert metric.compute(sample(colour(0, 0, 1), colour(1, 0, 0), guidance)) == pytest.approx([expected])


def test_background_is_the_mean_change_outside_the_head() -> None:
    metric = Background(STUB)
    source = torch.zeros(1, 3, 4, 4)
    source[..., 2:] = 1.0  # right half: head (bright)
    edited = source.clone()
    edited[..., :2] = -0.5  # background darkened by 0.5 everywhere
    edited[..., 2:] = 0.7  # head changed (not counted)
    assert metric.compute(sample(source, edited)) == pytest.approx([0.5])
    grown = source.clone()
    grown[..., 1] = 1.0  # hair grows over column 1: head in the edit, so not counted either
    grown[0, 0, :, 0] = -0.6  # one channel of column 0 changes by 0.6: mean over 3 channels = 0.2
    assert metric.compute(sample(source, grown)) == pytest.approx([0.2])
    assert metric.compute(sample(torch.ones(1, 3, 4, 4), torch.ones(1, 3, 4, 4))) == [0.0]  # no background at all
    faces = torch.rand(2, 3, 16, 16) * 2 - 1
    assert Background(FAKES).compute(sample(faces, faces.clone())) == [0.0, 0.0]


def test_cost_metrics_read_the_sample() -> None:
    images = torch.zeros(2, 3, 4, 4)
    assert Seconds(Resources()).compute(sample(images, images, seconds=0.5)) == [0.25, 0.25]
    assert PeakMemory(Resources()).compute(sample(images, images, extras={"peak_memory_mb": 12.5})) == [12.5, 12.5]
    with pytest.raises(InputError, match="no timing"):
        Seconds(Resources()).compute(sample(images, images))
    with pytest.raises(InputError, match="peak_memory_mb"):
        PeakMemory(Resources()).compute(sample(images, images))


def test_the_plugin_registers_every_metric() -> None:
    host = PluginHost(autoload=False, strict=True, plugins=[("metrics", cfs_plugins.metrics)])
    assert host.metrics.ids() == ["identity", "clip-target", "clip-direction", "background", "seconds", "peak-memory"]
    requires = {e.id: e.obj.describe()["requires"] for e in host.metrics}
    assert requires == {"identity": ["identity"], "clip-target": ["clip"], "clip-direction": ["clip"],
                        "background": ["parser"], "seconds": [], "peak-memory": []}
    assert [e.id for e in host.metrics if not e.obj.higher_is_better] == ["background", "seconds", "peak-memory"]
    assert "identity" in PluginHost().metrics and PluginHost().metrics.plugin_of("identity") == "metrics"  # entry point
