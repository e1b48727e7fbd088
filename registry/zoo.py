"""The model zoo: cards for the pretrained files the papers used, the local cache, user models.

A **card** (``registry/cards/*.json``, data only) describes one pretrained file in timm's
``family.tag`` style: its role (``kind``), architecture, file name, size and SHA-256 where known,
where it comes from (mirrors tried in order, or pages that need a browser), its licence and terms
in plain words, and the paper it belongs to. :class:`Card` validates a card.

The **cache** is one folder (``$CFS_MODEL_DIR``, else ``$XDG_CACHE_HOME/cfs/models``, else
``~/.cache/cfs/models``) with one sub-folder per model: ``<cache>/<name>/<file>``. A small JSON
index (``<cache>/index.json``, written atomically) records the models a user added with
``cfs models add`` and the SHA-256 cfs measured when it pulled a card whose SHA-256 is unknown.

Importing this module does not import torch (pydantic and the standard library only); downloads
live in :mod:`cfs_registry.download`, model sets in :mod:`cfs_registry.modelsets`.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cfs_core.errors import InputError
from cfs_core.fileio import atomic_path, atomic_write_text, sha256_file

ENV_MODEL_DIR = "CFS_MODEL_DIR"  # the cache folder itself
ENV_CARDS_DIR = "CFS_CARDS_DIR"  # extra card folders (os.pathsep-separated), e.g. a lab's private zoo
INDEX_NAME = "index.json"
PART_SUFFIX = ".part"
KINDS = ("generator", "encoder", "clip", "identity", "parser", "mapper", "global-directions")
Kind = Literal["generator", "encoder", "clip", "identity", "parser", "mapper", "global-directions"]
CARD_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.[a-z0-9][a-z0-9_-]*$")  # family.tag
USER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")

# -- cards -----------------------------------------------------------------------------------------


class Source(BaseModel):
    """Where a card's file can be had. ``http``: cfs downloads it (mirrors are tried in order);
    ``browser``: a page a person must open (Google Drive, OneDrive, Baidu); ``open_clip``: the
    file open_clip's own pretrained tag fetches (cfs downloads it only when given ``--url``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(pattern=r"^https?://")
    kind: Literal["http", "browser", "open_clip"] = "http"
    note: str = ""


class Paper(BaseModel):
    """The paper a file belongs to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str
    authors: str
    year: int = Field(ge=1990, le=2100)
    url: str = Field(pattern=r"^https?://")


class InlineArchitecture(BaseModel):
    """An architecture given in the card: ``config`` is what the family's config class reads
    (``E4EConfig.from_dict`` for ``e4e``; for ``open_clip`` the model name and pretrained tag)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str = Field(pattern=r"^[a-z0-9_.]+$")
    config: dict[str, Any] = Field(default_factory=dict)


class Card(BaseModel):
    """One pretrained file (see the module docstring; ``docs/models.md`` lists the fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=CARD_NAME.pattern)
    kind: Kind
    description: str
    architecture: str | InlineArchitecture  # a registry/configs/stylegan2 name, or inline
    file: str
    bytes: int | None = Field(default=None, ge=1)
    sha256: str | None = Field(default=None, pattern=SHA256.pattern)
    sources: list[Source] = Field(min_length=1)
    licence: str
    terms: str
    commercial_use: Literal["no", "yes", "unclear"]
    paper: Paper
    notes: str = ""

    @field_validator("file")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if not value or "/" in value or "\\" in value or value.startswith(".") or value.endswith(PART_SUFFIX):
            raise ValueError(f"'{value}' must be a plain file name (no folders, no leading dot, no {PART_SUFFIX})")
        return value

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def open_clip(self) -> dict[str, Any] | None:
        """``{"model", "pretrained", "hf_hub"}`` for a CLIP card delegated to open_clip, else None."""
        arch = self.architecture
        return dict(arch.config) if isinstance(arch, InlineArchitecture) and arch.family == "open_clip" else None

    def http_sources(self) -> list[str]:
        return [s.url for s in self.sources if s.kind == "http"]


def shipped_cards_dir() -> Path:
    """The cards shipped with cfs (``cfs_registry/cards``)."""
    return Path(str(resources.files("cfs_registry").joinpath("cards")))


def card_dirs() -> list[Path]:
    """Shipped cards first, then every folder in ``$CFS_CARDS_DIR``."""
    extra = [Path(p).expanduser() for p in os.environ.get(ENV_CARDS_DIR, "").split(os.pathsep) if p]
    return [shipped_cards_dir(), *extra]


def read_card(path: Path) -> Card:
    """Read and validate one card file; errors are one line naming the file and the field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: not a readable JSON card ({exc})") from None
    try:
        card = Card.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InputError(f"{path}: invalid card: {where + ': ' if where else ''}{err['msg']}") from None
    if path.stem != card.name:
        raise InputError(f"{path}: the file must be named after the card ({card.name}.json)")
    return card


