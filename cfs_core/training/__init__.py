"""Training the demo pack on the synthetic world: data pipeline, resumable loop, trainers.

* :mod:`cfs_core.training.data` — seeded, deterministic world batches (images, labels, attribute
  targets, identity parameters, captions) with disjoint train/val/test splits and an optional
  on-disk cache of a rendered training pool;
* :mod:`cfs_core.training.loops` — a generic resumable training loop (atomic checkpoints of
  model + optimiser + step + RNG state) and the evaluator and parser trainers with their
  evaluation functions.

Training never runs on import, on install or in the default test run.
"""

from __future__ import annotations
