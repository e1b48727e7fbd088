"""Several methods on the same inputs and guidance, side by side, with metrics (``cfs compare``).

:func:`plan_compare` checks the request before anything loads (method ids, the guidance kind,
``-o METHOD.KEY=VALUE`` options, metric ids); :class:`CompareJob` then runs every accepted method
on every input — images are inverted once and the W+ code is shared by all methods — timing each
edit and measuring its peak memory (:class:`PeakMemory`), and computes the metrics whose
resources the model set provides. :meth:`CompareJob.write` writes ``grid.png``, ``report.html``
and ``metrics.json`` (built in memory first, each written atomically; nothing is written when a
step fails). Rendering lives in :mod:`cfs_registry.compare_report`.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfs_core.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from cfs_core.guidance import Guidance
    from cfs_core.methods import EditContext, EditingMethod, MethodOptions
    from cfs_core.metrics import Metric
    from cfs_registry.editjob import EditInput
    from cfs_registry.plugins import PluginHost

OUTPUTS = ("grid.png", "report.html", "metrics.json")
GUIDANCE_FLAGS = {"text": "--text", "clipart": "--clipart", "sketch": "--sketch", "exemplar": "--exemplar"}


# ------------------------------------------------------------------------------------ planning
def parse_ids(text: str, what: str) -> list[str]:
    """``"a, b,a"`` → ``["a", "b"]`` (order kept, duplicates dropped); error if empty."""
    ids = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not ids:
        raise InputError(f"{what} needs at least one id (comma-separated)")
    return ids


def split_method_options(pairs: Sequence[str], method_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """``["latent-opt.steps=10"]`` → ``{"latent-opt": {"steps": "10"}}``; the method must be in ``method_ids``."""
    out: dict[str, dict[str, str]] = {m: {} for m in method_ids}
    for pair in pairs:
        target, sep, value = pair.partition("=")
        method, dot, key = target.strip().partition(".")
        if not sep or not dot or not method or not key.strip():
            raise InputError(f"option '{pair}' is not of the form METHOD.KEY=VALUE (e.g. latent-opt.steps=50)")
        if method not in out:
            raise InputError(f"option '{pair}' is for method '{method}', which is not in --methods "
                             f"({', '.join(method_ids)})")
        out[method][key.strip()] = value.strip()
    return out


@dataclass
class ComparePlan:
    """A checked request: the methods that run, the ones skipped and why, the metrics asked for."""

    methods: dict[str, type[EditingMethod]]  # accepted, in --methods order
    skipped_methods: dict[str, str]  # method id -> why
    option_pairs: dict[str, dict[str, str]]  # method id -> the user's KEY=VALUE
    metrics: list[type[Metric]]
    explicit_metrics: bool


def plan_compare(host: PluginHost, method_ids: Sequence[str], kind: str, options: Sequence[str],
                 metric_ids: Sequence[str] | None) -> ComparePlan:
    """Check everything that can be checked before models load (one-line errors)."""
    classes = {m: host.methods.get(m) for m in method_ids}  # unknown ids: error listing the known ones
    pairs = split_method_options(options, list(method_ids))
    for method_id, cls in classes.items():
        cls.parse_options(pairs[method_id])  # validated again with the model set's defaults later
    accepted, skipped = {}, {}
    for method_id, cls in classes.items():
        if kind in cls.accepts:
            accepted[method_id] = cls
        else:
            skipped[method_id] = f"does not accept {kind} guidance (accepts: {', '.join(sorted(cls.accepts))})"
    if not accepted:
        raise InputError(f"none of the methods ({', '.join(method_ids)}) accepts {kind} guidance")
    metrics = [host.metrics.get(m) for m in metric_ids] if metric_ids else [e.obj for e in host.metrics]
    return ComparePlan(accepted, skipped, pairs, metrics, bool(metric_ids))


def usable_metrics(metrics: Sequence[type[Metric]], available: Sequence[str]) -> tuple[list[type[Metric]], dict[str, str]]:
    """The metrics whose resources are available, and why each other one is skipped."""
    usable, skipped = [], {}
    for cls in metrics:
        missing = sorted(set(cls.requires) - set(available))
        if missing:
            skipped[cls.metric_id] = f"needs {', '.join(missing)}, which the models of this run do not provide"
        else:
            usable.append(cls)
    return usable, skipped


# ------------------------------------------------------------------------------------ measuring
def _maxrss_mb() -> float:
    """The process's peak resident set size (``getrusage``: KiB on Linux, bytes on macOS)."""
    import resource  # Unix only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _reset_peak_rss() -> bool:
    """Reset the peak RSS to the current RSS (Linux ≥ 4.0: ``echo 5 > /proc/self/clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Wall time and peak memory of a block, in seconds and MB (2^20 bytes).

    On CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (tensors only,
    the models already on the GPU included). On a CPU: how much the process's peak resident set
    size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) grew during the block; on Linux the peak
    is first reset to the current size through ``/proc/self/clear_refs``, so each block is
    measured on its own — elsewhere a block that needs less than an earlier one reads 0.
    """

    def __init__(self, device: torch.device | str) -> None:
        import torch

        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.mb = 0.0
        self.seconds = 0.0
        self.how = ""

    def __enter__(self) -> PeakMemory:
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.how = "CUDA max_memory_allocated during the edit"
        else:
            reset = _reset_peak_rss()
            self.how = ("peak RSS growth during the edit (getrusage ru_maxrss, peak reset per edit)" if reset else
                        "peak RSS growth during the edit (getrusage ru_maxrss; the process peak, not reset per edit)")
            self._start = _maxrss_mb()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)
        self.seconds = time.perf_counter() - self._t0
        if self.cuda:
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.mb = max(0.0, _maxrss_mb() - self._start)


