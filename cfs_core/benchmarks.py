"""Speed benchmarks that back the figures in docs and issue notes (``cfs bench …``).

Timings are wall-clock medians over ``repeats`` runs after ``warmup`` runs, under
``torch.no_grad()``, with the thread count the caller set (report it with the figures).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Timing:
    """One benchmark row."""

    name: str
    batch: int
    median_ms: float  # per call
    min_ms: float
    repeats: int

    @property
    def ms_per_item(self) -> float:
        return self.median_ms / self.batch

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ms_per_item": self.ms_per_item}


def time_call(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> list[float]:
    """Run ``fn`` ``warmup`` times, then time it ``repeats`` times; returns milliseconds."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000.0)
    return out


def bench_generator(
    config: Any, batches: tuple[int, ...] = (1, 4), repeats: int = 3, warmup: int = 1,
    device: str = "cpu", fused_modconv: bool = True, name: str = "",
) -> list[Timing]:
    """Time a random-weight generator's forward (W+ → image, const noise) per batch size."""
    import torch

    from cfs_core.stylegan2 import Generator

    torch.manual_seed(0)
    gen = Generator(config).eval().requires_grad_(False).to(device)
    gen.set_fused_modconv(fused_modconv)
    rows = []
    for batch in batches:
        z = torch.randn(batch, config.style_dim, device=device)

        def forward() -> None:
            with torch.no_grad():
                gen.synthesis(gen.to_wplus(gen.mapping(z)))
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        times = time_call(forward, repeats, warmup)
        rows.append(Timing(name or f"G{config.size}", batch, statistics.median(times), min(times), repeats))
    return rows
