"""A generic resumable training loop, the evaluator and parser trainers, and their evaluations.

:func:`run_loop` trains ``model`` for ``steps`` steps; the batch of step ``k`` is a pure function
of ``k`` (see :class:`~cfs_core.training.data.BatchSource`) and the learning rate follows a
cosine schedule of ``k``, so the state after step ``k`` depends only on the checkpoint before it.
A checkpoint (``checkpoint.pt`` in the checkpoint folder: model, optimiser, step, torch RNG
state, loss history and a signature of the run) is written atomically every
``checkpoint_every`` steps, at the end, and on Ctrl-C; a resumed run ends bit-identical to an
uninterrupted one. Resuming a checkpoint whose signature differs raises :class:`InputError`.

Trainers: :func:`train_evaluator` (cross-entropy per attribute head, ``IGNORE`` targets skipped)
and :func:`train_parser` (the CelebAMask-HQ U-Net, cross-entropy on the 19 labels). Evaluations
on held-out (``test`` split) photo renders: :func:`evaluate_evaluator` (per-attribute accuracy)
and :func:`evaluate_parser` (mean IoU over the classes present in the truth).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.checkpoints import torch_load_safe
from cfs_core.errors import InputError
from cfs_core.fileio import atomic_path
from cfs_core.methods import ProgressCallback, ProgressEvent
from cfs_core.nets.evaluator import Evaluator, EvaluatorConfig
from cfs_core.nets.parsing import Parser
from cfs_core.nets.unet import UNet, UNetConfig
from cfs_core.training.data import (
    ATTRIBUTES,
    IGNORE,
    N_LABELS,
    Batch,
    BatchSource,
    DataSpec,
    Pool,
    make_batch,
)

CHECKPOINT = "checkpoint.pt"
LossFn = Callable[[nn.Module, Batch], torch.Tensor]


def _ignore(event: ProgressEvent) -> None:
    """Default progress sink."""


@dataclass
class LoopResult:
    """What :func:`run_loop` did."""

    step: int
    losses: list[float]
    resumed_from: int = 0
    wall_s: float = 0.0

    @property
    def final_loss(self) -> float:
        tail = self.losses[-50:]
        return float(sum(tail) / len(tail)) if tail else float("nan")


def cosine_lr(base: float, step: int, steps: int, warmup: int = 0) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 5 % of ``base`` at ``steps``."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t))))


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    losses: Sequence[float], signature: str) -> None:
    """Write a training checkpoint atomically."""
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "rng": torch.get_rng_state(), "losses": torch.tensor(list(losses), dtype=torch.float64),
             "signature": signature}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, signature: str) -> tuple[int, list[float]]:
    """Restore model, optimiser and RNG from ``path``; return (step, loss history)."""
    state = torch_load_safe(path)  # weights_only, one-line errors for a damaged file
    if not isinstance(state, dict) or state.get("signature") != signature:
        raise InputError(f"{path} was made by a different training run (settings differ); use --fresh or another --checkpoint-dir")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    return int(state["step"]), [float(x) for x in state["losses"].tolist()]


def run_loop(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Callable[[int], Batch], loss_fn: LossFn,
             steps: int, lr: float, signature: str, checkpoint_dir: str | Path | None = None,
             checkpoint_every: int = 100, resume: bool = True, warmup: int = 0,
             progress: ProgressCallback = _ignore, stage: str = "train", until: int | None = None) -> LoopResult:
    """Train ``model`` to ``steps`` steps (module docstring); resumes from ``checkpoint_dir``.
    ``until`` stops early after that step (the schedule is still the one of ``steps``): a run can
    be cut into pieces, or an intermediate state reproduced, with a checkpoint at the cut."""
    if steps < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    if checkpoint_every < 1:
        raise InputError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    ckpt = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    step, losses, start = 0, [], time.perf_counter()
    if ckpt is not None and resume and ckpt.exists():
        step, losses = load_checkpoint(ckpt, model, optimizer, signature)
    resumed_from = step
    model.train()
    stop = steps if until is None else min(steps, until)
    try:
        while step < stop:
            batch = batches(step)
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(lr, step, steps, warmup)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model, batch)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(float(loss.detach()))
            if ckpt is not None and (step % checkpoint_every == 0 or step in (steps, stop)):
                save_checkpoint(ckpt, model, optimizer, step, losses, signature)
            progress(ProgressEvent(stage, step, steps, values={"loss": losses[-1]}))
    except KeyboardInterrupt:
        if ckpt is not None:
            save_checkpoint(ckpt, model, optimizer, step, losses, signature)
        raise
    model.eval()
    return LoopResult(step, losses, resumed_from, time.perf_counter() - start)


# ---------------------------------------------------------------------------------- trainers
@dataclass(frozen=True)
class TrainOptions:
    """Settings shared by the trainers (``pool=0``: render a fresh stream instead of a pool)."""

    steps: int = 2000
    batch: int = 32
    size: int = 64
    seed: int = 0
    lr: float = 2e-3
    styles: tuple[str, ...] = ("photo", "clipart", "sketch")
    weights: tuple[float, ...] = (0.7, 0.15, 0.15)
    pool: int = 0
    cache_dir: str | None = None
    workers: int = 1
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100
    resume: bool = True
    widths: tuple[int, ...] = (32, 64, 128, 256)  # evaluator
    feature_scale: float = 8  # parser
    balanced: bool = False  # parser: class-balanced cross-entropy (median-frequency weights)
    init: str | None = None  # evaluator: fine-tune this file (same size and widths) instead of a fresh net

    def spec(self) -> DataSpec:
        return DataSpec(size=self.size, styles=self.styles, weights=self.weights, split="train", seed=self.seed)

    def signature(self, component: str) -> str:
        d = asdict(self)
        for k in ("cache_dir", "workers", "checkpoint_dir", "checkpoint_every", "resume"):
            d.pop(k)
        return json.dumps({"component": component, **d}, sort_keys=True)


@dataclass
class TrainReport:
    """What a trainer did (goes into the model card)."""

    component: str
    options: dict[str, Any]
    steps: int
    images_seen: int
    final_loss: float
    wall_s: float
    resumed_from: int
    extra: dict[str, Any] = field(default_factory=dict)


def _source(opts: TrainOptions, progress: ProgressCallback) -> BatchSource:
    spec = opts.spec()
    pool = None
    if opts.pool > 0:
        pool = Pool.build(spec, opts.pool, opts.cache_dir, opts.workers,
                          lambda done, total: progress(ProgressEvent("render", done, total)))
    return BatchSource(spec, opts.batch, opts.seed, pool)


def evaluator_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Sum over attribute heads of the cross-entropy (``IGNORE`` targets skipped)."""
    logits = model(batch.images)
    total = batch.images.new_zeros(())
    for i, name in enumerate(ATTRIBUTES):
        target = batch.targets[:, i]
        if bool((target != IGNORE).any()):
            total = total + F.cross_entropy(logits[name], target, ignore_index=IGNORE)
    return total


