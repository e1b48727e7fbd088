"""What ``cfs bench suite`` writes as HTML: one self-contained page (images inline as PNG data URIs).

Sections: the summary table per guidance kind (the two reference rows, then the methods), what
each number means, the notes (skipped methods, failed edits, what could not be measured), the
style check of the realism reader, example grids — per kind, one row per example case: source
reconstruction, target photo, guidance, then each method's output with its scores — and the
list of every case with the settings.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

import numpy as np

from cfs_registry.compare_report import STYLE, guidance_tile, png_data_uri

if TYPE_CHECKING:
    from cfs_registry.bench_suite import BenchSuite, CaseRecord, Score

EXTRA_STYLE = """td.kind{font-weight:bold}tr.ref td{color:#666}div.row{white-space:nowrap;overflow-x:auto}
figure.empty div{width:160px;height:160px;background:#f3f3f3;display:flex;align-items:center;justify-content:center;
color:#888;font-size:12px;white-space:normal}table.cases td{text-align:left}"""


def _caption(score: Score) -> str:
    if score.error is not None:
        return f"failed: {score.error}"
    parts = []
    if score.transfer is not None:
        parts.append(f"T {sum(score.hits.values())}/{len(score.hits)}")
    if score.preservation is not None:
        parts.append(f"P {sum(score.kept.values())}/{len(score.kept)}")
    if score.identity is not None:
        parts.append(f"id {score.identity:.2f}")
    if score.style is not None:
        parts.append(score.style)
    if score.seconds is not None:
        parts.append(f"{score.seconds:.1f} s")
    return " · ".join(parts)


def _figure(label: str, image: np.ndarray | None, caption: str = "", empty: str = "") -> str:
    esc = html.escape
    text = f"<figcaption><b>{esc(label)}</b>{'<br>' + esc(caption) if caption else ''}</figcaption>"
    if image is None:
        return f"<figure class=\"empty\"><div>{esc(empty)}</div>{text}</figure>"
    return f"<figure><img class=\"tile\" src=\"{png_data_uri(image)}\" alt=\"{esc(label)}\">{text}</figure>"


def _example_row(suite: BenchSuite, record: CaseRecord) -> str:
    from cfs_registry.bench_suite import REFERENCES

    case = record.case
    changes = ", ".join(f"{a}={v}" for a, v in case.targets.items())
    figures = [
        _figure("source", record.images.get("source"), f"{case.case_id} (reconstruction)"),
        _figure("target photo", record.images.get(REFERENCES[1]), changes),
        _figure(case.kind, np.asarray(guidance_tile(record.guidance, 160)), case.text or ""),
    ]
    for method_id in suite.methods:
        if case.kind not in suite.runs[method_id]:
            figures.append(_figure(method_id, None, empty=f"does not accept {case.kind}"))
        elif record.scores[method_id].error is not None:
            figures.append(_figure(method_id, None, empty=_caption(record.scores[method_id])))
        else:
            figures.append(_figure(method_id, record.images.get(method_id), _caption(record.scores[method_id])))
    return f"<div class=\"row\">{''.join(figures)}</div>"


def report_html(suite: BenchSuite, data: dict[str, Any]) -> str:
    """The page (see the module docstring)."""
    from cfs_registry.bench_suite import HEADERS, REFERENCES, table_rows

    esc = html.escape
    rows = []
    for kind, row, cells, note in table_rows(suite):
        css = " class=\"ref\"" if row in REFERENCES else ""
        if cells:
            body = "".join(f"<td>{esc(c)}</td>" for c in cells) + f"<td class=\"note\">{esc(note)}</td>"
        else:
            body = f"<td class=\"note\" colspan=\"{len(HEADERS) + 1}\">{esc(note)}</td>"
        rows.append(f"<tr{css}><td class=\"kind\">{esc(kind)}</td><td>{esc(row)}</td>{body}</tr>")
    head = "".join(f"<th>{esc(h)}</th>" for h in ("kind", "method", *HEADERS, "note"))
    definitions = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in data["definitions"].items())
    notes = [f"<li>method <b>{esc(m)}</b> skipped: {esc(why)}</li>" for m, why in suite.skipped_methods.items()]
    notes += [f"<li>{esc(n)}</li>" for n in suite.notes]
    notes += [f"<li>failed: {esc(f)}</li>" for f in suite.failures()]
    if suite.memory_how:
        notes.append(f"<li>peak memory in bench.json: {esc(suite.memory_how)}</li>")
    check = data["reconstruction_check"]
    if check.get("attributes_read_as_source") is not None:
        notes.append(f"<li>the evaluator reads {check['attributes_read_as_source']:.1%} of the visible attributes of the "
                     f"source reconstructions as the source's true values ({check['readings']} readings, "
                     f"{check['sources']} sources): the reconstructions' and the evaluator's errors together</li>")
    styles = "".join(f"<li>{esc(name)}: " + ", ".join(f"{esc(s)} {n}/{v['n']}" for s, n in v["read_as"].items()) + "</li>"
                     for name, v in data["style_check"].items()) or "<li>not measured (no CLIP model)</li>"
    sections = []
    for kind in suite.kinds:
        records = [r for r in suite.records if r.case.kind == kind][: suite.examples]
        if records:
            sections.append(f"<h3>{esc(kind)}</h3>" + "".join(_example_row(suite, r) for r in records))
    cases = "".join(
        f"<tr><td>{esc(c['id'])}</td><td>{c['source_face_seed']}</td><td>"
        + esc(", ".join(f"{a}: {old} → {new}" for a, (old, new) in c["changed"].items()))
        + f"</td><td>{esc(', '.join(c['revealed']))}</td><td>{esc(c.get('text', ''))}</td></tr>"
        for c in data["cases"])
    settings = data["settings"]
    title = f"CFS-Bench · {settings.get('cases_per_kind', '?')} case(s) per kind · seed {settings.get('seed', '?')}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title><style>{STYLE}
{EXTRA_STYLE}</style></head>
<body>
<h1>{esc(title)}</h1>
<p>Kinds: {esc(', '.join(suite.kinds))} · methods: {esc(', '.join(suite.methods) or 'none')} ·
models: {esc(str(settings.get('models', {}).get('models', '?')))}</p>
<h2>Summary (means over each kind's cases)</h2>
<table class="summary"><tr>{head}</tr>
{''.join(rows)}
</table>
<ul class="definitions">{definitions}</ul>
<h2>Notes</h2>
<ul class="notes">{''.join(notes) or '<li>none</li>'}</ul>
<h2>Style check of the realism reader</h2>
<ul class="styles">{styles}</ul>
<h2>Examples</h2>
<p>Per case: the source reconstruction (what every method edits), the target's photo render (what a perfect
edit shows), the guidance, each method's output. T = target attributes read as the target, P = preserved
attributes read as on the source, id = identity similarity, then the style read and the seconds.</p>
{''.join(sections)}
<h2>Cases</h2>
<table class="cases"><tr><th>case</th><th>source face seed</th><th>changed</th><th>revealed</th><th>text</th></tr>
{cases}
</table>
<h2>Settings</h2>
<pre>{esc(json.dumps(settings, indent=2, default=str))}</pre>
</body></html>
"""