# ------------------------------------------------------------------------------------ running
@dataclass
class InputResult:
    """Everything compare keeps of one input."""

    name: str
    source: np.ndarray  # uint8 [H, W, 3]: the generator's image of the input's W+ (what every method edits)
    photo: np.ndarray | None  # uint8: the input photo at the generator's size (image inputs)
    edits: dict[str, np.ndarray] = field(default_factory=dict)  # method id -> uint8 image
    values: dict[str, dict[str, float | None]] = field(default_factory=dict)  # method -> metric -> value
    timing: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> seconds, peak_memory_mb


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def mean(values: Sequence[float | None]) -> float | None:
    """Mean of the finite values (``None`` if there are none)."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


@dataclass
class CompareJob:
    """Every accepted method × every input, one guidance, with metrics."""

    methods: dict[str, tuple[type[EditingMethod], MethodOptions]]
    guidance: Guidance
    metrics: list[type[Metric]]
    out: Path
    settings: dict[str, Any] = field(default_factory=dict)
    skipped_methods: dict[str, str] = field(default_factory=dict)
    skipped_metrics: dict[str, str] = field(default_factory=dict)
    results: list[InputResult] = field(default_factory=list)
    memory_how: str = ""

    def run(self, ctx: EditContext, inputs: Sequence[EditInput]) -> list[InputResult]:
        import torch

        from cfs_core import editing
        from cfs_core.imageio import to_uint8
        from cfs_core.metrics import MetricSample

        needed = {r for cls, _ in self.methods.values() for r in cls.requires}
        needed |= {r for cls in self.metrics for r in cls.requires}
        for name in sorted(needed & set(ctx.resources.available())):
            ctx.resources.get(name)  # load before the clock starts: the timings are of edits only
        metrics: list[Metric] = [cls(ctx.resources) for cls in self.metrics]
        self.results = []
        for i, item in enumerate(inputs):
            photo = None
            if item.latents is not None:
                source = item.latents.to(ctx.device)
            else:
                pixels = editing.images_to_tensor([item.image], ctx.generator.size, ctx.device)  # type: ignore[list-item]
                photo = to_uint8(pixels)[0]
                source = editing.invert(ctx, pixels)  # once per input, shared by every method
            source_images = editing.render(ctx, source)
            result = InputResult(item.name, to_uint8(source_images)[0], photo)
            for method_id, (cls, options) in self.methods.items():
                with PeakMemory(ctx.device) as measured:
                    timed = editing.run_method(cls, ctx, source, self.guidance, options)
                self.memory_how = measured.how
                edited = timed.result.images.detach()
                result.edits[method_id] = to_uint8(edited)[0]
                result.timing[method_id] = {"seconds": measured.seconds, "peak_memory_mb": measured.mb}
                sample = MetricSample(source_images, edited, self.guidance, measured.seconds,
                                      {"peak_memory_mb": measured.mb})
                with torch.no_grad():
                    result.values[method_id] = {m.metric_id: _finite(m.compute(sample)[0]) for m in metrics}
            self.results.append(result)
            ctx.report("compare", i + 1, len(inputs), item.name)
        return self.results

    # -------------------------------------------------------------------------------- summaries
    def means(self) -> dict[str, dict[str, float | None]]:
        """Method id → metric id (and ``seconds``, ``peak_memory_mb``) → mean over the inputs."""
        out: dict[str, dict[str, float | None]] = {}
        for method_id in self.methods:
            row = {cls.metric_id: mean([r.values[method_id][cls.metric_id] for r in self.results]) for cls in self.metrics}
            for key in ("seconds", "peak_memory_mb"):
                row[f"timing.{key}"] = mean([r.timing[method_id][key] for r in self.results])
            out[method_id] = row
        return out

    def summary_columns(self) -> list[tuple[str, str]]:
        """(key in :meth:`means`, header) of the summary table: the metrics (↑ higher is better,
        ↓ lower), and the measured seconds unless the ``seconds`` metric is one of them."""
        columns = [(cls.metric_id, f"{cls.metric_id} {'↑' if cls.higher_is_better else '↓'}") for cls in self.metrics]
        if not any(key == "seconds" for key, _ in columns):
            columns.append(("timing.seconds", "seconds"))
        return columns

    def to_json(self) -> dict[str, Any]:
        """``metrics.json``: per method the values of every input and their means; settings; skipped."""
        means = self.means()
        methods = {}
        for method_id, (_, options) in self.methods.items():
            methods[method_id] = {
                "options": options.model_dump(mode="json"),
                "inputs": {r.name: r.values[method_id] for r in self.results},
                "means": {k: v for k, v in means[method_id].items() if not k.startswith("timing.")},
                "timing": {r.name: {k: round(v, 6) for k, v in r.timing[method_id].items()} for r in self.results},
                "mean_seconds": means[method_id]["timing.seconds"],
                "mean_peak_memory_mb": means[method_id]["timing.peak_memory_mb"],
            }
        return {
            "settings": self.settings,
            "inputs": [r.name for r in self.results],
            "metrics": {cls.metric_id: cls.describe() for cls in self.metrics},
            "memory": self.memory_how,
            "methods": methods,
            "skipped": {"methods": dict(self.skipped_methods), "metrics": dict(self.skipped_metrics)},
        }

    def write(self) -> dict[str, Path]:
        """Write ``grid.png``, ``report.html`` and ``metrics.json`` under ``out`` (all built before any is written)."""
        import io

        from PIL import Image

        from cfs_core.fileio import atomic_write_bytes
        from cfs_registry.compare_report import grid_image, report_html

        grid = grid_image(self)
        buffer = io.BytesIO()
        Image.fromarray(grid).save(buffer, format="PNG")
        blobs = {
            "grid.png": buffer.getvalue(),
            "report.html": report_html(self, grid).encode("utf-8"),
            "metrics.json": json.dumps(self.to_json(), indent=2, default=str).encode("utf-8"),
        }
        self.out.mkdir(parents=True, exist_ok=True)
        for name, data in blobs.items():
            atomic_write_bytes(self.out / name, data)
        return {name: self.out / name for name in blobs}


def describe_settings(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able copy of the settings (paths as strings)."""
    return json.loads(json.dumps(dict(mapping), default=str))
