"""``cfs world``: the synthetic face world (render, sample, schema)."""

from __future__ import annotations

import typer

app = typer.Typer(help="The embedded synthetic face world: render faces, sample datasets, show the schema.", no_args_is_help=True)
