"""Guidance: what an edit is steered by (a text, a clipart, a sketch, an exemplar photo).

A :class:`GuidanceKind` turns raw user input into a validated :class:`Guidance` value; methods
never parse user input themselves, so every (kind × method) pair works the same way. Image kinds
subclass :class:`ImageGuidanceKind`, which reads PNG/JPEG/WebP safely (EXIF orientation,
transparency on white, grayscale, size limits) and then calls :meth:`ImageGuidanceKind.prepare`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from cfs_core.errors import InputError
from cfs_core.imageio import MAX_PIXELS, read_image

MAX_TEXT_CHARS = 1000


@dataclass(frozen=True, eq=False)
class Guidance:
    """A validated guidance value.

    ``text`` is set for text kinds, ``image`` (uint8 RGB ``[H, W, 3]``) for image kinds.
    ``digest`` is the SHA-256 of the content (not of the file name): caches key on it.
    """

    kind: str
    source: str  # the text itself, or the path the image came from
    text: str | None = None
    image: np.ndarray | None = None
    digest: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for manifests (no pixels)."""
        out: dict[str, Any] = {"kind": self.kind, "source": self.source, "sha256": self.digest}
        if self.image is not None:
            out["size"] = [int(self.image.shape[1]), int(self.image.shape[0])]
        return {**out, **dict(self.meta)}


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def image_digest(image: np.ndarray) -> str:
    digest = hashlib.sha256(f"{image.shape}|{image.dtype}|".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


class GuidanceKind(ABC):
    """Base class of guidance kinds (registered through ``register_guidance_kinds``)."""

    kind_id: ClassVar[str]
    description: ClassVar[str]
    modality: ClassVar[Literal["text", "image"]]

    @abstractmethod
    def load(self, source: str) -> Guidance:
        """Turn raw input (a text, or an image path) into a :class:`Guidance`.

        Raises :class:`~cfs_core.errors.InputError` with a one-line message for bad input.
        """

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"id": cls.kind_id, "description": cls.description, "modality": cls.modality}


class TextGuidanceKind(GuidanceKind):
    """A text prompt: whitespace-normalised, non-empty, at most ``max_chars`` characters."""

    modality: ClassVar[Literal["text", "image"]] = "text"
    max_chars: ClassVar[int] = MAX_TEXT_CHARS

    def load(self, source: str) -> Guidance:
        text = " ".join(str(source).split())
        if not text:
            raise InputError(f"{self.kind_id} guidance is empty: give a non-empty text")
        if len(text) > self.max_chars:
            raise InputError(f"{self.kind_id} guidance is {len(text)} characters long (at most {self.max_chars})")
        return Guidance(self.kind_id, text, text=text, digest=text_digest(text))


class ImageGuidanceKind(GuidanceKind):
    """An image file; subclasses adapt the pixels in :meth:`prepare` (e.g. sketch clean-up)."""

    modality: ClassVar[Literal["text", "image"]] = "image"
    max_pixels: ClassVar[int] = MAX_PIXELS

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Kind-specific clean-up of the RGB uint8 image; the default keeps it unchanged."""
        return image

    def load(self, source: str) -> Guidance:
        path = Path(str(source)).expanduser()
        image = self.prepare(read_image(path, max_pixels=self.max_pixels))
        return Guidance(self.kind_id, str(path), image=image, digest=image_digest(image))
