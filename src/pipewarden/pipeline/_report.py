"""The run report: a page a person reads in a minute (text on the terminal, a self-contained HTML page
with its charts drawn as inline SVG, no script and nothing fetched), and JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from pipewarden.crypto import write_atomic

if TYPE_CHECKING:
    from pipewarden.pipeline._runner import RunResult

__all__ = ["render_html", "render_text", "write_reports"]

_SEVERITIES = ("critical", "high", "medium", "low", "info")
_COLOURS = {
    "critical": "#7f1d1d",
    "high": "#b91c1c",
    "medium": "#b45309",
    "low": "#1d4ed8",
    "info": "#6b7280",
}
_GUARD_CAP = 5.0
_OUTCOME_MARK = {
    "passed": "✔",
    "blocked": "■",
    "denied": "⊘",
    "tampered": "✖",
    "failed": "✖",
    "skipped": "…",
}


def render_text(result: RunResult) -> str:
    lines = [f"pipeline {result.pipeline}  run {result.run_id}  ({result.seconds:.1f} s)"]
    lines += [f"  {note}" for note in result.notes]
    for stage in result.stages:
        verdict = "as expected" if stage.met else "NOT AS EXPECTED"
        expected = "" if stage.expected == "passed" else f" (expected {stage.expected})"
        lines.append(
            f"{_OUTCOME_MARK.get(stage.outcome, '?')} {stage.name:<22} {stage.outcome:<8}{expected}"
            f"  {verdict}"
        )
        for gate in stage.gates:
            line = f"    gate {gate.gate:<12} {gate.verdict:<11} {gate.message}"
            if gate.missed:
                line += f"  MISSED planted rows {list(gate.missed)[:10]}"
            elif gate.missed is not None:
                line += "  (every planted row caught)"
            lines.append(line)
        if stage.reason:
            lines.append(f"    {stage.reason[:300]}")
        for ref in stage.stored:
            lines.append(f"    stored {ref}")
        for key, value in stage.facts.items():
            lines.append(f"    {key}: {value}")
    if result.alerts:
        lines.append("alerts raised:")
        for alert in result.alerts:
            lines.append(
                f"  {alert['severity']:<8} {alert['rule_id']}  {alert['title']}"
                f"  ({alert['detections']} detections)"
            )
    for rule in result.missing_alerts:
        lines.append(f"  EXPECTED ALERT NOT RAISED: {rule}")
    met = sum(1 for s in result.stages if s.met)
    lines.append(
        f"{'PASSED' if result.passed else 'FAILED'}: {met} of {len(result.stages)} stages as expected, "
        f"{len(result.alerts)} alerts raised, {len(result.expected_alerts) - len(result.missing_alerts)} of "
        f"{len(result.expected_alerts)} expected alerts"
    )
    return "\n".join(lines)


# --- charts -------------------------------------------------------------------------------------------------


def _findings_chart(result: RunResult) -> str:
    rows = []
    for stage in result.stages:
        counts = dict.fromkeys(_SEVERITIES, 0)
        for gate in stage.gates:
            for severity, n in gate.report.counts().items():
                if severity in counts:
                    counts[severity] += n
        rows.append((stage.name, counts))
    top = max([sum(c[s] for s in _SEVERITIES if s != "info") for _, c in rows] + [1])
    width, bar_h, left = 660, 22, 200
    height = bar_h * len(rows) + 40
    parts = [f'<svg role="img" aria-labelledby="fc-title" viewBox="0 0 {width} {height}" width="100%">']
    parts.append('<title id="fc-title">Findings at low severity or above, per stage, by severity</title>')
    for i, (name, counts) in enumerate(rows):
        y = 10 + i * bar_h
        parts.append(
            f'<text x="{left - 8}" y="{y + 15}" text-anchor="end" font-size="13">{escape(name)}</text>'
        )
        x = float(left)
        for severity in _SEVERITIES[:-1]:
            n = counts[severity]
            if not n:
                continue
            w = (width - left - 60) * n / top
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h - 6}" '
                f'fill="{_COLOURS[severity]}">'
                f"<title>{escape(name)}: {n} {severity}</title></rect>"
            )
            x += w
        total = sum(counts[s] for s in _SEVERITIES[:-1])
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}" font-size="12">{total}</text>')
    legend_y = height - 10
    for j, severity in enumerate(_SEVERITIES[:-1]):
        parts.append(
            f'<rect x="{left + j * 110}" y="{legend_y - 10}" width="10" height="10" '
            f'fill="{_COLOURS[severity]}"/>'
            f'<text x="{left + j * 110 + 14}" y="{legend_y}" font-size="12">{severity}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _histogram(title: str, values: Sequence[float], ident: str) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    bins = 20
    span = (high - low) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(int((v - low) / span * bins), bins - 1)] += 1
    width, height, top = 300, 120, max(counts)
    bar_w = (width - 20) / bins
    parts = [f'<svg role="img" aria-labelledby="{ident}" viewBox="0 0 {width} {height + 30}" width="300">']
    parts.append(
        f'<title id="{ident}">{escape(title)}: {len(values)} scores from {low:.3g} to {high:.3g}</title>'
    )
    for i, n in enumerate(counts):
        h = height * n / top
        parts.append(
            f'<rect x="{10 + i * bar_w:.1f}" y="{height - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
            f'fill="#2563eb"><title>{n} rows from {low + span * i / bins:.3g}</title></rect>'
        )
    parts.append(f'<text x="10" y="{height + 14}" font-size="11">{low:.3g}</text>')
    parts.append(
        f'<text x="{width - 10}" y="{height + 14}" font-size="11" text-anchor="end">{high:.3g}</text>'
    )
    parts.append(
        f'<text x="{width / 2}" y="{height + 28}" font-size="12" text-anchor="middle">{escape(title)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _timeline(result: RunResult) -> str:
    if not result.alerts:
        return ""
    start = result.started.timestamp()
    span = max(result.seconds, 1.0)
    width, row_h, left = 640, 24, 10
    height = row_h * len(result.alerts) + 36
    parts = [f'<svg role="img" aria-labelledby="tl-title" viewBox="0 0 {width} {height}" width="100%">']
    parts.append('<title id="tl-title">Alerts raised during the run, on the run\'s time axis</title>')
    parts.append(
        f'<line x1="{left}" y1="{height - 22}" x2="{width - 10}" y2="{height - 22}" stroke="#374151"/>'
    )
    parts.append(f'<text x="{left}" y="{height - 6}" font-size="11">0 s</text>')
    parts.append(
        f'<text x="{width - 10}" y="{height - 6}" font-size="11" text-anchor="end">{span:.1f} s</text>'
    )
    for i, alert in enumerate(result.alerts):
        seen = datetime.fromisoformat(alert["first_seen"])
        if seen.tzinfo is None:
            seen = seen.replace(tzinfo=result.started.tzinfo)
        x = left + (width - 200) * min(max((seen.timestamp() - start) / span, 0.0), 1.0)
        y = 14 + i * row_h
        colour = _COLOURS.get(alert["severity"], "#6b7280")
        parts.append(f'<circle cx="{x:.1f}" cy="{y}" r="6" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + 10:.1f}" y="{y + 4}" font-size="12">{escape(alert["rule_id"])} '
            f"{escape(alert['title'])} ({escape(alert['severity'])})</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _lineage(result: RunResult) -> str:
    """Stages left to right in run order; each stored artifact under its stage, joined to the stage that
    read it."""
    stages = [s for s in result.stages if s.stored or s.outcome != "skipped"]
    if not stages:
        return ""
    col_w, row_h = 200, 46
    depth = max([len(s.stored) for s in stages] + [1])
    width, height = col_w * len(stages) + 20, row_h * (depth + 1) + 30
    parts = [f'<svg role="img" aria-labelledby="lg-title" viewBox="0 0 {width} {height}" width="100%">']
    parts.append('<title id="lg-title">Lineage: what each stage stored, and which stage read it</title>')
    parts.append(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>'
    )
    where: dict[str, tuple[float, float]] = {}
    for i, stage in enumerate(stages):
        x = 10 + i * col_w
        colour = "#166534" if stage.outcome == "passed" else "#b91c1c"
        parts.append(
            f'<rect x="{x}" y="6" width="{col_w - 30}" height="30" rx="6" fill="#f3f4f6" stroke="{colour}"/>'
            f'<text x="{x + 8}" y="26" font-size="12">{escape(stage.name)} ({escape(stage.outcome)})</text>'
        )
        for j, ref in enumerate(stage.stored):
            y = 6 + (j + 1) * row_h
            parts.append(
                f'<rect x="{x}" y="{y}" width="{col_w - 30}" height="30" rx="4" fill="#eff6ff" '
                'stroke="#1d4ed8"/>'
                f'<text x="{x + 8}" y="{y + 19}" font-size="11">{escape(ref[-30:])}</text>'
                f'<line x1="{x + 20}" y1="36" x2="{x + 20}" y2="{y}" stroke="#6b7280" '
                'marker-end="url(#arrow)"/>'
            )
            where[ref.rsplit("@", 1)[0]] = (x + col_w - 30, y + 15)
    for i, stage in enumerate(stages):
        x = 10 + i * col_w
        for ref in stage.read:
            read = ref.rsplit("@", 1)[0]
            if read in where:
                sx, sy = where[read]
                parts.append(
                    f'<path d="M{sx},{sy} C{sx + 20},{sy} {x - 20},21 {x},21" fill="none" stroke="#6b7280" '
                    'marker-end="url(#arrow)"/>'
                )
    parts.append("</svg>")
    return "".join(parts)


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("pipewarden.pipeline", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def render_html(result: RunResult) -> str:
    histograms: list[str] = []
    for stage in result.stages:
        for gate in stage.gates:
            for detector, values in gate.scores.items():
                shown = values
                if gate.type == "guard":  # far-off requests score in the hundreds: the last bin holds them
                    shown = tuple(min(v, _GUARD_CAP) for v in values)
                    detector = f"{detector} (at most {_GUARD_CAP:g})"
                histograms.append(
                    _histogram(f"{stage.name} / {gate.gate}: {detector}", shown, f"h{len(histograms)}")
                )
    quarantined = [
        (stage.name, gate)
        for stage in result.stages
        for gate in stage.gates
        if gate.quarantined or gate.quarantine_file
    ]
    return (
        _environment()
        .get_template("run.html.j2")
        .render(
            result=result,
            findings_chart=_findings_chart(result),
            histograms=[h for h in histograms if h],
            quarantined=quarantined,
            timeline=_timeline(result),
            lineage=_lineage(result),
            mark=_OUTCOME_MARK,
        )
    )


def write_reports(result: RunResult, folder: Path | None = None) -> dict[str, Path]:
    """Write report.html, report.json and report.txt into the run's folder; returns their paths."""
    target = folder or result.report_dir
    target.mkdir(parents=True, exist_ok=True)
    paths = {"html": target / "report.html", "json": target / "report.json", "text": target / "report.txt"}
    write_atomic(paths["html"], render_html(result).encode(), mode=0o600)
    doc: Any = result.to_dict()
    write_atomic(paths["json"], (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), mode=0o600)
    write_atomic(paths["text"], (render_text(result) + "\n").encode(), mode=0o600)
    return paths
