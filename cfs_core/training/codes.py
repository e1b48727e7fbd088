"""Demo generator, stage 3: the synthesis trained on the codes the mapping will produce.

The autoencoder stage (:mod:`cfs_core.training.autoencode`) learns a code per face from the
image, then the mapping regresses an *additive model* of those codes: ``w ≈ features(z) @ A``
(one vector per attribute value and per continuous parameter). The synthesis never saw the
additive codes during training, so its samples are blurred approximations of the autoencoder's
reconstructions (evaluator agreement 0.36 on the first demo generator).

This stage removes the gap. The code of a face *is* ``features(z) @ A`` with ``A`` a trainable
embedding (started from the least-squares fit of the existing mapping's outputs, so step 0 draws
exactly what the starting generator draws), and the synthesis is trained on it directly
(L1 to the photo render at full and half resolution, constant noise; ``detail_weight`` > 1
weights the pixels of the small parts — glasses, eyes, brows, mouth, earrings — by the world's
label map, which would otherwise be a few per cent of the loss). The e4e encoder is trained
in the same steps by regression onto the same codes (MSE between the mean of its W+ slots and
``features(z) @ A``, gradient stopped at the code), so it inverts the generator it ships with.
Finally the mapping network regresses ``features(z) @ A`` on fresh latents
(:func:`~cfs_core.training.autoencode.train_mapping` with the trained ``A``): ``G(z)`` then draws
the face ``params_from_z(z)`` names, through the ordinary mapping → W → synthesis path (the
refit starts from the previous mapping; at peak lr 0.1 it left cloth colour at chance, 0.03
fits it: MSE 0.0037 → 0.0008, measured on the first shipped code-stage generator).

The autoencoder learned almost nothing of the attributes drawn in a few pixels: on the demo
generator it led to (the release before the separated codes), the rows of ``A`` for presentation, eye colour, eyebrows, expression and earrings
sit 0.01-0.04 apart (hair, glasses, hats: 0.5-1.2), so the synthesis had no input to draw them
from and they stayed at chance. ``separate`` gives the named parameters' rows distinct, fixed
offsets (:func:`separate_codes`) before the stage, and the synthesis learns them from there;
:func:`code_spread` reports how far apart every parameter's codes are.

Both loops use :func:`~cfs_core.training.loops.run_loop` (seeded, resumable, checkpointed).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.errors import InputError
from cfs_core.methods import ProgressCallback, ProgressEvent
from cfs_core.nets.e4e import E4E, Encoder4Editing
from cfs_core.stylegan2.generator import Generator
from cfs_core.training.autoencode import (
    AutoencodeOptions,
    RenderBatch,
    additive_features,
    encode_w,
    feature_slices,
    render_batch,
    train_mapping,
)


DETAIL_PARTS: tuple[str, ...] = ("eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip", "ear_r")
"""World label classes that carry attributes in a few pixels (glasses, eyes, brows, mouth, earrings)."""


def weighted_l1(out: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """L1 at full and half resolution; ``weights`` ``[N, H, W]`` (or None: uniform) are normalised
    to mean 1 per level, so the loss keeps the plain L1's scale."""
    total = out.new_zeros(())
    for level in range(2):
        if level:
            out, target = F.avg_pool2d(out, 2), F.avg_pool2d(target, 2)
            weights = None if weights is None else F.avg_pool2d(weights.unsqueeze(1), 2).squeeze(1)
        diff = (out - target).abs()
        total = total + (diff.mean() if weights is None else (diff * weights.unsqueeze(1)).mean() / weights.mean())
    return total


def detail_weights(labels: torch.Tensor, weight: float) -> torch.Tensor:
    """``[N, H, W]`` map: ``weight`` on :data:`DETAIL_PARTS` pixels, 1 elsewhere."""
    from cfs_core.world import LABEL_NAMES

    ids = torch.tensor([LABEL_NAMES.index(n) for n in DETAIL_PARTS])
    return 1.0 + (weight - 1.0) * torch.isin(labels, ids).float()


