"""CFS-Bench (``cfs bench suite``): running a fixed, seeded editing suite on the synthetic world.

The cases (source, target, guidance) and the scoring of one output's readings live in
:mod:`cfs_registry.bench_cases`; this module re-exports its names. Here: checking a request
before models load (:func:`plan_suite`, :func:`capped_options`), loading the attribute evaluator
(:func:`load_evaluator`), running every method accepting a case's kind on the inverted source and
timing it, with the attribute evaluator, the identity net and CLIP reading the output
(:class:`BenchSuite`), and the outputs: the means per kind and method, :meth:`BenchSuite.to_json`
(``bench.json``, with every case), :meth:`BenchSuite.write` and the summary tables
(:func:`table_rows`, :func:`markdown_table`). The numbers are defined in ``docs/bench.md``;
:mod:`cfs_registry.bench_suite_report` renders the HTML page.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cfs_core.errors import InputError
from cfs_registry.bench_cases import (
    _attributes, KINDS, GUIDE_STYLE, EXCLUDED_TARGETS, CHANGES_PER_CASE, EXEMPLAR_INDEX, SCORES, STYLE_NOUNS,
    target_pool, visible, coherent, source_params, exemplar_params, draw_target, BenchCase, make_case,
    make_cases, case_text, render_size, photo, case_guidance, Score, score_readings, mean, StyleReader,
)

if TYPE_CHECKING:
    import numpy as np

    from cfs_core.guidance import Guidance
    from cfs_core.methods import EditContext, EditingMethod, MethodOptions
    from cfs_registry.plugins import PluginHost

__all__ = [  # the suite's names and, re-exported, those of bench_cases
    "KINDS", "GUIDE_STYLE", "EXCLUDED_TARGETS", "CHANGES_PER_CASE", "EXEMPLAR_INDEX", "SCORES", "STYLE_NOUNS",
    "target_pool", "visible", "coherent", "source_params", "exemplar_params", "draw_target", "BenchCase",
    "make_case", "make_cases", "case_text", "render_size", "photo", "case_guidance", "Score", "score_readings",
    "mean", "StyleReader", "DEFAULT_CASES", "QUICK_CASES", "DEFAULT_STEPS", "QUICK_CAPS", "EXAMPLES", "OUTPUTS",
    "REFERENCES", "SuitePlan", "parse_kinds", "plan_suite", "capped_options", "default_evaluator",
    "load_evaluator", "CaseRecord", "BenchSuite", "DEFINITIONS", "format_cell", "table_rows", "HEADERS",
    "markdown_table",
]

DEFAULT_CASES = 5  # cases per guidance kind
QUICK_CASES = 1
DEFAULT_STEPS = 40  # cap on every method's ``steps`` option (the StyleCLIP notebook's latent-opt count)
QUICK_CAPS: dict[str, int] = {"steps": 2, "n_stats": 64, "n_images": 2, "max_resolution": 4}
EXAMPLES = 3  # cases per kind shown in report.html
OUTPUTS = ("bench.json", "report.html")
REFERENCES = ("(no edit)", "(target photo)")


# ------------------------------------------------------------------------------------ planning
@dataclass
class SuitePlan:
    """A checked request: methods, the kinds each runs, what is skipped and why, the options."""

    methods: dict[str, type[EditingMethod]]
    kinds: tuple[str, ...]
    runs: dict[str, tuple[str, ...]]  # method id -> kinds it runs
    skipped_methods: dict[str, str]
    skipped_pairs: dict[str, dict[str, str]]  # method id -> kind -> why
    option_pairs: dict[str, dict[str, str]]


def parse_kinds(text: str) -> tuple[str, ...]:
    from cfs_registry.compare import parse_ids

    kinds = tuple(parse_ids(text, "--kinds"))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InputError(f"unknown guidance kind '{unknown[0]}' for the suite (kinds: {', '.join(KINDS)})")
    return kinds


def plan_suite(host: PluginHost, method_ids: Sequence[str] | None, kinds: Sequence[str], options: Sequence[str]) -> SuitePlan:
    """Check the request before models load (one-line errors)."""
    from cfs_registry.compare import split_method_options

    ids = list(method_ids) if method_ids else host.methods.ids()
    classes = {m: host.methods.get(m) for m in ids}
    pairs = split_method_options(options, ids)
    for method_id, cls in classes.items():
        cls.parse_options(pairs[method_id])
    runs, skipped, skipped_pairs = {}, {}, {}
    for method_id, cls in classes.items():
        accepted = tuple(k for k in kinds if k in cls.accepts)
        if not accepted:
            skipped[method_id] = f"accepts none of the suite's kinds ({', '.join(kinds)}; accepts: {', '.join(sorted(cls.accepts))})"
            continue
        runs[method_id] = accepted
        refused = {k: f"does not accept {k} guidance" for k in kinds if k not in cls.accepts}
        if refused:
            skipped_pairs[method_id] = refused
    if not runs:
        raise InputError(f"none of the methods ({', '.join(ids)}) accepts any of the kinds {', '.join(kinds)}")
    return SuitePlan({m: classes[m] for m in runs}, tuple(kinds), runs, skipped, skipped_pairs, pairs)


def capped_options(session: Any, cls: type[EditingMethod], pairs: Mapping[str, str],
                   caps: Mapping[str, int]) -> tuple[MethodOptions, dict[str, int]]:
    """The method's options (model set defaults + the user's pairs) with the suite's caps
    applied to the options it has and the user did not set; returns them and the caps applied."""
    options = session.options_for(cls, pairs)
    applied: dict[str, int] = {}
    for key, cap in caps.items():
        if key not in cls.Options.model_fields or key in pairs:
            continue
        current = getattr(options, key)
        if current is None or (isinstance(current, (int, float)) and current > cap):
            applied[key] = cap
    if applied:
        options = session.options_for(cls, {**dict(pairs), **{k: str(v) for k, v in applied.items()}})
    return options, applied


def default_evaluator() -> Path:
    """The demo pack's evaluator file (may not exist in a checkout without it)."""
    from importlib import resources

    return Path(str(resources.files("cfs_registry").joinpath("demo", "evaluator.safetensors")))