def load_cards(dirs: Sequence[Path] | None = None) -> dict[str, Card]:
    """All cards of ``dirs`` (default :func:`card_dirs`) by name, sorted; duplicates are an error."""
    cards: dict[str, Card] = {}
    for folder in card_dirs() if dirs is None else dirs:
        if not folder.is_dir():
            raise InputError(f"{folder}: card folder does not exist (check ${ENV_CARDS_DIR})")
        for path in sorted(folder.glob("*.json")):
            card = read_card(path)
            if card.name in cards:
                raise InputError(f"{path}: a card named '{card.name}' is already defined")
            cards[card.name] = card
    return dict(sorted(cards.items()))


# -- cache and index -------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$CFS_MODEL_DIR``, else ``$XDG_CACHE_HOME/cfs/models``, else ``~/.cache/cfs/models``."""
    if os.environ.get(ENV_MODEL_DIR):
        return Path(os.environ[ENV_MODEL_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "cfs" / "models"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class Entry:
    """A model the zoo knows: a card, or a model the user added (``user`` holds its index record)."""

    name: str
    kind: str
    file: str
    bytes: int | None  # expected size (None: unknown)
    sha256: str | None  # expected SHA-256: the card's, or the one recorded at add/first pull
    origin: Literal["card", "user"]
    card: Card | None = None
    user: dict[str, Any] | None = None
    recorded: dict[str, Any] | None = None  # what cfs measured at the first pull of a card

    @property
    def sha_is_reference(self) -> bool:
        """True when ``sha256`` comes from the card (or is the user's own file): a real check."""
        return self.origin == "user" or (self.card is not None and self.card.sha256 is not None)


@dataclass(frozen=True)
class Status:
    """A model's state in the cache (see :meth:`Zoo.status`)."""

    name: str
    state: str  # ok | recorded | unverified | present | missing | partial | mismatch | wrong-size
    path: Path
    detail: str = ""
    sha256: str | None = None
    bytes: int | None = None

    @property
    def problem(self) -> bool:
        return self.state in ("mismatch", "wrong-size", "partial", "missing")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "path": str(self.path), "detail": self.detail,
                "sha256": self.sha256, "bytes": self.bytes}


@dataclass
class Zoo:
    """Cards + cache. ``Zoo()`` uses the environment; tests pass a temporary cache and card dirs."""

    cache: Path = field(default_factory=default_cache_dir)
    cards_dirs: Sequence[Path] | None = None
    _cards: dict[str, Card] | None = field(default=None, repr=False)

    # cards and names

    @property
    def cards(self) -> dict[str, Card]:
        if self._cards is None:
            self._cards = load_cards(self.cards_dirs)
        return self._cards

    def names(self) -> list[str]:
        return sorted({*self.cards, *self.user_models()})

    def entry(self, name: str) -> Entry:
        """The card or user model called ``name``; an unknown name is a one-line error."""
        index = self.read_index()
        if name in self.cards:
            card = self.cards[name]
            recorded = index["pulled"].get(name)
            sha = card.sha256 or (recorded or {}).get("sha256")
            size = card.bytes or (recorded or {}).get("bytes")
            return Entry(name, card.kind, card.file, size, sha, "card", card=card, recorded=recorded)
        user = index["user"].get(name)
        if user is not None:
            return Entry(name, user["kind"], user["file"], user["bytes"], user["sha256"], "user", user=user)
        close = difflib.get_close_matches(name, self.names(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see `cfs models list`)"
        raise InputError(f"unknown model '{name}'{hint}")

    # paths

    def model_dir(self, name: str) -> Path:
        return self.cache / name

    def path(self, name: str) -> Path:
        """Where the model's file lives (or must be placed) in the cache."""
        return self.model_dir(name) / self.entry(name).file

    @staticmethod
    def part_path(dest: Path) -> Path:
        return dest.with_name(dest.name + PART_SUFFIX)

    # index

    @property
    def index_path(self) -> Path:
        return self.cache / INDEX_NAME

    def read_index(self) -> dict[str, Any]:
        """The cache index ``{"version": 1, "user": {...}, "pulled": {...}}`` (empty if absent)."""
        empty: dict[str, Any] = {"version": 1, "user": {}, "pulled": {}}
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return empty
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.index_path}: unreadable model index ({exc}); fix or delete it") from None
        if not isinstance(data, dict) or data.get("version") != 1:
            raise InputError(f"{self.index_path}: not a cfs model index (version 1); fix or delete it")
        return {**empty, **data}

    def write_index(self, index: Mapping[str, Any]) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.index_path, json.dumps(index, indent=1, sort_keys=True) + "\n")

    def user_models(self) -> dict[str, dict[str, Any]]:
        return dict(self.read_index()["user"])

    def record_pull(self, name: str, sha256: str, size: int, url: str, verified: bool) -> None:
        """Remember what a pull of a card measured (the reference for later ``verify`` runs)."""
        index = self.read_index()
        index["pulled"][name] = {"sha256": sha256, "bytes": size, "url": url, "verified": verified, "at": _now()}
        self.write_index(index)

    # state

    def status(self, name: str, rehash: bool = False) -> Status:
        """State of one model. Without ``rehash`` only existence and size are checked (fast)."""
        entry = self.entry(name)
        path = self.model_dir(name) / entry.file
        if not path.exists():
            if entry.user is not None and entry.user.get("linked") and path.is_symlink():
                return Status(name, "missing", path, f"the linked file {os.readlink(path)} is gone")
            part = self.part_path(path)
            if part.exists():
                return Status(name, "partial", path, f"{part.name}: {part.stat().st_size:,} bytes so far; pull again to resume")
            return Status(name, "missing", path)
        size = path.stat().st_size
        if entry.bytes is not None and size != entry.bytes:
            return Status(name, "wrong-size", path, f"{size:,} bytes, expected {entry.bytes:,}", bytes=size)
        if not rehash:
            return Status(name, "present", path, bytes=size)
        digest = sha256_file(path)
        if entry.sha256 is None:
            self.record_pull(name, digest, size, url=f"file://{path}", verified=False)
            return Status(name, "unverified", path, "no reference SHA-256 to check against; recorded this one", digest, size)
        if digest != entry.sha256:
            return Status(name, "mismatch", path, f"sha256 {digest}, expected {entry.sha256}", digest, size)
        if entry.sha_is_reference:
            return Status(name, "ok", path, "", digest, size)
        return Status(name, "recorded", path, "matches the SHA-256 recorded at the first pull (the card has none)", digest, size)

    def verify(self, names: Iterable[str] | None = None) -> list[Status]:
        """Re-hash models. With no names: every model with something in the cache."""
        if names is None:
            names = [n for n in self.names() if self.status(n).state != "missing" or n in self.user_models()]
        return [self.status(n, rehash=True) for n in names]

    # add / remove

    def add(self, file: Path, name: str, kind: str = "generator", link: bool = False, force: bool = False) -> dict[str, Any]:
        """Register a user's own file under ``name`` (copied, or symlinked with ``link``).

        For a ``generator`` the architecture is inferred with ``describe_checkpoint`` (torch is
        imported here) and matched against the named configs of ``registry/configs/stylegan2``.
        """
        if kind not in KINDS:
            raise InputError(f"--kind must be one of {', '.join(KINDS)}, not '{kind}'")
        if not USER_NAME.match(name) or name == INDEX_NAME or len(name) > 64:
            raise InputError(f"'{name}': a model name is lower-case letters, digits, '-' and '_', with at most one '.'")
        if name in self.cards:
            raise InputError(f"'{name}' is a card; to use a copy you already have, place it at {self.path(name)}")
        if name in self.user_models() and not force:
            raise InputError(f"a model named '{name}' already exists (use --force to replace it)")
        file = Path(file).expanduser()
        if not file.is_file():
            raise InputError(f"{file}: no such file")
        record: dict[str, Any] = {"kind": kind, "file": file.name, "source": str(file.resolve()), "linked": link,
                                  "added": _now(), "architecture": None, "architecture_name": None}
        if kind == "generator":
            record.update(_infer_generator(file))
        else:
            record.update(bytes=file.stat().st_size, sha256=sha256_file(file))
        if name in self.user_models():
            self.remove(name, missing_ok=True)
        dest = self.model_dir(name) / file.name
        with atomic_path(dest) as tmp:
            if link:
                tmp.unlink()
                os.symlink(file.resolve(), tmp)
            else:
                shutil.copy(file, tmp)  # keeps the source's permission bits (mkstemp makes 0600)
        index = self.read_index()
        index["user"][name] = record
        self.write_index(index)
        return {"name": name, "path": str(dest), **record}

    def remove(self, name: str, missing_ok: bool = False) -> list[Path]:
        """Delete a model's cached file (and any partial download) and its index entries.

        Only paths inside the cache are touched; a linked model loses its link, never the target.
        """
        entry = self.entry(name)
        folder = self.model_dir(name)
        root = self.cache.resolve()
        if folder.resolve().parent != root:
            raise InputError(f"{folder}: outside the cache {root}; refusing to touch it")
        removed = []
        dest = folder / entry.file
        for path in (dest, self.part_path(dest), Path(str(self.part_path(dest)) + ".json")):
            if path.is_symlink() or path.is_file():
                path.unlink()
                removed.append(path)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        index = self.read_index()
        had_record = index["user"].pop(name, None) is not None
        had_record = index["pulled"].pop(name, None) is not None or had_record
        if had_record:
            self.write_index(index)
        if not removed and not had_record and not missing_ok:
            raise InputError(f"'{name}': nothing in the cache to remove ({dest} does not exist)")
        return removed


def _infer_generator(file: Path) -> dict[str, Any]:
    """Size, SHA-256, layout and architecture of a StyleGAN2 file (``describe_checkpoint``)."""
    from cfs_core.errors import CfsError
    from cfs_core.stylegan2 import GeneratorConfig, describe_checkpoint

    try:
        facts = describe_checkpoint(file)
    except CfsError as exc:
        raise InputError(f"{file}: not a StyleGAN2 file cfs can read ({exc}); pass --kind for other networks") from None
    which = facts.get("default_generator")
    if not which:
        raise InputError(f"{file}: holds no generator (layout {facts['layout']}); pass --kind for other networks")
    arch = facts["generators"][which]["architecture"]
    from cfs_registry.architectures import list_architectures

    named = None
    for candidate in list_architectures("stylegan2").values():
        if GeneratorConfig.from_dict(candidate.config).to_dict() == arch:
            named = candidate.name
            break
    return {"bytes": facts["bytes"], "sha256": facts["sha256"], "layout": facts["layout"], "architecture": arch,
            "architecture_name": named, "resolution": facts["generators"][which]["resolution"]}


def human_size(n: int | None) -> str:
    """``381.5 MB`` style sizes (decimal units, like the download pages)."""
    if n is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover
