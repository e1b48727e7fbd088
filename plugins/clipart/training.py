"""The adaptor's training loop (spec clipfaceshop.md §1.4, §1.5, §2; quirks §6.2–§6.5).

Per step i (of ``steps``), with a fresh batch of N pool latents ``w`` (consecutive, cycling
through the pool; the reference's single pass when the pool holds ``steps × N`` codes):

1. ``x = G(w)`` without gradients; ``w' = (M⊙A + 1 − M)⊙w + M⊙d``; ``x' = G(w')``;
2. the composed loss (transfer, gap, consistency, source similarity, identity, background,
   regulariser — registered losses by id × weight) on (x', x, w', w);
3. Adam on ``[d, A]`` (no weight decay) at TargetCLIP's lr for step i
   (:func:`cfs_core.schedules.targetclip_lr`: 0 at step 0, warm-up, cosine ramp-down);
4. best-loss tracking: the lowest total loss so far keeps its (A, d).

Gradients are taken with ``torch.autograd.grad`` w.r.t. A and d only, so no frozen network (the
generator, CLIP, the identity net, the parser) ever receives ``.grad``. Faithful vs corrected
(option ``faithful``):

* best snapshot (§6.5): faithful copies A, d **after** ``optimizer.step()`` (one update past the
  loss it was chosen by); corrected keeps the parameters that produced the best loss. Both
  compare losses across different batches, as streaming training has to;
* regulariser (§6.3): faithful pulls A toward 0 (``½‖M⊙A‖²``); corrected toward 1 (the loss gets
  ``A − 1``), so the regulariser shrinks the edit rather than the identity part of the map;
* background (§6.2): faithful uses the reference's mask (image 0 only, sigmoid of logits, sum
  over pixels) with the parser's BatchNorm on batch statistics when the parser supports it
  (``parser.batchnorm = "batch"`` for the run, restored after); corrected: per-image soft masks,
  eval BatchNorm, per-pixel mean.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from cfs_core.losses import ComposedLoss, LossInputs
from cfs_core.schedules import targetclip_lr
from cfs_plugins.clipart.adaptor import adapted

if TYPE_CHECKING:
    from cfs_core.guidance import Guidance
    from cfs_core.methods import EditContext

StepHook = Callable[[int, torch.Tensor, torch.Tensor, float], None]  # (step, A, d, loss) before the update


@dataclass
class Setup:
    """Everything one training run needs (all tensors on the training device)."""

    pool: torch.Tensor  # [P, L, D] training W+ codes
    mask: torch.Tensor  # [1, L, 1]
    A: torch.Tensor  # [1, L, D] initial scale
    d: torch.Tensor  # [1, L, D] initial shift
    target: torch.Tensor  # [1, D] target clipart embedding
    base: torch.Tensor | None  # [D] base clipart embedding (None when the gap loss is off)
    guidance: Guidance
    loss: ComposedLoss
    steps: int
    batch: int
    lr: float
    faithful: bool


@dataclass
class Outcome:
    """What training produced: best and last parameters, losses and timings."""

    A: torch.Tensor
    d: torch.Tensor
    A_last: torch.Tensor
    d_last: torch.Tensor
    best_loss: float
    best_step: int
    history: list[float] = field(default_factory=list)
    parts: dict[str, float] = field(default_factory=dict)  # the terms of the last step
    seconds: float = 0.0

    def facts(self) -> dict[str, Any]:
        return {"steps": len(self.history), "best_loss": self.best_loss, "best_step": self.best_step,
                "final_loss": self.history[-1] if self.history else None, "final_terms": self.parts,
                "loss_history": [round(v, 6) for v in self.history], "train_seconds": round(self.seconds, 3)}


def batch_indices(step: int, batch: int, pool_size: int) -> list[int]:
    """The pool rows of step ``step``: ``step·N … step·N + N − 1``, wrapping around the pool."""
    return [(step * batch + j) % pool_size for j in range(batch)]


@contextlib.contextmanager
def parser_batchnorm(parser: Any, mode: str | None) -> Iterator[None]:
    """Set ``parser.batchnorm`` to ``mode`` for the run (when the parser has that setting)."""
    if mode is None or parser is None or not hasattr(parser, "batchnorm"):
        yield
        return
    before = parser.batchnorm
    parser.batchnorm = mode
    try:
        yield
    finally:
        parser.batchnorm = before


def train(ctx: EditContext, setup: Setup, on_step: StepHook | None = None) -> Outcome:
    """Run the loop of the module docstring; reports ``ctx.report("train", i + 1, steps, loss=…)``."""
    gen = ctx.generator
    A = setup.A.detach().clone().requires_grad_(True)
    d = setup.d.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([d, A], lr=setup.lr, weight_decay=0.0)
    extras_fixed: dict[str, Any] = {"clip.target": setup.target, "adaptor.mask": setup.mask,
                                    "background.faithful": setup.faithful}
    if setup.base is not None:
        extras_fixed["clip.base"] = setup.base
    best, best_step = math.inf, -1
    best_A, best_d = A.detach().clone(), d.detach().clone()
    history: list[float] = []
    parts: dict[str, float] = {}
    start = time.perf_counter()
    for step in range(setup.steps):
        w = setup.pool[batch_indices(step, setup.batch, setup.pool.shape[0])]
        with torch.no_grad():
            x = gen.synthesis(w)
        w_edit = adapted(w, A, d, setup.mask)
        x_edit = gen.synthesis(w_edit)
        extras = dict(extras_fixed)
        extras["adaptor.A"] = A if setup.faithful else A - 1
        extras["adaptor.d"] = d
        inputs = LossInputs(images=x_edit, source_images=x, latents=w_edit, source_latents=w,
                            guidance=setup.guidance, extras=extras)
        total, parts = setup.loss(inputs)
        value = float(total.detach())
        if on_step is not None:
            on_step(step, A.detach().clone(), d.detach().clone(), value)
        before = (A.detach().clone(), d.detach().clone())
        lr = targetclip_lr(step, setup.steps, setup.lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        grads = torch.autograd.grad(total, [d, A], allow_unused=True)
        for param, grad in zip((d, A), grads):
            param.grad = torch.zeros_like(param) if grad is None else grad
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        history.append(value)
        if value < best:
            best, best_step = value, step
            best_A, best_d = (A.detach().clone(), d.detach().clone()) if setup.faithful else before
        ctx.report("train", step + 1, setup.steps, loss=value, lr=lr)
    return Outcome(best_A, best_d, A.detach().clone(), d.detach().clone(), best, best_step, history, parts,
                   time.perf_counter() - start)
