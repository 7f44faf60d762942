"""Model-file scanning: find code that runs on load, by static analysis, failing closed.

    >>> from pipewarden.scan import scan_path
    >>> report = scan_path("models/")
    >>> print(report.render("text"))

`safe_load(path)` scans a pickle, joblib or PyTorch file and loads the same
bytes with a restricted unpickler.
"""

from __future__ import annotations

from pipewarden.scan._api import scan_bytes, scan_path
from pipewarden.scan._dask import scan_path_dask
from pipewarden.scan._engine import MODEL_SUFFIXES
from pipewarden.scan._limits import ScanLimits
from pipewarden.scan._policy import GlobalVerdict, ScanPolicy, Verdict
from pipewarden.scan._rules import RULES, Rule
from pipewarden.scan._safe_load import safe_load

__all__ = [
    "MODEL_SUFFIXES",
    "RULES",
    "GlobalVerdict",
    "Rule",
    "ScanLimits",
    "ScanPolicy",
    "Verdict",
    "safe_load",
    "scan_bytes",
    "scan_path",
    "scan_path_dask",
]
