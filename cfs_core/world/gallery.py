"""Overview images and speed: a gallery of faces per style, and a rendering benchmark."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cfs_core.errors import InputError
from cfs_core.imageio import save_png
from cfs_core.world.build import build_scene
from cfs_core.world.raster import scene_labels
from cfs_core.world.schema import sample_params
from cfs_core.world.styles import STYLES, check_size, check_style, render_scene

PANEL_GAP = 16


def gallery(rows: int = 8, cols: int = 8, size: int = 128, seed: int = 0,
            styles: Sequence[str] = STYLES) -> np.ndarray:
    """One panel per style, side by side, each a ``rows`` x ``cols`` grid of the same faces.

    Face ``k`` (row-major) is ``sample_params(seed + k)`` rendered with render seed ``seed + k``.
    """
    if rows < 1 or cols < 1:
        raise InputError(f"a gallery needs at least one row and one column, got {rows}x{cols}")
    check_size(size)
    for style in styles:
        check_style(style)
    scenes = [build_scene(sample_params(seed + k)) for k in range(rows * cols)]
    panels = []
    for style in styles:
        tiles = [render_scene(scene, style, size, seed + k) for k, scene in enumerate(scenes)]
        grid = np.stack(tiles).reshape(rows, cols, size, size, 3).transpose(0, 2, 1, 3, 4)
        panels.append(grid.reshape(rows * size, cols * size, 3))
    gap = np.full((rows * size, PANEL_GAP, 3), 255, dtype=np.uint8)
    return np.concatenate([part for panel in panels for part in (panel, gap)][:-1], axis=1)


def write_gallery(path: str | os.PathLike[str], rows: int = 8, cols: int = 8, size: int = 128,
                  seed: int = 0, styles: Sequence[str] = STYLES) -> Path:
    """Write :func:`gallery` as a PNG (atomically) and return its path."""
    return save_png(gallery(rows, cols, size, seed, styles), path)


def benchmark(size: int = 128, n: int = 200, styles: Sequence[str] = STYLES, seed: int = 0) -> dict[str, float]:
    """Images per second of each style (and of the label map, key ``labels``) on one CPU core.

    The time covers building the scene from parameters and rasterising it; sampling the
    parameters is done beforehand.
    """
    check_size(size)
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    faces = [sample_params(seed + k) for k in range(n)]
    rates: dict[str, float] = {}
    for style in (*styles, "labels"):
        start = time.perf_counter()
        for k, params in enumerate(faces):
            scene = build_scene(params)
            if style == "labels":
                scene_labels(scene, size)
            else:
                render_scene(scene, check_style(style), size, seed + k)
        rates[style] = n / (time.perf_counter() - start)
    return rates
