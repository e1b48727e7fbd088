"""Training and evaluation of the demo pack's identity net (ArcFace IR-SE, small configuration).

**Identity.** In the world a person *is* the eleven ``identity``-group parameters of
:data:`~cfs_core.world.SPECS` (:data:`~cfs_core.training.data.IDENTITY_NAMES`: face geometry,
eyes, nose, mouth, ears, skin tone). Identity ``k`` of a split takes them from
``sample_params(face_seed(split, k, seed))``. A *variant* ``v`` of it is a full, coherent sample
from its own seed (:func:`variant_seed`; ``sample_params`` couples facial hair with presentation,
so the whole face is drawn first) with the identity parameters copied over, rendered in a style
drawn from :data:`VARIANT_STYLES` (photo 0.6, clipart 0.2, sketch 0.2): attributes, lighting,
texture and style all change, the person does not.

**Training** (:func:`train_identity`): ``identities × variants`` renders of the train split form a
pool in memory (cached as one ``.npz`` in ``cache_dir``, written atomically). The model
(:class:`IdentityModel`) is an :class:`~cfs_core.nets.irse.IRSEBackbone` fed through exactly
:func:`~cfs_core.nets.identity.identity_preprocess` — the crop the :class:`IdentityNet` resource
sees — and an ArcFace head: additive angular margin ``m``, scale ``s``, one learnable unit
weight per training identity. The head is a training device only; the saved file
(:func:`~cfs_core.nets.irse.save_irse_native`) holds the backbone. Batches are epochs of
permutations of the pool, lightly augmented (a shift of a few pixels, a horizontal flip: the
world's faces are mirror-symmetric, only lighting and hair partings are not, and those are no
part of identity) with a generator seeded by ``(seed, step)``, so the run resumes bit-identically
through :func:`~cfs_core.training.loops.run_loop`. Options: ``grouped`` batches (every variant of
``batch // variants`` identities) and ``param_weight`` (a linear read-out of the identity
parameters from the embedding, MSE); both off by default (no gain in short trials).

**Evaluation** (:func:`evaluate_identity`): held-out (``test`` split) identities, ``variants``
each; every same-identity pair against every different-identity pair, scored by cosine
similarity. Reported: ROC AUC (Mann–Whitney, :func:`roc_auc`), the AUC of cross-style pairs only
and of photo–photo pairs only, the mean same/different cosine and the TAR at a FAR of 1 %.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cfs_core.checkpoints import torch_load_safe
from cfs_core.errors import InputError
from cfs_core.fileio import atomic_path
from cfs_core.methods import ProgressCallback, ProgressEvent
from cfs_core.nets.identity import IdentityNet, identity_preprocess
from cfs_core.nets.irse import IRSEBackbone, IRSEConfig
from cfs_core.training.data import (
    IDENTITY_NAMES,
    SPLITS,
    face_seed,
    step_indices,
    to_tensor_images,
)
from cfs_core.training.loops import CHECKPOINT, run_loop
from cfs_core.world import SPECS, FaceParams, build_scene, render_scene, sample_params

VARIANT_STYLES: tuple[tuple[str, float], ...] = (("photo", 0.6), ("clipart", 0.2), ("sketch", 0.2))


def _ignore(event: ProgressEvent) -> None:
    """Default progress sink."""


# ---------------------------------------------------------------------------------- data
def identity_params(split: str, identity: int, seed: int = 0) -> dict[str, Any]:
    """The identity-group parameters of identity ``identity`` of ``split``."""
    face = sample_params(face_seed(split, identity, seed))
    return {n: getattr(face, n) for n in IDENTITY_NAMES}


def variant_seed(split: str, identity: int, variant: int, seed: int = 0) -> int:
    """The seed of variant ``variant`` of an identity: a hash, distinct from every face seed."""
    face_seed(split, identity, seed)  # validates split, index and seed
    text = f"cfs-identity-variant/{split}/{seed}/{identity}/{variant}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def identity_variant(split: str, identity: int, variant: int, seed: int = 0) -> tuple[FaceParams, str, int]:
    """``(params, style, render_seed)`` of one variant (module docstring)."""
    vseed = variant_seed(split, identity, variant, seed)
    params = sample_params(vseed).replace(**identity_params(split, identity, seed))
    rng = np.random.default_rng([seed, SPLITS.index(split), identity, variant, 13])
    names, weights = zip(*VARIANT_STYLES)
    style = names[int(rng.choice(len(names), p=np.asarray(weights) / sum(weights)))]
    return params, style, vseed


def render_variant(split: str, identity: int, variant: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, str]:
    """The ``(size, size, 3)`` uint8 render of a variant and its style (rendered at >= 64 px)."""
    params, style, rseed = identity_variant(split, identity, variant, seed)
    image = render_scene(build_scene(params), style, max(size, 64), rseed)
    if size < 64:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BOX))
    return image, style


def identity_targets(split: str, identities: int, seed: int = 0) -> np.ndarray:
    """``(identities, 11)`` float32 identity parameters, each mapped to [-1, 1] (regression targets)."""
    rows = [[2 * (v - SPECS[n].low) / (SPECS[n].high - SPECS[n].low) - 1 for n, v in identity_params(split, k, seed).items()]
            for k in range(identities)]
    return np.asarray(rows, dtype=np.float32).reshape(identities, len(IDENTITY_NAMES))


@dataclass
class IdentityPool:
    """``identities × variants`` renders: images ``(N, S, S, 3)`` uint8, labels and styles ``(N,)``.

    Item ``i`` is variant ``i % variants`` of identity ``i // variants``.
    """

    images: np.ndarray
    labels: np.ndarray
    styles: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @classmethod
    def build(cls, split: str, identities: int, variants: int, size: int = 64, seed: int = 0,
              cache_dir: str | os.PathLike[str] | None = None, progress: ProgressCallback = _ignore) -> IdentityPool:
        """Render (or load from ``cache_dir``) the pool of a split."""
        if identities < 1 or variants < 1:
            raise InputError(f"need at least 1 identity and 1 variant, got {identities} × {variants}")
        key = json.dumps({"v": 1, "split": split, "identities": identities, "variants": variants, "size": size,
                          "seed": seed, "styles": VARIANT_STYLES}, sort_keys=True)
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / f"identity-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
            if path.exists():
                with np.load(path) as data:
                    return cls(data["images"], data["labels"], data["styles"])
        images, styles, total = [], [], identities * variants
        for k in range(identities):
            for v in range(variants):
                image, style = render_variant(split, k, v, size, seed)
                images.append(image)
                styles.append(style)
            if (k + 1) % 50 == 0 or k + 1 == identities:
                progress(ProgressEvent("render", (k + 1) * variants, total))
        pool = cls(np.stack(images), np.repeat(np.arange(identities, dtype=np.int64), variants), np.array(styles))
        if path is not None:
            with atomic_path(path) as tmp:
                np.savez(tmp, images=pool.images, labels=pool.labels, styles=pool.styles)
        return pool


@dataclass
class IdentityBatch:
    """A training batch: augmented images in [-1, 1], identity class labels and parameters."""

    images: torch.Tensor  # [B, 3, S, S]
    labels: torch.Tensor  # [B] int64
    params: torch.Tensor  # [B, 11] identity parameters in [-1, 1]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def augment(images: torch.Tensor, gen: torch.Generator, shift: int = 2, flip: bool = True) -> torch.Tensor:
    """Shift each image by up to ``shift`` pixels (edge padding) and mirror half of them."""
    b, _, h, w = images.shape
    out = images
    if shift > 0:
        padded = F.pad(images, (shift, shift, shift, shift), mode="replicate")
        dy, dx = torch.randint(0, 2 * shift + 1, (2, b), generator=gen).tolist()
        out = torch.stack([padded[i, :, y:y + h, x:x + w] for i, (y, x) in enumerate(zip(dy, dx))])
    if flip:
        mirror = torch.rand(b, generator=gen) < 0.5
        out = torch.where(mirror[:, None, None, None], out.flip(-1), out)
    return out


# ---------------------------------------------------------------------------------- model
class ArcFaceHead(nn.Module):
    """ArcFace logits ``s · cos(θ_y + m)`` for the target class, ``s · cos θ_j`` for the others."""

    def __init__(self, embedding_dim: int, classes: int, scale: float = 32.0, margin: float = 0.4) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, embedding_dim) * 0.01)
        self.scale, self.margin = float(scale), float(margin)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = F.linear(embeddings, F.normalize(self.weight, dim=1)).clamp(-1.0, 1.0)
        target = cos.gather(1, labels[:, None])
        sin = (1.0 - target.pow(2)).clamp_min(1e-9).sqrt()
        phi = target * math.cos(self.margin) - sin * math.sin(self.margin)
        # past θ = π - m, cos(θ + m) is no longer decreasing: the usual linear fallback
        th, mm = math.cos(math.pi - self.margin), math.sin(math.pi - self.margin) * self.margin
        phi = torch.where(target > th, phi, target - mm)
        return self.scale * cos.scatter(1, labels[:, None], phi)


class IdentityModel(nn.Module):
    """Backbone (through :func:`identity_preprocess`), ArcFace head and a linear read-out of the
    identity parameters: what :func:`run_loop` trains (only the backbone is kept)."""

    def __init__(self, config: IRSEConfig, classes: int, scale: float = 32.0, margin: float = 0.4) -> None:
        super().__init__()
        self.backbone = IRSEBackbone(config)
        self.head = ArcFaceHead(config.embedding_dim, classes, scale, margin)
        self.readout = nn.Linear(config.embedding_dim, len(IDENTITY_NAMES))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(identity_preprocess(images, self.backbone.input_size))


def identity_loss(model: IdentityModel, batch: IdentityBatch, param_weight: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the ArcFace logits, plus ``param_weight`` × the MSE of the linear read-out
    of the identity parameters from the embedding (an auxiliary that carries over to unseen faces)."""
    embeddings = model(batch.images)
    loss = F.cross_entropy(model.head(embeddings, batch.labels), batch.labels)
    if param_weight > 0:
        loss = loss + param_weight * F.mse_loss(model.readout(embeddings), batch.params)
    return loss


