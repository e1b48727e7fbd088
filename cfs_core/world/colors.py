"""Colour tables of the face world: the palettes behind the categorical colour parameters.

Every named colour is an sRGB triple. The tables are the single source of the allowed values of
the colour parameters in :mod:`cfs_core.world.schema` (their keys, in this order).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

RGB = tuple[int, int, int]

HAIR_COLORS: dict[str, RGB] = {
    "black": (38, 32, 30),
    "brown": (106, 68, 40),
    "blond": (226, 190, 112),
    "red": (178, 70, 34),
    "grey": (150, 150, 152),
    "white": (236, 234, 228),
    "blue": (50, 96, 206),
    "purple": (122, 60, 170),
    "pink": (234, 112, 168),
    "green": (54, 150, 80),
}

EYE_COLORS: dict[str, RGB] = {
    "brown": (104, 62, 30),
    "blue": (58, 126, 212),
    "green": (62, 150, 76),
    "grey": (128, 138, 150),
    "amber": (196, 134, 34),
}

BACKGROUND_COLORS: dict[str, RGB] = {
    "grey": (168, 170, 174),
    "white": (238, 238, 234),
    "blue": (120, 168, 222),
    "green": (132, 196, 128),
    "yellow": (238, 214, 110),
    "pink": (236, 166, 190),
    "orange": (240, 160, 96),
    "teal": (86, 176, 170),
}

CLOTH_COLORS: dict[str, RGB] = {
    "white": (232, 232, 228),
    "black": (44, 44, 50),
    "grey": (120, 122, 128),
    "red": (196, 48, 52),
    "blue": (48, 84, 170),
    "green": (46, 130, 74),
    "yellow": (232, 192, 52),
    "purple": (120, 64, 150),
}

HAT_COLORS: dict[str, RGB] = {
    "red": (200, 44, 48),
    "blue": (44, 90, 180),
    "black": (40, 40, 46),
    "white": (236, 236, 232),
    "green": (50, 140, 70),
    "yellow": (236, 196, 40),
}

# Skin tone anchors from light (0) to dark (1); ``skin_tone`` interpolates between them.
_SKIN_ANCHORS: tuple[RGB, ...] = (
    (255, 226, 204),
    (242, 200, 166),
    (226, 174, 132),
    (196, 138, 96),
    (152, 100, 66),
    (104, 68, 46),
)

INK: RGB = (24, 22, 26)
WHITE: RGB = (255, 255, 255)
SCLERA: RGB = (246, 244, 240)
TEETH: RGB = (246, 242, 232)
MOUTH_INSIDE: RGB = (92, 30, 36)
TONGUE: RGB = (200, 92, 98)
GOLD: RGB = (232, 184, 60)
FRAME: RGB = (34, 30, 32)
SUNGLASS_LENS: RGB = (26, 28, 36)
CLEAR_LENS: RGB = (210, 230, 246)


@lru_cache(maxsize=4096)
def skin_color(tone: float) -> RGB:
    """Return the skin colour for ``tone`` in [0, 1] (light to dark), interpolating the anchors."""
    position = min(1.0, max(0.0, tone)) * (len(_SKIN_ANCHORS) - 1)
    low = min(int(position), len(_SKIN_ANCHORS) - 2)
    return mix(_SKIN_ANCHORS[low], _SKIN_ANCHORS[low + 1], position - low)


def to_rgb(values: Iterable[float]) -> RGB:
    """Round and clip three channel values to an sRGB triple."""
    r, g, b = (round(min(255.0, max(0.0, v))) for v in values)
    return (r, g, b)


@lru_cache(maxsize=4096)
def shade(color: RGB, factor: float) -> RGB:
    """Scale a colour's brightness by ``factor`` (below 1 darkens, above 1 lightens towards white)."""
    if factor <= 1.0:
        return to_rgb(c * factor for c in color)
    return to_rgb(c + (255.0 - c) * (factor - 1.0) for c in color)


@lru_cache(maxsize=4096)
def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend of two colours: ``t`` = 0 gives ``a``, 1 gives ``b``."""
    return to_rgb(x * (1.0 - t) + y * t for x, y in zip(a, b, strict=True))
