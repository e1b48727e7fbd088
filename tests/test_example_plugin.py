"""The example third-party plugin (examples/cfs-stylemix) is found through its entry point.

No pip: the test fakes the installation with a ``cfs_stylemix-0.1.dist-info`` folder (METADATA
and an ``entry_points.txt`` with a ``[cfs]`` section) on ``sys.path``, next to the example's
source folder. That is all ``importlib.metadata`` — and so ``PluginHost`` — looks at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cfs_cli._common import STATE
from cfs_cli.main import make_app
from cfs_core.methods import EditContext, EditRequest
from cfs_core.testing import source_latents, tiny_generator
from cfs_registry.plugins import PluginHost

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "cfs-stylemix"
SWITCHES = ("CFS_DISABLE_PLUGIN_AUTOLOAD", "CFS_LOAD_PLUGINS", "CFS_STRICT_PLUGINS")


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake ``pip install cfs-stylemix``; returns the version the host should report."""
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    try:  # really installed (pip install -e examples/cfs-stylemix): use that installation
        return metadata.version("cfs-stylemix")
    except metadata.PackageNotFoundError:
        pass
    dist_info = tmp_path / "cfs_stylemix-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: cfs-stylemix\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[cfs]\nstylemix = cfs_stylemix\n")
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "0.1"


def test_not_loaded_when_autoload_is_disabled(installed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFS_DISABLE_PLUGIN_AUTOLOAD", "1")
    host = PluginHost(strict=True)
    assert "stylemix" not in host.infos
    assert "stylemix" not in host.methods and "seed" not in host.guidance_kinds
    assert "text" in host.guidance_kinds  # cfs' own plugins still load


@pytest.mark.parametrize("env", [{}, {"CFS_DISABLE_PLUGIN_AUTOLOAD": "1", "CFS_LOAD_PLUGINS": "stylemix"}],
                         ids=["autoload", "load-only"])
def test_discovered_and_listed(installed: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    host = PluginHost(strict=True)
    assert host.infos["stylemix"].distribution == "cfs-stylemix"
    monkeypatch.setattr(STATE, "host", STATE.host)  # make_app sets the global host; undo it afterwards
    app = make_app(host)
    runner = CliRunner()

    def cli_json(*args: str) -> list[dict]:
        result = runner.invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    methods = {row["id"]: row for row in cli_json("methods", "--json")}
    stylemix = methods["stylemix"]
    assert stylemix["accepts"] == ["seed"] and stylemix["latent_space"] == "w+"
    assert stylemix["plugin"] == "stylemix" and stylemix["strength_option"] == "strength"
    assert set(stylemix["options"]["properties"]) == {"layers", "strength", "truncation"}
    assert stylemix["options"]["properties"]["strength"]["maximum"] == 1.0

    kinds = {row["id"]: row for row in cli_json("guidance", "--json")}
    assert kinds["seed"]["modality"] == "text" and kinds["seed"]["plugin"] == "stylemix"

    plugins = {row["name"]: row for row in cli_json("plugins", "--json")}
    row = plugins["stylemix"]
    assert (row["distribution"], row["version"], row["module"], row["error"]) == ("cfs-stylemix", installed, "cfs_stylemix", None)
    assert row["registered"] == {"guidance kind": ["seed"], "method": ["stylemix"]}
    assert "register_commands" in row["hooks"]

    slots = runner.invoke(app, ["stylemix-slots", "--size", "1024", "--json"], catch_exceptions=False)
    assert slots.exit_code == 0, slots.output
    assert json.loads(slots.stdout)["slots"]["coarse"] == [0, 1, 2, 3]


def test_loading_it_keeps_help_cheap(installed: str) -> None:
    code = ("import sys; from cfs_cli.main import make_app; make_app(); "
            "print('cfs_stylemix' in sys.modules, 'torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "CFS_STRICT_PLUGINS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["True", "False"]


def test_edit_through_the_host_tables(installed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CFS_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("CFS_LOAD_PLUGINS", "stylemix")
    host = PluginHost(strict=True)
    method_cls = host.methods.get("stylemix")
    guidance = host.guidance_kinds.get("seed")().load("5")
    method_cls.check_guidance(guidance.kind)
    options = method_cls.parse_options({"layers": "coarse", "strength": "1"})

    gen = tiny_generator()
    events: list = []
    ctx = EditContext(generator=gen, device=torch.device("cpu"), progress=events.append)
    source = source_latents(gen)
    result = method_cls().edit(ctx, EditRequest(source, guidance, options))

    assert tuple(result.images.shape) == (1, 3, gen.size, gen.size)
    assert result.info["seed"] == 5 and result.info["slots"] == [0]
    assert torch.equal(result.latents[:, 1:], source[:, 1:])
    target = gen.sample(1, seed=5, truncation=0.7)[1]
    assert torch.equal(result.latents[:, :1], target[:, :1])
    assert events and events[-1].step == events[-1].total
