"""The demo pack's e4e encoder: trained to invert the world's photo renders into the demo generator's W+.

The demo generator (:mod:`cfs_core.training.generator`) is trained so that ``G(z)`` draws the
photo render of the face :func:`~cfs_core.training.generator.params_from_z` names. Every latent
therefore gives two free supervised pairs for an encoder, with target ``w = G.style(z)``:

* ``(render(params_from_z(z)), w)`` — a photo of the world, the encoder's real use;
* ``(G.synthesis(w), w)`` — the generator's own sample, an exact pair (``sample_fraction`` of
  each batch), so the encoder also inverts generator samples.

The batch of step ``k`` is a pure function of ``(seed, k)`` and of the frozen generator, so
:func:`~cfs_core.training.loops.run_loop` makes training resumable and bit-identical after a
resume; the signature includes a fingerprint of the generator's weights (a checkpoint made for
another generator is refused).

Loss: mean squared error between the predicted W+ (encoder output + ``latent_avg``, e4e's
``start_from_latent_avg``) and the target ``w`` in every slot, in units of the per-dimension
standard deviation of W (so the loss is about 1 for the mean face and well scaled whatever the
mapping's output scale). Optionally, every ``image_loss_every`` steps, ``image_loss_weight`` × the
L1 between ``G.synthesis(prediction)`` and the input image (back-propagated through the frozen
generator: expensive). e4e's delta regularisation is not used: every target is a single w.

Canonical latents (``canonical=True``, the default): many latents name the same face — the
coordinates past ``len(PARAM_NAMES)`` are ignored, and so is where a categorical parameter's
uniform falls inside its value's interval — and the generator learns to draw them alike, but
their ``w`` differ (the nuisance coordinates alone carried about 90 % of W's variance in the demo
mapping at initialisation and after 200 training steps), so an image
cannot tell which ``w`` it came from and a latent loss on raw latents has a floor near 0.9.
:func:`face_latents` gives each face one latent: categorical uniforms at the centre of their
value's interval, continuous ones where the value lies in its sampling range, and the nuisance
coordinates a fixed direction of the norm that keeps ``rms(z) = 1`` (a fixed point of the
mapping's PixelNorm). Training draws ``canonical_latents(z) = face_latents(params_from_z(z))``:
the same faces, one ``w`` each, so the target is a function of the image.

:func:`evaluate_encoder` measures reconstructions of held-out (``test`` split) photo renders: L1,
identity similarity, attribute agreement (an evaluator on the reconstruction against the true
targets and against its own reading of the input), and latent errors (against the canonical w of
the render's face, and on generator samples).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from cfs_core.errors import InputError
from cfs_core.methods import ProgressCallback, ProgressEvent
from cfs_core.nets.e4e import E4E, E4EConfig, Encoder4Editing, GradualStyleBlock
from cfs_core.nets.evaluator import Evaluator
from cfs_core.nets.identity import IdentityNet, identity_similarity
from cfs_core.stylegan2.generator import Generator
from cfs_core.training.data import ATTRIBUTES, IGNORE, DataSpec, face_seed, make_batch
from cfs_core.training.generator import PARAM_NAMES, params_from_z, render_targets
from cfs_core.world import SPECS, FaceParams, sample_params

CANONICAL_SEED = 0x5EED  # the fixed nuisance direction of canonical latents
STREAM_OFFSET = 1 << 40  # the encoder's latents are another stream than the generator's training latents
EVAL_SAMPLE_OFFSET = 1 << 41  # held-out generator samples of the evaluation


def _ignore(event: ProgressEvent) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class EncoderTrainOptions:
    """Settings of the encoder's training (architecture, data mix, losses, checkpoints)."""

    steps: int = 600
    batch: int = 32
    seed: int = 0
    lr: float = 2e-3
    input_size: int = 64  # encoder input (renders and samples are resized to it)
    stem: int = 16
    widths: tuple[int, ...] = (16, 32, 64, 128)  # IR-SE stages (>= 3: e4e taps the last three)
    units: tuple[int, ...] = (1, 1, 2, 1)
    se_reduction: int = 8
    sample_fraction: float = 0.5  # share of each batch that are generator samples G(w) (exact pairs)
    canonical: bool = True  # draw canonical latents (one w per face; module docstring)
    image_loss_weight: float = 0.0  # L1 through the generator; 0 = off
    image_loss_every: int = 0  # apply it every this many steps (0 = never)
    warmup: int = 50
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100
    resume: bool = True
    extra: dict[str, Any] = field(default_factory=dict)  # free notes (not in the signature)

    def __post_init__(self) -> None:
        if self.batch < 1 or self.steps < 0:
            raise InputError(f"need batch >= 1 and steps >= 0, got batch={self.batch}, steps={self.steps}")
        if not 0.0 <= self.sample_fraction <= 1.0:
            raise InputError(f"sample_fraction must be in [0, 1], got {self.sample_fraction}")
        if self.image_loss_weight < 0 or self.image_loss_every < 0:
            raise InputError("image_loss_weight and image_loss_every must be >= 0")
        object.__setattr__(self, "widths", tuple(int(v) for v in self.widths))
        object.__setattr__(self, "units", tuple(int(v) for v in self.units))

    @property
    def n_samples(self) -> int:
        """Generator samples per batch (the rest are photo renders)."""
        return round(self.batch * self.sample_fraction)

    def uses_image_loss(self, step: int) -> bool:
        return self.image_loss_weight > 0 and self.image_loss_every > 0 and step % self.image_loss_every == 0

    def config(self, generator: Generator) -> E4EConfig:
        """The encoder architecture for ``generator``'s W+ (``n_latent`` slots of ``style_dim``)."""
        try:
            return E4EConfig(stem=self.stem, widths=self.widths, units=self.units, se_reduction=self.se_reduction,
                             input_size=self.input_size, style_count=generator.n_latent, style_dim=generator.style_dim)
        except ValueError as exc:
            raise InputError(f"invalid encoder architecture: {exc}") from None

    def signature(self, generator_fingerprint: str = "") -> str:
        d = asdict(self)
        for k in ("checkpoint_dir", "checkpoint_every", "resume", "extra"):
            d.pop(k)
        return json.dumps({"component": "encoder", "generator": generator_fingerprint, **d}, sort_keys=True)


