"""Metrics as plugins: numbers that comparisons and benchmarks report per edited image."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from cfs_core.resources import Resources

if TYPE_CHECKING:
    import torch

    from cfs_core.guidance import Guidance


@dataclass
class MetricSample:
    """One method's output on a batch of sources, with what produced it."""

    source_images: torch.Tensor  # [B, 3, H, W] in [-1, 1]
    edited_images: torch.Tensor  # [B, 3, H, W] in [-1, 1]
    guidance: Guidance
    seconds: float | None = None  # wall time of the edit
    extras: dict[str, Any] = field(default_factory=dict)


class Metric(ABC):
    """Base class of metrics (registered through ``register_metrics``)."""

    metric_id: ClassVar[str]
    description: ClassVar[str]
    higher_is_better: ClassVar[bool]
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    @abstractmethod
    def compute(self, sample: MetricSample) -> list[float]:
        """One value per edited image."""

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"id": cls.metric_id, "description": cls.description, "higher_is_better": cls.higher_is_better,
                "requires": sorted(cls.requires)}
