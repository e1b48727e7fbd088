"""Cost metrics: what an edit took, as the host measured it (no resources needed)."""

from __future__ import annotations

from typing import ClassVar

from cfs_core.errors import InputError
from cfs_core.metrics import Metric, MetricSample


class Seconds(Metric):
    """Wall-clock seconds of the edit per image: ``MetricSample.seconds / B``.

    The host times the method's ``edit`` (``cfs compare`` times each input on its own, so
    ``B = 1``); resource loading before the edit is not included.
    """

    metric_id: ClassVar[str] = "seconds"
    description: ClassVar[str] = "wall-clock seconds of the edit, per image (lower is better)"
    higher_is_better: ClassVar[bool] = False

    def compute(self, sample: MetricSample) -> list[float]:
        if sample.seconds is None:
            raise InputError(f"metric '{self.metric_id}': the sample carries no timing (MetricSample.seconds)")
        n = sample.edited_images.shape[0]
        return [float(sample.seconds) / n] * n


class PeakMemory(Metric):
    """Peak memory of the edit in MB (2^20 bytes): ``MetricSample.extras["peak_memory_mb"]``.

    The host measures it around the edit; ``cfs compare`` reports CUDA ``max_memory_allocated``
    on a GPU and the growth of the process's peak resident set size on a CPU. The same value is
    reported for every image of the batch.
    """

    metric_id: ClassVar[str] = "peak-memory"
    description: ClassVar[str] = "peak memory of the edit in MB (CUDA allocated, or peak RSS growth on CPU)"
    higher_is_better: ClassVar[bool] = False

    def compute(self, sample: MetricSample) -> list[float]:
        value = sample.extras.get("peak_memory_mb")
        if value is None:
            raise InputError(f"metric '{self.metric_id}': the sample carries no extras['peak_memory_mb']")
        return [float(value)] * sample.edited_images.shape[0]
