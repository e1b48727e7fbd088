"""What ``cfs compare`` draws and writes: the labelled grid and the self-contained HTML report.

The grid has one row per input and the columns ``source`` (the generator's image of the input's
W+, what every method edits), the guidance (its image, or its text drawn on a tile) and one per
method, under a band of column labels; the input's name is written on its source tile.
"""

from __future__ import annotations

import base64
import html
import io
import json
import textwrap
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from cfs_core.guidance import Guidance
    from cfs_registry.compare import CompareJob

PAD = 4  # pixels between tiles and around the grid
LABEL_H = 18  # height of the column-label band


def tile_size(image_size: int) -> int:
    """Side of a grid tile for a generator of ``image_size`` pixels (128–256)."""
    return min(256, max(128, image_size))


def grid_size(rows: int, columns: int, tile: int) -> tuple[int, int]:
    """(width, height) of a grid of ``rows`` × ``columns`` tiles."""
    return PAD + columns * (tile + PAD), LABEL_H + PAD + rows * (tile + PAD)


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int) -> str:
    """``text`` cut (with an ellipsis) to at most ``width`` pixels in the default font."""
    if draw.textlength(text) <= width:
        return text
    while text and draw.textlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _tile(image: np.ndarray, side: int) -> Image.Image:
    return Image.fromarray(image).convert("RGB").resize((side, side), Image.Resampling.LANCZOS)


def guidance_tile(guidance: Guidance, side: int) -> Image.Image:
    """The guidance image, or its text wrapped on a light tile."""
    if guidance.image is not None:
        return _tile(guidance.image, side)
    tile = Image.new("RGB", (side, side), (245, 245, 240))
    draw = ImageDraw.Draw(tile)
    lines = textwrap.wrap(guidance.text or guidance.source, width=max(8, side // 7))[: side // 14]
    draw.multiline_text((6, 6), "\n".join(lines), fill=(20, 20, 20), spacing=3)
    return tile


def column_labels(job: CompareJob) -> list[str]:
    return ["source", job.guidance.kind, *job.methods]


def grid_image(job: CompareJob) -> np.ndarray:
    """uint8 RGB grid: rows = inputs, columns = source, guidance, methods; labelled."""
    labels = column_labels(job)
    tile = tile_size(job.results[0].source.shape[0])
    canvas = Image.new("RGB", grid_size(len(job.results), len(labels), tile), "white")
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(labels):
        draw.text((PAD + c * (tile + PAD) + 2, 3), _fit(draw, label, tile - 4), fill=(20, 20, 20))
    guide = guidance_tile(job.guidance, tile)
    for r, result in enumerate(job.results):
        y = LABEL_H + PAD + r * (tile + PAD)
        tiles = [_tile(result.source, tile), guide, *(_tile(result.edits[m], tile) for m in job.methods)]
        for c, image in enumerate(tiles):
            canvas.paste(image, (PAD + c * (tile + PAD), y))
        name = _fit(draw, result.name, tile - 8)
        box = draw.textbbox((PAD + 3, y + 3), name)
        draw.rectangle((box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2), fill="white")
        draw.text((PAD + 3, y + 3), name, fill=(20, 20, 20))
    return np.asarray(canvas)


def png_data_uri(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}td.note{text-align:left;color:#777}
figure{display:inline-block;margin:4px;text-align:center}figcaption{font-size:12px}
img.tile{width:160px;height:160px}img.grid{max-width:100%}pre{background:#f6f6f6;padding:1em}"""


def report_html(job: CompareJob, grid: np.ndarray) -> str:
    """One self-contained page: summary table, notes, the grid, each input's images, the settings."""
    esc = html.escape
    means = job.means()
    columns = job.summary_columns()
    metric_ids = [cls.metric_id for cls in job.metrics]
    head = "".join(f"<th>{esc(header)}</th>" for _, header in columns)
    rows = []
    for method_id in job.methods:
        cells = "".join(f"<td>{_number(means[method_id][key])}</td>" for key, _ in columns)
        rows.append(f"<tr><td>{esc(method_id)}</td>{cells}</tr>")
    for method_id, why in job.skipped_methods.items():
        rows.append(f"<tr><td>{esc(method_id)}</td><td class=\"note\" colspan=\"{len(columns)}\">"
                    f"skipped: {esc(why)}</td></tr>")
    notes = [f"<li>method <b>{esc(m)}</b> skipped: {esc(why)}</li>" for m, why in job.skipped_methods.items()]
    notes += [f"<li>metric <b>{esc(m)}</b> skipped: {esc(why)}</li>" for m, why in job.skipped_metrics.items()]
    if job.memory_how:
        notes.append(f"<li>peak memory: {esc(job.memory_how)}</li>")
    descriptions = "".join(f"<li><b>{esc(cls.metric_id)}</b> {'↑' if cls.higher_is_better else '↓'}: "
                           f"{esc(cls.description)}</li>" for cls in job.metrics)
    sections = []
    guide_uri = png_data_uri(np.asarray(guidance_tile(job.guidance, 160)))
    for result in job.results:
        figures = []
        if result.photo is not None:
            figures.append(("input", png_data_uri(result.photo), ""))
        figures.append(("source", png_data_uri(result.source), ""))
        figures.append((job.guidance.kind, guide_uri, ""))
        for method_id in job.methods:
            values = ", ".join(f"{m} {_number(result.values[method_id][m])}" for m in metric_ids)
            figures.append((method_id, png_data_uri(result.edits[method_id]), values))
        body = "".join(f"<figure><img class=\"tile\" src=\"{uri}\" alt=\"{esc(label)}\"><figcaption><b>{esc(label)}</b>"
                       f"{'<br>' + esc(extra) if extra else ''}</figcaption></figure>" for label, uri, extra in figures)
        sections.append(f"<h3>{esc(result.name)}</h3><div>{body}</div>")
    guidance = esc(f"{job.guidance.kind}: {job.guidance.source}")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cfs compare · {guidance}</title><style>{STYLE}</style></head>
<body>
<h1>cfs compare</h1>
<p>Guidance <b>{guidance}</b> · {len(job.results)} input(s) · methods: {esc(', '.join(job.methods))}</p>
<h2>Summary (means over the inputs)</h2>
<table class="summary"><tr><th>method</th>{head}</tr>
{''.join(rows)}
</table>
<ul class="metrics">{descriptions}</ul>
<h2>Notes</h2>
<ul class="notes">{''.join(notes) or '<li>none</li>'}</ul>
<h2>Grid</h2>
<img class="grid" src="{png_data_uri(grid)}" alt="comparison grid">
<h2>Per input</h2>
{''.join(sections)}
<h2>Settings</h2>
<pre>{esc(json.dumps(job.settings, indent=2, default=str))}</pre>
</body></html>
"""
