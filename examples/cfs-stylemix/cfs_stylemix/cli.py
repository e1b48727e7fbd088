"""``cfs stylemix-slots``: which W+ slots each ``layers`` value touches (added by the plugin)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cfs_stylemix.slots import LAYERS, n_latent_for_size, slot_ranges


def stylemix_slots(
    size: Annotated[int, typer.Option("--size", help="Output resolution of the generator (a power of two >= 8).")] = 1024,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")] = False,
) -> None:
    """Show which W+ slots `-o layers=…` of the stylemix method moves, for a generator size."""
    try:
        n_latent = n_latent_for_size(size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--size") from None
    ranges = slot_ranges(n_latent)
    if as_json:
        typer.echo(json.dumps({"size": size, "n_latent": n_latent, "slots": {k: list(ranges[k]) for k in LAYERS}}))
        return
    typer.echo(f"{size} px: {n_latent} W+ slots")
    for name in LAYERS:
        r = ranges[name]
        typer.echo(f"  {name:<6}  slots {r.start}-{r.stop - 1}  ({len(r)} of {n_latent})")
