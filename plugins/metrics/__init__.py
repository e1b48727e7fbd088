"""First-party metrics for ``cfs compare`` and benchmarks.

* ``identity`` — identity-net cosine similarity of each edit to its source (resource ``identity``);
* ``clip-target`` — CLIP cosine similarity of each edit to the guidance (resource ``clip``);
* ``clip-direction`` — CLIP edit direction vs the guidance direction (resource ``clip``);
* ``background`` — mean absolute change outside the parser's face/hair region (resource ``parser``);
* ``seconds`` and ``peak-memory`` — the cost of the edit, as measured by the host.
"""

from __future__ import annotations

from cfs_core import hookimpl
from cfs_core.hookspecs import Register


@hookimpl
def register_metrics(register: Register) -> None:
    from cfs_plugins.metrics.background import Background
    from cfs_plugins.metrics.cost import PeakMemory, Seconds
    from cfs_plugins.metrics.similarity import ClipDirection, ClipTarget, IdentitySimilarity

    for metric in (IdentitySimilarity, ClipTarget, ClipDirection, Background, Seconds, PeakMemory):
        register(metric)
