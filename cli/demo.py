"""``cfs demo``: train and evaluate the demo pack's models on the synthetic world.

``cfs demo train COMPONENT --out FILE …`` trains one component (seeded and resumable: a checkpoint
is kept in ``--checkpoint-dir``); ``cfs demo eval COMPONENT FILE …`` prints its held-out figures
(the model cards' numbers). Torch and the trainers are imported inside the command bodies, so
``cfs --help`` stays fast. Components: evaluator, parser, generator (then autoencoder and codes,
the stages that produce the shipped generator + encoder pair), clip, identity, encoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cfs_cli import demo_more
from cfs_cli._common import cli_command, console, info

app = typer.Typer(help="Train and evaluate the demo pack's models on the synthetic world.", no_args_is_help=True)
train_app = typer.Typer(help="Train one demo-pack component (seeded, resumable with --checkpoint-dir).",
                        no_args_is_help=True)
eval_app = typer.Typer(help="Held-out figures of a demo-pack component (what its model card reports).",
                       no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")

Out = Annotated[Path, typer.Option("--out", "-o", help="The model file to write (.safetensors).")]
Seed = Annotated[int, typer.Option("--seed", "-s", min=0, help="Seed of the data and the initialisation.")]
CheckpointDir = Annotated[Path | None, typer.Option("--checkpoint-dir", help="Resumable checkpoint folder.")]
CheckpointEvery = Annotated[int, typer.Option("--checkpoint-every", min=1, help="Checkpoint period (steps).")]
Resume = Annotated[bool, typer.Option("--resume/--fresh", help="Resume from --checkpoint-dir if it holds one.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")]
ModelFile = Annotated[Path, typer.Argument(help="The model file (.safetensors).")]


def check_out(out: Path) -> None:
    """A one-line error unless ``out`` is a ``.safetensors`` path."""
    from cfs_core.errors import InputError

    if out.suffix != ".safetensors":
        raise InputError(f"{out}: the model file must end in .safetensors")


def int_list(text: str, option: str) -> tuple[int, ...]:
    """``"32,64"`` → ``(32, 64)``; a one-line error otherwise."""
    from cfs_core.errors import InputError

    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise InputError(f"{option} must be integers separated by commas, got {text!r}") from None


def style_mix(styles: str) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """``"photo:0.7,clipart:0.3"`` → names and weights."""
    from cfs_core.errors import InputError

    names, weights = [], []
    for part in styles.split(","):
        name, _, weight = part.strip().partition(":")
        try:
            weights.append(float(weight) if weight else 1.0)
        except ValueError:
            raise InputError(f"bad style weight in {part.strip()!r}; expected style:weight") from None
        names.append(name.strip())
    return tuple(names), tuple(weights)


def wrote(out: Path, component: str, report: dict[str, Any]) -> None:
    """The closing line of a training command."""
    keys = ("steps", "final_loss", "wall_s", "resumed_from")
    facts = ", ".join(f"{k}={round(report[k], 5) if isinstance(report[k], float) else report[k]}" for k in keys if k in report)
    info(f"wrote {out} ({component}: {facts})")


def print_figures(figures: dict[str, Any], as_json: bool) -> None:
    """Figures as JSON, or as ``name value`` lines (nested dicts flattened with dots)."""
    if as_json:
        console.print_json(json.dumps(figures, default=str))
        return

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, float):
            console.print(f"{prefix:<40} {value:.4f}", markup=False)
        elif not isinstance(value, list):
            console.print(f"{prefix:<40} {value}", markup=False)

    walk("", figures)


# ---------------------------------------------------------------------------------- evaluator, parser
def _world_options(steps: int, batch: int, size: int, seed: int, lr: float, styles: str, pool: int,
                   cache_dir: Path | None, workers: int, checkpoint_dir: Path | None, checkpoint_every: int,
                   resume: bool, **extra: Any) -> Any:
    from cfs_core.training.loops import TrainOptions

    names, weights = style_mix(styles)
    return TrainOptions(steps=steps, batch=batch, size=size, seed=seed, lr=lr, styles=names, weights=weights,
                        pool=pool, cache_dir=str(cache_dir) if cache_dir else None, workers=workers,
                        checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
                        checkpoint_every=checkpoint_every, resume=resume, **extra)


Steps = Annotated[int, typer.Option("--steps", min=0, help="Training steps.")]
Batch = Annotated[int, typer.Option("--batch", min=1, help="Images per step.")]
Lr = Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine schedule).")]
Styles = Annotated[str, typer.Option("--styles", help="Style mix, e.g. 'photo:0.7,clipart:0.15,sketch:0.15'.")]
PoolN = Annotated[int, typer.Option("--pool", min=0, help="Render a pool of N faces once (0: a fresh stream).")]
CacheDir = Annotated[Path | None, typer.Option("--cache-dir", help="Cache the rendered pool here.")]
Workers = Annotated[int, typer.Option("--workers", "-j", min=1, help="Rendering processes for the pool.")]
MIX = "photo:0.7,clipart:0.15,sketch:0.15"


@train_app.command("evaluator")
@cli_command
def train_evaluator(
    out: Out, steps: Steps = 2000, batch: Batch = 32,
    size: Annotated[int, typer.Option("--size", help="Training image side (16 to 1024).")] = 64,
    seed: Seed = 0, lr: Lr = 2e-3, styles: Styles = MIX, pool: PoolN = 0, cache_dir: CacheDir = None,
    workers: Workers = 1,
    widths: Annotated[str, typer.Option("--widths", help="Stage widths, comma-separated.")] = "32,64,128,256",
    half: Annotated[bool, typer.Option("--half", help="Store the weights as fp16.")] = False,
    init: Annotated[Path | None, typer.Option("--init", help="Fine-tune this evaluator file (same --size and --widths).")] = None,
    checkpoint_dir: CheckpointDir = None, checkpoint_every: CheckpointEvery = 100, resume: Resume = True,
) -> None:
    """Train the attribute evaluator (benchmarks and tests only; never used by a method)."""
    from cfs_cli.progress import progress_bars
    from cfs_core.training.loops import train_evaluator as train

    check_out(out)
    opts = _world_options(steps, batch, size, seed, lr, styles, pool, cache_dir, workers, checkpoint_dir,
                          checkpoint_every, resume, widths=int_list(widths, "--widths"),
                          init=str(init) if init is not None else None)
    with progress_bars() as progress:
        model, report = train(opts, progress)
    model.save(out, {"training": json.dumps(report.__dict__)}, half=half)
    wrote(out, "evaluator", report.__dict__)


@train_app.command("parser")
@cli_command
def train_parser(
    out: Out, steps: Steps = 2000, batch: Batch = 32,
    size: Annotated[int, typer.Option("--size", help="Training image side (divisible by 16).")] = 64,
    seed: Seed = 0, lr: Lr = 2e-3, styles: Styles = MIX, pool: PoolN = 0, cache_dir: CacheDir = None,
    workers: Workers = 1,
    feature_scale: Annotated[float, typer.Option("--feature-scale", help="U-Net width divisor.")] = 8,
    balanced: Annotated[bool, typer.Option("--balanced", help="Class-balanced cross-entropy.")] = False,
    checkpoint_dir: CheckpointDir = None, checkpoint_every: CheckpointEvery = 100, resume: Resume = True,
) -> None:
    """Train the CelebAMask-HQ U-Net face parser on the world's label maps."""
    from cfs_cli.progress import progress_bars
    from cfs_core.training.loops import train_parser as train

    check_out(out)
    opts = _world_options(steps, batch, size, seed, lr, styles, pool, cache_dir, workers, checkpoint_dir,
                          checkpoint_every, resume, feature_scale=feature_scale, balanced=balanced)
    with progress_bars() as progress:
        parser, report = train(opts, progress)
    parser.save(out, {"training": json.dumps(report.__dict__)})
    wrote(out, "parser", report.__dict__)