def load_evaluator(path: Path | None, device: str) -> tuple[Any, dict[str, Any]]:
    """The evaluator (``--evaluator`` or the demo pack's) and what to record about it."""
    from cfs_core.nets.evaluator import Evaluator

    chosen = path.expanduser() if path is not None else default_evaluator()
    if not chosen.is_file():
        if path is not None:
            raise InputError(f"--evaluator {path}: no such file")
        raise InputError("no attribute evaluator: the demo pack's evaluator (demo/evaluator.safetensors) is not "
                         "installed; pass --evaluator FILE (train one with `cfs demo train evaluator`)")
    net = Evaluator.from_file(chosen, device=device)
    about: dict[str, Any] = {"file": str(chosen), **net.describe()}
    card = chosen.with_suffix(".json")
    if card.is_file():
        try:
            data = json.loads(card.read_text(encoding="utf-8"))
            about["card"] = {k: data[k] for k in ("name", "evaluation") if k in data}
        except ValueError:
            pass
    return net, about


# ------------------------------------------------------------------------------------ running
@dataclass
class CaseRecord:
    """Everything kept of one case: its guidance and every output's score."""

    case: BenchCase
    guidance: Guidance
    source_reading: dict[str, str]
    scores: dict[str, Score] = field(default_factory=dict)  # method id or reference name -> score
    images: dict[str, np.ndarray] = field(default_factory=dict)  # kept for the report's examples


