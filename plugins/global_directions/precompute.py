"""Precomputation of StyleCLIP global directions: S statistics and channel relevance ``fs3``.

Spec ``styleclip_stylegan2.md`` §7.1–§7.2 (StyleCLIP ``global_directions/GetCode.py``,
``SingleChannel.py``, ``MapTS.py::GetFs``), §1.7 (StyleSpace layout), §9 item 1.

* **W samples** (§7.1): ``z`` from ``numpy.random.RandomState(seed).randn`` drawn sequentially
  (the reference draws batches of 1,000 from one ``RandomState(5)``; sequential draws give the
  same stream whatever the batch size), ``w = mapping(z)``, truncated toward
  :meth:`Generator.truncation_center` (``latent_avg``, TF's ``dlatent_avg``) with ψ; the
  reference keeps only W+ entry 0 (cutoff 8 truncates it), so one truncated ``w`` feeds every slot.
* **S statistics**: per StyleSpace layer (ToRGB included) the mean and the *population* std over
  the samples, accumulated in float64 with Chan's batch merge, stored as float32.
* **Channel relevance** (§7.2): the first ``n_images`` W samples are the images. For every
  included channel ``c`` of layer ``l``: ``s_l[c] = mean_l[c] ± sigma·std_l[c]`` for all images,
  render with constant noise, encode with CLIP, normalise each feature, ``d = f(+) − f(−)``,
  normalise ``d``, average over images, normalise → one unit row. Channels whose edit leaves
  every image unchanged get a zero row (the reference would divide by zero).
* **Included layers**: the non-ToRGB layers at resolution ≤ ``max_resolution``. The reference's
  "≤ 128 px" at 1024 px (11 layers, 5,376 channels) is generalised as ``max(4, size // 8)`` —
  everything but the three finest resolution levels (1024 → 128, 256 → 32, 16 → 4). Non-ToRGB
  resolutions never decrease along the StyleSpace order, so the rows always cover a *prefix* of
  the non-ToRGB layers, as StyleCLIP's consumers expect. ``all_layers`` takes every non-ToRGB
  layer (6,048 channels at 1024).
* **CLIP input**: ``"images"`` (default) is the reference's path — uint8 images
  (``clip(x·127.5 + 128, 0, 255)`` truncated, TF's ``convert_images_to_uint8``) through the
  CLIP resource's ``encode_images`` (the model's own PIL transform: bicubic shorter-side resize,
  centre crop, mean/std). ``"generated"`` uses ``encode_generated`` on the float images instead
  (faster on a GPU, no PIL round trip, but not what produced StyleCLIP's ``fs3.npy``).
* **faithful**: the reference shallow-copies the list of S arrays (``copy.copy``), so setting a
  channel to its mean persists — every channel processed earlier stays at its mean for all later
  channels. ``faithful=True`` reproduces that; the default resets S for each channel.

Many channel edits share one synthesis batch: a batch holds ``batch_size`` images, i.e.
``batch_size // (2·n_images)`` channels (at least one; larger image sets are split).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cfs_core.artifacts import fingerprint, tensor_digest
from cfs_core.errors import InputError
from cfs_core.methods import EditContext
from cfs_core.nets.protocols import unit
from cfs_core.stylegan2 import Generator, StyleLayer

STATS_BATCH = 1000  # W samples per mapping batch (the reference's num_once)


@dataclass(frozen=True)
class PrecomputeSettings:
    """The options that determine the statistics and ``fs3`` (all part of the cache keys)."""

    n_stats: int = 100_000
    n_images: int = 100
    seed: int = 5
    truncation: float = 0.7
    max_resolution: int | None = None
    all_layers: bool = False
    sigma: float = 5.0
    clip_input: str = "images"
    faithful: bool = False
    batch_size: int = 32  # not in the keys: it does not change the result

    def stats_key(self) -> dict[str, Any]:
        return {"n_stats": self.n_stats, "seed": self.seed, "truncation": self.truncation}

    def relevance_key(self) -> dict[str, Any]:
        return {"n_images": self.n_images, "seed": self.seed, "truncation": self.truncation,
                "max_resolution": self.max_resolution, "all_layers": self.all_layers, "sigma": self.sigma,
                "clip_input": self.clip_input, "faithful": self.faithful}


# ---------------------------------------------------------------------------------------------
# Layout helpers (§1.7)


def non_torgb_layers(gen: Generator) -> list[StyleLayer]:
    """StyleCLIP's ``mindexs``: the StyleSpace entries that are not ToRGB, in order."""
    return [layer for layer in gen.stylespace if not layer.is_torgb]