@train_app.command("generator")
@cli_command
def train_generator(
    out: Out, steps: Steps = 4000, batch: Batch = 16,
    size: Annotated[int, typer.Option("--size", help="Output resolution (a power of two).")] = 128,
    style_dim: Annotated[int, typer.Option("--style-dim", min=26, help="Width of z and w.")] = 128,
    n_mlp: Annotated[int, typer.Option("--n-mlp", min=1, help="Mapping layers.")] = 8,
    channels: Annotated[str, typer.Option("--channels", help="Channels per resolution from 4 px up.")]
    = "128,128,128,64,32,16",
    seed: Seed = 0, lr: Lr = 2e-3,
    mapping_lr_scale: Annotated[float, typer.Option("--mapping-lr-scale", help="Mapping step size multiplier.")] = 50.0,
    until: Annotated[int | None, typer.Option("--until", min=1, help="Stop after this step (schedule of --steps).")] = None,
    checkpoint_dir: CheckpointDir = None, checkpoint_every: CheckpointEvery = 100, resume: Resume = True,
) -> None:
    """Train the StyleGAN2 generator by regression to the world renderer (z names a face).

    Learns the mean face fast and the conditioning slowly; the shipped generator continues from
    this run with `cfs demo train autoencoder --init CHECKPOINT`."""
    from cfs_cli.progress import progress_bars
    from cfs_core.stylegan2.io import save_native
    from cfs_core.training.generator import GeneratorOptions
    from cfs_core.training.generator import train_generator as train

    check_out(out)
    opts = GeneratorOptions(steps=steps, batch=batch, size=size, style_dim=style_dim, n_mlp=n_mlp,
                            channels=int_list(channels, "--channels"), lr=lr, mapping_lr_scale=mapping_lr_scale,
                            seed=seed, checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
                            checkpoint_every=checkpoint_every, resume=resume, until=until)
    opts.config()  # one-line errors before anything runs
    with progress_bars() as progress:
        g, report = train(opts, progress)
    save_native(out, g, extra_metadata={"training": json.dumps(report, default=str)})
    wrote(out, "generator", report)


