"""``cfs bench``: speed benchmarks and CFS-Bench, the editing suite (figures for docs and issue notes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cfs_cli._common import cli_command, console, get_host, info, resolve_device
from cfs_cli.compare import MethodOptions
from cfs_cli.train import Models, RoleFile, role_files
from cfs_cli.world import bench as world_bench

app = typer.Typer(help="Benchmarks: generator and renderer speed; CFS-Bench, the editing suite.", no_args_is_help=True)


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


@app.command("suite")
@cli_command
def suite(
    out: Annotated[Path, typer.Option("--out", help="Output folder: bench.json and report.html.")],
    methods: Annotated[str | None, typer.Option("--methods", help="Comma-separated method ids (default: every registered method).")] = None,
    kinds: Annotated[str, typer.Option("--kinds", help="Comma-separated guidance kinds of the suite.")] = "clipart,sketch,text,exemplar",
    cases: Annotated[int | None, typer.Option("--cases", min=1, max=100_000, help="Cases per kind (default 5; --quick: 1).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="Smoke-test size: 1 case per kind, tiny method settings (steps 2).")] = False,
    steps: Annotated[int | None, typer.Option("--steps", min=0, help="Cap on every method's `steps` option (default 40; --quick: 2; 0: no cap). -o METHOD.steps=N wins.")] = None,
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Suite seed: draws the cases (the world's test split of this data seed) and seeds the edits.")] = 0,
    models: Models = None,
    generator: RoleFile = None, clip: RoleFile = None, identity: RoleFile = None, parser: RoleFile = None,
    encoder: RoleFile = None,
    option: MethodOptions = None,
    evaluator: Annotated[Path | None, typer.Option("--evaluator", help="Attribute evaluator file (default: the demo pack's).")] = None,
    examples: Annotated[int, typer.Option("--examples", min=0, help="Cases per kind shown as images in report.html.")] = 3,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Artefact cache of the run (default: a fresh temporary one, so per-guidance training is timed).")] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print the summary as a Markdown table (for docs/bench.md).")] = False,
) -> None:
    """CFS-Bench: a fixed, seeded suite of world faces x guidance with known target attributes; scores every method."""
    import tempfile

    from rich.table import Table

    from cfs_cli.progress import progress_bars
    from cfs_core.editing import environment
    from cfs_core.errors import InputError
    from cfs_registry import bench_suite as bs
    from cfs_registry.compare import describe_settings, parse_ids
    from cfs_registry.session import ModelSession, default_artifact_dir

    host = get_host()
    kind_ids = bs.parse_kinds(kinds)
    plan = bs.plan_suite(host, parse_ids(methods, "--methods") if methods is not None else None, kind_ids, option or [])
    n = cases if cases is not None else (bs.QUICK_CASES if quick else bs.DEFAULT_CASES)
    caps = dict(bs.QUICK_CAPS) if quick else {"steps": bs.DEFAULT_STEPS}
    if steps is not None:
        caps["steps"] = steps
    caps = {k: v for k, v in caps.items() if v > 0}
    suite_cases = bs.make_cases(kind_ids, n, seed)
    device = resolve_device()
    session = ModelSession.open(models, role_files(generator=generator, clip=clip, identity=identity,
                                                   parser=parser, encoder=encoder), device)
    session.require("generator")
    session.require("encoder")
    net, about = bs.load_evaluator(evaluator, device)
    available = set(session.resources().available())
    chosen, applied, skipped = {}, {}, dict(plan.skipped_methods)
    for method_id, cls in plan.methods.items():
        missing = sorted(set(cls.requires) - available)
        if missing:
            skipped[method_id] = f"needs {', '.join(missing)}, which the models of this run do not provide"
            continue
        chosen[method_id], applied[method_id] = bs.capped_options(session, cls, plan.option_pairs[method_id], caps)
    if not chosen:
        raise InputError("no method can run: " + "; ".join(f"{m}: {why}" for m, why in skipped.items()))
    settings = describe_settings({
        "seed": seed, "cases_per_kind": n, "kinds": list(kind_ids), "changes_per_case": bs.CHANGES_PER_CASE,
        "quick": quick, "caps": caps, "caps_applied": {m: a for m, a in applied.items() if a},
        "methods": list(chosen), "options": {m: opts.model_dump(mode="json") for m, opts in chosen.items()},
        "models": session.describe(), "evaluator": about, "device": device, "out": str(out),
        "cache": str(cache_dir) if cache_dir else "fresh temporary folder (read-only: the model set's artefacts and "
                                                 f"{default_artifact_dir()})",
    })
    job = bs.BenchSuite(suite_cases, {m: (plan.methods[m], o) for m, o in chosen.items()},
                        {m: plan.runs[m] for m in chosen}, out, settings, skipped,
                        {m: v for m, v in plan.skipped_pairs.items() if m in chosen}, examples=examples)
    with tempfile.TemporaryDirectory(prefix="cfs-bench-") as scratch, progress_bars() as report:
        ctx = session.context(host, seed, progress=report, cache_dir=cache_dir or Path(scratch))
        if cache_dir is None:  # a fresh cache, but what was precomputed (shipped, `cfs train`) still counts
            ctx.artifact_dirs = (*ctx.artifact_dirs, default_artifact_dir())
        info(f"CFS-Bench: {len(suite_cases)} case(s) ({n} per kind), methods: {', '.join(chosen)}")
        job.run(ctx, host, net)
    job.settings["environment"] = describe_settings(environment(ctx.device))
    written = job.write()

    if markdown:
        console.print(bs.markdown_table(job), markup=False, soft_wrap=True)
    else:
        table = Table(title=f"CFS-Bench · {n} case(s) per kind · seed {seed} · {session.name} models", title_justify="left")
        for col in ("kind", "method", *bs.HEADERS, "note"):
            table.add_column(col, justify="left" if col in ("kind", "method", "note") else "right")
        last = None
        for kind, row, cells, note in bs.table_rows(job):
            if last is not None and kind != last:
                table.add_section()
            style = "dim" if row in bs.REFERENCES or not cells else None
            table.add_row(kind if kind != last else "", row, *(cells or [""] * len(bs.HEADERS)), note, style=style)
            last = kind
        console.print(table)
    for line in job.notes + [f"failed: {f}" for f in job.failures()]:
        console.print(line, markup=False, soft_wrap=True)
    info(f"wrote {', '.join(p.name for p in written.values())} in {out}")
