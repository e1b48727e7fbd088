"""Registration tables: what plugins registered, validated, with who registered it.

:func:`collect` calls one registration hook of a pluggy ``PluginManager`` implementation by
implementation, so every entry records the plugin that registered it and every error names it.
Validation rules per table live in :data:`TABLES`; the base classes they check against are in
:mod:`cfs_core.methods`, :mod:`cfs_core.guidance`, :mod:`cfs_core.losses`,
:mod:`cfs_core.metrics` and :mod:`cfs_core.sources`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

from cfs_core.errors import CfsError, InputError

T = TypeVar("T")
ID_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")


class RegistrationError(CfsError):
    """A plugin registered something invalid, or an id another plugin already owns."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered object and the plugin it came from."""

    id: str
    obj: T
    plugin: str


@dataclass(frozen=True)
class TableSpec:
    """How one registration hook's objects are identified and validated."""

    hook: str  # e.g. "register_methods"
    kind: str  # e.g. "method" (for messages)
    id_attr: str  # e.g. "method_id"
    base: Callable[[], type]  # lazily imported base class
    validate: Callable[[type], list[str]] = field(default=lambda cls: [])


@dataclass
class Table(Generic[T]):
    """Registered objects of one kind, by id, in registration order."""

    spec: TableSpec
    entries: dict[str, Entry[T]] = field(default_factory=dict)

    def add(self, obj: T, plugin: str, replace: bool = False) -> None:
        problems = _check(self.spec, obj)
        if problems:
            raise RegistrationError(f"plugin '{plugin}' registered an invalid {self.spec.kind}: " + "; ".join(problems))
        obj_id = getattr(obj, self.spec.id_attr)
        previous = self.entries.get(obj_id)
        if previous is not None and not replace:
            raise RegistrationError(
                f"{self.spec.kind} '{obj_id}' is registered by both plugin '{previous.plugin}' and plugin "
                f"'{plugin}' (pass replace=True to register() to override it on purpose)"
            )
        self.entries[obj_id] = Entry(obj_id, obj, plugin)

    def get(self, obj_id: str) -> T:
        """The object registered under ``obj_id``; the error lists the known ids."""
        try:
            return self.entries[obj_id].obj
        except KeyError:
            known = ", ".join(self.entries) or "none"
            raise InputError(f"unknown {self.spec.kind} '{obj_id}' (known: {known})") from None

    def plugin_of(self, obj_id: str) -> str:
        return self.entries[obj_id].plugin

    def ids(self) -> list[str]:
        return list(self.entries)

    def __contains__(self, obj_id: object) -> bool:
        return obj_id in self.entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)


def _check(spec: TableSpec, obj: Any) -> list[str]:
    base = spec.base()
    if not (isinstance(obj, type) and issubclass(obj, base)):
        return [f"{obj!r} is not a subclass of {base.__module__}.{base.__qualname__}"]
    obj_id = getattr(obj, spec.id_attr, None)
    if not isinstance(obj_id, str) or not ID_PATTERN.match(obj_id):
        return [f"{obj.__qualname__}.{spec.id_attr} must be a lowercase id like 'my-{spec.kind}' (got {obj_id!r})"]
    problems = []
    if not isinstance(getattr(obj, "description", None), str) or not obj.description.strip():
        problems.append(f"{obj.__qualname__}.description must be a non-empty string")
    abstract = sorted(getattr(obj, "__abstractmethods__", ()))
    if abstract:
        problems.append(f"{obj.__qualname__} does not implement {', '.join(abstract)}")
    return problems + [f"{obj.__qualname__}: {p}" for p in spec.validate(obj)]


def _requires_problems(cls: type) -> list[str]:
    requires = getattr(cls, "requires", frozenset())
    if not isinstance(requires, frozenset) or not all(isinstance(r, str) for r in requires):
        return ["requires must be a frozenset of resource names"]
    return []


def _validate_method(cls: type) -> list[str]:
    from pydantic import BaseModel

    problems = _requires_problems(cls)
    accepts = getattr(cls, "accepts", None)
    if not isinstance(accepts, frozenset) or not accepts or not all(isinstance(a, str) for a in accepts):
        problems.append("accepts must be a non-empty frozenset of guidance kind ids")
    if getattr(cls, "latent_space", None) not in ("w", "w+", "s"):
        problems.append("latent_space must be 'w', 'w+' or 's'")
    options = getattr(cls, "Options", None)
    if not (isinstance(options, type) and issubclass(options, BaseModel)):
        problems.append("Options must be a pydantic model (subclass cfs_core.MethodOptions)")
    elif options.model_config.get("extra") != "forbid":
        problems.append("Options must reject unknown keys (model_config extra='forbid')")
    losses = getattr(cls, "default_losses", {})
    if not all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in dict(losses).items()):
        problems.append("default_losses must map loss ids to numbers")
    return problems


def _validate_kind(cls: type) -> list[str]:
    if getattr(cls, "modality", None) not in ("text", "image"):
        return ["modality must be 'text' or 'image'"]
    return []


def _validate_metric(cls: type) -> list[str]:
    problems = _requires_problems(cls)
    if not isinstance(getattr(cls, "higher_is_better", None), bool):
        problems.append("higher_is_better must be True or False")
    return problems


def _base(module: str, name: str) -> Callable[[], type]:
    def load() -> type:
        import importlib

        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]

    return load


TABLES: dict[str, TableSpec] = {
    spec.hook: spec
    for spec in (
        TableSpec("register_guidance_kinds", "guidance kind", "kind_id", _base("cfs_core.guidance", "GuidanceKind"), _validate_kind),
        TableSpec("register_methods", "method", "method_id", _base("cfs_core.methods", "EditingMethod"), _validate_method),
        TableSpec("register_losses", "loss", "loss_id", _base("cfs_core.losses", "Loss"), _requires_problems),
        TableSpec("register_generators", "generator source", "source_id", _base("cfs_core.sources", "GeneratorSource")),
        TableSpec("register_metrics", "metric", "metric_id", _base("cfs_core.metrics", "Metric"), _validate_metric),
    )
}


def collect(
    pm: pluggy.PluginManager, hook: str, on_error: Callable[[str, Exception], None] | None = None,
) -> Table[Any]:
    """Call registration hook ``hook`` of every plugin and return the validated table.

    Implementations run in registration order. If one raises (or registers something invalid),
    ``on_error(plugin_name, error)`` is called and that plugin's registrations from this hook are
    dropped; without ``on_error`` the error propagates (as :class:`RegistrationError`).
    """
    table: Table[Any] = Table(TABLES[hook])
    caller = getattr(pm.hook, hook)
    for impl in caller.get_hookimpls():
        plugin = impl.plugin_name
        staged: list[tuple[Any, bool]] = []

        def register(obj: Any, *, replace: bool = False, _staged: list[tuple[Any, bool]] = staged) -> None:
            _staged.append((obj, replace))

        snapshot = dict(table.entries)
        try:
            impl.function(register=register)
            for obj, replace in staged:
                table.add(obj, plugin, replace)
        except Exception as exc:  # noqa: BLE001 - a plugin's failure must not take the host down
            table.entries = snapshot
            error = exc if isinstance(exc, RegistrationError) else RegistrationError(
                f"plugin '{plugin}' failed in {hook}: {type(exc).__name__}: {exc}"
            )
            if on_error is None:
                raise error from exc
            on_error(plugin, error)
    return table
