"""Model sets: a named combination of generator, encoder, CLIP, identity net and face parser.

This package holds the resolver (this file) next to the sets it reads: a set
(``registry/modelsets/<name>.json``, data only) names, for each of the five :data:`ROLES`,
either a model of the zoo (a card or a model the user added: ``{"model": "family.tag"}``) or a
file packaged with cfs (``{"packaged": "demo/generator.safetensors"}``, relative to the
``cfs_registry`` package). ``cfs edit --models NAME`` picks one; :func:`default_model_set` is the
demo pack. :func:`resolve_model_set` turns a set into paths + card data per role — it builds no
network: :data:`LOADERS` says which function of ``cfs_core`` loads each role.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cfs_core.errors import InputError
from cfs_registry.zoo import Zoo

ROLES = ("generator", "encoder", "clip", "identity", "parser")
Role = Literal["generator", "encoder", "clip", "identity", "parser"]

# role → "module:attribute" of the loader in cfs_core (one table; names may still change).
# A clip role whose card is an open_clip tag is loaded with ``loader(role.open_clip["model"],
# pretrained=role.path)``; a cfs-native CLIP file (the demo pack) with ``ClipModel.from_file``.
LOADERS: dict[str, str] = {
    "generator": "cfs_core.stylegan2:load_generator",
    "encoder": "cfs_core.nets.e4e:E4E.from_file",
    "identity": "cfs_core.nets.identity:IdentityNet.from_file",
    "parser": "cfs_core.nets.parsing:Parser.from_file",
    "clip": "cfs_core.clip:ClipModel.from_open_clip",
    "clip-native": "cfs_core.clip:ClipModel.from_file",
    "mapper": "cfs_core.nets.mapper:load_mapper",
}


class RoleSpec(BaseModel):
    """One role of a set: a zoo model or a file packaged with cfs (exactly one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    packaged: str | None = Field(default=None, pattern=r"^[a-z0-9_-]+(/[A-Za-z0-9_.-]+)+$")

    @model_validator(mode="after")
    def _one_of(self) -> RoleSpec:
        if (self.model is None) == (self.packaged is None):
            raise ValueError("give exactly one of 'model' and 'packaged'")
        return self


def packaged_path(relative: str) -> Path:
    """A file or folder packaged with cfs, ``"demo/generator.safetensors"`` → its path in ``cfs_registry``."""
    return Path(str(resources.files("cfs_registry").joinpath(*relative.split("/"))))


class ValueSpec(BaseModel):
    """A tensor shipped with a set for methods (e.g. ClipFaceShop's ``clip_base`` for the set's
    CLIP): a packaged ``.safetensors`` file holding one tensor, offered as the resource of the same
    name. ``depends_on`` names the roles it was computed from: replacing one of them by another
    file (``--clip my.pt``) withdraws the value, since it would no longer match."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    packaged: str = Field(pattern=r"^[a-z0-9_-]+(/[A-Za-z0-9_.-]+)+$")
    depends_on: tuple[Role, ...] = ()
    description: str = ""

    def path(self) -> Path:
        return packaged_path(self.packaged)


class ModelSet(BaseModel):
    """A named combination of models, one per role."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")  # no dot: never mistaken for a card name
    description: str
    status: Literal["available", "not-yet-available"] = "available"
    status_note: str = ""
    roles: dict[Role, RoleSpec]
    # a packaged folder of precomputed method artefacts (ArtifactCache layout), searched after the cache
    artifacts: str | None = Field(default=None, pattern=r"^[a-z0-9_-]+(/[A-Za-z0-9_.-]+)*$")
    # method id -> option defaults suited to these models (the user's -o key=value still wins)
    method_defaults: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # resource name -> a tensor shipped with the set (offered to methods like a role's model)
    values: dict[str, ValueSpec] = Field(default_factory=dict)

    def artifact_dir(self) -> Path | None:
        """The shipped artefact folder, when the set names one."""
        if self.artifacts is None:
            return None
        return packaged_path(self.artifacts)

    @model_validator(mode="after")
    def _all_roles(self) -> ModelSet:
        missing = [r for r in ROLES if r not in self.roles]
        if missing:
            raise ValueError(f"missing roles: {', '.join(missing)}")
        clash = sorted(set(self.values) & set(ROLES))
        if clash:
            raise ValueError(f"values may not be named like a role: {', '.join(clash)}")
        if self.status != "available" and not self.status_note:
            raise ValueError("a set that is not available needs a status_note saying why")
        return self


