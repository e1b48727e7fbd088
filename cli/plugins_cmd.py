"""``cfs plugins | methods | guidance | losses | metrics``: what the installed plugins provide."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cfs_cli._common import cli_command, console
from cfs_core.registration import Table
from cfs_registry.plugins import PluginHost

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _emit(rows: list[dict[str, Any]], as_json: bool, title: str, columns: dict[str, str]) -> None:
    if as_json:
        console.print_json(json.dumps(rows))
        return
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row.get(key)) for key in columns.values()))
    console.print(table)


def _rows(table: Table[Any]) -> list[dict[str, Any]]:
    """One row per registered class: its ``describe()`` plus the plugin that registered it."""
    return [{**entry.obj.describe(), "plugin": entry.plugin} for entry in table]


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def option_summary(schema: dict[str, Any]) -> dict[str, str]:
    """``{name: "type = default — description"}`` from a pydantic JSON schema."""
    out = {}
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type") or "/".join(p.get("type", "?") for p in prop.get("anyOf", [])) or "value"
        if "enum" in prop:
            kind = "|".join(str(v) for v in prop["enum"])
        text = f"{kind} = {prop['default']!r}" if "default" in prop else kind
        out[name] = f"{text} — {prop['description']}" if prop.get("description") else text
    return out


def option_defaults(schema: dict[str, Any]) -> list[str]:
    """``["steps=300", "lr=0.1", …]``: the options and their defaults, compactly."""
    return [f"{name}={prop['default']}" if "default" in prop else name
            for name, prop in schema.get("properties", {}).items()]


def _method_detail(row: dict[str, Any]) -> None:
    from rich.table import Table

    console.print(f"[bold]{row['id']}[/] ({row['plugin']}): {row['description']}", soft_wrap=True)
    console.print(f"accepts: {', '.join(row['accepts'])} · latent space: {row['latent_space']} · "
                  f"strength option: {row['strength_option'] or '—'} · trainable: {'yes' if row['trainable'] else 'no'}",
                  soft_wrap=True)
    if row["default_losses"] or row["requires"]:
        losses = ", ".join(f"{k}×{v:g}" for k, v in row["default_losses"].items()) or "—"
        console.print(f"losses: {losses} · needs: {', '.join(row['requires']) or '—'}", soft_wrap=True)
    table = Table(title="options (-o NAME=VALUE)", title_justify="left")
    for col in ("option", "type / default", "meaning"):
        table.add_column(col, overflow="fold")
    for name, text in option_summary(row["options"]).items():
        kind, _, meaning = text.partition(" — ")
        table.add_row(name, kind, meaning)
    console.print(table)


def register(app: typer.Typer, host: PluginHost) -> None:
    """Add the listing commands, bound to ``host``."""

    @app.command("plugins")
    @cli_command
    def plugins(as_json: JsonFlag = False) -> None:
        """Installed plugins: distribution, version, hooks and what each registered."""
        host.load_all_tables()
        rows = [info.to_dict() for info in host.infos.values()]
        rows += [{**info.to_dict(), "hooks": []} for info in host.failures if info.name not in host.infos]
        _emit(rows, as_json, "Plugins", {"plugin": "name", "distribution": "distribution", "version": "version",
                                          "registered": "registered", "error": "error"})

    @app.command("methods")
    @cli_command
    def methods(
        method: Annotated[str | None, typer.Argument(help="Show one method's options in detail.")] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Editing methods: accepted guidance kinds, latent space and options (`cfs methods ID` for details)."""
        if method is not None:
            row = {**host.methods.get(method).describe(), "plugin": host.methods.plugin_of(method)}
            if as_json:
                console.print_json(json.dumps(row))
                return
            _method_detail(row)
            return
        rows = _rows(host.methods)
        if not as_json:
            rows = [{**r, "options": ", ".join(option_defaults(r["options"]))} for r in rows]
        _emit(rows, as_json, "Editing methods (`cfs methods ID` shows a method's options)",
              {"method": "id", "accepts": "accepts", "latent": "latent_space", "options": "options",
               "plugin": "plugin", "description": "description"})

    @app.command("guidance")
    @cli_command
    def guidance(as_json: JsonFlag = False) -> None:
        """Guidance kinds: what an edit can be steered by."""
        rows = _rows(host.guidance_kinds)
        _emit(rows, as_json, "Guidance kinds", {"kind": "id", "modality": "modality", "plugin": "plugin",
                                                 "description": "description"})

    @app.command("losses")
    @cli_command
    def losses(as_json: JsonFlag = False) -> None:
        """Losses methods compose by name × weight, with the resources each needs."""
        rows = _rows(host.losses)
        _emit(rows, as_json, "Losses", {"loss": "id", "formula": "formula", "requires": "requires",
                                         "plugin": "plugin", "description": "description"})

    @app.command("metrics")
    @cli_command
    def metrics(as_json: JsonFlag = False) -> None:
        """Metrics that comparisons and benchmarks report."""
        rows = _rows(host.metrics)
        _emit(rows, as_json, "Metrics", {"metric": "id", "higher is better": "higher_is_better",
                                          "requires": "requires", "plugin": "plugin", "description": "description"})
