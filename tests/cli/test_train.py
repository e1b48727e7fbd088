"""``cfs train METHOD`` and the run engine (model set / role files → lazily loaded context)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from typer.testing import CliRunner, Result

from cfs_cli.main import make_app
from cfs_core import hookimpl
from cfs_core.latentio import write_latents
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, MethodOptions
from cfs_registry.plugins import PluginHost
from cfs_registry.session import ModelSession

TINY_G = Path(__file__).parent.parent / "fixtures" / "stylegan2" / "ros_converted_tiny.pt"
SEEN: dict[str, Any] = {}


class _Options(MethodOptions):
    steps: int = 3


class Trainable(EditingMethod):
    method_id: ClassVar[str] = "trainable"
    description: ClassVar[str] = "records what train() received"
    accepts: ClassVar[frozenset[str]] = frozenset({"text", "clipart"})
    Options = _Options

    def train(self, ctx: EditContext, request: EditRequest) -> dict[str, Any]:
        SEEN.update(ctx=ctx, request=request, built_before=ctx.resources.built())
        for step in range(request.options.steps):  # type: ignore[attr-defined]
            ctx.report("train", step + 1, request.options.steps)  # type: ignore[attr-defined]
        return {"steps": request.options.steps, "latents": list(request.latents.shape)}  # type: ignore[attr-defined]

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        raise NotImplementedError


class Plain(Trainable):
    method_id: ClassVar[str] = "plain"
    train = EditingMethod.train  # type: ignore[assignment]


class Plugin:
    @hookimpl
    def register_methods(self, register: Callable[..., None]) -> None:
        register(Trainable)
        register(Plain)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Result]:
    monkeypatch.setenv("CFS_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CFS_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    host = PluginHost()
    host.register(Plugin(), "test-plugin")
    app = make_app(host)
    SEEN.clear()

    def invoke(*args: object) -> Result:
        return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


def test_train_runs_with_role_files_options_and_latents(run: Callable[..., Result], tmp_path: Path) -> None:
    write_latents(tmp_path / "w.safetensors", torch.randn(2, 8, 32))
    result = run("train", "trainable", "--text", "  red   hair ", "--generator", TINY_G, "-o", "steps=4",
                 "--latents", tmp_path / "w.safetensors", "--json")
    assert result.exit_code == 0, result.output
    assert '"steps": 4' in result.stdout and '"latents": [' in result.stdout
    request = SEEN["request"]
    assert request.guidance.text == "red hair" and request.latents.shape == (2, 8, 32)
    ctx = SEEN["ctx"]
    assert ctx.generator.size == 32 and ctx.cache_dir == tmp_path / "artifacts"
    assert SEEN["built_before"] == [] and "clip-target" in ctx.losses


def test_train_without_latents_gets_an_empty_batch(run: Callable[..., Result]) -> None:
    assert run("train", "trainable", "--generator", TINY_G).exit_code == 0
    assert SEEN["request"].latents.shape == (0, 8, 32)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown method 'nope'"),
        (["plain", "--generator", TINY_G], "method 'plain' has nothing to train (trainable: "),
        (["trainable", "--text", "a", "--clipart", "x.png"], "give one guidance, not 2"),
        (["trainable", "--sketch", "x.png"], "accepts only: clipart, text (got sketch)"),
        (["trainable", "--text", "a", "-o", "stepz=1"], "unknown option 'stepz'"),
        (["trainable", "--text", "a", "--generator", "missing.pt"], "--generator missing.pt: no such file"),
        (["trainable", "--text", "a", "--models", "nope"], "unknown model set 'nope'"),
        (["trainable", "--text", "a", "--generator", TINY_G, "--latents", "w.txt"], "w.txt: no such file"),
    ],
)
def test_train_errors_are_one_line(run: Callable[..., Result], args: list[str], message: str) -> None:
    result = run("train", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_session_loads_roles_lazily_and_describes_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFS_MODEL_DIR", str(tmp_path))
    session = ModelSession.open(files={"generator": TINY_G})
    assert session._loaded == {}
    assert session.describe()["generator"] == {"file": str(TINY_G)}
    res = session.resources()
    assert sorted(res.available()) == ["clip", "clip_base", "encoder", "identity", "parser"]  # the demo pack's, on demand
    from cfs_core.fileio import sha256_file

    assert res.digest("parser") == "file:" + sha256_file(session.roles["parser"].path)  # cache keys: no load
    assert session._loaded == {}
    assert session.generator() is session.generator()
    assert session.describe()["clip"]["model"] == "packaged:demo/clip.safetensors"
    from cfs_core.errors import InputError

    with pytest.raises(InputError, match="unknown role"):
        ModelSession.open(files={"colour": TINY_G})


def test_the_default_session_is_the_demo_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFS_MODEL_DIR", str(tmp_path))
    session = ModelSession.open()
    assert session.name == "demo" and session.problems == {}
    assert session.artifact_dirs and session.artifact_dirs[0].name == "artifacts"
    from cfs_core.nets.protocols import ClipEncoder, FaceParser, IdentityEncoder

    assert isinstance(session.load("parser"), FaceParser) and isinstance(session.load("clip"), ClipEncoder)
    assert isinstance(session.load("identity"), IdentityEncoder)
    g = session.generator()
    assert (g.size, g.style_dim, g.n_latent) == (128, 128, 12)
    assert session.load("encoder").n_latent == g.n_latent


def test_a_model_set_s_method_defaults_sit_under_the_user_s_options() -> None:
    from cfs_plugins.global_directions.method import GlobalDirections

    session = ModelSession("x", "cpu", method_defaults={"global": {"n_images": 8, "n_stats": 5000, "no_such": 1}})
    opts = session.options_for(GlobalDirections, {"n_images": "4"})
    assert (opts.n_images, opts.n_stats) == (4, 5000)  # the user wins; unknown defaults are skipped
    assert ModelSession("x", "cpu").options_for(GlobalDirections, {}).n_images == 100
