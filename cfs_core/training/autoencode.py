"""Demo generator and encoder trained together: an autoencoder, then the mapping by regression.

Regressing ``G(z)`` straight onto the renders (:mod:`cfs_core.training.generator`) teaches the
synthesis network the *mean* face first and learns the conditioning (which face ``z`` names) very
slowly: on a 2-core CPU, 1,200 steps of batch 16 still gave one blurred mean face for every
latent. An autoencoder learns the conditioning quickly because its code comes from the image.
So the demo generator is trained in two stages, with the ordinary cfs modules throughout:

1. **Autoencoder** (:func:`train_autoencoder`): photo render → e4e encoder
   (:class:`~cfs_core.nets.e4e.Encoder4Editing`) → one ``w`` (the mean of its W+ slots, so the
   code lives in W, as the mapping's output does) → ``G.synthesis`` (constant noise) → L1 to the
   render at full and half resolution. Both networks train; the synthesis may start from an
   earlier generator (``init``).
2. **Mapping** (:func:`train_mapping`): with synthesis and encoder frozen, an additive model of
   the codes (one vector per attribute value, one per continuous parameter) is fitted to the
   encoder's codes of rendered faces, ``E(render(params_from_z(z))) ≈ features(z) @ A``, and the
   mapping network regresses it on fresh latents, so ``G(z)`` draws (approximately) the face
   ``z`` names; the encoder is the synthesis' inversion by construction.

The encoder ships as the demo e4e (every slot the same ``w``: a W+ code with zero offsets).
Both stages use :func:`~cfs_core.training.loops.run_loop` (seeded, resumable, checkpointed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cfs_core.checkpoints import torch_load_safe
from cfs_core.errors import InputError
from cfs_core.methods import ProgressCallback, ProgressEvent
from cfs_core.nets.e4e import E4E, E4EConfig, Encoder4Editing
from cfs_core.stylegan2.generator import Generator
from cfs_core.training.generator import GeneratorOptions, params_from_z, render_targets_and_labels


def _ignore(event: ProgressEvent) -> None:
    """Default progress sink."""


@dataclass(frozen=True)
class AutoencodeOptions:
    """Settings of both stages (the generator's architecture comes from ``generator``)."""

    generator: GeneratorOptions = GeneratorOptions()
    init: str | None = None  # a generator run's checkpoint.pt or a generator .safetensors to start from
    ae_steps: int = 1500
    ae_batch: int = 16
    ae_lr: float = 2e-3
    map_pairs: int = 4096  # rendered faces the additive code model is fitted on
    map_steps: int = 10000
    map_batch: int = 512
    map_lr: float = 2e-3
    input_size: int = 64
    stem: int = 16
    widths: tuple[int, ...] = (16, 32, 64, 128)
    units: tuple[int, ...] = (1, 1, 2, 1)
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100
    resume: bool = True

    def encoder_config(self, g: Generator) -> E4EConfig:
        return E4EConfig(stem=self.stem, widths=tuple(self.widths), units=tuple(self.units), se_reduction=8,
                         input_size=self.input_size, style_count=g.n_latent, style_dim=g.style_dim)

    def signature(self, stage: str) -> str:
        """What determines ``stage``'s result (the autoencoder's does not depend on the mapping's options)."""
        d = asdict(self)
        for k in ("checkpoint_dir", "checkpoint_every", "resume"):
            d.pop(k)
        if stage == "autoencoder":
            for k in ("map_pairs", "map_steps", "map_batch", "map_lr"):
                d.pop(k)
        for k in ("checkpoint_dir", "checkpoint_every", "resume", "until", "extra"):
            d["generator"].pop(k, None)
        return json.dumps({"component": f"generator-{stage}", **d}, sort_keys=True, default=str)


def encode_w(encoder: Encoder4Editing, images: torch.Tensor) -> torch.Tensor:
    """``[B, D]`` W codes of images: the mean of the encoder's W+ slots (input resized to its size)."""
    size = encoder.config.input_size
    x = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return encoder(x).mean(dim=1)


class Autoencoder(nn.Module):
    """Encoder + generator; ``encode`` gives one ``w`` per image."""

    def __init__(self, encoder: Encoder4Editing, generator: Generator) -> None:
        super().__init__()
        self.encoder, self.generator = encoder, generator

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return encode_w(self.encoder, images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        w = self.encode(images)
        return self.generator.synthesis(self.generator.to_wplus(w), noise="const")


@dataclass
class RenderBatch:
    """Photo renders of the faces some latents name."""

    z: torch.Tensor
    images: torch.Tensor
    labels: torch.Tensor | None = None  # [N, H, W] world label ids, when asked for


def render_batch(step: int, batch: int, style_dim: int, size: int, seed: int, stream: int,
                 labels: bool = False) -> RenderBatch:
    """The batch of ``step`` of stream ``stream`` (a pure function of the arguments)."""
    gen = torch.Generator().manual_seed((seed * 1_000_003 + step) * 7 + stream)
    z = torch.randn(batch, style_dim, generator=gen)
    images, maps = render_targets_and_labels(params_from_z(z), size, labels=labels)
    return RenderBatch(z, images, maps)


def ae_loss(model: nn.Module, batch: RenderBatch) -> torch.Tensor:
    """L1 of the reconstruction at full and half resolution."""
    out = model(batch.images)
    return (out - batch.images).abs().mean() + (F.avg_pool2d(out, 2) - F.avg_pool2d(batch.images, 2)).abs().mean()


def _load_init(g: Generator, path: str) -> None:
    """Weights from a training checkpoint (``checkpoint.pt`` of a generator run) or a generator file."""
    if path.endswith(".safetensors"):
        from cfs_core.stylegan2 import load_generator

        sd: Any = load_generator(path).generator.state_dict()
    else:
        state = torch_load_safe(path)
        sd = state.get("model", state) if isinstance(state, dict) else state
    if not isinstance(sd, dict):
        raise InputError(f"{path}: no generator state in this file")
    missing, unexpected = g.load_state_dict(sd, strict=False)
    if unexpected or [k for k in missing if not k.startswith("style.")]:
        raise InputError(f"{path}: not a generator of this architecture")


def train_autoencoder(opts: AutoencodeOptions, progress: ProgressCallback = _ignore) -> Autoencoder:
    """Stage 1 (module docstring)."""
    from cfs_core.training.loops import run_loop

    torch.manual_seed(opts.seed)
    g = Generator(opts.generator.config())
    if opts.init:
        _load_init(g, opts.init)
    model = Autoencoder(Encoder4Editing(opts.encoder_config(g)), g)
    params = [p for n, p in model.named_parameters() if not n.startswith("generator.style.")]
    optimizer = torch.optim.Adam(params, lr=opts.ae_lr, betas=(0.9, 0.99))
    gcfg = opts.generator
    ckpt = f"{opts.checkpoint_dir}/autoencoder" if opts.checkpoint_dir else None
    run_loop(model, optimizer, lambda k: render_batch(k, opts.ae_batch, gcfg.style_dim, gcfg.size, opts.seed, 0),  # type: ignore[arg-type,return-value]
             ae_loss, opts.ae_steps, opts.ae_lr, opts.signature("autoencoder"), ckpt, opts.checkpoint_every,
             opts.resume, warmup=min(50, opts.ae_steps // 10), progress=progress, stage="autoencoder")
    return model.eval()


def additive_features(z: torch.Tensor) -> torch.Tensor:
    """``[N, F]`` features of the faces latents name (vectorised :func:`params_from_z`): a constant,
    a one-hot per categorical parameter (facial hair only for a masculine presentation) and each
    continuous parameter's value."""
    from cfs_core.world import SPECS
    from cfs_core.training.generator import PARAM_NAMES, uniforms_from_z

    u = torch.from_numpy(uniforms_from_z(z)).float()
    cols: list[torch.Tensor] = [torch.ones(len(z), 1)]
    masculine: torch.Tensor | None = None
    for i, name in enumerate(PARAM_NAMES):
        spec = SPECS[name]
        if spec.choices:
            w = torch.tensor(spec.weights or [1.0] * len(spec.choices), dtype=torch.float64)
            cum = (torch.cumsum(w / w.sum(), 0)).float()
            k = torch.searchsorted(cum, u[:, i].contiguous(), right=True).clamp(max=len(spec.choices) - 1)
            if name == "presentation":
                masculine = k == spec.choices.index("masculine")
            if name == "facial_hair" and masculine is not None:
                k = torch.where(masculine, k, torch.zeros_like(k))
            cols.append(F.one_hot(k, len(spec.choices)).float())
        else:
            low = spec.low if spec.sample_low is None else spec.sample_low
            high = spec.high if spec.sample_high is None else spec.sample_high
            cols.append((low + u[:, i] * (high - low)).unsqueeze(1) / max(abs(low), abs(high)))
    return torch.cat(cols, dim=1)


def feature_slices() -> dict[str, slice]:
    """The columns of :func:`additive_features` each parameter owns (column 0 is the constant): its
    one-hot block, or its one value column."""
    from cfs_core.world import SPECS

    out, i = {}, 1
    for name, spec in SPECS.items():
        k = len(spec.choices) if spec.choices else 1
        out[name] = slice(i, i + k)
        i += k
    return out


def fit_additive_codes(model: Autoencoder, opts: AutoencodeOptions, progress: ProgressCallback = _ignore) -> tuple[torch.Tensor, float]:
    """Least-squares (ridge 1e-2) additive model ``E(render(face)) ≈ features(z) @ A`` on
    ``map_pairs`` renders; returns ``A`` and the share of the codes' variance it explains on a
    held-out eighth."""
    gcfg = opts.generator
    zs, codes = [], []
    for k in range(0, opts.map_pairs, 128):
        b = render_batch(k, min(128, opts.map_pairs - k), gcfg.style_dim, gcfg.size, opts.seed, 1)
        with torch.no_grad():
            codes.append(model.encode(b.images))
        zs.append(b.z)
        progress(ProgressEvent("mapping-pairs", min(opts.map_pairs, k + 128), opts.map_pairs))
    x, t = additive_features(torch.cat(zs)).double(), torch.cat(codes).double()
    cut = len(x) - len(x) // 8
    eye = torch.eye(x.shape[1], dtype=torch.float64)
    a = torch.linalg.solve(x[:cut].T @ x[:cut] + 1e-2 * eye, x[:cut].T @ t[:cut])
    held = float(((x[cut:] @ a - t[cut:]) ** 2).mean() / t[cut:].var(0).mean())
    return a.float(), 1.0 - held


@dataclass
class LatentOnly:
    """Latents of one mapping step."""

    z: torch.Tensor


class _Mapping(nn.Module):
    def __init__(self, model: Autoencoder, a: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("a", a)

    def forward(self, batch: LatentOnly) -> torch.Tensor:
        target = additive_features(batch.z) @ self.a
        return F.mse_loss(self.model.generator.style(batch.z), target)


def train_mapping(model: Autoencoder, opts: AutoencodeOptions, progress: ProgressCallback = _ignore,
                  a: torch.Tensor | None = None) -> dict[str, float]:
    """Stage 2 (module docstring): only ``generator.style`` changes. Regressing the codes of
    rendered faces directly did not generalise (the held-out error stayed at the codes' variance
    after 600 steps), so the target is the additive model of :func:`fit_additive_codes`, which is
    a closed-form function of ``z``: every step draws fresh latents at no rendering cost. With ``a``
    given, that model is used as it is (no fitting; ``additive_r2`` is reported as 1)."""
    from cfs_core.training.loops import run_loop

    model.eval().requires_grad_(False)
    signature = opts.signature("mapping")
    if a is None:
        a, explained = fit_additive_codes(model, opts, progress)
    else:  # a given code model (the code stage's trained embedding): part of what the run depends on
        import hashlib

        explained = 1.0
        signature += hashlib.sha256(a.detach().float().contiguous().numpy().tobytes()).hexdigest()
    mapping = model.generator.style.requires_grad_(True)
    wrapper = _Mapping(model, a)
    lr_scale = 1.0 / model.generator.config.lr_mlp  # the mapping's weights are stored / lr_mlp (equalised lr)
    optimizer = torch.optim.Adam(mapping.parameters(), lr=opts.map_lr * lr_scale, betas=(0.9, 0.99))

    def batch(k: int) -> LatentOnly:
        g = torch.Generator().manual_seed((opts.seed * 1_000_003 + k) * 7 + 2)
        return LatentOnly(torch.randn(opts.map_batch, model.generator.style_dim, generator=g))

    ckpt = f"{opts.checkpoint_dir}/mapping" if opts.checkpoint_dir else None
    result = run_loop(wrapper, optimizer, batch, lambda m, b: m(b), opts.map_steps, opts.map_lr * lr_scale,  # type: ignore[arg-type,return-value]
                      signature, ckpt, opts.checkpoint_every, opts.resume,
                      warmup=min(50, opts.map_steps // 10), progress=progress, stage="mapping")
    model.eval().requires_grad_(False)
    return {"additive_r2": round(explained, 4), "mapping_final_mse": round(result.final_loss, 5)}


def train_generator_and_encoder(opts: AutoencodeOptions,
                                progress: ProgressCallback = _ignore) -> tuple[Generator, E4E, dict[str, Any]]:
    """Both stages; returns the generator (``latent_avg`` set), the e4e encoder and a report."""
    import time

    start = time.perf_counter()
    model = train_autoencoder(opts, progress)
    mapping_figures = train_mapping(model, opts, progress)
    g = model.generator.eval().requires_grad_(False)
    with torch.no_grad():
        g.latent_avg = g.mean_latent(4096, seed=opts.seed).reshape(-1)
    meta = {"component": "encoder", "trained_by": "cfs_core.training.autoencode", "w_code": True}
    e4e = E4E(model.encoder.eval().requires_grad_(False), None, None, meta)
    report = {"component": "generator+encoder", "options": json.loads(opts.signature("both")),
              "images_seen": opts.ae_steps * opts.ae_batch + opts.map_pairs, **mapping_figures,
              "wall_s": round(time.perf_counter() - start, 2)}
    return g, e4e, report
