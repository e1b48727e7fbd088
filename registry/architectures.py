"""Named architecture configs (``registry/configs/<family>/<name>.json``) and model resolution.

A config file holds ``{"description": str, "config": {...}}`` where ``config`` is what the
family's config class reads (``GeneratorConfig.from_dict`` for ``stylegan2``). Tiny ``test-*``
variants live in the real registry (timm's habit), so tests exercise the same lookup as users.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfs_core.errors import InputError

if TYPE_CHECKING:
    from cfs_core.stylegan2 import Generator
    from cfs_registry.plugins import PluginHost


@dataclass(frozen=True)
class Architecture:
    """One named architecture config."""

    name: str
    family: str
    description: str
    config: dict[str, Any]


def list_architectures(family: str = "stylegan2") -> dict[str, Architecture]:
    """All configs of a family, by name (sorted)."""
    root = resources.files("cfs_registry").joinpath("configs", family)
    out: dict[str, Architecture] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text(encoding="utf-8"))
            name = entry.name[: -len(".json")]
            out[name] = Architecture(name, family, data.get("description", ""), data["config"])
    return out


def get_architecture(name: str, family: str = "stylegan2") -> Architecture:
    """Look an architecture up by name; the error lists the known names."""
    known = list_architectures(family)
    if name not in known:
        raise InputError(f"unknown {family} architecture '{name}' (known: {', '.join(known)})")
    return known[name]


def resolve_generator(
    spec: str, device: str = "cpu", seed: int = 0, which: str | None = None, host: PluginHost | None = None,
) -> tuple[Generator, str]:
    """Turn ``--model`` into a generator: a model file path, a zoo model name, or an architecture name.

    A file (or a zoo model's cached file) is read by the first registered generator source that
    claims it; a zoo model that is not in the cache yet is a one-line error saying how to get it.
    An architecture name builds a generator with **random weights** (seeded); the returned
    description says so.
    """
    import torch

    from cfs_core.stylegan2 import Generator, GeneratorConfig

    path = Path(spec).expanduser()
    if not path.exists() and spec not in list_architectures():
        path = _zoo_path(spec) or path
    if path.exists() or any(sep in spec for sep in ("/", "\\")) or path.suffix in (".pt", ".pth", ".safetensors"):
        if not path.exists():
            raise InputError(f"{path}: no such file")
        if path.is_dir():
            raise InputError(f"{path}: is a directory, expected a model file")
        from cfs_registry.plugins import PluginHost

        sources = (host or PluginHost()).sources
        for entry in sources:
            source = entry.obj()
            if source.can_load(path):
                options = {"which": which} if which else {}
                return source.load(path, device, options), f"{path} (read by the '{entry.id}' source)"
        raise InputError(f"{path}: no generator source reads this file (sources: {', '.join(sources.ids()) or 'none'})")
    arch = get_architecture(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = Generator(GeneratorConfig.from_dict(arch.config))
    return gen.eval().requires_grad_(False).to(device), f"architecture '{spec}' with random weights (seed {seed})"


def _zoo_path(name: str) -> Path | None:
    """The cached file of zoo model ``name`` (error if known but not present); None if unknown."""
    from cfs_registry.zoo import Zoo

    zoo = Zoo()
    if name not in zoo.names():
        return None
    path = zoo.path(name)
    if not path.exists():
        raise InputError(f"model '{name}' is not in the cache yet: run `cfs models pull {name}` (or place the file at {path})")
    return path
