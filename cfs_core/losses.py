"""Losses as plugins: each has an id, a formula, the resources it needs, and a ``__call__``.

Methods combine losses by id × weight (:func:`compose`); a weight of 0 drops the loss, so its
resources are never built. Loss instances are built with the edit's :class:`Resources` and call
``resources.get(...)`` lazily.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from cfs_core.errors import InputError
from cfs_core.resources import Resources

if TYPE_CHECKING:
    import torch

    from cfs_core.guidance import Guidance
    from cfs_core.registration import Table


@dataclass
class LossInputs:
    """What a loss may look at. Fields a method does not have stay ``None``."""

    images: torch.Tensor | None = None  # edited images [B, 3, H, W]
    source_images: torch.Tensor | None = None  # source images [B, 3, H, W]
    latents: torch.Tensor | None = None  # edited W+ [B, L, D]
    source_latents: torch.Tensor | None = None  # source W+ [B, L, D]
    guidance: Guidance | None = None
    extras: dict[str, Any] = field(default_factory=dict)  # method-specific (an adaptor's A and d, …)
    cache: dict[str, Any] = field(default_factory=dict)  # per-step memo shared by the losses

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute a value once per :class:`LossInputs` (e.g. the CLIP embedding of the edited
        images, which several losses use) and share it between losses."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def need(self, name: str, loss_id: str) -> Any:
        """A field or extra the loss cannot do without; a one-line error names what is missing."""
        value = getattr(self, name, None) if name in _FIELDS else self.extras.get(name)
        if value is None:
            where = name if name in _FIELDS else f"extras['{name}']"
            raise InputError(f"loss '{loss_id}' needs {where}, which the method did not provide")
        return value


_FIELDS = ("images", "source_images", "latents", "source_latents", "guidance")


class Loss(ABC):
    """Base class of losses (registered through ``register_losses``)."""

    loss_id: ClassVar[str]
    description: ClassVar[str]
    formula: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    @abstractmethod
    def __call__(self, inputs: LossInputs) -> torch.Tensor:
        """Return a scalar tensor (differentiable where the method optimises)."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"id": cls.loss_id, "description": cls.description, "formula": cls.formula, "requires": sorted(cls.requires)}


class ComposedLoss:
    """Σ weight_i · loss_i over the losses with a non-zero weight; also returns the parts."""

    def __init__(self, terms: list[tuple[str, float, Loss]]) -> None:
        self.terms = terms

    def __call__(self, inputs: LossInputs) -> tuple[torch.Tensor, dict[str, float]]:
        total: Any = 0.0
        parts: dict[str, float] = {}
        for loss_id, weight, loss in self.terms:
            value = loss(inputs)
            parts[loss_id] = float(value.detach())
            total = total + weight * value
        return total, parts


def compose(table: Table[type[Loss]], weights: Mapping[str, float], resources: Resources, needed_by: str) -> ComposedLoss:
    """Build a :class:`ComposedLoss` from ``{loss_id: weight}``; checks ids and resources first."""
    unknown = [k for k in weights if k not in table]
    if unknown:
        raise InputError(f"{needed_by}: unknown loss {', '.join(unknown)} (known: {', '.join(table.ids())})")
    active = {k: float(w) for k, w in weights.items() if w != 0}
    if not active:
        raise InputError(f"{needed_by}: every loss weight is zero, nothing to optimise")
    resources.check({r for k in active for r in table.get(k).requires}, needed_by)
    return ComposedLoss([(k, w, table.get(k)(resources)) for k, w in active.items()])
