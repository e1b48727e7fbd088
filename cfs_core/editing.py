"""The editing engine: inputs to W+, a method run with timings, before/after strips, manifests.

Shared by ``cfs edit``, comparisons and benchmarks, so every path edits the same way:

* :func:`images_to_tensor` — uint8 RGB images → the generator's resolution in [-1, 1];
* :func:`invert` — images → W+ through the ``"encoder"`` resource;
* :func:`run_method` — validate guidance and options, run ``edit`` and time it;
* :func:`strip` — a labelled row of images (source, reconstruction, guidance, edits);
* :func:`environment` / :func:`edit_manifest` — what produced an output, for ``manifest.json``.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from cfs_core.errors import InputError
from cfs_core.guidance import Guidance
from cfs_core.imageio import from_uint8
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, MethodOptions
from cfs_core.nets.protocols import ENCODER


def images_to_tensor(images: Sequence[np.ndarray], size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 RGB images → ``[N, 3, size, size]`` in [-1, 1] (centre-cropped to square, Lanczos)."""
    out = []
    for array in images:
        img = Image.fromarray(array)
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side))
        if side != size:
            img = img.resize((size, size), Image.Resampling.LANCZOS)
        out.append(np.asarray(img.convert("RGB")))
    return from_uint8(np.stack(out)).to(device)


def invert(ctx: EditContext, images: torch.Tensor) -> torch.Tensor:
    """Images ``[N, 3, H, W]`` in [-1, 1] → W+ of ``ctx.generator`` through the encoder resource."""
    encoder = ctx.resources.get(ENCODER)
    with torch.no_grad():
        wplus = encoder.invert(images.to(ctx.device))
    gen = ctx.generator
    if tuple(wplus.shape[1:]) != (gen.n_latent, gen.style_dim):
        raise InputError(f"the encoder gives W+ {tuple(wplus.shape[1:])} but the generator needs "
                         f"({gen.n_latent}, {gen.style_dim}): use an encoder made for this generator")
    return wplus


def render(ctx: EditContext, wplus: torch.Tensor) -> torch.Tensor:
    """The generator's image of W+ codes (stored noise), no gradients."""
    with torch.no_grad():
        return ctx.generator.synthesis(wplus.to(ctx.device), noise="const")


def with_strength(method: type[EditingMethod], options: MethodOptions, strength: float | None) -> MethodOptions:
    """``options`` with the method's strength option set (error if the method has none)."""
    if strength is None:
        return options
    if method.strength_option is None:
        raise InputError(f"method '{method.method_id}' has no strength option (--strength/--sweep do not apply)")
    return method.parse_options({**options.model_dump(), method.strength_option: strength})


@dataclass
class TimedResult:
    """An :class:`EditResult` with the wall time of ``edit``."""

    result: EditResult
    seconds: float
    options: MethodOptions
    extra: dict[str, Any] = field(default_factory=dict)


def run_method(method: type[EditingMethod], ctx: EditContext, latents: torch.Tensor, guidance: Guidance,
               options: MethodOptions) -> TimedResult:
    """Check the guidance kind, run the method's ``edit`` on ``latents`` and time it."""
    method.check_guidance(guidance.kind)
    start = time.perf_counter()
    result = method().edit(ctx, EditRequest(latents.to(ctx.device), guidance, options))
    return TimedResult(result, time.perf_counter() - start, options)


def strip(images: Sequence[np.ndarray], labels: Sequence[str], height: int = 256) -> np.ndarray:
    """A labelled horizontal strip of uint8 RGB images, each scaled to ``height``."""
    label_h, pad = 18, 4
    tiles = [Image.fromarray(a).convert("RGB").resize((height, height), Image.Resampling.LANCZOS) for a in images]
    canvas = Image.new("RGB", (len(tiles) * (height + pad) + pad, height + label_h + 2 * pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        x = pad + i * (height + pad)
        canvas.paste(tile, (x, pad + label_h))
        draw.text((x + 2, pad + 2), label[: height // 6], fill=(20, 20, 20))
    return np.asarray(canvas)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def environment(device: torch.device | str) -> dict[str, Any]:
    """Package versions and the device, for manifests."""
    versions = {name: _version(dist) for name, dist in
                (("cfs", "cfs-faceshop"), ("torch", "torch"), ("open_clip", "open_clip_torch"), ("numpy", "numpy"),
                 ("pillow", "pillow"))}
    return {"python": platform.python_version(), "device": str(device), "versions": versions}


def edit_manifest(
    method: type[EditingMethod], timed: Sequence[TimedResult], guidance: Guidance, seed: int,
    models: Mapping[str, Any], inputs: Mapping[str, Any], outputs: Mapping[str, Any], device: torch.device | str,
    timings: Mapping[str, float],
) -> dict[str, Any]:
    """Everything needed to know (and redo) what produced an edit."""
    return {
        "method": method.method_id,
        "plugin_description": method.description,
        "runs": [{"options": t.options.model_dump(mode="json"), "seconds": round(t.seconds, 4),
                  "info": t.result.info, **t.extra} for t in timed],
        "guidance": guidance.describe(),
        "seed": seed,
        "models": dict(models),
        "input": dict(inputs),
        "outputs": dict(outputs),
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "environment": environment(device),
    }