@dataclass
class BenchSuite:
    """The cases × the planned methods, scored (module docstring)."""

    cases: list[BenchCase]
    methods: dict[str, tuple[type[EditingMethod], MethodOptions]]
    runs: dict[str, tuple[str, ...]]
    out: Path
    settings: dict[str, Any] = field(default_factory=dict)
    skipped_methods: dict[str, str] = field(default_factory=dict)
    skipped_pairs: dict[str, dict[str, str]] = field(default_factory=dict)
    examples: int = EXAMPLES
    records: list[CaseRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fidelity: dict[str, Any] = field(default_factory=dict)  # the evaluator on the reconstructions vs the sources' truth
    style_check: dict[str, Any] = field(default_factory=dict)
    memory_how: str = ""

    @property
    def kinds(self) -> list[str]:
        return list(dict.fromkeys(c.kind for c in self.cases))

    def run(self, ctx: EditContext, host: PluginHost, evaluator: Any) -> list[CaseRecord]:
        import torch

        from cfs_core import editing
        from cfs_core.errors import CfsError
        from cfs_core.imageio import to_uint8
        from cfs_core.metrics import MetricSample
        from cfs_registry.compare import PeakMemory

        available = set(ctx.resources.available())
        needed = {r for cls, _ in self.methods.values() for r in cls.requires} | {"identity", "clip", "encoder"}
        for name in sorted(needed & available):
            ctx.resources.get(name)  # load before the clock starts: the timings are of edits only
        identity = None
        if "identity" in available and "identity" in host.metrics:
            identity = host.metrics.get("identity")(ctx.resources)
        else:
            self.notes.append("identity not measured: no identity net in the models of this run")
        reader = StyleReader(ctx.resources.get("clip")) if "clip" in available else None
        if reader is None:
            self.notes.append("realism not measured: no CLIP model in the models of this run")
        evaluator.to(ctx.device)
        attributes, _, _ = _attributes()
        gen = ctx.generator
        size = render_size(gen.size)
        by_index: dict[int, list[BenchCase]] = {}
        for case in self.cases:
            by_index.setdefault(case.index, []).append(case)
        total = sum(1 + sum(c.kind in kinds for kinds in self.runs.values()) for c in self.cases)
        done = 0
        agree: list[bool] = []
        styles: dict[str, list[str]] = {}
        self.records = []

        def read(images: torch.Tensor) -> dict[str, str]:
            return {a: v[0] for a, v in evaluator.predict(images.to(ctx.device)).items()}

        def measure(case: BenchCase, record: CaseRecord, images: torch.Tensor, recon: torch.Tensor) -> Score:
            score = score_readings(case, record.source_reading, read(images))
            if identity is not None:
                with torch.no_grad():
                    score.identity = float(identity.compute(MetricSample(recon, images, record.guidance))[0])
            if reader is not None:
                score.style = reader.read(images)[0]
                score.realism = 1.0 if score.style == "photo" else 0.0
            return score

        for index, cases in by_index.items():
            source = cases[0].source
            render = photo(source, size)
            pixels = editing.images_to_tensor([render], gen.size, ctx.device)
            latents = editing.invert(ctx, pixels)
            recon = editing.render(ctx, latents)
            source_reading = read(recon)
            seen = visible(source, "photo")
            agree += [source_reading[a] == str(getattr(source, a)) for a in attributes if a in seen and a in source_reading]
            if reader is not None:
                styles.setdefault("source photo", []).append(reader.read_uint8([render])[0])
            for case in cases:
                guidance = case_guidance(case, host, size)
                record = CaseRecord(case, guidance, source_reading)
                keep = case.index < self.examples
                if reader is not None and guidance.image is not None:
                    styles.setdefault(f"{case.kind} guidance", []).append(reader.read_uint8([guidance.image])[0])
                target = editing.images_to_tensor([photo(case.target, size)], gen.size, ctx.device)
                record.scores[REFERENCES[0]] = measure(case, record, recon, recon)
                record.scores[REFERENCES[1]] = measure(case, record, target, recon)
                if keep:
                    record.images["source"] = to_uint8(recon)[0]
                    record.images[REFERENCES[1]] = to_uint8(target)[0]
                done += 1
                ctx.report("bench", done, total, case.case_id)
                for method_id, (cls, options) in self.methods.items():
                    if case.kind not in self.runs[method_id]:
                        continue
                    try:
                        with PeakMemory(ctx.device) as measured:
                            timed = editing.run_method(cls, ctx, latents, guidance, options)
                    except CfsError as exc:  # the method refuses this case: recorded, the suite goes on
                        record.scores[method_id] = Score(None, None, seconds=None, error=str(exc))
                    else:
                        self.memory_how = measured.how
                        edited = timed.result.images.detach()[:1]
                        score = measure(case, record, edited, recon)
                        score.seconds, score.peak_memory_mb = measured.seconds, measured.mb
                        record.scores[method_id] = score
                        if keep:
                            record.images[method_id] = to_uint8(edited)[0]
                    done += 1
                    ctx.report("bench", done, total, f"{case.case_id} · {method_id}")
                self.records.append(record)
        self.fidelity = {"attributes_read_as_source": sum(agree) / len(agree) if agree else None,
                         "readings": len(agree), "sources": len(by_index)}
        self.style_check = {name: {"n": len(read_as), "read_as": {s: read_as.count(s) for s in sorted(set(read_as))}}
                            for name, read_as in styles.items()}
        return self.records

    # -------------------------------------------------------------------------------- summaries
    def rows(self) -> list[str]:
        """Table rows per kind: the two references, then the methods."""
        return [*REFERENCES, *self.methods]

    def summary(self) -> dict[str, dict[str, dict[str, Any]]]:
        """kind → row (method id or reference) → the means over the kind's cases and counts."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for kind in self.kinds:
            records = [r for r in self.records if r.case.kind == kind]
            rows: dict[str, dict[str, Any]] = {}
            for row in self.rows():
                if row in self.methods and kind not in self.runs[row]:
                    continue
                scores = [r.scores[row] for r in records if row in r.scores]
                ok = [s for s in scores if s.error is None]
                entry: dict[str, Any] = {key: mean([getattr(s, key) for s in ok]) for key in SCORES}
                entry.update(edits=len(ok), failed=len(scores) - len(ok))
                per_attribute: dict[str, list[int]] = {}
                for s in ok:
                    for a, hit in s.hits.items():
                        counts = per_attribute.setdefault(a, [0, 0])
                        counts[0] += int(hit)
                        counts[1] += 1
                entry["transfer_by_attribute"] = dict(sorted(per_attribute.items()))
                rows[row] = entry
            out[kind] = rows
        return out

    def failures(self) -> list[str]:
        return [f"{row} on {r.case.case_id}: {s.error}" for r in self.records for row, s in r.scores.items()
                if s.error is not None]

    def to_json(self) -> dict[str, Any]:
        """``bench.json``: settings, cases, per (kind, method) means, every case's scores, notes."""
        return {
            "suite": "cfs-bench",
            "settings": self.settings,
            "definitions": DEFINITIONS,
            "summary": self.summary(),
            "reconstruction_check": self.fidelity,
            "style_check": self.style_check,
            "cases": [r.case.describe() | {"guidance": r.guidance.describe(),
                                           "scores": {k: s.to_json() for k, s in r.scores.items()}}
                      for r in self.records],
            "skipped": {"methods": dict(self.skipped_methods), "kinds": {m: dict(v) for m, v in self.skipped_pairs.items()}},
            "failures": self.failures(),
            "notes": list(self.notes),
            "memory": self.memory_how,
        }

    def write(self) -> dict[str, Path]:
        """Write ``bench.json`` and ``report.html`` under ``out`` (both built before either is written)."""
        from cfs_core.fileio import atomic_write_bytes
        from cfs_registry.bench_suite_report import report_html

        data = self.to_json()
        blobs = {"bench.json": json.dumps(data, indent=2, default=str).encode("utf-8"),
                 "report.html": report_html(self, data).encode("utf-8")}
        self.out.mkdir(parents=True, exist_ok=True)
        for name, blob in blobs.items():
            atomic_write_bytes(self.out / name, blob)
        return {name: self.out / name for name in blobs}


DEFINITIONS: dict[str, str] = {
    "transfer": "share of the case's target attributes (changed, or revealed by the change) that the evaluator "
                "reads on the output as the target value; mean over the cases",
    "preservation": "share of the case's unchanged attributes visible on source and target that the evaluator reads "
                    "on the output as it reads them on the source reconstruction; mean over the cases",
    "identity": "identity-net cosine similarity of the output to the source reconstruction (the identity metric); "
                "mean over the cases",
    "realism": "share of outputs that CLIP zero-shot reads as a photo rather than a clipart or a sketch",
    "seconds": "wall time of the method's edit (training on a cache miss included); mean over the cases",
    "(no edit)": "the source reconstruction itself, scored as if it were an output: the floor of transfer",
    "(target photo)": "the world's photo render of the target: what a perfect edit would show (the ceiling, "
                      "up to the evaluator's own errors and the generator's reconstruction)",
}


# ------------------------------------------------------------------------------------ tables
def format_cell(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key == "seconds":
        return f"{value:.2f}"
    return f"{value:.2f}" if key != "identity" else f"{value:.3f}"


def table_rows(suite: BenchSuite) -> list[tuple[str, str, list[str], str]]:
    """(kind, row, cells, note) for the summary tables (rich, Markdown, HTML)."""
    summary = suite.summary()
    out = []
    for kind in suite.kinds:
        for row, entry in summary[kind].items():
            note = f"{entry['failed']} failed" if entry["failed"] else ""
            cells = [format_cell(k, entry[k]) for k in SCORES]
            if row in REFERENCES:
                cells[-1] = ""
            out.append((kind, row, cells + [str(entry["edits"])], note))
        for method_id, why in suite.skipped_methods.items():
            out.append((kind, method_id, [], f"skipped: {why}"))
        for method_id, kinds in suite.skipped_pairs.items():
            if kind in kinds:
                out.append((kind, method_id, [], f"skipped: {kinds[kind]}"))
    return out


HEADERS = ("transfer ↑", "preservation ↑", "identity ↑", "realism ↑", "s / edit", "edits")


def markdown_table(suite: BenchSuite) -> str:
    """The summary as one Markdown table (for docs/bench.md)."""
    lines = ["| kind | method | " + " | ".join(HEADERS) + " |", "|---|---|" + "---:|" * len(HEADERS)]
    for kind, row, cells, note in table_rows(suite):
        if not cells:
            cells = [note] + [""] * (len(HEADERS) - 1)
        elif note:
            cells = [*cells[:-1], f"{cells[-1]} ({note})"]
        lines.append(f"| {kind} | {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
