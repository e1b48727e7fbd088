"""Similarity metrics: identity (resource ``"identity"``), CLIP target and CLIP direction (``"clip"``).

Notation: ``x_i`` source image, ``x'_i`` edited image (both ``[-1, 1]``, the generator's range);
``φ`` the identity net's unit embedding; ``ê_i``/``ŝ_i`` the unit CLIP embeddings of edited and
source images (``clip.encode_generated``); ``t̂`` the unit CLIP embedding of the guidance — its
text through ``clip.encode_text([text])`` (the bare prompt, no templates), its image through
``clip.encode_images([image])``. All values are cosines, in [-1, 1], one per edited image.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from cfs_core.errors import InputError
from cfs_core.guidance import Guidance
from cfs_core.metrics import Metric, MetricSample
from cfs_core.nets.protocols import CLIP, IDENTITY, ClipEncoder, unit

NEUTRAL_TEXT = "a photo of a face"  # the start of the text direction of clip-direction


def guidance_embedding(clip: ClipEncoder, guidance: Guidance, metric_id: str) -> torch.Tensor:
    """``t̂``: the ``[1, D]`` unit CLIP embedding of a guidance's text or image."""
    if guidance.text is not None:
        return unit(clip.encode_text([guidance.text]).reshape(1, -1))
    if guidance.image is not None:
        return unit(clip.encode_images([guidance.image]).reshape(1, -1))
    raise InputError(f"metric '{metric_id}': guidance '{guidance.kind}' has neither text nor image")


def _floats(cosines: torch.Tensor) -> list[float]:
    """Cosines as floats, clamped to [-1, 1] (rounding can overshoot by an ulp)."""
    return [float(v) for v in cosines.detach().float().clamp(-1, 1).cpu()]


class IdentitySimilarity(Metric):
    """Identity similarity of each edit to its source: ``φ(x'_i) · φ(x_i)``.

    The cosine of the identity net's (ArcFace IR-SE) embeddings of the edited and the source
    image; 1 for an unchanged face, lower as the edit changes who the person looks like.
    """

    metric_id: ClassVar[str] = "identity"
    description: ClassVar[str] = "identity-net cosine similarity of each edit to its source (1 = same face)"
    higher_is_better: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({IDENTITY})

    def compute(self, sample: MetricSample) -> list[float]:
        net = self.resources.get(IDENTITY)
        with torch.no_grad():
            edited = unit(net.embed(sample.edited_images))
            source = unit(net.embed(sample.source_images)).to(edited)
        return _floats((edited * source).sum(-1))


class ClipTarget(Metric):
    """CLIP similarity of each edit to the guidance: ``ê_i · t̂``.

    How much the edited image looks like what the guidance asks for (the text prompt, or the
    clipart/sketch/exemplar image), in CLIP's joint space.
    """

    metric_id: ClassVar[str] = "clip-target"
    description: ClassVar[str] = "CLIP cosine similarity of each edit to the guidance text or image"
    higher_is_better: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({CLIP})

    def compute(self, sample: MetricSample) -> list[float]:
        clip: ClipEncoder = self.resources.get(CLIP)
        with torch.no_grad():
            edited = unit(clip.encode_generated(sample.edited_images))
            target = guidance_embedding(clip, sample.guidance, self.metric_id).to(edited)
        return _floats((edited * target).sum(-1))


class ClipDirection(Metric):
    """Directional CLIP similarity: ``unit(ê_i − ŝ_i) · g_i``.

    Whether the edit moved the image the way the guidance points. The guidance direction is
    ``g = unit(t̂ − n̂)`` for text guidance, with ``n̂`` the embedding of the neutral text
    ``"a photo of a face"``, and ``g_i = unit(t̂ − ŝ_i)`` (from the source toward the guidance
    image) for image guidance. An unchanged image scores 0.
    """

    metric_id: ClassVar[str] = "clip-direction"
    description: ClassVar[str] = ("cosine of the CLIP edit direction (edited - source) with the guidance direction "
                                  f"(text: target - '{NEUTRAL_TEXT}'; image: guidance - source)")
    higher_is_better: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({CLIP})

    def compute(self, sample: MetricSample) -> list[float]:
        clip: ClipEncoder = self.resources.get(CLIP)
        with torch.no_grad():
            edited = unit(clip.encode_generated(sample.edited_images))
            source = unit(clip.encode_generated(sample.source_images)).to(edited)
            target = guidance_embedding(clip, sample.guidance, self.metric_id).to(edited)
            if sample.guidance.text is not None:
                start = unit(clip.encode_text([NEUTRAL_TEXT]).reshape(1, -1)).to(edited)
            else:
                start = source
            direction = unit(target - start)
            return _floats((unit(edited - source) * direction).sum(-1))
