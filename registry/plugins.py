"""Plugin discovery and the tables plugins fill (``PluginHost``).

Every plugin — first-party included — is found through the ``cfs`` entry-point group. Loading is
defensive: a plugin that fails to import, uses an unknown hook name, or fails while registering
is reported in one line and the rest keeps working. Environment switches:

* ``CFS_STRICT_PLUGINS=1``: such failures are fatal (for plugin developers);
* ``CFS_DISABLE_PLUGIN_AUTOLOAD=1``: entry points of other distributions are not loaded (for
  tests); cfs' own plugins still are, and so are those named in ``CFS_LOAD_PLUGINS``;
* ``CFS_LOAD_PLUGINS=a,b``: load only these entry points of other distributions.

Registration hooks run lazily, the first time their table is asked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from cfs_core import hookspecs
from cfs_core.registration import TABLES, RegistrationError, Table, collect

if TYPE_CHECKING:
    import typer

GROUP = "cfs"
OWN_DISTRIBUTION = "cfs-faceshop"
ENV_STRICT = "CFS_STRICT_PLUGINS"
ENV_NO_AUTOLOAD = "CFS_DISABLE_PLUGIN_AUTOLOAD"
ENV_ONLY = "CFS_LOAD_PLUGINS"


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass
class PluginInfo:
    """What ``cfs plugins`` shows about one plugin."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)  # table kind -> ids
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "distribution": self.distribution,
                "version": self.version, "hooks": self.hooks, "registered": self.registered, "error": self.error}


