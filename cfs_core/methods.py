"""Editing methods: the base class every method plugin subclasses, and what it gets and returns.

A method is a class with capability attributes (``method_id``, ``accepts``, ``latent_space``,
``Options``, ``default_losses``, ``requires``) and one entry point, :meth:`EditingMethod.edit`,
which receives an :class:`EditContext` (generator, device, seed, lazy resources, progress) and an
:class:`EditRequest` (source latents, guidance, validated options) and returns an
:class:`EditResult`. Options arrive from the CLI as ``-o key=value`` strings and are validated by
the method's pydantic ``Options`` model, which rejects unknown keys.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from cfs_core.errors import InputError
from cfs_core.guidance import Guidance
from cfs_core.losses import ComposedLoss, Loss, compose
from cfs_core.resources import Resources

if TYPE_CHECKING:
    import torch

    from cfs_core.artifacts import ArtifactCache
    from cfs_core.registration import Table

    from cfs_core.stylegan2 import Generator

LatentSpace = Literal["w", "w+", "s"]


class MethodOptions(BaseModel):
    """Base of every method's ``Options``: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report: ``step`` of ``total`` in ``stage`` (e.g. "optimise", "train")."""

    stage: str
    step: int
    total: int | None = None
    message: str = ""
    values: Mapping[str, float] = field(default_factory=dict)  # e.g. {"loss": 0.31}


ProgressCallback = Callable[[ProgressEvent], None]


def _ignore(event: ProgressEvent) -> None:
    """Default progress sink."""


@dataclass
class EditContext:
    """What the host gives a method for one edit."""

    generator: Generator
    device: torch.device
    seed: int = 0
    resources: Resources = field(default_factory=Resources)
    progress: ProgressCallback = _ignore
    cache_dir: Any = None  # a pathlib.Path where a method may cache trained artefacts, or None
    losses: Table[type[Loss]] | None = None  # the registered losses (the host fills it)
    artifact_dirs: tuple[Any, ...] = ()  # read-only folders of shipped artefacts (searched after cache_dir)

    def artifacts(self) -> ArtifactCache:
        """The artefact cache a method should use: ``cache_dir``, then the model set's shipped
        artefacts (``artifact_dirs``); saves go to ``cache_dir``."""
        from cfs_core.artifacts import ArtifactCache

        return ArtifactCache(self.cache_dir, self.artifact_dirs)

    def compose_losses(self, weights: Mapping[str, float], needed_by: str) -> ComposedLoss:
        """Compose registered losses by id × weight (e.g. a method's ``default_losses``)."""
        if self.losses is None:
            raise InputError(f"{needed_by}: no loss table in this context (the host did not provide one)")
        return compose(self.losses, weights, self.resources, needed_by)

    def report(self, stage: str, step: int, total: int | None = None, message: str = "", **values: float) -> None:
        """Emit a :class:`ProgressEvent`."""
        self.progress(ProgressEvent(stage, step, total, message, values))

    def rng(self, offset: int = 0) -> torch.Generator:
        """A CPU ``torch.Generator`` seeded from the edit's seed (draw on CPU, then move)."""
        import torch

        return torch.Generator().manual_seed(self.seed + offset)


@dataclass
class EditRequest:
    """The input of one edit: source W+ codes ``[B, L, D]``, guidance and validated options."""

    latents: torch.Tensor
    guidance: Guidance
    options: MethodOptions


@dataclass
class EditResult:
    """The output of one edit.

    ``images``: edited images ``[B, 3, H, W]`` in [-1, 1]. ``latents``: the edited code in the
    method's ``latent_space`` (W+ ``[B, L, D]``, or a StyleSpace list). ``info``: JSON-able facts
    for the manifest (losses, steps, timings). ``artifacts``: tensors worth saving (an adaptor).
    """

    images: torch.Tensor
    latents: Any
    latent_space: LatentSpace
    info: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)


class EditingMethod(ABC):
    """Base class of editing methods (registered through ``register_methods``)."""

    method_id: ClassVar[str]
    description: ClassVar[str]
    accepts: ClassVar[frozenset[str]]
    latent_space: ClassVar[LatentSpace] = "w+"
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    default_losses: ClassVar[Mapping[str, float]] = {}
    requires: ClassVar[frozenset[str]] = frozenset()
    strength_option: ClassVar[str | None] = None  # the option --strength / --sweep set, if any

    @abstractmethod
    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        """Edit ``request.latents`` towards ``request.guidance``.

        Must not change the generator's weights, must be deterministic for a given
        ``ctx.seed`` on CPU, and should call ``ctx.report`` as work progresses.
        """

    def train(self, ctx: EditContext, request: EditRequest) -> dict[str, Any]:
        """Train or precompute this method's artefact ahead of edits (``cfs train METHOD``).

        Methods with something to train (an adaptor, a mapper, channel statistics) override it,
        store the result in ``ctx.cache_dir`` so that :meth:`edit` finds it, and return
        JSON-able facts (steps, losses, where it was saved). ``request.latents`` holds the
        training latents. The default says the method has nothing to train.
        """
        raise InputError(f"method '{self.method_id}' has nothing to train")

    @classmethod
    def trainable(cls) -> bool:
        """Whether the method overrides :meth:`train`."""
        return cls.train is not EditingMethod.train

    @classmethod
    def parse_options(cls, raw: Mapping[str, Any] | None = None) -> MethodOptions:
        """Validate raw options (strings from ``-o key=value`` are coerced); one-line errors."""
        try:
            return cls.Options.model_validate(dict(raw or {}))
        except ValidationError as exc:
            raise InputError(f"method '{cls.method_id}': {_options_error(exc, cls.Options)}") from None

    @classmethod
    def check_guidance(cls, kind: str) -> None:
        """Refuse a guidance kind this method does not accept (before anything heavy loads)."""
        if kind not in cls.accepts:
            raise InputError(f"method '{cls.method_id}' accepts only: {', '.join(sorted(cls.accepts))} (got {kind})")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """JSON-able description: id, accepted kinds, latent space, options schema, losses."""
        return {
            "id": cls.method_id,
            "description": cls.description,
            "accepts": sorted(cls.accepts),
            "latent_space": cls.latent_space,
            "options": cls.Options.model_json_schema(),
            "default_losses": dict(cls.default_losses),
            "requires": sorted(cls.requires),
            "strength_option": cls.strength_option,
            "trainable": cls.trainable(),
        }


def _options_error(exc: ValidationError, model: type[BaseModel]) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "options"
        if err["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields) or "none"
            parts.append(f"unknown option '{loc}' (options: {known})")
        else:
            parts.append(f"option '{loc}': {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)


def parse_option_pairs(pairs: list[str]) -> dict[str, str]:
    """``["steps=10", "lr=0.1"]`` → ``{"steps": "10", "lr": "0.1"}``; one-line error otherwise."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"option '{pair}' is not of the form key=value")
        out[key.strip()] = value.strip()
    return out