# ---------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class IdentityTrainOptions:
    """Settings of the identity net's training (defaults: the recommended real run)."""

    identities: int = 1500
    variants: int = 4
    steps: int = 3000
    batch: int = 64
    size: int = 64  # render size of the pool
    seed: int = 0
    lr: float = 2e-3
    margin: float = 0.3
    scale: float = 32.0
    stem: int = 16
    widths: tuple[int, ...] = (16, 48, 128)
    units: tuple[int, ...] = (1, 2, 1)
    input_size: int = 56
    embedding_dim: int = 128
    drop_ratio: float = 0.2
    shift: int = 2  # augmentation: max shift in pixels of the render
    flip: bool = True
    param_weight: float = 0.0  # auxiliary identity-parameter regression (identity_loss)
    grouped: bool = False  # batches of batch // variants identities with all their variants
    weight_decay: float = 5e-4
    cache_dir: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100
    resume: bool = True

    def config(self) -> IRSEConfig:
        """The backbone's architecture (SE reduction 8: the narrow stages keep a few SE units)."""
        try:
            return IRSEConfig(stem=self.stem, widths=self.widths, units=self.units, input_size=self.input_size,
                              embedding_dim=self.embedding_dim, se_reduction=8, drop_ratio=self.drop_ratio)
        except ValueError as exc:
            raise InputError(f"bad identity net architecture: {exc}") from None

    def signature(self) -> str:
        d = asdict(self)
        for k in ("cache_dir", "checkpoint_dir", "checkpoint_every", "resume"):
            d.pop(k)
        return json.dumps({"component": "identity", **d}, sort_keys=True)