class PluginHost:
    """A pluggy manager with cfs' hook specs, its loaded plugins and their tables."""

    def __init__(
        self, *, autoload: bool = True, strict: bool | None = None,
        warn: Callable[[str], None] | None = None, plugins: Iterable[tuple[str, object]] = (),
    ) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.strict = _flag(ENV_STRICT) if strict is None else strict
        self.warn = warn or (lambda message: None)
        self.infos: dict[str, PluginInfo] = {}
        self.failures: list[PluginInfo] = []
        self._tables: dict[str, Table[Any]] = {}
        if autoload:
            self.load_entry_points()
        for name, plugin in plugins:
            self.register(plugin, name)

    # ------------------------------------------------------------------ loading
    def _fail(self, info: PluginInfo, error: BaseException) -> None:
        text = str(error) if isinstance(error, RegistrationError) else f"{type(error).__name__}: {error}"
        info.error = " ".join(text.split())  # one line, whatever the exception's message looks like
        self.failures.append(info)
        message = f"plugin '{info.name}' ({info.module}) was not loaded: {info.error}"
        if self.strict:
            raise RegistrationError(message) from error
        self.warn(message)

    def load_entry_points(self) -> None:
        """Load the ``cfs`` entry points the environment switches allow."""
        only = {n.strip() for n in os.environ.get(ENV_ONLY, "").split(",") if n.strip()}
        no_autoload = _flag(ENV_NO_AUTOLOAD)
        found = sorted(metadata.entry_points(group=GROUP), key=lambda e: (not _is_own(e), e.name))
        for name in sorted(only - {ep.name for ep in found}):
            self.warn(f"{ENV_ONLY} names '{name}', but no installed plugin has that entry point")
        # cfs' own plugins first, so that a third-party entry point cannot take one of their names
        for ep in found:
            dist = ep.dist.name if ep.dist else None
            own = _is_own(ep)
            if not own and ((only and ep.name not in only) or (no_autoload and ep.name not in only)):
                continue
            info = PluginInfo(ep.name, ep.value, dist, ep.dist.version if ep.dist else None)
            if ep.name in self.infos or self.pm.has_plugin(ep.name):
                self._fail(info, RegistrationError(f"another plugin is already named '{ep.name}'"))
                continue
            try:
                plugin = ep.load()
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - report and keep going
                self._fail(info, exc)
                continue
            self._register(plugin, info)

    def register(self, plugin: object, name: str, distribution: str | None = None) -> None:
        """Register a plugin object or module by hand (tests, embedding applications)."""
        module = getattr(plugin, "__name__", type(plugin).__name__)
        self._register(plugin, PluginInfo(name, module, distribution))

    def _register(self, plugin: object, info: PluginInfo) -> None:
        try:
            self.pm.register(plugin, name=info.name)
        except (ValueError, pluggy.PluginValidationError) as exc:  # name taken, or a hook's arguments
            if self.pm.get_plugin(info.name) is plugin:  # older pluggy may leave it half-registered
                self.pm.unregister(name=info.name)
            self._fail(info, exc)
            return
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=info.name)
            self._fail(info, RegistrationError(f"unknown hook name ({exc}); known hooks: {', '.join(hookspecs.hook_names())}"))
            return
        info.hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
        self.infos[info.name] = info
        self._tables.clear()

    # ------------------------------------------------------------------ tables
    def table(self, hook: str) -> Table[Any]:
        """The validated table of registration hook ``hook`` (built on first use)."""
        if hook not in self._tables:
            table = collect(self.pm, hook, on_error=self._on_register_error)
            self._tables[hook] = table
            for info in self.infos.values():  # a rebuilt table (after a late plugin) starts afresh
                info.registered.pop(table.spec.kind, None)
            for entry in table:
                if entry.plugin in self.infos:
                    self.infos[entry.plugin].registered.setdefault(table.spec.kind, []).append(entry.id)
        return self._tables[hook]

    def _on_register_error(self, plugin: str, error: Exception) -> None:
        info = self.infos.get(plugin) or PluginInfo(plugin, plugin)
        self._fail(info, error)

    @property
    def methods(self) -> Table[Any]:
        return self.table("register_methods")

    @property
    def guidance_kinds(self) -> Table[Any]:
        return self.table("register_guidance_kinds")

    @property
    def losses(self) -> Table[Any]:
        return self.table("register_losses")

    @property
    def metrics(self) -> Table[Any]:
        return self.table("register_metrics")

    @property
    def sources(self) -> Table[Any]:
        return self.table("register_generators")

    def load_all_tables(self) -> None:
        """Run every registration hook (for listings that show what each plugin registered)."""
        for hook in TABLES:
            self.table(hook)

    def add_commands(self, app: typer.Typer) -> None:
        """Let plugins add CLI commands; a failing plugin is reported, not fatal (unless strict)."""
        for impl in self.pm.hook.register_commands.get_hookimpls():
            commands, groups = list(app.registered_commands), list(app.registered_groups)
            try:
                impl.function(app=app)
                clash = _duplicates(_command_names(app))
                if clash:
                    raise RegistrationError(f"command name(s) {', '.join(clash)} already taken")
            except Exception as exc:  # noqa: BLE001 - report and keep the CLI working
                app.registered_commands[:] = commands
                app.registered_groups[:] = groups
                info = self.infos.get(impl.plugin_name) or PluginInfo(impl.plugin_name, impl.plugin_name)
                self._fail(info, exc)


def _is_own(ep: metadata.EntryPoint) -> bool:
    """Whether an entry point belongs to cfs' own distribution."""
    dist = ep.dist.name if ep.dist else None
    return dist is not None and dist.replace("_", "-").lower() == OWN_DISTRIBUTION


def _command_names(app: typer.Typer) -> list[str]:
    """The names ``app``'s commands and groups get on the command line, resolved as typer does."""
    names = [c.name or (c.callback.__name__.lower().replace("_", "-") if c.callback else "")
             for c in app.registered_commands]
    for group in app.registered_groups:
        name = _group_name(group)
        if name:
            names.append(name)
        elif group.typer_instance is not None:  # typer merges a nameless group's commands into app
            names += _command_names(group.typer_instance)
    return names


def _group_name(group: Any) -> str | None:
    """A sub-app's name: ``add_typer(name=…)``, else its ``@callback(name=…)``, else ``Typer(name=…)``.

    Unset values are typer ``DefaultPlaceholder`` objects, not strings.
    """
    instance = group.typer_instance
    candidates = (group.name, getattr(getattr(instance, "registered_callback", None), "name", None),
                  getattr(getattr(instance, "info", None), "name", None))
    return next((name for name in candidates if isinstance(name, str) and name), None)


def _duplicates(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})
