"""World data for training: deterministic items, batches, splits, attribute targets and a cache.

Every item is a pure function of ``(spec, index)``: the face parameters come from
:func:`face_seed` (the split, the data seed and the index), the style from a per-item generator
(``spec.styles`` weighted by ``spec.weights``). The three splits draw their faces from disjoint
seeds **by construction** (the split is part of the seed's high bits), so held-out evaluation
never sees a training face.

Attribute encoding (:data:`ATTRIBUTES`): one classification head per categorical parameter of
the world schema's ``attribute`` group, in schema order; the target is the index of the value in
the parameter's ``choices``. A target is :data:`IGNORE` (``-100``, PyTorch's ignore index) where
the attribute cannot be seen in the image:

* ``hair`` when a hat hides the hair style (:attr:`FaceParams.hair_under_hat_hidden`);
* ``hair_color`` when no hair is visible (bald or hidden) and there is no facial hair;
* ``eye_color`` behind sunglasses; ``hat_color`` without a hat;
* every colour attribute (:data:`COLOR_ATTRIBUTES`) on a sketch (sketches have no colour).

Images are rendered at ``max(size, 64)`` (the world's minimum) and box-downsampled to ``size``
(labels: nearest). A training *pool* of ``n`` items can be rendered once, kept in memory and
cached on disk as ``.npz`` shards (atomic, resumable: existing shards are skipped).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cfs_core.errors import InputError
from cfs_core.fileio import atomic_path
from cfs_core.world import (
    LABEL_NAMES,
    SPECS,
    STYLES,
    FaceParams,
    build_scene,
    captions,
    render_scene,
    sample_params,
)
from cfs_core.world.raster import scene_labels

SPLITS: tuple[str, ...] = ("train", "val", "test")
IGNORE = -100
N_LABELS = len(LABEL_NAMES)
ATTRIBUTES: tuple[str, ...] = tuple(n for n, s in SPECS.items() if s.group == "attribute" and s.choices)
ATTRIBUTE_CHOICES: dict[str, tuple[str, ...]] = {n: SPECS[n].choices for n in ATTRIBUTES}
COLOR_ATTRIBUTES: frozenset[str] = frozenset({"hair_color", "eye_color", "hat_color", "cloth_color", "background"})
IDENTITY_NAMES: tuple[str, ...] = tuple(n for n, s in SPECS.items() if s.group == "identity")
SHARD = 256
Progress = Callable[[int, int], None]


def face_seed(split: str, index: int, seed: int = 0) -> int:
    """The face seed of item ``index`` of ``split``: disjoint across splits and data seeds."""
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    if seed < 0 or not 0 <= index < 2**32:
        raise InputError(f"seed must be >= 0 and index in [0, 2^32), got seed={seed}, index={index}")
    return ((seed * len(SPLITS) + SPLITS.index(split)) << 32) | index


def attribute_targets(params: FaceParams, style: str = "photo") -> np.ndarray:
    """``[len(ATTRIBUTES)]`` int64 class indices of a face's attributes (``IGNORE`` where unseen)."""
    visible_hair = params.hair != "bald" and not params.hair_under_hat_hidden
    hidden = {
        "hair": params.hair_under_hat_hidden,
        "hair_color": not visible_hair and params.facial_hair == "none",
        "eye_color": params.glasses == "sunglasses",
        "hat_color": params.hat == "none",
    }
    out = np.empty(len(ATTRIBUTES), dtype=np.int64)
    for i, name in enumerate(ATTRIBUTES):
        unseen = hidden.get(name, False) or (style == "sketch" and name in COLOR_ATTRIBUTES)
        out[i] = IGNORE if unseen else ATTRIBUTE_CHOICES[name].index(getattr(params, name))
    return out


def decode_attributes(indices: Sequence[int]) -> dict[str, str | None]:
    """Class indices (one per attribute) back to values (``None`` for ``IGNORE``)."""
    return {n: (None if int(i) == IGNORE else ATTRIBUTE_CHOICES[n][int(i)]) for n, i in zip(ATTRIBUTES, indices)}


@dataclass(frozen=True)
class DataSpec:
    """What a stream of world items is: size, style mix, split and data seed.

    ``weights`` (one per style, default uniform) is the probability of each style per item.
    """

    size: int = 64
    styles: tuple[str, ...] = ("photo",)
    weights: tuple[float, ...] = ()
    split: str = "train"
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or not 16 <= self.size <= 1024:
            raise InputError(f"size must be an integer from 16 to 1024, got {self.size!r}")
        if not self.styles or any(s not in STYLES for s in self.styles):
            raise InputError(f"styles must be some of {', '.join(STYLES)}, got {', '.join(self.styles) or 'none'}")
        if self.weights and (len(self.weights) != len(self.styles) or min(self.weights) < 0 or sum(self.weights) <= 0):
            raise InputError(f"need one non-negative weight per style ({len(self.styles)}), got {list(self.weights)}")
        if self.split not in SPLITS:
            raise InputError(f"unknown split {self.split!r}; allowed: {', '.join(SPLITS)}")
        if self.seed < 0:
            raise InputError(f"data seed must be >= 0, got {self.seed}")

    def with_split(self, split: str) -> DataSpec:
        """The same spec on another split."""
        return DataSpec(self.size, self.styles, self.weights, split, self.seed)

    def key(self) -> str:
        """A short stable hash of the spec (names cache folders)."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def style_of(self, index: int) -> str:
        """The style of item ``index`` (deterministic)."""
        if len(self.styles) == 1:
            return self.styles[0]
        rng = np.random.default_rng([self.seed, SPLITS.index(self.split), index, 7])
        p = np.asarray(self.weights or [1.0] * len(self.styles), dtype=np.float64)
        return self.styles[int(rng.choice(len(self.styles), p=p / p.sum()))]


@dataclass(frozen=True)
class Item:
    """One rendered face with its truth."""

    image: np.ndarray  # (S, S, 3) uint8
    labels: np.ndarray  # (S, S) uint8 class ids (LABEL_NAMES order)
    targets: np.ndarray  # (len(ATTRIBUTES),) int64, IGNORE where unseen
    identity: np.ndarray  # (len(IDENTITY_NAMES),) float32
    caption: str
    style: str
    params: FaceParams


def render_item(spec: DataSpec, index: int) -> Item:
    """Render item ``index`` of ``spec`` (same arguments, identical output)."""
    seed = face_seed(spec.split, index, spec.seed)
    params = sample_params(seed)
    style = spec.style_of(index)
    scene = build_scene(params)
    size = max(spec.size, 64)
    image = render_scene(scene, style, size, seed)
    labels = scene_labels(scene, size)
    if size != spec.size:
        image = np.asarray(Image.fromarray(image).resize((spec.size, spec.size), Image.Resampling.BOX))
        labels = np.asarray(Image.fromarray(labels).resize((spec.size, spec.size), Image.Resampling.NEAREST))
    identity = np.array([params.to_dict()[n] for n in IDENTITY_NAMES], dtype=np.float32)
    caption = captions(params, 1, style, seed)[0]
    return Item(image, labels, attribute_targets(params, style), identity, caption, style, params)


@dataclass
class Batch:
    """A batch of items as tensors; images in [-1, 1]."""

    images: torch.Tensor  # [B, 3, S, S] float32 in [-1, 1]
    labels: torch.Tensor  # [B, S, S] int64
    targets: torch.Tensor  # [B, len(ATTRIBUTES)] int64
    identity: torch.Tensor  # [B, len(IDENTITY_NAMES)] float32
    captions: list[str]
    styles: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])


def to_tensor_images(images: np.ndarray) -> torch.Tensor:
    """``(B, S, S, 3)`` uint8 → ``[B, 3, S, S]`` float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def collate(items: Sequence[Item]) -> Batch:
    """Stack items into a :class:`Batch`."""
    return Batch(
        images=to_tensor_images(np.stack([it.image for it in items])),
        labels=torch.from_numpy(np.stack([it.labels for it in items]).astype(np.int64)),
        targets=torch.from_numpy(np.stack([it.targets for it in items])),
        identity=torch.from_numpy(np.stack([it.identity for it in items])),
        captions=[it.caption for it in items],
        styles=[it.style for it in items],
    )


def make_batch(spec: DataSpec, indices: Sequence[int]) -> Batch:
    """Render the items ``indices`` of ``spec`` as a batch."""
    return collate([render_item(spec, int(i)) for i in indices])