def _ignore(event: ProgressEvent) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class CodeTrainOptions:
    """Settings of the code stage (the starting generator and encoder are files)."""

    generator: str = ""  # generator .safetensors to start from (the autoencoder stage's output)
    encoder: str = ""  # e4e .safetensors to start from (the autoencoder stage's encoder)
    steps: int = 4500
    batch: int = 16
    lr: float = 2e-3
    encoder_weight: float = 1.0
    detail_weight: float = 8.0  # L1 weight of the small parts (DETAIL_PARTS) relative to the rest
    fit_latents: int = 16384  # latents the starting A is fitted on (mapping outputs, no rendering)
    map_steps: int = 15000
    map_batch: int = 512
    map_lr: float = 0.03  # 2e-3 left 27 % of the codes' variance unexplained; 0.1 left cloth colour at chance
    # "additive": the synthesis learns from features(z) @ A, then the mapping is refitted to A; "mapping": from
    # what the (frozen) mapping outputs, so G(z) is trained exactly as it samples (no refit: the mapping stays)
    source: str = "additive"
    # parameters whose rows of A the start pulls apart (see separate_codes) and the stage keeps fixed: the
    # autoencoder left the codes of attributes drawn in a few pixels nearly equal, so the synthesis had nothing to
    # draw them from; left trainable, such rows drift back together before the synthesis learns to use them
    # (measured: presentation 0.78 -> 0.44, earrings 0.75 -> 0.31 mean row distance in 1,000 steps)
    separate: tuple[str, ...] = ()
    separate_scale: float = 0.8
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100
    resume: bool = True
    until: int | None = None

    def __post_init__(self) -> None:
        if self.source not in ("additive", "mapping"):
            raise InputError(f"source must be 'additive' or 'mapping', got {self.source!r}")
        from cfs_core.world import SPECS

        unknown = [n for n in self.separate if n not in SPECS]
        if unknown:
            raise InputError(f"separate: unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(SPECS)}")
        if self.separate and self.source != "additive":
            raise InputError("separate changes the additive codes: it needs source 'additive'")

    def signature(self, stage: str) -> str:
        d = asdict(self)
        for k in ("checkpoint_dir", "checkpoint_every", "resume", "until"):
            d.pop(k)
        if stage == "codes":
            for k in ("map_steps", "map_batch", "map_lr"):
                d.pop(k)
        if d["source"] == "additive":  # the default before the option existed: same runs, same signature
            d.pop("source")
        if not d["separate"]:  # likewise
            d.pop("separate")
            d.pop("separate_scale")
        else:
            d["separate_rows"] = "fixed"
        return json.dumps({"component": f"generator-{stage}", **d}, sort_keys=True)


class CodeModel(nn.Module):
    """Generator + encoder + the additive code embedding ``A`` ``[F, style_dim]``."""

    def __init__(self, generator: Generator, encoder: Encoder4Editing, a: torch.Tensor, source: str = "additive") -> None:
        super().__init__()
        self.generator, self.encoder, self.source = generator, encoder, source
        self.a = nn.Parameter(a.clone())

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """``[N, style_dim]`` W codes of the faces latents ``z`` name (``source``: the additive
        model, or the generator's own mapping, used as it is)."""
        if self.source == "mapping":
            with torch.no_grad():
                return self.generator.style(z)
        return additive_features(z).to(self.a) @ self.a

    def draw(self, w: torch.Tensor) -> torch.Tensor:
        return self.generator.synthesis(self.generator.to_wplus(w), noise="const")

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return encode_w(self.encoder, images)

    def losses(self, batch: RenderBatch, detail_weight: float = 1.0) -> dict[str, torch.Tensor]:
        w = self.codes(batch.z)
        out = self.draw(w)
        weights = None if batch.labels is None or detail_weight == 1.0 else detail_weights(batch.labels, detail_weight)
        l1 = weighted_l1(out, batch.images, weights)
        enc = F.mse_loss(self.encode(batch.images), w.detach())
        return {"l1": l1, "encoder": enc}


