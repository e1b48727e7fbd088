"""The body and face parts of the scene: neck, shirt, ears, head, nose, eyes, brows and mouth.

Each ``add_*`` function appends its primitives to a :class:`~cfs_core.world.scene.Scene` in
painter's order. Paired parts are built once in the local frame of the image-right part and
mirrored for the other side.
"""

from __future__ import annotations

import numpy as np

from cfs_core.world import colors
from cfs_core.world import labels as lb
from cfs_core.world.colors import RGB
from cfs_core.world.geometry import (
    Points,
    ellipse,
    mirror,
    mirror_parts,
    ribbon,
    spline,
    symmetric_loop,
)
from cfs_core.world.scene import Layout, Scene, side_label
from cfs_core.world.schema import FaceParams

SIDES = (1, -1)

# Expression -> (corner lift, opening above and below the lip line, width factor, roundness).
_MOUTHS: dict[str, tuple[float, float, float, float, float]] = {
    "neutral": (0.0, 0.0012, 0.0012, 1.0, 1.0),
    "smile": (-0.02, 0.005, 0.018, 1.12, 1.0),
    "open_mouth": (0.0, 0.016, 0.03, 0.72, 0.5),
    "frown": (0.017, 0.0012, 0.0012, 0.92, 1.0),
}

_LIP_TINTS: dict[str, tuple[RGB, float]] = {
    "feminine": ((198, 52, 84), 0.58),
    "neutral": ((176, 84, 84), 0.38),
    "masculine": ((160, 88, 78), 0.26),
}

_BROW_WEIGHT = {"feminine": 0.75, "neutral": 1.0, "masculine": 1.35}


def skin(params: FaceParams) -> RGB:
    """The skin colour of a face."""
    return colors.skin_color(params.skin_tone)