def step_indices(step: int, batch: int, seed: int, pool: int | None) -> np.ndarray:
    """The item indices of training step ``step``: a fresh stream (``pool=None``) or epochs over a
    pool of ``pool`` items, each epoch a permutation seeded by ``(seed, epoch)``."""
    start = step * batch
    if pool is None:
        return np.arange(start, start + batch)
    perms: dict[int, np.ndarray] = {}
    out = []
    for pos in range(start, start + batch):
        epoch, offset = divmod(pos, pool)
        if epoch not in perms:
            perms[epoch] = np.random.default_rng([seed, epoch, 11]).permutation(pool)
        out.append(perms[epoch][offset])
    return np.asarray(out, dtype=np.int64)


class Pool:
    """``n`` rendered items of a spec held in memory (optionally cached on disk as shards)."""

    def __init__(self, spec: DataSpec, arrays: dict[str, np.ndarray]) -> None:
        self.spec = spec
        self.arrays = arrays

    def __len__(self) -> int:
        return int(self.arrays["images"].shape[0])

    @classmethod
    def build(cls, spec: DataSpec, n: int, cache_dir: str | os.PathLike[str] | None = None, workers: int = 1,
              progress: Progress | None = None) -> Pool:
        """Render (or load from ``cache_dir``) items ``0..n-1`` of ``spec``."""
        if n < 1:
            raise InputError(f"pool size must be at least 1, got {n}")
        root = Path(cache_dir) / f"world-{spec.key()}" if cache_dir is not None else None
        if root is not None:
            root.mkdir(parents=True, exist_ok=True)
            (root / "spec.json").write_text(json.dumps(asdict(spec), indent=1) + "\n", encoding="utf-8")
        starts = list(range(0, n, SHARD))
        shards: list[dict[str, np.ndarray]] = []
        jobs = [(spec, s, min(s + SHARD, n), root) for s in starts]
        done = 0
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for shard in pool.map(_shard, *zip(*jobs)):
                    shards.append(shard)
                    done += len(shard["images"])
                    if progress:
                        progress(done, n)
        else:
            for job in jobs:
                shards.append(_shard(*job))
                done += len(shards[-1]["images"])
                if progress:
                    progress(done, n)
        arrays = {k: np.concatenate([s[k] for s in shards]) for k in shards[0]}
        return cls(spec, arrays)

    def batch(self, indices: Sequence[int]) -> Batch:
        """The items ``indices`` as a batch (identical to :func:`make_batch` on the same spec)."""
        idx = np.asarray(indices, dtype=np.int64)
        a = self.arrays
        return Batch(
            images=to_tensor_images(a["images"][idx]),
            labels=torch.from_numpy(a["labels"][idx].astype(np.int64)),
            targets=torch.from_numpy(a["targets"][idx].astype(np.int64)),
            identity=torch.from_numpy(a["identity"][idx]),
            captions=[str(c) for c in a["captions"][idx]],
            styles=[str(s) for s in a["styles"][idx]],
        )


def _shard(spec: DataSpec, start: int, stop: int, root: Path | None) -> dict[str, np.ndarray]:
    """Items ``start..stop-1`` as arrays, read from or written to ``root`` (atomically)."""
    path = root / f"shard_{start:08d}_{stop:08d}.npz" if root is not None else None
    if path is not None and path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    items = [render_item(spec, i) for i in range(start, stop)]
    arrays = {
        "images": np.stack([it.image for it in items]),
        "labels": np.stack([it.labels for it in items]),
        "targets": np.stack([it.targets for it in items]).astype(np.int16),
        "identity": np.stack([it.identity for it in items]),
        "captions": np.array([it.caption for it in items]),
        "styles": np.array([it.style for it in items]),
    }
    if path is not None:
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)
    return arrays


class BatchSource:
    """Training batches by step: from a :class:`Pool` (epochs of permutations) or rendered on the fly."""

    def __init__(self, spec: DataSpec, batch: int, seed: int = 0, pool: Pool | None = None) -> None:
        if batch < 1:
            raise InputError(f"batch size must be at least 1, got {batch}")
        self.spec, self.batch_size, self.seed, self.pool = spec, batch, seed, pool

    def __call__(self, step: int) -> Batch:
        idx = step_indices(step, self.batch_size, self.seed, len(self.pool) if self.pool is not None else None)
        return self.pool.batch(idx) if self.pool is not None else make_batch(self.spec, idx)
