"""``cfs models``: the model zoo (list, info, pull, verify, path, add, remove, sets) and
StyleGAN2 file tools (inspect, convert).

The zoo commands are thin: cards, cache, downloads and model sets live in ``cfs_registry``
(``zoo``, ``download``, ``modelsets``); this module only formats and draws progress bars.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cfs_cli._common import cli_command, console, err_console, info

if TYPE_CHECKING:
    from cfs_registry.zoo import Zoo

app = typer.Typer(
    help="Models: the zoo of pretrained files (list, info, pull, verify, path, add, remove, sets) and "
    "StyleGAN2 file tools (inspect, convert). Cache: $CFS_MODEL_DIR, else ~/.cache/cfs/models.",
    no_args_is_help=True,
)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
NameArg = Annotated[str, typer.Argument(help="A model name (`family.tag` for cards; see `cfs models list`).")]


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


# -- the zoo ------------------------------------------------------------------------------------------


def _zoo() -> Zoo:
    from cfs_registry.zoo import Zoo

    return Zoo()


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _row(zoo: Zoo, name: str) -> dict[str, Any]:
    from cfs_registry.zoo import human_size

    entry = zoo.entry(name)
    status = zoo.status(name)
    card = entry.card
    return {
        "name": name, "origin": entry.origin, "kind": entry.kind, "file": entry.file, "bytes": entry.bytes,
        "size": human_size(entry.bytes), "sha256": entry.sha256, "state": status.state, "path": str(status.path),
        "licence": card.licence if card else "", "commercial_use": card.commercial_use if card else "",
        "paper": card.paper.title if card else "",
    }


@app.command("list")
@cli_command
def list_models(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind (generator, encoder, clip, …).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Cards, your own models and the demo pack shipped with cfs, with their state."""
    from cfs_registry.modelsets import packaged_models
    from cfs_registry.zoo import human_size

    zoo = _zoo()
    rows = [{**r, "size": human_size(r["bytes"])} for r in packaged_models()] + [_row(zoo, n) for n in zoo.names()]
    rows = [r for r in rows if kind is None or r["kind"] == kind]
    if as_json:
        console.print_json(json.dumps(rows))
        return
    _table(f"models (cache {zoo.cache})", ["name", "kind", "file", "size", "commercial use", "state"],
           [[r["name"] + (" (yours)" if r["origin"] == "user" else ""), r["kind"], r["file"], r["size"],
             r["commercial_use"] or "-", r["state"]] for r in rows])


