"""The photo style: flat colours shaded from an elevation map, with soft shadows and texture.

Every primitive paints its elevation (``Primitive.height``) into a height map. Blurring it at two
scales turns the steps between parts into smooth slopes: their gradient gives a surface normal,
lit by a directional light (``light_angle``) with a little specular gloss on eyes, lips, hair
and lenses. Higher parts cast soft shadows on lower ones (hair on the forehead, the chin on the
neck, the head on the background). A smooth noise field, stretched into streaks on the hair,
adds subtle texture (``texture``). Everything is low frequency, easy for a small GAN to learn.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image

from cfs_core.world import labels as lb
from cfs_core.world.raster import SUPERSAMPLE, paint, paint_values
from cfs_core.world.scene import Scene

_ELEVATION = math.radians(48.0)  # the light's height above the image plane
_RELIEF = 0.05  # slope of the surface per unit of elevation step, relative to the image size

# Per-class specular gloss and texture strength, indexed by label.
_GLOSS = np.zeros(len(lb.LABEL_NAMES), dtype=np.float32)
_GLOSS[[lb.L_EYE, lb.R_EYE]] = 0.35
_GLOSS[lb.EYE_G] = 0.6
_GLOSS[[lb.U_LIP, lb.L_LIP]] = 0.22
_GLOSS[[lb.HAIR, lb.HAT, lb.EAR_R]] = (0.16, 0.1, 0.6)
_GLOSS[[lb.SKIN, lb.NOSE]] = 0.07
_TEXTURE = np.full(len(lb.LABEL_NAMES), 0.012, dtype=np.float32)
_TEXTURE[[lb.SKIN, lb.NOSE, lb.NECK, lb.L_EAR, lb.R_EAR]] = 0.06
_TEXTURE[[lb.HAIR, lb.CLOTH, lb.HAT]] = (0.22, 0.1, 0.12)
_TEXTURE[[lb.L_EYE, lb.R_EYE, lb.EYE_G, lb.EAR_R, lb.MOUTH]] = 0.0


def render_photo(scene: Scene, size: int, seed: int, labels: np.ndarray) -> np.ndarray:
    """Render ``scene`` in the photo style; ``labels`` is its label map at ``size``."""
    n = size * SUPERSAMPLE
    canvas = Image.new("RGB", (n, n), scene.background)
    paint(scene, canvas, with_outlines=False)
    albedo = np.asarray(canvas.reduce(SUPERSAMPLE), dtype=np.float32) / 255.0
    height = np.asarray(paint_values(scene, size, "height"), dtype=np.float32) / 255.0
    blurred = _smooth(height, size // 32)
    surface = 0.6 * np.minimum(height, blurred) + 0.4 * np.minimum(height, _smooth(height, size // 10))
    gy, gx = np.gradient(surface)
    nx, ny = gx * (-size * _RELIEF), gy * (-size * _RELIEF)
    inv = 1.0 / np.sqrt(nx * nx + ny * ny + 1.0)
    lx, ly, lz = _light_vector(scene.light_angle)
    lambert = np.clip((nx * lx + ny * ly + lz) * inv, 0.0, 1.0)
    hz = lz + 1.0
    norm = (lx * lx + ly * ly + hz * hz) ** 0.5
    specular = np.clip((nx * (lx / norm) + ny * (ly / norm) + hz / norm) * inv, 0.0, 1.0)
    specular *= specular  # raised to the 16th power: a small, sharp highlight
    specular *= specular
    specular *= specular
    specular *= specular
    specular *= _GLOSS[labels]
    shadow = _cast_shadow(blurred, surface, (lx, ly), size)
    shading = (0.5 + 0.62 * lambert) * (1.0 - 0.4 * shadow) * _ambient(size, scene.light_angle)
    shading *= 1.0 + scene.texture * _TEXTURE[labels] * _noise(size, seed, labels)
    out = albedo * shading[:, :, None] + specular[:, :, None]
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _light_vector(angle_deg: float) -> tuple[float, float, float]:
    """Unit vector towards the light: 0 degrees above, -90 image left, 90 image right."""
    a = math.radians(angle_deg)
    flat = math.cos(_ELEVATION)
    return (math.sin(a) * flat, -math.cos(a) * flat, math.sin(_ELEVATION))


def _smooth(a: np.ndarray, width: int) -> np.ndarray:
    """A blur about ``width`` pixels wide: shrink to 1/width with a box filter, enlarge bicubically."""
    size = a.shape[0]
    small = Image.fromarray(a, "F").resize((max(2, size // max(1, width)),) * 2, Image.Resampling.BOX)
    return np.asarray(small.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)


def _shift(a: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``a`` sampled at (x + dx, y + dy), repeating the edge."""
    h, w = a.shape
    padded = np.pad(a, ((abs(dy), abs(dy)), (abs(dx), abs(dx))), mode="edge")
    return padded[abs(dy) + dy: abs(dy) + dy + h, abs(dx) + dx: abs(dx) + dx + w]


def _cast_shadow(blurred: np.ndarray, surface: np.ndarray, light: tuple[float, float], size: int) -> np.ndarray:
    """How much higher (blurred) surface lies towards the light: soft shadow strength in [0, 1]."""
    reach = size * 0.02 / max(math.hypot(*light), 1e-6)
    dx, dy = round(reach * light[0]), round(reach * light[1])
    return np.clip((_shift(blurred, dx, dy) - surface - 0.04) * 3.0, 0.0, 1.0)


@lru_cache(maxsize=16)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return (x + 0.5) / size - 0.5, (y + 0.5) / size - 0.5


def _ambient(size: int, angle_deg: float) -> np.ndarray:
    """Soft vignette brighter towards the light."""
    x, y = _grid(size)
    a = math.radians(angle_deg)
    return 1.04 - 0.35 * (x * x + y * y) + x * (0.12 * math.sin(a)) - y * (0.12 * math.cos(a))


def _noise(size: int, seed: int, labels: np.ndarray) -> np.ndarray:
    """Smooth unit noise: blotchy on skin and cloth, vertical streaks on the hair."""
    rng = np.random.default_rng(seed)
    blotch = Image.fromarray(rng.standard_normal((20, 20)).astype(np.float32), "F")
    fine = np.asarray(blotch.resize((size, size), Image.Resampling.BICUBIC))
    pixels = np.linspace(0.0, 1.0, size)
    across = np.interp(pixels, np.linspace(0.0, 1.0, 56), rng.standard_normal(56))
    along = np.interp(pixels, np.linspace(0.0, 1.0, 6), rng.standard_normal(6))
    streaks = (across[None, :] * (1.0 + 0.3 * along[:, None])).astype(np.float32)
    return np.where(labels == lb.HAIR, streaks, fine)
