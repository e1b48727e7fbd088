"""Face losses: identity (resource ``"identity"``) and masked background L1 (resource ``"parser"``)."""

from __future__ import annotations

from typing import ClassVar

import torch

from cfs_core.losses import Loss, LossInputs
from cfs_core.nets.protocols import CELEBAMASK_LABELS, IDENTITY, PARSER, FaceParser

BACKGROUND, CLOTH = CELEBAMASK_LABELS.index("background"), CELEBAMASK_LABELS.index("cloth")


class Identity(Loss):
    """ArcFace identity loss (StyleCLIP spec §3, ClipFaceShop §2.5).

    ``L = mean_i (1 − φ(x'_i) · stopgrad(φ(x_i)))`` with ``φ`` the identity net's unit embedding
    (the references' crop-and-pool preprocessing lives in the net). A method may pass the
    sources' embeddings as ``extras['identity.source']`` to embed them once per edit.
    """

    loss_id: ClassVar[str] = "identity"
    description: ClassVar[str] = "identity-net distance of each edited face to its source"
    formula: ClassVar[str] = "mean_i(1 - phi(x'_i) . stopgrad(phi(x_i)))"
    requires: ClassVar[frozenset[str]] = frozenset({IDENTITY})

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        net = self.resources.get(IDENTITY)
        edited = net.embed(inputs.need("images", self.loss_id))

        def source() -> torch.Tensor:
            given = inputs.extras.get("identity.source")  # a method may embed its sources once per edit
            if given is not None:
                return given.detach()  # type: ignore[no-any-return]
            with torch.no_grad():
                return net.embed(inputs.need("source_images", self.loss_id))

        return 1 - (edited * inputs.memo("identity.source", source)).sum(-1).mean()


class BackgroundL1(Loss):
    """Parser-masked background L1 (ClipFaceShop §2.6).

    Corrected form (default): per-image soft masks ``m = P(outside_face | x)`` (background +
    cloth) of source and edited images, ``L = mean over (N, 3, H, W) of |m' ⊙ x' − m ⊙ x|`` — a
    per-pixel mean, so the weight does not depend on the resolution.

    Faithful form (``extras['background.faithful']`` true): the reference's mask
    ``σ(P[0, background]) + σ(P[0, cloth])`` of the **first** image only, broadcast to the batch,
    and ``L = Σ |m' ⊙ x' − m ⊙ x| / N`` (sum over all elements; the reference weight 1e-7 makes
    that ≈ 0.315 × the per-pixel mean at 1024²). Gradients reach ``x'`` through the image and the
    parser in both forms.
    """

    loss_id: ClassVar[str] = "background-l1"
    description: ClassVar[str] = "L1 change of the pixels the face parser reads as background or clothes"
    formula: ClassVar[str] = "mean(|m' * x' - m * x|), m = P(background or cloth)"
    requires: ClassVar[frozenset[str]] = frozenset({PARSER})

    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        parser: FaceParser = self.resources.get(PARSER)
        edited = inputs.need("images", self.loss_id)
        source = inputs.need("source_images", self.loss_id)
        faithful = bool(inputs.extras.get("background.faithful", False))
        mask = self._faithful_mask if faithful else self._mask
        with torch.no_grad():
            m_src = mask(parser, source)
        diff = (mask(parser, edited) * edited - m_src * source).abs()
        return diff.sum() / edited.shape[0] if faithful else diff.mean()

    @staticmethod
    def _mask(parser: FaceParser, images: torch.Tensor) -> torch.Tensor:
        return parser.region_mask(images, "outside_face")

    @staticmethod
    def _faithful_mask(parser: FaceParser, images: torch.Tensor) -> torch.Tensor:
        logits = parser.logits(images)
        first = torch.sigmoid(logits[0, BACKGROUND]) + torch.sigmoid(logits[0, CLOTH])
        return first.expand(images.shape[0], 1, *first.shape)