def generator_fingerprint(generator: Generator) -> str:
    """A short hash of the generator's weights and config (ties an encoder to its generator)."""
    h = hashlib.sha256(generator.config.to_json().encode())
    for key, value in generator.state_dict().items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:16]


def face_uniforms(params: FaceParams) -> np.ndarray:
    """``[len(PARAM_NAMES)]`` canonical uniforms of a face (the inverse of ``params_from_uniforms``):
    a categorical value's interval centre, a continuous value's position in its sampling range."""
    out = np.empty(len(PARAM_NAMES), dtype=np.float64)
    for i, name in enumerate(PARAM_NAMES):
        spec, value = SPECS[name], getattr(params, name)
        if spec.choices:
            w = np.asarray(spec.weights or [1.0] * len(spec.choices), dtype=np.float64)
            cum = np.concatenate([[0.0], np.cumsum(w / w.sum())])
            k = spec.choices.index(value)
            out[i] = (cum[k] + cum[k + 1]) / 2
        else:
            low = spec.low if spec.sample_low is None else spec.sample_low
            high = spec.high if spec.sample_high is None else spec.sample_high
            out[i] = (float(value) - low) / (high - low)
    return np.clip(out, 1e-6, 1 - 1e-6)


def face_latents(params: list[FaceParams], style_dim: int) -> torch.Tensor:
    """The canonical latents ``[N, style_dim]`` of faces (module docstring; ``params_from_z`` of
    the result gives the faces back)."""
    k = len(PARAM_NAMES)
    if style_dim <= k:
        raise InputError(f"style_dim must be > {k}, got {style_dim}")
    u = torch.from_numpy(np.array([face_uniforms(p) for p in params], dtype=np.float64).reshape(len(params), k))
    face = torch.special.ndtri(u)
    direction = torch.randn(style_dim - k, generator=torch.Generator().manual_seed(CANONICAL_SEED)).double()
    rest = (style_dim - face.pow(2).sum(dim=1, keepdim=True)).clamp_min(0.0).sqrt() * (direction / direction.norm())
    return torch.cat([face, rest], dim=1).float()


