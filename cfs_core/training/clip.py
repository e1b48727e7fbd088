"""The demo pack's small CLIP: contrastive training on the synthetic face world, and its evaluation.

Model: :data:`DEMO_CLIP_CONFIG`, an open_clip ViT (64 px, patch 16, 3 layers) with a 2-layer text
transformer and 128-d embeddings, built by :meth:`~cfs_core.clip.ClipModel.from_open_clip` in
``"normalized"`` generated-image mode, so a generator image in [-1, 1] reaches the vision tower
exactly as a training image does (:func:`~cfs_core.nets.clip_preprocess.normalized_resize`).

Captions: :func:`full_caption` names every visible attribute in one deterministic phrase with the
wording of :func:`~cfs_core.world.captions` ("a photo of a smiling bald man with round glasses, a
brown beard, blue eyes and bushy eyebrows, wearing a red cap and a blue shirt on a grey
background"); sketches name no colour. A *counterfactual* caption is the full caption of the same
face with one visible attribute set to another value (:func:`counterfactual_captions`).

Training (:func:`train_clip`, on :func:`~cfs_core.training.loops.run_loop`: seeded, resumable,
checkpointed, cosine learning rate after a warm-up): a :class:`~cfs_core.training.data.Pool` of
world renders (photo, clipart and sketch, equal weights). The texts of step ``k`` are a pure
function of ``(seed, k)`` (:class:`ClipBatchSource`): per image one caption, the full one with
probability ``full_prob``, otherwise one of :func:`~cfs_core.world.captions`' five phrasings, plus
``negatives`` counterfactual captions as hard negatives (each changing another attribute, chosen
with the ``focus`` weights, so a fine-tuning run can push the attributes that lag; with ``matched``
in the phrasing of the image's own caption, so that they differ from it only in the changed words). Loss: the symmetric CLIP loss with the model's
learnable temperature (``exp`` clamped at 100) in which image→text runs over the ``B`` true
captions and the ``B`` hard negatives, text→image over the ``B`` images; identical texts in a
batch count as positives of each other's images (:func:`contrastive_loss`).

Evaluation (:func:`evaluate_clip`, held-out ``test`` faces, each style separately): zero-shot
attribute accuracy by ranking the counterfactual captions of every visible attribute against the
image, and text→image retrieval (top-1, top-5) with the full captions.
"""

from __future__ import annotations

import copy
import functools
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.clip import ClipModel
from cfs_core.errors import InputError
from cfs_core.methods import ProgressCallback, ProgressEvent
from cfs_core.nets.clip_preprocess import normalized_resize
from cfs_core.nets.protocols import mean_unit_image_embedding, unit
from cfs_core.training.data import (
    ATTRIBUTE_CHOICES,
    ATTRIBUTES,
    DataSpec,
    Pool,
    face_seed,
    make_batch,
    render_item,
    step_indices,
)
from cfs_core.training.clip_captions import (
    _hard_negative,
    counterfactual_captions,
    full_caption,
    hard_negative,
    parse_focus,
    phrasing,
    visible_attributes,
)
from cfs_core.training.loops import run_loop
from cfs_core.world import FaceParams, captions, sample_params

__all__ = ["DEMO_CLIP_CONFIG", "CLIP_STYLES", "ClipBatch", "ClipBatchSource", "ClipTrainOptions", "build_clip",
           "contrastive_loss", "demo_clip_config", "group_loss", "encode_renders", "warm_start",
           "counterfactual_captions", "evaluate_clip", "full_caption", "hard_negative", "parse_focus", "train_clip",
           "visible_attributes"]

CLIP_STYLES: tuple[str, ...] = ("photo", "clipart", "sketch")
DEMO_CLIP_CONFIG: dict[str, Any] = {
    "embed_dim": 128,
    "vision_cfg": {"image_size": 64, "layers": 3, "width": 128, "patch_size": 16, "head_width": 32, "mlp_ratio": 4.0},
    # tokens with start/end: full and counterfactual captions at most 45 (every attribute
    # combination, the wordiest colours); captions()' phrasings reach 48 ("a flat clipart
    # illustration of ..." with every optional part), so 56 leaves a margin and never truncates
    "text_cfg": {"context_length": 56, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 2},
}
MAX_LOGIT_SCALE = 100.0


