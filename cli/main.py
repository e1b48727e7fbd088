"""The ``cfs`` application: the root callback (global options) and the command groups.

Each command group is one small typer app in its own module, joined here with ``add_typer``.
Importing this module must stay cheap: torch and the models are imported inside commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cfs_cli import bench, compare, demo, edit, generate, models, plugins_cmd, train, world
from cfs_cli._common import STATE, err_console, fail
from cfs_registry.plugins import PluginHost

HELP = """cfs: StyleGAN2 face editing from clipart, sketches, text or exemplars.

Every editing method is a plugin. Start with `cfs world render` (the embedded synthetic face
world) and `cfs generate` (sample a StyleGAN2 generator)."""


def plugin_warning(message: str) -> None:
    """How plugin-loading problems reach the user: one line on stderr."""
    err_console.print(f"[yellow]warning:[/] {message}", soft_wrap=True)


def make_app(host: PluginHost | None = None) -> typer.Typer:
    """Build the ``cfs`` typer application around a plugin host (default: discover plugins)."""
    host = host or PluginHost(warn=plugin_warning)
    STATE.host = host
    app = typer.Typer(
        name="cfs",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root(
        device: Annotated[
            str, typer.Option("--device", help="Where models run: auto, cpu or cuda.", envvar="CFS_DEVICE")
        ] = "auto",
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks and debug output.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or status lines.")] = False,
    ) -> None:
        if device not in ("auto", "cpu") and not device.startswith("cuda"):
            raise typer.BadParameter("must be auto, cpu, cuda or cuda:N", param_hint="--device")
        STATE.device = device
        STATE.verbose = verbose
        STATE.quiet = quiet

    edit.register(app, host)
    compare.register(app, host)
    generate.register(app)
    app.add_typer(models.app, name="models")
    app.add_typer(world.app, name="world")
    app.add_typer(bench.app, name="bench")
    app.add_typer(demo.app, name="demo")
    plugins_cmd.register(app, host)
    train.register(app, host)
    host.add_commands(app)
    return app


def main() -> None:
    """Console-script entry point."""
    from cfs_core.errors import CfsError

    try:
        app = make_app()
    except CfsError as exc:  # e.g. a broken plugin under CFS_STRICT_PLUGINS=1
        raise SystemExit(fail(str(exc)).exit_code) from None
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
