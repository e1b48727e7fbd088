"""Recognise and load StyleGAN2 model files through the shared backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from cfs_core.errors import InputError
from cfs_core.sources import GeneratorSource
from cfs_core.stylegan2 import Generator, load_generator

GENERATOR_KEYS = ("input.input", "generator.input.input")


class StyleGAN2Source(GeneratorSource):
    source_id: ClassVar[str] = "stylegan2"
    description: ClassVar[str] = "StyleGAN2 (rosinality .pt converted/training layouts, state dicts, cfs .safetensors)"

    def can_load(self, path: Path) -> bool:
        if path.suffix in (".pt", ".pth"):
            return True  # a pickle cannot be peeked at without reading it; load() says if it is not ours
        if path.suffix != ".safetensors":
            return False
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                return any(key in handle.keys() for key in GENERATOR_KEYS)
        except Exception:  # noqa: BLE001 - unreadable: not ours to claim
            return False

    def load(self, path: Path, device: str = "cpu", options: Mapping[str, Any] | None = None) -> Generator:
        options = dict(options or {})
        which = options.pop("which", None)
        if options:
            raise InputError(f"stylegan2 source: unknown option(s) {', '.join(options)} (known: which)")
        return load_generator(path, which=which, device=device).generator
