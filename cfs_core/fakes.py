"""Small deterministic stand-ins for the heavy resources, for tests (ours and plugin authors').

They implement the protocols of :mod:`cfs_core.nets.protocols` with fixed random projections of
pooled pixels, so they are fast, differentiable and deterministic, and respond to image content
(a change in the image changes the embedding). They count calls, so tests can check caching.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cfs_core.nets.protocols import CELEBAMASK_LABELS, REGIONS, unit


def _projection(rows: int, cols: int, seed: int) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))


class FakeClip:
    """Resource ``"clip"``: 8×8 average-pooled RGB → fixed projection → unit vector."""

    def __init__(self, embed_dim: int = 16, seed: int = 0) -> None:
        self.embed_dim = embed_dim
        self.proj = _projection(3 * 8 * 8, embed_dim, seed)
        self.calls: Counter[str] = Counter()

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(images, 8).flatten(1)
        return unit(pooled @ self.proj.to(images))

    def encode_generated(self, images: torch.Tensor) -> torch.Tensor:
        self.calls["generated"] += 1
        return self._embed(images)

    def encode_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        self.calls["images"] += 1
        with torch.no_grad():
            return torch.cat([self._embed(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() / 127.5 - 1)
                              for a in images])

    def encode_text(self, texts: Sequence[str], templates: bool = False) -> torch.Tensor:
        self.calls["text"] += 1
        variants = ("{}", "a photo of {}.", "a drawing of {}.") if templates else ("{}",)
        out = []
        for text in texts:
            vecs = [unit(self._text_vector(v.format(text))) for v in variants]
            out.append(unit(torch.stack(vecs).mean(0)))
        return torch.stack(out)

    def _text_vector(self, text: str) -> torch.Tensor:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
        return torch.randn(self.embed_dim, generator=torch.Generator().manual_seed(seed))


class FakeIdentity:
    """Resource ``"identity"``: 4×4 average-pooled RGB → fixed projection → unit vector."""

    def __init__(self, embed_dim: int = 32, seed: int = 1) -> None:
        self.proj = _projection(3 * 4 * 4, embed_dim, seed)
        self.calls = 0

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return unit(F.adaptive_avg_pool2d(images, 4).flatten(1) @ self.proj.to(images))


class FakeParser:
    """Resource ``"parser"``: bright pixels are background, dark ones skin (soft, differentiable)."""

    def __init__(self, sharpness: float = 5.0) -> None:
        self.sharpness = sharpness
        self.calls = 0

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        brightness = images.mean(1, keepdim=True)  # [B, 1, H, W] in [-1, 1]
        rest = torch.full_like(brightness, -10.0).expand(-1, len(CELEBAMASK_LABELS) - 2, -1, -1)
        return torch.cat([self.sharpness * brightness, -self.sharpness * brightness, rest], 1)

    def region_mask(self, images: torch.Tensor, region: str) -> torch.Tensor:
        probs = self.logits(images).softmax(1)
        index = [CELEBAMASK_LABELS.index(name) for name in REGIONS[region]]
        return probs[:, index].sum(1, keepdim=True)
