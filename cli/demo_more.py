"""``cfs demo train|eval clip|identity|encoder`` (registered on the ``cfs demo`` sub-apps).

Kept apart from :mod:`cfs_cli.demo` so each module stays small; the shared option types and
helpers are imported from it when :func:`register` runs (after it has been fully defined).
"""


import json
from pathlib import Path
from typing import Annotated, Any

import typer


def register(train_app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the CLIP, identity and encoder commands to ``cfs demo train`` / ``cfs demo eval``."""
    from cfs_cli._common import cli_command, info
    from cfs_cli.demo import (
        AsJson,
        CheckpointDir,
        CheckpointEvery,
        EvalN,
        ModelFile,
        Out,
        Resume,
        Seed,
        check_out,
        int_list,
        print_figures,
        wrote,
    )

    Steps = Annotated[int, typer.Option("--steps", min=0, help="Training steps.")]  # noqa: N806
    Batch = Annotated[int, typer.Option("--batch", min=1, help="Items per step.")]  # noqa: N806
    Lr = Annotated[float, typer.Option("--lr", help="Peak learning rate (cosine schedule).")]  # noqa: N806
    Gen = Annotated[Path, typer.Option("--generator", help="The demo generator (.safetensors).")]  # noqa: N806

    def ckpt(path: Path | None) -> str | None:
        return str(path) if path is not None else None

    @train_app.command("clip")
    @cli_command
    def train_clip(
        out: Out, steps: Steps = 1500, batch: Batch = 64, seed: Seed = 0, lr: Lr = 1e-3,
        pool: Annotated[int, typer.Option("--pool", min=1, help="World faces rendered once (all three styles).")] = 6000,
        warmup: Annotated[int, typer.Option("--warmup", min=0, help="Warm-up steps.")] = 100,
        cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache the rendered pool here.")] = None,
        workers: Annotated[int, typer.Option("--workers", "-j", min=1, help="Rendering processes.")] = 1,
        half: Annotated[bool, typer.Option("--half/--full", help="Store the weights as fp16.")] = True,
        patch: Annotated[int, typer.Option("--patch", min=1, help="Vision patch size (pixels; divides the image side).")] = 16,
        vision_layers: Annotated[int, typer.Option("--vision-layers", min=1, help="Vision transformer layers.")] = 3,
        image_size: Annotated[int, typer.Option("--image-size", min=8, help="CLIP input side (the pool is rendered at it).")] = 64,
        init: Annotated[Path | None, typer.Option("--init", help="Fine-tune this demo CLIP file (same architecture; its patch may be a divisor of --patch, for a larger --image-size).")] = None,
        negatives: Annotated[int, typer.Option("--negatives", min=0, help="Hard-negative captions per image (each changes another attribute).")] = 1,
        focus: Annotated[str, typer.Option("--focus", metavar="ATTR=W,...", help="Weights of the attributes the hard negatives change, e.g. eye_color=4,eyebrows=3 (others 1).")] = "",
        matched: Annotated[bool, typer.Option("--matched-negatives/--full-negatives", help="Hard negatives in the phrasing of the image's own caption, or counterfactuals of its full caption (the first CLIP's recipe).")] = False,
        groups: Annotated[int, typer.Option("--groups", min=0, help="Images per step that also rank the captions of one attribute's values (--focus weights the attribute).")] = 0,
        group_weight: Annotated[float, typer.Option("--group-weight", min=0.0, help="Weight of that ranking loss.")] = 1.0,
        checkpoint_dir: CheckpointDir = None, checkpoint_every: CheckpointEvery = 100, resume: Resume = True,
    ) -> None:
        """Train the small open_clip model contrastively on photo, clipart and sketch renders + captions."""
        from cfs_cli.progress import progress_bars
        from cfs_core.training.clip import ClipTrainOptions, demo_clip_config, parse_focus
        from cfs_core.training.clip import train_clip as train

        check_out(out)
        opts = ClipTrainOptions(steps=steps, batch=batch, seed=seed, lr=lr, pool=pool, warmup=warmup,
                                config=demo_clip_config(patch, vision_layers, image_size), size=image_size,
                                init=ckpt(init), negatives=negatives, focus=tuple(parse_focus(focus).items()), matched=matched,
                                groups=groups, group_weight=group_weight,
                                cache_dir=ckpt(cache_dir), workers=workers, checkpoint_dir=ckpt(checkpoint_dir),
                                checkpoint_every=checkpoint_every, resume=resume)
        with progress_bars() as progress:
            clip, report = train(opts, progress)
        clip.save(out, {"training": json.dumps(report, default=str)}, half=half)
        wrote(out, "clip", report)

    @train_app.command("clip-base")
    @cli_command
    def train_clip_base(
        out: Out, clip: Annotated[Path, typer.Option("--clip", help="The demo CLIP (.safetensors).")],
        n: Annotated[int, typer.Option("--n", min=1, help="World cliparts averaged.")] = 1000,
        size: Annotated[int, typer.Option("--size", min=64, max=1024, help="Clipart side in pixels.")] = 128,
        seed: Seed = 0,
    ) -> None:
        """ClipFaceShop's base-clipart embedding for a CLIP: the mean unit embedding of world cliparts."""
        import time

        from safetensors.torch import save_file

        from cfs_core.clip import ClipModel
        from cfs_core.fileio import atomic_path
        from cfs_core.training.clip import clipart_base_embedding

        check_out(out)
        start = time.perf_counter()
        vector = clipart_base_embedding(ClipModel.from_file(clip), n=n, seed=seed, size=size)
        with atomic_path(out) as tmp:
            save_file({"clip_base": vector.contiguous()}, str(tmp),
                      metadata={"clip": clip.name, "n": str(n), "size": str(size), "seed": str(seed)})
        info(f"wrote {out} (clip_base: {n} cliparts, norm {float(vector.norm()):.3f}, "
             f"{time.perf_counter() - start:.1f} s)")

    @train_app.command("encoder")
    @cli_command
    def train_encoder(
        out: Out, generator: Gen, steps: Steps = 600, batch: Batch = 32, seed: Seed = 0, lr: Lr = 2e-3,
        input_size: Annotated[int, typer.Option("--input-size", help="Encoder input side.")] = 64,
        widths: Annotated[str, typer.Option("--widths", help="IR-SE stage widths.")] = "16,32,64,128",
        units: Annotated[str, typer.Option("--units", help="Units per stage.")] = "1,1,2,1",
        image_loss_every: Annotated[int, typer.Option("--image-loss-every", min=0, help="Image L1 period (0: off).")] = 0,
        checkpoint_dir: CheckpointDir = None, checkpoint_every: CheckpointEvery = 100, resume: Resume = True,
    ) -> None:
        """Train the e4e encoder to invert photo renders and generator samples into the generator's W+."""
        from cfs_cli.progress import progress_bars
        from cfs_core.nets.e4e import save_e4e_native
        from cfs_core.stylegan2 import load_generator
        from cfs_core.training.encoder import EncoderTrainOptions
        from cfs_core.training.encoder import train_encoder as train

        check_out(out)
        opts = EncoderTrainOptions(steps=steps, batch=batch, seed=seed, lr=lr, input_size=input_size,
                                   widths=int_list(widths, "--widths"), units=int_list(units, "--units"),
                                   image_loss_every=image_loss_every, image_loss_weight=1.0 if image_loss_every else 0.0,
                                   checkpoint_dir=ckpt(checkpoint_dir), checkpoint_every=checkpoint_every, resume=resume)
        g = load_generator(generator).generator
        with progress_bars() as progress:
            e4e, report = train(g, opts, progress)
        save_e4e_native(out, e4e, extra_metadata={"training": json.dumps(report, default=str)})
        wrote(out, "encoder", report)

    @train_app.command("codes")
    @cli_command
    def train_codes(
        out: Out, generator: Gen,
        encoder: Annotated[Path, typer.Option("--encoder", help="The encoder to start from (.safetensors).")],
        encoder_out: Annotated[Path, typer.Option("--encoder-out", help="The e4e encoder file to write (.safetensors).")],
        steps: Steps = 4000, batch: Batch = 16, seed: Seed = 0, lr: Lr = 2e-3,
        map_steps: Annotated[int, typer.Option("--map-steps", min=0, help="Mapping regression steps.")] = 15000,
        map_lr: Annotated[float, typer.Option("--map-lr", help="Peak learning rate of the mapping regression.")] = 0.03,
        source: Annotated[str, typer.Option("--source", help="Codes the synthesis learns from: 'additive' (features(z) @ A, "
                                            "then the mapping is refitted) or 'mapping' (the mapping's own outputs, kept).")] = "additive",
        detail_weight: Annotated[float, typer.Option("--detail-weight", min=1.0, help="L1 weight of the small parts "
                                                     "(glasses, eyes, brows, mouth, earrings).")] = 8.0,
        separate: Annotated[str, typer.Option("--separate", help="Comma-separated parameters whose codes the start pulls "
                                              "apart (values the starting mapping draws alike), e.g. eye_color,expression.")] = "",
        separate_scale: Annotated[float, typer.Option("--separate-scale", min=0.0, help="Norm of each value's offset "
                                                      "(--separate).")] = 0.8,
        half: Annotated[bool, typer.Option("--half", help="Store the encoder fp16 (tensors out of fp16 range stay fp32).")] = False,
        until: Annotated[int | None, typer.Option("--until", min=1, help="Stop after this step (schedule of --steps).")] = None,
        checkpoint_dir: CheckpointDir = None, checkpoint_every: CheckpointEvery = 100, resume: Resume = True,
    ) -> None:
        """Fine-tune a generator + encoder pair on the additive codes its mapping draws, then refit the mapping.

        Starts from `cfs demo train autoencoder`'s outputs; the shipped demo generator and encoder
        come from this stage."""
        from cfs_cli.progress import progress_bars
        from cfs_core.nets.e4e import save_e4e_native
        from cfs_core.stylegan2.io import save_native
        from cfs_core.training.codes import CodeTrainOptions
        from cfs_core.errors import InputError
        from cfs_core.training.codes import train_codes as train

        check_out(out)
        check_out(encoder_out)
        if until is not None and checkpoint_dir is None:
            raise InputError("--until needs --checkpoint-dir (the state a later run resumes from)")
        opts = CodeTrainOptions(generator=str(generator), encoder=str(encoder), steps=steps, batch=batch, lr=lr,
                                map_steps=map_steps, map_lr=map_lr, source=source,
                                detail_weight=detail_weight,
                                separate=tuple(n.strip() for n in separate.split(",") if n.strip()),
                                separate_scale=separate_scale, seed=seed, checkpoint_dir=ckpt(checkpoint_dir),
                                checkpoint_every=checkpoint_every, resume=resume, until=until)
        with progress_bars() as progress:
            g, e4e, report = train(opts, progress)
        if report["code_steps"] < steps:
            info(f"stopped after step {report['code_steps']} of {steps} (--until); nothing written to {out}: "
                 f"run the command again to resume from {checkpoint_dir}")
            return
        meta = {"training": json.dumps(report, default=str)}
        save_native(out, g, extra_metadata=meta)
        save_e4e_native(encoder_out, e4e, extra_metadata=meta, half=half)
        wrote(out, "generator", report)
        wrote(encoder_out, "encoder", report)

    @train_app.command("identity")
    @cli_command
    def train_identity(
        out: Out, steps: Steps = 3000, batch: Batch = 64, seed: Seed = 0, lr: Lr = 2e-3,
        identities: Annotated[int, typer.Option("--identities", min=2, help="Training identities.")] = 1500,
        variants: Annotated[int, typer.Option("--variants", min=2, help="Renders per identity (attributes and style vary).")] = 4,
        margin: Annotated[float, typer.Option("--margin", help="ArcFace angular margin.")] = 0.3,
        cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Cache the rendered pool here.")] = None,
        checkpoint_dir: CheckpointDir = None, checkpoint_every: CheckpointEvery = 100, resume: Resume = True,
    ) -> None:
        """Train the small IR-SE identity net (ArcFace) so one identity stays close across attributes and styles."""
        from cfs_cli.progress import progress_bars
        from cfs_core.nets.irse import save_irse_native
        from cfs_core.training.identity import IdentityTrainOptions
        from cfs_core.training.identity import train_identity as train

        check_out(out)
        opts = IdentityTrainOptions(identities=identities, variants=variants, steps=steps, batch=batch, seed=seed,
                                    lr=lr, margin=margin, cache_dir=ckpt(cache_dir), checkpoint_dir=ckpt(checkpoint_dir),
                                    checkpoint_every=checkpoint_every, resume=resume)
        with progress_bars() as progress:
            backbone, report = train(opts, progress)
        save_irse_native(out, backbone, {"training": json.dumps(report, default=str)})
        wrote(out, "identity", report)

    @eval_app.command("identity")
    @cli_command
    def eval_identity(
        model: ModelFile,
        n: Annotated[int, typer.Option("--n", min=2, help="Held-out identities.")] = 200,
        variants: Annotated[int, typer.Option("--variants", min=2, help="Renders per identity.")] = 4,
        size: Annotated[int, typer.Option("--size", help="Render size.")] = 128,
        seed: Seed = 0, as_json: AsJson = False,
    ) -> None:
        """Same-vs-different identity ROC AUC across attribute and style changes (held-out identities)."""
        from cfs_cli.progress import progress_bars
        from cfs_core.nets.identity import IdentityNet
        from cfs_core.training.identity import evaluate_identity

        with progress_bars() as progress:
            figures = evaluate_identity(IdentityNet.from_file(model), n_identities=n, variants=variants, size=size,
                                        seed=seed, progress=progress)
        print_figures(figures, as_json)

    @eval_app.command("clip")
    @cli_command
    def eval_clip(model: ModelFile, n: EvalN = 300, seed: Seed = 0, as_json: AsJson = False) -> None:
        """Zero-shot attribute accuracy (counterfactual captions) and text→image retrieval, per style."""
        from cfs_cli.progress import progress_bars
        from cfs_core.clip import ClipModel
        from cfs_core.training.clip import evaluate_clip

        with progress_bars() as progress:
            figures = evaluate_clip(ClipModel.from_file(model), n=n, seed=seed, progress=progress)
        print_figures(figures, as_json)

    @eval_app.command("encoder")
    @cli_command
    def eval_encoder(
        model: ModelFile, generator: Gen,
        evaluator: Annotated[Path | None, typer.Option("--evaluator", help="Attribute evaluator for agreement.")] = None,
        identity: Annotated[Path | None, typer.Option("--identity", help="Identity net for similarity.")] = None,
        n: EvalN = 200, seed: Seed = 0, as_json: AsJson = False,
    ) -> None:
        """Reconstruction L1, identity similarity and attribute agreement on held-out photo renders."""
        from cfs_cli.progress import progress_bars
        from cfs_core.nets.e4e import E4E
        from cfs_core.nets.evaluator import Evaluator
        from cfs_core.nets.identity import IdentityNet
        from cfs_core.stylegan2 import load_generator

        from cfs_core.training.encoder import evaluate_encoder

        g = load_generator(generator).generator
        ev = Evaluator.from_file(evaluator) if evaluator is not None else None
        ident = IdentityNet.from_file(identity) if identity is not None else None
        with progress_bars() as progress:
            figures: dict[str, Any] = evaluate_encoder(E4E.from_file(model), g, ev, ident, n=n, seed=seed,
                                                       progress=progress)
        print_figures(figures, as_json)
