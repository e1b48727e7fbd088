"""A batch of edits with outputs on disk: inputs discovered and validated up front, one folder per
input written atomically, and resume (an input whose folder holds the same job's manifest is
skipped). ``cfs edit`` is a thin layer over :class:`EditJob`.

Per input ``OUT/<name>/``: ``edited.png`` (``edited_<strength>.png`` per value of a sweep),
``reconstruction.png`` (the generator's image of the input's W+), ``source.png`` (image inputs),
``latents.safetensors`` (``source`` and ``edited`` codes), ``strip.png`` (before/after) and
``manifest.json`` — written last: its presence means the folder is complete.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfs_core.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from cfs_core.guidance import Guidance
    from cfs_core.methods import EditContext, EditingMethod, MethodOptions

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
LATENT_SUFFIXES = (".safetensors", ".npy", ".pt", ".pth")


@dataclass
class EditInput:
    """One input: an image (already read and validated) or a latent file (read once the generator is known)."""

    name: str
    path: Path
    image: np.ndarray | None = None
    latents: torch.Tensor | None = None


@dataclass
class ItemReport:
    name: str
    status: str  # "done" | "skipped"
    seconds: float = 0.0
    folder: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)


def discover_inputs(path: Path) -> list[EditInput]:
    """Images and latent files at ``path`` (a file or a folder); images are read and validated now."""
    from cfs_core.imageio import read_image

    path = path.expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES + LATENT_SUFFIXES) \
        if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) or latent files in this folder")
    inputs, names = [], set()
    for file in files:
        suffix = file.suffix.lower()
        if suffix not in IMAGE_SUFFIXES + LATENT_SUFFIXES:
            raise InputError(f"{file}: not an image ({', '.join(IMAGE_SUFFIXES)}) or a latent file ({', '.join(LATENT_SUFFIXES)})")
        name = file.stem if file.stem not in names else f"{file.stem}{suffix.replace('.', '_')}"
        names.add(name)
        inputs.append(EditInput(name, file, image=read_image(file) if suffix in IMAGE_SUFFIXES else None))
    return inputs


def unique_names(inputs: Sequence[EditInput]) -> list[EditInput]:
    """Inputs from several ``--input`` paths with distinct names (``face``, ``face_2``, …); used by
    ``cfs edit`` and ``cfs compare``."""
    from dataclasses import replace

    seen: set[str] = set()
    out = []
    for item in inputs:
        name, n = item.name, 1
        while name in seen:
            n += 1
            name = f"{item.name}_{n}"
        seen.add(name)
        out.append(item if name == item.name else replace(item, name=name))
    return out


def expand_latents(inputs: Sequence[EditInput], n_latent: int, style_dim: int) -> list[EditInput]:
    """Read latent files (one input per code of a batch file)."""
    from cfs_core.latentio import read_latents

    out: list[EditInput] = []
    for item in inputs:
        if item.image is not None:
            out.append(item)
            continue
        codes = read_latents(item.path, n_latent, style_dim)
        if len(codes) == 1:
            out.append(EditInput(item.name, item.path, latents=codes))
        else:
            out.extend(EditInput(f"{item.name}_{i:03d}", item.path, latents=codes[i : i + 1]) for i in range(len(codes)))
    return out


def _strength_tag(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


@dataclass
class EditJob:
    """One method × one guidance × options (× strengths) over many inputs."""

    method: type[EditingMethod]
    options: MethodOptions
    guidance: Guidance
    out: Path
    seed: int = 0
    strengths: Sequence[float | None] = (None,)
    models: dict[str, Any] = field(default_factory=dict)
    force: bool = False

    def key(self) -> dict[str, Any]:
        """What makes two runs the same job (compared on resume)."""
        return {"method": self.method.method_id, "options": self.options.model_dump(mode="json"),
                "strengths": list(self.strengths), "guidance": self.guidance.digest, "seed": self.seed,
                "models": self.models}

    def folder(self, item: EditInput) -> Path:
        return self.out / item.name

    def is_done(self, item: EditInput) -> bool:
        manifest = self.folder(item) / "manifest.json"
        if not manifest.is_file():
            return False
        try:
            previous = json.loads(manifest.read_text()).get("job")
        except (OSError, ValueError):
            return False
        if previous == self.key():
            return True
        if not self.force:
            raise InputError(f"{self.folder(item)} holds the results of a different edit (method, options, guidance, "
                             "seed or models differ): choose another --out, or --force to replace them")
        return False

    def run(self, ctx: EditContext, inputs: Sequence[EditInput]) -> list[ItemReport]:
        reports = []
        for i, item in enumerate(inputs):
            if self.is_done(item):
                reports.append(ItemReport(item.name, "skipped", folder=self.folder(item)))
            else:
                reports.append(self._run_item(ctx, item))
            ctx.report("inputs", i + 1, len(inputs), item.name)
        return reports

    def _run_item(self, ctx: EditContext, item: EditInput) -> ItemReport:
        from cfs_core import editing
        from cfs_core.fileio import atomic_write_text
        from cfs_core.imageio import save_png, to_uint8

        start = time.perf_counter()
        gen = ctx.generator
        timings: dict[str, float] = {}
        source_img = None
        if item.latents is not None:
            source = item.latents.to(ctx.device)
        else:
            t = time.perf_counter()
            pixels = editing.images_to_tensor([item.image], gen.size, ctx.device)  # type: ignore[list-item]
            source_img = to_uint8(pixels)[0]
            source = editing.invert(ctx, pixels)
            timings["invert"] = time.perf_counter() - t
        t = time.perf_counter()
        recon = to_uint8(editing.render(ctx, source))[0]
        timings["reconstruct"] = time.perf_counter() - t
        runs = []
        for strength in self.strengths:
            options = editing.with_strength(self.method, self.options, strength)
            timed = editing.run_method(self.method, ctx, source, self.guidance, options)
            timed.extra["strength"] = strength
            runs.append(timed)
        timings["edit"] = sum(r.seconds for r in runs)

        partial = self.out / f".{item.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        outputs: dict[str, Any] = {"reconstruction": "reconstruction.png"}
        save_png(recon, partial / "reconstruction.png")
        strip_images, labels = [], []
        if source_img is not None:
            save_png(source_img, partial / "source.png")
            outputs["source"] = "source.png"
            strip_images.append(source_img)
            labels.append("input")
        strip_images.append(recon)
        labels.append("reconstruction")
        if self.guidance.image is not None:
            strip_images.append(self.guidance.image)
            labels.append(self.guidance.kind)
        tensors = {"source": source}
        for run in runs:
            tag = _strength_tag(run.extra["strength"])
            name = f"edited_{tag}.png" if tag and len(runs) > 1 else "edited.png"
            edited = to_uint8(run.result.images)[0]
            save_png(edited, partial / name)
            outputs.setdefault("edited", []).append(name)
            strip_images.append(edited)
            labels.append(f"{self.method.method_id} {tag}".strip())
            key = f"edited_{tag}" if tag and len(runs) > 1 else "edited"
            latents = run.result.latents
            if isinstance(latents, (list, tuple)):
                tensors.update({f"{key}.s{j:02d}": s for j, s in enumerate(latents)})
            else:
                tensors[key] = latents
        write_latents_dict(partial / "latents.safetensors", tensors)
        outputs["latents"] = "latents.safetensors"
        save_png(editing.strip(strip_images, labels, height=min(256, max(128, gen.size))), partial / "strip.png")
        outputs["strip"] = "strip.png"
        manifest = editing.edit_manifest(
            self.method, runs, self.guidance, self.seed, self.models,
            {"path": str(item.path), "kind": "image" if item.image is not None else "latents"}, outputs,
            ctx.device, timings)
        manifest["job"] = self.key()
        atomic_write_text(partial / "manifest.json", json.dumps(manifest, indent=2, default=str))
        final = self.folder(item)
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
        return ItemReport(item.name, "done", time.perf_counter() - start, final, {"timings": timings})


def write_latents_dict(path: Path, tensors: dict[str, Any]) -> None:
    """All codes of an edit in one safetensors file (atomic)."""
    from safetensors.torch import save_file

    from cfs_core.fileio import atomic_path

    data = {k: v.detach().float().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(data, str(tmp))
