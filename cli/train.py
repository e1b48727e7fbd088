"""``cfs train METHOD``: train or precompute a method's artefact ahead of edits.

Examples: ``cfs train mapper --text "purple hair"`` (a StyleCLIP mapper for a prompt),
``cfs train global`` (channel statistics of a generator + CLIP pair), ``cfs train clipart
--clipart target.png`` (a ClipFaceShop adaptor). Artefacts are cached (``--cache-dir``) where
``cfs edit`` finds them; training is resumable where the method says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cfs_cli._common import cli_command, console, info, resolve_device
from cfs_cli._guidance import Clipart, Exemplar, Guide, Sketch, Text, guidance_pairs, load_guidance
from cfs_registry.plugins import PluginHost

Models = Annotated[str | None, typer.Option("--models", "-m", help="Model set (see `cfs models sets`; default: the demo pack).")]
RoleFile = Annotated[Path | None, typer.Option(help="Use this file for the role instead of the model set's.")]
Options = Annotated[list[str] | None, typer.Option("--option", "-o", help="Method option KEY=VALUE (see `cfs methods`).")]


def role_files(**files: Path | None) -> dict[str, Path]:
    """The ``--generator/--clip/…`` files the user gave."""
    return {role: path for role, path in files.items() if path is not None}


def register(app: typer.Typer, host: PluginHost) -> None:
    """Add ``cfs train`` bound to ``host``."""

    @app.command("train")
    @cli_command
    def train(
        method: Annotated[str, typer.Argument(help="A method id (see `cfs methods`).")],
        text: Text = None, clipart: Clipart = None, sketch: Sketch = None, exemplar: Exemplar = None, guide: Guide = None,
        models: Models = None,
        generator: RoleFile = None, clip: RoleFile = None, identity: RoleFile = None, parser: RoleFile = None,
        encoder: RoleFile = None,
        latents: Annotated[Path | None, typer.Option("--latents", help="Train on these W+ codes (.safetensors/.npy/.pt).")] = None,
        option: Options = None,
        seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of everything random in training.")] = 0,
        cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Where artefacts are cached (default: CFS_ARTIFACT_DIR or ~/.cache/cfs/artifacts).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the training facts as JSON.")] = False,
    ) -> None:
        """Train or precompute a method's artefact (a mapper, an adaptor, channel statistics)."""
        from cfs_cli.progress import method_options, progress_bars
        from cfs_core.errors import InputError
        from cfs_core.methods import parse_option_pairs
        from cfs_core.guidance import Guidance, text_digest
        from cfs_core.latentio import read_latents
        from cfs_core.methods import EditRequest
        from cfs_registry.session import ModelSession, empty_latents

        method_cls = host.methods.get(method)
        if not method_cls.trainable():
            raise InputError(f"method '{method}' has nothing to train (trainable: "
                             f"{', '.join(e.id for e in host.methods if e.obj.trainable()) or 'none'})")
        pairs = guidance_pairs(text, clipart, sketch, exemplar, guide)
        if len(pairs) > 1:
            raise InputError(f"give one guidance, not {len(pairs)} ({', '.join(k for k, _ in pairs)})")
        for kind, _ in pairs:
            method_cls.check_guidance(kind)
        options = method_options(method_cls, option or [])
        guidance = load_guidance(host, *pairs[0]) if pairs else Guidance("text", "", text="", digest=text_digest(""))
        session = ModelSession.open(models, role_files(generator=generator, clip=clip, identity=identity,
                                                       parser=parser, encoder=encoder), resolve_device())
        options = session.options_for(method_cls, parse_option_pairs(option or []))  # + the set's defaults
        with progress_bars() as report:
            ctx = session.context(host, seed, progress=report, cache_dir=cache_dir)
            gen = ctx.generator
            w = read_latents(latents, gen.n_latent, gen.style_dim).to(ctx.device) if latents else empty_latents(gen)
            facts = method_cls().train(ctx, EditRequest(w, guidance, options))
        info(f"trained {method} ({session.name} models); cached under {ctx.cache_dir}")
        if as_json:
            console.print_json(json.dumps({"method": method, "models": session.describe(), **facts}, default=str))
        else:
            for key, value in facts.items():
                console.print(f"{key}: {value}", markup=False, soft_wrap=True)
