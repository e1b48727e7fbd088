"""Entry-point loading: every way a plugin can fail is reported on one line; the rest keeps working.

Plugins here are real entry points of fake installed distributions (see ``conftest.FakeSite``),
loaded by ``PluginHost()`` exactly as an installed third-party plugin would be.
"""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from cfs_core import hookspecs
from cfs_core.registration import RegistrationError
from cfs_registry.plugins import ENV_NO_AUTOLOAD, ENV_ONLY, ENV_STRICT, PluginHost

from plugin_helpers import FakeSite, method_module  # type: ignore[import-not-found]

FIRST_PARTY = {ep.name for ep in metadata.entry_points(group="cfs")
               if ep.dist is not None and ep.dist.name == "cfs-faceshop"}
_FIRST_PARTY_HOST = PluginHost(autoload=False, plugins=[
    (ep.name, ep.load()) for ep in metadata.entry_points(group="cfs") if ep.name in FIRST_PARTY])
FIRST_PARTY_LOSSES = set(_FIRST_PARTY_HOST.losses.ids())
FIRST_PARTY_METHODS = set(_FIRST_PARTY_HOST.methods.ids())


def third_party_methods(host: PluginHost) -> list[str]:
    """The method ids a test's plugins registered (cfs' own methods left out)."""
    return [i for i in host.methods.ids() if i not in FIRST_PARTY_METHODS]
BUILTIN_KINDS = {"text", "clipart", "sketch", "exemplar"}

RAISES_ON_IMPORT = "raise RuntimeError('boom at import')\n"

MISSPELLED = """
from cfs_core import hookimpl

called = []


@hookimpl
def register_method(register):  # misspelled: the hook is register_methods
    called.append("register_method")


@hookimpl
def register_losses(register):
    called.append("register_losses")
"""

WRONG_ARGUMENT = """
from cfs_core import hookimpl


@hookimpl
def register_methods(registrar):  # the spec's argument is called register
    pass
"""


def load(**kwargs: object) -> tuple[PluginHost, list[str]]:
    warnings: list[str] = []
    return PluginHost(warn=warnings.append, **kwargs), warnings  # type: ignore[arg-type]


def install_good(site: FakeSite, name: str = "good", method_id: str = "good-method") -> None:
    site.install(f"{name}-dist", {name: f"{name}_mod"}, {f"{name}_mod": method_module(method_id)})


# ----------------------------------------------------------------------------- import failures


def test_import_error_is_one_warning_and_the_others_load(site: FakeSite) -> None:
    install_good(site)
    site.install("broken-dist", {"broken": "broken_mod"}, {"broken_mod": RAISES_ON_IMPORT})
    host, warnings = load()
    assert len(warnings) == 1
    message = warnings[0]
    assert "plugin 'broken'" in message and "RuntimeError: boom at import" in message
    assert "\n" not in message
    assert "broken" not in host.infos
    assert {"good"} | FIRST_PARTY <= set(host.infos)
    assert host.methods.get("good-method").method_id == "good-method"
    assert host.methods.plugin_of("good-method") == "good"
    assert BUILTIN_KINDS <= set(host.guidance_kinds.ids())
    assert [(f.name, f.distribution, f.version) for f in host.failures] == [("broken", "broken-dist", "0.1")]
    assert len(warnings) == 1, "building the tables must not warn again"


@pytest.mark.parametrize(("source", "expected"), [
    ("import cfs_test_missing_dependency\n", "ModuleNotFoundError: No module named 'cfs_test_missing_dependency'"),
    ("def broken(:\n    pass\n", "SyntaxError"),
    ("from cfs_core import no_such_name\n", "ImportError: cannot import name 'no_such_name'"),
    ("raise KeyError('key')\n", "KeyError: 'key'"),
])
def test_each_kind_of_import_failure_is_one_warning(site: FakeSite, source: str, expected: str) -> None:
    install_good(site)
    site.install("broken-dist", {"broken": "broken_mod"}, {"broken_mod": source})
    host, warnings = load()
    assert len(warnings) == 1
    assert warnings[0].startswith(f"plugin 'broken' ({site.module_name('broken_mod')}) was not loaded: ")
    assert expected in warnings[0] and "\n" not in warnings[0]
    assert third_party_methods(host) == ["good-method"]


def test_multi_line_error_is_reported_on_one_line(site: FakeSite) -> None:
    site.install("broken-dist", {"broken": "broken_mod"},
                 {"broken_mod": "raise ValueError('first line\\nsecond line')\n"})
    _, warnings = load()
    assert len(warnings) == 1
    assert "\n" not in warnings[0]
    assert "first line second line" in warnings[0]


