"""Generator sources as plugins: code that recognises a model file and builds a generator from it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from cfs_core.stylegan2 import Generator


class GeneratorSource(ABC):
    """Base class of generator sources (registered through ``register_generators``)."""

    source_id: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def can_load(self, path: Path) -> bool:
        """Cheaply (no weights read) say whether this source reads ``path``."""

    @abstractmethod
    def load(self, path: Path, device: str = "cpu", options: Mapping[str, Any] | None = None) -> Generator:
        """Build the generator stored in ``path`` (eval mode, no gradients).

        ``options`` are source-specific (e.g. ``{"which": "g"}`` for a StyleGAN2 training
        snapshot); a source raises :class:`~cfs_core.errors.InputError` for one it does not know.
        """

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"id": cls.source_id, "description": cls.description}
