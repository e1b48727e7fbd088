"""Shared rasterisation passes over a scene, with Pillow's ImageDraw.

Colour passes draw at :data:`SUPERSAMPLE` times the output size and are reduced afterwards
(anti-aliasing); the label pass draws at the output size without anti-aliasing, so that every
pixel holds exactly one class. All passes draw the same primitives in the same order.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from cfs_core.world import colors
from cfs_core.world.geometry import Points
from cfs_core.world.scene import Primitive, Scene

SUPERSAMPLE = 2
OUTLINE = 0.011  # clipart contour width, as a fraction of the image size


def xy(points: Points, scale: float) -> list[float]:
    """Pixel coordinates for ImageDraw (a flat list) of normalised points on a ``scale`` canvas."""
    return (points * scale).ravel().tolist()


def line_width(prim: Primitive, scale: float) -> int:
    """The width in pixels of a line or loop primitive on a ``scale`` canvas (at least 1)."""
    return max(1, round(prim.width * scale))


Ink = int | tuple[int, ...]  # an ImageDraw fill: a grey level or class id, or an RGB(A) colour


def stroke(draw: ImageDraw.ImageDraw, coords: list[float], fill: Ink, width: int, closed: bool) -> None:
    """Draw a polyline (closed if asked); wide lines get round joints."""
    if closed:
        coords = coords + coords[:2]
    draw.line(coords, fill=fill, width=width, joint="curve" if width > 4 else None)


def paint(scene: Scene, canvas: Image.Image, with_outlines: bool) -> None:
    """Paint the scene's colours onto an RGB canvas; ``with_outlines`` adds ink contours (clipart)."""
    n = canvas.size[0]
    opaque, blend = ImageDraw.Draw(canvas), ImageDraw.Draw(canvas, "RGBA")
    outline = max(2, round(n * OUTLINE))
    for prim in scene.primitives:
        coords = xy(prim.points, n)
        draw = opaque if prim.alpha >= 1.0 else blend
        fill = prim.color if prim.alpha >= 1.0 else (*prim.color, round(255 * prim.alpha))
        if prim.kind == "fill":
            draw.polygon(coords, fill=fill)
            if with_outlines and prim.outline > 0.0 and prim.alpha >= 0.5:
                stroke(opaque, coords, colors.INK, max(1, round(outline * prim.outline)), closed=True)
        else:
            stroke(draw, coords, fill, line_width(prim, n), closed=prim.kind == "loop")


def paint_values(scene: Scene, size: int, value_of: str) -> Image.Image:
    """An "L" image of one scalar per primitive (``label`` or ``height``), in painter's order.

    Primitives whose value is None leave what lies below. Heights (0..1) are stored as 0..255.
    """
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for prim in scene.primitives:
        value = getattr(prim, value_of)
        if value is None:
            continue
        fill = round(255 * value) if value_of == "height" else value
        coords = xy(prim.points, size)
        if prim.kind == "fill":
            draw.polygon(coords, fill=fill)
        else:
            stroke(draw, coords, fill, line_width(prim, size), closed=prim.kind == "loop")
    return canvas


def scene_labels(scene: Scene, size: int) -> np.ndarray:
    """The (size, size) uint8 label map: the label of the topmost labelled primitive per pixel."""
    return np.asarray(paint_values(scene, size, "label"))