@pytest.mark.parametrize("how", ["environment", "argument"])
def test_strict_mode_makes_an_import_error_fatal(site: FakeSite, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    install_good(site)
    site.install("broken-dist", {"broken": "broken_mod"}, {"broken_mod": RAISES_ON_IMPORT})
    kwargs: dict[str, object] = {}
    if how == "environment":
        monkeypatch.setenv(ENV_STRICT, "1")
    else:
        kwargs["strict"] = True
    with pytest.raises(RegistrationError, match=r"plugin 'broken' .*RuntimeError: boom at import") as info:
        load(**kwargs)
    assert "\n" not in str(info.value)


def test_strict_off_by_environment_value(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    site.install("broken-dist", {"broken": "broken_mod"}, {"broken_mod": RAISES_ON_IMPORT})
    monkeypatch.setenv(ENV_STRICT, "0")
    _, warnings = load()
    assert len(warnings) == 1


def test_entry_point_to_a_missing_module(site: FakeSite) -> None:
    install_good(site)
    site.install("ghost-dist", {"ghost": "cfs_test_no_such_module"})
    host, warnings = load()
    assert len(warnings) == 1
    assert "plugin 'ghost' (cfs_test_no_such_module)" in warnings[0]
    assert "ModuleNotFoundError" in warnings[0] and "cfs_test_no_such_module" in warnings[0]
    assert "ghost" not in host.infos and "good-method" in host.methods


def test_entry_point_to_a_missing_attribute(site: FakeSite) -> None:
    site.install("ghost-dist", {"ghost": f"{site.module_name('ghost_mod')}:nothing_here"},
                 {"ghost_mod": "X = 1\n"})
    host, warnings = load()
    assert len(warnings) == 1
    assert "plugin 'ghost'" in warnings[0] and "nothing_here" in warnings[0]
    assert "ghost" not in host.infos


# ----------------------------------------------------------------------------- hook names


def test_misspelled_hook_is_rejected_naming_the_known_hooks(site: FakeSite) -> None:
    install_good(site)
    site.install("typo-dist", {"typo": "typo_mod"}, {"typo_mod": MISSPELLED})
    host, warnings = load()
    assert len(warnings) == 1
    message = warnings[0]
    assert "plugin 'typo'" in message and "'register_method'" in message
    assert "unknown hook" in message and "\n" not in message
    for name in hookspecs.hook_names():
        assert name in message
    assert "typo" not in host.infos and not host.pm.has_plugin("typo")
    # its correctly named hook is not called either: the plugin is not loaded at all
    assert set(host.losses.ids()) == FIRST_PARTY_LOSSES
    assert sys.modules[site.module_name("typo_mod")].called == []
    assert "good-method" in host.methods


def test_misspelled_hook_is_fatal_when_strict(site: FakeSite) -> None:
    site.install("typo-dist", {"typo": "typo_mod"}, {"typo_mod": MISSPELLED})
    with pytest.raises(RegistrationError, match=r"plugin 'typo'.*register_method"):
        load(strict=True)


def test_hook_with_a_wrong_argument_name_is_reported_not_a_crash(site: FakeSite) -> None:
    install_good(site)
    site.install("args-dist", {"args": "args_mod"}, {"args_mod": WRONG_ARGUMENT})
    host, warnings = load()
    assert len(warnings) == 1
    assert "plugin 'args'" in warnings[0] and "registrar" in warnings[0]
    assert "\n" not in warnings[0]
    assert "args" not in host.infos and not host.pm.has_plugin("args")
    assert third_party_methods(host) == ["good-method"]


# ----------------------------------------------------------------------------- env switches


def test_disable_autoload_keeps_cfs_own_plugins(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    install_good(site, "third", "third-method")
    monkeypatch.setenv(ENV_NO_AUTOLOAD, "1")
    host, warnings = load()
    assert warnings == []
    assert set(host.infos) == FIRST_PARTY
    assert {info.distribution for info in host.infos.values()} == {"cfs-faceshop"}
    assert "third-method" not in host.methods
    assert BUILTIN_KINDS <= set(host.guidance_kinds.ids())
    assert set(host.losses.ids()) == FIRST_PARTY_LOSSES
    assert "stylegan2" in host.sources


def test_disable_autoload_still_loads_named_plugins(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    install_good(site, "third", "third-method")
    install_good(site, "fourth", "fourth-method")
    monkeypatch.setenv(ENV_NO_AUTOLOAD, "1")
    monkeypatch.setenv(ENV_ONLY, "third")
    host, _ = load()
    assert set(host.infos) == FIRST_PARTY | {"third"}
    assert third_party_methods(host) == ["third-method"]


def test_load_plugins_loads_only_the_named_third_party_ones(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    install_good(site, "one", "one-method")
    install_good(site, "two", "two-method")
    install_good(site, "three", "three-method")
    monkeypatch.setenv(ENV_ONLY, " two , three,")
    host, warnings = load()
    assert warnings == []
    assert {"two", "three"} | FIRST_PARTY <= set(host.infos)
    assert "one" not in host.infos
    assert sorted(third_party_methods(host)) == ["three-method", "two-method"]


def test_third_party_plugin_cannot_take_a_first_party_name(site: FakeSite) -> None:
    site.install("squatter-dist", {"guidance": "squat_mod"}, {"squat_mod": method_module("squat-method")})
    host, warnings = load()
    assert host.infos["guidance"].distribution == "cfs-faceshop"
    assert BUILTIN_KINDS <= set(host.guidance_kinds.ids())
    assert len(warnings) == 1
    assert "plugin 'guidance'" in warnings[0] and "already named 'guidance'" in warnings[0]
    assert [f.distribution for f in host.failures] == ["squatter-dist"]


# ----------------------------------------------------------------------------- duplicate ids


def test_two_plugins_registering_one_method_id_names_both(site: FakeSite) -> None:
    install_good(site, "alpha", "shared-method")
    install_good(site, "beta", "shared-method")
    host, warnings = load()
    assert host.methods.plugin_of("shared-method") == "alpha"
    assert len(warnings) == 1
    message = warnings[0]
    assert "'shared-method'" in message and "plugin 'alpha'" in message and "plugin 'beta'" in message
    assert "replace=True" in message
    assert [f.name for f in host.failures] == ["beta"]


def test_duplicate_method_id_is_fatal_when_strict(site: FakeSite) -> None:
    install_good(site, "alpha", "shared-method")
    install_good(site, "beta", "shared-method")
    host, _ = load(strict=True)  # registration hooks run lazily
    with pytest.raises(RegistrationError, match=r"'alpha'.*'beta'"):
        host.methods  # noqa: B018


def test_replace_true_overrides_on_purpose(site: FakeSite) -> None:
    install_good(site, "alpha", "shared-method")
    site.install("beta-dist", {"beta": "beta_mod"}, {"beta_mod": method_module("shared-method", replace=True)})
    host, warnings = load()
    assert warnings == []
    assert host.methods.plugin_of("shared-method") == "beta"
    assert host.methods.get("shared-method").__module__ == site.module_name("beta_mod")
    assert third_party_methods(host) == ["shared-method"]


# ----------------------------------------------------------------------------- the cfs command


def run_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run ``cfs ARGS…`` through the console-script entry point; return its exit code."""
    from cfs_cli import _common
    from cfs_cli.main import main

    monkeypatch.setattr(_common.STATE, "host", _common.STATE.host)
    monkeypatch.setattr(sys, "argv", ["cfs", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return int(info.value.code or 0)


def test_cfs_warns_on_one_line_and_runs(site: FakeSite, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    install_good(site)
    site.install("broken-dist", {"broken": "broken_mod"}, {"broken_mod": "raise RuntimeError('boom\\nmore')\n"})
    assert run_main(monkeypatch, "methods", "--json") == 0
    out, err = capsys.readouterr()
    assert '"good-method"' in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: plugin 'broken'") and "boom more" in lines[0]


def test_cfs_strict_fails_on_one_line(site: FakeSite, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    site.install("broken-dist", {"broken": "broken_mod"}, {"broken_mod": RAISES_ON_IMPORT})
    monkeypatch.setenv(ENV_STRICT, "1")
    assert run_main(monkeypatch, "--help") == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: plugin 'broken'") and "boom at import" in lines[0]
    assert "Traceback" not in err


def test_sys_exit_at_import_is_reported_not_fatal(site: FakeSite) -> None:
    install_good(site)
    site.install("exiting-dist", {"exiting": "exiting_mod"}, {"exiting_mod": "import sys\nsys.exit(3)\n"})
    host, warnings = load()
    assert len(warnings) == 1 and "plugin 'exiting'" in warnings[0] and "SystemExit" in warnings[0]
    assert third_party_methods(host) == ["good-method"]


def test_load_plugins_naming_nothing_installed_warns(site: FakeSite, monkeypatch: pytest.MonkeyPatch) -> None:
    install_good(site)
    monkeypatch.setenv("CFS_LOAD_PLUGINS", "good,no-such-plugin")
    host, warnings = load()
    assert warnings == ["CFS_LOAD_PLUGINS names 'no-such-plugin', but no installed plugin has that entry point"]
    assert "good" in host.infos
