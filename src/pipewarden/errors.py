"""The exception tree of pipewarden.

Every error pipewarden raises on purpose derives from `PipewardenError`, so a
caller can catch the whole family with one clause. Each part has one base::

    PipewardenError
    ├── ConfigError             bad settings, options or policy files (exit code 2)
    ├── ReportError             a report cannot be rendered or written
    └── ScanError               the scan part
        ├── ScanInputError      a path to scan does not exist or cannot be read
        ├── UnsafeModelError    safe_load refused a file; carries the Report
        └── SafeLoadError       safe_load cannot load a format it scanned

Messages start with the input that caused them, for example
``"model.pt: zip member data.pkl is truncated at byte 4096"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipewarden.findings import Report

__all__ = [
    "ConfigError",
    "PipewardenError",
    "ReportError",
    "SafeLoadError",
    "ScanError",
    "ScanInputError",
    "UnsafeModelError",
]


class PipewardenError(Exception):
    """Root of every error pipewarden raises on purpose."""


class ConfigError(PipewardenError):
    """A setting, option or policy file is invalid."""


class ReportError(PipewardenError):
    """A report cannot be rendered or written."""


class ScanError(PipewardenError):
    """Base of the scan part's errors."""


class ScanInputError(ScanError):
    """A path given to the scanner does not exist or cannot be read."""


class SafeLoadError(ScanError):
    """`safe_load` cannot load this file (format it does not load, or a load error)."""


class UnsafeModelError(ScanError):
    """`safe_load` refused a file: the scan found something at or above the threshold."""

    def __init__(self, message: str, *, report: Report) -> None:
        super().__init__(message)
        self.report = report
