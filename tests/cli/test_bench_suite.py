"""CFS-Bench (``cfs bench suite``): the cases, the scores, the outputs, the errors.

End to end on the tiny generator and encoder with fake CLIP and identity nets (role files whose
loading is redirected to ``cfs_core.fakes``, as in ``test_compare.py``), a tiny random attribute
evaluator and fake methods whose outputs are known: ``still`` returns the source unchanged, so
its scores must equal the ``(no edit)`` reference exactly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from typer.testing import CliRunner, Result

from cfs_cli.main import make_app
from cfs_core import hookimpl
from cfs_core.errors import InputError
from cfs_core.fakes import FakeClip, FakeIdentity
from cfs_core.methods import EditContext, EditingMethod, EditRequest, EditResult, MethodOptions
from cfs_core.nets.evaluator import Evaluator, EvaluatorConfig
from cfs_core.training.data import COLOR_ATTRIBUTES, face_seed
from cfs_core.world import FaceParams, sample_params
from cfs_registry import bench_suite as bs
from cfs_registry import session as session_module
from cfs_registry.plugins import PluginHost
from cli_helpers import use_fake_roles  # type: ignore[import-not-found]

FIX = Path(__file__).parent.parent / "fixtures"
TINY_G = FIX / "stylegan2" / "ros_converted_tiny.pt"
KINDS = ("clipart", "sketch", "text", "exemplar")


# ------------------------------------------------------------------------------------ fakes
class _ShiftOptions(MethodOptions):
    strength: float = 1.0
    steps: int = 300  # capped by the suite
    fail: str = "no"  # "input": a one-line refusal (recorded); "crash": a bug (the run stops)


class Shift(EditingMethod):
    """Adds strength × 0.5 to every W+ entry; accepts text and sketches."""

    method_id: ClassVar[str] = "shift"
    description: ClassVar[str] = "shift every latent"
    accepts: ClassVar[frozenset[str]] = frozenset({"text", "sketch"})
    Options = _ShiftOptions

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        options: Any = request.options
        if options.fail == "input":
            raise InputError("shift refuses this guidance")
        if options.fail == "crash":
            raise RuntimeError("method failed on purpose")
        w = request.latents + 0.5 * options.strength
        with torch.no_grad():
            return EditResult(ctx.generator.synthesis(w, noise="const"), w, "w+", info={"steps": options.steps})


class Still(EditingMethod):
    """Returns the source unchanged; accepts every kind."""

    method_id: ClassVar[str] = "still"
    description: ClassVar[str] = "no edit at all"
    accepts: ClassVar[frozenset[str]] = frozenset(KINDS)

    def edit(self, ctx: EditContext, request: EditRequest) -> EditResult:
        with torch.no_grad():
            return EditResult(ctx.generator.synthesis(request.latents, noise="const"), request.latents, "w+")


class SketchOnly(Still):
    method_id: ClassVar[str] = "sketchy"
    description: ClassVar[str] = "accepts sketches only"
    accepts: ClassVar[frozenset[str]] = frozenset({"sketch"})


class NeedsParser(Still):
    method_id: ClassVar[str] = "parsed"
    description: ClassVar[str] = "needs a face parser"
    requires: ClassVar[frozenset[str]] = frozenset({"parser"})


class Plugin:
    @hookimpl
    def register_methods(self, register: Callable[..., None]) -> None:
        for method in (Shift, Still, SketchOnly, NeedsParser):
            register(method)


FAKES: dict[str, Callable[[], Any]] = {"clip": FakeClip, "identity": FakeIdentity}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, encoder_file: Path) -> dict[str, Path]:
    """The tiny encoder and a tiny random evaluator (16 px, one stage)."""

    folder = tmp_path_factory.mktemp("bench-nets")
    torch.manual_seed(3)
    evaluator = Evaluator(EvaluatorConfig(size=16, widths=(4, 8))).eval().save(folder / "evaluator.safetensors")
    return {"encoder": encoder_file, "evaluator": evaluator}


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, files: dict[str, Path]) -> Callable[..., Result]:
    """``bench(*args, roles=("clip", "identity"), encoder=True, evaluator=True)``: run ``cfs bench suite``."""
    monkeypatch.setenv("CFS_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("CFS_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    use_fake_roles(monkeypatch, FAKES)
    host = PluginHost()
    host.register(Plugin(), "test-plugin")
    app = make_app(host)
    dummy = tmp_path / "fake-net.bin"
    dummy.write_bytes(b"fake")

    def run(*args: object, roles: tuple[str, ...] = ("clip", "identity"), encoder: bool = True,
            evaluator: bool = True) -> Result:
        extra: list[object] = ["--generator", TINY_G, *(["--encoder", files["encoder"]] if encoder else [])]
        extra += ["--evaluator", files["evaluator"]] if evaluator else []
        for role in roles:
            extra += [f"--{role}", dummy]
        return CliRunner().invoke(app, ["bench", "suite", *map(str, args), *map(str, extra)], catch_exceptions=False)

    return run


# ------------------------------------------------------------------------------------ cases
def _diff(a: FaceParams, b: FaceParams) -> set[str]:
    return {k for k, v in a.to_dict().items() if b.to_dict()[k] != v}


def test_cases_are_deterministic_and_keep_the_rules() -> None:
    cases = bs.make_cases(KINDS, 12, seed=0)
    assert [c.describe() for c in cases] == [c.describe() for c in bs.make_cases(KINDS, 12, seed=0)]
    assert [c.case_id for c in cases[:5]] == ["clipart-000", "sketch-000", "text-000", "exemplar-000", "clipart-001"]
    assert {c.source for c in bs.make_cases(KINDS, 3, seed=1)}.isdisjoint({c.source for c in cases})
    for case in cases:
        # the source is the test-split face (never a training face); the target differs exactly in `changed`
        assert case.source == sample_params(face_seed("test", case.index, 0))
        assert len(case.changed) == bs.CHANGES_PER_CASE and _diff(case.source, case.target) == set(case.changed)
        assert set(case.changed) <= set(bs.target_pool(case.kind)) and "eyebrows" not in case.changed
        assert case.target.facial_hair == "none" or case.target.presentation == "masculine"
        seen = bs.visible(case.target, "photo") & bs.visible(case.target, bs.GUIDE_STYLE[case.kind])
        assert set(case.changed) <= set(case.targets) <= seen
        assert set(case.revealed) == set(case.targets) - set(case.changed)
        assert all(a not in bs.visible(case.source) for a in case.revealed)
        assert all(case.targets[a] == getattr(case.target, a) for a in case.targets)
        assert not set(case.preserved) & set(case.changed)
        assert set(case.preserved) <= bs.visible(case.source) & bs.visible(case.target)
        if case.kind == "sketch":
            assert not set(case.targets) & COLOR_ATTRIBUTES
        if case.kind == "exemplar":  # another identity wearing every attribute of the target
            assert case.exemplar is not None and case.exemplar.group("attribute") == case.target.group("attribute")
            assert case.exemplar.group("identity") != case.source.group("identity")
        if case.kind == "text":
            assert case.text is not None and case.text.startswith("a photo of a")
            for attribute, value in case.targets.items():
                assert _named(attribute, value) in case.text, (case.text, attribute, value)
        else:
            assert case.text is None


def _named(attribute: str, value: str) -> str:
    if value == "none":
        return "without"
    if attribute == "expression":
        return {"smile": "smiling", "frown": "frowning", "open_mouth": "surprised", "neutral": "neutral expression"}[value]
    if attribute == "presentation":
        return {"feminine": "woman", "masculine": "man", "neutral": "person"}[value]
    if attribute == "hair" and value == "bun":
        return "in a bun"
    return value


def test_case_text_names_the_targets_in_the_world_phrasing() -> None:
    target = FaceParams(presentation="masculine", hair="bald", hair_color="red", facial_hair="beard", glasses="none",
                        hat="cap", hat_color="blue", expression="smile", background="teal")
    text = bs.case_text(target, {"expression": "smile", "hair_color": "red", "glasses": "none", "hat": "cap",
                                 "hat_color": "blue", "background": "teal"})
    assert text == "a photo of a smiling person with a red beard, wearing a blue cap, without glasses on a teal background"
    woman = FaceParams(presentation="feminine", hair="long", hair_color="black", earrings="hoop")
    assert bs.case_text(woman, {"presentation": "feminine", "hair": "long", "hair_color": "black", "earrings": "hoop"}) == \
        "a photo of a woman with long black hair, wearing hoop earrings"
    assert bs.case_text(woman, {"hair": "long"}) == "a photo of a person with long hair"


def test_draw_target_respects_the_facial_hair_rule() -> None:
    woman = FaceParams(presentation="feminine", facial_hair="none", hair="long")
    man = FaceParams(presentation="masculine", facial_hair="beard", hair="short")
    for seed in range(40):
        for source in (woman, man):
            target, changed = bs.draw_target(source, "sketch", random.Random(seed))
            assert target.facial_hair == "none" or target.presentation == "masculine"
            assert _diff(source, target) == set(changed)
    with pytest.raises(InputError, match="unknown guidance kind 'photo'"):
        bs.make_case("photo", 0, 0)


def test_scores_from_controlled_readings() -> None:
    case = bs.make_case("clipart", 0, 0)
    source = {a: str(getattr(case.source, a)) for a in [*case.targets, *case.preserved]}
    perfect = {**source, **case.targets}
    score = bs.score_readings(case, source, perfect)
    assert score.transfer == 1.0 and score.preservation == 1.0
    unchanged = bs.score_readings(case, source, source)
    assert unchanged.preservation == 1.0
    assert unchanged.transfer == sum(source[a] == v for a, v in case.targets.items()) / len(case.targets)
    first, *rest = case.targets
    half = {**perfect, first: "nothing-like-it", case.preserved[0]: "other"}
    score = bs.score_readings(case, source, half)
    assert score.transfer == pytest.approx((len(case.targets) - 1) / len(case.targets))
    assert score.preservation == pytest.approx((len(case.preserved) - 1) / len(case.preserved))
    assert score.hits[first] is False and all(score.hits[a] for a in rest)
    # an evaluator that reads only some attributes scores only those
    partial = bs.score_readings(case, source, {first: case.targets[first]})
    assert partial.transfer == 1.0 and partial.preservation is None and set(partial.hits) == {first}


def test_caps_apply_only_where_the_user_set_nothing() -> None:
    session = session_module.ModelSession("files", "cpu")
    options, applied = bs.capped_options(session, Shift, {}, {"steps": 2, "n_images": 2})
    assert options.steps == 2 and applied == {"steps": 2}  # type: ignore[attr-defined]
    options, applied = bs.capped_options(session, Shift, {"steps": "5"}, {"steps": 2})
    assert options.steps == 5 and applied == {}  # type: ignore[attr-defined]
    session.method_defaults = {"shift": {"steps": 1}}
    options, applied = bs.capped_options(session, Shift, {}, {"steps": 2})
    assert options.steps == 1 and applied == {}  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------ end to end
def test_quick_suite_writes_complete_outputs(bench: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = bench("--quick", "--cases", "2", "--methods", "still,shift,sketchy,parsed", "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["bench.json", "report.html"]
    data = json.loads((out / "bench.json").read_text())
    settings = data["settings"]
    assert settings["cases_per_kind"] == 2 and settings["kinds"] == list(KINDS) and settings["quick"] is True
    assert settings["methods"] == ["still", "shift", "sketchy"] and settings["caps"] == bs.QUICK_CAPS
    assert settings["caps_applied"] == {"shift": {"steps": 2}} and settings["options"]["shift"]["steps"] == 2
    assert data["skipped"]["methods"] == {"parsed": "needs parser, which the models of this run do not provide"}
    assert data["skipped"]["kinds"]["shift"] == {"clipart": "does not accept clipart guidance",
                                                 "exemplar": "does not accept exemplar guidance"}
    assert [c["id"] for c in data["cases"]] == [c.case_id for c in bs.make_cases(KINDS, 2, 0)]
    assert data["cases"][0]["changed"] == bs.make_cases(KINDS, 2, 0)[0].describe()["changed"]

    summary = data["summary"]
    assert list(summary) == list(KINDS)
    for kind in KINDS:
        rows = summary[kind]
        assert list(rows) == ["(no edit)", "(target photo)", "still", *(["shift"] if kind in ("text", "sketch") else []),
                              *(["sketchy"] if kind == "sketch" else [])]
        still, floor = rows["still"], rows["(no edit)"]
        # the unchanged output scores exactly what the source reconstruction scores
        assert still["preservation"] == 1.0 and still["identity"] == pytest.approx(1.0, abs=1e-5)
        assert still["transfer"] == floor["transfer"] and still["realism"] == floor["realism"]
        assert still["edits"] == 2 and still["failed"] == 0 and still["seconds"] > 0
        assert floor["seconds"] is None and 0.0 <= rows["(target photo)"]["transfer"] <= 1.0
        assert sum(n for n, _ in still["transfer_by_attribute"].values()) <= sum(t for _, t in still["transfer_by_attribute"].values())
        if "shift" in rows:
            assert rows["shift"]["identity"] < 0.999 and rows["shift"]["edits"] == 2
    case = data["cases"][0]
    assert set(case["scores"]) == {"(no edit)", "(target photo)", "still"}
    assert set(case["scores"]["still"]) >= {"transfer", "preservation", "identity", "realism", "seconds", "hits", "readings"}
    assert data["reconstruction_check"]["sources"] == 2 and data["reconstruction_check"]["readings"] > 0
    assert data["style_check"]["clipart guidance"]["n"] == 2 and data["failures"] == []

    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>") and '<table class="summary">' in page and "src=\"http" not in page
    # per example case: source, target photo, guidance tile, then one image per method that ran
    images = sum(2 * (3 + 1 + (k in ("text", "sketch")) + (k == "sketch")) for k in KINDS)
    assert page.count("data:image/png;base64,") == images
    assert "does not accept clipart" in page and "method <b>parsed</b> skipped" in page
    assert "a photo of a" in page and "text-001" in page

    assert "still" in result.stdout and "transfer ↑" in result.stdout and "(target photo)" in result.stdout
    assert "skipped: needs parser" in result.stdout


def test_markdown_table_and_missing_optional_nets(bench: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = bench("--quick", "--kinds", "text", "--methods", "still", "--markdown", "--examples", "0", "--out", out,
                   roles=())
    assert result.exit_code == 0, result.output
    assert "| kind | method | transfer ↑ |" in result.stdout and "| text | still |" in result.stdout
    data = json.loads((out / "bench.json").read_text())
    row = data["summary"]["text"]["still"]
    assert row["identity"] is None and row["realism"] is None and row["preservation"] == 1.0
    assert "identity not measured: no identity net in the models of this run" in data["notes"]
    assert "realism not measured" in result.stdout
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 0


def test_refused_edits_are_recorded_and_crashes_write_nothing(bench: Callable[..., Result], tmp_path: Path) -> None:
    out = tmp_path / "out"
    refused = bench("--quick", "--kinds", "text,sketch", "--methods", "still,shift", "-o", "shift.fail=input", "--out", out)
    assert refused.exit_code == 0, refused.output
    data = json.loads((out / "bench.json").read_text())
    assert data["summary"]["text"]["shift"]["failed"] == 1 and data["summary"]["text"]["shift"]["edits"] == 0
    assert data["summary"]["text"]["shift"]["transfer"] is None
    assert data["failures"] == ["shift on text-000: shift refuses this guidance", "shift on sketch-000: shift refuses this guidance"]
    assert "failed: shift on text-000: shift refuses this guidance" in refused.stdout

    before = {p.name: p.read_bytes() for p in out.iterdir()}
    crashed = bench("--quick", "--kinds", "text", "--methods", "still,shift", "-o", "shift.fail=crash", "--out", out)
    assert crashed.exit_code == 1 and "method failed on purpose" in crashed.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier results are untouched


@pytest.mark.parametrize(
    ("args", "kw", "message"),
    [
        (["--methods", "still,nope"], {}, "unknown method 'nope'"),
        (["--methods", "still", "--kinds", "text,photo"], {}, "unknown guidance kind 'photo' for the suite"),
        (["--methods", "still", "-o", "latent-opt.steps=3"], {}, "is for method 'latent-opt', which is not in --methods"),
        (["--methods", "shift", "-o", "shift.colour=red"], {}, "method 'shift': unknown option 'colour'"),
        (["--methods", "sketchy", "--kinds", "text"], {}, "none of the methods (sketchy) accepts any of the kinds text"),
        (["--methods", "still"], {"encoder": False}, "no encoder model"),
        (["--methods", "still", "--evaluator", "missing.safetensors"], {"evaluator": False},
         "--evaluator missing.safetensors: no such file"),
        (["--methods", "parsed"], {}, "no method can run: parsed: needs parser"),
    ],
)
def test_bad_requests_fail_in_one_line(bench: Callable[..., Result], tmp_path: Path, args: list[str],
                                       kw: dict[str, bool], message: str) -> None:
    result = bench("--quick", *args, "--out", tmp_path / "out", **kw)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_default_evaluator_is_looked_up_in_the_demo_pack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert bs.default_evaluator().parts[-2:] == ("demo", "evaluator.safetensors")
    monkeypatch.setattr(bs, "default_evaluator", lambda: tmp_path / "none.safetensors")
    with pytest.raises(InputError, match="pass --evaluator FILE"):
        bs.load_evaluator(None, "cpu")

