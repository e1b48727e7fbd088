"""The W+ layer-importance ranking that selects the adaptor's layers (spec clipfaceshop.md §1.3).

ClipFaceShop edits only the top-``mpp_d`` W+ slots of a precomputed ranking. The reference ships
it for FFHQ-1024 only (``dirs/get_w/allc_vistmp.npy``, an (18, 512) map whose per-slot means give
:data:`FFHQ_RANKING`); how it was made is not in the repository. For any other generator (or on
request) cfs computes a ranking with a documented, cheap procedure (:func:`sensitivity_scores`):

**Per-slot style-mixing sensitivity of the CLIP embedding.** Draw ``n`` pairs of faces
``(w_a, w_b)`` at truncation ψ (fixed seed 0: the ranking is a property of the
(generator, CLIP) pair, not of an edit's seed). For each slot ``l`` replace slot ``l`` of ``w_a``
by slot ``l`` of ``w_b`` and measure how far the image moves in CLIP space,
``score_l = mean_i (1 − ê(mix_l(w_a,i, w_b,i)) · ê(w_a,i))``. Slots that move the CLIP embedding
the most rank first (ties: lower slot first). Cost: ``(L + 1)`` generator passes and CLIP
encodings of ``n`` images (``n = 4``: 76 images for an 18-slot generator), once per pair; the
result is cached under ``clipart-ranking/`` of the artefact cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from cfs_core.artifacts import artifact_key, model_digest
from cfs_core.errors import InputError

if TYPE_CHECKING:
    from cfs_core.methods import EditContext
    from cfs_core.nets.protocols import ClipEncoder
    from cfs_core.stylegan2 import Generator

# Per-slot means of |allc_vistmp.npy| ×1e-3 (spec §1.3, [DATA]) and the ranking they give.
FFHQ_LAYER_MEANS: tuple[float, ...] = (2.43, 2.77, 3.69, 2.97, 4.88, 2.70, 4.60, 2.67, 3.96, 2.55, 2.46, 2.46,
                                       2.69, 2.67, 2.35, 2.46, 2.19, 2.27)
FFHQ_RANKING: tuple[int, ...] = (4, 6, 8, 2, 3, 1, 5, 12, 13, 7, 9, 15, 11, 10, 0, 14, 17, 16)
FFHQ_SHAPE = (18, 512)  # (n_latent, style_dim) of StyleGAN2 FFHQ-1024 config-f

SENSITIVITY_PAIRS = 4
SENSITIVITY_PSI = 0.7
SENSITIVITY_SEED = 0
RANKING_VERSION = 1
RANKING_MODES = ("auto", "ffhq", "sensitivity")


def parse_ranking(spec: str, n_latent: int) -> tuple[int, ...] | None:
    """An explicit ranking ``"4,6,8,2,3"`` (a prefix is enough) → slots; a mode name → None."""
    if spec in RANKING_MODES:
        return None
    try:
        slots = tuple(int(part) for part in spec.replace(" ", "").split(",") if part)
    except ValueError:
        raise InputError(f"option 'ranking': '{spec}' is neither {', '.join(RANKING_MODES)} nor a comma-separated "
                         "list of W+ slots") from None
    if not slots or len(set(slots)) != len(slots) or not all(0 <= s < n_latent for s in slots):
        raise InputError(f"option 'ranking': '{spec}' must list distinct W+ slots in 0..{n_latent - 1}")
    return slots


def top_slots(ranking: Sequence[int], k: int, n_latent: int) -> list[int]:
    """The first ``k`` slots of ``ranking``, sorted (the adaptor's layer set S)."""
    if not 1 <= k <= len(ranking):
        raise InputError(f"option 'mpp_d' is {k}, but the ranking has {len(ranking)} slots (generator: {n_latent})")
    return sorted(int(s) for s in ranking[:k])


def layer_mask(slots: Sequence[int], n_latent: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The ``[1, L, 1]`` mask M with ones on ``slots``."""
    mask = torch.zeros(1, n_latent, 1, device=device)
    mask[0, list(slots)] = 1.0
    return mask


@torch.no_grad()
def sensitivity_scores(gen: Generator, clip: ClipEncoder, pairs: int = SENSITIVITY_PAIRS,
                       psi: float = SENSITIVITY_PSI, seed: int = SENSITIVITY_SEED) -> torch.Tensor:
    """``[L]`` CLIP sensitivity of each W+ slot to style mixing (module docstring)."""
    device = gen.input.input.device
    z = torch.randn(2 * pairs, gen.style_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    w = gen.to_wplus(gen.truncate(gen.mapping(z), psi, gen.truncation_center()))
    w_a, w_b = w[:pairs], w[pairs:]
    base = clip.encode_generated(gen.synthesis(w_a)).float()
    scores = torch.zeros(gen.n_latent)
    for slot in range(gen.n_latent):
        mixed = w_a.clone()
        mixed[:, slot] = w_b[:, slot]
        edited = clip.encode_generated(gen.synthesis(mixed)).float()
        scores[slot] = (1 - (edited * base).sum(-1)).mean().cpu()
    return scores


def rank_scores(scores: torch.Tensor) -> tuple[int, ...]:
    """Slots by decreasing score, ties by slot index."""
    order = sorted(range(len(scores)), key=lambda s: (-float(scores[s]), s))
    return tuple(order)


def resolve_ranking(ctx: EditContext, spec: str) -> tuple[tuple[int, ...], str, dict[str, Any]]:
    """(ranking, source, facts) for option ``ranking`` (``auto``/``ffhq``/``sensitivity``/a list).

    ``auto`` is the FFHQ-1024 ranking for an 18 × 512 generator and the sensitivity ranking
    otherwise. The sensitivity ranking is computed once per (generator, CLIP) pair and cached.
    """
    gen = ctx.generator
    given = parse_ranking(spec, gen.n_latent)
    if given is not None:
        return given, "given", {}
    mode = spec
    if mode == "auto":
        mode = "ffhq" if (gen.n_latent, gen.style_dim) == FFHQ_SHAPE else "sensitivity"
    if mode == "ffhq":
        if gen.n_latent != FFHQ_SHAPE[0]:
            raise InputError(f"option 'ranking': the FFHQ-1024 ranking has 18 slots, this generator has {gen.n_latent}")
        return FFHQ_RANKING, "ffhq", {}
    return sensitivity_ranking(ctx)


def ranking_key_part(ctx: EditContext, spec: str) -> str:
    """What the adaptor key records about the ranking, without computing it."""
    gen = ctx.generator
    given = parse_ranking(spec, gen.n_latent)
    if given is not None:
        return "given:" + ",".join(map(str, given))
    if spec == "auto":
        spec = "ffhq" if (gen.n_latent, gen.style_dim) == FFHQ_SHAPE else "sensitivity"
    return f"sensitivity:v{RANKING_VERSION}" if spec == "sensitivity" else "ffhq"


def sensitivity_ranking(ctx: EditContext) -> tuple[tuple[int, ...], str, dict[str, Any]]:
    """The cached (or freshly computed) sensitivity ranking of ``ctx``'s generator + CLIP."""
    from cfs_core.nets.protocols import CLIP

    clip = ctx.resources.get(CLIP)
    key = artifact_key("clipart-ranking", generator=model_digest(ctx.generator), clip=ctx.resources.digest(CLIP),
                       pairs=SENSITIVITY_PAIRS, psi=SENSITIVITY_PSI, seed=SENSITIVITY_SEED, version=RANKING_VERSION)
    cache = ctx.artifacts()
    hit = cache.load("clipart-ranking", key)
    if hit is not None and "scores" in hit[0] and hit[0]["scores"].numel() == ctx.generator.n_latent:
        scores = hit[0]["scores"]
        return rank_scores(scores), "sensitivity", {"ranking_cached": True, "ranking_scores": scores.tolist()}
    ctx.report("ranking", 0, 1, "per-slot CLIP sensitivity of the generator")
    scores = sensitivity_scores(ctx.generator, clip)
    ranking = rank_scores(scores)
    cache.save("clipart-ranking", key, {"scores": scores},
               {"ranking": list(ranking), "pairs": SENSITIVITY_PAIRS, "psi": SENSITIVITY_PSI,
                "version": RANKING_VERSION})
    ctx.report("ranking", 1, 1, "ranking computed")
    return ranking, "sensitivity", {"ranking_cached": False, "ranking_scores": scores.tolist()}