def demo_clip_config(patch: int = 16, vision_layers: int = 3, image_size: int = 64) -> dict[str, Any]:
    """:data:`DEMO_CLIP_CONFIG` with another vision patch size, depth and input side (a fresh copy)."""
    if image_size < 8 or patch < 1 or image_size % patch or vision_layers < 1:
        raise InputError(f"the patch size must divide the image side and layers be >= 1, got image side "
                         f"{image_size}, patch {patch}, layers {vision_layers}")
    config = copy.deepcopy(DEMO_CLIP_CONFIG)
    config["vision_cfg"].update(patch_size=patch, layers=vision_layers, image_size=image_size)
    return config
_NO_DECAY = ("logit_scale", "positional_embedding", "class_embedding", "token_embedding")


def _ignore(event: ProgressEvent) -> None:
    """Default progress sink."""


# ---------------------------------------------------------------------------------- batches
@dataclass
class ClipBatch:
    """Images and texts of one step: ``tokens`` holds the ``B`` true captions, then the hard
    negatives (``K`` per image, image by image); ``positives[i, j]``: text ``j`` is the caption of
    image ``i`` (same text)."""

    images: torch.Tensor  # [B, 3, S, S] float32 in [-1, 1]
    tokens: torch.Tensor  # [T, context_length] int64, T = B (1 + K)
    texts: list[str]
    positives: torch.Tensor  # [B, T] bool
    styles: list[str]
    # ranking groups (ClipBatchSource ``groups``): image ``group_images[g]`` against the texts ``j``
    # with ``group_of[j] == g`` (its counterfactual full captions for one attribute); the true one
    # is text ``group_truth[g]``
    group_images: torch.Tensor | None = None  # [G] int64
    group_tokens: torch.Tensor | None = None  # [U, context_length] int64
    group_of: torch.Tensor | None = None  # [U] int64
    group_truth: torch.Tensor | None = None  # [G] int64

    def __len__(self) -> int:
        return int(self.images.shape[0])


class ClipBatchSource:
    """Batches by step from a pool: images by :func:`~cfs_core.training.data.step_indices`, texts
    a pure function of ``(seed, step)`` (the face parameters are recomputed from the pool's spec).

    ``negatives``: hard negatives per image (``True`` = 1, ``False`` = 0), each changing another
    attribute while the face has one left; ``focus``: :func:`hard_negative`'s attribute weights;
    ``matched``: a negative is the counterfactual of the image's own caption in its phrasing (a
    short caption gets a short negative), not of its full caption. Unmatched, a phrased positive
    and a full-caption negative differ in their wording too, and a caption that names no eye colour
    cannot teach eye colour: the text side learns the format, not the attribute.

    ``groups``: that many images of each step also rank the full captions with one of their
    attributes (``focus``-weighted) set to each of its values (:func:`group_loss`); their draws are
    separate, so the other texts do not depend on it."""

    def __init__(self, pool: Pool, batch: int, seed: int, tokenizer: Callable[[list[str]], torch.Tensor],
                 full_prob: float = 0.3, negatives: int = 1, focus: Mapping[str, float] | None = None,
                 matched: bool = False, groups: int = 0) -> None:
        if batch < 1:
            raise InputError(f"batch size must be at least 1, got {batch}")
        if not 0.0 <= full_prob <= 1.0:
            raise InputError(f"full_prob must be in [0, 1], got {full_prob}")
        if int(negatives) < 0:
            raise InputError(f"negatives must be >= 0, got {negatives}")
        self.pool, self.batch_size, self.seed, self.tokenizer = pool, batch, seed, tokenizer
        self.full_prob, self.negatives, self.focus = full_prob, int(negatives), dict(focus) if focus else None
        self.matched, self.groups = matched, max(0, min(int(groups), batch))
        self._params: dict[int, FaceParams] = {}

    def params(self, index: int) -> FaceParams:
        """The face parameters of pool item ``index`` (cached)."""
        if index not in self._params:
            spec = self.pool.spec
            self._params[index] = sample_params(face_seed(spec.split, index, spec.seed))
        return self._params[index]

    def texts(self, step: int, indices: Sequence[int], styles: Sequence[str]) -> tuple[list[str], list[str]]:
        """(one caption per image, the hard negatives image by image) of step ``step``."""
        rng = random.Random(f"cfs-clip-texts/{self.seed}/{step}")  # str seeds are stable across runs
        true, negative = [], []
        for index, style in zip(indices, styles):
            params = self.params(int(index))
            phrase: Callable[[FaceParams], str] | None = None
            if rng.random() < self.full_prob:
                true.append(full_caption(params, style))
            else:
                seed = rng.randrange(2**32)
                pick = rng.randrange(5)  # draws as rng.choice over the five captions
                true.append(captions(params, 5, style, seed=seed)[pick])
                if self.matched:
                    phrase = functools.partial(phrasing, style=style, seed=seed, pick=pick)
            changed: list[str] = []
            for _ in range(self.negatives):
                text, name = _hard_negative(params, style, rng, self.focus, changed, phrase)
                negative.append(text)
                changed.append(name)
        return true, negative

    def __call__(self, step: int) -> ClipBatch:
        idx = step_indices(step, self.batch_size, self.seed, len(self.pool))
        b = self.pool.batch(idx)
        true, negative = self.texts(step, idx.tolist(), b.styles)
        texts = true + negative
        positives = torch.tensor([[t == caption for t in texts] for caption in true], dtype=torch.bool)
        batch = ClipBatch(b.images, self.tokenizer(texts), texts, positives, b.styles)
        if self.groups:
            self._add_groups(batch, step, idx.tolist())
        return batch

    def _add_groups(self, batch: ClipBatch, step: int, indices: Sequence[int]) -> None:
        rng = random.Random(f"cfs-clip-groups/{self.seed}/{step}")
        images, texts, owner, truth = [], [], [], []
        for i in range(self.groups):
            params, style = self.params(int(indices[i])), batch.styles[i]
            options = []
            for name in visible_attributes(params, style):
                distinct = list(dict.fromkeys(counterfactual_captions(params, style, name).values()))
                if len(distinct) > 1:
                    options.append((name, distinct))
            if not options:
                continue
            weights = [float((self.focus or {}).get(name, 1.0)) for name, _ in options]
            _, distinct = rng.choices(options, weights)[0]
            truth.append(len(texts) + distinct.index(full_caption(params, style)))
            images.append(i)
            owner += [len(images) - 1] * len(distinct)
            texts += distinct
        if images:
            batch.group_images, batch.group_tokens = torch.tensor(images), self.tokenizer(texts)
            batch.group_of, batch.group_truth = torch.tensor(owner), torch.tensor(truth)


