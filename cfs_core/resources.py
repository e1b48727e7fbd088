"""Lazy resources: heavy shared things (CLIP, the identity net, the parser, the encoder).

Methods, losses and metrics declare the resource names they need (``requires``); the host
provides a factory per name and :meth:`Resources.get` builds each one on first use only. A run
that needs no identity net never builds one, and tests inject small fakes by name.

:meth:`Resources.digest` names a resource's content for artefact cache keys. A provider that
knows it without building the object (the model session: the sha256 of the model file) passes
``digest=``; otherwise the built object is fingerprinted (:func:`cfs_core.artifacts.model_digest`).
So a method whose trained artefact is cached (a ClipFaceShop adaptor, a mapper) can find it
without loading CLIP, the identity net or the parser.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from cfs_core.errors import InputError


class Resources:
    """Name → lazily built object."""

    def __init__(self, factories: dict[str, Callable[[], Any]] | None = None) -> None:
        self._factories: dict[str, Callable[[], Any]] = dict(factories or {})
        self._built: dict[str, Any] = {}
        self._digesters: dict[str, Callable[[], str]] = {}
        self._digests: dict[str, str] = {}

    def provide(self, name: str, factory: Callable[[], Any], digest: Callable[[], str] | None = None) -> None:
        """Offer ``name``; ``factory`` runs on the first :meth:`get` (a replaced one rebuilds).
        ``digest``, when given, names the content without building it (see :meth:`digest`)."""
        self._factories[name] = factory
        self._built.pop(name, None)
        self._digests.pop(name, None)
        self._digesters.pop(name, None)
        if digest is not None:
            self._digesters[name] = digest

    def provide_value(self, name: str, value: Any) -> None:
        """Offer an already built object under ``name``."""
        self._factories[name] = lambda: value
        self._built[name] = value
        self._digests.pop(name, None)
        self._digesters.pop(name, None)

    def digest(self, name: str) -> str:
        """A stable digest of resource ``name``'s content for cache keys: the provider's (no build)
        when it gave one, else the fingerprint of the built object. Computed once per name."""
        if name not in self._digests:
            if name in self._digesters:
                self._digests[name] = self._digesters[name]()
            else:
                from cfs_core.artifacts import model_digest  # torch: only when a fingerprint is needed

                self._digests[name] = model_digest(self.get(name))
        return self._digests[name]

    def get(self, name: str) -> Any:
        """The resource ``name``, built now if it was not yet."""
        if name not in self._built:
            if name not in self._factories:
                have = ", ".join(sorted(self._factories)) or "none"
                raise InputError(f"resource '{name}' is not available (available: {have})")
            self._built[name] = self._factories[name]()
        return self._built[name]

    def check(self, names: Iterable[str], needed_by: str) -> None:
        """Raise one error listing every name in ``names`` that no factory provides."""
        missing = sorted(set(names) - set(self._factories))
        if missing:
            raise InputError(f"{needed_by} needs {', '.join(missing)}, which this model set does not provide")

    def available(self) -> list[str]:
        return sorted(self._factories)

    def built(self) -> list[str]:
        """Names built so far (tests use it to prove that unused nets stay unbuilt)."""
        return sorted(self._built)
