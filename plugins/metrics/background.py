"""Background preservation (resource ``"parser"``): how much an edit changed the pixels around the head."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from cfs_core.metrics import Metric, MetricSample
from cfs_core.nets.protocols import PARSER, FaceParser

EPS = 1e-8


class Background(Metric):
    """Mean absolute change outside the face and hair: ``Σ m·|x' − x| / (3 Σ m)`` per image.

    ``m = (1 − P_head(x)) · (1 − P_head(x'))`` is the parser's soft mask of the pixels that are
    outside the ``head`` region (face, hair, hat) in the source *and* in the edited image, so hair
    that an edit grows into the background is not counted. The mean runs over those pixels and
    the 3 colour channels, in the images' [-1, 1] units: 0 = background untouched, at most 2.
    An image with no background scores 0. Lower is better.
    """

    metric_id: ClassVar[str] = "background"
    description: ClassVar[str] = "mean absolute pixel change outside the face/hair region ([0, 2]; lower is better)"
    higher_is_better: ClassVar[bool] = False
    requires: ClassVar[frozenset[str]] = frozenset({PARSER})

    def compute(self, sample: MetricSample) -> list[float]:
        parser: FaceParser = self.resources.get(PARSER)
        edited, source = sample.edited_images, sample.source_images.to(sample.edited_images)
        with torch.no_grad():
            keep = (1 - self._head(parser, source)) * (1 - self._head(parser, edited))
            change = (keep * (edited - source).abs()).sum((1, 2, 3))
            weight = keep.sum((1, 2, 3)) * edited.shape[1]
            values = change / weight.clamp_min(EPS)
        return [float(v) for v in values.float().cpu()]

    @staticmethod
    def _head(parser: FaceParser, images: torch.Tensor) -> torch.Tensor:
        mask = parser.region_mask(images, "head").to(images)
        if mask.shape[-2:] != images.shape[-2:]:  # a parser that answers at its own resolution
            mask = F.interpolate(mask, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return mask
