"""The exception tree of pipewarden.

Every error pipewarden raises on purpose derives from `PipewardenError`, so a
caller can catch the whole family with one clause. Each part has one base::

    PipewardenError
    ├── ConfigError             bad settings, options or policy files (exit code 2)
    ├── ReportError             a report cannot be rendered or written
    ├── ScanError               the scan part
    │   ├── ScanInputError      a path to scan does not exist or cannot be read
    │   ├── UnsafeModelError    safe_load refused a file; carries the Report
    │   └── SafeLoadError       safe_load cannot load a format it scanned
    ├── CryptoError             the crypto part: keys, encryption, signatures
    │   └── KeyRingError        a key ring or key file is missing, empty, unsafe or lacks a key
    ├── IntegrityError          bytes do not match what was sealed or signed (tampering, truncation,
    │                           a wrong key); names the artifact or file and what did not match
    ├── StoreError              the artifact store
    │   ├── ArtifactNotFound    no such artifact or version
    │   ├── ArtifactExists      the version exists already; versions are immutable
    │   └── ArtifactRefused     the scan found something at or above the threshold; carries the Report
    ├── IdentityError           the identity part
    │   ├── AuthenticationFailed  a credential (password, one-time code, token) was not accepted
    │   │   ├── LoginThrottled    too many failed logins: refused before any credential was checked
    │   │   └── SecondFactorNeeded  the password was right; the enrolled second factor is needed too
    │   └── AccessDenied        an authenticated principal lacks the permission; carries the Decision
    ├── DatabaseError           the database cannot be reached or refused an operation
    ├── DataError               the data part
    │   ├── DataInputError      a data file is missing, empty, of another format than its name says,
    │   │                       or lacks a column asked for (a label column, say)
    │   └── ContractError       a data contract file is invalid (names the line)
    ├── GuardError              the inference guard: not fitted, or asked to check what it cannot
    │   └── RowsRefused         (pipewarden.guard) a guarded predict refused rows; carries the GuardResult
    ├── MonitorError            the monitor
    │   └── SinkError           an alert notification could not be delivered (it stays in the outbox)
    └── PipelineError           a pipeline file or run: a bad declaration, a stage that failed
        └── GateBlocked         a gate with the block policy stopped a stage; carries the gate's Report

Messages start with the input that caused them, for example
``"model.pt: zip member data.pkl is truncated at byte 4096"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from pipewarden.findings import Report

__all__ = [
    "AccessDenied",
    "ArtifactExists",
    "ArtifactNotFound",
    "ArtifactRefused",
    "AuthenticationFailed",
    "ConfigError",
    "ContractError",
    "CryptoError",
    "DataError",
    "DataInputError",
    "DatabaseError",
    "GateBlocked",
    "GuardError",
    "IdentityError",
    "IntegrityError",
    "KeyRingError",
    "LoginThrottled",
    "MonitorError",
    "PipelineError",
    "PipewardenError",
    "ReportError",
    "SafeLoadError",
    "ScanError",
    "ScanInputError",
    "SecondFactorNeeded",
    "SinkError",
    "StoreError",
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


class CryptoError(PipewardenError):
    """Base of the crypto part's errors: keys, encryption and signatures."""


class KeyRingError(CryptoError):
    """A key ring or key file is missing, empty, readable by others, or lacks the key asked for."""


class IntegrityError(PipewardenError):
    """Bytes do not match what was sealed or signed: tampering, truncation or a wrong key.

    `changes` lists what differs, one line each, when there is more than one thing to name
    (for example every file of a signed model folder that was modified, added or removed).
    """

    def __init__(self, message: str, *, changes: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.changes = changes


class StoreError(PipewardenError):
    """Base of the artifact store's errors."""


class ArtifactNotFound(StoreError):
    """No artifact or version of that name is in the store."""


class ArtifactExists(StoreError):
    """The version is in the store already; versions are immutable once written."""


class ArtifactRefused(StoreError):
    """The store refused a model file: the scan found something at or above the threshold."""

    def __init__(self, message: str, *, report: Report) -> None:
        super().__init__(message)
        self.report = report


class IdentityError(PipewardenError):
    """Base of the identity part's errors."""


class AuthenticationFailed(IdentityError):
    """A credential was not accepted. The message never says which part was wrong."""


class LoginThrottled(AuthenticationFailed):
    """Too many failed logins for this account or origin: refused, unchecked, until `retry_after`.

    Known and unknown account names are throttled alike, so this says nothing about whether one exists.
    """

    def __init__(self, message: str, *, retry_after: datetime) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SecondFactorNeeded(AuthenticationFailed):
    """The password was right, and this also needs the account's second factor, which was not given.

    Raised only after the password checked out, so it says nothing to someone
    who does not know it; a caller on a terminal asks for a code and tries again.
    """


class AccessDenied(IdentityError):
    """The principal is authenticated but not allowed this action; `decision` says which rule decided."""

    def __init__(self, message: str, *, decision: object = None) -> None:
        super().__init__(message)
        self.decision = decision


class DatabaseError(PipewardenError):
    """The database cannot be reached, or refused an operation; names the database (never its password)."""


class DataError(PipewardenError):
    """Base of the data part's errors."""


class DataInputError(DataError):
    """A data file cannot be read as data: missing, empty, not the format its name says, or lacking a
    column that was asked for. Names the file and what is wrong."""


class ContractError(DataError):
    """A data contract is invalid: a bad YAML file (names the line), an unknown check, a wrong type."""


class GuardError(PipewardenError):
    """The inference guard cannot do what was asked: not fitted yet, or a batch of the wrong shape."""


class MonitorError(PipewardenError):
    """The monitor: a rule, sink or alert operation that cannot be done."""


class SinkError(MonitorError):
    """An alert notification could not be delivered; the outbox keeps it and tries again."""


class PipelineError(PipewardenError):
    """A pipeline cannot run as declared: a bad pipeline file (names the field), a cycle, a stage that
    failed, an output its stage did not write."""


class GateBlocked(PipelineError):
    """A gate whose policy is ``block`` stopped a stage; `report` holds the gate's findings."""

    def __init__(self, message: str, *, report: Report | None = None) -> None:
        super().__init__(message)
        self.report = report
