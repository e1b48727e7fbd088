"""``cfs methods | guidance | losses | metrics [--json]`` against hosts with in-test plugins."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

import pytest
from pydantic import Field
from typer.testing import Result

from cfs_core import hookimpl
from cfs_core.losses import Loss, LossInputs
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, MethodOptions
from cfs_core.metrics import Metric, MetricSample
from cfs_registry.plugins import PluginHost

Invoke = Callable[..., Result]


class SwirlOptions(MethodOptions):
    steps: int = Field(20, ge=1, description="optimisation steps")
    mode: Literal["soft", "hard"] = "soft"
    strength: float = 0.5


class Swirl(EditingMethod):
    method_id = "swirl"
    description = "swirls the latent towards the text"
    accepts = frozenset({"text", "sketch"})
    latent_space = "w"
    Options = SwirlOptions
    default_losses = {"latent-l2": 0.1}
    requires = frozenset({"clip"})
    strength_option = "strength"

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        raise NotImplementedError


class Blend(EditingMethod):
    method_id = "blend"
    description = "blends with an exemplar"
    accepts = frozenset({"exemplar"})
    latent_space = "s"

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        raise NotImplementedError


class Sharpness(Metric):
    metric_id = "sharpness"
    description = "mean gradient magnitude of the edited image"
    higher_is_better = True
    requires = frozenset({"parser"})

    def compute(self, sample: MetricSample) -> list[float]:
        return [0.0] * len(sample.edited_images)


class ClipDirection(Loss):
    loss_id = "clip-direction"
    description = "directional CLIP loss"
    formula = "1 - cos(dI, dT)"
    requires = frozenset({"clip"})

    def __call__(self, inputs: LossInputs) -> Any:
        raise NotImplementedError


class DemoPlugin:
    @hookimpl
    def register_methods(self, register: Any) -> None:
        register(Swirl)
        register(Blend)

    @hookimpl
    def register_metrics(self, register: Any) -> None:
        register(Sharpness)

    @hookimpl
    def register_losses(self, register: Any) -> None:
        register(ClipDirection)


class BrokenPlugin:
    @hookimpl
    def register_methods(self, register: Any) -> None:
        raise RuntimeError("cannot register today")


def demo_host(**kwargs: Any) -> PluginHost:
    return PluginHost(autoload=False, plugins=[("demo", DemoPlugin())], **kwargs)


def json_rows(result: Result) -> dict[str, dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return {row["id"]: row for row in json.loads(result.stdout)}


def test_methods_json(invoke: Invoke) -> None:
    rows = json_rows(invoke(demo_host(), "methods", "--json"))
    assert list(rows) == ["swirl", "blend"]
    swirl = rows["swirl"]
    assert swirl["accepts"] == ["sketch", "text"]
    assert swirl["latent_space"] == "w" and swirl["plugin"] == "demo"
    assert swirl["description"] == "swirls the latent towards the text"
    assert swirl["default_losses"] == {"latent-l2": 0.1} and swirl["requires"] == ["clip"]
    assert swirl["strength_option"] == "strength"
    schema = swirl["options"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert schema["properties"]["steps"] == {"default": 20, "description": "optimisation steps", "minimum": 1,
                                             "title": "Steps", "type": "integer"}
    assert schema["properties"]["mode"]["enum"] == ["soft", "hard"]
    assert schema == SwirlOptions.model_json_schema()
    assert rows["blend"]["options"]["properties"] == {} and rows["blend"]["latent_space"] == "s"


def test_methods_table_shows_the_options_defaults(invoke: Invoke) -> None:
    result = invoke(demo_host(), "methods")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "swirl" in out and "blend" in out and "demo" in out
    assert "steps=20" in out and "mode=soft" in out and "strength=0.5" in out
    assert "{" not in out  # the summary, not the raw schema


def test_methods_detail_shows_each_option(invoke: Invoke) -> None:
    result = invoke(demo_host(), "methods", "swirl")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "steps" in out and "integer = 20" in out and "optimisation steps" in out
    assert "mode" in out and "soft|hard = 'soft'" in out
    assert "strength option: strength" in out
    detail = invoke(demo_host(), "methods", "swirl", "--json")
    assert json.loads(detail.stdout)["id"] == "swirl"
    missing = invoke(demo_host(), "methods", "nope")
    assert missing.exit_code == 2 and "unknown method 'nope'" in missing.stderr


def test_guidance_json_lists_the_builtin_kinds(invoke: Invoke) -> None:
    rows = json_rows(invoke(PluginHost(), "guidance", "--json"))
    builtin = {k: rows[k] for k in ("text", "clipart", "sketch", "exemplar")}
    assert {k: r["modality"] for k, r in builtin.items()} == {
        "text": "text", "clipart": "image", "sketch": "image", "exemplar": "image"}
    assert all(r["plugin"] == "guidance" and r["description"] for r in builtin.values())


def test_guidance_table(invoke: Invoke) -> None:
    result = invoke(PluginHost(), "guidance")
    assert result.exit_code == 0
    for kind in ("text", "clipart", "sketch", "exemplar", "image"):
        assert kind in result.stdout


def test_losses_json(invoke: Invoke) -> None:
    host = PluginHost(autoload=False, plugins=[("demo", DemoPlugin())])
    import cfs_plugins.latent_losses

    host.register(cfs_plugins.latent_losses, "latent_losses")
    rows = json_rows(invoke(host, "losses", "--json"))
    assert set(rows) == {"latent-l2", "latent-l2-mean", "adaptor-l2", "clip-direction"}
    assert rows["latent-l2"] == {"id": "latent-l2", "description": rows["latent-l2"]["description"],
                                 "formula": "sum((w - w0)^2) / B", "requires": [], "plugin": "latent_losses"}
    assert rows["latent-l2-mean"]["formula"] == "mean((w - w0)^2)"
    assert rows["clip-direction"]["requires"] == ["clip"] and rows["clip-direction"]["plugin"] == "demo"


def test_losses_json_of_the_default_host(invoke: Invoke) -> None:
    rows = json_rows(invoke(PluginHost(), "losses", "--json"))
    assert {"latent-l2", "latent-l2-mean"} <= set(rows)


def test_metrics_json(invoke: Invoke) -> None:
    rows = json_rows(invoke(demo_host(), "metrics", "--json"))
    assert rows == {"sharpness": {"id": "sharpness", "description": "mean gradient magnitude of the edited image",
                                  "higher_is_better": True, "requires": ["parser"], "plugin": "demo"}}
    table = invoke(demo_host(), "metrics")
    assert table.exit_code == 0 and "sharpness" in table.stdout and "True" in table.stdout


@pytest.mark.parametrize("command", ["methods", "guidance", "losses", "metrics"])
def test_empty_listings(invoke: Invoke, command: str) -> None:
    result = invoke(PluginHost(autoload=False), command, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


@pytest.mark.parametrize("as_json", [True, False])
def test_listing_error_is_one_line_exit_2(invoke: Invoke, as_json: bool) -> None:
    host = PluginHost(autoload=False, strict=True, plugins=[("demo", DemoPlugin()), ("broken", BrokenPlugin())])
    result = invoke(host, "methods", *(["--json"] if as_json else []))
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ") and "plugin 'broken'" in lines[0] and "cannot register today" in lines[0]
    assert "Traceback" not in result.output


def test_listing_reports_a_broken_plugin_and_lists_the_rest(invoke: Invoke) -> None:
    warnings: list[str] = []
    host = PluginHost(autoload=False, warn=warnings.append,
                      plugins=[("demo", DemoPlugin()), ("broken", BrokenPlugin())])
    rows = json_rows(invoke(host, "methods", "--json"))
    assert list(rows) == ["swirl", "blend"]
    assert len(warnings) == 1 and "cannot register today" in warnings[0]


def test_unknown_listing_option_is_a_usage_error(invoke: Invoke) -> None:
    result = invoke(demo_host(), "methods", "--jsn")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