def train_identity(opts: IdentityTrainOptions,
                   progress: ProgressCallback = _ignore) -> tuple[IRSEBackbone, dict[str, Any]]:
    """Train the identity backbone (module docstring); returns it frozen in eval mode and a report
    for its model card. Save it with :func:`~cfs_core.nets.irse.save_irse_native`."""
    if opts.batch < 2:
        raise InputError(f"batch size must be at least 2, got {opts.batch}")
    config = opts.config()
    pool = IdentityPool.build("train", opts.identities, opts.variants, opts.size, opts.seed, opts.cache_dir, progress)
    torch.manual_seed(opts.seed)
    model = IdentityModel(config, opts.identities, opts.scale, opts.margin)
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=opts.weight_decay)

    targets = torch.from_numpy(identity_targets("train", opts.identities, opts.seed))

    def batches(step: int) -> IdentityBatch:
        if opts.grouped:  # epochs of permutations of the identities, each with all its variants
            ids = step_indices(step, max(1, opts.batch // opts.variants), opts.seed, opts.identities)
            idx = (ids[:, None] * opts.variants + np.arange(opts.variants)).reshape(-1)
        else:
            idx = step_indices(step, opts.batch, opts.seed, len(pool))
        gen = torch.Generator().manual_seed(opts.seed * 1_000_003 + step)
        images = augment(to_tensor_images(pool.images[idx]), gen, opts.shift, opts.flip)
        labels = torch.from_numpy(pool.labels[idx])
        return IdentityBatch(images, labels, targets[labels])

    def loss_fn(model: IdentityModel, batch: IdentityBatch) -> torch.Tensor:
        return identity_loss(model, batch, opts.param_weight)

    result = run_loop(model, optimizer, batches, loss_fn, opts.steps, opts.lr,  # type: ignore[arg-type]
                      opts.signature(), opts.checkpoint_dir, opts.checkpoint_every, opts.resume,
                      warmup=min(100, opts.steps // 10), progress=progress)
    backbone = model.backbone.eval().requires_grad_(False)
    per_step = max(1, opts.batch // opts.variants) * opts.variants if opts.grouped else opts.batch
    report = {"component": "identity", "options": asdict(opts), "config": config.to_dict(),
              "steps": result.step, "images_seen": result.step * per_step, "final_loss": result.final_loss,
              "wall_s": round(result.wall_s, 2), "resumed_from": result.resumed_from,
              "classes": opts.identities, "pool": len(pool),
              "style_counts": {s: int((pool.styles == s).sum()) for s, _ in VARIANT_STYLES}}
    return backbone, report


def backbone_from_checkpoint(opts: IdentityTrainOptions) -> tuple[IRSEBackbone, int]:
    """The backbone of the run's ``checkpoint.pt`` (written atomically, so readable while the run
    goes on) and its step: for evaluating a run in progress."""
    if opts.checkpoint_dir is None:
        raise InputError("the options name no checkpoint folder")
    path = Path(opts.checkpoint_dir) / CHECKPOINT
    state = torch_load_safe(path)
    if not isinstance(state, dict) or state.get("signature") != opts.signature():
        raise InputError(f"{path} was made by a different training run (settings differ)")
    model = IdentityModel(opts.config(), opts.identities, opts.scale, opts.margin)
    model.load_state_dict(state["model"])
    return model.backbone.eval().requires_grad_(False), int(state["step"])


# ---------------------------------------------------------------------------------- evaluation
def roc_auc(positive: Sequence[float] | np.ndarray, negative: Sequence[float] | np.ndarray) -> float:
    """ROC AUC of scores (higher = positive) by the Mann–Whitney U statistic; ties count one half.

    ``nan`` when either side is empty.
    """
    pos, neg = np.asarray(positive, dtype=np.float64).ravel(), np.asarray(negative, dtype=np.float64).ravel()
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    scores = np.concatenate([pos, neg])
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mean_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct value
    rank_sum = mean_rank[inverse[: pos.size]].sum()
    return float((rank_sum - pos.size * (pos.size + 1) / 2.0) / (pos.size * neg.size))


def tar_at_far(positive: np.ndarray, negative: np.ndarray, far: float = 0.01) -> tuple[float, float]:
    """``(TAR, threshold)``: the share of positives above the threshold that at most ``far`` of the
    negatives exceed."""
    neg = np.sort(np.asarray(negative, dtype=np.float64))
    if neg.size == 0 or np.asarray(positive).size == 0:
        return float("nan"), float("nan")
    allowed = math.floor(far * neg.size)  # negatives that may lie above the threshold
    threshold = float(neg[neg.size - 1 - allowed])
    return float((np.asarray(positive) > threshold).mean()), threshold


@torch.no_grad()
def embed_images(net: IdentityNet, images: np.ndarray, batch: int = 100) -> np.ndarray:
    """``(N, S, S, 3)`` uint8 → ``(N, E)`` unit embeddings."""
    out = [net.embed(to_tensor_images(images[i:i + batch])).cpu().numpy() for i in range(0, len(images), batch)]
    return np.concatenate(out).astype(np.float64)


def pair_scores(embeddings: np.ndarray, labels: np.ndarray, styles: np.ndarray) -> dict[str, np.ndarray]:
    """Cosine scores of all pairs ``i < j``, split by same / different identity and style relation."""
    emb = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    sims = emb @ emb.T
    i, j = np.triu_indices(len(labels), k=1)
    s, same = sims[i, j], labels[i] == labels[j]
    cross = styles[i] != styles[j]
    photo = (styles[i] == "photo") & (styles[j] == "photo")
    return {"same": s[same], "diff": s[~same], "same_cross": s[same & cross], "diff_cross": s[~same & cross],
            "same_photo": s[same & photo], "diff_photo": s[~same & photo]}


def identity_metrics(scores: dict[str, np.ndarray]) -> dict[str, Any]:
    """AUCs, mean cosines and TAR at FAR 1 % of :func:`pair_scores`' output."""
    tar, threshold = tar_at_far(scores["same"], scores["diff"], 0.01)
    return {"auc": roc_auc(scores["same"], scores["diff"]),
            "auc_cross_style": roc_auc(scores["same_cross"], scores["diff_cross"]),
            "auc_photo": roc_auc(scores["same_photo"], scores["diff_photo"]),
            "mean_same": float(scores["same"].mean()) if scores["same"].size else float("nan"),
            "mean_diff": float(scores["diff"].mean()) if scores["diff"].size else float("nan"),
            "tar_at_far_1pct": tar, "threshold_far_1pct": threshold,
            "pairs": {k: int(v.size) for k, v in scores.items()}}


def evaluate_identity(net: IdentityNet, n_identities: int = 200, variants: int = 4, seed: int = 0, size: int = 128,
                      progress: ProgressCallback = _ignore) -> dict[str, Any]:
    """Verification figures on held-out (test split) identities (module docstring)."""
    if n_identities < 2 or variants < 2:
        raise InputError(f"need at least 2 identities and 2 variants, got {n_identities} × {variants}")
    pool = IdentityPool.build("test", n_identities, variants, size, seed, progress=progress)
    embeddings = embed_images(net, pool.images)
    progress(ProgressEvent("evaluate", len(pool), len(pool)))
    figures = identity_metrics(pair_scores(embeddings, pool.labels, pool.styles))
    return {"metric": "verification_auc", "split": "test", "size": size, "identities": n_identities,
            "variants": variants, "seed": seed, **figures}
