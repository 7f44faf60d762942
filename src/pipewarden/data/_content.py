"""The checks every text cell gets, whatever the contract says: spreadsheet formulas, control characters
and NUL bytes, oversized text; and blank cells. Each finds the few cells that could fail from their bytes
(numpy) before a regular expression (RE2, linear time) looks at those alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipewarden.data._text import ByteView, as_mask

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["NAN_OR_INF", "PLAIN_NUMBER", "Hit", "blank", "content_hits"]

# OWASP "CSV Injection": a cell a spreadsheet may run as a formula starts with = + - @, or with a tab or
# carriage return (CWE-1236). Leading whitespace does not stop a spreadsheet either.
_FORMULA_LEAD = ["=", "+", "-", "@"]
PLAIN_NUMBER = r"^\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*$"
NAN_OR_INF = r"^\s*[+-]?(?:(?i)nan|inf|infinity)\s*$"
# C0 controls but tab, newline and carriage return; DEL; and the bidirectional overrides and isolates
# that make text display other than it reads ("Trojan Source", CVE-2021-42574).
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{202a}-\x{202e}\x{2066}-\x{2069}]"


@dataclass(frozen=True, slots=True, eq=False)
class Hit:
    """One rule over one column of a frame: the rows it rejects and why."""

    rule_id: str
    column: str | None
    mask: np.ndarray
    reason: str
    values: pd.Series | None = None


# First bytes after which a cell may be a formula: = + - @, tab, CR, ASCII whitespace, and any non-ASCII
# lead byte (a Unicode space such as U+00A0 may come before the =).
_LEAD_BYTES = frozenset(b"=+-@\t\r \n\x0b\x0c")


def _candidates(first: np.ndarray, lead: frozenset[int] = _LEAD_BYTES) -> np.ndarray:
    import numpy as np

    table = np.zeros(256, dtype=bool)
    table[list(lead)] = True
    table[0x80:] = True
    result: np.ndarray = table[first]
    return result


_SPACE_BYTES = frozenset(b" \t\r\n\x0b\x0c")


def _formula(text: Any) -> np.ndarray:
    """Cells a spreadsheet may run as a formula (exact test; call it on candidates only)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    first = pc.utf8_slice_codeunits(text, 0, 1)
    lead = pc.is_in(first, value_set=pa.array([*_FORMULA_LEAD, "\t", "\r"], type=text.type))
    spaced = pc.and_(
        pc.utf8_is_space(first),
        pc.is_in(
            pc.utf8_slice_codeunits(pc.utf8_ltrim_whitespace(text), 0, 1),
            value_set=pa.array(_FORMULA_LEAD, type=text.type),
        ),
    )
    found = as_mask(pc.or_(lead, spaced))
    if found.any():  # a plain number such as -3.5 is no formula: a spreadsheet shows it as a number
        found &= ~as_mask(pc.match_substring_regex(text, PLAIN_NUMBER)) & ~as_mask(
            pc.match_substring_regex(text, NAN_OR_INF)
        )
    return found


def content_hits(
    name: str,
    text: Any,
    series: pd.Series | None,
    cap: int,
    only: np.ndarray | None,
    *,
    numeric: bool = False,
) -> list[Hit]:
    """The always-on checks of a text column, whatever the contract says. `only` limits the formula and
    control-character checks to some cells (in a number column, the cells that are not numbers); in a
    number column (`numeric`) it limits the length check too: a cell that is a number is checked as a
    number, whichever way it was read."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    hits: list[Hit] = []
    view = ByteView(text)
    rows = len(view.lengths)
    maybe = _candidates(view.first_bytes())
    if only is not None:
        maybe &= only
    candidates = np.flatnonzero(maybe)
    if candidates.size:
        formula = np.zeros(rows, dtype=bool)
        formula[candidates] = _formula(view.text.take(pa.array(candidates)))
        if formula.any():
            hits.append(
                Hit("PW-DATA-120", name, formula, f"{name}: starts like a spreadsheet formula", series)
            )
    data = view.data if only is None else ByteView(view.text.filter(pa.array(only))).data
    # Only if a control byte, DEL, or the lead byte of U+202A..U+2069 (0xE2) occurs anywhere is the regex run;
    # printable ASCII (every byte in 0x20..0x7E, two quick reductions) holds none of them.
    if (
        data.size
        and (int(data.min()) < 0x20 or int(data.max()) >= 0x7F)
        and (
            ((data < 0x20) & (data != 0x09) & (data != 0x0A) & (data != 0x0D)).any()
            or ((data == 0x7F) | (data == 0xE2)).any()
        )
    ):
        control = as_mask(pc.match_substring_regex(view.text, _CONTROL))
        if only is not None:
            control &= only
        if control.any():
            hits.append(Hit("PW-DATA-121", name, control, f"{name}: control characters or NUL bytes", series))
    big = view.lengths > cap
    if numeric and only is not None:
        big &= only
    if big.any():
        hits.append(Hit("PW-DATA-122", name, big, f"{name}: text longer than {cap} bytes", series))
    return hits


def blank(text: Any) -> np.ndarray:
    """Cells that hold only whitespace (a missing value where numbers, booleans or dates are expected)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    view = ByteView(text)
    maybe = np.flatnonzero(_candidates(view.first_bytes(), _SPACE_BYTES))
    found: np.ndarray = np.asarray(view.lengths == 0, dtype=bool)
    if maybe.size:
        some = view.text.take(pa.array(maybe))
        found[maybe] = as_mask(pc.equal(pc.utf8_trim_whitespace(some), pa.scalar("", some.type)))
    return found
