"""``cfs bench``: speed benchmarks (figures for docs and issue notes)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cfs_cli._common import cli_command, console, info, resolve_device
from cfs_cli.world import bench as world_bench

app = typer.Typer(help="Benchmarks: generator and renderer speed.", no_args_is_help=True)


def _int_list(text: str, what: str) -> tuple[int, ...]:
    from cfs_core.errors import InputError

    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise InputError(f"{what} must be comma-separated integers, got '{text}'") from None
    if not values or min(values) < 1:
        raise InputError(f"{what} must be positive integers, got '{text}'")
    return values


@app.command("generator")
@cli_command
def generator(
    models: Annotated[str, typer.Option("--models", help="Comma-separated architecture names (see registry/configs/stylegan2).")] = "test-tiny,stylegan2-256,stylegan2-ffhq-1024",
    batches: Annotated[str, typer.Option("--batch", help="Comma-separated batch sizes.")] = "1,4",
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Timed runs per case (median reported).")] = 3,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed runs first.")] = 1,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="torch CPU threads (default: torch's choice).")] = None,
    fused: Annotated[bool, typer.Option("--fused/--scaled", help="Grouped-conv (reference) or activation-scaling modulated convs.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Milliseconds per image of the generator forward (mapping + synthesis), random weights."""
    import torch
    from rich.table import Table

    from cfs_core.benchmarks import bench_generator
    from cfs_core.stylegan2 import GeneratorConfig
    from cfs_registry.architectures import get_architecture

    if threads:
        torch.set_num_threads(threads)
    device = resolve_device()
    archs = [get_architecture(name.strip()) for name in models.split(",") if name.strip()]
    batch_sizes = _int_list(batches, "--batch")
    rows = []
    for arch in archs:
        info(f"timing {arch.name} …")
        for t in bench_generator(GeneratorConfig.from_dict(arch.config), batch_sizes, repeats, warmup, device, fused, arch.name):
            rows.append({**t.to_dict(), "resolution": arch.config["size"]})
    env = {"device": device, "threads": torch.get_num_threads(), "torch": torch.__version__, "modconv": "fused" if fused else "scaled"}
    if as_json:
        console.print_json(json.dumps({"environment": env, "results": rows}))
        return
    table = Table(title=f"Generator forward, {env['device']}, {env['threads']} threads, {env['modconv']} modconv, torch {env['torch']}")
    for col in ("model", "resolution", "batch", "ms / call", "ms / image"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for r in rows:
        table.add_row(r["name"], str(r["resolution"]), str(r["batch"]), f"{r['median_ms']:.1f}", f"{r['ms_per_item']:.1f}")
    console.print(table)


# The renderer benchmark lives with the world commands; it is listed here too so that every
# speed figure of the project is one `cfs bench …` away.
app.command("world", help="Images per second of the synthetic-world renderers (same as `cfs world bench`).")(world_bench)
