"""Guidance options shared by the commands that run methods (``--text``, ``--clipart``, …)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cfs_core.errors import InputError

if TYPE_CHECKING:  # numpy and PIL stay out of `cfs --help`
    from cfs_core.guidance import Guidance
    from cfs_registry.plugins import PluginHost

Text = Annotated[str | None, typer.Option("--text", "-t", help="Guide with a text prompt.")]
Clipart = Annotated[Path | None, typer.Option("--clipart", help="Guide with a clipart image.")]
Sketch = Annotated[Path | None, typer.Option("--sketch", help="Guide with a sketch image.")]
Exemplar = Annotated[Path | None, typer.Option("--exemplar", help="Guide with an exemplar photo.")]
Guide = Annotated[list[str] | None, typer.Option("--guide", help="Any registered guidance kind: KIND=VALUE.")]


def guidance_pairs(text: str | None, clipart: Path | None, sketch: Path | None, exemplar: Path | None,
                   guide: list[str] | None) -> list[tuple[str, str]]:
    """The (kind, raw value) pairs the user gave."""
    pairs = [(kind, str(value)) for kind, value in
             (("text", text), ("clipart", clipart), ("sketch", sketch), ("exemplar", exemplar)) if value is not None]
    for item in guide or []:
        kind, sep, value = item.partition("=")
        if not sep or not kind.strip():
            raise InputError(f"--guide '{item}' is not of the form KIND=VALUE")
        pairs.append((kind.strip(), value))
    return pairs


def load_guidance(host: PluginHost, kind: str, value: str) -> Guidance:
    """Validate raw input with the registered guidance kind (one-line errors)."""
    return host.guidance_kinds.get(kind)().load(value)  # type: ignore[no-any-return]