def add_body(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """The neck and the shirt with its neckline."""
    cx, nhw = layout.cx, layout.neck_hw
    neck = np.array([(cx - nhw, layout.jaw_y - 0.03), (cx + nhw, layout.jaw_y - 0.03),
                     (cx + nhw * 1.1, 0.95), (cx - nhw * 1.1, 0.95)])
    scene.fill(neck, colors.shade(skin(params), 0.9), lb.NECK, height=0.42)
    right = [(cx + nhw * 0.55, 0.893), (cx + nhw * 1.2, 0.862), (cx + 0.2, 0.882), (cx + 0.34, 0.918),
             (cx + 0.43, 0.99), (cx + 0.47, 1.06)]
    outline = spline(symmetric_loop(right, cx, top=0.903), closed=True, samples=6)
    cloth = colors.CLOTH_COLORS[params.cloth_color]
    scene.fill(outline, cloth, lb.CLOTH, height=0.38)
    hem = spline([(cx - nhw * 1.2, 0.874), (cx, 0.917), (cx + nhw * 1.2, 0.874)], samples=8)
    scene.line(hem, colors.shade(cloth, 0.72), 0.006, lb.CLOTH)


def add_ears(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """Both ears, with the curve of the helix."""
    helix = spline(np.array([(-0.25, -0.6), (0.25, -0.55), (0.4, 0.0), (0.1, 0.45)]), samples=5)
    shape = ellipse(0.0, 0.0, layout.ear_rx, layout.ear_ry, n=28)
    parts = [shape, helix * (layout.ear_rx, layout.ear_ry)]
    pair = mirror_parts(parts, layout.cx, layout.ear_center(1), angle=0.15)
    for side, (outline, curve) in zip(SIDES, pair, strict=True):
        label = side_label(side, lb.L_EAR, lb.R_EAR)
        scene.fill(outline, colors.shade(skin(params), 0.95), label, height=0.5)
        scene.line(curve, colors.shade(skin(params), 0.72), 0.005, label)


def add_head(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """The head (label skin) and, for a feminine presentation, blushed cheeks."""
    scene.fill(layout.head_outline(), skin(params), lb.SKIN, height=0.6)
    if params.presentation == "feminine":
        for side in SIDES:
            cheek = ellipse(layout.cx + side * layout.eye_dx * 1.08, layout.eye_y + 0.078, 0.036, 0.02)
            scene.fill(cheek, (232, 104, 118), None, alpha=0.28, outline=0.0)


def add_nose(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """The nose: a raised skin-coloured shape (label nose) and the line of the nostrils."""
    cx, tip, hw = layout.cx, layout.nose_tip_y, layout.nose_hw
    top = layout.eye_y + 0.004
    right = [(cx + 0.011, top + 0.01), (cx + 0.015, (top + tip) / 2), (cx + hw, tip - 0.004),
             (cx + hw * 0.7, tip + 0.013)]
    shape = spline(symmetric_loop(right, cx, top, tip + 0.017), closed=True)
    scene.fill(shape, skin(params), lb.NOSE, height=0.72, outline=0.0)
    hook = np.array([(cx + hw * 1.05, tip - 0.012), (cx + hw * 0.85, tip + 0.006), (cx + hw * 0.35, tip + 0.009)])
    nostrils = spline(np.concatenate([mirror(hook, cx), [(cx, tip + 0.014)], hook]), samples=5)
    scene.line(nostrils, colors.shade(skin(params), 0.62), 0.0055, lb.NOSE)


def _eye_shape(rx: float, ry_up: float, ry_low: float, n: int = 32) -> Points:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    ry = np.where(np.sin(t) < 0.0, ry_up, ry_low)
    return np.stack([rx * np.cos(t), ry * np.sin(t)], axis=1)


def _disc_within(radius: float, center: tuple[float, float], rx: float, ry_up: float, ry_low: float,
                 n: int = 24) -> Points:
    """A disc at ``center`` clipped to the eye ellipse (both star-shaped around the eye centre)."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    pts = np.stack([center[0] + radius * np.cos(t), center[1] + radius * np.sin(t)], axis=1)
    ry = np.where(pts[:, 1] < 0.0, ry_up, ry_low)
    reach = np.sqrt((pts[:, 0] / rx) ** 2 + (pts[:, 1] / ry) ** 2)
    return pts / np.maximum(reach / 0.97, 1.0)[:, None]


def add_eyes(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """Both eyes: white, iris, pupil, catch light, upper lid line and (feminine) lashes."""
    rx = layout.eye_rx
    ry_up, ry_low = layout.eye_ry, layout.eye_ry * 0.8
    if params.expression == "smile":
        ry_low *= 0.55
    elif params.expression == "open_mouth":
        ry_up, ry_low = ry_up * 1.2, ry_low * 1.15
    elif params.expression == "frown":
        ry_up *= 0.78
    iris_r = layout.eye_ry * 1.3
    shape = _eye_shape(rx, ry_up, ry_low)
    iris = _disc_within(iris_r, (0.0, 0.0), rx, ry_up, ry_low)
    pupil = _disc_within(iris_r * 0.45, (0.0, 0.0), rx, ry_up, ry_low, n=16)
    glint = _disc_within(iris_r * 0.2, (-iris_r * 0.3, -iris_r * 0.3), rx, ry_up, ry_low, n=12)
    lid = np.concatenate([shape[len(shape) // 2:], shape[:1]])
    parts = [shape, iris, pupil, glint, lid]
    if params.presentation == "feminine":
        parts += [np.array([p, p + (0.006 + 0.004 * k, -0.011)]) for k, p in enumerate(lid[-6::2])]
    dark = (40, 28, 28)
    pair = mirror_parts(parts, layout.cx, layout.eye_center(1), angle=-0.07)
    for side, placed in zip(SIDES, pair, strict=True):
        label = side_label(side, lb.L_EYE, lb.R_EYE)
        sclera, iris_pts, pupil_pts, glint_pts, lid_pts, *lashes = placed
        scene.fill(sclera, colors.SCLERA, label, height=0.56, outline=0.6)
        scene.fill(iris_pts, colors.EYE_COLORS[params.eye_color], label, height=0.56, outline=0.35)
        scene.fill(pupil_pts, (16, 14, 18), label, height=0.56, outline=0.0, solid=True)
        scene.fill(glint_pts, colors.WHITE, label, height=0.56, outline=0.0)
        scene.line(lid_pts, dark, 0.008, label)
        for lash in lashes:
            scene.line(lash, dark, 0.004, label)


def _brow_curve(shape: str, s: np.ndarray) -> np.ndarray:
    """Vertical offset along a brow (s from the inner end 0 to the outer end 1; negative is up)."""
    if shape == "arched":
        return -0.017 * np.sin(np.pi * s**0.8)
    if shape == "angled":
        return np.where(s < 0.65, -0.021 * s / 0.65, -0.021 + 0.016 * (s - 0.65) / 0.35)
    if shape == "bushy":
        return -0.006 * np.sin(np.pi * s)
    return -0.005 * s


def add_brows(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """Both eyebrows: shape from ``eyebrows``, pose from ``expression``, weight from presentation."""
    s = np.linspace(0.0, 1.0, 14)
    rx = layout.eye_rx
    x = -0.85 * rx + 2.05 * rx * s
    y = -(layout.eye_ry + 0.034) + _brow_curve(params.eyebrows, s)
    if params.expression == "frown":
        y = y + 0.004 + 0.013 * (1.0 - s)
    elif params.expression == "open_mouth":
        y = y - 0.014
    elif params.expression == "smile":
        y = y - 0.004
    weight = 0.0075 * _BROW_WEIGHT[params.presentation] * (1.6 if params.eyebrows == "bushy" else 1.0)
    half_width = weight * (1.0 - 0.62 * s) * np.minimum(1.0, 0.55 + 3.0 * s)
    color = colors.shade(colors.HAIR_COLORS[params.hair_color], 0.55)
    brow = ribbon(np.stack([x, y], axis=1), half_width)
    for side, (shape,) in zip(SIDES, mirror_parts([brow], layout.cx, layout.eye_center(1)), strict=True):
        scene.fill(shape, color, side_label(side, lb.L_BROW, lb.R_BROW), height=0.64, outline=0.5)


def mouth_curves(layout: Layout, expression: str) -> tuple[Points, Points, Points, Points]:
    """The four curves of the mouth, left to right: lip top, opening top and bottom, lip bottom."""
    lift, open_top, open_bot, width, roundness = _MOUTHS[expression]
    t = np.linspace(-1.0, 1.0, 25)
    x = layout.cx + t * layout.mouth_hw * width
    base = layout.mouth_y + lift * t**2
    bulge = (1.0 - t**2) ** roundness
    thin = 0.7 if expression == "smile" else 1.0
    lips = np.sqrt(np.clip(1.0 - t**2, 0.0, 1.0)) * thin
    bow = 1.0 - 0.3 * np.exp(-((t / 0.16) ** 2))
    curves = (base - open_top * bulge - 0.011 * lips * bow, base - open_top * bulge,
              base + open_bot * bulge, base + open_bot * bulge + 0.014 * lips)
    return tuple(np.stack([x, y], axis=1) for y in curves)  # type: ignore[return-value]


def add_mouth(scene: Scene, layout: Layout, params: FaceParams) -> None:
    """Lips, the inside of the mouth (teeth, tongue) and expression creases."""
    lip_top, open_top, open_bot, lip_bot = mouth_curves(layout, params.expression)
    tint, amount = _LIP_TINTS[params.presentation]
    lip = colors.mix(skin(params), tint, amount)
    inside = np.concatenate([open_top, open_bot[::-1]])
    scene.fill(inside, colors.MOUTH_INSIDE, lb.MOUTH, height=0.5, outline=0.0)
    if params.expression in ("smile", "open_mouth"):
        depth = np.minimum(open_bot[:, 1] - open_top[:, 1], 0.012 if params.expression == "smile" else 0.006)
        teeth_bot = open_top + np.stack([np.zeros_like(depth), depth], axis=1)
        scene.fill(np.concatenate([open_top, teeth_bot[::-1]]), colors.TEETH, lb.MOUTH, height=0.52,
                   outline=0.0)
    if params.expression == "open_mouth":
        tongue = ellipse(layout.cx, layout.mouth_y + 0.02, layout.mouth_hw * 0.4, 0.011)
        scene.fill(tongue, colors.TONGUE, lb.MOUTH, height=0.52, outline=0.0)
    scene.fill(np.concatenate([lip_top, open_top[::-1]]), lip, lb.U_LIP, height=0.66, outline=0.6)
    lower = np.concatenate([open_bot, lip_bot[::-1]])
    scene.fill(lower, colors.shade(lip, 1.08), lb.L_LIP, height=0.66, outline=0.6)
    if params.expression in ("neutral", "frown"):
        scene.line(open_top, colors.shade(lip, 0.5), 0.0045, lb.MOUTH)
    if params.expression == "smile":
        crease = colors.shade(skin(params), 0.7)
        for side in SIDES:
            corner = open_top[-1] if side > 0 else open_top[0]
            dimple = np.array([corner + (side * 0.006, -0.012), corner + (side * 0.011, 0.0),
                               corner + (side * 0.007, 0.011)])
            scene.line(spline(dimple, samples=4), crease, 0.0045)
