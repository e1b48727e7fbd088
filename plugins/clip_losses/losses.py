"""CLIP losses of StyleCLIP, StyleGAN-NADA, TargetCLIP and ClipFaceShop (resource ``"clip"``).

Notation (spec clipfaceshop.md §2.0): ``ê_i`` unit CLIP embedding of edited image i
(``clip.encode_generated``, differentiable), ``ŝ_i`` of source image i (no gradient), ``t̂`` of
the target, ``b̂`` of a base (the "average clipart" of ClipFaceShop, or a neutral text for
StyleGAN-NADA). Shared embeddings are memoised per step in ``LossInputs``, so several CLIP
losses encode each batch once.

Inputs the method may provide in ``extras``: ``clip.target`` (a ``[D]`` or ``[1, D]`` target
embedding; otherwise computed from ``inputs.guidance``: text through ``encode_text`` — with the
79 templates when ``extras['clip.templates']`` is true — and images through ``encode_images``),
``clip.source`` (precomputed ``ŝ``), ``clip.base`` (``b̂``, required by ``clip-direction``).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from cfs_core.errors import InputError
from cfs_core.losses import Loss, LossInputs
from cfs_core.nets.protocols import CLIP, ClipEncoder, unit

EPS = 1e-8


def edited_embedding(clip: ClipEncoder, inputs: LossInputs, loss_id: str) -> torch.Tensor:
    """``ê``: ``[B, D]`` embeddings of the edited images (with gradients)."""
    images = inputs.need("images", loss_id)
    return inputs.memo("clip.edited", lambda: clip.encode_generated(images))  # type: ignore[no-any-return]


def source_embedding(clip: ClipEncoder, inputs: LossInputs, loss_id: str) -> torch.Tensor:
    """``ŝ``: ``[B, D]`` embeddings of the source images (no gradients)."""
    given = inputs.extras.get("clip.source")
    if given is not None:
        return unit(given.detach())

    def compute() -> torch.Tensor:
        with torch.no_grad():
            return clip.encode_generated(inputs.need("source_images", loss_id))

    return inputs.memo("clip.source", compute)  # type: ignore[no-any-return]


def target_embedding(clip: ClipEncoder, inputs: LossInputs, loss_id: str) -> torch.Tensor:
    """``t̂``: ``[1, D]`` target embedding, from ``extras['clip.target']`` or the guidance."""
    given = inputs.extras.get("clip.target")
    if given is not None:
        return unit(given.detach().reshape(1, -1))

    def compute() -> torch.Tensor:
        guidance = inputs.need("guidance", loss_id)
        if guidance.text is not None:
            return clip.encode_text([guidance.text], templates=bool(inputs.extras.get("clip.templates", False)))
        if guidance.image is not None:
            return clip.encode_images([guidance.image])
        raise InputError(f"loss '{loss_id}': guidance '{guidance.kind}' has neither text nor image")

    return inputs.memo("clip.target", compute).reshape(1, -1)  # type: ignore[no-any-return]


class ClipTarget(Loss):
    """Similarity to the target (StyleCLIP ``D_CLIP``, spec §5; ClipFaceShop transfer loss §2.1)."""

    loss_id: ClassVar[str] = "clip-target"
    description: ClassVar[str] = "CLIP distance of the edited images to the target text or image"
    formula: ClassVar[str] = "1 - mean_i(e_i . t)"
    requires: ClassVar[frozenset[str]] = frozenset({CLIP})

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        clip = self.resources.get(CLIP)
        e = edited_embedding(clip, inputs, self.loss_id)
        t = target_embedding(clip, inputs, self.loss_id).to(e)
        return 1 - (e * t).sum(-1).mean()


class ClipDirection(Loss):
    """Directional CLIP loss, gap form (StyleGAN-NADA; ClipFaceShop §2.2).

    ``Δ_i = unit(ê_i − ŝ_i)``, ``ĝ = unit(t̂ − b̂)``; ``L = 1 − mean_i Δ_i·ĝ``. The edit in CLIP
    space should point the way "base → target" does. Needs ``extras['clip.base']``.
    """

    loss_id: ClassVar[str] = "clip-direction"
    description: ClassVar[str] = "CLIP direction of the edit vs the base-to-target direction (NADA / gap form)"
    formula: ClassVar[str] = "1 - mean_i(unit(e_i - s_i) . unit(t - b))"
    requires: ClassVar[frozenset[str]] = frozenset({CLIP})

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        clip = self.resources.get(CLIP)
        base = inputs.need("clip.base", self.loss_id)
        e = edited_embedding(clip, inputs, self.loss_id)
        s = source_embedding(clip, inputs, self.loss_id).to(e)
        t = target_embedding(clip, inputs, self.loss_id).to(e)
        gap = unit(t - unit(base.detach().reshape(1, -1).to(e)), EPS)
        delta = unit(e - s, EPS)
        return 1 - (delta * gap).sum(-1).mean()


class ClipConsistency(Loss):
    """TargetCLIP consistency (ClipFaceShop §2.3): every source should move the same way.

    ``D_i = unit(ŝ_i − ê_i)``; ``L = Σ_{i≠j} (1 − D_i·D_j) / (N² − N)``; 0 for a batch of one.
    """

    loss_id: ClassVar[str] = "clip-consistency"
    description: ClassVar[str] = "agreement of the CLIP edit directions across the batch (TargetCLIP)"
    formula: ClassVar[str] = "sum_{i!=j}(1 - D_i . D_j) / (N^2 - N), D_i = unit(s_i - e_i)"
    requires: ClassVar[frozenset[str]] = frozenset({CLIP})

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        clip = self.resources.get(CLIP)
        e = edited_embedding(clip, inputs, self.loss_id)
        n = e.shape[0]
        if n < 2:
            return e.sum() * 0.0
        s = source_embedding(clip, inputs, self.loss_id).to(e)
        d = unit(s - e, EPS)
        gram = d @ d.t()
        return (1 - gram).sum() / (n * n - n)  # the diagonal is 1 - 1 = 0


class ClipSource(Loss):
    """Similarity to the source (ClipFaceShop §2.4): ``L = 1 − mean_i ê_i·ŝ_i``."""

    loss_id: ClassVar[str] = "clip-source"
    description: ClassVar[str] = "CLIP distance of each edited image to its source"
    formula: ClassVar[str] = "1 - mean_i(e_i . s_i)"
    requires: ClassVar[frozenset[str]] = frozenset({CLIP})

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        clip = self.resources.get(CLIP)
        e = edited_embedding(clip, inputs, self.loss_id)
        s = source_embedding(clip, inputs, self.loss_id).to(e)
        return 1 - (e * s).sum(-1).mean()
