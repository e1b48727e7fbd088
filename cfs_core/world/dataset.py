"""Write a synthetic face dataset: images per style, label maps, parameters, captions, manifest.

Layout of a dataset folder::

    world.json            the options it was made with (size, styles, seed, captions) and n
    manifest.jsonl        one JSON object per item, in index order (written last): its record
                          plus the relative paths "images" (per style), "labels" and "record"
    <style>/000000.png    one RGB image per style (photo, clipart, sketch)
    labels/000000.png     the label map: 8-bit grey values are the class ids (0..18)
    params/000000.json    {"id", "seed", "params", "captions": {"plain": [...], "<style>": [...]}}

Item ``i`` is drawn from the seed ``item_seed(seed, i)``, so a dataset is reproducible and can be
extended by asking for a larger ``n``. Every file is written atomically and an item's
``params`` file is written after its images: a rerun skips the items whose ``params`` file
exists, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cfs_core.errors import InputError
from cfs_core.fileio import atomic_write_text
from cfs_core.imageio import save_png
from cfs_core.world.build import build_scene
from cfs_core.world.captions import captions
from cfs_core.world.labels import LABEL_NAMES
from cfs_core.world.raster import scene_labels
from cfs_core.world.schema import sample_params, schema
from cfs_core.world.styles import STYLES, check_size, check_style, render_scene

FORMAT = "cfs-world-dataset"
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DatasetOptions:
    """What a dataset is made of; a rerun into the same folder must use the same options."""

    size: int = 128
    styles: tuple[str, ...] = STYLES
    seed: int = 0
    captions: int = 5

    def check(self) -> None:
        """Validate the options (raises InputError)."""
        check_size(self.size)
        if not self.styles:
            raise InputError("at least one style is needed")
        for style in self.styles:
            check_style(style)
        if len(set(self.styles)) != len(self.styles):
            raise InputError(f"styles are repeated: {', '.join(self.styles)}")
        if self.captions < 0:
            raise InputError(f"the number of captions must be 0 or more, got {self.captions}")


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`write_dataset` did."""

    root: Path
    written: int
    skipped: int
    manifest: Path


def item_seed(seed: int, index: int) -> int:
    """The seed of item ``index`` of a dataset made with ``seed`` (parameters, texture, jitter)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def item_id(index: int) -> str:
    """The file stem of item ``index``."""
    return f"{index:06d}"


def item_files(options: DatasetOptions, index: int) -> dict[str, Any]:
    """The relative paths of an item's files: ``images`` per style, ``labels`` and ``record``."""
    stem = item_id(index)
    return {
        "images": {style: f"{style}/{stem}.png" for style in options.styles},
        "labels": f"labels/{stem}.png",
        "record": f"params/{stem}.json",
    }


def write_item(root: Path, options: DatasetOptions, index: int) -> bool:
    """Render and write one item unless it is complete; return True if it was written."""
    files = item_files(options, index)
    record_path = root / files["record"]
    if record_path.exists():
        return False
    seed = item_seed(options.seed, index)
    params = sample_params(seed)
    scene = build_scene(params)
    for style, rel in files["images"].items():
        save_png(render_scene(scene, style, options.size, seed), root / rel)
    save_png(scene_labels(scene, options.size), root / files["labels"])
    texts = {"plain": captions(params, options.captions, None, seed)}
    texts.update({style: captions(params, options.captions, style, seed) for style in options.styles})
    record = {"id": item_id(index), "seed": seed, "params": params.to_dict(), "captions": texts}
    atomic_write_text(record_path, json.dumps(record, indent=1) + "\n")
    return True


def _check_existing(root: Path, options: DatasetOptions) -> None:
    config = root / "world.json"
    if not config.exists():
        return
    try:
        previous = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{config}: unreadable dataset description ({exc})") from None
    wanted = json.loads(json.dumps(asdict(options)))  # tuples become lists, as in the file
    old = previous.get("options", {})
    for key, value in wanted.items():
        if old.get(key) != value:
            raise InputError(
                f"{root} holds a dataset made with {key}={old.get(key)}; use the same options or another folder"
            )


def write_dataset(
    root: str | os.PathLike[str],
    n: int,
    styles: Sequence[str] = STYLES,
    size: int = 128,
    seed: int = 0,
    n_captions: int = 5,
    workers: int = 1,
    progress: Progress | None = None,
) -> DatasetSummary:
    """Write (or complete) a dataset of ``n`` faces in ``root``; see the module docstring.

    ``workers`` > 1 renders in that many processes. ``progress(done, total)`` is called after
    each item, finished or skipped.
    """
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}")
    options = DatasetOptions(size=size, styles=tuple(styles), seed=seed, captions=n_captions)
    options.check()
    root = Path(root)
    _check_existing(root, options)
    root.mkdir(parents=True, exist_ok=True)
    description = {"format": FORMAT, "version": 1, "n": n, "options": asdict(options),
                   "labels": list(LABEL_NAMES), "schema": schema()}
    atomic_write_text(root / "world.json", json.dumps(description, indent=1) + "\n")
    written = 0
    outcomes = _run(root, options, n, workers)
    for done, was_written in enumerate(outcomes, start=1):
        written += was_written
        if progress is not None:
            progress(done, n)
    manifest = root / "manifest.jsonl"
    lines = []
    for index in range(n):
        record = json.loads((root / item_files(options, index)["record"]).read_text(encoding="utf-8"))
        lines.append(json.dumps({**record, **item_files(options, index)}))
    atomic_write_text(manifest, "\n".join(lines) + "\n")
    return DatasetSummary(root=root, written=written, skipped=n - written, manifest=manifest)


def _run(root: Path, options: DatasetOptions, n: int, workers: int) -> Iterator[bool]:
    """Yield, item by item and in order, whether each item was written."""
    if workers <= 1:
        for index in range(n):
            yield write_item(root, options, index)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(write_item, [root] * n, [options] * n, range(n), chunksize=8)


def read_manifest(root: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The items of a dataset, as written in its manifest."""
    path = Path(root) / "manifest.jsonl"
    if not path.exists():
        raise InputError(f"{path}: no manifest (not a finished world dataset)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
