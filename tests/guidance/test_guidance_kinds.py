"""The first-party guidance kinds through the conformance kit, plus kind-specific behaviour."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

import cfs_plugins.guidance
from cfs_core.errors import InputError
from cfs_core.guidance import MAX_TEXT_CHARS, Guidance, GuidanceKind, ImageGuidanceKind
from cfs_core.testing import GuidanceKindTests
from cfs_plugins.guidance.kinds import ClipartKind, ExemplarKind, SketchKind, TextKind

RNG = np.random.default_rng(1)


def write_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def bad_image_sources(tmp_path: Path) -> list[str]:
    """Files every image kind must refuse with a one-line InputError."""
    text = tmp_path / "notes.png"
    text.write_text("not pixels")
    tiny = write_png(tmp_path / "tiny.png", np.zeros((8, 8, 3), np.uint8))
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (32, 32)).save(gif)
    folder = tmp_path / "folder"
    folder.mkdir()
    return [str(tmp_path / "missing.png"), str(text), str(tiny), str(gif), str(folder)]


# ----------------------------------------------------------------------------- the kit


class TestTextKind(GuidanceKindTests):
    plugin = cfs_plugins.guidance
    kind_cls = TextKind

    def get_valid_source(self, tmp_path: Path) -> str:
        return "a smiling face with   round glasses"

    def get_invalid_sources(self, tmp_path: Path) -> list[str]:
        return ["", "   \n\t  ", "x" * (MAX_TEXT_CHARS + 1)]


class TestClipartKind(GuidanceKindTests):
    plugin = cfs_plugins.guidance
    kind_cls = ClipartKind

    def get_valid_source(self, tmp_path: Path) -> str:
        rgba = RNG.integers(0, 256, (32, 32, 4), dtype=np.uint8)
        return str(write_png(tmp_path / "clip.png", rgba))

    def get_invalid_sources(self, tmp_path: Path) -> list[str]:
        return bad_image_sources(tmp_path)


class TestSketchKind(GuidanceKindTests):
    plugin = cfs_plugins.guidance
    kind_cls = SketchKind

    def get_valid_source(self, tmp_path: Path) -> str:
        drawing = np.full((32, 32), 255, np.uint8)
        drawing[8:24, 15:17] = 0
        return str(write_png(tmp_path / "sketch.png", drawing))

    def get_invalid_sources(self, tmp_path: Path) -> list[str]:
        return bad_image_sources(tmp_path)


class TestExemplarKind(GuidanceKindTests):
    plugin = cfs_plugins.guidance
    kind_cls = ExemplarKind

    def get_valid_source(self, tmp_path: Path) -> str:
        path = tmp_path / "photo.jpg"
        Image.fromarray(RNG.integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(path, quality=90)
        return str(path)

    def get_invalid_sources(self, tmp_path: Path) -> list[str]:
        return bad_image_sources(tmp_path)


def test_builtin_kinds_describe_themselves() -> None:
    described = {cls.kind_id: cls.describe() for cls in (TextKind, ClipartKind, SketchKind, ExemplarKind)}
    assert {k: d["modality"] for k, d in described.items()} == {
        "text": "text", "clipart": "image", "sketch": "image", "exemplar": "image"}
    assert all(d["description"].strip() for d in described.values())
    assert all(issubclass(cls, GuidanceKind) for cls in (TextKind, ClipartKind, SketchKind, ExemplarKind))


# ----------------------------------------------------------------------------- text


def test_text_whitespace_is_normalised() -> None:
    guidance = TextKind().load("  a man\twith\n\n red   hair  ")
    assert guidance.text == "a man with red hair" and guidance.source == "a man with red hair"
    assert guidance.kind == "text" and guidance.image is None


@pytest.mark.parametrize("source", ["", " ", "\n\t \r\n"])
def test_empty_text_is_refused(source: str) -> None:
    with pytest.raises(InputError, match="text guidance is empty"):
        TextKind().load(source)


def test_text_length_limit() -> None:
    at_limit = "y" * MAX_TEXT_CHARS
    assert TextKind().load(at_limit).text == at_limit
    with pytest.raises(InputError, match=f"is {MAX_TEXT_CHARS + 1} characters long \\(at most {MAX_TEXT_CHARS}\\)"):
        TextKind().load(at_limit + "y")
    # the limit applies after whitespace is normalised
    assert TextKind().load(" " * 5000 + at_limit + " " * 5000).text == at_limit


def test_text_digest_is_of_the_normalised_text() -> None:
    kind = TextKind()
    assert kind.load("red   hair").digest == kind.load("red hair\n").digest
    assert kind.load("red hair").digest != kind.load("red hat").digest


# ----------------------------------------------------------------------------- sketch


def _stroke_image(background: int, stroke: int) -> np.ndarray:
    image = np.full((32, 32, 3), background, np.uint8)
    image[4:28, 10:13] = stroke  # a vertical stroke
    image[20:23, 4:28] = stroke  # a horizontal stroke
    return image


def test_sketch_light_on_dark_is_inverted(tmp_path: Path) -> None:
    path = write_png(tmp_path / "chalk.png", _stroke_image(background=0, stroke=255))
    out = SketchKind().load(str(path)).image
    assert out is not None and out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert tuple(out[0, 0]) == (255, 255, 255)  # the black background became white
    assert tuple(out[10, 11]) == (0, 0, 0)  # the white stroke became dark


def test_sketch_dark_on_light_keeps_its_polarity(tmp_path: Path) -> None:
    path = write_png(tmp_path / "pencil.png", _stroke_image(background=230, stroke=60))
    out = SketchKind().load(str(path)).image
    assert out is not None
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[10, 11]) == (0, 0, 0)  # contrast stretched


def test_sketch_colour_drawing_becomes_gray(tmp_path: Path) -> None:
    image = np.full((32, 32, 3), 255, np.uint8)
    image[4:28, 10:13] = (200, 0, 0)
    out = SketchKind().load(str(write_png(tmp_path / "red-pen.png", image))).image
    assert out is not None and out.shape == (32, 32, 3)
    assert (out[..., 0] == out[..., 2]).all()
    assert out[10, 11, 0] < 100 and out[0, 0, 0] == 255


def test_sketch_same_result_both_polarities(tmp_path: Path) -> None:
    light = SketchKind().load(str(write_png(tmp_path / "a.png", _stroke_image(255, 0)))).image
    dark = SketchKind().load(str(write_png(tmp_path / "b.png", _stroke_image(0, 255)))).image
    assert light is not None and dark is not None and np.array_equal(light, dark)


# ----------------------------------------------------------------------------- image kinds


def test_clipart_transparency_is_white(tmp_path: Path) -> None:
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[10:20, 10:20] = (0, 128, 0, 255)
    out = ClipartKind().load(str(write_png(tmp_path / "clip.png", rgba))).image
    assert out is not None
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[15, 15]) == (0, 128, 0)


def test_exemplar_keeps_the_photo(tmp_path: Path) -> None:
    photo = RNG.integers(0, 256, (20, 36, 3), dtype=np.uint8)
    guidance = ExemplarKind().load(str(write_png(tmp_path / "photo.png", photo)))
    assert guidance.image is not None and np.array_equal(guidance.image, photo)
    assert guidance.describe()["size"] == [36, 20] and guidance.describe()["kind"] == "exemplar"


def test_image_kind_accepts_a_home_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_png(tmp_path / "photo.png", np.zeros((20, 20, 3), np.uint8))
    guidance = ExemplarKind().load("~/photo.png")
    assert guidance.source == str(tmp_path / "photo.png")


def test_image_kind_pixel_limit_is_a_class_attribute(tmp_path: Path) -> None:
    class SmallKind(ImageGuidanceKind):
        kind_id: ClassVar[str] = "small"
        description: ClassVar[str] = "tiny images only"
        max_pixels: ClassVar[int] = 500

    path = write_png(tmp_path / "photo.png", np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(InputError, match=r"too large \(32×24; the limit is 0\.0005 megapixels\)"):
        SmallKind().load(str(path))
    assert ExemplarKind().load(str(path)).image is not None


# ----------------------------------------------------------------------------- digests


def test_digest_depends_on_content_not_on_the_file_name(tmp_path: Path) -> None:
    photo = RNG.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    a = ExemplarKind().load(str(write_png(tmp_path / "a.png", photo)))
    b = ExemplarKind().load(str(write_png(tmp_path / "renamed-copy.png", photo)))
    assert a.source != b.source
    assert a.digest == b.digest and len(a.digest) == 64
    changed = photo.copy()
    changed[0, 0, 0] ^= 1
    c = ExemplarKind().load(str(write_png(tmp_path / "a2.png", changed)))
    assert c.digest != a.digest


def test_digest_is_of_the_decoded_pixels(tmp_path: Path) -> None:
    """The same pixels as PNG and as lossless WebP give the same digest."""
    photo = RNG.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    png = ClipartKind().load(str(write_png(tmp_path / "c.png", photo)))
    webp_path = tmp_path / "c.webp"
    Image.fromarray(photo).save(webp_path, lossless=True)
    assert ClipartKind().load(str(webp_path)).digest == png.digest


def test_digest_depends_on_the_shape() -> None:
    from cfs_core.guidance import image_digest

    flat = np.zeros((4, 6, 3), np.uint8)
    assert image_digest(flat) != image_digest(flat.reshape(6, 4, 3))


def test_guidance_describe_has_no_pixels(tmp_path: Path) -> None:
    guidance: Guidance = ClipartKind().load(str(write_png(tmp_path / "p.png", np.zeros((20, 30, 3), np.uint8))))
    assert guidance.describe() == {"kind": "clipart", "source": str(tmp_path / "p.png"),
                                   "sha256": guidance.digest, "size": [30, 20]}
