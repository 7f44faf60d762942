"""Text for people: a rich table on a terminal, plain text when piped."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipewarden.findings._renderers._interface import Renderer

if TYPE_CHECKING:
    from pipewarden.findings._model import Report

_STYLE = {
    "critical": "bold white on red",
    "high": "bold red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


class TextRenderer(Renderer):
    name = "text"
    suffix = ".txt"

    def __init__(self, *, color: bool = False, width: int = 120) -> None:
        self._color = color
        self._width = width

    def render(self, report: Report) -> str:
        buffer = io.StringIO()
        console = Console(
            file=buffer,
            width=self._width,
            color_system="standard" if self._color else None,
            force_terminal=self._color,
            highlight=False,
            soft_wrap=False,
        )
        if report.findings:
            table = Table(show_lines=False, expand=False, header_style="bold")
            table.add_column("severity", no_wrap=True)
            table.add_column("rule", no_wrap=True)
            table.add_column("where", overflow="fold")
            table.add_column("finding", overflow="fold")
            for finding in report.findings:
                label = finding.severity.label
                table.add_row(
                    f"[{_STYLE[label]}]{label}[/]",
                    escape(finding.rule_id),
                    escape(finding.location.describe()),
                    escape(f"{finding.title}: {finding.message}"),
                )
            console.print(table)
        counts = ", ".join(f"{n} {label}" for label, n in report.counts().items() if n)
        worst = report.max_severity
        summary = f"{report.command}: {report.targets} target(s), " + (
            f"{len(report.findings)} finding(s) ({counts}); worst: {worst.label}"
            if worst is not None
            else "no findings"
        )
        console.print(escape(summary))
        return buffer.getvalue()