def fit_embedding(g: Generator, n: int, seed: int) -> tuple[torch.Tensor, float]:
    """Least-squares ``A`` with ``features(z) @ A ≈ g.style(z)`` on ``n`` latents (no rendering);
    returns it and the share of the mapping outputs' variance it explains."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + 99)
    z = torch.randn(n, g.style_dim, generator=gen)
    with torch.no_grad():
        w = torch.cat([g.style(z[i:i + 1024]) for i in range(0, n, 1024)]).double()
    x = additive_features(z).double()
    a = torch.linalg.solve(x.T @ x + 1e-3 * torch.eye(x.shape[1], dtype=torch.float64), x.T @ w)
    explained = 1.0 - float(((x @ a - w) ** 2).mean() / w.var(0).mean())
    return a.float(), explained


def code_spread(a: torch.Tensor) -> dict[str, float]:
    """Per parameter, how far apart ``A`` puts its values: the mean distance between the rows of a
    categorical parameter, the row norm of a continuous one (how much the code can tell the synthesis)."""
    from cfs_core.world import SPECS

    out: dict[str, float] = {}
    for name, cols in feature_slices().items():
        rows = a[cols]
        k = len(rows)
        out[name] = float(torch.cdist(rows, rows).sum() / max(k * k - k, 1)) if SPECS[name].choices else float(rows.norm())
    return out


def separate_codes(a: torch.Tensor, names: tuple[str, ...], scale: float, seed: int) -> torch.Tensor:
    """``A`` with the rows of ``names`` pulled apart: each value's row gets a seeded random offset of
    norm ``scale`` (Gaussian, centred over a categorical parameter's values before the scaling, so
    the average code moves little). The synthesis then learns those values from codes it can tell
    apart, as it did for hair, glasses and hats, whose rows the autoencoder had spread ~0.5-1 apart."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + 7)
    out = a.clone()
    slices = feature_slices()
    for name in names:
        cols = slices[name]
        offsets = torch.randn(cols.stop - cols.start, a.shape[1], generator=gen)
        if len(offsets) > 1:
            offsets = offsets - offsets.mean(0, keepdim=True)
        offsets = offsets / offsets.norm(dim=1, keepdim=True).clamp_min(1e-8) * scale
        out[cols] = out[cols] + offsets.to(out)
    return out


def _load_start(opts: CodeTrainOptions) -> tuple[Generator, E4E]:
    from cfs_core.nets.e4e import load_e4e
    from cfs_core.stylegan2 import load_generator

    if not opts.generator or not opts.encoder:
        raise InputError("the code stage starts from a generator and an encoder file (the autoencoder stage's outputs)")
    g = load_generator(opts.generator).generator.float()
    e4e = load_e4e(opts.encoder)
    if e4e.encoder.config.style_dim != g.style_dim or e4e.encoder.config.style_count != g.n_latent:
        raise InputError(f"{opts.encoder}: the encoder does not match the generator's W+ shape")
    return g, e4e


