"""The ``cfs`` application: the root callback (global options) and the command groups.

Each command group is one small typer app in its own module, joined here with ``add_typer``.
Importing this module must stay cheap: torch and the models are imported inside commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cfs_cli import bench, generate, models, world
from cfs_cli._common import STATE

HELP = """cfs: StyleGAN2 face editing from clipart, sketches, text or exemplars.

Every editing method is a plugin. Start with `cfs world render` (the embedded synthetic face
world) and `cfs generate` (sample a StyleGAN2 generator)."""


def make_app() -> typer.Typer:
    """Build the ``cfs`` typer application."""
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

    generate.register(app)
    app.add_typer(models.app, name="models")
    app.add_typer(world.app, name="world")
    app.add_typer(bench.app, name="bench")
    return app


app = make_app()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
