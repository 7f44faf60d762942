"""JSON Lines: one JSON object per line (https://jsonlines.org), read line by line in chunks.

Values keep their JSON types. The non-standard constants ``NaN``, ``Infinity`` and
``-Infinity`` that Python's parser accepts are kept as the text the user wrote,
so a contract sees them (and reports NaN/Inf where a number is expected) instead
of a float that looks like a missing value. A nested value (list, object) is kept
as its JSON text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipewarden.data._readers._interface import RawChunk, Reader, TextWriter
from pipewarden.errors import DataInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["JsonlReader", "JsonlWriter"]

_WHITESPACE = b" \t\r\n"


def _as_written(constant: str) -> str:
    return constant


def _frame(rows: list[dict[str, Any]], columns: dict[str, None]) -> pd.DataFrame:
    import pandas as pd

    data = {name: [row.get(name) for row in rows] for name in columns}
    return pd.DataFrame(data, columns=list(columns))


class JsonlReader(Reader):
    name = "jsonl"
    suffixes = (".jsonl", ".ndjson")

    def sniff(self, head: bytes) -> bool:
        text = head.removeprefix(b"\xef\xbb\xbf").lstrip(_WHITESPACE)
        return text.startswith(b"{")

    def chunks(
        self, path: Path, *, source: str, chunk_rows: int, numeric: Collection[str] = ()
    ) -> Iterator[RawChunk]:
        decoder = json.JSONDecoder(parse_constant=_as_written)
        rows: list[dict[str, Any]] = []
        columns: dict[str, None] = {}  # every key seen so far, in order of first appearance
        try:
            with path.open("r", encoding="utf-8-sig", newline="\n") as fh:
                for number, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    try:
                        value = decoder.decode(line)
                    except json.JSONDecodeError as exc:
                        raise DataInputError(
                            f"{source}: line {number} is not valid JSON ({exc.msg} at column {exc.colno})"
                        ) from exc
                    if not isinstance(value, dict):
                        raise DataInputError(
                            f"{source}: line {number} is a JSON {type(value).__name__}, not an object"
                        )
                    for key, item in value.items():
                        if isinstance(item, dict | list):
                            value[key] = json.dumps(item, ensure_ascii=False)
                        columns.setdefault(key, None)
                    rows.append(value)
                    if len(rows) == chunk_rows:
                        yield RawChunk(frame=_frame(rows, columns))
                        rows = []
        except UnicodeDecodeError as exc:
            raise DataInputError(f"{source}: not UTF-8 text at byte {exc.start}") from exc
        if rows:
            yield RawChunk(frame=_frame(rows, columns))


def _plain(value: Any) -> Any:
    """A JSON-writable Python value (a missing float becomes null)."""
    if value is None:
        return None
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class JsonlWriter(TextWriter):
    name = "jsonl"
    suffixes = (".jsonl", ".ndjson")

    def write(self, frame: pd.DataFrame) -> None:
        fh = self._open()
        names = [str(c) for c in frame.columns]
        lines = [
            json.dumps(dict(zip(names, map(_plain, row), strict=True)), ensure_ascii=False, allow_nan=True)
            for row in frame.itertuples(index=False, name=None)
        ]
        if lines:
            fh.write("\n".join(lines) + "\n")
