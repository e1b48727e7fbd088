"""Ranger: RAdam + Lookahead + gradient centralisation, as StyleCLIP's mapper coach uses it.

Spec ``styleclip_stylegan2.md`` §6 (training): ``optim_name='ranger'`` with StyleCLIP's
``mapper/training/ranger.py`` (Less Wright's Ranger, the 2020 version with gradient
centralisation). Defaults there: ``alpha=0.5, k=6, N_sma_threshhold=5, betas=(0.95, 0.999),
eps=1e-5, weight_decay=0, use_gc=True, gc_conv_only=False``. Per parameter ``p`` with gradient
``g`` and step ``t`` (1-based)::

    g ← g − mean(g over every dim but the first)            if g.dim() > 1   (centralisation)
    v ← β₂ v + (1 − β₂) g²;   m ← β₁ m + (1 − β₁) g
    ρ∞ = 2 / (1 − β₂) − 1;    ρ_t = ρ∞ − 2 t β₂ᵗ / (1 − β₂ᵗ)
    ρ_t > 5:  p ← p − lr · r_t / (1 − β₁ᵗ) · m / (√v + ε),
              r_t = √((1 − β₂ᵗ)(ρ_t − 4)(ρ_t − 2) ρ∞ / ((ρ∞ − 4)(ρ∞ − 2) ρ_t))
    else:     p ← p − lr / (1 − β₁ᵗ) · m                     (un-adapted momentum SGD)
    t mod k = 0:  slow ← slow + α (p − slow);  p ← slow      (Lookahead; slow starts at p₀)

The reference caches ``(ρ_t, step size)`` in a ten-slot ring buffer keyed by ``t``; every
parameter shares ``t``, so computing them directly gives the same numbers. Weight decay is
applied as the reference does (``p ← p − wd · lr · p``, before the update). The whole optimiser
state (``step``, ``exp_avg``, ``exp_avg_sq``, ``slow_buffer``) lives in ``self.state``, so
``state_dict()``/``load_state_dict()`` resume a run exactly.

torch's ``RAdam`` computes the same rectified update but has neither Lookahead nor gradient
centralisation; this small faithful copy keeps all of it in one optimiser, so one
``state_dict`` resumes a run (a Lookahead wrapper around torch's RAdam would need two).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer


class Ranger(Optimizer):
    """RAdam + Lookahead(α, k) + gradient centralisation (StyleCLIP's ``Ranger``)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-3,                       # StyleCLIP's mapper uses 0.5
        alpha: float = 0.5,                     # Lookahead interpolation toward the fast weights
        k: int = 6,                             # Lookahead period (steps)
        n_sma_threshold: float = 5.0,           # RAdam: rectify only when ρ_t exceeds this
        betas: tuple[float, float] = (0.95, 0.999),
        eps: float = 1e-5,
        weight_decay: float = 0.0,
        use_gc: bool = True,                    # gradient centralisation
        gc_conv_only: bool = False,             # centralise only dim > 3 (conv) instead of dim > 1
    ) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"invalid Lookahead alpha {alpha}")
        if k < 1:
            raise ValueError(f"invalid Lookahead k {k}")
        if lr <= 0.0 or eps <= 0.0:
            raise ValueError(f"invalid lr {lr} or eps {eps}")
        defaults = dict(lr=lr, alpha=alpha, k=k, n_sma_threshold=n_sma_threshold, betas=betas, eps=eps,
                        weight_decay=weight_decay, use_gc=use_gc, gc_threshold=3 if gc_conv_only else 1)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("Ranger does not support sparse gradients")
                grad = p.grad.float().clone()
                data = p.float()
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(data)
                    state["exp_avg_sq"] = torch.zeros_like(data)
                    state["slow_buffer"] = p.detach().clone()
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]

                if group["use_gc"] and grad.dim() > group["gc_threshold"]:
                    grad.sub_(grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True))

                state["step"] += 1
                t = state["step"]
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)

                beta2_t = beta2**t
                n_sma_max = 2 / (1 - beta2) - 1
                n_sma = n_sma_max - 2 * t * beta2_t / (1 - beta2_t)
                rectified = n_sma > group["n_sma_threshold"]
                if rectified:
                    step_size = math.sqrt((1 - beta2_t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma
                                          * n_sma_max / (n_sma_max - 2)) / (1 - beta1**t)
                else:
                    step_size = 1.0 / (1 - beta1**t)

                if group["weight_decay"] != 0:
                    data.add_(data, alpha=-group["weight_decay"] * group["lr"])
                if rectified:
                    data.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(group["eps"]), value=-step_size * group["lr"])
                else:
                    data.add_(exp_avg, alpha=-step_size * group["lr"])
                p.copy_(data)

                if t % group["k"] == 0:  # Lookahead, per parameter
                    slow = state["slow_buffer"]
                    slow.add_(p - slow, alpha=group["alpha"])
                    p.copy_(slow)
        return loss
