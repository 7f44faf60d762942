"""Data integrity: contracts learned from trusted data and checked on every new batch, and the
poisoning screen (`screen`, findings PW-DATA-2xx) for training sets.

`profile` learns a `Contract` from a `Table`; `check` validates a file or table
against it, chunk by chunk, rejecting rows that break it (and rows that are
dangerous whatever it says: formula injection, control characters, oversized
text, NaN/Inf) into a quarantine file, with findings PW-DATA-1xx.

>>> from pipewarden.data import check, profile, read_table
>>> contract = profile(read_table("train.csv", label="y"))  # doctest: +SKIP
>>> result = check("batch.csv", contract=contract, quarantine="rejected.csv")  # doctest: +SKIP
"""

from __future__ import annotations

from pipewarden.data._check import CheckResult, check
from pipewarden.data._contract import DTYPES, ColumnSpec, Contract
from pipewarden.data._dask import check_dask, screen_file_dask
from pipewarden.data._profile import profile
from pipewarden.data._quarantine import REASONS_COLUMN, ROW_COLUMN
from pipewarden.data._readers import FORMATS
from pipewarden.data._rules import RULES
from pipewarden.data._screen import DETECTORS, SCREEN_RULES, ScreenResult, screen, screen_file
from pipewarden.data._table import Table, TableChunk, iter_table, read_table, table_from_frame

__all__ = [
    "DETECTORS",
    "DTYPES",
    "FORMATS",
    "REASONS_COLUMN",
    "ROW_COLUMN",
    "RULES",
    "SCREEN_RULES",
    "CheckResult",
    "ColumnSpec",
    "Contract",
    "ScreenResult",
    "Table",
    "TableChunk",
    "check",
    "check_dask",
    "iter_table",
    "profile",
    "read_table",
    "screen",
    "screen_file",
    "screen_file_dask",
    "table_from_frame",
]
