"""A self-contained HTML page: no scripts, no external assets, everything escaped."""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING

from pipewarden.findings._renderers._interface import Renderer

if TYPE_CHECKING:
    from pipewarden.findings._model import Report

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1d1d1f}
h1{font-size:1.4rem}table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.4rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f6}code,pre{font-family:ui-monospace,monospace;font-size:.85rem}
pre{white-space:pre-wrap;margin:0}.sev{font-weight:600;border-radius:4px;padding:.1rem .4rem}
.critical{background:#b00020;color:#fff}.high{background:#e53935;color:#fff}
.medium{background:#fbc02d}.low{background:#81d4fa}.info{background:#e0e0e0}
.summary span{margin-right:1rem}
"""


class HtmlRenderer(Renderer):
    name = "html"
    suffix = ".html"

    def render(self, report: Report) -> str:
        rows = []
        for f in report.findings:
            label = f.severity.label
            evidence = json.dumps(dict(f.evidence), indent=1, default=str, sort_keys=True)
            refs = ", ".join(f.references)
            rows.append(
                "<tr>"
                f'<td><span class="sev {label}">{label}</span></td>'
                f"<td><code>{escape(f.rule_id)}</code></td>"
                f"<td><code>{escape(f.location.describe())}</code></td>"
                f"<td><strong>{escape(f.title)}</strong><br>{escape(f.message)}"
                f"<br><small>{escape(refs)}</small></td>"
                f"<td><pre>{escape(evidence)}</pre></td>"
                "</tr>"
            )
        counts = "".join(
            f'<span class="sev {label}">{label}: {n}</span>' for label, n in report.counts().items()
        )
        body = (
            "<table><thead><tr><th>severity</th><th>rule</th><th>where</th><th>finding</th>"
            "<th>evidence</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            if rows
            else "<p>No findings.</p>"
        )
        title = f"{report.tool} {report.command} report"
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'\">"
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{escape(title)}</h1>"
            f"<p>{escape(report.tool)} {escape(report.version)} &middot; "
            f"{report.targets} target(s) &middot; {len(report.findings)} finding(s)</p>"
            f'<p class="summary">{counts}</p>{body}</body></html>\n'
        )
