"""The models of one run: a model set (or files per role), loaded lazily, as an ``EditContext``.

``ModelSession.open(models="ffhq-1024", files={"generator": "my.pt"}, device="cpu")`` resolves the
set without building anything; :meth:`ModelSession.generator` and the factories of
:meth:`ModelSession.resources` load a role the first time it is needed, so a method that needs
no parser never loads one, and a missing file is reported (one line, with how to get it) only
when a role that is actually needed is missing.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfs_core.errors import InputError
from cfs_registry.modelsets import LOADERS, ROLES, ResolvedRole, default_model_set, get_model_set, resolve_model_set

if TYPE_CHECKING:
    import torch

    from cfs_core.methods import EditContext, ProgressCallback
    from cfs_core.resources import Resources
    from cfs_core.stylegan2 import Generator
    from cfs_registry.plugins import PluginHost

RESOURCE_ROLES = ("clip", "identity", "parser", "encoder")


def default_artifact_dir() -> Path:
    """Where trained artefacts (adaptors, mappers, statistics) are cached: ``CFS_ARTIFACT_DIR``,
    else ``$XDG_CACHE_HOME/cfs/artifacts`` (``~/.cache/cfs/artifacts``)."""
    if os.environ.get("CFS_ARTIFACT_DIR"):
        return Path(os.environ["CFS_ARTIFACT_DIR"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cfs" / "artifacts"


def _import_loader(spec: str) -> Callable[..., Any]:
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]


@dataclass
class ModelSession:
    """Lazily loaded models of one run."""

    name: str  # the model set's name, or "files"
    device: str
    roles: dict[str, ResolvedRole | Path] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # role -> why it is not available
    artifact_dirs: tuple[Path, ...] = ()  # the set's shipped artefacts (read-only cache fallback)
    method_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # method id -> option defaults
    values: dict[str, Path] = field(default_factory=dict)  # resource name -> shipped tensor file (ValueSpec)
    _loaded: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, models: str | None = None, files: Mapping[str, str | os.PathLike[str]] | None = None,
             device: str = "cpu") -> ModelSession:
        """Resolve ``models`` (default: the demo pack) with per-role file overrides."""
        files = {role: Path(path).expanduser() for role, path in (files or {}).items() if path is not None}
        unknown = [r for r in files if r not in ROLES]
        if unknown:
            raise InputError(f"unknown role {', '.join(unknown)} (roles: {', '.join(ROLES)})")
        for role, path in files.items():
            if not path.is_file():
                raise InputError(f"--{role} {path}: no such file")
        name = models or default_model_set()
        session = cls(name, device)
        try:
            resolved = resolve_model_set(name, require=False)
            model_set = get_model_set(name)
            note = model_set.status_note if resolved.status != "available" else ""
            shipped = model_set.artifact_dir()
            session.artifact_dirs = (shipped,) if shipped is not None and shipped.is_dir() else ()
            session.method_defaults = {k: dict(v) for k, v in model_set.method_defaults.items()}
            values = {name: (spec.path(), spec.depends_on) for name, spec in model_set.values.items()}
            session.values = {name: path for name, (path, needs) in values.items()
                              if path.is_file() and not set(needs) & set(files)}
            for role, entry in resolved.roles.items():
                session.roles[role] = entry
                if entry.available:
                    continue
                if resolved.status != "available":  # a set still being built: the roles it has are usable
                    session.problems[role] = f"model set '{name}' is not yet available" + (f" ({note})" if note else "")
                else:
                    session.problems[role] = f"the {role} {entry.model} is not here ({entry.path}); {entry.hint}"
        except InputError as exc:
            if models is not None and len(files) < len(ROLES):
                raise
            session.problems = {r: str(exc) for r in ROLES}
        for role, path in files.items():
            session.roles[role] = path
            session.problems.pop(role, None)
        return session

    # ------------------------------------------------------------------ loading
    def require(self, role: str) -> None:
        """A one-line error if ``role`` cannot be loaded, saying how to get it."""
        if role in self.problems or role not in self.roles:
            why = self.problems.get(role, "no model for it")
            raise InputError(f"no {role} model: {why} (or pass --{role} FILE)")

    def load(self, role: str) -> Any:
        """The model of ``role``, loaded on first use."""
        if role not in self._loaded:
            self.require(role)
            entry = self.roles[role]
            self._loaded[role] = self._load(role, entry)
        return self._loaded[role]

    def _load(self, role: str, entry: ResolvedRole | Path) -> Any:
        if isinstance(entry, Path):
            return _load_file(role, entry, self.device)
        loader = _import_loader(entry.loader)
        if role == "clip" and entry.open_clip:
            return loader(entry.open_clip["model"], pretrained=str(entry.path), device=self.device)
        loaded = loader(entry.path, device=self.device)
        return loaded.generator if role == "generator" else loaded

    def file_digest(self, role: str) -> str:
        """``"file:<sha256>"`` of the role's model file: what cache keys record about the model,
        known without loading it (hashed once per file and modification time in a process)."""
        self.require(role)
        entry = self.roles[role]
        path = entry if isinstance(entry, Path) else entry.path
        stat = path.stat()
        return "file:" + _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)

    def generator(self) -> Generator:
        return self.load("generator")  # type: ignore[no-any-return]

    def resources(self) -> Resources:
        """Lazy factories for every resource role this session has (unavailable ones are left out)."""
        from cfs_core.resources import Resources

        res = Resources()
        for role in RESOURCE_ROLES:
            if role in self.roles and role not in self.problems:
                res.provide(role, lambda r=role: self.load(r), digest=lambda r=role: self.file_digest(r))
        for name, path in self.values.items():
            res.provide(name, lambda p=path: load_value(p, self.device))
        return res

    def context(
        self, host: PluginHost, seed: int = 0, progress: ProgressCallback | None = None,
        cache_dir: Path | None = None,
    ) -> EditContext:
        """An :class:`EditContext` over this session's models, with the host's loss table."""
        import torch

        from cfs_core.methods import EditContext

        ctx = EditContext(generator=self.generator(), device=torch.device(self.device), seed=seed,
                          resources=self.resources(), cache_dir=cache_dir or default_artifact_dir(),
                          losses=host.losses, artifact_dirs=self.artifact_dirs)
        if progress is not None:
            ctx.progress = progress
        return ctx

    def options_for(self, method_cls: Any, pairs: Mapping[str, Any]) -> Any:
        """Validated options of ``method_cls``: the set's defaults for it, overridden by ``pairs``
        (the user's ``-o key=value``). Defaults for options the method does not have are skipped
        (a third-party method may share an id with nothing the set knows)."""
        fields = getattr(method_cls.Options, "model_fields", {})
        defaults = {k: v for k, v in self.method_defaults.get(method_cls.method_id, {}).items() if k in fields}
        return method_cls.parse_options({**defaults, **dict(pairs)})

    def describe(self) -> dict[str, Any]:
        """JSON-able: which model fills each role (for manifests)."""
        out: dict[str, Any] = {"models": self.name}
        for role in ROLES:
            entry = self.roles.get(role)
            if isinstance(entry, Path):
                out[role] = {"file": str(entry)}
            elif entry is not None:
                out[role] = {"model": entry.model, "file": str(entry.path)}
        if self.values:
            out["values"] = {name: str(path) for name, path in self.values.items()}
        return out


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    from cfs_core.fileio import sha256_file

    return sha256_file(path)


def load_value(path: Path, device: str = "cpu") -> torch.Tensor:
    """The one tensor of a model set's value file (:class:`~cfs_registry.modelsets.ValueSpec`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path), device=device)
    except (OSError, SafetensorError) as exc:
        raise InputError(f"{path}: unreadable value file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if len(tensors) != 1:
        raise InputError(f"{path}: a value file holds exactly one tensor, found {len(tensors)}")
    return next(iter(tensors.values()))


def _load_file(role: str, path: Path, device: str) -> Any:
    """Load a file given directly for a role (the demo pack's and user files)."""
    if role == "generator":
        from cfs_core.stylegan2 import load_generator

        return load_generator(path, device=device).generator
    if role == "clip":
        from cfs_core.clip import ClipModel

        return ClipModel.from_file(path, device=device)
    return _import_loader(LOADERS[role])(path, device=device)


def empty_latents(generator: Generator) -> torch.Tensor:
    """A ``[0, L, D]`` W+ batch: 'no latents given' for :meth:`EditingMethod.train`."""
    import torch

    return torch.empty(0, generator.n_latent, generator.style_dim, device=generator.input.input.device)
