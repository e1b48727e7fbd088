"""Accessories: glasses (lenses and frames), earrings and hats.

Clear lenses are drawn before the eyes (the eyes show through and keep their labels, as in
CelebAMask-HQ); sunglasses lenses are drawn over the eyes and brows.
"""

from __future__ import annotations

import numpy as np

from cfs_core.world import colors
from cfs_core.world import labels as lb
from cfs_core.world.geometry import Points, ellipse, rounded_rect, scallop, spline
from cfs_core.world.scene import Layout, Scene
from cfs_core.world.schema import FaceParams

FRAME_WIDTH = 0.0075


def _lens(layout: Layout, kind: str, side: int) -> Points:
    """The outline of one lens, centred on the eye of ``side``."""
    ex, ey = layout.eye_center(side)
    r = layout.eye_rx
    half_width = min(r * (1.55 if kind == "sunglasses" else 1.38), layout.eye_dx - 0.014)
    if kind == "round":
        return ellipse(ex, ey + 0.004, half_width, half_width * 0.94)
    if kind == "square":
        return rounded_rect(ex, ey + 0.004, half_width, r * 0.98, 0.012)
    top, bottom = ey - r * 0.92, ey + r * 1.25
    inner, outer = ex - side * half_width, ex + side * half_width
    ctrl = [(inner, top), (outer, top - 0.004), (outer, ey + r * 0.3), (ex + side * half_width * 0.5, bottom),
            (ex - side * half_width * 0.5, bottom - 0.004), (inner, ey + r * 0.2)]
    return spline(ctrl, closed=True, samples=6)


def add_lenses(scene: Scene, layout: Layout, params: FaceParams, clear: bool) -> None:
    """Tinted clear lenses (``clear``, before the eyes) or sunglasses lenses (after the brows)."""
    if params.glasses == "none" or clear == (params.glasses == "sunglasses"):
        return
    for side in (1, -1):
        lens = _lens(layout, params.glasses, side)
        if clear:
            scene.fill(lens, colors.CLEAR_LENS, lb.EYE_G, alpha=0.28, outline=0.0)
            continue
        scene.fill(lens, colors.SUNGLASS_LENS, lb.EYE_G, height=0.8, alpha=0.95)
        lo, hi = lens.min(axis=0), lens.max(axis=0)
        glare = np.array([lo + (hi - lo) * (0.25, 0.55), lo + (hi - lo) * (0.55, 0.22)])
        scene.line(glare, colors.WHITE, 0.006, lb.EYE_G, alpha=0.45)


def add_frames(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """Glasses frames, bridge and temple arms (label eye_g)."""
    if params.glasses == "none":
        return
    ey = layout.eye_y
    inner = []
    for side in (1, -1):
        lens = _lens(layout, params.glasses, side)
        scene.line(lens, colors.FRAME, FRAME_WIDTH, lb.EYE_G, closed=True)
        outer = lens[np.argmax(lens[:, 0] * side)]
        inner.append(lens[np.argmin(np.abs(lens[:, 0] - layout.cx) + np.abs(lens[:, 1] - ey + 0.008))])
        arm = np.array([outer, (layout.cx + side * layout.w * 0.985, ey - 0.006)])
        scene.line(arm, colors.FRAME, FRAME_WIDTH, lb.EYE_G)
    bridge = spline([inner[1], (layout.cx, ey - 0.014), inner[0]], samples=6)
    scene.line(bridge, colors.FRAME, FRAME_WIDTH, lb.EYE_G)


def add_earrings(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """Gold studs on the ear lobes or hoops hanging from them (label ear_r)."""
    if params.earrings == "none":
        return
    for side in (1, -1):
        ex, ey = layout.ear_center(side)
        lobe = (ex + side * 0.1 * layout.ear_rx, ey + 0.72 * layout.ear_ry)
        if params.earrings == "stud":
            scene.fill(ellipse(*lobe, 0.012, 0.012, n=16), colors.GOLD, lb.EAR_R, height=0.7, outline=0.5)
        else:
            hoop = ellipse(lobe[0], lobe[1] + 0.02, 0.018, 0.021, n=24)
            scene.line(hoop, colors.GOLD, 0.008, lb.EAR_R, closed=True)


def add_hat(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """A cap (crown, seam, button and brim) or a beanie (dome, ribbed cuff and pompom)."""
    if params.hat == "none":
        return
    color = colors.HAT_COLORS[params.hat_color]
    dark = colors.shade(color, 0.72) if sum(color) > 200 else colors.shade(color, 1.6)
    cx, w = layout.cx, layout.w
    grow = 0.024 if params.hat == "cap" else 0.03
    band_y = layout.hairline_y + (0.004 if params.hat == "cap" else 0.014)
    scene.fill(layout.skull_arc(grow, band_y, 36), color, lb.HAT, height=0.85)
    top = layout.top_y - grow
    if params.hat == "cap":
        scene.line(np.array([(cx, top + 0.004), (cx, band_y - 0.004)]), dark, 0.005, lb.HAT)
        scene.fill(ellipse(cx, top + 0.004, 0.012, 0.007), dark, lb.HAT, height=0.9)
        brim_w = w * 0.95
        ctrl = [(cx - brim_w, band_y + 0.006), (cx, band_y - 0.01), (cx + brim_w, band_y + 0.006),
                (cx + brim_w * 0.6, band_y + 0.045), (cx, band_y + 0.06), (cx - brim_w * 0.6, band_y + 0.045)]
        scene.fill(spline(ctrl, closed=True, samples=6), colors.shade(color, 0.8), lb.HAT, height=0.92)
        return
    cuff_hw, cuff_hh = w + grow + 0.006, 0.027
    cuff_y = band_y - cuff_hh + 0.004
    scene.fill(rounded_rect(cx, cuff_y, cuff_hw, cuff_hh, 0.012), colors.shade(color, 0.9), lb.HAT, height=0.9)
    for x in np.linspace(cx - cuff_hw * 0.85, cx + cuff_hw * 0.85, 9):
        scene.line(np.array([(x, cuff_y - cuff_hh * 0.6), (x, cuff_y + cuff_hh * 0.6)]), dark, 0.004, lb.HAT)
    pompom = scallop(ellipse(cx, top - 0.018, 0.033, 0.029, n=40), (cx, top - 0.018), 0.006, 10)
    scene.fill(pompom, colors.shade(color, 1.25), lb.HAT, height=0.95)