def shipped_sets_dir() -> Path:
    """The sets shipped with cfs: the JSON files next to this module."""
    return Path(__file__).parent


def default_model_set() -> str:
    """The set ``cfs edit`` uses without ``--models``: the demo pack."""
    return "demo"


def load_model_sets(folder: Path | None = None) -> dict[str, ModelSet]:
    """Every set in ``folder`` (default: the shipped ones) by name."""
    sets: dict[str, ModelSet] = {}
    for path in sorted((folder or shipped_sets_dir()).glob("*.json")):
        try:
            model_set = ModelSet.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: invalid model set: {_first_error(exc)}") from None
        if path.stem != model_set.name:
            raise InputError(f"{path}: the file must be named after the set ({model_set.name}.json)")
        sets[model_set.name] = model_set
    return sets


def _first_error(exc: Exception) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def get_model_set(name: str, folder: Path | None = None) -> ModelSet:
    sets = load_model_sets(folder)
    if name not in sets:
        raise InputError(f"unknown model set '{name}' (known: {', '.join(sets) or 'none'})")
    return sets[name]


def set_models(name: str, folder: Path | None = None) -> list[str]:
    """The zoo models a set names (packaged files left out), in role order."""
    model_set = get_model_set(name, folder)
    return [spec.model for role in ROLES if (spec := model_set.roles[role]).model is not None]  # type: ignore[index]


@dataclass(frozen=True)
class ResolvedRole:
    """One role of a resolved set: where its file is and what loads it."""

    role: str
    model: str  # a zoo name, or "packaged:<path>"
    path: Path
    available: bool
    loader: str
    card: dict[str, Any] | None = None  # the card's data (None for user models and packaged files)
    architecture: Any = None  # named config, inline config, or what `add` inferred
    open_clip: dict[str, Any] | None = None  # CLIP-SPECIFIC: {"model", "pretrained", "hf_hub"}
    hint: str = ""  # how to get the file when it is not available

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "model": self.model, "path": str(self.path), "available": self.available,
                "loader": self.loader, "architecture": self.architecture, "open_clip": self.open_clip,
                "hint": self.hint, "card": self.card}


@dataclass(frozen=True)
class ResolvedSet:
    """A model set turned into paths, one :class:`ResolvedRole` per role."""

    name: str
    status: str
    roles: dict[str, ResolvedRole] = field(default_factory=dict)

    @property
    def missing(self) -> list[ResolvedRole]:
        return [r for r in self.roles.values() if not r.available]

    def paths(self) -> dict[str, Path]:
        return {role: r.path for role, r in self.roles.items()}


def _resolve_role(zoo: Zoo, role: str, spec: RoleSpec) -> ResolvedRole:
    if spec.packaged is not None:
        path = packaged_path(spec.packaged)
        loader = LOADERS["clip-native" if role == "clip" else role]
        return ResolvedRole(role, f"packaged:{spec.packaged}", path, path.is_file(), loader,
                            hint=f"{spec.packaged} is not shipped with this version of cfs")
    assert spec.model is not None
    entry = zoo.entry(spec.model)
    path = zoo.path(spec.model)
    available = path.is_file()
    card = entry.card
    architecture: Any = (entry.user or {}).get("architecture_name") or (entry.user or {}).get("architecture")
    open_clip = None
    hint = f"run `cfs models pull {spec.model}`"
    if card is not None:
        architecture = card.architecture if isinstance(card.architecture, str) else card.architecture.model_dump()
        open_clip = card.open_clip
        if not card.http_sources():
            hint = f"see `cfs models pull {spec.model}` for where to get it"
        if open_clip is not None and not available:
            found = open_clip_cached_file(open_clip)
            path, available = (found, True) if found is not None else (path, False)
    else:
        hint = f"add it again with `cfs models add FILE --name {spec.model}`"
    loader = LOADERS[role] if role != "clip" or open_clip else LOADERS["clip-native"]
    return ResolvedRole(role, spec.model, path, available, loader, card.model_dump() if card else None,
                        architecture, open_clip, hint)


def open_clip_cached_file(open_clip: Mapping[str, Any]) -> Path | None:
    """CLIP-SPECIFIC: open_clip's own copy of a tag, if already on this machine (never downloads).

    Delegates to ``cfs_core.clip.resolve_pretrained_file`` (Hugging Face cache, then open_clip's
    URL cache); that imports torch, so it runs only when the cfs cache lacks the file.
    """
    try:
        from cfs_core.clip import resolve_pretrained_file
        from cfs_core.errors import CfsError

        try:
            return resolve_pretrained_file(str(open_clip["model"]), str(open_clip["pretrained"]))
        except CfsError:
            return None
    except ImportError:  # pragma: no cover - cfs_core.clip is part of cfs
        return None


