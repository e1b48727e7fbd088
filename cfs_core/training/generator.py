"""The demo generator: the shared StyleGAN2 trained by regression to the world's renderer.

Adversarial training is out of reach on a CPU (see the demo-pack issue's measured costs), so the
demo generator learns a *deterministic* world: every latent ``z`` names one face,
:func:`params_from_z`, and ``G(z)`` is trained to draw that face's photo render (L1 at full and
half resolution). The generator is the ordinary :class:`~cfs_core.stylegan2.Generator` (mapping
network, W, W+, StyleSpace): nothing about it is special at inference time.

``params_from_z`` reads the latent the way the mapping network sees it: after pixel
normalisation (``z / rms(z)``), so it is exactly a function of the mapping's input. Coordinate
``i`` (in :data:`~cfs_core.world.SPECS` order) becomes ``u = Φ(z̃_i)`` (uniform on (0, 1)); a
categorical parameter takes the value whose weight interval holds ``u`` (the world's sampling
law), a continuous one ``low + u (high - low)`` over its sampling range. Facial hair is kept only
for a masculine presentation, as in :func:`~cfs_core.world.sample_params`. The remaining
coordinates of ``z`` carry no information: the generator learns to ignore them.

Training (:func:`train_generator`) uses :func:`~cfs_core.training.loops.run_loop`: seeded
(the latents of step ``k`` are a function of ``(seed, k)``), resumable and checkpointed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.errors import InputError
from cfs_core.methods import ProgressCallback, ProgressEvent
from cfs_core.stylegan2.config import GeneratorConfig
from cfs_core.stylegan2.generator import Generator
from cfs_core.world import SPECS, FaceParams, build_scene

PARAM_NAMES: tuple[str, ...] = tuple(SPECS)
RENDER_SEED = 0  # the photo texture pattern is the same for every face (a function of the params only)


def _ignore(event: ProgressEvent) -> None:
    """Default progress sink."""


def _cumulative(name: str) -> np.ndarray:
    spec = SPECS[name]
    w = np.asarray(spec.weights or [1.0] * len(spec.choices), dtype=np.float64)
    return np.cumsum(w / w.sum())


_CUMULATIVE = {n: _cumulative(n) for n, s in SPECS.items() if s.choices}


def uniforms_from_z(z: torch.Tensor) -> np.ndarray:
    """``[N, len(PARAM_NAMES)]`` uniforms ``Φ(z / rms(z))`` of the first coordinates of ``z``."""
    if z.ndim != 2 or z.shape[1] < len(PARAM_NAMES):
        raise InputError(f"z must be [N, >= {len(PARAM_NAMES)}], got {list(z.shape)}")
    z = z.detach().double().cpu()
    normed = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)  # what PixelNorm feeds the mapping
    return torch.special.ndtr(normed[:, : len(PARAM_NAMES)]).numpy()


def params_from_uniforms(u: Sequence[float]) -> FaceParams:
    """The face named by one row of uniforms (module docstring)."""
    values: dict[str, Any] = {}
    for name, x in zip(PARAM_NAMES, u):
        spec = SPECS[name]
        if spec.choices:
            k = int(np.searchsorted(_CUMULATIVE[name], x, side="right"))
            values[name] = spec.choices[min(k, len(spec.choices) - 1)]
        else:
            low = spec.low if spec.sample_low is None else spec.sample_low
            high = spec.high if spec.sample_high is None else spec.sample_high
            values[name] = round(low + float(x) * (high - low), 4)
    if values["presentation"] != "masculine":
        values["facial_hair"] = "none"
    return FaceParams(**values)


def params_from_z(z: torch.Tensor) -> list[FaceParams]:
    """The faces that latents ``z`` ``[N, style_dim]`` name (module docstring)."""
    return [params_from_uniforms(row) for row in uniforms_from_z(z)]


def render_targets(params: Sequence[FaceParams], size: int) -> torch.Tensor:
    """Photo renders ``[N, 3, size, size]`` in [-1, 1] (rendered at >= 64 px, box-downsampled)."""
    return render_targets_and_labels(params, size, labels=False)[0]


def render_targets_and_labels(params: Sequence[FaceParams], size: int,
                              labels: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Photo renders as :func:`render_targets` and, with ``labels``, their ``[N, size, size]``
    label maps (:data:`~cfs_core.world.LABEL_NAMES` ids; computed once per scene, shared with
    the photo renderer)."""
    from PIL import Image

    from cfs_core.world.styles import render_photo_and_labels

    out, maps = [], []
    for p in params:
        img, lab = render_photo_and_labels(build_scene(p), max(size, 64), RENDER_SEED)
        if img.shape[0] != size:
            img = np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BOX))
            lab = np.asarray(Image.fromarray(lab).resize((size, size), Image.Resampling.NEAREST)) if labels else lab
        out.append(img)
        if labels:
            maps.append(lab)
    arr = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float()
    return arr.div(127.5).sub(1.0), (torch.from_numpy(np.stack(maps)).long() if labels else None)


