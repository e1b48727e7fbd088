"""``cfs world``: the synthetic face world (render, sample, schema, gallery, bench).

The commands only parse options and call :mod:`cfs_core.world`; it is imported inside the
command bodies so that ``cfs --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cfs_cli._common import cli_command, console, info

app = typer.Typer(
    help="The embedded synthetic face world: render faces, sample datasets, show the schema.", no_args_is_help=True
)

ATTRS_HELP = "Parameters as name=value pairs, e.g. 'hair=long,hair_color=red,glasses=round' (see `cfs world schema`)."
SEED_HELP = "Seed of the parameters not given in --attrs, and of the texture and jitter."
LABELS_HELP = "Also write the label map as a colourised PNG (see --labels-raw)."
LABELS_RAW_HELP = "Write --labels as raw class ids (8-bit grey 0..18) instead of colours."
STYLES_HELP = "Comma-separated styles: photo, clipart, sketch."


@app.command("render")
@cli_command
def render(
    out: Annotated[Path, typer.Option("--out", "-o", help="The image to write (.png).")],
    attrs: Annotated[str, typer.Option("--attrs", "-a", help=ATTRS_HELP)] = "",
    style: Annotated[str, typer.Option("--style", help="photo, clipart or sketch.")] = "photo",
    size: Annotated[int, typer.Option("--size", help="Image side in pixels (64 to 1024).")] = 256,
    seed: Annotated[int, typer.Option("--seed", "-s", help=SEED_HELP)] = 0,
    labels: Annotated[Path | None, typer.Option("--labels", help=LABELS_HELP)] = None,
    labels_raw: Annotated[bool, typer.Option("--labels-raw", help=LABELS_RAW_HELP)] = False,
    caption: Annotated[bool, typer.Option("--caption", help="Print captions of the face (style prefixed).")] = False,
    params_json: Annotated[Path | None, typer.Option("--params-json", help="Also write the parameters (JSON).")] = None,
) -> None:
    """Render one face; parameters not given in --attrs are sampled from --seed."""
    import json

    from cfs_core.fileio import atomic_write_text
    from cfs_core.imageio import save_png
    from cfs_core.world import (
        captions,
        colorize_labels,
        parse_attrs,
        render_labels,
        sample_params,
    )
    from cfs_core.world import render as render_face

    params = sample_params(seed, **parse_attrs(attrs))
    save_png(render_face(params, style=style, size=size, seed=seed), out)
    info(f"wrote {out} ({style}, {size}×{size})")
    if labels is not None:
        label_map = render_labels(params, size=size)
        save_png(label_map if labels_raw else colorize_labels(label_map), labels)
        info(f"wrote {labels} ({'class ids' if labels_raw else 'colourised labels'})")
    if params_json is not None:
        atomic_write_text(params_json, json.dumps(params.to_dict(), indent=2) + "\n")
        info(f"wrote {params_json}")
    if caption:
        for text in captions(params, n=5, style=style, seed=seed):
            console.print(text, markup=False, soft_wrap=True)


@app.command("sample")
@cli_command
def sample(
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset folder (created; a rerun resumes it).")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many faces.")] = 1000,
    styles: Annotated[str, typer.Option("--styles", help=STYLES_HELP)] = "photo,clipart,sketch",
    size: Annotated[int, typer.Option("--size", help="Image side in pixels (64 to 1024).")] = 128,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Dataset seed (face i uses a seed derived from it).")] = 0,
    n_captions: Annotated[int, typer.Option("--captions", min=0, help="Captions per face and style.")] = 5,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Rendering processes.")] = 1,
) -> None:
    """Write a dataset: images per style, label maps, parameters, captions and a manifest."""
    from cfs_cli.progress import progress_bars
    from cfs_core.methods import ProgressEvent
    from cfs_core.world import parse_styles, write_dataset

    chosen = parse_styles(styles)
    with progress_bars() as report:

        def advance(done: int, total: int) -> None:
            report(ProgressEvent("rendering faces", done, total))

        summary = write_dataset(out, n, chosen, size, seed, n_captions, workers, progress=advance)
    info(f"{summary.written} written, {summary.skipped} already there")
    console.print(str(summary.manifest), markup=False, soft_wrap=True)


@app.command("schema")
@cli_command
def schema(
    as_json: Annotated[bool, typer.Option("--json", help="Print the schema as JSON.")] = False,
) -> None:
    """List every face parameter: group, type, allowed values, default and meaning."""
    from cfs_core.world import schema as world_schema
    from cfs_core.world import schema_json

    if as_json:
        typer.echo(schema_json())
        return
    from rich.table import Table

    table = Table(title="face parameters", title_justify="left")
    for column in ("name", "group", "values", "default", "description"):
        table.add_column(column, overflow="fold")
    for row in world_schema():
        values = ", ".join(row["choices"]) if "choices" in row else "{:g} … {:g}".format(*row["range"])
        table.add_row(row["name"], row["group"], values, str(row["default"]), row["description"])
    console.print(table)


@app.command("gallery")
@cli_command
def gallery(
    out: Annotated[Path, typer.Option("--out", "-o", help="The PNG to write.")] = Path("docs/world_gallery.png"),
    rows: Annotated[int, typer.Option("--rows", min=1, max=32, help="Faces per column of a panel.")] = 8,
    cols: Annotated[int, typer.Option("--cols", min=1, max=32, help="Faces per row of a panel.")] = 8,
    size: Annotated[int, typer.Option("--size", help="Side of each face in pixels.")] = 128,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Face k is sample_params(seed + k).")] = 0,
    styles: Annotated[str, typer.Option("--styles", help=STYLES_HELP)] = "photo,clipart,sketch",
) -> None:
    """Write one panel per style, side by side, each a grid of the same faces."""
    from cfs_core.world import parse_styles, write_gallery

    written = write_gallery(out, rows, cols, size, seed, parse_styles(styles))
    console.print(str(written), markup=False, soft_wrap=True)


@app.command("bench")
@cli_command
def bench(
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 128,
    n: Annotated[int, typer.Option("--n", min=1, help="Faces per style.")] = 200,
    styles: Annotated[str, typer.Option("--styles", help=STYLES_HELP)] = "photo,clipart,sketch",
) -> None:
    """Measure rendering speed (images per second, one process) per style and for labels."""
    from cfs_core.world import benchmark, parse_styles

    rates = benchmark(size, n, parse_styles(styles))
    for name, rate in rates.items():
        console.print(f"{name:8s} {rate:8.1f} images/s at {size}px")
