"""Resolution-independent shape helpers: every shape is an ``(N, 2)`` array of points.

Coordinates are normalised: x to the right and y downwards, the image spanning [0, 1] on both
axes. Closed shapes list their outline once (the last point is not repeated).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

Points = np.ndarray


@lru_cache(maxsize=64)
def _unit_circle(n: int) -> Points:
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)
    circle.flags.writeable = False
    return circle


@lru_cache(maxsize=64)
def _ramp(n: int) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, n)
    ramp.flags.writeable = False
    return ramp


def ellipse(cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 40) -> Points:
    """An ellipse centred at (cx, cy) with radii rx, ry, rotated by ``angle`` radians."""
    return rotate(_unit_circle(n) * (rx, ry) + (cx, cy), angle, (cx, cy))


def arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 16) -> Points:
    """Points on an elliptical arc from ``start`` to ``stop`` radians (0 = right, pi/2 = down)."""
    t = start + (stop - start) * _ramp(n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def rounded_rect(cx: float, cy: float, hw: float, hh: float, radius: float, n: int = 44) -> Points:
    """An axis-aligned rectangle of half sizes hw, hh with corners rounded by ``radius``."""
    radius = min(radius, hw, hh)
    quarter = max(2, n // 4)
    corners = ((hw - radius, hh - radius, 0.0), (-(hw - radius), hh - radius, 0.5 * np.pi),
               (-(hw - radius), -(hh - radius), np.pi), (hw - radius, -(hh - radius), 1.5 * np.pi))
    parts = [arc(cx + ox, cy + oy, radius, radius, start, start + 0.5 * np.pi, quarter) for ox, oy, start in corners]
    return np.concatenate(parts)


def rotate(points: Points, angle: float, origin: tuple[float, float]) -> Points:
    """Rotate points by ``angle`` radians around ``origin`` (positive turns clockwise on screen)."""
    if angle == 0.0:
        return points
    c, s = math.cos(angle), math.sin(angle)
    return (points - origin) @ np.array([[c, s], [-s, c]]) + origin


def mirror(points: Points, axis_x: float = 0.5) -> Points:
    """Mirror points about the vertical line x = ``axis_x`` (the order of points is reversed)."""
    out = points[::-1].copy()
    out[:, 0] = 2.0 * axis_x - out[:, 0]
    return out


def symmetric_loop(right: Points | list[tuple[float, float]], axis_x: float, top: float | None = None,
                   bottom: float | None = None) -> Points:
    """Control points of a closed outline symmetric about x = ``axis_x``, clockwise from the top.

    ``right`` is the image-right half, listed from top to bottom; ``top`` and ``bottom`` are
    optional heights of points on the axis. Feed the result to :func:`spline` with ``closed``.
    """
    half = np.asarray(right, dtype=np.float64)
    parts = [np.array([(axis_x, top)])] if top is not None else []
    parts.append(half)
    if bottom is not None:
        parts.append(np.array([(axis_x, bottom)]))
    parts.append(mirror(half, axis_x))
    return np.concatenate(parts)


def mirror_parts(parts: list[Points], axis_x: float, offset: tuple[float, float] = (0.0, 0.0),
                 angle: float = 0.0) -> tuple[list[Points], list[Points]]:
    """Place parts of the image-right member of a pair, and mirror them for the left member.

    The parts are given in a local frame: they are rotated by ``angle`` and moved by ``offset``
    (all in one array operation), then mirrored about the vertical line x = ``axis_x``.
    """
    bounds = np.cumsum([len(p) for p in parts])[:-1]
    right = rotate(np.concatenate(parts), angle, (0.0, 0.0)) + offset
    left = right * (-1.0, 1.0) + (2.0 * axis_x, 0.0)
    return np.split(right, bounds), np.split(left, bounds)


def bezier(starts: Points, controls: Points, ends: Points, samples: int = 8) -> np.ndarray:
    """Quadratic Bezier curves, one per row of the inputs: an (n, samples, 2) array."""
    t = _ramp(samples)[None, :, None]
    a, c, b = starts[:, None, :], controls[:, None, :], ends[:, None, :]
    return (1.0 - t) ** 2 * a + 2.0 * (1.0 - t) * t * c + t * t * b


@lru_cache(maxsize=16)
def _catmull_rom_basis(samples: int) -> np.ndarray:
    """Weights of the four control points for ``samples`` steps along one segment: (samples, 4)."""
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[:, None]
    basis = 0.5 * np.hstack([-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3, t + 4 * t**2 - 3 * t**3, -(t**2) + t**3])
    basis.flags.writeable = False
    return basis


def spline(control: Points | list[tuple[float, float]], closed: bool = False, samples: int = 8) -> Points:
    """A Catmull-Rom curve through the control points, ``samples`` points per segment."""
    ctrl = np.asarray(control, dtype=np.float64)
    ends = (ctrl[-1:], ctrl[:2]) if closed else (ctrl[:1], ctrl[-1:])  # wrap around, or repeat the ends
    padded = np.concatenate([ends[0], ctrl, ends[1]])
    segments = len(padded) - 3
    windows = padded[np.arange(segments)[:, None] + np.arange(4)]  # (segments, 4, 2)
    curve = (_catmull_rom_basis(samples) @ windows).reshape(-1, 2)
    return curve if closed else np.concatenate([curve, ctrl[-1:]])


def ribbon(centre: Points, half_width: np.ndarray | float) -> Points:
    """A closed band around an open centre line, ``half_width`` wide on each side (per point)."""
    tangent = np.gradient(centre, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    offset = normal * np.broadcast_to(np.asarray(half_width, dtype=np.float64), (len(centre),))[:, None]
    return np.concatenate([centre + offset, (centre - offset)[::-1]])


def taper(n: int, ends: float = 0.15, power: float = 0.6) -> np.ndarray:
    """A width profile over ``n`` points: ``ends`` at both tips, rising to 1 in the middle."""
    s = np.linspace(0.0, 1.0, n)
    return ends + (1.0 - ends) * np.sin(np.pi * s) ** power


def scallop(points: Points, centre: tuple[float, float], depth: float, count: int) -> Points:
    """Push a closed outline outwards in ``count`` round bumps (curly hair, clouds)."""
    t = np.linspace(0.0, 1.0, len(points), endpoint=False)
    bumps = np.abs(np.sin(np.pi * count * t)) ** 0.7
    radial = points - centre
    radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
    return points + radial * depth * bumps[:, None]


def resample(points: Points, n: int, closed: bool) -> Points:
    """Resample a polyline to ``n`` points evenly spaced along its length."""
    path = np.concatenate([points, points[:1]]) if closed else points
    seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
    dist = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.linspace(0.0, dist[-1], n, endpoint=not closed)
    return np.stack([np.interp(targets, dist, path[:, 0]), np.interp(targets, dist, path[:, 1])], axis=1)
