"""``cfs edit``: photo (or latent) in, edited photo out, for every method and guidance kind."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cfs_cli._common import cli_command, console, info, resolve_device
from cfs_cli._guidance import Clipart, Exemplar, Guide, Sketch, Text, guidance_pairs, load_guidance
from cfs_cli.train import Models, Options, RoleFile, role_files
from cfs_registry.plugins import PluginHost


def _strengths(strength: float | None, sweep: str | None) -> list[float | None]:
    from cfs_core.errors import InputError

    if strength is not None and sweep is not None:
        raise InputError("give --strength or --sweep, not both")
    if sweep is None:
        return [strength]
    try:
        values = [float(v) for v in sweep.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--sweep must be comma-separated numbers, got '{sweep}'") from None
    if not values:
        raise InputError("--sweep needs at least one value")
    return list(dict.fromkeys(values))


def register(app: typer.Typer, host: PluginHost) -> None:
    """Add ``cfs edit`` bound to ``host``."""

    @app.command("edit")
    @cli_command
    def edit(
        method: Annotated[str, typer.Option("--method", help="A method id (see `cfs methods`).")],
        input: Annotated[list[Path], typer.Option("--input", "-i", metavar="<path>", help="An image, a folder of images, or a W+ latent file (repeatable).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (one subfolder per input).")],
        text: Text = None, clipart: Clipart = None, sketch: Sketch = None, exemplar: Exemplar = None, guide: Guide = None,
        models: Models = None,
        generator: RoleFile = None, clip: RoleFile = None, identity: RoleFile = None, parser: RoleFile = None,
        encoder: RoleFile = None,
        option: Options = None,
        strength: Annotated[float | None, typer.Option("--strength", help="The method's strength (alpha) option.")] = None,
        sweep: Annotated[str | None, typer.Option("--sweep", help="Several strengths in one run, e.g. '0.5,1,1.5'.")] = None,
        seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of everything random in the edit.")] = 0,
        cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Where trained artefacts are cached.")] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace results of a different edit in --out.")] = False,
    ) -> None:
        """Edit faces with a method and one guidance; writes images, latents, a strip and a manifest."""
        from rich.table import Table

        from cfs_cli.progress import method_options, progress_bars
        from cfs_core.errors import InputError
        from cfs_core.methods import parse_option_pairs
        from cfs_registry.editjob import EditJob, discover_inputs, expand_latents, unique_names
        from cfs_registry.session import ModelSession

        method_cls = host.methods.get(method)
        pairs = guidance_pairs(text, clipart, sketch, exemplar, guide)
        if len(pairs) != 1:
            accepted = ", ".join(f"--{k}" if k in ("text", "clipart", "sketch", "exemplar") else f"--guide {k}=…"
                                 for k in sorted(method_cls.accepts))
            raise InputError(f"give exactly one guidance ({accepted}), got {len(pairs)}")
        method_cls.check_guidance(pairs[0][0])  # before anything heavy loads
        options = method_options(method_cls, option or [])
        strengths = _strengths(strength, sweep)
        if strengths != [None] and method_cls.strength_option is None:
            raise InputError(f"method '{method}' has no strength option (--strength/--sweep do not apply)")
        guidance = load_guidance(host, *pairs[0])
        inputs = unique_names([item for path in input for item in discover_inputs(path)])
        session = ModelSession.open(models, role_files(generator=generator, clip=clip, identity=identity,
                                                       parser=parser, encoder=encoder), resolve_device())
        options = session.options_for(method_cls, parse_option_pairs(option or []))  # + the set's defaults
        if any(item.image is not None for item in inputs):
            session.require("encoder")
        job = EditJob(method_cls, options, guidance, out, seed, strengths, session.describe(), force)
        with progress_bars() as report:
            ctx = session.context(host, seed, progress=report, cache_dir=cache_dir)
            inputs = unique_names(expand_latents(inputs, ctx.generator.n_latent, ctx.generator.style_dim))
            reports = job.run(ctx, inputs)
        table = Table(title=f"{method} · {guidance.kind}: {guidance.source[:60]}", title_justify="left")
        for col in ("input", "status", "seconds", "folder"):
            table.add_column(col)
        for r in reports:
            table.add_row(r.name, r.status, f"{r.seconds:.2f}" if r.status == "done" else "", str(r.folder))
        console.print(table)
        done = sum(r.status == "done" for r in reports)
        info(f"{done} edited, {len(reports) - done} already done, in {out}")
