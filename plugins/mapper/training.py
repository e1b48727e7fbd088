"""Training a StyleCLIP latent mapper for one prompt: resumable, cached, deterministic.

Spec ``styleclip_stylegan2.md`` §6 (training, ``mapper/training/coach.py``), §2 (CLIP), §3 (ID
loss), §9 items 5, 7, 8. One step, on a batch of W+ codes ``w``::

    x = G(w)                          (no gradient, stored noise: randomize_noise=False)
    ŵ = w + 0.1 · M(w);  x̂ = G(ŵ)     (0.1 is fixed in training; ``strength`` is for inference)
    L = λ_CLIP · clip-target(x̂, t) + λ_ID · identity(x̂, x) + λ_L2 · latent-l2-mean(ŵ, w)

with the registered losses composed through ``ctx.compose_losses`` (the target ``t`` is the
text's CLIP embedding, encoded once, without templates, as StyleCLIP's ``clip.tokenize``), and a
Ranger or Adam step on the mapper's parameters only (the generator is frozen for the run).

**Data.** Given latents (``cfs train mapper --latents``): shuffled each epoch, drop-last batches,
as the reference's DataLoader. Otherwise (the reference reads e4e inversions of CelebA-HQ; its
random-latent fallback is broken, §6): each step draws ``batch_size`` fresh ψ-truncated samples of
the generator. Either way the batch of step ``t`` depends only on (seed, ``t``) — seeds drawn from
``ctx.rng()`` — so a resumed run sees the batches an uninterrupted one would.

**Cache and resume** (``ctx.artifacts()``): the key holds everything that determines
the mapper — the text digest, fingerprints of the generator, CLIP and (when weighted) identity
net, the seed, the training data, the training options. ``mapper-train/<key>`` is the training
state (mapper + optimiser state + step), saved atomically every ``save_every`` steps, on Ctrl-C
between steps, and at the end; ``mapper/<key+steps>`` is the finished mapper (cfs native mapper
file, loadable with ``-o checkpoint=``). A finished mapper is reused; an interrupted run goes on
from its last state; asking for more steps than a previous run continues it (there is no
step-dependent schedule, so the result equals one longer run).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cfs_core.artifacts import ArtifactCache, artifact_key, fingerprint, tensor_digest
from cfs_core.errors import InputError, ModelLoadError
from cfs_core.guidance import Guidance, text_digest
from cfs_core.losses import LossInputs
from cfs_core.methods import EditContext
from cfs_core.nets.mapper import LevelsMapper, LevelsMapperConfig, build_mapper, save_mapper
from cfs_core.nets.protocols import CLIP, IDENTITY
from cfs_plugins.mapper.options import MapperOptions
from cfs_plugins.mapper.ranger import Ranger

TRAIN_STRENGTH = 0.1  # StyleCLIP coach: w_hat = w + 0.1 * mapper(w) (§6)
FINAL, STATE = "mapper", "mapper-train"
VERSION = 1  # bump when training changes what a key produces


def mapper_config(options: MapperOptions, style_dim: int) -> LevelsMapperConfig:
    """The architecture to train: StyleCLIP's LevelsMapper at the generator's style width."""
    return LevelsMapperConfig(latent_dim=style_dim, no_coarse_mapper=options.no_coarse_mapper,
                              no_medium_mapper=options.no_medium_mapper, no_fine_mapper=options.no_fine_mapper)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients into ``module``'s weights for the block; the flags are restored after."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class TrainingData:
    """The training batch of each step, a function of (seed, step) only."""

    def __init__(self, ctx: EditContext, latents: torch.Tensor | None, batch_size: int, truncation: float, seed: int) -> None:
        gen = self.gen = ctx.generator
        self.device, self.seed, self.truncation = ctx.device, seed, truncation
        self.pool: torch.Tensor | None = None
        self.batch_size = batch_size
        self._center: torch.Tensor | None = None
        if latents is not None and latents.shape[0] > 0:
            pool = latents.detach().to(ctx.device, torch.float32)
            self.pool = gen.to_wplus(pool).clone()  # [N, L, D]; never the caller's tensor
            self.batch_size = min(batch_size, self.pool.shape[0])

    def describe(self) -> dict[str, Any]:
        """JSON-able identity of the data (part of the cache key)."""
        if self.pool is None:
            return {"source": "samples", "truncation": self.truncation}
        return {"source": "latents", "n": int(self.pool.shape[0]), "sha256": tensor_digest(self.pool)}

    @torch.no_grad()
    def batch(self, step: int) -> torch.Tensor:
        """W+ ``[batch_size, L, D]`` of step ``step`` (0-based)."""
        gen, bs = self.gen, self.batch_size
        if self.pool is None:
            z = torch.randn(bs, gen.style_dim, generator=torch.Generator().manual_seed(self.seed + step)).to(self.device)
            w = gen.mapping(z)
            if self.truncation != 1.0:
                if self._center is None:
                    self._center = gen.truncation_center().to(self.device)
                w = gen.truncate(w, self.truncation, self._center)
            return gen.to_wplus(w)
        n = self.pool.shape[0]
        epoch, i = divmod(step, n // bs)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + epoch))
        return self.pool[perm[i * bs:(i + 1) * bs].to(self.device)]


@dataclass
class Trained:
    """A mapper ready for inference and the JSON-able facts of how it was obtained."""

    mapper: LevelsMapper
    facts: dict[str, Any]


def _check_trainable(ctx: EditContext, options: MapperOptions, config: LevelsMapperConfig) -> dict[str, float]:
    weights = options.loss_weights()
    if not any(weights.values()):
        raise InputError("mapper: clip_lambda, id_lambda and l2_lambda are all 0, nothing to train")
    if weights["identity"] and IDENTITY not in ctx.resources.available():
        raise InputError("mapper training needs an identity net for id_lambda > 0 "
                         "(give one with --identity, or train without it: -o id_lambda=0)")
    lo, hi = (min(b, ctx.generator.n_latent) for b in config.boundaries)
    sizes = {"coarse": lo, "medium": hi - lo, "fine": ctx.generator.n_latent - hi}
    if not any(sizes[lv] for lv in sizes if config.enabled(lv)):
        raise InputError(f"mapper: the enabled levels have no W+ entries in a generator with {ctx.generator.n_latent} "
                         f"(coarse {sizes['coarse']}, medium {sizes['medium']}, fine {sizes['fine']})")
    return weights


def _fresh(config: LevelsMapperConfig, options: MapperOptions, init_seed: int, device: torch.device,
           ) -> tuple[LevelsMapper, torch.optim.Optimizer]:
    """A newly initialised mapper (reference init: N(0,1)/lr_mul weights, zero biases) and optimiser."""
    with torch.random.fork_rng(devices=[]):  # the init draws from torch's global RNG: isolate and seed it
        torch.manual_seed(init_seed)
        mapper = LevelsMapper(config)
    mapper = mapper.to(device).train()
    params = list(mapper.parameters())
    optimizer: torch.optim.Optimizer
    if options.optimizer == "ranger":
        optimizer = Ranger(params, lr=options.lr)
    else:
        optimizer = torch.optim.Adam(params, lr=options.lr)
    return mapper, optimizer


def save_state(cache: ArtifactCache, key: str, mapper: LevelsMapper, optimizer: torch.optim.Optimizer, step: int,
               meta: dict[str, Any]) -> None:
    """Write the training state (mapper, optimiser state, step) atomically."""
    tensors = {f"mapper.{k}": v for k, v in mapper.state_dict().items()}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in optimizer.state_dict()["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    cache.save(STATE, key, tensors, {**meta, "step": step, "optim_scalars": scalars})


def load_state(cache: ArtifactCache, key: str, mapper: LevelsMapper, optimizer: torch.optim.Optimizer) -> int | None:
    """Restore a saved training state into fresh objects; its step, or None (absent/unusable)."""
    found = cache.load(STATE, key)
    if found is None:
        return None
    tensors, meta = found
    try:
        mapper.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("mapper.")}, strict=True)
        state: dict[int, dict[str, Any]] = {}
        for name, value in tensors.items():
            if name.startswith("optim."):
                _, index, field = name.split(".", 2)
                state.setdefault(int(index), {})[field] = value
        for index, values in meta["optim_scalars"].items():
            state.setdefault(int(index), {}).update(values)
        packed = optimizer.state_dict()
        packed["state"] = state
        optimizer.load_state_dict(packed)
        return int(meta["step"])
    except (KeyError, RuntimeError, ValueError, TypeError):
        return None


def obtain_mapper(ctx: EditContext, guidance: Guidance, options: MapperOptions,
                  latents: torch.Tensor | None = None) -> Trained:
    """The mapper for ``guidance.text`` under ``options``: from the cache, resumed, or trained."""
    text = guidance.text
    if not text:
        raise InputError("method 'mapper' trains one mapper per prompt: give a text (--text)")
    gen = ctx.generator
    config = mapper_config(options, gen.style_dim)
    weights = _check_trainable(ctx, options, config)
    init_seed, data_seed = (int(s) for s in torch.randint(0, 2**62, (2,), generator=ctx.rng()))
    data = TrainingData(ctx, latents, options.batch_size, options.truncation, data_seed)
    parts = {
        "version": VERSION, "text": guidance.digest or text_digest(text), "seed": ctx.seed, "data": data.describe(),
        "generator": fingerprint(gen), "n_latent": gen.n_latent,
        "clip": ctx.resources.digest(CLIP) if weights["clip-target"] else None,
        "identity": ctx.resources.digest(IDENTITY) if weights["identity"] else None,
        "options": options.training_key(),
    }
    state_key = artifact_key(STATE, **parts)
    final_key = artifact_key(FINAL, **parts, steps=options.steps)
    cache = ctx.artifacts()
    final_path = cache.path(FINAL, final_key)
    about = {"text": text, "steps": options.steps, "data": data.describe(), "optimizer": options.optimizer,
             "levels": [lv for lv in ("coarse", "medium", "fine") if config.enabled(lv)]}

    found = cache.load(FINAL, final_key)
    if found is not None:
        try:
            mapper = build_mapper(found[0], str(final_path), config=config).to(ctx.device)
            ctx.report("train", options.steps, options.steps, "cached mapper")
            return Trained(mapper, {**about, "cached": True, "path": str(final_path), "trained_steps": 0,
                                    "losses": found[1].get("losses", {})})
        except ModelLoadError:
            pass  # an unreadable file: train again (and overwrite it)

    mapper, optimizer = _fresh(config, options, init_seed, ctx.device)
    start = load_state(cache, state_key, mapper, optimizer)
    if start is None or start > options.steps:
        mapper, optimizer = _fresh(config, options, init_seed, ctx.device)
        start = 0
    composed = ctx.compose_losses(weights, needed_by="mapper training")
    target = ctx.resources.get(CLIP).encode_text([text], templates=False).detach() if weights["clip-target"] else None
    meta = {"text": text, "key": state_key, "config": config.to_dict()}
    t0 = time.perf_counter()
    last = _run(ctx, mapper, optimizer, data, composed, guidance, target, start, options, cache, state_key, meta)
    seconds = round(time.perf_counter() - t0, 3)

    mapper.eval().requires_grad_(False)
    facts = {**about, "cached": False, "path": str(final_path) if final_path else None,
             "trained_steps": options.steps - start, "resumed_from": start or None, "seconds": seconds, "losses": last}
    if final_path is not None:
        save_mapper(final_path, mapper, extra_metadata={"cfs": json.dumps({**facts, "key": final_key}, sort_keys=True)})
    return Trained(mapper, facts)


def _run(ctx: EditContext, mapper: LevelsMapper, optimizer: torch.optim.Optimizer, data: TrainingData, composed: Any,
         guidance: Guidance, target: torch.Tensor | None, start: int, options: MapperOptions, cache: ArtifactCache,
         key: str, meta: dict[str, Any]) -> dict[str, float]:
    """Steps ``start`` … ``options.steps − 1``; returns the last step's losses."""
    gen, total = ctx.generator, options.steps
    extras = {"clip.target": target} if target is not None else {}
    done = saved = start
    updating = False
    last: dict[str, float] = {}
    ctx.report("train", start, total, f"resumed at step {start}" if start else "")
    try:
        with frozen(gen):
            for step in range(start, total):
                w = data.batch(step)
                with torch.no_grad():
                    x = gen.synthesis(w, noise="const")
                w_hat = w + TRAIN_STRENGTH * mapper(w)
                x_hat = gen.synthesis(w_hat, noise="const")
                inputs = LossInputs(images=x_hat, source_images=x, latents=w_hat, source_latents=w,
                                    guidance=guidance, extras=dict(extras))
                loss, parts = composed(inputs)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                updating = True  # between here and the end of step() the state is half-updated
                optimizer.step()
                updating = False
                done = step + 1
                last = {"loss": float(loss.detach()), **parts}
                if done % options.save_every == 0 or done == total:
                    save_state(cache, key, mapper, optimizer, done, meta)
                    saved = done
                ctx.report("train", done, total, "", **last)
    except KeyboardInterrupt:
        if not updating and done > saved:  # a consistent state: keep the progress made so far
            save_state(cache, key, mapper, optimizer, done, meta)
        raise
    return last
