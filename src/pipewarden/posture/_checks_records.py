"""What the deployment records of its own upkeep: the last `audit verify` and the dependency database's age.

Every `pipewarden audit verify` is one ``audit.verify`` event on ``audit:log`` in the audit log itself:
outcome ``allowed`` when the log verified, ``error`` when it did not (or could not be checked), and
``denied`` when the caller was not allowed to run it (which verified nothing). Events sent from
elsewhere (`pipewarden monitor ingest`) carry ``ingested_by`` and are the sender's word, so they never
count. The records are found by their canonical JSON (``"action":"audit.verify"``) newest first,
without reading the whole log.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import ColumnElement, LargeBinary, TextClause, bindparam, func, literal, select, text

from pipewarden.db import Database, audit_records
from pipewarden.errors import PipewardenError
from pipewarden.events import Event
from pipewarden.findings import Location
from pipewarden.posture._catalogue import CheckResult, PostureBaseline, finding
from pipewarden.posture._guard import error_text, logged

__all__ = ["check_audit_verify", "check_dependency_db", "last_audit_verify"]

_NEEDLE = b'"action":"audit.verify"'
_PAGE = 200


def _mentions_verify(db: Database) -> ColumnElement[bool] | TextClause:
    if db.dialect == "postgresql":
        return text("position(:needle in audit_records.body) > 0").bindparams(
            bindparam("needle", _NEEDLE, type_=LargeBinary())
        )
    return func.instr(audit_records.c.body, literal(_NEEDLE, LargeBinary())) > 0


def _counts(event: Event) -> bool:
    return (
        event.action == "audit.verify"
        and event.resource == "audit:log"
        and event.outcome in {"allowed", "error"}
        and "ingested_by" not in event.attributes
    )


def last_audit_verify(db: Database) -> tuple[int, Event] | None:
    """The newest `audit verify` that ran (passed or failed), by position in the log, or None.

    `pipewarden.errors.ConfigError` if a record it reads is not an event (a damaged log).
    """
    c = audit_records.c
    before: int | None = None
    with db.transaction(write=False) as conn:
        while True:
            query = select(c.seq, c.body).where(_mentions_verify(db)).order_by(c.seq.desc()).limit(_PAGE)
            if before is not None:
                query = query.where(c.seq < before)
            rows = conn.execute(query).all()
            for seq, body in rows:
                event = Event.from_json(bytes(body), source=f"audit record {seq}")
                if _counts(event):
                    return int(seq), event
            if len(rows) < _PAGE:
                return None
            before = int(rows[-1][0])


def check_audit_verify(
    root: Path, database: Callable[[], Database], *, now: datetime, baseline: PostureBaseline
) -> CheckResult:
    """PW-POST-140 (no passing verify lately), 141 (the last one failed), 149 (cannot tell)."""
    place = Location(path=str(root), member="audit:log")
    try:
        found = last_audit_verify(database())
    except Exception as exc:  # unreachable, a URL that does not parse, a damaged record: not determinable
        return CheckResult(
            "audit-verify",
            (
                finding(
                    "PW-POST-149",
                    f"the audit log cannot be read: {logged('audit-verify', exc)}",
                    location=place,
                    evidence={"error": type(exc).__name__},
                ),
            ),
        )
    window = baseline.audit_verify_within
    if found is None:
        return CheckResult(
            "audit-verify",
            (
                finding(
                    "PW-POST-140",
                    "'pipewarden audit verify' has never been run on this audit log",
                    location=place,
                    evidence={"last_verify": None, "within_days": window.days},
                ),
            ),
        )
    seq, event = found
    facts = {
        "last_verify": event.time.isoformat(),
        "record": seq,
        "by": event.actor,
        "outcome": event.outcome,
        "within_days": window.days,
    }
    if event.outcome == "error":
        detail = str(event.attributes.get("detail") or event.attributes.get("reason") or "no detail")
        return CheckResult(
            "audit-verify",
            (
                finding(
                    "PW-POST-141",
                    f"the last 'pipewarden audit verify' ({event.time:%Y-%m-%d %H:%M} UTC, record {seq}) "
                    f"failed: {detail}",
                    location=place,
                    evidence={**facts, "detail": detail},
                ),
            ),
        )
    age = now - event.time
    if age <= window:
        return CheckResult("audit-verify")
    return CheckResult(
        "audit-verify",
        (
            finding(
                "PW-POST-140",
                f"the audit log last verified on {event.time:%Y-%m-%d} ({age.days} days ago; at most "
                f"{window.days} days is the baseline)",
                location=place,
                evidence={**facts, "age_days": age.days},
            ),
        ),
    )


def check_dependency_db(osv_db: Path | None, *, now: datetime, baseline: PostureBaseline) -> CheckResult:
    """PW-POST-160 (older than the baseline), 161 (none given), 169 (cannot be read or dated)."""
    if osv_db is None:
        return CheckResult(
            "dependency-db",
            (
                finding(
                    "PW-POST-161",
                    "no --osv-db was given: the age of the dependency database was not checked",
                    location=Location(path="osv-db"),
                ),
            ),
        )
    from pipewarden.supply import OfflineDatabase

    place = Location(path=str(osv_db))
    try:
        newest = OfflineDatabase(osv_db).newest
    except PipewardenError as exc:
        return CheckResult("dependency-db", (finding("PW-POST-169", error_text(exc), location=place),))
    except OSError as exc:
        problem = f"{osv_db}: cannot be read ({exc.strerror or type(exc).__name__})"
        return CheckResult("dependency-db", (finding("PW-POST-169", problem, location=place),))
    except Exception as exc:  # a record the reader did not plan for: never a crash, never a pass
        problem = f"{osv_db}: cannot be dated ({logged('dependency-db', exc)})"
        return CheckResult("dependency-db", (finding("PW-POST-169", problem, location=place),))
    if newest is None:
        problem = f"{osv_db}: no record has a readable 'modified' time, so its age is unknown"
        return CheckResult("dependency-db", (finding("PW-POST-169", problem, location=place),))
    age = now - newest
    if age <= baseline.osv_db_max_age:
        return CheckResult("dependency-db")
    days = round(age.total_seconds() / 86400, 1)
    return CheckResult(
        "dependency-db",
        (
            finding(
                "PW-POST-160",
                f"{osv_db}: the newest record was modified on {newest:%Y-%m-%d}, {days} days ago (at most "
                f"{baseline.osv_db_max_age.days} days is the baseline); advisories since then are missed",
                location=place,
                evidence={
                    "newest_record": newest.isoformat(),
                    "age_days": days,
                    "max_age_days": baseline.osv_db_max_age.days,
                },
            ),
        ),
    )