def parser_loss(model: nn.Module, batch: Batch, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel cross-entropy on the 19 labels (optionally class-weighted)."""
    return F.cross_entropy(model(batch.images), batch.labels, weight=weight)


def balanced_class_weights(source: BatchSource, n_batches: int = 8, clamp: tuple[float, float] = (0.2, 10.0)) -> torch.Tensor:
    """Median-frequency weights ``median(f) / f_c`` from the label histogram of the first batches;
    classes never seen get weight 1. Small parts (eyes, lips, earrings) cover few pixels, so an
    unweighted loss learns to ignore them."""
    counts = torch.zeros(N_LABELS, dtype=torch.float64)
    for step in range(n_batches):
        counts += torch.bincount(source(step).labels.reshape(-1), minlength=N_LABELS)[:N_LABELS].double()
    freq = counts / counts.sum()
    seen = freq > 0
    weights = torch.ones(N_LABELS, dtype=torch.float64)
    weights[seen] = (freq[seen].median() / freq[seen]).clamp(*clamp)
    return weights.float()


def train_evaluator(opts: TrainOptions, progress: ProgressCallback = _ignore) -> tuple[Evaluator, TrainReport]:
    """Train the attribute evaluator (see module docstring)."""
    torch.manual_seed(opts.seed)
    model = Evaluator(EvaluatorConfig(size=opts.size, widths=opts.widths))
    if opts.init is not None:
        start = Evaluator.from_file(opts.init)
        if (start.config.size, start.config.widths, start.config.attributes) != (opts.size, opts.widths,
                                                                                  model.config.attributes):
            raise InputError(f"--init {opts.init}: size {start.config.size} and widths {list(start.config.widths)} "
                             f"must match the run's ({opts.size}, {list(opts.widths)}) and the world's attributes")
        model.load_state_dict(start.state_dict())
    model.requires_grad_(True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=1e-4)
    source = _source(opts, progress)
    result = run_loop(model, optimizer, source, evaluator_loss, opts.steps, opts.lr, opts.signature("evaluator"),
                      opts.checkpoint_dir, opts.checkpoint_every, opts.resume, warmup=min(100, opts.steps // 10),
                      progress=progress)
    model.requires_grad_(False)
    return model, _report("evaluator", opts, result)


def train_parser(opts: TrainOptions, progress: ProgressCallback = _ignore) -> tuple[Parser, TrainReport]:
    """Train the CelebAMask-HQ U-Net on the world's labels; returns it wrapped as a :class:`Parser`
    running at the training size."""
    if opts.size % 16:
        raise InputError(f"the parser trains at a size divisible by 16, got {opts.size}")
    torch.manual_seed(opts.seed)
    net = UNet(UNetConfig(feature_scale=opts.feature_scale, n_classes=N_LABELS))
    optimizer = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=1e-4)
    source = _source(opts, progress)
    weight = balanced_class_weights(source) if opts.balanced else None
    result = run_loop(net, optimizer, source, lambda model, batch: parser_loss(model, batch, weight), opts.steps,
                      opts.lr, opts.signature("parser"),
                      opts.checkpoint_dir, opts.checkpoint_every, opts.resume, warmup=min(100, opts.steps // 10),
                      progress=progress)
    return Parser(net, size=opts.size, batchnorm="eval"), _report("parser", opts, result)


def _report(component: str, opts: TrainOptions, result: LoopResult) -> TrainReport:
    return TrainReport(component, asdict(opts), result.step, result.step * opts.batch, result.final_loss,
                       round(result.wall_s, 2), result.resumed_from)


# ---------------------------------------------------------------------------------- metrics
def attribute_accuracy(predicted: Mapping[str, torch.Tensor], targets: torch.Tensor) -> dict[str, float]:
    """Per-attribute accuracy of predicted class indices against ``[N, len(ATTRIBUTES)]`` targets,
    counting only the visible items (target != ``IGNORE``); attributes never visible are left out."""
    out: dict[str, float] = {}
    for i, name in enumerate(ATTRIBUTES):
        if name not in predicted:
            continue
        t = targets[:, i]
        seen = t != IGNORE
        if bool(seen.any()):
            out[name] = float((predicted[name][seen] == t[seen]).float().mean())
    return out


def iou_counts(predicted: torch.Tensor, truth: torch.Tensor, n_classes: int = N_LABELS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class (intersection, union, pixels in truth) over label maps of the same shape."""
    p = predicted.reshape(-1).long()
    t = truth.reshape(-1).long()
    inter = torch.bincount(t[p == t], minlength=n_classes)[:n_classes]
    area_p = torch.bincount(p, minlength=n_classes)[:n_classes]
    area_t = torch.bincount(t, minlength=n_classes)[:n_classes]
    return inter.numpy(), (area_p + area_t - inter).numpy(), area_t.numpy()


def mean_iou(inter: np.ndarray, union: np.ndarray, present: np.ndarray) -> tuple[float, dict[int, float]]:
    """Mean IoU over the classes present in the truth, and the IoU of each of them."""
    per = {int(c): float(inter[c] / union[c]) for c in range(len(inter)) if present[c] > 0}
    return (float(np.mean(list(per.values()))) if per else float("nan")), per


def evaluate_evaluator(model: Evaluator, n: int = 1000, size: int = 128, seed: int = 0, batch: int = 100,
                       progress: ProgressCallback = _ignore) -> dict[str, Any]:
    """Per-attribute accuracy on ``n`` held-out (test split) photo renders at ``size``."""
    spec = DataSpec(size=size, styles=("photo",), split="test", seed=seed)
    preds: dict[str, list[torch.Tensor]] = {name: [] for name in model.attributes}
    targets = []
    for start in range(0, n, batch):
        b = make_batch(spec, range(start, min(n, start + batch)))
        for name, v in model.predict_indices(b.images).items():
            preds[name].append(v)
        targets.append(b.targets)
        progress(ProgressEvent("evaluate", min(n, start + batch), n))
    acc = attribute_accuracy({k: torch.cat(v) for k, v in preds.items()}, torch.cat(targets))
    return {"metric": "accuracy", "split": "test", "style": "photo", "size": size, "n": n, "accuracy": acc,
            "min_accuracy": min(acc.values()), "mean_accuracy": float(np.mean(list(acc.values())))}


def evaluate_parser(parser: Parser, n: int = 500, size: int | None = None, seed: int = 0, batch: int = 50,
                    progress: ProgressCallback = _ignore) -> dict[str, Any]:
    """Mean IoU (over classes present) on ``n`` held-out photo renders at ``size`` (default: the
    parser's own size, else 128)."""
    from cfs_core.world import LABEL_NAMES

    size = size or parser.size or 128
    spec = DataSpec(size=size, styles=("photo",), split="test", seed=seed)
    inter = union = present = np.zeros(N_LABELS, dtype=np.int64)
    for start in range(0, n, batch):
        b = make_batch(spec, range(start, min(n, start + batch)))
        i, u, p = iou_counts(parser.labels(b.images), b.labels)
        inter, union, present = inter + i, union + u, present + p
        progress(ProgressEvent("evaluate", min(n, start + batch), n))
    miou, per = mean_iou(inter, union, present)
    return {"metric": "mean_iou", "split": "test", "style": "photo", "size": size, "n": n, "mean_iou": miou,
            "iou": {LABEL_NAMES[c]: v for c, v in per.items()}}
