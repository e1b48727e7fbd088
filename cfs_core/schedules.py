"""Learning-rate schedules of the reference methods.

Both StyleCLIP's latent optimisation (spec styleclip_stylegan2.md §5) and TargetCLIP /
ClipFaceShop (clipfaceshop.md §1.5) use the same cosine ramp, with different constants::

    lr(t) = lr0 · min(1, t / rampup) · (0.5 − 0.5·cos(π · min(1, (1 − t) / rampdown))),  t = step / total

so the first step has lr 0, the rate ramps up over ``rampup`` of the run and decays to 0 over
the last ``rampdown``.
"""

from __future__ import annotations

import math

STYLECLIP = {"rampdown": 0.25, "rampup": 0.05}
TARGETCLIP = {"rampdown": 0.75, "rampup": 0.005}


def cosine_ramp_lr(step: int, total: int, lr0: float, rampdown: float, rampup: float) -> float:
    """The learning rate at ``step`` (0-based) of ``total`` steps."""
    t = step / max(total, 1)
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    warm = min(1.0, t / rampup) if rampup > 0 else 1.0
    return lr0 * warm * (0.5 - 0.5 * math.cos(math.pi * ramp))


def styleclip_lr(step: int, total: int, lr0: float) -> float:
    """StyleCLIP's ``get_lr`` (rampdown 0.25, rampup 0.05)."""
    return cosine_ramp_lr(step, total, lr0, **STYLECLIP)


def targetclip_lr(step: int, total: int, lr0: float) -> float:
    """TargetCLIP's ``get_lr`` as ClipFaceShop uses it (rampdown 0.75, rampup 0.005)."""
    return cosine_ramp_lr(step, total, lr0, **TARGETCLIP)
