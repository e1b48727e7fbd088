"""Which W+ slots each ``layers`` value of ``stylemix`` touches (pure Python, no torch).

A StyleGAN2 generator of resolution ``size`` has ``n_latent = 2·log2(size) − 2`` W+ slots (18 at
1024 px, 14 at 256 px, 6 at 16 px). The classic split of the 18 slots at 1024 px is

* ``coarse``: slots 0–3 (4–8 px: pose, face shape, glasses),
* ``middle``: slots 4–7 (16–32 px: features, hair style, eyes open/closed),
* ``fine``: slots 8–17 (64–1024 px: colour scheme, skin, micro-structure).

The ranges here keep those proportions for any ``n_latent`` (coarse and middle are each
``round(n_latent · 4/18)`` slots, at least one; fine is the rest), so the method works on every
resolution, including the 16 px test generator (coarse 0, middle 1, fine 2–5).
"""

from __future__ import annotations

LAYERS = ("coarse", "middle", "fine", "all")


def n_latent_for_size(size: int) -> int:
    """W+ slots of a StyleGAN2 generator of output resolution ``size`` (a power of two ≥ 8)."""
    if size < 8 or size & (size - 1):
        raise ValueError(f"size must be a power of two >= 8, got {size}")
    return 2 * (size.bit_length() - 1) - 2


def slot_ranges(n_latent: int) -> dict[str, range]:
    """``{layers value: range of W+ slots}`` for a generator with ``n_latent`` slots."""
    if n_latent < 3:
        raise ValueError(f"need at least 3 W+ slots to split into coarse/middle/fine, got {n_latent}")
    part = max(1, round(n_latent * 4 / 18))
    return {
        "coarse": range(0, part),
        "middle": range(part, 2 * part),
        "fine": range(2 * part, n_latent),
        "all": range(0, n_latent),
    }
