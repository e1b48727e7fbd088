"""``register_commands`` (plugins adding CLI commands) and ``cfs plugins [--json]``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import typer
from plugin_helpers import FakeSite, method_module  # type: ignore[import-not-found]
from typer.testing import Result

from cfs_cli.main import make_app
from cfs_core import hookimpl
from cfs_core.registration import RegistrationError
from cfs_registry.plugins import PluginHost

Invoke = Callable[..., Result]

DEMO_COMMANDS = '''
import typer
from cfs_core import hookimpl

demo = typer.Typer(help="Demo commands added by a plugin.")


@demo.command()
def hello(name: str = "world") -> None:
    """Say hello."""
    typer.echo(f"hello {name} from a plugin")


@demo.command()
def bye() -> None:
    """Say goodbye."""
    typer.echo("bye from a plugin")


@hookimpl
def register_commands(app):
    app.add_typer(demo, name="greet")
'''


def test_plugin_sub_app_shows_in_help_and_runs(site: FakeSite, invoke: Invoke) -> None:
    site.install("demo-dist", {"demo": "demo_mod"}, {"demo_mod": DEMO_COMMANDS})
    warnings: list[str] = []
    host = PluginHost(warn=warnings.append)
    help_text = invoke(host, "--help")
    assert help_text.exit_code == 0 and "greet" in help_text.stdout
    result = invoke(host, "greet", "hello", "--name", "cfs")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "hello cfs from a plugin"
    assert invoke(host, "greet", "bye").stdout.strip() == "bye from a plugin"
    assert warnings == []
    assert host.infos["demo"].hooks == ["register_commands"]


def _clash_command(app: typer.Typer) -> None:
    @app.command("generate")
    def other() -> None:
        typer.echo("hijacked")


def _clash_function_name(app: typer.Typer) -> None:
    @app.command()
    def generate() -> None:
        typer.echo("hijacked")


def _clash_group(app: typer.Typer) -> None:
    sub = typer.Typer()
    sub.command("x")(lambda: typer.echo("hijacked"))
    app.add_typer(sub, name="generate")


def _clash_unnamed_group(app: typer.Typer) -> None:
    sub = typer.Typer(name="generate")
    sub.command("x")(lambda: typer.echo("hijacked"))
    app.add_typer(sub)


def _clash_merged_group(app: typer.Typer) -> None:
    sub = typer.Typer()  # no name at all: typer adds its commands to the root app
    sub.command("generate")(lambda: typer.echo("hijacked"))
    app.add_typer(sub)


def _clash_listing(app: typer.Typer) -> None:
    @app.command("plugins")
    def other() -> None:
        typer.echo("hijacked")


CLASHES: dict[str, tuple[Callable[[typer.Typer], None], str]] = {
    "command": (_clash_command, "generate"),
    "function name": (_clash_function_name, "generate"),
    "group": (_clash_group, "generate"),
    "unnamed group": (_clash_unnamed_group, "generate"),
    "merged group": (_clash_merged_group, "generate"),
    "listing command": (_clash_listing, "plugins"),
}


class CommandsPlugin:
    """Adds a harmless ``fine`` command, then calls ``then(app)``."""

    def __init__(self, then: Callable[[typer.Typer], None] | None = None) -> None:
        self.then = then

    @hookimpl
    def register_commands(self, app: typer.Typer) -> None:
        @app.command("fine")
        def fine() -> None:
            typer.echo("fine")

        if self.then is not None:
            self.then(app)


@pytest.mark.parametrize("case", list(CLASHES))
def test_taken_command_name_is_reported_and_the_cli_still_works(case: str, invoke: Invoke) -> None:
    then, name = CLASHES[case]
    warnings: list[str] = []
    host = PluginHost(autoload=False, warn=warnings.append, plugins=[("clasher", CommandsPlugin(then))])
    app = make_app(host)
    assert len(warnings) == 1
    assert "plugin 'clasher'" in warnings[0] and f"command name(s) {name} already taken" in warnings[0]
    names = [c.name for c in app.registered_commands] + [g.name for g in app.registered_groups]
    assert names.count(name) == 1 and "fine" not in names  # all of the plugin's additions are undone
    result = invoke(host, "--help")
    assert result.exit_code == 0 and "fine" not in result.stdout
    result = invoke(host, name, "--help")
    assert result.exit_code == 0 and "hijacked" not in result.stdout
    assert "Sample images" in result.stdout or "Installed plugins" in result.stdout


def test_taken_command_name_is_fatal_when_strict() -> None:
    host = PluginHost(autoload=False, strict=True, plugins=[("clasher", CommandsPlugin(_clash_command))])
    with pytest.raises(RegistrationError, match=r"plugin 'clasher'.*generate already taken"):
        make_app(host)


def test_two_plugins_adding_the_same_command_name(invoke: Invoke) -> None:
    warnings: list[str] = []
    host = PluginHost(autoload=False, warn=warnings.append,
                      plugins=[("first", CommandsPlugin()), ("second", CommandsPlugin())])
    make_app(host)
    assert len(warnings) == 1 and "plugin 'second'" in warnings[0] and "fine" in warnings[0]
    assert invoke(host, "fine").stdout.strip() == "fine"


def _explode(app: typer.Typer) -> None:
    raise RuntimeError("no commands today")


def test_raising_register_commands_is_reported(invoke: Invoke) -> None:
    warnings: list[str] = []
    host = PluginHost(autoload=False, warn=warnings.append, plugins=[("exploding", CommandsPlugin(_explode))])
    make_app(host)
    assert warnings == ["plugin 'exploding' (CommandsPlugin) was not loaded: RuntimeError: no commands today"]
    result = invoke(host, "--help")
    assert result.exit_code == 0 and "fine" not in result.stdout and "generate" in result.stdout
    assert invoke(host, "guidance", "--json").exit_code == 0


# ----------------------------------------------------------------------------- cfs plugins


FAULTY_REGISTRATION = '''
from cfs_core import hookimpl
from cfs_core.methods import EditingMethod


class Faulty(EditingMethod):
    method_id = "faulty-method"
    description = "a method in an unknown latent space"
    accepts = frozenset({"text"})
    latent_space = "z"

    def edit(self, ctx, request):
        raise NotImplementedError


@hookimpl
def register_methods(register):
    register(Faulty)
'''


def plugin_rows(result: Result) -> dict[str, dict[str, Any]]:
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    return {row["name"]: row for row in rows}


def test_plugins_json_lists_distribution_version_registrations_and_errors(site: FakeSite, invoke: Invoke) -> None:
    site.install("good-dist", {"good": "good_mod"}, {"good_mod": method_module("good-method")})
    site.install("broken-dist", {"broken": "broken_mod"}, {"broken_mod": "raise RuntimeError('boom')\n"})
    site.install("faulty-dist", {"faulty": "faulty_mod"}, {"faulty_mod": FAULTY_REGISTRATION})
    site.install("demo-dist", {"demo": "demo_mod"}, {"demo_mod": DEMO_COMMANDS})
    warnings: list[str] = []
    rows = plugin_rows(invoke(PluginHost(warn=warnings.append), "plugins", "--json"))

    good = rows["good"]
    assert good["distribution"] == "good-dist" and good["version"] == "0.1"
    assert good["module"] == site.module_name("good_mod")
    assert good["hooks"] == ["register_methods"]
    assert good["registered"] == {"method": ["good-method"]}
    assert good["error"] is None

    guidance = rows["guidance"]
    assert guidance["distribution"] == "cfs-faceshop" and guidance["module"] == "cfs_plugins.guidance"
    assert sorted(guidance["registered"]["guidance kind"]) == ["clipart", "exemplar", "sketch", "text"]
    assert rows["latent_losses"]["registered"] == {"loss": ["latent-l2", "latent-l2-mean", "adaptor-l2"]}
    assert rows["stylegan2"]["registered"] == {"generator source": ["stylegan2"]}

    broken = rows["broken"]
    assert broken["distribution"] == "broken-dist" and broken["version"] == "0.1"
    assert broken["error"] == "RuntimeError: boom" and broken["hooks"] == [] and broken["registered"] == {}

    faulty = rows["faulty"]
    assert faulty["distribution"] == "faulty-dist"
    assert "latent_space must be 'w', 'w+' or 's'" in faulty["error"]
    assert faulty["registered"] == {}

    assert rows["demo"]["hooks"] == ["register_commands"] and rows["demo"]["error"] is None
    assert len(warnings) == 2  # broken (import) and faulty (registration)


def test_plugins_table_form(site: FakeSite, invoke: Invoke) -> None:
    site.install("good-dist", {"good": "good_mod"}, {"good_mod": method_module("good-method")})
    site.install("broken-dist", {"broken": "broken_mod"}, {"broken_mod": "raise RuntimeError('boom')\n"})
    result = invoke(PluginHost(), "plugins")
    assert result.exit_code == 0
    for text in ("good", "good-dist", "good-method", "broken-dist", "RuntimeError: boom", "cfs-faceshop"):
        assert text in result.stdout