def canonical_latents(z: torch.Tensor) -> torch.Tensor:
    """The canonical latent of the face each row of ``z`` names: ``face_latents(params_from_z(z))``."""
    return face_latents(params_from_z(z), z.shape[1]).to(z.device)


@dataclass
class WStats:
    """W statistics of a generator: the centre codes are predicted from, and the per-dimension scale."""

    latent_avg: torch.Tensor  # [D]
    std: torch.Tensor  # [D], floored at 5 % of the mean std


@torch.no_grad()
def w_statistics(generator: Generator, n: int = 4096, seed: int = 0, canonical: bool = False) -> WStats:
    """Centre and per-dimension std of W. ``canonical``: of canonical latents' w (the centre is
    their mean); else of all w (the centre is the generator's stored ``latent_avg`` if any)."""
    z = torch.randn(n, generator.style_dim, generator=torch.Generator().manual_seed(seed))
    w = generator.style(canonical_latents(z) if canonical else z)
    stored = None if canonical else cast("torch.Tensor | None", generator.latent_avg)
    avg = stored.reshape(-1).float() if stored is not None else w.mean(0)
    std = w.std(0)
    return WStats(avg.clone(), std.clamp_min(0.05 * float(std.mean()) + 1e-8))


@dataclass
class EncoderBatch:
    """One training batch: images at the generator's size and the w each one was drawn from."""

    step: int
    images: torch.Tensor  # [B, 3, S, S] in [-1, 1]: renders first, then generator samples
    w: torch.Tensor  # [B, D]
    n_renders: int


def _latents(seed: int, step: int, batch: int, style_dim: int, canonical: bool) -> torch.Tensor:
    z = torch.randn(batch, style_dim, generator=torch.Generator().manual_seed(seed * 1_000_003 + step))
    return canonical_latents(z) if canonical else z


