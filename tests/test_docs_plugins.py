"""docs/plugins.md stays true: its ``python`` blocks run, its ``py`` excerpts are verbatim.

The ``python`` blocks are executed in order as one module, ``cfs_myplugin`` (its submodules
``cfs_myplugin.kinds``, ``.method``… are aliases of it, so the lazy imports inside the hooks
work). The plugin they define is then loaded by a strict ``PluginHost`` and the conformance-kit
classes of the guide are run. ``py`` blocks are excerpts of examples/cfs-stylemix and must
appear there character for character.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import tomllib
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cfs_core.hookspecs import hook_names

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"
EXAMPLE = ROOT / "examples" / "cfs-stylemix"
SUBMODULES = ("kinds", "method", "losses", "source", "metrics")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), re.S | re.M)


@pytest.fixture
def doc_plugin(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("cfs_myplugin")
    module.__file__ = str(DOC)
    monkeypatch.setitem(sys.modules, "cfs_myplugin", module)
    for name in SUBMODULES:
        monkeypatch.setitem(sys.modules, f"cfs_myplugin.{name}", module)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for i, code in enumerate(blocks("python")):
            exec(compile(code, f"{DOC}:python-block-{i}", "exec"), module.__dict__)  # noqa: S102 - our own docs
    module.printed = printed.getvalue()  # type: ignore[attr-defined]
    return module


def test_python_blocks_run_and_the_plugin_loads(doc_plugin: types.ModuleType, tmp_path: Path) -> None:
    from cfs_cli._common import STATE
    from cfs_cli.main import make_app
    from cfs_registry.plugins import PluginHost

    lines = doc_plugin.printed.splitlines()
    assert lines and all(f"# {line}\n" in DOC.read_text() for line in lines)  # printed output shown as comments

    host = PluginHost(autoload=False, plugins=[("myplugin", doc_plugin)], strict=True)
    host.load_all_tables()
    assert host.infos["myplugin"].registered == {
        "guidance kind": ["mood"], "method": ["nudge"], "loss": ["pixel-drift", "identity-drift"],
        "generator source": ["ema-prefixed"], "metric": ["pixel-change"],
    }
    assert sorted(host.infos["myplugin"].hooks) == hook_names()  # the guide shows every hook

    previous = STATE.host
    try:
        result = CliRunner().invoke(make_app(host), ["myplugin-moods"], catch_exceptions=False)
    finally:
        STATE.host = previous
    assert result.exit_code == 0 and result.stdout.strip() == "happy, sad, angry"

    # the source snippet really loads a prefixed file
    from safetensors.torch import save_file

    gen = doc_plugin.tiny_generator()
    path = tmp_path / "g.safetensors"
    save_file({f"ema.{k}": v.contiguous() for k, v in gen.state_dict().items()}, str(path))
    source = host.sources.get("ema-prefixed")()
    assert source.can_load(path)
    loaded = source.load(path)
    assert all(a.equal(b) for a, b in zip(loaded.state_dict().values(), gen.state_dict().values()))

    sample = doc_plugin.MetricSample(gen.sample(2)[0], gen.sample(2, seed=1)[0], doc_plugin.guidance)
    assert len(host.metrics.get("pixel-change")(doc_plugin.Resources()).compute(sample)) == 2


def test_kit_classes_of_the_guide_pass(doc_plugin: types.ModuleType, tmp_path: Path) -> None:
    for name in ("TestNudge", "TestMoodKind", "TestIdentityDrift"):
        case = getattr(doc_plugin, name)()
        tests = [t for t in dir(case) if t.startswith("test_")]
        assert tests
        for test in tests:
            method = getattr(case, test)
            method(tmp_path) if "tmp_path" in method.__code__.co_varnames else method()


def test_excerpts_are_verbatim() -> None:
    sources = "\n".join(p.read_text() for p in sorted(EXAMPLE.rglob("*")) if p.suffix in (".py", ".toml"))
    excerpts = blocks("py")
    assert len(excerpts) >= 5
    for excerpt in excerpts:
        assert excerpt in sources, f"not in examples/cfs-stylemix:\n{excerpt}"


def test_toml_blocks_parse_and_every_switch_is_documented() -> None:
    for block in blocks("toml"):
        tomllib.loads(block)
    text = DOC.read_text()
    for name in (*hook_names(), "CFS_STRICT_PLUGINS", "CFS_DISABLE_PLUGIN_AUTOLOAD", "CFS_LOAD_PLUGINS", "replace=True"):
        assert name in text
