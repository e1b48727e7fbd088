"""``cfs models``: inspect and convert model files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cfs_cli._common import cli_command, console, info

app = typer.Typer(help="Model files: inspect, convert.", no_args_is_help=True)


@app.command("inspect")
@cli_command
def inspect(
    file: Annotated[Path, typer.Argument(help="A StyleGAN2 model file (.pt or .safetensors).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show a model file's layout, architecture, parameter count, sha256, resolution and W+ size."""
    from cfs_core.stylegan2 import describe_checkpoint

    facts = describe_checkpoint(file)
    if as_json:
        console.print_json(json.dumps(facts))
        return
    _print_facts(facts)


def _print_facts(facts: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=str(facts["file"]), show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("layout", facts["layout"])
    table.add_row("size", f"{facts['bytes']:,} bytes")
    table.add_row("sha256", facts["sha256"])
    if "contents" in facts:
        table.add_row("contents", ", ".join(facts["contents"]))
    for which, g in facts["generators"].items():
        arch = g["architecture"]
        channels = " ".join(f"{r}:{c}" for r, c in arch["channels"].items())
        default = " (default)" if facts.get("default_generator") == which else ""
        table.add_row(f"generator {which}{default}", f"StyleGAN2 {g['resolution']}px, style_dim {arch['style_dim']}, n_mlp {arch['n_mlp']}, lr_mlp {arch['lr_mlp']}")
        table.add_row("  channels", channels)
        table.add_row("  parameters", f"{g['parameters']:,}")
        table.add_row("  W+", f"{g['wplus_shape'][0]} × {g['wplus_shape'][1]}")
        table.add_row("  StyleSpace", f"{g['stylespace_layers']} layers, {g['stylespace_channels']:,} channels ({g['stylespace_channels_non_torgb']:,} non-ToRGB)")
    table.add_row("latent_avg", "yes" if facts["latent_avg"] else "no (mean latent is computed)")
    if "discriminator" in facts:
        d = facts["discriminator"]
        table.add_row("discriminator", f"{d['architecture']['size']}px, {d['parameters']:,} parameters")
    if "training_args" in facts:
        args = facts["training_args"]
        table.add_row("training args", ", ".join(f"{k}={args[k]}" for k in ("size", "latent", "n_mlp", "channel_multiplier", "iter", "batch") if k in args))
    if "source" in facts:
        table.add_row("converted from", f"{facts['source'].get('source_file')} ({facts['source'].get('source_layout')})")
    console.print(table)


@app.command("convert")
@cli_command
def convert(
    src: Annotated[Path, typer.Argument(help="Source: rosinality .pt (converted or training snapshot) or a state dict.")],
    dst: Annotated[Path, typer.Argument(help="Destination .safetensors (cfs native format).")],
    which: Annotated[str | None, typer.Option("--which", help="Generator to export: g_ema (default) or g.")] = None,
    with_discriminator: Annotated[bool, typer.Option("--with-discriminator", help="Also export the discriminator.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing destination.")] = False,
) -> None:
    """Convert a StyleGAN2 checkpoint to cfs' native safetensors format (no pickle needed to read it)."""
    from cfs_core.errors import InputError
    from cfs_core.stylegan2 import convert as convert_checkpoint

    if dst.exists() and not force:
        raise InputError(f"{dst}: already exists (use --force to overwrite)")
    written = convert_checkpoint(src, dst, which=which, with_discriminator=with_discriminator)
    info(f"converted {src} → {written}")
    console.print(str(written))