@dataclass(frozen=True)
class GeneratorOptions:
    """Settings of the demo generator's training."""

    steps: int = 4000
    batch: int = 16
    size: int = 128
    style_dim: int = 128
    n_mlp: int = 8
    channels: tuple[int, ...] = (128, 128, 128, 64, 32, 16)  # resolutions 4, 8, ... size
    lr: float = 2e-3
    mapping_lr_scale: float = 50.0  # the mapping's weights are stored / lr_mlp: a larger step
    beta1: float = 0.9  # Adam momentum (GAN training uses 0; regression converges far faster with it)
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100
    resume: bool = True
    until: int | None = None  # stop after this step (the schedule stays the one of ``steps``)
    extra: dict[str, Any] = field(default_factory=dict)

    def config(self) -> GeneratorConfig:
        n_res = int(math.log2(self.size)) - 1
        if len(self.channels) != n_res:
            raise InputError(f"--channels needs {n_res} widths (resolutions 4..{self.size}), got {len(self.channels)}")
        table = {2 ** (i + 2): c for i, c in enumerate(self.channels)}
        if self.style_dim < len(PARAM_NAMES):
            raise InputError(f"style_dim must be >= {len(PARAM_NAMES)} (one latent coordinate per world parameter)")
        return GeneratorConfig(size=self.size, style_dim=self.style_dim, n_mlp=self.n_mlp, channels=table)

    def signature(self) -> str:
        d = asdict(self)
        for k in ("checkpoint_dir", "checkpoint_every", "resume", "until", "extra"):
            d.pop(k)
        return json.dumps({"component": "generator", **d}, sort_keys=True)


@dataclass
class LatentBatch:
    """Latents and the renders they name."""

    z: torch.Tensor
    images: torch.Tensor


