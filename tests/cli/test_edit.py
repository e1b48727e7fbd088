"""``cfs edit`` end to end on tiny models: image, folder and latent inputs, outputs, resume, sweep, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import Field
from safetensors.torch import load_file
from typer.testing import CliRunner, Result

from cfs_cli.main import make_app
from cfs_core import hookimpl
from cfs_core.latentio import write_latents
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, MethodOptions
from cfs_registry.plugins import PluginHost

FIX = Path(__file__).parent.parent / "fixtures"
TINY_G = FIX / "stylegan2" / "ros_converted_tiny.pt"


class _Options(MethodOptions):
    strength: float = Field(1.0, description="shift size")
    fail: bool = False


class Shift(EditingMethod):
    """Adds strength × 0.5 to every W+ entry (a deterministic, visible edit)."""

    method_id: ClassVar[str] = "shift"
    description: ClassVar[str] = "shift every latent"
    accepts: ClassVar[frozenset[str]] = frozenset({"text", "clipart", "sketch"})
    Options = _Options
    strength_option: ClassVar[str | None] = "strength"

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        if request.options.fail:  # type: ignore[attr-defined]
            raise RuntimeError("method failed on purpose")
        w = request.latents + 0.5 * request.options.strength  # type: ignore[attr-defined]
        ctx.report("shift", 1, 1)
        with torch.no_grad():
            return EditResult(ctx.generator.synthesis(w), w, "w+", info={"shifted": True})


class NoStrength(Shift):
    method_id: ClassVar[str] = "no-strength"
    strength_option: ClassVar[str | None] = None


class Plugin:
    @hookimpl
    def register_methods(self, register: Callable[..., None]) -> None:
        register(Shift)
        register(NoStrength)





@pytest.fixture
def faces(tmp_path: Path) -> Path:
    from cfs_core.world import render, sample_params

    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(render(sample_params(i), "photo", 64)).save(folder / f"face{i}.png")
    return folder


@pytest.fixture
def edit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, encoder_file: Path) -> Callable[..., Result]:
    monkeypatch.setenv("CFS_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CFS_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    host = PluginHost()
    host.register(Plugin(), "test-plugin")
    app = make_app(host)

    def run(*args: object, models: bool = True) -> Result:
        extra = ["--generator", TINY_G, "--encoder", encoder_file] if models else []
        return CliRunner().invoke(app, ["edit", *[str(a) for a in args], *map(str, extra)], catch_exceptions=False)

    return run


def test_image_input_writes_every_output(edit: Callable[..., Result], faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = edit("--method", "shift", "--input", faces / "face0.png", "--text", "red hair", "--out", out)
    assert result.exit_code == 0, result.output
    folder = out / "face0"
    assert sorted(p.name for p in folder.iterdir()) == [
        "edited.png", "latents.safetensors", "manifest.json", "reconstruction.png", "source.png", "strip.png"]
    assert Image.open(folder / "edited.png").size == (32, 32)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["method"] == "shift" and manifest["guidance"]["kind"] == "text"
    assert manifest["runs"][0]["options"] == {"strength": 1.0, "fail": False} and manifest["runs"][0]["info"] == {"shifted": True}
    assert manifest["models"]["generator"] == {"file": str(TINY_G)} and manifest["seed"] == 0
    assert manifest["environment"]["versions"]["torch"] and "invert" in manifest["timings"]
    codes = load_file(folder / "latents.safetensors")
    torch.testing.assert_close(codes["edited"], codes["source"] + 0.5)
    assert not any(p.name.startswith(".") for p in out.iterdir())
    assert "face0" in result.stdout and "done" in result.stdout


def test_input_repeats_and_names_stay_distinct(edit: Callable[..., Result], faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = edit("--method", "shift", "--input", faces / "face0.png", "--input", faces / "face1.png",
                  "--input", faces / "face0.png", "--text", "x", "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["face0", "face0_2", "face1"]  # every input, none overwritten
    again = edit("--method", "shift", "--input", faces / "face0.png", "--input", faces / "face1.png",
                 "--input", faces / "face0.png", "--text", "x", "--out", out)
    assert again.exit_code == 0 and again.stdout.count("skipped") == 3


def test_folder_input_resumes_and_refuses_a_different_edit(edit: Callable[..., Result], faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert edit("--method", "shift", "--input", faces, "--text", "x", "--out", out).exit_code == 0
    stamp = (out / "face1" / "edited.png").stat().st_mtime_ns
    again = edit("--method", "shift", "--input", faces, "--text", "x", "--out", out)
    assert again.exit_code == 0 and again.stdout.count("skipped") == 2
    assert (out / "face1" / "edited.png").stat().st_mtime_ns == stamp
    other = edit("--method", "shift", "--input", faces, "--text", "x", "--out", out, "-o", "strength=2")
    assert other.exit_code == 2 and "holds the results of a different edit" in other.stderr
    forced = edit("--method", "shift", "--input", faces, "--text", "x", "--out", out, "-o", "strength=2", "--force")
    assert forced.exit_code == 0 and forced.stdout.count("done") >= 2


def test_interrupted_item_leaves_no_folder(edit: Callable[..., Result], faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = edit("--method", "shift", "--input", faces, "--text", "x", "--out", out, "-o", "fail=true")
    assert result.exit_code == 1 and "method failed on purpose" in result.stderr
    assert not out.exists() or list(out.iterdir()) == []


def test_latent_input_and_sweep(edit: Callable[..., Result], tmp_path: Path) -> None:
    w = torch.randn(2, 8, 32)
    write_latents(tmp_path / "codes.safetensors", w)
    out = tmp_path / "out"
    result = edit("--method", "shift", "--input", tmp_path / "codes.safetensors", "--sketch", _sketch(tmp_path),
                  "--sweep", "0,1", "--out", out, models=False)
    assert result.exit_code == 2 and "do not fit this generator (W+ is [B, 12, 128])" in result.stderr  # the demo pack's
    result = edit("--method", "shift", "--input", tmp_path / "codes.safetensors", "--sketch", _sketch(tmp_path),
                  "--sweep", "0,1", "--out", out)
    assert result.exit_code == 0, result.output
    folder = out / "codes_000"
    assert {"edited_0.png", "edited_1.png", "reconstruction.png"} <= {p.name for p in folder.iterdir()}
    assert not (folder / "source.png").exists()
    same = np.asarray(Image.open(folder / "edited_0.png"))
    assert np.array_equal(same, np.asarray(Image.open(folder / "reconstruction.png")))  # strength 0 = no edit
    codes = load_file(folder / "latents.safetensors")
    torch.testing.assert_close(codes["source"], w[:1])
    assert (out / "codes_001").is_dir()


def _truncated_png(path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _sketch(tmp_path: Path) -> Path:
    img = np.full((64, 64, 3), 255, np.uint8)
    img[20:44, 30:34] = 0
    Image.fromarray(img).save(tmp_path / "sketch.png")
    return tmp_path / "sketch.png"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "nope", "--text", "x"], "unknown method 'nope'"),
        (["--method", "shift", "--exemplar", "e.png"], "accepts only: clipart, sketch, text (got exemplar)"),
        (["--method", "shift"], "give exactly one guidance (--clipart, --sketch, --text), got 0"),
        (["--method", "shift", "--text", "x", "--clipart", "c.png"], "got 2"),
        (["--method", "shift", "--text", "   "], "text guidance is empty"),
        (["--method", "shift", "--clipart", "missing.png"], "missing.png: no such file"),
        (["--method", "no-strength", "--text", "x", "--strength", "2"], "has no strength option"),
        (["--method", "shift", "--text", "x", "--sweep", "a,b"], "--sweep must be comma-separated numbers"),
        (["--method", "shift", "--text", "x", "-o", "colour=red"], "unknown option 'colour'"),
    ],
)
def test_bad_requests_fail_in_one_line(edit: Callable[..., Result], faces: Path, tmp_path: Path,
                                       args: list[str], message: str) -> None:
    result = edit(*args, "--input", faces, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _truncated_png(p / "cut.png"), "corrupt or truncated"),
        (lambda p: (p / "notes.txt").write_text("hi"), "not an image"),
        (lambda p: Image.new("L", (8, 8)).save(p / "tiny.png"), "too small"),
        (lambda p: None, "no images"),
    ],
)
def test_bad_inputs_fail_in_one_line(edit: Callable[..., Result], tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "in"
    folder.mkdir()
    make(folder)
    target = next(folder.iterdir(), folder) if message != "no images" else folder
    result = edit("--method", "shift", "--text", "x", "--input", target, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_grayscale_and_rgba_inputs_are_accepted(edit: Callable[..., Result], tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("L", (48, 48), 90).save(folder / "gray.png")
    Image.new("RGBA", (48, 40), (200, 10, 10, 120)).save(folder / "rgba.png")
    result = edit("--method", "shift", "--text", "x", "--input", folder, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "gray" / "edited.png").exists() and (tmp_path / "out" / "rgba" / "edited.png").exists()