@app.command("info")
@cli_command
def info_cmd(name: NameArg, as_json: JsonFlag = False) -> None:
    """Everything about one model: its card (sources, licence, terms, paper) and its cache state."""
    zoo = _zoo()
    entry = zoo.entry(name)
    status = zoo.status(name)
    data: dict[str, Any] = {"name": name, "origin": entry.origin, "path": str(status.path), "state": status.state,
                            "state_detail": status.detail}
    if entry.card is not None:
        data["card"] = entry.card.model_dump(mode="json")
        data["recorded"] = entry.recorded
    else:
        data["user"] = entry.user
    if as_json:
        console.print_json(json.dumps(data))
        return
    from rich.table import Table

    table = Table(title=name, show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in _info_rows(entry, status):
        table.add_row(key, value)
    console.print(table)


def _info_rows(entry: Any, status: Any) -> list[tuple[str, str]]:
    from cfs_registry.zoo import human_size

    rows = [("kind", entry.kind), ("file", entry.file),
            ("size", f"{entry.bytes:,} bytes ({human_size(entry.bytes)})" if entry.bytes else "unknown"),
            ("sha256", entry.sha256 or "unknown (recorded at the first pull)")]
    card = entry.card
    if card is not None:
        arch = card.architecture if isinstance(card.architecture, str) else json.dumps(card.architecture.model_dump())
        rows[:0] = [("description", card.description)]
        rows += [("architecture", arch), ("licence", card.licence), ("terms", card.terms),
                 ("commercial use", card.commercial_use),
                 ("paper", f"{card.paper.title} — {card.paper.authors} ({card.paper.year}) {card.paper.url}")]
        rows += [(f"source {i + 1} ({s.kind})", s.url + (f" — {s.note}" if s.note else "")) for i, s in enumerate(card.sources)]
        if card.notes:
            rows.append(("notes", card.notes))
    else:
        user = entry.user or {}
        rows += [("added from", f"{user.get('source')}" + (" (linked)" if user.get("linked") else " (copied)")),
                 ("architecture", user.get("architecture_name") or json.dumps(user.get("architecture")))]
    rows += [("path", str(status.path)), ("state", status.state + (f" — {status.detail}" if status.detail else ""))]
    return rows


@app.command("path")
@cli_command
def path_cmd(name: NameArg) -> None:
    """Print where a model's file is (or must be placed by hand) in the cache."""
    zoo = _zoo()
    path = zoo.path(name)
    if not path.exists():
        info(f"{name}: not in the cache yet (`cfs models pull {name}`)")
    console.print(str(path), soft_wrap=True)


@app.command("pull")
@cli_command
def pull_cmd(
    names: Annotated[list[str], typer.Argument(help="Card names, or a model set (`ffhq-1024`) for all its models.")],
    url: Annotated[str | None, typer.Option("--url", help="Download from this URL (a private mirror) instead of the card's sources.")] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Download again even if the file is present.")] = False,
) -> None:
    """Download card files into the cache (resumable, size and sha256 checked, atomic).

    Without a network, or for files only a browser can fetch (Google Drive), it says exactly
    which file to place at which path.
    """
    from cfs_cli.progress import progress_bars
    from cfs_core.errors import InputError
    from cfs_registry.download import pull_many
    from cfs_registry.modelsets import load_model_sets, set_models

    zoo = _zoo()
    sets = load_model_sets()
    wanted = [m for n in names for m in (set_models(n) if n in sets else [n])]
    for n in names:
        if n in sets and not set_models(n):
            info(f"model set '{n}' has nothing to download ({sets[n].status_note or 'its files ship with cfs'})")
    if url is not None and len(wanted) != 1:
        raise InputError("--url needs exactly one model name")
    for name in wanted:
        zoo.entry(name)  # unknown names fail before any download
    with progress_bars() as on_event:
        results, errors = pull_many(zoo, wanted, url=url, force=force, progress=on_event)
    for result in results:
        for message in result.messages:
            info(message)
        console.print(str(result.path), soft_wrap=True)
    if errors:
        for line in errors[:-1]:
            err_console.print(f"[bold red]error:[/] {line}", soft_wrap=True)
        raise InputError(errors[-1])


@app.command("verify")
@cli_command
def verify_cmd(
    names: Annotated[list[str] | None, typer.Argument(help="Models to check (default: everything in the cache).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-hash cached files against their cards (or the sha256 recorded at add/first pull).

    Exits non-zero when a file is missing, partial, of the wrong size or does not match.
    """
    zoo = _zoo()
    results = zoo.verify(names or None)
    if as_json:
        console.print_json(json.dumps([r.to_dict() for r in results]))
    elif not results:
        info(f"nothing in the cache yet ({zoo.cache})")
    else:
        _table("verify", ["name", "state", "detail"], [[r.name, r.state, r.detail or str(r.path)] for r in results])
    bad = [r.name for r in results if r.problem]
    if bad:
        from cfs_core.errors import InputError

        raise InputError(f"{len(bad)} model(s) failed verification: {', '.join(bad)}")


@app.command("add")
@cli_command
def add_cmd(
    file: Annotated[Path, typer.Argument(help="Your own model file (a StyleGAN2 .pt/.safetensors by default).")],
    name: Annotated[str, typer.Option("--name", "-n", help="Name to use it by (e.g. `my-faces` or `anime.v2`).")],
    kind: Annotated[str, typer.Option("--kind", help="generator, encoder, clip, identity, parser, mapper or global-directions.")] = "generator",
    link: Annotated[bool, typer.Option("--link", help="Symlink the file instead of copying it.")] = False,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace a model of the same name.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Register your own checkpoint in the cache; a generator's architecture is inferred from its weights."""
    record = _zoo().add(file, name, kind=kind, link=link, force=force)
    if as_json:
        console.print_json(json.dumps(record))
        return
    arch = record.get("architecture")
    if arch:
        named = f" (= architecture '{record['architecture_name']}')" if record.get("architecture_name") else ""
        info(f"{name}: StyleGAN2 {record['resolution']} px, style_dim {arch['style_dim']}, n_mlp {arch['n_mlp']}{named}")
    info(f"added {name} ({record['kind']}, sha256 {record['sha256']})")
    console.print(record["path"], soft_wrap=True)


@app.command("remove")
@cli_command
def remove_cmd(name: NameArg) -> None:
    """Delete a model's file from the cache and forget it (never touches files outside the cache)."""
    removed = _zoo().remove(name)
    info(f"removed {name}" + (f" ({', '.join(p.name for p in removed)})" if removed else " (index entry)"))


@app.command("sets")
@cli_command
def sets_cmd(as_json: JsonFlag = False) -> None:
    """Model sets for `cfs edit --models NAME`: one generator, encoder, CLIP, ID net and parser each."""
    from cfs_registry.modelsets import describe_sets

    rows = describe_sets(_zoo())
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table_rows = []
    for row in rows:
        roles = "; ".join(f"{role}: {r['model']}" + ("" if r["available"] else " (missing)") for role, r in row["roles"].items())
        status = row["status"] + (f" — {row['status_note']}" if row["status_note"] else "")
        table_rows.append([row["name"] + (" (default)" if row["default"] else ""), status, roles])
    _table("model sets", ["name", "status", "models"], table_rows)
