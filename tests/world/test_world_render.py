"""Rendering: determinism, sizes, speed-independent facts, and that every attribute shows."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from cfs_core.errors import InputError
from cfs_core.world import (
    SPECS,
    STYLES,
    FaceParams,
    render,
    render_labels,
    sample_params,
)
from cfs_core.world import labels as lb

SIZE = 128


def test_renders_are_deterministic() -> None:
    face = sample_params(11)
    for style in STYLES:
        first = render(face, style, SIZE, seed=4)
        assert first.shape == (SIZE, SIZE, 3) and first.dtype == np.uint8
        assert np.array_equal(first, render(face, style, SIZE, seed=4))
    assert np.array_equal(render_labels(face, SIZE), render_labels(face, SIZE))


def test_the_render_seed_moves_only_texture_and_jitter() -> None:
    face = sample_params(11)
    assert not np.array_equal(render(face, "photo", SIZE, 1), render(face, "photo", SIZE, 2))
    assert not np.array_equal(render(face, "sketch", SIZE, 1), render(face, "sketch", SIZE, 2))
    assert np.array_equal(render(face, "clipart", SIZE, 1), render(face, "clipart", SIZE, 2))
    photo_1, photo_2 = render(face, "photo", SIZE, 1), render(face, "photo", SIZE, 2)
    assert np.abs(photo_1.astype(int) - photo_2.astype(int)).mean() < 3  # texture is subtle


@pytest.mark.parametrize("size", [64, 97, 512, 1024])
def test_any_size_from_64_to_1024(size: int) -> None:
    face = sample_params(2)
    assert render(face, "clipart", size).shape == (size, size, 3)
    assert render_labels(face, size).shape == (size, size)


def test_bad_size_or_style_is_an_input_error() -> None:
    with pytest.raises(InputError, match="from 64 to 1024"):
        render(FaceParams(), "photo", 32)
    with pytest.raises(InputError, match="allowed: photo, clipart, sketch"):
        render(FaceParams(), "oil")


def test_importing_and_rendering_does_not_import_torch() -> None:
    code = ("import sys, cfs_core.world as w; w.render(w.sample_params(0), 'photo', 64); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_labels_cover_the_face_parts(busy_face: FaceParams) -> None:
    present = set(np.unique(render_labels(busy_face, 256)).tolist())
    assert present == set(range(19)) - {lb.HAT, lb.NECK_L}
    with_hat = set(np.unique(render_labels(busy_face.replace(hat="beanie"), 256)).tolist())
    assert lb.HAT in with_hat


def test_left_labels_are_on_the_image_right() -> None:
    labels = render_labels(FaceParams(), 256)
    for left, right in ((lb.L_EYE, lb.R_EYE), (lb.L_BROW, lb.R_BROW), (lb.L_EAR, lb.R_EAR)):
        assert np.nonzero(labels == left)[1].mean() > 128 > np.nonzero(labels == right)[1].mean()


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(steps):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


EYES, BROWS = {lb.L_EYE, lb.R_EYE}, {lb.L_BROW, lb.R_BROW}
MOUTH = {lb.MOUTH, lb.U_LIP, lb.L_LIP}
# attribute -> labels whose pixels it may change (the face's own region for that attribute)
REGIONS: dict[str, set[int]] = {
    "presentation": EYES | BROWS | MOUTH | {lb.SKIN},
    "hair": {lb.HAIR},
    "hair_color": {lb.HAIR} | BROWS,
    "eye_color": EYES,
    "eyebrows": BROWS,
    "expression": EYES | BROWS | MOUTH,
    "glasses": {lb.EYE_G},
    "facial_hair": {lb.HAIR},
    "hat": {lb.HAT},
    "hat_color": {lb.HAT},
    "earrings": {lb.EAR_R},
    "cloth_color": {lb.CLOTH},
    "background": {lb.BACKGROUND},
}
CASES = [(name, value) for name in REGIONS for value in SPECS[name].choices]


@pytest.mark.parametrize(("name", "value"), CASES)
def test_every_attribute_value_visibly_changes_its_own_region(busy_face: FaceParams, name: str, value: str) -> None:
    base = busy_face.replace(hat="cap") if name == "hat_color" else busy_face
    if getattr(base, name) == value:
        base = base.replace(**{name: next(v for v in SPECS[name].choices if v != value)})
    changed = base.replace(**{name: value})
    before, after = render(base, "clipart", SIZE), render(changed, "clipart", SIZE)
    diff = np.abs(before.astype(int) - after.astype(int)).sum(axis=2) > 24
    region = np.isin(render_labels(base, SIZE), list(REGIONS[name]))
    region |= np.isin(render_labels(changed, SIZE), list(REGIONS[name]))
    region = _dilate(region, 4 if name == "expression" else 2)  # contours and smile creases
    assert diff.sum() >= 12, f"{name}={value} is hardly visible at {SIZE} px"
    assert diff[region].sum() >= 0.95 * diff.sum(), f"{name}={value} changes pixels outside its region"


@pytest.mark.parametrize("name", [n for n, s in SPECS.items() if s.group == "identity"])
def test_every_identity_parameter_changes_the_face(name: str) -> None:
    spec = SPECS[name]
    low, high = FaceParams(**{name: spec.low}), FaceParams(**{name: spec.high})
    diff = np.abs(render(low, "clipart", SIZE).astype(int) - render(high, "clipart", SIZE).astype(int))
    assert (diff.sum(axis=2) > 24).sum() >= 20, name


def test_photo_parameters_change_only_the_photo() -> None:
    face = sample_params(5, light_angle=-60.0, texture=0.2)
    other = face.replace(light_angle=60.0, texture=0.9)
    assert np.array_equal(render(face, "clipart", SIZE), render(other, "clipart", SIZE))
    assert np.array_equal(render(face, "sketch", SIZE), render(other, "sketch", SIZE))
    left_lit, right_lit = render(face, "photo", SIZE).astype(float), render(other, "photo", SIZE).astype(float)
    face_mask = render_labels(face, SIZE) == lb.SKIN
    cols = np.nonzero(face_mask)[1]
    left_half = face_mask & (np.arange(SIZE)[None, :] < np.median(cols))
    right_half = face_mask & ~left_half
    assert left_lit[left_half].mean() - left_lit[right_half].mean() > 3  # lit from the image left
    assert right_lit[right_half].mean() - right_lit[left_half].mean() > 3
