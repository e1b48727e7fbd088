"""The four built-in guidance kinds.

* ``text``: a prompt ("a man with red hair and round glasses").
* ``clipart``: a clipart image; transparency becomes white.
* ``sketch``: a line drawing; made grayscale, dark strokes on a light background (a
  light-on-dark drawing is inverted), contrast stretched.
* ``exemplar``: a photo showing the target look.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from cfs_core.guidance import ImageGuidanceKind, TextGuidanceKind


class TextKind(TextGuidanceKind):
    kind_id: ClassVar[str] = "text"
    description: ClassVar[str] = "a text prompt describing the target look"


class ClipartKind(ImageGuidanceKind):
    kind_id: ClassVar[str] = "clipart"
    description: ClassVar[str] = "a clipart image (PNG/JPEG/WebP; transparency becomes white)"


class ExemplarKind(ImageGuidanceKind):
    kind_id: ClassVar[str] = "exemplar"
    description: ClassVar[str] = "a photo whose look the edit should take on"


class SketchKind(ImageGuidanceKind):
    kind_id: ClassVar[str] = "sketch"
    description: ClassVar[str] = "a line drawing (dark strokes on light, or inverted automatically)"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        gray = image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        if np.median(gray) < 128:  # light strokes on a dark background
            gray = 255.0 - gray
        lo, hi = np.percentile(gray, 1), np.percentile(gray, 99)
        if hi - lo > 1:
            gray = (gray - lo) / (hi - lo) * 255.0
        out = np.clip(gray, 0, 255).round().astype(np.uint8)
        return np.repeat(out[:, :, None], 3, axis=2)
