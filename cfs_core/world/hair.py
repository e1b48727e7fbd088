"""Hair and facial hair: the part behind the head, the part over the forehead, beard and moustache.

A hair style has a back part (drawn before the body and head, seen around them) and a front part
(drawn over the forehead). Under a hat, styles that stand above the head (bun, mohawk) are not
drawn; the hat covers the top of the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cfs_core.world import colors
from cfs_core.world import labels as lb
from cfs_core.world.colors import RGB
from cfs_core.world.face import mouth_curves
from cfs_core.world.geometry import (
    Points,
    arc,
    bezier,
    ellipse,
    mirror,
    resample,
    ribbon,
    scallop,
    spline,
    symmetric_loop,
    taper,
)
from cfs_core.world.scene import Layout, Scene
from cfs_core.world.schema import FaceParams

HAIR_HEIGHT = 0.74
STRAND_WIDTH = 0.0042


def hair_color(params: FaceParams) -> RGB:
    """The colour of the hair, beard and moustache."""
    return colors.HAIR_COLORS[params.hair_color]


def strand_color(base: RGB) -> RGB:
    """Strand lines: darker than the hair, or lighter where the hair is almost black."""
    return colors.shade(base, 1.35) if sum(base) < 150 else colors.shade(base, 0.7)


def _hairline(layout: Layout, side_y: float, right: Sequence[tuple[float, float]],
              left: Sequence[tuple[float, float]] | None = None, samples: int = 6) -> Points:
    """A smooth hairline through points given as (x in head half-widths, y) from right to left.

    ``left`` defaults to the mirror image of ``right``; both run from the sideburn inwards.
    """
    cx, w = layout.cx, layout.w
    right_pts = [(cx + w * 0.99, side_y)] + [(cx + w * x, y) for x, y in right]
    left_src = right if left is None else left
    left_pts = [(cx - w * x, y) for x, y in left_src][::-1] + [(cx - w * 0.99, side_y)]
    return spline(right_pts + left_pts, samples=samples)


def _strands(scene: Scene, color: RGB, starts: Points, ends: Points, bend: float) -> None:
    """Curved strand lines from ``starts`` to ``ends``, bowed outwards by ``bend``."""
    mids = (starts + ends) / 2
    mids[:, 0] += bend * np.sign(ends[:, 0] - starts[:, 0] + 1e-9)
    for curve in bezier(starts, mids, ends, samples=6):
        scene.line(curve, color, STRAND_WIDTH, lb.HAIR, alpha=0.6)


def add_back(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """The part of the hair behind the head (long, bob, curly, bun)."""
    color = hair_color(params)
    cx, w = layout.cx, layout.w
    if params.hair in ("long", "bob"):
        grow = 0.03 if params.hair == "long" else 0.034
        right = layout.skull_points([-60.0, -25.0], grow)
        if params.hair == "long":
            right += [(cx + w * 1.17, 0.52), (cx + w * 1.25, 0.72), (cx + w * 1.34, 0.93)]
            bottom = 0.95
        else:
            right += [(cx + w * 1.22, 0.55), (cx + w * 1.2, layout.jaw_y + 0.03)]
            bottom = layout.jaw_y + 0.04
        outline = spline(symmetric_loop(right, cx, layout.top_y - grow, bottom), closed=True, samples=7)
        scene.fill(outline, color, lb.HAIR, height=0.35)
        if params.hair == "long":
            for side in (1, -1):
                starts = np.array([(cx + side * w * k, 0.47) for k in (1.08, 1.16)])
                ends = np.array([(cx + side * w * k, 0.86) for k in (1.16, 1.26)])
                _strands(scene, strand_color(color), starts, ends, 0.01)
    elif params.hair == "curly":
        cloud = ellipse(cx, layout.crown_cy + 0.05, w * 1.45, 0.29, n=96)
        scene.fill(scallop(cloud, (cx, layout.crown_cy + 0.05), 0.022, 18), color, lb.HAIR, height=0.35)
        _curls(scene, layout, color)
    elif params.hair == "bun" and params.hat == "none":
        knot = ellipse(cx, layout.top_y - 0.035, 0.062, 0.055)
        scene.fill(knot, color, lb.HAIR, height=0.55)
        swirl = arc(cx, layout.top_y - 0.035, 0.035, 0.03, 0.3, 2.6, 10)
        scene.line(swirl, strand_color(color), STRAND_WIDTH, lb.HAIR, alpha=0.6)


def _curls(scene: Scene, layout: Layout, color: RGB) -> None:
    """Small curl strokes spread over the curly cloud around the head."""
    for k, angle in enumerate(np.deg2rad(np.arange(-200.0, 30.0, 23.0))):
        rx = layout.w * (1.22 + 0.1 * (k % 2))
        x = layout.cx + rx * np.cos(angle)
        y = layout.crown_cy + 0.05 + 0.25 * np.sin(angle)
        curl = arc(x, y, 0.013, 0.012, angle, angle + 4.0, 9)
        scene.line(curl, strand_color(color), STRAND_WIDTH, lb.HAIR, alpha=0.6)


def add_front(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """The hair over the forehead and temples, with strand lines."""
    color = hair_color(params)
    hl, ey = layout.hairline_y, layout.eye_y
    style = params.hair
    if style == "mohawk":
        if params.hat == "none":
            _mohawk(scene, layout, color)
        return
    if style == "bald":
        for side in (1, -1):
            degrees = np.linspace(-28.0, 6.0, 10) if side > 0 else np.linspace(208.0, 174.0, 10)
            centre = np.asarray(layout.skull_points(list(degrees), grow=-0.004)) + (0.0, 0.024)
            scene.fill(ribbon(centre, 0.011 * taper(10, 0.3)), color, lb.HAIR, height=HAIR_HEIGHT)
        return
    if style == "long":
        side_y = ey + 0.03
        line = _hairline(layout, side_y, [(0.84, side_y), (0.8, hl + 0.06), (0.55, hl + 0.008), (0.3, hl - 0.028)],
                         left=[(0.82, ey - 0.005), (0.65, hl + 0.045), (0.2, hl + 0.006)])
        grow = 0.02
    elif style == "bob":
        side_y = ey - 0.015
        fringe = ey - 0.078
        line = _hairline(layout, side_y, [(0.86, side_y), (0.84, fringe + 0.004), (0.4, fringe),
                                          (0.0, fringe + 0.002)], samples=3)
        grow = 0.034
    elif style == "curly":
        side_y = ey - 0.02
        base = _hairline(layout, side_y, [(0.88, side_y), (0.84, hl + 0.04), (0.45, hl + 0.012),
                                          (0.0, hl + 0.008)])
        s = np.linspace(0.0, 1.0, len(base))
        line = base + np.stack([np.zeros_like(s), 0.014 * np.abs(np.sin(np.pi * 7 * s)) ** 0.7], axis=1)
        grow = 0.03
    else:  # short and bun (a bun is pulled back: a higher, smooth hairline)
        side_y = ey - 0.005
        sleek = style == "bun"
        fringe = hl - (0.01 if sleek else 0.0)
        line = _hairline(layout, side_y, [(0.9, side_y), (0.86, fringe + 0.035), (0.5, fringe + 0.004),
                                          (0.1, fringe - (0.004 if sleek else 0.01))],
                         [(0.9, side_y), (0.86, fringe + 0.035), (0.4, fringe + (0.004 if sleek else 0.012))])
        grow = 0.01 if sleek else 0.016
    outer = layout.skull_arc(grow, side_y)
    scene.fill(np.concatenate([outer, line]), color, lb.HAIR, height=HAIR_HEIGHT)
    if style != "curly":
        _cap_strands(scene, strand_color(color), outer, line[::-1])


def _cap_strands(scene: Scene, color: RGB, outer: Points, inner: Points, count: int = 9) -> None:
    """Strands across a hair cap, from near its outer edge towards the hairline."""
    top = resample(outer, 40, closed=False)
    bottom = resample(inner, 40, closed=False)
    picks = np.linspace(4, 35, count).round().astype(int)
    _strands(scene, color, top[picks] + (bottom[picks] - top[picks]) * 0.12,
             top[picks] + (bottom[picks] - top[picks]) * 0.8, 0.0)


def _mohawk(scene: Scene, layout: Layout, color: RGB) -> None:
    """A spiky crest from the hairline over the top of the head."""
    cx, hw = layout.cx, layout.w * 0.24
    top = layout.top_y
    peaks = np.linspace(cx - hw, cx + hw, 11)
    crest = [(x, top - (0.09 if k % 2 else 0.03)) for k, x in enumerate(peaks)]
    outline = [(cx - hw * 0.8, layout.hairline_y + 0.012), (cx - hw, top + 0.02)] + crest
    outline += [(cx + hw, top + 0.02), (cx + hw * 0.8, layout.hairline_y + 0.012)]
    scene.fill(np.asarray(outline), color, lb.HAIR, height=HAIR_HEIGHT)
    starts = np.array([(cx + k * hw * 0.5, layout.hairline_y) for k in (-1, 0, 1)])
    ends = np.array([(cx + k * hw * 0.6, top - 0.04) for k in (-1, 0, 1)])
    _strands(scene, strand_color(color), starts, ends, 0.0)


def add_beard(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """A full beard (over the jaw and around the mouth) or a goatee (on the chin)."""
    color = hair_color(params)
    cx = layout.cx
    if params.facial_hair == "beard":
        head = layout.head_outline()
        lower = head[head[:, 1] > layout.eye_y + 0.01]
        start = int(np.argmax(lower[:, 0] > cx))  # the outline runs clockwise: right side, chin, left side
        lower = np.concatenate([lower[start:], lower[:start]])
        centre = np.array([cx, layout.eye_y])
        outer = centre + (lower - centre) * 1.05 + (0.0, 0.012)
        inner_right = np.array([  # from the middle outwards
            (cx + layout.mouth_hw * 0.55, layout.nose_tip_y + 0.02),
            (cx + layout.mouth_hw + 0.014, layout.mouth_y - 0.014),
            (cx + layout.w * 0.66, layout.eye_y + 0.08),
            (cx + layout.w * 0.9, layout.eye_y + 0.01),
        ])
        inner = spline(np.concatenate([mirror(inner_right, cx), [(cx, layout.nose_tip_y + 0.024)], inner_right]))
        scene.fill(np.concatenate([outer, inner]), color, lb.HAIR, height=0.68)
        rim = outer[(outer[:, 1] > layout.mouth_y) & (np.arange(len(outer)) % 3 == 0)]
        _ticks(scene, color, centre + (rim - centre) * 0.9, rim - centre)
    elif params.facial_hair == "goatee":
        top, bottom, hw = mouth_curves(layout, params.expression)[3][:, 1].max(), layout.chin_y, layout.mouth_hw
        right = [(cx + hw * 0.6, top - 0.01), (cx + hw * 0.72, bottom - 0.03), (cx + hw * 0.4, bottom + 0.004)]
        scene.fill(spline(symmetric_loop(right, cx, top - 0.004, bottom + 0.012), closed=True), color, lb.HAIR,
                   height=0.68)
        spots = ((0.3, -0.3), (0.3, 0.3), (0.55, -0.45), (0.55, 0.0), (0.55, 0.45), (0.8, -0.2), (0.8, 0.2))
        anchors = np.array([(cx + dx * hw, top + f * (bottom - top)) for f, dx in spots])
        _ticks(scene, color, anchors, np.tile((0.0, 1.0), (len(anchors), 1)))


def _ticks(scene: Scene, color: RGB, anchors: Points, directions: Points, length: float = 0.014) -> None:
    """Short hair strokes at ``anchors`` along ``directions`` (beard texture)."""
    unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    for a, b in zip(anchors - unit * length / 2, anchors + unit * length / 2, strict=True):
        scene.line(np.array([a, b]), strand_color(color), STRAND_WIDTH, lb.HAIR, alpha=0.45)


def add_moustache(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """A moustache over the upper lip (also part of a full beard)."""
    if params.facial_hair not in ("moustache", "beard"):
        return
    lip_top = mouth_curves(layout, params.expression)[0]
    centre = lip_top[::3] + (0.0, -0.023)
    centre[[0, -1]] += (0.0, 0.016)
    centre[[0, -1], 0] += np.array([-0.012, 0.012])
    centre[:, 1] = np.maximum(centre[:, 1], layout.nose_tip_y + 0.032)
    curve = spline(centre, samples=3)
    scene.fill(ribbon(curve, 0.013 * taper(len(curve), 0.3)), hair_color(params), lb.HAIR, height=0.7)