@torch.no_grad()
def encoder_batch(generator: Generator, step: int, opts: EncoderTrainOptions) -> EncoderBatch:
    """The batch of step ``step``: a pure function of ``(opts.seed, step)`` and the generator."""
    z = _latents(opts.seed + STREAM_OFFSET, step, opts.batch, generator.style_dim, opts.canonical)
    w = generator.style(z)
    n_renders = opts.batch - opts.n_samples
    parts = []
    if n_renders:
        parts.append(render_targets(params_from_z(z[:n_renders]), generator.size))
    if opts.n_samples:
        parts.append(generator.synthesis(w[n_renders:], noise="const").clamp(-1.0, 1.0))
    return EncoderBatch(step, torch.cat(parts), w, n_renders)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """As :meth:`E4E.resize` (antialiased bilinear; identity at the encoder's size)."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def encoder_loss(encoder: Encoder4Editing, batch: EncoderBatch, stats: WStats, generator: Generator,
                 opts: EncoderTrainOptions) -> torch.Tensor:
    """Normalised W+ error, plus the optional image L1 on the steps that use it (module docstring)."""
    pred = encoder(_resize(batch.images, encoder.config.input_size)) + stats.latent_avg
    loss = ((pred - batch.w.unsqueeze(1)) / stats.std).pow(2).mean()
    if opts.uses_image_loss(batch.step):
        recon = generator.synthesis(pred, noise="const")
        loss = loss + opts.image_loss_weight * (recon - batch.images).abs().mean()
    return loss


def train_encoder(generator: Generator, opts: EncoderTrainOptions,
                  progress: ProgressCallback = _ignore) -> tuple[E4E, dict[str, Any]]:
    """Train the e4e encoder of ``generator`` (module docstring). Returns the frozen :class:`E4E`
    (without its generator: save it with :func:`~cfs_core.nets.e4e.save_e4e_native`) and a report
    for its model card. ``generator`` is put in eval mode and frozen."""
    from cfs_core.training.loops import run_loop

    k = len(PARAM_NAMES)
    if generator.style_dim < k or (opts.canonical and generator.style_dim == k):
        raise InputError(f"the generator's style_dim must be >= {k} (> {k} for canonical latents)")
    g = generator.eval().requires_grad_(False)
    fingerprint = generator_fingerprint(g)
    stats = w_statistics(g, seed=opts.seed, canonical=opts.canonical)
    config = opts.config(g)
    torch.manual_seed(opts.seed)
    encoder = Encoder4Editing(config)
    with torch.no_grad():  # start from latent_avg: every head's last layer begins at zero
        for head in encoder.styles:
            cast(GradualStyleBlock, head).linear.weight.zero_()
    optimizer = torch.optim.Adam(encoder.parameters(), lr=opts.lr)
    result = run_loop(encoder, optimizer, lambda k: encoder_batch(g, k, opts),  # type: ignore[arg-type,return-value]
                      lambda m, b: encoder_loss(m, b, stats, g, opts),  # type: ignore[arg-type]
                      opts.steps, opts.lr, opts.signature(fingerprint), opts.checkpoint_dir, opts.checkpoint_every,
                      opts.resume, warmup=min(opts.warmup, opts.steps // 10), progress=progress)
    meta = {"component": "encoder", "trained_by": "cfs_core.training.encoder", "generator_fingerprint": fingerprint,
            "steps": result.step, "batch": opts.batch, "seed": opts.seed, "canonical_latents": opts.canonical}
    e4e = E4E(encoder, stats.latent_avg, None, meta)
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opts).items() if k != "extra"}
    report = {"component": "encoder", "options": options, "architecture": config.to_dict(),
              "parameters": sum(p.numel() for p in encoder.parameters()), "generator_fingerprint": fingerprint,
              "steps": result.step, "images_seen": result.step * opts.batch, "final_loss": result.final_loss,
              "wall_s": round(result.wall_s, 2), "resumed_from": result.resumed_from}
    return e4e, report


# ---------------------------------------------------------------------------------- evaluation
def _agreement(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], targets: torch.Tensor) -> dict[str, float]:
    """Per attribute: share of the visible items (target != IGNORE) where ``a`` equals ``b``."""
    out: dict[str, float] = {}
    for i, name in enumerate(ATTRIBUTES):
        if name in a and name in b:
            seen = targets[:, i] != IGNORE
            if bool(seen.any()):
                out[name] = float((a[name][seen] == b[name][seen]).float().mean())
    return out


def _rel_error(w_hat: torch.Tensor, w: torch.Tensor, center: torch.Tensor) -> float:
    """Sum over the batch of ``‖w_hat − w‖ / ‖w − center‖`` (W+ codes, all slots)."""
    num = (w_hat - w).flatten(1).norm(dim=1)
    return float((num / (w - center.unsqueeze(0)).flatten(1).norm(dim=1).clamp_min(1e-8)).sum())


def _mean(values: dict[str, float]) -> float:
    return float(np.mean(list(values.values()))) if values else float("nan")


@torch.no_grad()
def evaluate_encoder(e4e: E4E, generator: Generator, evaluator: Evaluator | None = None,
                     identity: IdentityNet | None = None, n: int = 200, seed: int = 0, batch: int = 25,
                     samples: int | None = None, canonical: bool = True,
                     progress: ProgressCallback = _ignore) -> dict[str, Any]:
    """Reconstruction quality on ``n`` held-out photo renders at the generator's size.

    Each render is inverted, decoded with ``generator.synthesis(noise="const")`` and clamped to
    [-1, 1]. Figures: ``l1`` (mean absolute error, images in [-1, 1]) and ``baseline_l1`` (the
    mean face ``G(latent_avg)`` against the same renders); with ``identity``, the mean cosine
    ``identity_similarity``; with ``evaluator``, per attribute and mean, over visible items only:
    ``attribute_accuracy`` (evaluator on the reconstruction vs the true targets),
    ``input_attribute_accuracy`` (evaluator on the input vs the truth: the ceiling) and
    ``attribute_agreement`` (on the reconstruction vs on the input). Latent errors are means of
    ``‖w' − w‖ / ‖w − latent_avg‖`` over all W+ slots (0 = exact, about 1 = no better than the
    centre): with ``canonical``, ``latent_rel_error`` of the renders against the w of their face's
    canonical latent (:func:`face_latents`); on ``samples`` (default ``n``) held-out generator
    samples ``G(w)`` (of canonical latents unless ``canonical=False``: other latents of a face render
    alike but have other ``w``), ``sample_latent_rel_error`` and ``sample_l1`` (``G(w')`` vs ``G(w)``).
    """
    if n < 1 or batch < 1:
        raise InputError(f"n and batch must be >= 1, got n={n}, batch={batch}")
    g = generator.eval().requires_grad_(False)
    if (g.n_latent, g.style_dim) != (e4e.n_latent, e4e.style_dim):
        raise InputError(f"encoder W+ ({e4e.n_latent}, {e4e.style_dim}) does not match the generator's "
                         f"({g.n_latent}, {g.style_dim})")
    samples = n if samples is None else samples
    spec = DataSpec(size=g.size, styles=("photo",), split="test", seed=seed)
    stored = cast("torch.Tensor | None", e4e.latent_avg)
    avg = stored if stored is not None else w_statistics(g, seed=seed, canonical=canonical).latent_avg
    center = avg.reshape(-1, g.style_dim)[:1]
    mean_face = g.synthesis(g.to_wplus(center), noise="const").clamp(-1.0, 1.0)
    l1 = base_l1 = id_sim = render_rel = 0.0
    preds_in: dict[str, list[torch.Tensor]] = {}
    preds_rec: dict[str, list[torch.Tensor]] = {}
    targets = []
    total = n + samples
    for start in range(0, n, batch):
        indices = range(start, min(n, start + batch))
        b = make_batch(spec, indices)
        w_hat = e4e.invert(b.images)
        recon = g.synthesis(w_hat, noise="const").clamp(-1.0, 1.0)
        if canonical:  # the face's own w is known: the latent error of a render
            faces = [sample_params(face_seed("test", i, seed)) for i in indices]
            render_rel += _rel_error(w_hat, g.to_wplus(g.style(face_latents(faces, g.style_dim))), center)
        l1 += float((recon - b.images).abs().mean(dim=(1, 2, 3)).sum())
        base_l1 += float((mean_face - b.images).abs().mean(dim=(1, 2, 3)).sum())
        if identity is not None:
            id_sim += float(identity_similarity(identity.embed(b.images), identity.embed(recon)).sum())
        if evaluator is not None:
            for store, images in ((preds_in, b.images), (preds_rec, recon)):
                for name, v in evaluator.predict_indices(images).items():
                    store.setdefault(name, []).append(v)
            targets.append(b.targets)
        progress(ProgressEvent("evaluate", min(n, start + batch), total))
    out: dict[str, Any] = {"metric": "reconstruction", "split": "test", "style": "photo", "size": g.size, "n": n,
                           "l1": l1 / n, "baseline_l1": base_l1 / n}
    if canonical:
        out["latent_rel_error"] = render_rel / n
    if identity is not None:
        out["identity_similarity"] = id_sim / n
    if evaluator is not None:
        t = torch.cat(targets)
        p_in = {k: torch.cat(v) for k, v in preds_in.items()}
        p_rec = {k: torch.cat(v) for k, v in preds_rec.items()}
        truth = {name: t[:, i] for i, name in enumerate(ATTRIBUTES)}
        for key, a, ref in (("attribute_accuracy", p_rec, truth), ("input_attribute_accuracy", p_in, truth),
                            ("attribute_agreement", p_rec, p_in)):
            out[key] = _agreement(a, ref, t)
            out[f"mean_{key}"] = _mean(out[key])
    rel = s_l1 = 0.0
    z_all = _latents(seed + EVAL_SAMPLE_OFFSET, 0, samples, g.style_dim, canonical)
    for start in range(0, samples, batch):
        z = z_all[start:start + batch]
        m = z.shape[0]
        wplus = g.to_wplus(g.style(z))
        images = g.synthesis(wplus, noise="const").clamp(-1.0, 1.0)
        w_hat = e4e.invert(images)
        rel += _rel_error(w_hat, wplus, center)
        s_l1 += float((g.synthesis(w_hat, noise="const").clamp(-1.0, 1.0) - images).abs().mean(dim=(1, 2, 3)).sum())
        progress(ProgressEvent("evaluate", n + start + m, total))
    if samples:
        out.update({"samples": samples, "sample_latent_rel_error": rel / samples, "sample_l1": s_l1 / samples})
    return out

