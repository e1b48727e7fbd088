"""The selective feature adaptor: a per-channel affine map on selected W+ slots (spec §1.1, §1.4, §3).

Training form (§1.4): ``w' = (M ⊙ A + 1 − M) ⊙ w + M ⊙ d`` with the ``[1, L, 1]`` layer mask M
and free parameters A, d of shape ``[1, L, D]``. A trained :class:`Adaptor` stores the masked
forms the reference saves (``At0.npy`` = ``M ⊙ A + (1 − M)``, ``direction0.npy`` = ``M ⊙ d``),
so applying it needs no mask:

* ``form="full"``: ``w' = scale ⊙ w + shift`` — the training-consistent adaptor;
* ``form="shift"``: ``w' = w + shift`` — what the released demo renders (§3, README figures).

``strength`` s interpolates the edit: ``w + s · (w'_form − w)`` (``torch.lerp``: exact at 0 and 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Form = Literal["full", "shift"]


@dataclass
class Adaptor:
    """A trained adaptor: ``scale`` = M⊙A + 1 − M, ``shift`` = M⊙d (both ``[1, L, D]``), the
    mask ``[1, L, 1]``, and ``shift_last`` = M⊙d of the last step (the reference's previews use it)."""

    scale: torch.Tensor
    shift: torch.Tensor
    mask: torch.Tensor
    shift_last: torch.Tensor

    @classmethod
    def from_parameters(cls, A: torch.Tensor, d: torch.Tensor, mask: torch.Tensor,
                        d_last: torch.Tensor | None = None) -> Adaptor:
        """Mask raw parameters (rows outside the mask become 1 and 0)."""
        A, d, mask = A.detach(), d.detach(), mask.detach()
        last = d if d_last is None else d_last.detach()
        return cls(mask * A + (1 - mask), mask * d, mask, mask * last)

    def to(self, device: torch.device | str) -> Adaptor:
        return Adaptor(self.scale.to(device), self.shift.to(device), self.mask.to(device), self.shift_last.to(device))

    @property
    def slots(self) -> list[int]:
        return [int(i) for i in torch.nonzero(self.mask.reshape(-1)).reshape(-1)]

    def apply(self, w: torch.Tensor, form: Form = "full", strength: float = 1.0,
              last_shift: bool = False) -> torch.Tensor:
        """Edit W+ codes ``[B, L, D]``; ``last_shift`` uses the last step's d (faithful previews)."""
        shift = self.shift_last if last_shift else self.shift
        edited = self.scale * w + shift if form == "full" else w + shift
        if strength == 1.0:
            return edited
        return torch.lerp(w, edited, float(strength))

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"A": self.scale, "d": self.shift, "mask": self.mask, "d_last": self.shift_last}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> Adaptor:
        return cls(tensors["A"], tensors["d"], tensors["mask"], tensors.get("d_last", tensors["d"]))


def adapted(w: torch.Tensor, A: torch.Tensor, d: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The training-time map ``(M ⊙ A + 1 − M) ⊙ w + M ⊙ d`` (differentiable in A and d)."""
    return (mask * A + (1 - mask)) * w + mask * d


@torch.no_grad()
def initial_parameters(gen: object, rng: torch.Generator, truncation: float, faithful: bool,
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial ``(A, d)``, ``[1, L, D]`` each (spec §1.4; quirk §6.3 behind ``faithful``).

    Both draw z ~ N(0, I) from ``rng`` and map it to a truncated code
    ``w_z = c + ψ (mapping(z) − c)`` (c = the truncation centre), as ``get_latent`` does.

    * faithful: ``A ~ N(0, 1)`` and ``d = w_z`` broadcast over the slots (the reference);
    * corrected: ``A = 1`` (the adaptor starts as the identity on w's scale) and
      ``d = w_z − c = ψ (mapping(z) − c)``: the same random draw, as an offset from the average
      face, so the first edit ``w + d`` moves the face as far as a real face differs from the
      average one instead of adding a second full code (``w + w_z`` doubles the mean latent). A
      zero d would start the directional losses at ``ê = ŝ``, where ``unit(ê − ŝ)`` is undefined.
    """
    from cfs_core.stylegan2 import Generator

    assert isinstance(gen, Generator)
    z = torch.randn(1, gen.style_dim, generator=rng).to(device)
    center = gen.truncation_center().to(device)
    w_z = gen.truncate(gen.mapping(z), truncation, center)
    if faithful:
        A = torch.randn(1, gen.n_latent, gen.style_dim, generator=rng).to(device)
        d = gen.to_wplus(w_z)
    else:
        A = torch.ones(1, gen.n_latent, gen.style_dim, device=device)
        d = gen.to_wplus(w_z - center)
    return A.clone(), d.clone()
