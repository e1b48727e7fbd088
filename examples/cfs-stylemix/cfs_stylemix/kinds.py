"""The ``seed`` guidance kind: "the face the generator draws for this seed"."""

from __future__ import annotations

import re
from typing import ClassVar

from cfs_core.errors import InputError
from cfs_core.guidance import Guidance, TextGuidanceKind, text_digest

MAX_SEED = 2**32 - 1
_INTEGER = re.compile(r"[+-]?\d+")


class SeedKind(TextGuidanceKind):
    """A non-negative integer seed, e.g. ``--guidance seed:42``.

    The text is normalised like any text guidance (``TextGuidanceKind`` rejects empty input),
    then parsed; the parsed seed travels to methods in ``Guidance.meta["seed"]``, so methods
    never parse user input themselves.
    """

    kind_id: ClassVar[str] = "seed"
    description: ClassVar[str] = "an integer seed: the face the generator draws for it (as `cfs generate --seed N`)"
    max_chars: ClassVar[int] = 32

    def load(self, source: str) -> Guidance:
        text = super().load(source).text or ""
        if not _INTEGER.fullmatch(text):
            raise InputError(f"seed guidance must be a whole number like 42 (got {text!r})")
        seed = int(text)
        if not 0 <= seed <= MAX_SEED:
            raise InputError(f"seed guidance must be between 0 and {MAX_SEED} (got {seed})")
        canonical = str(seed)  # "007" and "7" are the same face, so they share a digest
        return Guidance(self.kind_id, str(source), text=canonical, digest=text_digest(canonical), meta={"seed": seed})