@train_app.command("autoencoder")
@cli_command
def train_autoencoder(
    out: Out,
    encoder_out: Annotated[Path, typer.Option("--encoder-out", help="The e4e encoder file to write (.safetensors).")],
    init: Annotated[Path | None, typer.Option("--init", help="Start the synthesis from this generator checkpoint.")] = None,
    ae_steps: Annotated[int, typer.Option("--ae-steps", min=0, help="Autoencoder steps.")] = 1500,
    ae_batch: Annotated[int, typer.Option("--ae-batch", min=1, help="Renders per autoencoder step.")] = 16,
    map_pairs: Annotated[int, typer.Option("--map-pairs", min=16, help="Renders the additive code model is fitted on.")] = 4096,
    map_steps: Annotated[int, typer.Option("--map-steps", min=0, help="Mapping regression steps.")] = 10000,
    map_batch: Annotated[int, typer.Option("--map-batch", min=1, help="Latents per mapping step.")] = 512,
    seed: Seed = 0,
    checkpoint_dir: CheckpointDir = None, checkpoint_every: CheckpointEvery = 50, resume: Resume = True,
) -> None:
    """Train the demo generator and its e4e encoder: a W-space autoencoder, then the mapping by regression."""
    from cfs_cli.progress import progress_bars
    from cfs_core.nets.e4e import save_e4e_native
    from cfs_core.stylegan2.io import save_native
    from cfs_core.training.autoencode import AutoencodeOptions, train_generator_and_encoder

    check_out(out)
    check_out(encoder_out)
    opts = AutoencodeOptions(init=str(init) if init else None, ae_steps=ae_steps, ae_batch=ae_batch, map_steps=map_steps,
                             map_pairs=map_pairs, map_batch=map_batch, seed=seed, checkpoint_dir=str(checkpoint_dir) if checkpoint_dir else None,
                             checkpoint_every=checkpoint_every, resume=resume)
    with progress_bars() as progress:
        g, e4e, report = train_generator_and_encoder(opts, progress)
    meta = {"training": json.dumps(report, default=str)}
    save_native(out, g, extra_metadata=meta)
    save_e4e_native(encoder_out, e4e, extra_metadata=meta)
    wrote(out, "generator", report)
    wrote(encoder_out, "encoder", report)


# ---------------------------------------------------------------------------------- evaluation
EvalN = Annotated[int, typer.Option("--n", min=1, help="Held-out items to evaluate on.")]


@eval_app.command("evaluator")
@cli_command
def eval_evaluator(
    model: ModelFile, n: EvalN = 500,
    size: Annotated[int, typer.Option("--size", help="Render size.")] = 128,
    seed: Seed = 0, as_json: AsJson = False,
) -> None:
    """Per-attribute accuracy on held-out photo renders."""
    from cfs_cli.progress import progress_bars
    from cfs_core.nets.evaluator import Evaluator
    from cfs_core.training.loops import evaluate_evaluator

    with progress_bars() as progress:
        figures = evaluate_evaluator(Evaluator.from_file(model), n=n, size=size, seed=seed, progress=progress)
    print_figures(figures, as_json)


@eval_app.command("parser")
@cli_command
def eval_parser(
    model: ModelFile, n: EvalN = 500,
    size: Annotated[int | None, typer.Option("--size", help="Render size (default: the parser's size).")] = None,
    seed: Seed = 0, as_json: AsJson = False,
) -> None:
    """Mean IoU on held-out photo renders."""
    from cfs_cli.progress import progress_bars
    from cfs_core.nets.parsing import Parser
    from cfs_core.training.loops import evaluate_parser

    with progress_bars() as progress:
        figures = evaluate_parser(Parser.from_file(model), n=n, size=size, seed=seed, progress=progress)
    print_figures(figures, as_json)


@eval_app.command("generator")
@cli_command
def eval_generator(
    model: ModelFile,
    evaluator: Annotated[Path, typer.Option("--evaluator", help="The attribute evaluator (.safetensors).")],
    clip: Annotated[Path | None, typer.Option("--clip", help="A CLIP file for the FID on CLIP features.")] = None,
    n: EvalN = 500, seed: Seed = 0, as_json: AsJson = False,
) -> None:
    """Attribute agreement of samples with the faces their latents name; FID on CLIP features."""
    from cfs_cli.progress import progress_bars
    from cfs_core.clip import ClipModel
    from cfs_core.nets.evaluator import Evaluator
    from cfs_core.stylegan2 import load_generator
    from cfs_core.training.generator import evaluate_generator

    g = load_generator(model).generator
    ev = Evaluator.from_file(evaluator)
    clip_model = ClipModel.from_file(clip) if clip is not None else None
    with progress_bars() as progress:
        figures = evaluate_generator(g, ev, clip_model, n=n, seed=seed, progress=progress)
    print_figures(figures, as_json)


demo_more.register(train_app, eval_app)
