"""Labels agree with the drawing: same scene, same geometry, in every style and at every size."""

from __future__ import annotations

import numpy as np

from cfs_core.world import (
    LABEL_NAMES,
    FaceParams,
    colorize_labels,
    colors,
    label_palette,
    render,
    render_labels,
)
from cfs_core.world import labels as lb

SIZE = 256
FACE = FaceParams(hair="long", hair_color="blue", cloth_color="red", background="yellow", hat="beanie",
                  hat_color="green", skin_tone=0.1, expression="smile")


def _erode(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        out[1:-1, 1:-1] &= out[:-2, 1:-1] & out[2:, 1:-1] & out[1:-1, :-2] & out[1:-1, 2:]
    return out


def _near(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 6) -> np.ndarray:
    return np.abs(image.astype(int) - np.asarray(rgb)).max(axis=2) <= tolerance


def test_names_and_palette() -> None:
    assert LABEL_NAMES[:6] == ("background", "skin", "nose", "eye_g", "l_eye", "r_eye")
    assert LABEL_NAMES[13:] == ("hair", "hat", "ear_r", "neck_l", "neck", "cloth")
    assert label_palette().shape == (19, 3)
    assert len({tuple(c) for c in label_palette()}) == 19
    labels = render_labels(FACE, 64)
    assert np.array_equal(colorize_labels(labels)[labels == lb.HAIR][0], label_palette()[lb.HAIR])


def test_flat_colours_of_the_clipart_sit_on_their_labels() -> None:
    image, labels = render(FACE, "clipart", SIZE), render_labels(FACE, SIZE)
    hat = colors.HAT_COLORS["green"]
    expected = [  # (fill colours, the labels they may lie on)
        ([colors.BACKGROUND_COLORS["yellow"]], {lb.BACKGROUND}),
        ([colors.HAIR_COLORS["blue"]], {lb.HAIR}),
        ([colors.CLOTH_COLORS["red"]], {lb.CLOTH}),
        ([hat, colors.shade(hat, 0.9), colors.shade(hat, 1.25)], {lb.HAT}),  # dome, cuff, pompom
        ([colors.skin_color(FACE.skin_tone)], {lb.SKIN, lb.NOSE}),
    ]
    for fills, allowed in expected:
        painted = np.logical_or.reduce([_near(image, rgb) for rgb in fills])
        region = _erode(np.isin(labels, list(allowed)), 3)
        assert np.isin(labels[painted], list(allowed)).mean() > 0.98, fills  # the colours lie on their labels
        assert painted[region].mean() > 0.85, fills  # and fill them, but for strands and contours


def test_sketch_and_clipart_contours_follow_the_label_edges() -> None:
    labels = render_labels(FACE, SIZE)
    silhouette = labels == lb.BACKGROUND
    edge = silhouette & ~_erode(silhouette, 1)
    edge[[0, -1], :] = edge[:, [0, -1]] = False
    for style in ("sketch", "clipart"):
        ink = render(FACE, style, SIZE).min(axis=2) < 110
        near_ink = ink.copy()
        for _ in range(2):
            near_ink[1:] |= near_ink[:-1].copy()
            near_ink[:-1] |= near_ink[1:].copy()
            near_ink[:, 1:] |= near_ink[:, :-1].copy()
            near_ink[:, :-1] |= near_ink[:, 1:].copy()
        assert near_ink[edge].mean() > 0.9, style


def test_labels_agree_across_sizes() -> None:
    fine, coarse = render_labels(FACE, 512), render_labels(FACE, 64)
    assert (fine[4::8, 4::8] == coarse).mean() > 0.93


def test_photo_shares_the_geometry() -> None:
    image, labels = render(FACE, "photo", SIZE).astype(int), render_labels(FACE, SIZE)
    hair = _erode(labels == lb.HAIR, 3)
    cloth = _erode(labels == lb.CLOTH, 3)
    assert image[hair][:, 2].mean() > image[hair][:, 0].mean() + 60  # blue hair
    assert image[cloth][:, 0].mean() > image[cloth][:, 2].mean() + 60  # red shirt
