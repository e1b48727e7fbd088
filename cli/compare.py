"""``cfs compare``: several methods on the same inputs and guidance, side by side, with metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cfs_cli._common import cli_command, console, info, resolve_device
from cfs_cli._guidance import Clipart, Exemplar, Guide, Sketch, Text, guidance_pairs, load_guidance
from cfs_cli.train import Models, RoleFile, role_files
from cfs_registry.plugins import PluginHost

MethodOptions = Annotated[list[str] | None, typer.Option(
    "--option", "-o", help="A method's option METHOD.KEY=VALUE, e.g. latent-opt.steps=50 (see `cfs methods ID`).")]


def register(app: typer.Typer, host: PluginHost) -> None:
    """Add ``cfs compare`` bound to ``host``."""

    @app.command("compare")
    @cli_command
    def compare(
        methods: Annotated[str, typer.Option("--methods", help="Comma-separated method ids (see `cfs methods`).")],
        input: Annotated[list[Path], typer.Option("--input", "-i", metavar="<path>", help="An image, a folder of images, or a W+ latent file (repeatable).")],
        out: Annotated[Path, typer.Option("--out", help="Output folder: grid.png, report.html, metrics.json.")],
        text: Text = None, clipart: Clipart = None, sketch: Sketch = None, exemplar: Exemplar = None, guide: Guide = None,
        models: Models = None,
        generator: RoleFile = None, clip: RoleFile = None, identity: RoleFile = None, parser: RoleFile = None,
        encoder: RoleFile = None,
        option: MethodOptions = None,
        metrics: Annotated[str | None, typer.Option("--metrics", help="Comma-separated metric ids (default: every metric whose models are available; see `cfs metrics`).")] = None,
        seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of everything random in the edits.")] = 0,
        cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Where trained artefacts are cached.")] = None,
    ) -> None:
        """Run several methods on the same inputs and guidance; writes a labelled grid, an HTML report and metrics.json."""
        from rich.table import Table

        from cfs_cli.progress import progress_bars
        from cfs_core.errors import InputError
        from cfs_registry.compare import (
            GUIDANCE_FLAGS, CompareJob, describe_settings, parse_ids, plan_compare, usable_metrics)
        from cfs_registry.editjob import discover_inputs, expand_latents, unique_names
        from cfs_registry.session import ModelSession

        method_ids = parse_ids(methods, "--methods")
        pairs = guidance_pairs(text, clipart, sketch, exemplar, guide)
        if len(pairs) != 1:
            flags = ", ".join(GUIDANCE_FLAGS.values())
            raise InputError(f"give exactly one guidance ({flags} or --guide KIND=VALUE), got {len(pairs)}")
        kind = pairs[0][0]
        plan = plan_compare(host, method_ids, kind, option or [], parse_ids(metrics, "--metrics") if metrics is not None else None)
        guidance = load_guidance(host, *pairs[0])
        inputs = unique_names([item for path in input for item in discover_inputs(path)])
        session = ModelSession.open(models, role_files(generator=generator, clip=clip, identity=identity,
                                                       parser=parser, encoder=encoder), resolve_device())
        chosen = {m: (cls, session.options_for(cls, plan.option_pairs[m])) for m, cls in plan.methods.items()}
        if any(item.image is not None for item in inputs):
            session.require("encoder")
        session.require("generator")
        metric_classes, skipped_metrics = usable_metrics(plan.metrics, session.resources().available())
        settings = describe_settings({
            "methods": method_ids, "guidance": guidance.describe(), "inputs": [str(p) for p in input],
            "out": str(out), "seed": seed, "device": session.device, "models": session.describe(),
            "options": {m: opts.model_dump(mode="json") for m, (_, opts) in chosen.items()},
            "metrics": [cls.metric_id for cls in metric_classes],
        })
        job = CompareJob(chosen, guidance, metric_classes, out, settings, plan.skipped_methods, skipped_metrics)
        with progress_bars() as report:
            ctx = session.context(host, seed, progress=report, cache_dir=cache_dir)
            inputs = unique_names(expand_latents(inputs, ctx.generator.n_latent, ctx.generator.style_dim))
            job.run(ctx, inputs)
        job.settings["environment"] = describe_settings(_environment(ctx.device))
        written = job.write()

        means = job.means()
        columns = job.summary_columns()
        table = Table(title=f"compare · {guidance.kind}: {guidance.source[:60]} · {len(job.results)} input(s)",
                      title_justify="left")
        table.add_column("method")
        for _, header in columns:
            table.add_column(header, justify="right")
        for method_id in job.methods:
            table.add_row(method_id, *("—" if means[method_id][k] is None else f"{means[method_id][k]:.4g}" for k, _ in columns))
        for method_id in job.skipped_methods:
            table.add_row(f"[dim]{method_id}[/]", *["skipped"] * len(columns))
        console.print(table)
        for method_id, why in job.skipped_methods.items():
            console.print(f"method '{method_id}' skipped: {why}", soft_wrap=True)
        for metric_id, why in skipped_metrics.items():
            console.print(f"metric '{metric_id}' skipped: {why}", soft_wrap=True)
        info(f"wrote {', '.join(p.name for p in written.values())} in {out}")


def _environment(device: object) -> dict[str, object]:
    from cfs_core.editing import environment

    return environment(str(device))