def relevance_layers(gen: Generator, max_resolution: int | None = None, all_layers: bool = False) -> list[StyleLayer]:
    """The non-ToRGB layers whose channels get relevance rows (a prefix of :func:`non_torgb_layers`)."""
    layers = non_torgb_layers(gen)
    if all_layers:
        return layers
    limit = max_resolution if max_resolution is not None else max(4, gen.size // 8)
    return [layer for layer in layers if layer.resolution <= limit]


def valid_row_counts(gen: Generator) -> list[int]:
    """Row counts of an ``fs3`` that covers a prefix of the non-ToRGB layers (5,376 / 6,048 at 1024)."""
    return [int(n) for n in np.cumsum([layer.channels for layer in non_torgb_layers(gen)])]


def generator_identity(gen: Generator) -> str:
    """The generator's weights and buffers (noise included) plus its truncation centre."""
    return hashlib.sha256((fingerprint(gen) + tensor_digest(gen.truncation_center())).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# W samples and S statistics (§7.1)


def w_batches(gen: Generator, n: int, seed: int, psi: float, device: torch.device,
              batch: int = STATS_BATCH) -> Iterator[torch.Tensor]:
    """Truncated W samples ``[b, D]`` in batches: the reference's ``RandomState(seed)`` stream."""
    rnd = np.random.RandomState(seed)
    center = gen.truncation_center().to(device)
    done = 0
    while done < n:
        size = min(batch, n - done)
        z = torch.from_numpy(rnd.randn(size, gen.style_dim)).to(device=device, dtype=torch.float32)
        yield gen.truncate(gen.mapping(z), psi, center)
        done += size


@torch.no_grad()
def compute_stats(ctx: EditContext, settings: PrecomputeSettings) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-layer mean and population std of S over ``n_stats`` W samples (float32, CPU)."""
    gen, n_total = ctx.generator, settings.n_stats
    count = 0
    means: list[torch.Tensor] = []
    m2s: list[torch.Tensor] = []
    for w in w_batches(gen, n_total, settings.seed, settings.truncation, ctx.device):
        styles = [s.double() for s in gen.styles(w)]
        b = w.shape[0]
        for i, s in enumerate(styles):
            bm, bm2 = s.mean(0), ((s - s.mean(0)) ** 2).sum(0)
            if count == 0:
                means.append(bm)
                m2s.append(bm2)
            else:  # Chan et al.'s merge of two (mean, M2) summaries
                delta = bm - means[i]
                means[i] = means[i] + delta * (b / (count + b))
                m2s[i] = m2s[i] + bm2 + delta**2 * (count * b / (count + b))
        count += b
        ctx.report("stats", count, n_total, "S mean/std")
    mean = [m.float().cpu() for m in means]
    std = [(m2 / count).sqrt().float().cpu() for m2 in m2s]
    return mean, std


# ---------------------------------------------------------------------------------------------
# Channel relevance (§7.2)


def to_uint8(images: torch.Tensor) -> list[np.ndarray]:
    """[-1, 1] images → uint8 HWC arrays, as TF's ``convert_images_to_uint8`` (x·127.5 + 128, clip, truncate)."""
    pixels = (images * 127.5 + 128.0).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(p) for p in pixels]


def _encoder(clip: Any, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    if mode == "images":
        return lambda images: clip.encode_images(to_uint8(images))
    if mode == "generated":
        return lambda images: clip.encode_generated(images)
    raise InputError(f"clip_input must be 'images' or 'generated' (got {mode!r})")


def _edited_styles(base: Sequence[torch.Tensor], mean: Sequence[torch.Tensor], std: Sequence[torch.Tensor],
                   order: Sequence[torch.Tensor | None], chunk: Sequence[tuple[int, int, int]], sigma: float,
                   faithful: bool) -> list[torch.Tensor]:
    """S for a chunk of channel edits, items ordered (channel, sign ∈ {−σ, +σ}, image) → ``[K·2·N, C_l]``.

    ``chunk`` holds ``(global order j, layer index, channel)``; ``order[l]`` is the global order of
    each channel of layer ``l`` (None for layers without rows). Faithful: channels with an order
    below ``j`` sit at their mean (the reference's shallow-copy quirk).
    """
    k, n = len(chunk), base[0].shape[0]
    js = torch.tensor([j for j, _, _ in chunk], device=base[0].device)
    signs = torch.tensor([-sigma, sigma], device=base[0].device)
    out = []
    for li, s in enumerate(base):
        t = s.unsqueeze(0).unsqueeze(0).expand(k, 2, n, -1).clone()  # [K, 2, N, C]
        if faithful and order[li] is not None:
            earlier = order[li][None, :] < js[:, None]  # [K, C]
            t = torch.where(earlier[:, None, None, :], mean[li].expand_as(t), t)
        for item, (_, layer, channel) in enumerate(chunk):
            if layer == li:
                t[item, :, :, channel] = (mean[li][channel] + signs * std[li][channel])[:, None]
        out.append(t.reshape(k * 2 * n, -1))
    return out


@torch.no_grad()
def compute_relevance(ctx: EditContext, clip: Any, mean: Sequence[torch.Tensor], std: Sequence[torch.Tensor],
                      settings: PrecomputeSettings) -> tuple[torch.Tensor, list[StyleLayer]]:
    """``fs3`` ``[n_channels, D]`` (unit rows, float32, CPU) for the included layers, and those layers."""
    gen, device = ctx.generator, ctx.device
    layers = relevance_layers(gen, settings.max_resolution, settings.all_layers)
    if not layers:
        raise InputError(f"no non-ToRGB layer at resolution <= {settings.max_resolution}; raise max_resolution")
    encode = _encoder(clip, settings.clip_input)
    w = next(w_batches(gen, settings.n_images, settings.seed, settings.truncation, device, batch=settings.n_images))
    base = gen.styles(w)
    mean_d = [m.to(device) for m in mean]
    std_d = [s.to(device) for s in std]
    order: list[torch.Tensor | None] = [None] * len(base)
    channels: list[tuple[int, int, int]] = []
    for layer in layers:
        order[layer.index] = torch.arange(len(channels), len(channels) + layer.channels, device=device)
        channels += [(len(channels) + c, layer.index, c) for c in range(layer.channels)]
    n = settings.n_images
    per_chunk = max(1, settings.batch_size // (2 * n))
    rows: list[torch.Tensor] = []
    start = time.perf_counter()
    for first in range(0, len(channels), per_chunk):
        chunk = channels[first:first + per_chunk]
        styles = _edited_styles(base, mean_d, std_d, order, chunk, settings.sigma, settings.faithful)
        feats = []
        for lo in range(0, styles[0].shape[0], settings.batch_size):
            images = gen.synthesis_from_styles([s[lo:lo + settings.batch_size] for s in styles], noise="const")
            feats.append(unit(encode(images).float()))
        f = torch.cat(feats).reshape(len(chunk), 2, n, -1)
        d = unit(f[:, 1] - f[:, 0])  # +σ minus −σ, per image
        rows.append(unit(d.mean(1)).cpu())
        done = first + len(chunk)
        ctx.report("relevance", done, len(channels), f"channel relevance, layer {gen.stylespace[chunk[-1][1]].name}",
                   seconds=time.perf_counter() - start)
    return torch.cat(rows), layers