# ---------------------------------------------------------------------------------- loss
def contrastive_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
                     positives: torch.Tensor) -> torch.Tensor:
    """Symmetric CLIP loss of unit embeddings ``[B, D]`` and ``[T, D]`` (``T >= B``; texts beyond
    ``B`` are extra negatives for image→text only); ``logit_scale`` is the log temperature
    (``exp`` clamped at 100); ``positives [B, T]`` spreads a target over identical texts."""
    n = image_emb.shape[0]
    logits = logit_scale.exp().clamp(max=MAX_LOGIT_SCALE) * image_emb @ text_emb.T
    pos = positives.to(device=logits.device, dtype=logits.dtype)
    i2t = -(pos / pos.sum(1, keepdim=True) * F.log_softmax(logits, dim=1)).sum(1).mean()
    pos_t = pos[:, :n].T  # text j of the true captions, image i: same text
    t2i = -(pos_t / pos_t.sum(1, keepdim=True) * F.log_softmax(logits[:, :n].T, dim=1)).sum(1).mean()
    return (i2t + t2i) / 2


def group_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
               group_of: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``G`` ranking groups: unit image embeddings ``[G, D]``, the unit
    embeddings ``[U, D]`` of all groups' texts, ``group_of [U]`` (each text's group) and ``truth
    [G]`` (the true text of each group): group ``g`` is a softmax over its own texts only."""
    logits = logit_scale.exp().clamp(max=MAX_LOGIT_SCALE) * image_emb @ text_emb.T  # [G, U]
    own = group_of.to(logits.device)[None, :] == torch.arange(len(image_emb), device=logits.device)[:, None]
    return F.cross_entropy(logits.masked_fill(~own, float("-inf")), truth.to(logits.device))


def _clip_loss(clip: ClipModel, group_weight: float = 0.0) -> Callable[[nn.Module, ClipBatch], torch.Tensor]:
    def loss(model: nn.Module, batch: ClipBatch) -> torch.Tensor:
        device = clip.device
        pixels = normalized_resize(batch.images.to(device), clip.image_size, clip.mean, clip.std)
        image_emb = F.normalize(model.encode_image(pixels), dim=-1)
        text_emb = F.normalize(model.encode_text(batch.tokens.to(device)), dim=-1)
        total = contrastive_loss(image_emb, text_emb, model.logit_scale, batch.positives)
        if group_weight and batch.group_tokens is not None:
            assert batch.group_images is not None and batch.group_of is not None and batch.group_truth is not None
            group_emb = F.normalize(model.encode_text(batch.group_tokens.to(device)), dim=-1)
            total = total + group_weight * group_loss(image_emb[batch.group_images.to(device)], group_emb,
                                                      model.logit_scale, batch.group_of, batch.group_truth)
        return total

    return loss


# ---------------------------------------------------------------------------------- training
@dataclass(frozen=True)
class ClipTrainOptions:
    """Settings of the demo CLIP's training (``device``, paths and checkpoint cadence are not
    part of the run's signature)."""

    steps: int = 1500
    batch: int = 64
    size: int = 64
    seed: int = 0
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 100
    styles: tuple[str, ...] = CLIP_STYLES
    weights: tuple[float, ...] = (1.0, 1.0, 1.0)
    pool: int = 6000
    full_prob: float = 0.3
    negatives: int = 1  # hard negatives per image
    matched: bool = False  # negatives in the positive caption's own phrasing (ClipBatchSource)
    groups: int = 0  # images per step that also rank one attribute's counterfactual captions
    group_weight: float = 1.0  # weight of that ranking loss (group_loss)
    # attribute weights of the hard negatives' choice, e.g. (("eye_color", 4.0),); () = uniform
    focus: tuple[tuple[str, float], ...] = ()
    config: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEMO_CLIP_CONFIG))
    cache_dir: str | None = None
    workers: int = 1
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100
    resume: bool = True
    device: str = "cpu"
    # a demo CLIP file to start from (fine-tuning); its vision patch may be a divisor of the new one
    # (:func:`warm_start`), e.g. a 64 px / patch 8 CLIP grown into a 128 px / patch 16 one
    init: str | None = None

    def __post_init__(self) -> None:
        for name, weight in self.focus:
            if name not in ATTRIBUTE_CHOICES or not 0 < weight < float("inf"):
                raise InputError(f"focus {name}={weight}: expected an attribute of {', '.join(ATTRIBUTES)} "
                                 "and a positive weight")
        if self.negatives < 0 or self.groups < 0 or self.group_weight < 0:
            raise InputError(f"negatives, groups and group_weight must be >= 0, got {self.negatives}, {self.groups}, "
                             f"{self.group_weight}")
        if self.size != self.config["vision_cfg"]["image_size"]:
            raise InputError(f"the renders' side ({self.size}) must be the CLIP's image side "
                             f"({self.config['vision_cfg']['image_size']})")

    def spec(self) -> DataSpec:
        return DataSpec(size=self.size, styles=self.styles, weights=self.weights, split="train", seed=self.seed)

    def signature(self) -> str:
        d = asdict(self)
        for k in ("cache_dir", "workers", "checkpoint_dir", "checkpoint_every", "resume", "device"):
            d.pop(k)
        return json.dumps({"component": "clip", **d}, sort_keys=True)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices only (not on gains, biases, embeddings or the temperature)."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        (rest if p.ndim < 2 or name.split(".")[-1] in _NO_DECAY else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def build_clip(config: dict[str, Any] | None = None, seed: int = 0) -> ClipModel:
    """A randomly initialised (seeded) demo CLIP in ``"normalized"`` generated-image mode."""
    torch.manual_seed(seed)
    return ClipModel.from_open_clip(copy.deepcopy(config or DEMO_CLIP_CONFIG), None, generated_mode="normalized")