def train_codes(opts: CodeTrainOptions, progress: ProgressCallback = _ignore) -> tuple[Generator, E4E, dict[str, Any]]:
    """The code stage, then the mapping (module docstring); returns the generator
    (``latent_avg`` set), the encoder and a report for the model cards."""
    from cfs_core.training.loops import run_loop

    start = time.perf_counter()
    torch.manual_seed(opts.seed)
    g, e4e = _load_start(opts)
    fit: dict[str, float] = {}
    if opts.source == "mapping":  # no additive model: A is unused (and left out of the optimiser)
        a = torch.zeros(additive_features(torch.zeros(1, g.style_dim)).shape[1], g.style_dim)
    else:
        a, explained = fit_embedding(g, opts.fit_latents, opts.seed)
        fit["start_fit_r2"] = round(explained, 4)
        if opts.separate:
            a = separate_codes(a, opts.separate, opts.separate_scale, opts.seed)
    model = CodeModel(g, e4e.encoder.float(), a, opts.source).requires_grad_(True)
    if opts.separate:  # the separated rows stay where separate_codes put them (Adam never moves a zero-gradient row)
        keep, slices = torch.ones(len(a), 1), feature_slices()
        for name in opts.separate:
            keep[slices[name]] = 0.0
        model.a.register_hook(lambda grad: grad * keep.to(grad))
    model.generator.style.requires_grad_(False)
    frozen = ("generator.style.", "a") if opts.source == "mapping" else ("generator.style.",)
    params = [p for n, p in model.named_parameters() if not n.startswith(frozen)]
    optimizer = torch.optim.Adam(params, lr=opts.lr, betas=(0.9, 0.99))
    last: dict[str, float] = {}

    def loss_fn(m: nn.Module, batch: RenderBatch) -> torch.Tensor:
        parts = model.losses(batch, opts.detail_weight)
        last.update({k: float(v.detach()) for k, v in parts.items()})
        return parts["l1"] + opts.encoder_weight * parts["encoder"]

    def relay(event: ProgressEvent) -> None:
        progress(ProgressEvent(event.stage, event.step, event.total, values={**event.values, **last}))

    ckpt = f"{opts.checkpoint_dir}/codes" if opts.checkpoint_dir else None
    labels = opts.detail_weight != 1.0  # the label maps are only needed to weight the small parts

    def batch(k: int) -> RenderBatch:
        return render_batch(k, opts.batch, g.style_dim, g.size, opts.seed, 3, labels)

    result = run_loop(model, optimizer, batch,  # type: ignore[arg-type]
                      loss_fn, opts.steps, opts.lr, opts.signature("codes"), ckpt, opts.checkpoint_every, opts.resume,
                      warmup=min(100, opts.steps // 10), progress=relay, stage="codes", until=opts.until)
    report: dict[str, Any] = {"component": "generator+encoder", "stage": "codes",
                              "options": json.loads(opts.signature("both")), **fit,
                              "code_steps": result.step, "code_final_loss": round(result.final_loss, 5),
                              "code_images_seen": result.step * opts.batch}
    if result.step < opts.steps:  # cut by --until: no mapping stage yet
        report["wall_s"] = round(time.perf_counter() - start, 2)
        return g.eval(), e4e, report
    model.eval().requires_grad_(False)
    if opts.source == "mapping":  # the mapping was used as it is: nothing to refit
        return _finish(model, e4e, opts, report, start)
    trained_a = model.a.detach().clone()
    report["code_spread"] = {k: round(v, 3) for k, v in code_spread(trained_a).items()}
    map_opts = AutoencodeOptions(map_steps=opts.map_steps, map_batch=opts.map_batch, map_lr=opts.map_lr, seed=opts.seed,
                                 checkpoint_dir=f"{opts.checkpoint_dir}/codes" if opts.checkpoint_dir else None,
                                 checkpoint_every=opts.checkpoint_every, resume=opts.resume)
    report.update(train_mapping(_Wrapped(model), map_opts, progress, a=trained_a))
    return _finish(model, e4e, opts, report, start)


def _finish(model: CodeModel, e4e: E4E, opts: CodeTrainOptions, report: dict[str, Any],
            start: float) -> tuple[Generator, E4E, dict[str, Any]]:
    """The shipped pair: ``latent_avg`` of the final mapping, the encoder with the start's options."""
    g = model.generator.eval().requires_grad_(False)
    with torch.no_grad():
        g.latent_avg = g.mean_latent(4096, seed=opts.seed).reshape(-1)
    meta = {**e4e.opts, "component": "encoder", "trained_by": "cfs_core.training.codes", "w_code": True}
    out = E4E(model.encoder.eval().requires_grad_(False), None, None, meta)
    report["wall_s"] = round(time.perf_counter() - start, 2)
    return g, out, report


class _Wrapped(nn.Module):
    """What :func:`train_mapping` reads of a model when ``A`` is given: ``.generator``."""

    def __init__(self, model: CodeModel) -> None:
        super().__init__()
        self.generator = model.generator
