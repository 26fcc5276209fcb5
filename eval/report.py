"""Eval reports: machine-readable JSON, Markdown for reviews, and a self-contained HTML page.

The HTML draws its plots as inline SVG (no JavaScript, no CDN, no plotting library):
per-metric bars, the latency distribution, per-stage latency, and, for a config matrix,
quality against p95 latency for each configuration.
"""

from __future__ import annotations

import html
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_PALETTE = ("#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#be123c", "#4d7c0f")


def _svg(width: int, height: int, body: str, title: str) -> str:
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">'
        f"<title>{html.escape(title)}</title>{body}</svg>"
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
    )


def bar_chart(values: dict[str, float], title: str, maximum: float | None = None) -> str:
    """Horizontal bars, one per metric; values in [0, maximum]."""
    if not values:
        return ""
    top = maximum or max(values.values()) or 1.0
    row, label_w, bar_w = 22, 260, 360
    parts = []
    for i, (name, value) in enumerate(values.items()):
        y = 10 + i * row
        length = max(0.0, min(1.0, value / top)) * bar_w
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" font-size="12">'
            f"{html.escape(name)}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{length:.1f}" height="14" '
            f'fill="{_PALETTE[i % len(_PALETTE)]}"/>'
            f'<text x="{label_w + length + 4:.1f}" y="{y + 14}" font-size="12">{value:.3f}</text>'
        )
    return _svg(label_w + bar_w + 70, 20 + row * len(values), "".join(parts), title)


def histogram(samples: Sequence[float], title: str, bins: int = 20) -> str:
    if not samples:
        return ""
    low, high = min(samples), max(samples)
    span = (high - low) or 1.0
    counts = [0] * bins
    for value in samples:
        counts[min(bins - 1, int((value - low) / span * bins))] += 1
    width, height, pad = 560, 200, 30
    bar = (width - 2 * pad) / bins
    peak = max(counts)
    scale = (height - 2 * pad) / peak
    parts = [
        f'<rect class="bar" x="{pad + i * bar:.1f}" y="{height - pad - c * scale:.1f}" '
        f'width="{bar - 1:.1f}" height="{c * scale:.1f}" fill="{_PALETTE[0]}"/>'
        for i, c in enumerate(counts)
    ]
    parts.append(
        f'<text x="{pad}" y="{height - 8}" font-size="11">{low:.1f} ms</text>'
        f'<text x="{width - pad}" y="{height - 8}" font-size="11" text-anchor="end">'
        f"{high:.1f} ms</text>"
    )
    return _svg(width, height, "".join(parts), title)


def scatter(
    points: Sequence[tuple[str, float, float]], title: str, x_label: str, y_label: str
) -> str:
    """Labelled points (name, x, y): the tradeoff view of a config matrix."""
    if not points:
        return ""
    width, height, pad, label_room = 760, 360, 50, 190
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    x_low, x_high = min(xs) * 0.9, max(xs) * 1.1 or 1.0
    y_low, y_high = min(ys) - 0.02, max(ys) + 0.02

    def sx(x: float) -> float:  # labels sit right of their point: keep room for them
        return pad + (x - x_low) / ((x_high - x_low) or 1.0) * (width - 2 * pad - label_room)

    def sy(y: float) -> float:
        return height - pad - (y - y_low) / ((y_high - y_low) or 1.0) * (height - 2 * pad)

    parts = [
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#444"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#444"/>'
        f'<text x="{width / 2}" y="{height - 12}" text-anchor="middle" font-size="12">'
        f"{html.escape(x_label)}</text>"
        f'<text x="14" y="{height / 2}" font-size="12" transform="rotate(-90 14 {height / 2})" '
        f'text-anchor="middle">{html.escape(y_label)}</text>'
    ]
    for i, (name, x, y) in enumerate(points):
        parts.append(
            f'<circle class="point" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" '
            f'fill="{_PALETTE[i % len(_PALETTE)]}"/>'
            f'<text x="{sx(x) + 7:.1f}" y="{sy(y) - 6:.1f}" font-size="11">{html.escape(name)} '
            f"({x:.1f}, {y:.3f})</text>"
        )
    return _svg(width, height, "".join(parts), title)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> tuple[str, str]:
    """The same table as Markdown and as HTML."""

    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    md = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    md += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return "\n".join(md), f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def emit_json(report: dict[str, Any], out: Path | None) -> None:
    """Print a machine-readable report to stdout and, when asked, write it to `out`."""
    text = json.dumps(report, indent=2, default=str)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    sys.stdout.write(text + "\n")


