"""``cfs demo``: train and evaluate the demo pack's components on the synthetic world.

``cfs demo train evaluator|parser --out FILE`` trains one component (resumable: a checkpoint is
kept in ``--checkpoint-dir``); ``cfs demo eval evaluator|parser FILE`` prints its held-out
figures. Torch and the trainers are imported inside the command bodies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cfs_cli._common import cli_command, console, info

app = typer.Typer(help="Train and evaluate the demo pack's models on the synthetic world.", no_args_is_help=True)
COMPONENTS = ("evaluator", "parser")


def _component(name: str) -> str:
    if name not in COMPONENTS:
        from cfs_core.errors import InputError

        raise InputError(f"unknown component {name!r}; allowed: {', '.join(COMPONENTS)}")
    return name


@app.command("train")
@cli_command
def train(
    component: Annotated[str, typer.Argument(help="evaluator or parser.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The model file to write (.safetensors).")],
    steps: Annotated[int, typer.Option("--steps", min=0, help="Training steps.")] = 2000,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Images per step.")] = 32,
    size: Annotated[int, typer.Option("--size", help="Training image side (16 to 1024; parser: divisible by 16).")] = 64,
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Seed of the data and the initialisation.")] = 0,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine schedule).")] = 2e-3,
    styles: Annotated[str, typer.Option("--styles", help="Style mix, e.g. 'photo:0.7,clipart:0.15,sketch:0.15'.")]
    = "photo:0.7,clipart:0.15,sketch:0.15",
    pool: Annotated[int, typer.Option("--pool", min=0, help="Render a pool of N faces once (0: a fresh stream).")] = 0,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache the rendered pool here.")] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Rendering processes for the pool.")] = 1,
    widths: Annotated[str, typer.Option("--widths", help="Evaluator stage widths, comma-separated.")] = "32,64,128,256",
    feature_scale: Annotated[float, typer.Option("--feature-scale", help="Parser U-Net width divisor.")] = 8,
    balanced: Annotated[bool, typer.Option("--balanced", help="Parser: class-balanced cross-entropy.")] = False,
    checkpoint_dir: Annotated[Path | None, typer.Option("--checkpoint-dir", help="Resumable checkpoint folder.")] = None,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=1, help="Checkpoint period (steps).")] = 100,
    resume: Annotated[bool, typer.Option("--resume/--fresh", help="Resume from --checkpoint-dir if it holds one.")] = True,
    half: Annotated[bool, typer.Option("--half", help="Store the weights as fp16 (evaluator).")] = False,
) -> None:
    """Train one demo component on world renders and write it as a native .safetensors file."""
    from cfs_cli.progress import progress_bars
    from cfs_core.errors import InputError
    from cfs_core.training.loops import TrainOptions, train_evaluator, train_parser

    _component(component)
    if out.suffix != ".safetensors":
        raise InputError(f"{out}: the model file must end in .safetensors")
    names, weights = [], []
    for part in styles.split(","):
        name, _, weight = part.strip().partition(":")
        try:
            weights.append(float(weight) if weight else 1.0)
        except ValueError:
            raise InputError(f"bad style weight in {part.strip()!r}; expected style:weight") from None
        names.append(name.strip())
    try:
        width_list = tuple(int(w) for w in widths.split(","))
    except ValueError:
        raise InputError(f"--widths must be integers separated by commas, got {widths!r}") from None
    opts = TrainOptions(steps=steps, batch=batch, size=size, seed=seed, lr=lr, styles=tuple(names),
                        weights=tuple(weights), pool=pool, cache_dir=str(cache_dir) if cache_dir else None,
                        workers=workers, checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
                        checkpoint_every=checkpoint_every, resume=resume, widths=width_list,
                        feature_scale=feature_scale, balanced=balanced)
    meta_report: dict[str, object]
    with progress_bars() as progress:
        if component == "evaluator":
            model, report = train_evaluator(opts, progress)
            meta = {"training": json.dumps(report.__dict__)}
            model.save(out, meta, half=half)
        else:
            parser, report = train_parser(opts, progress)
            meta = {"training": json.dumps(report.__dict__)}
            parser.save(out, meta)
    meta_report = {"steps": report.steps, "final_loss": round(report.final_loss, 5), "wall_s": report.wall_s,
                   "resumed_from": report.resumed_from}
    info(f"wrote {out} ({component}: " + ", ".join(f"{k}={v}" for k, v in meta_report.items()) + ")")


@app.command("eval")
@cli_command
def evaluate(
    component: Annotated[str, typer.Argument(help="evaluator or parser.")],
    model: Annotated[Path, typer.Argument(help="The model file (.safetensors).")],
    n: Annotated[int, typer.Option("--n", min=1, help="Held-out photo renders to evaluate on.")] = 500,
    size: Annotated[int | None, typer.Option("--size", help="Render size (default: 128 / the parser's size).")] = None,
    seed: Annotated[int, typer.Option("--seed", "-s", min=0, help="Data seed of the held-out split.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Print a component's figures on held-out photo renders (accuracy per attribute, or mean IoU)."""
    from cfs_cli.progress import progress_bars
    from cfs_core.nets.evaluator import Evaluator
    from cfs_core.nets.parsing import Parser
    from cfs_core.training.loops import evaluate_evaluator, evaluate_parser

    _component(component)
    with progress_bars() as progress:
        if component == "evaluator":
            figures = evaluate_evaluator(Evaluator.from_file(model), n=n, size=size or 128, seed=seed, progress=progress)
        else:
            figures = evaluate_parser(Parser.from_file(model), n=n, size=size, seed=seed, progress=progress)
    if as_json:
        console.print_json(json.dumps(figures))
        return
    if component == "evaluator":
        for name, acc in figures["accuracy"].items():
            console.print(f"{name:<14} {acc:.4f}")
        console.print(f"{'min':<14} {figures['min_accuracy']:.4f}")
        console.print(f"{'mean':<14} {figures['mean_accuracy']:.4f}")
    else:
        for name, iou in figures["iou"].items():
            console.print(f"{name:<14} {iou:.4f}")
        console.print(f"{'mean_iou':<14} {figures['mean_iou']:.4f}")