def resolve_model_set(name: str, zoo: Zoo | None = None, require: bool = True,
                      overrides: Mapping[str, str] | None = None, folder: Path | None = None) -> ResolvedSet:
    """Resolve a set into paths per role. ``overrides`` replaces roles by zoo names
    (``{"generator": "my-gen"}``: a user's own generator with the set's other models).

    With ``require`` a set that is not available, or any missing file, is a one-line
    :class:`InputError` naming each missing role and how to get its file.
    """
    zoo = zoo or Zoo()
    model_set = get_model_set(name, folder)
    if require and model_set.status != "available":
        raise InputError(f"model set '{name}' is not yet available: {model_set.status_note}")
    specs = dict(model_set.roles)
    for role, model in (overrides or {}).items():
        if role not in ROLES:
            raise InputError(f"unknown role '{role}' (roles: {', '.join(ROLES)})")
        specs[role] = RoleSpec(model=model)  # type: ignore[index]
    resolved = ResolvedSet(name, model_set.status, {role: _resolve_role(zoo, role, spec) for role, spec in specs.items()})
    missing = resolved.missing
    if require and len(missing) == 1:
        role = missing[0]
        raise InputError(f"model set '{name}': the {role.role} {role.model} is not here ({role.path}); {role.hint}")
    if require and missing:
        listed = ", ".join(f"{r.role} {r.model}" for r in missing)
        raise InputError(f"model set '{name}' is missing {len(missing)} of {len(ROLES)} files ({listed}): run "
                         f"`cfs models pull {name}` — it downloads what it can and says where to place the rest")
    return resolved


def describe_sets(zoo: Zoo | None = None, folder: Path | None = None) -> list[dict[str, Any]]:
    """One JSON-able row per set: status, and per role the model and whether its file is here."""
    zoo = zoo or Zoo()
    rows = []
    for model_set in load_model_sets(folder).values():
        resolved = resolve_model_set(model_set.name, zoo, require=False, folder=folder)
        rows.append({
            "name": model_set.name, "description": model_set.description, "status": model_set.status,
            "status_note": model_set.status_note, "default": model_set.name == default_model_set(),
            "roles": {r.role: {"model": r.model, "available": r.available, "path": str(r.path)}
                      for r in resolved.roles.values()},
        })
    return rows


def validate_sets(zoo: Zoo, names: Sequence[str] | None = None, folder: Path | None = None) -> list[str]:
    """Problems of sets (unknown models, a model of the wrong kind); empty when all is well."""
    problems = []
    for model_set in load_model_sets(folder).values():
        if names is not None and model_set.name not in names:
            continue
        for role, spec in model_set.roles.items():
            if spec.model is None:
                continue
            try:
                entry = zoo.entry(spec.model)
            except InputError as exc:
                problems.append(f"{model_set.name}.{role}: {exc}")
                continue
            if entry.kind != role:
                problems.append(f"{model_set.name}.{role}: {spec.model} is a {entry.kind}, not a {role}")
    return problems


def packaged_models(folder: Path | None = None) -> list[dict[str, Any]]:
    """The files the sets ship inside cfs (the demo pack), one row per ``set:role``, in the shape
    of ``cfs models list`` rows; ``state`` is ``shipped`` or ``not shipped``. The licence comes
    from the file's model card (``<file stem>.json`` next to it) when there is one."""
    rows: list[dict[str, Any]] = []
    for name, model_set in load_model_sets(folder).items():
        for role in ROLES:
            spec = model_set.roles[role]  # type: ignore[index]
            if spec.packaged is None:
                continue
            path = packaged_path(spec.packaged)
            card_path = path.with_suffix(".json")
            card: dict[str, Any] = {}
            if card_path.is_file():
                try:
                    card = json.loads(card_path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    card = {}
            size = path.stat().st_size if path.is_file() else None
            rows.append({"name": f"{name}:{role}", "origin": "packaged", "kind": role, "file": path.name,
                         "bytes": size, "sha256": card.get("sha256"), "state": "shipped" if size is not None else "not shipped",
                         "path": str(path), "licence": card.get("licence", ""),
                         "commercial_use": "yes" if str(card.get("licence", "")).startswith("MIT") else "",
                         "paper": ""})
    return rows
