"""``cfs_core.imageio.read_image``: every mode becomes uint8 RGB; every bad file is one InputError line."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cfs_core.errors import InputError
from cfs_core.imageio import MIN_SIDE, read_image

RNG = np.random.default_rng(0)
PHOTO = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)


def save(image: Image.Image, path: Path, **kwargs: object) -> Path:
    image.save(path, **kwargs)
    return path


def refused(path: Path | str, **kwargs: object) -> str:
    """The one-line message of the InputError ``read_image(path)`` raises."""
    with pytest.raises(InputError) as info:
        read_image(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- formats


@pytest.mark.parametrize(("fmt", "suffix", "kwargs"), [
    ("PNG", "png", {}),
    ("WEBP", "webp", {"lossless": True}),
])
def test_lossless_formats_round_trip(tmp_path: Path, fmt: str, suffix: str, kwargs: dict[str, object]) -> None:
    path = save(Image.fromarray(PHOTO), tmp_path / f"photo.{suffix}", format=fmt, **kwargs)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (24, 32, 3)
    assert np.array_equal(out, PHOTO)


@pytest.mark.parametrize("suffix", ["jpg", "webp"])
def test_lossy_formats_read_close(tmp_path: Path, suffix: str) -> None:
    smooth = np.zeros((24, 32, 3), np.uint8)
    smooth[..., 0] = np.linspace(0, 255, 32, dtype=np.uint8)[None, :]
    smooth[..., 1] = 128
    path = save(Image.fromarray(smooth), tmp_path / f"photo.{suffix}", quality=95)
    out = read_image(path)
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - smooth.astype(int)).mean() < 6


def test_format_is_read_from_content_not_suffix(tmp_path: Path) -> None:
    path = save(Image.fromarray(PHOTO), tmp_path / "really-a-png.jpg", format="PNG")
    assert np.array_equal(read_image(path), PHOTO)


# ----------------------------------------------------------------------------- modes


def test_rgba_transparency_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[...] = (255, 0, 0, 0)  # fully transparent red: white
    rgba[5, 5] = (0, 0, 255, 255)  # opaque blue
    rgba[6, 6] = (0, 0, 0, 128)  # half-transparent black: mid gray
    out = read_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "clip.png"))
    assert out.shape == (20, 20, 3)
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[5, 5]) == (0, 0, 255)
    assert all(abs(int(v) - 127) <= 1 for v in out[6, 6])


def test_background_colour_can_be_chosen(tmp_path: Path) -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    out = read_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "clear.png"), background=(10, 20, 30))
    assert tuple(out[3, 3]) == (10, 20, 30)


def test_la_transparency_is_composited_on_white(tmp_path: Path) -> None:
    la = np.zeros((20, 20, 2), np.uint8)
    la[..., 0] = 0
    la[..., 1] = 0  # transparent black: white
    la[2, 3] = (40, 255)  # opaque dark gray
    out = read_image(save(Image.fromarray(la, "LA"), tmp_path / "la.png"))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[2, 3]) == (40, 40, 40)


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("P", (20, 20), 0)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 6))  # index 0 red, 1 blue
    img.putpixel((3, 4), 1)
    path = save(img, tmp_path / "palette.png", transparency=0)
    assert Image.open(path).mode == "P"
    out = read_image(path)
    assert tuple(out[0, 0]) == (255, 255, 255)  # the transparent red
    assert tuple(out[4, 3]) == (0, 0, 255)


def test_palette_without_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (20, 20), 1)
    img.putpalette([255, 0, 0, 0, 200, 0] + [0] * (256 * 3 - 6))
    out = read_image(save(img, tmp_path / "palette.png"))
    assert tuple(out[0, 0]) == (0, 200, 0)


def test_grayscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    gray = np.full((20, 24), 77, np.uint8)
    gray[0, 0] = 200
    out = read_image(save(Image.fromarray(gray, "L"), tmp_path / "gray.png"))
    assert out.shape == (20, 24, 3)
    assert tuple(out[0, 0]) == (200, 200, 200) and tuple(out[5, 5]) == (77, 77, 77)


def test_16_bit_grayscale_is_scaled_from_its_full_range(tmp_path: Path) -> None:
    ramp = np.tile(np.array([0, 257 * 64, 257 * 128, 65535], np.uint16).repeat(5), (20, 1))
    path = save(Image.fromarray(ramp), tmp_path / "ramp16.png")
    assert Image.open(path).mode.startswith("I")
    out = read_image(path)
    assert out.shape == (20, 20, 3)
    assert [int(v) for v in out[0, ::5, 0]] == [0, 64, 128, 255]


def test_dark_16_bit_image_stays_dark(tmp_path: Path) -> None:
    """16-bit values are scaled by 65535 even when all of them are small (no 8-bit guess)."""
    dark = np.full((20, 20), 200, np.uint16)  # 0.3 % of the 16-bit range
    path = save(Image.fromarray(dark), tmp_path / "dark16.png")
    assert Image.open(path).mode == "I;16"
    assert int(read_image(path).max()) <= 1


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = save(Image.new("CMYK", (20, 20), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    r, g, b = (int(v) for v in read_image(path)[10, 10])
    assert r >= 240 and g <= 15 and b <= 15


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    """Orientation 6: the stored image must be turned 90° clockwise to be upright."""
    stored = np.full((20, 40, 3), 255, np.uint8)  # stored 40 wide, 20 high
    stored[:6, :6] = (255, 0, 0)  # marker: stored top-left
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.fromarray(stored), tmp_path / "phone.jpg", quality=95, exif=exif)
    out = read_image(path)
    assert out.shape == (40, 20, 3)  # upright: 20 wide, 40 high
    top_right = out[:5, -5:].reshape(-1, 3).mean(axis=0)
    assert top_right[0] > 200 and top_right[1] < 60 and top_right[2] < 60
    for corner in (out[:5, :5], out[-5:, :5], out[-5:, -5:]):
        assert corner.mean() > 230  # white elsewhere


def test_multi_picture_jpeg_reads_its_first_picture(tmp_path: Path) -> None:
    """Camera JPEGs with a preview picture (MPO) are JPEG files: read the main picture."""
    path = tmp_path / "camera.jpg"
    Image.new("RGB", (24, 24), (250, 0, 0)).save(path, format="MPO", save_all=True,
                                                 append_images=[Image.new("RGB", (24, 24), (0, 250, 0))])
    assert Image.open(path).format == "MPO"
    r, g, b = (int(v) for v in read_image(path)[12, 12])
    assert r > 230 and g < 25 and b < 25


# ----------------------------------------------------------------------------- refusals


def _png_bytes(tmp_path: Path) -> bytes:
    path = save(Image.fromarray(PHOTO), tmp_path / "full.png")
    return path.read_bytes()


@pytest.mark.parametrize(("fmt", "keep"), [("PNG", 0.5), ("PNG", 0.1), ("JPEG", 0.5), ("JPEG", 0.1), ("WEBP", 0.5)])
def test_truncated_file(tmp_path: Path, fmt: str, keep: float) -> None:
    full = save(Image.fromarray(PHOTO), tmp_path / f"full.{fmt.lower()}", format=fmt)
    data = full.read_bytes()
    cut = tmp_path / f"cut.{fmt.lower()}"
    cut.write_bytes(data[: int(len(data) * keep)])
    message = refused(cut)
    assert message.startswith(f"{cut}: corrupt or truncated image")


def test_corrupt_png_data(tmp_path: Path) -> None:
    data = bytearray(_png_bytes(tmp_path))
    data[60:80] = b"\x00" * 20  # damage the compressed data (CRC and zlib stream)
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(data))
    assert "corrupt or truncated image" in refused(path)


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n" * 10)
    assert refused(path) == f"{path}: not an image file (or a format PIL cannot read)"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "not an image" in refused(path)


@pytest.mark.parametrize(("fmt", "suffix"), [("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tif")])
def test_other_formats_are_not_supported(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = save(Image.fromarray(PHOTO), tmp_path / f"image.{suffix}", format=fmt)
    message = refused(path)
    assert f"{fmt} images are not supported" in message and "PNG, JPEG or WebP" in message


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR declares ``width``×``height`` (the data is not there)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 8)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [9000, 100_000])
def test_header_declaring_a_huge_image(tmp_path: Path, side: int) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(side, side))
    assert path.stat().st_size < 200
    assert "image is too large" in refused(path)


def test_pixel_limit_is_a_parameter(tmp_path: Path) -> None:
    path = save(Image.fromarray(PHOTO), tmp_path / "photo.png")  # 32×24 = 768 px
    message = refused(path, max_pixels=500)
    assert "image is too large (32×24" in message and "0.0005 megapixels" in message
    assert read_image(path, max_pixels=768).shape == (24, 32, 3)


def test_too_small(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (8, 8), (1, 2, 3)), tmp_path / "tiny.png")
    assert refused(path) == f"{path}: image is too small (8×8; at least {MIN_SIDE} px per side)"
    thin = save(Image.new("RGB", (64, MIN_SIDE - 1)), tmp_path / "thin.png")
    assert "too small" in refused(thin)
    assert read_image(save(Image.new("RGB", (MIN_SIDE, MIN_SIDE)), tmp_path / "edge.png")).shape == (16, 16, 3)


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    assert refused(folder) == f"{folder}: not a file"


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    assert refused(missing) == f"{missing}: no such file"
    assert refused(str(missing)) == f"{missing}: no such file"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "JPEG"])
def test_unreadable_exif_block_keeps_the_pixels(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"odd-exif.{fmt.lower()}"
    Image.fromarray(PHOTO).save(path, format=fmt, exif=b"Exif\x00\x00garbage-garbage-garbage", lossless=True)
    out = read_image(path)
    assert out.shape == (24, 32, 3)
    if fmt != "JPEG":
        assert np.array_equal(out, PHOTO)


def test_unreadable_file_says_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save(Image.fromarray(PHOTO), tmp_path / "locked.png")

    def denied(*args: object, **kwargs: object) -> Image.Image:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Image, "open", denied)  # tests run as root, so chmod would not do
    assert refused(path) == f"{path}: permission denied"
