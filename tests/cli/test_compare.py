"""``cfs compare`` end to end on the tiny generator and encoder, with fake CLIP, identity net and parser.

The fake resources arrive as role files (``--clip/--identity/--parser``, dummy files whose loading
is redirected to ``cfs_core.fakes``); the model set is cut down to the files given, so a test
never depends on what the demo pack happens to ship.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner, Result

from cfs_cli.main import make_app
from cfs_core import hookimpl
from cfs_core.fakes import FakeClip, FakeIdentity, FakeParser
from cfs_core.latentio import write_latents
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, MethodOptions
from cfs_registry.compare import PeakMemory
from cfs_registry.compare_report import LABEL_H, PAD, grid_size, tile_size
from cfs_registry.plugins import PluginHost
from cli_helpers import use_fake_roles  # type: ignore[import-not-found]

FIX = Path(__file__).parent.parent / "fixtures"
TINY_G = FIX / "stylegan2" / "ros_converted_tiny.pt"
ALL_METRICS = ["identity", "clip-target", "clip-direction", "background", "seconds", "peak-memory"]


class _ShiftOptions(MethodOptions):
    strength: float = 1.0
    fail: bool = False


class Shift(EditingMethod):
    """Adds strength × 0.5 to every W+ entry (a visible edit); accepts text and sketches."""

    method_id: ClassVar[str] = "shift"
    description: ClassVar[str] = "shift every latent"
    accepts: ClassVar[frozenset[str]] = frozenset({"text", "sketch"})
    Options = _ShiftOptions

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        if request.options.fail:  # type: ignore[attr-defined]
            raise RuntimeError("method failed on purpose")
        w = request.latents + 0.5 * request.options.strength  # type: ignore[attr-defined]
        with torch.no_grad():
            return EditResult(ctx.generator.synthesis(w, noise="const"), w, "w+")


class Still(EditingMethod):
    """Returns the source unchanged (identity 1, background 0); accepts text."""

    method_id: ClassVar[str] = "still"
    description: ClassVar[str] = "no edit at all"
    accepts: ClassVar[frozenset[str]] = frozenset({"text"})

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        with torch.no_grad():
            return EditResult(ctx.generator.synthesis(request.latents, noise="const"), request.latents, "w+")


class SketchOnly(Still):
    method_id: ClassVar[str] = "sketchy"
    description: ClassVar[str] = "accepts sketches only"
    accepts: ClassVar[frozenset[str]] = frozenset({"sketch"})


class Plugin:
    @hookimpl
    def register_methods(self, register: Callable[..., None]) -> None:
        for method in (Shift, Still, SketchOnly):
            register(method)


FAKES: dict[str, Callable[[], Any]] = {"clip": FakeClip, "identity": FakeIdentity, "parser": FakeParser}





@pytest.fixture
def faces(tmp_path: Path) -> Path:
    from cfs_core.world import render, sample_params

    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(render(sample_params(i), "photo", 64)).save(folder / f"face{i}.png")
    return folder


@pytest.fixture
def compare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, encoder_file: Path) -> Callable[..., Result]:
    """``compare(*args, roles=("clip", "identity", "parser"), encoder=True)``: run ``cfs compare``."""
    monkeypatch.setenv("CFS_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CFS_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    use_fake_roles(monkeypatch, FAKES)
    host = PluginHost()
    host.register(Plugin(), "test-plugin")
    app = make_app(host)
    dummy = tmp_path / "fake-net.bin"
    dummy.write_bytes(b"fake")

    def run(*args: object, roles: tuple[str, ...] = ("clip", "identity", "parser"), encoder: bool = True) -> Result:
        extra: list[object] = ["--generator", TINY_G, *(["--encoder", encoder_file] if encoder else [])]
        for role in roles:
            extra += [f"--{role}", dummy]
        return CliRunner().invoke(app, ["compare", *map(str, args), *map(str, extra)], catch_exceptions=False)

    return run


def _column(grid: np.ndarray, c: int, tile: int) -> np.ndarray:
    x = PAD + c * (tile + PAD)
    return grid[:, x : x + tile]


def test_compare_writes_grid_report_and_metrics(compare: Callable[..., Result], faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = compare("--methods", "shift,still,sketchy", "--input", faces, "--text", "red hair", "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "metrics.json", "report.html"]

    grid = np.asarray(Image.open(out / "grid.png"))
    tile = tile_size(32)
    assert (grid.shape[1], grid.shape[0]) == grid_size(2, 4, tile)  # 2 inputs × (source, text, shift, still)
    for c in range(4):  # every column has a label: dark pixels in its label band
        assert _column(grid, c, tile)[:LABEL_H].min() < 100
    for r in range(2):
        top = LABEL_H + PAD + r * (tile + PAD)
        source, shift, still = (_column(grid, c, tile)[top + 20 : top + tile] for c in (0, 2, 3))  # under the name box
        assert np.array_equal(source, still)  # the unchanged edit looks like its source
        assert not np.array_equal(source, shift)

    data = json.loads((out / "metrics.json").read_text())
    assert list(data["methods"]) == ["shift", "still"] and data["inputs"] == ["face0", "face1"]
    assert list(data["metrics"]) == ALL_METRICS
    assert data["skipped"] == {"methods": {"sketchy": "does not accept text guidance (accepts: sketch)"}, "metrics": {}}
    still, shift = data["methods"]["still"], data["methods"]["shift"]
    for name in ("face0", "face1"):
        assert still["inputs"][name]["identity"] == pytest.approx(1.0, abs=1e-6)
        assert still["inputs"][name]["background"] == 0.0 and still["inputs"][name]["clip-direction"] == 0.0
        assert shift["inputs"][name]["identity"] < 0.999 and shift["inputs"][name]["background"] > 0
        assert shift["inputs"][name]["seconds"] > 0 and shift["inputs"][name]["peak-memory"] >= 0
        assert shift["timing"][name]["seconds"] > 0
    assert shift["means"]["identity"] == pytest.approx(np.mean([shift["inputs"][n]["identity"] for n in ("face0", "face1")]))
    assert shift["options"] == {"strength": 1.0, "fail": False} and still["options"] == {}
    assert data["settings"]["guidance"]["source"] == "red hair" and data["settings"]["seed"] == 0
    assert data["settings"]["models"]["generator"] == {"file": str(TINY_G)} and data["memory"]

    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and '<table class="summary">' in page
    assert "<th>identity ↑</th>" in page and "<th>background ↓</th>" in page
    # the grid, then per input: input photo, source, guidance tile, 2 edits
    assert page.count("data:image/png;base64,") == 1 + 2 * 5
    assert "sketchy</b> skipped: does not accept text guidance" in page and "red hair" in page
    assert "src=\"http" not in page  # self-contained

    assert "shift" in result.stdout and "still" in result.stdout
    assert "method 'sketchy' skipped: does not accept text guidance (accepts: sketch)" in result.stdout
    assert "identity ↑" in result.stdout


def test_metrics_without_their_models_are_skipped(compare: Callable[..., Result], faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = compare("--methods", "still", "--input", faces / "face0.png", "--input", faces / "face0.png", "--text", "x",
                     "--out", out, roles=("clip",))
    assert result.exit_code == 0, result.output
    data = json.loads((out / "metrics.json").read_text())
    assert data["inputs"] == ["face0", "face0_2"]  # several --input paths, names kept distinct
    assert list(data["metrics"]) == ["clip-target", "clip-direction", "seconds", "peak-memory"]
    assert data["skipped"]["metrics"] == {
        "identity": "needs identity, which the models of this run do not provide",
        "background": "needs parser, which the models of this run do not provide"}
    assert "metric 'identity' skipped: needs identity" in result.stdout
    assert "metric <b>background</b> skipped" in (out / "report.html").read_text()

    chosen = compare("--methods", "still", "--input", faces / "face0.png", "--text", "x", "--out", out,
                     "--metrics", "identity,seconds", roles=())
    assert chosen.exit_code == 0, chosen.output
    data = json.loads((out / "metrics.json").read_text())
    assert list(data["metrics"]) == ["seconds"] and list(data["skipped"]["metrics"]) == ["identity"]
    assert list(data["methods"]["still"]["inputs"]["face0"]) == ["seconds"]


def test_latent_inputs_and_per_method_options(compare: Callable[..., Result], tmp_path: Path) -> None:
    write_latents(tmp_path / "codes.safetensors", torch.randn(3, 8, 32))
    sketch = np.full((64, 64, 3), 255, np.uint8)
    sketch[20:44, 30:34] = 0
    Image.fromarray(sketch).save(tmp_path / "sketch.png")
    out = tmp_path / "out"
    result = compare("--methods", "shift,still,sketchy", "--input", tmp_path / "codes.safetensors", "--sketch",
                     tmp_path / "sketch.png", "-o", "shift.strength=0", "--out", out, "--metrics", "identity", encoder=False)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "metrics.json").read_text())
    assert data["inputs"] == ["codes_000", "codes_001", "codes_002"]
    assert list(data["methods"]) == ["shift", "sketchy"] and data["skipped"]["methods"] == {
        "still": "does not accept sketch guidance (accepts: text)"}
    assert data["methods"]["shift"]["options"]["strength"] == 0.0  # strength 0: no edit
    assert data["methods"]["shift"]["means"]["identity"] == pytest.approx(1.0, abs=1e-6)
    grid = Image.open(out / "grid.png")
    assert grid.size == grid_size(3, 4, tile_size(32))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--methods", "shift,nope", "--text", "x"], "unknown method 'nope'"),
        (["--methods", "shift"], "give exactly one guidance (--text, --clipart, --sketch, --exemplar or --guide KIND=VALUE), got 0"),
        (["--methods", "shift", "--text", "x", "--sketch", "s.png"], "got 2"),
        (["--methods", "shift", "--text", "x", "-o", "latent-opt.steps=3"],
         "option 'latent-opt.steps=3' is for method 'latent-opt', which is not in --methods (shift)"),
        (["--methods", "shift", "--text", "x", "-o", "strength=3"], "is not of the form METHOD.KEY=VALUE"),
        (["--methods", "shift", "--text", "x", "-o", "shift.colour=red"], "method 'shift': unknown option 'colour'"),
        (["--methods", "sketchy", "--text", "x"], "none of the methods (sketchy) accepts text guidance"),
        (["--methods", "shift", "--text", "x", "--metrics", "identity,nope"], "unknown metric 'nope'"),
        (["--methods", " , ", "--text", "x"], "--methods needs at least one id"),
        (["--methods", "shift", "--text", "   "], "text guidance is empty"),
    ],
)
def test_bad_requests_fail_in_one_line(compare: Callable[..., Result], faces: Path, tmp_path: Path,
                                       args: list[str], message: str) -> None:
    result = compare(*args, "--input", faces, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_bad_input_and_missing_encoder_fail_in_one_line(compare: Callable[..., Result], faces: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    bad = compare("--methods", "shift", "--text", "x", "--input", tmp_path / "notes.txt", "--out", tmp_path / "out")
    assert bad.exit_code == 2 and "not an image" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    no_encoder = compare("--methods", "shift", "--text", "x", "--input", faces, "--out", tmp_path / "out", encoder=False)
    assert no_encoder.exit_code == 2 and "no encoder model" in no_encoder.stderr
    assert not (tmp_path / "out").exists()


def test_a_failing_method_writes_nothing(compare: Callable[..., Result], faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    failed = compare("--methods", "still,shift", "--input", faces, "--text", "x", "-o", "shift.fail=true", "--out", out)
    assert failed.exit_code == 1 and "method failed on purpose" in failed.stderr
    assert not out.exists()
    assert compare("--methods", "still", "--input", faces, "--text", "x", "--out", out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = compare("--methods", "still,shift", "--input", faces, "--text", "x", "-o", "shift.fail=true", "--out", out)
    assert again.exit_code == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier results are untouched, no temp files


def test_peak_memory_measures_the_block() -> None:
    with PeakMemory("cpu") as measured:
        block = np.ones(8 * 2**20)  # 64 MiB, every page touched
    assert measured.seconds > 0 and block[0] == 1.0 and measured.how.startswith("peak RSS growth")
    if "peak reset per edit" in measured.how:  # Linux: the block is measured on its own
        assert 48 < measured.mb < 200