def write_reports(report: dict[str, Any], out_dir: Path, name: str) -> dict[str, Path]:
    """Write `<name>.json`, `<name>.md` and `<name>.html`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"{name}.{ext}" for ext in ("json", "md", "html")}
    paths["json"].write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")

    aggregates: dict[str, float] = report.get("aggregates", {})
    latency: dict[str, dict[str, float]] = report.get("latency_ms", {})
    configs: list[dict[str, Any]] = report.get("configs", [])
    rows: list[dict[str, Any]] = report.get("rows", [])
    title = report.get("title", name)

    md = [f"# {title}", "", f"Config: `{json.dumps(report.get('config', {}))}`", ""]
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p><code>{html.escape(json.dumps(report.get('config', {})))}</code></p>",
    ]
    if aggregates:
        table_md, table_html = _table(
            [{"metric": k, "value": v} for k, v in aggregates.items()], ["metric", "value"]
        )
        md += ["## Metrics", "", table_md, ""]
        unit = {k: v for k, v in aggregates.items() if 0.0 <= v <= 1.0}
        sections += ["<h2>Metrics</h2>", bar_chart(unit, "Quality metrics (0-1)", 1.0), table_html]
    if latency:
        lat_rows = [{"stage": s, **v} for s, v in latency.items()]
        table_md, table_html = _table(lat_rows, ["stage", "p50", "p95"])
        md += ["## Latency (ms)", "", table_md, ""]
        totals = [r["latency_ms"]["total"] for r in rows if "total" in r.get("latency_ms", {})]
        sections += [
            "<h2>Latency</h2>",
            bar_chart(
                {f"{s} p95": v["p95"] for s, v in latency.items()}, "p95 latency per stage (ms)"
            ),
            histogram(totals, "Distribution of per-question latency (ms)"),
            table_html,
        ]
    if report.get("skipped"):
        md += ["## Not measured", ""] + [f"- {k}: {v}" for k, v in report["skipped"].items()]
        md.append("")
        sections.append(
            "<h2>Not measured</h2><ul>"
            + "".join(
                f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in report["skipped"].items()
            )
            + "</ul>"
        )
    if configs:
        columns = list(configs[0].keys())
        table_md, table_html = _table(configs, columns)
        quality = report.get("quality_metric", "ndcg@10")
        md += ["## Configurations", "", table_md, ""]
        sections += [
            "<h2>Configurations</h2>",
            scatter(
                [(c["config"], float(c["p95_ms"]), float(c[quality])) for c in configs],
                f"{quality} against p95 query latency",
                "p95 latency (ms)",
                quality,
            ),
            bar_chart(
                {c["config"]: float(c[quality]) for c in configs},
                f"{quality} per configuration",
                1.0,
            ),
            table_html,
        ]
    if report.get("failures"):
        columns = list(report["failures"][0].keys())
        table_md, table_html = _table(report["failures"], columns)
        md += [f"## Failures ({len(report['failures'])})", "", table_md, ""]
        sections += [f"<h2>Failures ({len(report['failures'])})</h2>", table_html]
    failures = [r for r in rows if r.get("answers_expected", True) and r.get("hit@1") == 0.0]
    if failures:
        md += ["## Questions whose first hit was not relevant", ""]
        md += [f"- {r['id']}: {r['question']}" for r in failures]
    paths["md"].write_text("\n".join(md) + "\n", encoding="utf-8")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#111}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
        "font-size:13px}figure{margin:1em 0}figcaption{font-size:12px;color:#555}"
    )
    paths["html"].write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(sections)}</body></html>\n",
        encoding="utf-8",
    )
    return paths
