"""Jupyter notebooks as text to scan for secrets: each cell's source, each output's text and the
metadata, never run.

A notebook is JSON (nbformat 4; the older nbformat 3 layout with ``worksheets`` is read too). Outputs
are where secrets hide that nobody reads again: a printed config, an exception whose message holds a
connection string, a repr of a client object. So every textual output is read: stream text,
``execute_result`` and ``display_data`` data in a textual media type (``text/*``, JSON, JavaScript), and
an error's value and traceback (with terminal colour codes removed). Images and other binary media are
not text and are not read. The notebook's metadata and each cell's are read as JSON text (indented, one
key a line): papermill writes the parameters a notebook was run with there
(``metadata.papermill.parameters``), and extensions keep connection settings in it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["NotebookPart", "language_suffix", "notebook_parts"]

# Terminal colour and cursor codes (ECMA-48 CSI sequences) that IPython writes into tracebacks.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# The keyword detector picks its assignment patterns by file suffix; a code cell is read with the
# patterns of its kernel's language.
_SUFFIXES = {
    "python": ".py",
    "javascript": ".js",
    "typescript": ".js",
    "java": ".java",
    "go": ".go",
    "c++": ".cpp",
    "c#": ".cs",
    "swift": ".swift",
}
# nbformat 3 kept each media type under its own key of an output.
_V3_TEXT_KEYS = ("text", "html", "latex", "json", "javascript", "markdown")


@dataclass(frozen=True, slots=True)
class NotebookPart:
    """One piece of a notebook's text: a cell's source (`output` None), one text of an output, or
    metadata as JSON (`metadata` true; `cell` None for the notebook's own).

    `cell` and `output` count from 1, as a person counts cells down the page.
    """

    cell: int | None
    output: int | None
    code: bool
    lines: tuple[str, ...]
    # For an output, which of its texts: a media type (``"text/plain"``), ``"text"`` (a stream),
    # ``"evalue"`` or ``"traceback"``.
    media: str | None = None
    metadata: bool = False

    @property
    def member(self) -> str:
        """Where in the notebook: ``"cell 3"``, ``"cell 3 output 1"``, ``"cell 3 metadata"`` or
        ``"metadata"``."""
        if self.cell is None:
            return "metadata"
        if self.metadata:
            return f"cell {self.cell} metadata"
        return f"cell {self.cell}" if self.output is None else f"cell {self.cell} output {self.output}"

    @property
    def size(self) -> int:
        """Bytes of text this part puts before the detectors (UTF-8, a newline between lines)."""
        return sum(len(line.encode("utf-8", errors="replace")) + 1 for line in self.lines)


def _metadata(value: Any, cell: int | None) -> list[NotebookPart]:
    """Metadata as indented JSON, one key a line, sorted, so a line names one setting; none when empty."""
    if value is None or value == {}:
        return []
    text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)
    return [NotebookPart(cell, None, False, tuple(text.splitlines()), metadata=True)]


def _text(value: Any, what: str) -> str:
    """A multi-line string of a notebook: one string or a list of strings (nbformat stores both)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(piece, str) for piece in value):
        return "".join(value)
    raise ValueError(f"{what} is not text")


def _output_texts(output: Mapping[str, Any], what: str) -> Iterator[tuple[str, str]]:
    """(what kind of text, the text) for each textual piece of one output."""
    data = output.get("data")
    if isinstance(data, Mapping):
        for media_type in sorted(data):
            value = data[media_type]
            if media_type.endswith(("/json", "+json")) and not isinstance(value, str):
                # nbformat 4 keeps a JSON media type as the JSON value itself.
                yield media_type, json.dumps(value, sort_keys=True)
            elif media_type.startswith("text/") or media_type.endswith("javascript"):
                yield media_type, _text(value, f"{what} {media_type}")
    elif data is not None:
        raise ValueError(f"{what} data is not an object")
    for key in _V3_TEXT_KEYS:
        if key in output:
            yield key, _text(output[key], f"{what} {key}")
    if "evalue" in output:
        yield "evalue", _ANSI.sub("", _text(output["evalue"], f"{what} evalue"))
    if "traceback" in output:
        traceback = output["traceback"]
        if not isinstance(traceback, list) or not all(isinstance(line, str) for line in traceback):
            raise ValueError(f"{what} traceback is not a list of text")
        yield "traceback", _ANSI.sub("", "\n".join(traceback))


def _cells(doc: Mapping[str, Any]) -> list[Any]:
    if "cells" in doc:
        cells = doc["cells"]
    elif isinstance(doc.get("worksheets"), list):
        cells = [
            c for sheet in doc["worksheets"] if isinstance(sheet, Mapping) for c in sheet.get("cells", [])
        ]
    else:
        raise ValueError("no cells")
    if not isinstance(cells, list):
        raise ValueError("cells is not a list")
    return cells


def language_suffix(doc: Mapping[str, Any]) -> str:
    """The file suffix whose keyword patterns fit the kernel's language (``".py"``), or ``""``."""
    metadata = doc.get("metadata")
    if not isinstance(metadata, Mapping):
        return ".py"
    for key, field in (("kernelspec", "language"), ("language_info", "name")):
        section = metadata.get(key)
        if isinstance(section, Mapping) and isinstance(section.get(field), str):
            return _SUFFIXES.get(section[field].strip().lower(), "")
    return ".py"


def notebook_parts(text: str) -> tuple[list[NotebookPart], str]:
    """The text parts of a notebook and its language's suffix (see `language_suffix`).

    Raise ValueError naming what is wrong when `text` is not a notebook a person could open: not
    JSON, no list of cells, a cell or output of the wrong shape. The caller reports that and reads the
    file as plain text instead, so a damaged notebook is still scanned.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    if not isinstance(doc, Mapping):
        raise ValueError("not a JSON object")
    try:
        return _parts(doc), language_suffix(doc)
    except RecursionError:
        # Writing a deep value back as JSON (metadata, a JSON output) can go deeper than reading it did.
        raise ValueError("JSON nested too deeply") from None


def _parts(doc: Mapping[str, Any]) -> list[NotebookPart]:
    parts = _metadata(doc.get("metadata"), None)
    for number, cell in enumerate(_cells(doc), 1):
        what = f"cell {number}"
        if not isinstance(cell, Mapping):
            raise ValueError(f"{what} is not an object")
        code = cell.get("cell_type") == "code"
        source = cell.get("source", cell.get("input", ""))
        parts.append(NotebookPart(number, None, code, tuple(_text(source, f"{what} source").splitlines())))
        parts.extend(_metadata(cell.get("metadata"), number))
        outputs = cell.get("outputs", [])
        if not isinstance(outputs, list):
            raise ValueError(f"{what} outputs is not a list")
        for index, output in enumerate(outputs, 1):
            where = f"{what} output {index}"
            if not isinstance(output, Mapping):
                raise ValueError(f"{where} is not an object")
            parts.extend(
                NotebookPart(number, index, False, tuple(piece.splitlines()), media)
                for media, piece in _output_texts(output, where)
                if piece
            )
    return parts
