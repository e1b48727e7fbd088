"""Registration hooks: invalid objects and failing hooks are reported, naming the plugin.

These plugins are in-test objects registered by hand (``PluginHost(autoload=False, plugins=…)``):
what is checked here is the validation of what a loaded plugin registers.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from cfs_core import hookimpl
from cfs_core.guidance import GuidanceKind
from cfs_core.losses import Loss
from cfs_core.methods import EditingMethod, MethodOptions
from cfs_core.metrics import Metric
from cfs_core.registration import RegistrationError
from cfs_core.sources import GeneratorSource
from cfs_registry.plugins import PluginHost


class StepsOptions(MethodOptions):
    steps: int = 3


def make_method(method_id: str = "demo", drop: tuple[str, ...] = (), **attrs: Any) -> type:
    """An ``EditingMethod`` subclass, valid unless ``attrs`` / ``drop`` break it."""
    body: dict[str, Any] = {
        "method_id": method_id, "description": "a test method", "accepts": frozenset({"text"}),
        "latent_space": "w+", "Options": StepsOptions, "edit": lambda self, ctx, request: None,
    }
    body.update(attrs)
    for name in drop:
        body.pop(name)
    return type(f"Method_{method_id.replace('-', '_')}", (EditingMethod,), body)


class MethodPlugin:
    """Registers each given object through ``register_methods``."""

    def __init__(self, *objs: object, fail_with: Exception | None = None) -> None:
        self.objs, self.fail_with = objs, fail_with

    @hookimpl
    def register_methods(self, register: Any) -> None:
        for obj in self.objs:
            register(obj)
        if self.fail_with is not None:
            raise self.fail_with


class NotAMethod:
    method_id = "not-a-method"
    description = "looks like a method"


class LaxOptions(BaseModel):  # extra keys silently ignored: refused
    steps: int = 3


INVALID_METHODS: dict[str, tuple[object, str]] = {
    "not a subclass": (NotAMethod, "is not a subclass of cfs_core.methods.EditingMethod"),
    "an instance": (make_method("inst")(), "is not a subclass of cfs_core.methods.EditingMethod"),
    "bad id": (make_method("My Method"), "method_id must be a lowercase id like 'my-method' (got 'My Method')"),
    "missing id": (make_method(drop=("method_id",)), "method_id must be a lowercase id"),
    "empty description": (make_method(description="   "), "description must be a non-empty string"),
    "empty accepts": (make_method(accepts=frozenset()), "accepts must be a non-empty frozenset"),
    "accepts not frozen": (make_method(accepts={"text"}), "accepts must be a non-empty frozenset"),
    "lax options": (make_method(Options=LaxOptions), "Options must reject unknown keys"),
    "options not a model": (make_method(Options=dict), "Options must be a pydantic model"),
    "edit not implemented": (make_method(drop=("edit",)), "does not implement edit"),
    "bad latent space": (make_method(latent_space="z"), "latent_space must be 'w', 'w+' or 's'"),
    "bad default losses": (make_method(default_losses={"latent-l2": "1"}), "default_losses must map"),
    "bad requires": (make_method(requires=["clip"]), "requires must be a frozenset"),
}


@pytest.mark.parametrize("case", list(INVALID_METHODS))
def test_invalid_method_is_reported_and_other_plugins_survive(case: str) -> None:
    obj, problem = INVALID_METHODS[case]
    warnings: list[str] = []
    host = PluginHost(autoload=False, warn=warnings.append, plugins=[
        ("before", MethodPlugin(make_method("before-method"))),
        ("faulty", MethodPlugin(make_method("faulty-valid"), obj)),
        ("after", MethodPlugin(make_method("after-method"))),
    ])
    assert host.methods.ids() == ["before-method", "after-method"]  # faulty's valid one is dropped too
    assert len(warnings) == 1
    assert "plugin 'faulty' registered an invalid method" in warnings[0]
    assert problem in warnings[0]
    assert "\n" not in warnings[0]
    assert [f.name for f in host.failures] == ["faulty"]
    assert host.infos["faulty"].error is not None and problem in host.infos["faulty"].error
    assert host.infos["after"].registered == {"method": ["after-method"]}
    assert host.infos["faulty"].registered == {}


@pytest.mark.parametrize("case", ["bad id", "edit not implemented", "lax options"])
def test_invalid_method_is_fatal_when_strict(case: str) -> None:
    obj, problem = INVALID_METHODS[case]
    host = PluginHost(autoload=False, strict=True, plugins=[("faulty", MethodPlugin(obj))])
    with pytest.raises(RegistrationError, match="plugin 'faulty'") as info:
        host.methods  # noqa: B018
    assert problem in str(info.value)


def test_a_valid_method_registers() -> None:
    cls = make_method("fine-method", latent_space="s", default_losses={"latent-l2": 0.5},
                      requires=frozenset({"clip"}))
    host = PluginHost(autoload=False, plugins=[("fine", MethodPlugin(cls))])
    assert host.methods.get("fine-method") is cls
    assert host.failures == []


class OtherTablesPlugin:
    """Registers one object per table; ``broken`` names the table whose object is invalid."""

    def __init__(self, broken: str) -> None:
        self.broken = broken

    def _kind(self) -> type:
        modality = "smell" if self.broken == "guidance kind" else "text"
        return type("Kind", (GuidanceKind,), {"kind_id": "odd_kind", "description": "a kind",
                                              "modality": modality, "load": lambda self, source: None})

    def _loss(self) -> type:
        requires = {"clip"} if self.broken == "loss" else frozenset({"clip"})
        return type("OddLoss", (Loss,), {"loss_id": "odd-loss", "description": "a loss", "requires": requires,
                                         "__call__": lambda self, inputs: None})

    def _metric(self) -> type:
        body: dict[str, Any] = {"metric_id": "odd-metric", "description": "a metric",
                                "compute": lambda self, sample: []}
        if self.broken != "metric":
            body["higher_is_better"] = True
        return type("OddMetric", (Metric,), body)

    def _source(self) -> type:
        body: dict[str, Any] = {"source_id": "odd-source", "description": "a source"}
        if self.broken != "generator source":
            body.update(can_load=lambda self, path: False, load=lambda self, path, device: None)
        return type("OddSource", (GeneratorSource,), body)

    @hookimpl
    def register_guidance_kinds(self, register: Any) -> None:
        register(self._kind())

    @hookimpl
    def register_losses(self, register: Any) -> None:
        register(self._loss())

    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register(self._metric())

    @hookimpl
    def register_generators(self, register: Any) -> None:
        register(self._source())


OTHER_TABLES = {
    "guidance kind": ("register_guidance_kinds", "modality must be 'text' or 'image'"),
    "loss": ("register_losses", "requires must be a frozenset"),
    "metric": ("register_metrics", "higher_is_better must be True or False"),
    "generator source": ("register_generators", "does not implement"),
}


@pytest.mark.parametrize("kind", list(OTHER_TABLES))
def test_invalid_objects_of_other_tables(kind: str) -> None:
    hook, problem = OTHER_TABLES[kind]
    warnings: list[str] = []
    host = PluginHost(autoload=False, warn=warnings.append, plugins=[("odd", OtherTablesPlugin(kind))])
    host.load_all_tables()
    assert len(warnings) == 1
    assert f"plugin 'odd' registered an invalid {kind}" in warnings[0] and problem in warnings[0]
    assert len(host.table(hook)) == 0
    # the plugin's other hooks are unaffected
    others = [h for h, _ in OTHER_TABLES.values() if h != hook]
    assert all(len(host.table(h)) == 1 for h in others)


# ----------------------------------------------------------------------------- failing hooks


class HalfwayPlugin:
    """Registers a method, then fails; its loss hook works."""

    @hookimpl
    def register_methods(self, register: Any) -> None:
        register(make_method("halfway-method"))
        raise RuntimeError("exploded halfway")

    @hookimpl
    def register_losses(self, register: Any) -> None:
        register(type("HalfLoss", (Loss,), {"loss_id": "half-loss", "description": "a loss",
                                            "__call__": lambda self, inputs: None}))


def test_raising_registration_hook_drops_its_partial_registrations() -> None:
    warnings: list[str] = []
    host = PluginHost(autoload=False, warn=warnings.append, plugins=[
        ("first", MethodPlugin(make_method("first-method"))),
        ("halfway", HalfwayPlugin()),
        ("last", MethodPlugin(make_method("last-method"))),
    ])
    assert host.methods.ids() == ["first-method", "last-method"]
    assert warnings == ["plugin 'halfway' (HalfwayPlugin) was not loaded: "
                        "plugin 'halfway' failed in register_methods: RuntimeError: exploded halfway"]
    assert host.losses.ids() == ["half-loss"]
    assert host.infos["halfway"].registered == {"loss": ["half-loss"]}


def test_raising_registration_hook_is_fatal_when_strict() -> None:
    host = PluginHost(autoload=False, strict=True, plugins=[("halfway", HalfwayPlugin())])
    with pytest.raises(RegistrationError, match="plugin 'halfway' failed in register_methods: RuntimeError"):
        host.methods  # noqa: B018


def test_duplicate_id_within_one_plugin_is_refused() -> None:
    warnings: list[str] = []
    host = PluginHost(autoload=False, warn=warnings.append,
                      plugins=[("twice", MethodPlugin(make_method("same"), make_method("same")))])
    assert host.methods.ids() == []
    assert "registered by both plugin 'twice' and plugin 'twice'" in warnings[0]


def test_replace_true_between_in_process_plugins() -> None:
    first, second = make_method("same"), make_method("same")

    class Replacing:
        @hookimpl
        def register_methods(self, register: Any) -> None:
            register(second, replace=True)

    host = PluginHost(autoload=False, plugins=[("first", MethodPlugin(first)), ("second", Replacing())])
    assert host.methods.get("same") is second and host.methods.plugin_of("same") == "second"


def test_registered_listing_is_not_duplicated_when_tables_are_rebuilt() -> None:
    host = PluginHost(autoload=False, plugins=[("one", MethodPlugin(make_method("one-method")))])
    assert host.methods.ids() == ["one-method"]
    host.register(MethodPlugin(make_method("two-method")), "two")  # a late plugin rebuilds the tables
    assert host.methods.ids() == ["one-method", "two-method"]
    host.load_all_tables()
    assert host.infos["one"].registered == {"method": ["one-method"]}
    assert host.infos["two"].registered == {"method": ["two-method"]}


def test_registering_the_same_plugin_name_twice_is_reported() -> None:
    warnings: list[str] = []
    host = PluginHost(autoload=False, warn=warnings.append, plugins=[
        ("dup", MethodPlugin(make_method("one-method"))), ("dup", MethodPlugin(make_method("two-method"))),
    ])
    assert host.methods.ids() == ["one-method"]
    assert len(warnings) == 1 and "plugin 'dup'" in warnings[0] and "\n" not in warnings[0]


def test_collect_without_error_handler_raises_naming_the_plugin() -> None:
    from cfs_core.registration import collect

    host = PluginHost(autoload=False, plugins=[("halfway", HalfwayPlugin())])
    with pytest.raises(RegistrationError, match="plugin 'halfway' failed in register_methods"):
        collect(host.pm, "register_methods")


def test_unknown_id_lists_the_known_ones() -> None:
    from cfs_core.errors import InputError

    host = PluginHost(autoload=False, plugins=[("p", MethodPlugin(make_method("b-method"), make_method("a-method")))])
    with pytest.raises(InputError, match=r"^unknown method 'c-method' \(known: b-method, a-method\)$"):
        host.methods.get("c-method")
    with pytest.raises(InputError, match=r"unknown metric 'x' \(known: none\)"):
        host.metrics.get("x")