def latent_batch(step: int, batch: int, style_dim: int, size: int, seed: int) -> LatentBatch:
    """The batch of step ``step``: a pure function of its arguments."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    z = torch.randn(batch, style_dim, generator=gen)
    return LatentBatch(z, render_targets(params_from_z(z), size))


def regression_loss(g: nn.Module, batch: LatentBatch) -> torch.Tensor:
    """L1 to the render at full and half resolution (constant noise: the world has none)."""
    out, _ = g([batch.z], randomize_noise=False)
    full = (out - batch.images).abs().mean()
    half = (F.avg_pool2d(out, 2) - F.avg_pool2d(batch.images, 2)).abs().mean()
    return full + half


def train_generator(opts: GeneratorOptions, progress: ProgressCallback = _ignore) -> tuple[Generator, dict[str, Any]]:
    """Train the demo generator (module docstring); returns it (eval mode, ``latent_avg`` set)
    and a report for its model card."""
    from cfs_core.training.loops import run_loop

    torch.manual_seed(opts.seed)
    g = Generator(opts.config())
    mapping = [p for n, p in g.named_parameters() if n.startswith("style.")]
    rest = [p for n, p in g.named_parameters() if not n.startswith("style.")]
    optimizer = torch.optim.Adam([{"params": rest, "lr_scale": 1.0}, {"params": mapping, "lr_scale": opts.mapping_lr_scale}],
                                 lr=opts.lr, betas=(opts.beta1, 0.99))
    base_step = optimizer.step

    def scaled_step(*args: Any, **kwargs: Any) -> Any:  # run_loop sets one lr for all groups
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * group["lr_scale"]
        try:
            return base_step(*args, **kwargs)
        finally:
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] / group["lr_scale"]

    optimizer.step = scaled_step  # type: ignore[method-assign]
    result = run_loop(g, optimizer, lambda k: latent_batch(k, opts.batch, opts.style_dim, opts.size, opts.seed),  # type: ignore[arg-type,return-value]
                      regression_loss, opts.steps, opts.lr, opts.signature(), opts.checkpoint_dir,
                      opts.checkpoint_every, opts.resume, warmup=min(100, opts.steps // 10), progress=progress,
                      until=opts.until)
    g.eval().requires_grad_(False)
    with torch.no_grad():
        g.latent_avg = g.mean_latent(4096, seed=opts.seed).reshape(-1)
    report = {"component": "generator", "options": {k: v for k, v in asdict(opts).items() if k != "extra"},
              "steps": result.step, "images_seen": result.step * opts.batch, "final_loss": result.final_loss,
              "wall_s": round(result.wall_s, 2), "resumed_from": result.resumed_from}
    return g, report


# ---------------------------------------------------------------------------------- evaluation
def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``a`` ``[N, D]`` and ``b`` ``[M, D]``
    (FID's formula; the matrix square root through symmetric eigendecompositions)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    vals, vecs = np.linalg.eigh(cov_a)
    root_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    inner = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_sqrt = float(np.sqrt(np.clip(inner, 0, None)).sum())
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt)


def sample_latents(n: int, style_dim: int, seed: int) -> torch.Tensor:
    """Evaluation latents (a stream of their own: ``seed`` offset away from training's)."""
    return torch.randn(n, style_dim, generator=torch.Generator().manual_seed(10_000_019 + seed))


def evaluate_generator(g: Generator, evaluator: Any, clip: Any = None, n: int = 500, seed: int = 0, batch: int = 50,
                       progress: ProgressCallback = _ignore) -> dict[str, Any]:
    """Figures of a demo generator on ``n`` fresh latents.

    * ``agreement``: per attribute, how often the attribute evaluator reads the value the latent
      names (``params_from_z``) in ``G(z)`` (visible attributes only), and the mean / min;
    * ``render_accuracy``: the same evaluator on the renders themselves (its own ceiling);
    * ``l1``: mean |G(z) − render| in [-1, 1] units;
    * with ``clip``: ``fid_clip``, the Fréchet distance between CLIP image features of the samples
      and of the renders of *other* faces (``fid_clip_floor``: between two independent render sets).
    """
    from cfs_core.training.data import ATTRIBUTES, attribute_targets
    from cfs_core.training.loops import attribute_accuracy

    z_all = sample_latents(2 * n if clip is not None else n, g.style_dim, seed)
    preds: dict[str, list[torch.Tensor]] = {}
    render_preds: dict[str, list[torch.Tensor]] = {}
    targets, l1, feats_fake, feats_real, feats_other = [], [], [], [], []
    for start in range(0, n, batch):
        z = z_all[start:start + batch]
        params = params_from_z(z)
        real = render_targets(params, g.size)
        with torch.no_grad():
            fake, _ = g([z], randomize_noise=False)
        fake = fake.clamp(-1, 1)
        for name, v in evaluator.predict_indices(fake).items():
            preds.setdefault(name, []).append(v)
        for name, v in evaluator.predict_indices(real).items():
            render_preds.setdefault(name, []).append(v)
        targets.append(torch.from_numpy(np.stack([attribute_targets(p, "photo") for p in params])))
        l1.append(float((fake - real).abs().mean()) * len(z))
        if clip is not None:
            other = render_targets(params_from_z(z_all[n + start:n + start + batch]), g.size)
            with torch.no_grad():
                feats_fake.append(clip.encode_generated(fake).cpu().numpy())
                feats_real.append(clip.encode_generated(real).cpu().numpy())
                feats_other.append(clip.encode_generated(other).cpu().numpy())
        progress(ProgressEvent("evaluate", min(n, start + batch), n))
    t = torch.cat(targets)
    acc = attribute_accuracy({k: torch.cat(v) for k, v in preds.items()}, t)
    ceiling = attribute_accuracy({k: torch.cat(v) for k, v in render_preds.items()}, t)
    out: dict[str, Any] = {"n": n, "seed": seed, "agreement": acc, "mean_agreement": float(np.mean(list(acc.values()))),
                           "min_agreement": min(acc.values()), "render_accuracy": ceiling,
                           "mean_render_accuracy": float(np.mean(list(ceiling.values()))),
                           "l1": sum(l1) / n, "attributes": list(ATTRIBUTES)}
    if clip is not None:
        fake_f, real_f, other_f = (np.concatenate(f).astype(np.float64) for f in (feats_fake, feats_real, feats_other))
        out["fid_clip"] = frechet_distance(fake_f, other_f)
        out["fid_clip_floor"] = frechet_distance(real_f, other_f)
    return out