def train_clip(opts: ClipTrainOptions, progress: ProgressCallback = _ignore) -> tuple[ClipModel, dict[str, Any]]:
    """Train the demo CLIP (module docstring); returns it (eval mode, frozen) and a report."""
    if opts.steps < 0 or opts.pool < 1:
        raise InputError(f"need steps >= 0 and pool >= 1, got steps={opts.steps}, pool={opts.pool}")
    clip = build_clip(opts.config, opts.seed)
    if opts.init:
        warm_start(clip.model, opts.init)
    clip = clip.to(opts.device)
    model = clip.model.requires_grad_(True)
    optimizer = torch.optim.AdamW(_param_groups(model, opts.weight_decay), lr=opts.lr, betas=(0.9, 0.98), eps=1e-6)
    pool = Pool.build(opts.spec(), opts.pool, opts.cache_dir, opts.workers,
                      lambda done, total: progress(ProgressEvent("render", done, total)))
    source = ClipBatchSource(pool, opts.batch, opts.seed, clip.tokenizer, opts.full_prob, opts.negatives,
                             dict(opts.focus) or None, opts.matched, opts.groups)
    loss = _clip_loss(clip, opts.group_weight if opts.groups else 0.0)
    result = run_loop(model, optimizer, source, loss, opts.steps, opts.lr,  # type: ignore[arg-type]
                      opts.signature(), opts.checkpoint_dir, opts.checkpoint_every, opts.resume,
                      warmup=min(opts.warmup, opts.steps // 10), progress=progress)
    model.eval().requires_grad_(False)
    report = {"component": "clip", "options": asdict(opts), "steps": result.step,
              "images_seen": result.step * opts.batch, "final_loss": result.final_loss,
              "wall_s": round(result.wall_s, 2), "resumed_from": result.resumed_from,
              "logit_scale": clip.logit_scale}
    return clip, report


def warm_start(model: nn.Module, path: str) -> None:
    """Load the weights of the demo CLIP file ``path`` into ``model`` (same architecture). One
    difference is allowed: a vision patch ``k`` times the file's (``k`` x the image side, same patch
    grid). The file's patch kernel is then spread over ``k`` x ``k`` pixels (weights / k²), so the
    start computes on an image ``k`` times larger exactly what the file computes on its
    box-downsampled (``k`` x ``k`` average) version — fine-tuning begins at the file's accuracy and
    can learn the finer detail."""
    from cfs_core.clip import ClipModel

    start = ClipModel.from_file(path).model.state_dict()
    own = model.state_dict()
    if set(start) != set(own):
        raise InputError(f"--init {path}: not the same CLIP architecture (different layers)")
    for name, tensor in start.items():
        want = own[name].shape
        if tensor.shape == want:
            continue
        k = want[-1] // tensor.shape[-1] if tensor.ndim == 4 and tensor.shape[-1] else 0
        if not (name.endswith("conv1.weight") and k > 1 and want == (*tensor.shape[:2], tensor.shape[2] * k,
                                                                     tensor.shape[3] * k)):
            raise InputError(f"--init {path}: {name} has shape {tuple(tensor.shape)}, this CLIP needs {tuple(want)} "
                             "(only the vision patch may grow, by a whole factor)")
        start[name] = tensor.repeat_interleave(k, 2).repeat_interleave(k, 3) / (k * k)
    model.load_state_dict(start)


def clipart_base_embedding(clip: ClipModel, n: int = 1000, seed: int = 0, size: int = 128) -> torch.Tensor:
    """ClipFaceShop's base-clipart embedding for this CLIP on the world: the mean unit image
    embedding of ``n`` world cliparts (``val``-split faces, every attribute sampled, as the training pools render them), the
    reference's ``u_fc`` procedure (the mean over 1666 plain clipart heads) with world cliparts in
    place of the reference's set. ``[D]`` float32, not re-normalised; a model set ships it as its
    ``clip_base`` value (:class:`~cfs_registry.modelsets.ValueSpec`)."""
    if n < 1:
        raise InputError(f"need at least one clipart, got n={n}")
    spec = DataSpec(size=size, styles=("clipart",), split="val", seed=seed)
    return mean_unit_image_embedding(clip, [render_item(spec, i).image for i in range(n)])


# ---------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def encode_renders(clip: ClipModel, images: torch.Tensor) -> torch.Tensor:
    """Renders ``[B, 3, S, S]`` in [-1, 1] → unit embeddings by the normalized path (what
    :meth:`~cfs_core.clip.ClipModel.encode_images` computes from the uint8 renders; no cache)."""
    pixels = normalized_resize(images.to(clip.device, torch.float32), clip.image_size, clip.mean, clip.std)
    return unit(clip.model.encode_image(pixels.to(clip.dtype)).float())


@torch.no_grad()
def _encode_texts(clip: ClipModel, texts: Sequence[str], batch: int = 512) -> torch.Tensor:
    """Texts → unit embeddings without filling the adapter's cache (as ``encode_text``)."""
    rows = [unit(clip.model.encode_text(clip.tokenizer(list(texts[s:s + batch])).to(clip.device)).float())
            for s in range(0, len(texts), batch)]
    return torch.cat(rows) if rows else torch.zeros(0, clip.embed_dim)


def _evaluate_style(clip: ClipModel, style: str, n: int, seed: int, size: int, batch: int) -> dict[str, Any]:
    spec = DataSpec(size=size, styles=(style,), split="test", seed=seed)
    image_emb = torch.cat([encode_renders(clip, make_batch(spec, range(s, min(n, s + batch))).images)
                           for s in range(0, n, batch)])
    faces = [sample_params(face_seed("test", i, seed)) for i in range(n)]
    full = [full_caption(p, style) for p in faces]
    questions: list[tuple[int, str, list[str], int]] = []  # image, attribute, distinct captions, true one
    for i, p in enumerate(faces):
        for name in visible_attributes(p, style):
            distinct = list(dict.fromkeys(counterfactual_captions(p, style, name).values()))
            if len(distinct) > 1:  # e.g. the hair colour of a bald face shows only in a sketch's beard
                questions.append((i, name, distinct, distinct.index(full[i])))
    vocab = list(dict.fromkeys(full + [t for q in questions for t in q[2]]))
    row = {t: k for k, t in enumerate(vocab)}
    text_emb = _encode_texts(clip, vocab).to(image_emb.device)
    hits: dict[str, list[float]] = {}
    chance: dict[str, list[float]] = {}
    for i, name, distinct, truth in questions:
        scores = text_emb[[row[t] for t in distinct]] @ image_emb[i]
        hits.setdefault(name, []).append(float(int(scores.argmax()) == truth))
        chance.setdefault(name, []).append(1.0 / len(distinct))
    accuracy = {a: float(np.mean(hits[a])) for a in ATTRIBUTES if a in hits}
    # text→image: a hit when a retrieved image has exactly the query's caption (twins are equal)
    sims = text_emb[[row[t] for t in full]] @ image_emb.T
    same = torch.tensor([[a == b for b in full] for a in full], dtype=torch.bool, device=sims.device)
    top = sims.topk(min(5, n), dim=1).indices
    found = same.gather(1, top)
    return {"attribute_accuracy": accuracy,
            "mean_attribute_accuracy": float(np.mean(list(accuracy.values()))) if accuracy else float("nan"),
            "chance_attribute_accuracy": {a: float(np.mean(chance[a])) for a in accuracy},
            "questions": {a: len(hits[a]) for a in accuracy},
            "retrieval_top1": float(found[:, :1].any(1).double().mean()),
            "retrieval_top5": float(found.any(1).double().mean())}


def evaluate_clip(clip: ClipModel, n: int = 300, seed: int = 0, size: int | None = None, batch: int = 100,
                  styles: Sequence[str] = CLIP_STYLES, progress: ProgressCallback = _ignore) -> dict[str, Any]:
    """Zero-shot attribute accuracy and text→image retrieval on ``n`` held-out (``test`` split)
    faces rendered in each of ``styles`` at ``size`` (default: the CLIP's image side; module
    docstring); JSON-ready.

    Attribute accuracy: for each visible attribute of each image, the full captions with the
    attribute set to each of its values (distinct texts only) are ranked by similarity to the
    image; correct when the true caption ranks first. Retrieval: each face's full caption ranks
    the ``n`` images of its style; top-k counts a hit when one of the first k has that caption.
    """
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    size = size or clip.image_size[0]
    was_training = clip.model.training
    clip.model.eval()
    per_style: dict[str, dict[str, Any]] = {}
    try:
        for k, style in enumerate(styles):
            per_style[style] = _evaluate_style(clip, style, n, seed, size, batch)
            progress(ProgressEvent("evaluate", k + 1, len(styles), message=style))
    finally:
        clip.model.train(was_training)
    means = [v["mean_attribute_accuracy"] for v in per_style.values()]
    return {"metric": "zero-shot attribute accuracy, text→image retrieval", "split": "test", "n": n, "size": size,
            "seed": seed, "per_style": per_style, "mean_attribute_accuracy": float(np.mean(means)),
            "mean_retrieval_top1": float(np.mean([v["retrieval_top1"] for v in per_style.values()])),
            "mean_retrieval_top5": float(np.mean([v["retrieval_top5"] for v in per_style.values()]))}
