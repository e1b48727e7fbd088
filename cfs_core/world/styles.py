"""Render faces: the three styles (photo, clipart, sketch) and the label map.

* photo: shaded colours, soft shadows and texture (see :mod:`cfs_core.world.photo`);
* clipart: flat colours with bold ink contours;
* sketch: jittered ink contours on white, each part hiding what it covers, no fill.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from cfs_core.errors import InputError
from cfs_core.world import photo
from cfs_core.world.build import build_scene
from cfs_core.world.geometry import Points
from cfs_core.world.raster import (
    SUPERSAMPLE,
    line_width,
    paint,
    scene_labels,
    stroke,
    xy,
)
from cfs_core.world.scene import Primitive, Scene
from cfs_core.world.schema import FaceParams

STYLES: tuple[str, ...] = ("photo", "clipart", "sketch")
MIN_SIZE, MAX_SIZE = 64, 1024
_PENCIL = 0.0075  # sketch stroke width
_JITTER = 0.0032  # sketch hand-drawn wobble amplitude


def check_size(size: int) -> int:
    """Validate an output size (pixels, square)."""
    if not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise InputError(f"size must be an integer from {MIN_SIZE} to {MAX_SIZE}, got {size!r}")
    return size


def check_style(style: str) -> str:
    """Validate a style name."""
    if style not in STYLES:
        raise InputError(f"unknown style {style!r}; allowed: {', '.join(STYLES)}")
    return style


def parse_styles(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of styles such as ``"photo,sketch"`` (validated, no repeats)."""
    styles = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not styles:
        raise InputError(f"no style given; allowed: {', '.join(STYLES)}")
    return tuple(check_style(style) for style in styles)


def render(params: FaceParams, style: str = "photo", size: int = 128, seed: int = 0) -> np.ndarray:
    """Render a face as an (size, size, 3) uint8 RGB array; same inputs give identical output.

    ``seed`` drives only the photo texture and the sketch jitter; the face is ``params``.
    """
    return render_scene(build_scene(params), style, size, seed)


def render_labels(params: FaceParams, size: int = 128) -> np.ndarray:
    """The (size, size) uint8 label map of a face (CelebAMask-HQ classes, see ``LABEL_NAMES``)."""
    return scene_labels(build_scene(params), check_size(size))


def render_photo_and_labels(scene: Scene, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The photo render of a built scene and its label map, computed once for both."""
    labels = scene_labels(scene, check_size(size))
    return photo.render_photo(scene, size, seed, labels), labels


def render_scene(scene: Scene, style: str, size: int, seed: int = 0) -> np.ndarray:
    """Render an already built scene in one style (see :func:`render`)."""
    check_style(style)
    check_size(size)
    if style == "photo":
        return render_photo_and_labels(scene, size, seed)[0]
    if style == "clipart":
        return _render_clipart(scene, size)
    return _render_sketch(scene, size, seed)


def _render_clipart(scene: Scene, size: int) -> np.ndarray:
    n = size * SUPERSAMPLE
    canvas = Image.new("RGB", (n, n), scene.background)
    paint(scene, canvas, with_outlines=True)
    return np.asarray(canvas.reduce(SUPERSAMPLE))


def _jitter(prims: list[Primitive], rng: np.random.Generator) -> list[Points]:
    """Wobble every primitive's outline smoothly, as a hand would (one vectorised pass).

    Each outline gets three sine waves along its length (periodic around closed shapes), with
    random phases; short lines wobble less than long contours.
    """
    counts = np.array([len(p.points) for p in prims])
    points = np.concatenate([p.points for p in prims])
    owner = np.repeat(np.arange(len(prims)), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    closed = np.array([p.kind != "line" for p in prims])
    period = np.repeat(np.where(closed, counts, np.maximum(counts - 1, 1)), counts)
    s = (np.arange(len(points)) - first) / period
    starts = np.cumsum(counts) - counts
    extent = np.maximum.reduceat(points, starts) - np.minimum.reduceat(points, starts)
    scale = np.minimum(1.0, extent.max(axis=1) / 0.2)
    freq = np.array([1.0, 2.0, 3.0])
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(len(prims), 2, 3))
    amp = _JITTER / freq * rng.uniform(0.5, 1.0, size=(len(prims), 2, 3)) * scale[:, None, None]
    waves = np.sin(2.0 * np.pi * freq * s[:, None, None] + phase[owner])  # (points, 2 axes, 3)
    moved = points + (amp[owner] * waves).sum(axis=2)
    return np.split(moved, starts[1:])


def _render_sketch(scene: Scene, size: int, seed: int) -> np.ndarray:
    """Ink contours on white: each fill paints white (hiding what it covers) then its contour.

    Contours are drawn twice with two different wobbles (the second lighter), as a hand does.
    """
    n = size * SUPERSAMPLE
    canvas = Image.new("L", (n, n), 255)
    draw = ImageDraw.Draw(canvas)
    rng = np.random.default_rng(seed)
    prims = [p for p in scene.primitives if (p.alpha >= 0.5 if p.kind == "fill" else p.outline > 0.0)]
    pencil = max(1, round(n * _PENCIL))
    for prim, first, second in zip(prims, _jitter(prims, rng), _jitter(prims, rng), strict=True):
        coords = xy(first, n)
        closed = prim.kind != "line"
        if prim.kind == "fill":
            draw.polygon(coords, fill=0 if prim.solid else 255)
            if prim.outline <= 0.0:
                continue
            weight = max(1, round(pencil * min(1.0, prim.outline * 1.5)))
        else:
            weight = min(pencil, line_width(prim, n))
        stroke(draw, coords, 0, weight, closed)
        if prim.kind == "fill" and weight > 1:
            stroke(draw, xy(second, n), 110, weight - 1, closed)
    gray = np.asarray(canvas.reduce(SUPERSAMPLE))
    return np.repeat(gray[:, :, None], 3, axis=2)
