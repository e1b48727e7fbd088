"""``cfs generate``: sample images (and optionally their W+ codes) from a StyleGAN2 generator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cfs_cli._common import cli_command, console, get_host, info, resolve_device

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def register(app: typer.Typer) -> None:
    """Add the ``generate`` command to ``app``."""

    @app.command("generate")
    @cli_command
    def generate(
        model: Annotated[str, typer.Option("--model", "-m", help="Model file (.pt/.safetensors) or an architecture name (random weights).")],
        out: Annotated[Path, typer.Option("--out", "-o", help="A .png file (one image, or a grid when --n > 1) or a folder.")],
        seed: Annotated[int, typer.Option("--seed", "-s", help="Seed of the z samples.")] = 0,
        n: Annotated[int, typer.Option("--n", min=1, max=10000, help="How many images.")] = 1,
        truncation: Annotated[float, typer.Option("--truncation", "-t", min=0.0, max=2.0, help="Truncation psi (1 = none) towards latent_avg or the mean latent.")] = 1.0,
        noise: Annotated[str, typer.Option("--noise", help="const (stored noise maps) or random (seeded).")] = "const",
        which: Annotated[str | None, typer.Option("--which", help="Generator of a training snapshot: g_ema (default) or g.")] = None,
        latents: Annotated[Path | None, typer.Option("--latents", help="Also write the W+ codes to this .safetensors file.")] = None,
    ) -> None:
        """Sample images from a StyleGAN2 generator, deterministically from --seed."""
        from cfs_core.errors import InputError
        from cfs_core.imageio import grid, save_png, to_uint8
        from cfs_registry.architectures import resolve_generator

        if noise not in ("const", "random"):
            raise InputError(f"--noise must be const or random, got '{noise}'")
        if latents is not None and latents.suffix != ".safetensors":
            raise InputError(f"--latents {latents}: the file must end in .safetensors")
        device = resolve_device()
        gen, described = resolve_generator(model, device=device, seed=seed, which=which, host=get_host())
        info(f"model: {described}")
        images, wplus = gen.sample(n, seed=seed, truncation=truncation, noise=noise)  # type: ignore[arg-type]
        arrays = to_uint8(images)
        if out.suffix.lower() in IMAGE_SUFFIXES:
            written = [save_png(arrays[0] if n == 1 else grid(arrays), out)]
        else:
            written = [save_png(a, out / f"seed{seed}_{i:04d}.png") for i, a in enumerate(arrays)]
        if latents is not None:
            from safetensors.torch import save_file

            from cfs_core.fileio import atomic_path

            with atomic_path(latents) as tmp:
                save_file({"wplus": wplus.cpu().contiguous()}, str(tmp), metadata={"seed": str(seed), "truncation": str(truncation)})
        where = written[0] if len(written) == 1 else f"{len(written)} images in {out}"
        console.print(f"wrote {where} ({gen.size}×{gen.size}, W+ {tuple(wplus.shape[1:])})")
