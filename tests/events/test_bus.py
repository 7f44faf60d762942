"""The one event path: the audit log first (durably), then subscribers, whose failures stop nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from pipewarden.audit import AuditLog
from pipewarden.db import Database
from pipewarden.errors import AccessDenied, DatabaseError, StoreError
from pipewarden.events import Acting, Actor, Event, Events
from tests.dbfixtures import new_audit_log


def _log(database: Database, tmp_path: Path) -> AuditLog:
    return new_audit_log(database, tmp_path / "cp", log_id="bus-test")


def _event(action: str = "artifact.read") -> Event:
    return Event(action=action, actor="ada", resource="artifact:x", outcome="allowed")


def test_subscribers_see_each_event_after_it_is_in_the_log(database: Database, tmp_path: Path) -> None:
    log = _log(database, tmp_path)
    seen: list[tuple[Event, int]] = []

    def subscriber(event: Event) -> None:
        seen.append((event, sum(1 for _ in log.records())))

    events = Events(log, subscribers=(subscriber,))
    event = _event()
    assert events.emit(event) == 1
    assert seen == [(event, 1)]


def test_a_failing_subscriber_stops_neither_the_log_nor_the_others(
    database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = _log(database, tmp_path)
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("sink down")

    events = Events(log, subscribers=(broken, lambda e: seen.append(e.action)))
    events.emit(_event("artifact.write"))
    assert seen == ["artifact.write"]
    assert [e.event.action for e in log.records()] == ["artifact.write"]
    assert "sink down" in caplog.text


def test_an_event_the_log_cannot_keep_is_an_error_not_a_silent_loss(tmp_path: Path) -> None:
    database = Database.open(f"sqlite:///{tmp_path / 'pw.db'}")
    log = _log(database, tmp_path)
    seen: list[Event] = []
    events = Events(log, subscribers=(seen.append,))
    with database.transaction() as conn:  # the log's table is gone from under it
        conn.execute(sqlalchemy.text("ALTER TABLE audit_records RENAME TO gone"))
    with pytest.raises(DatabaseError):
        events.emit(_event())
    assert seen == []


def test_acting_reports_denials_and_failures_as_one_event_each(database: Database, tmp_path: Path) -> None:
    log = _log(database, tmp_path)

    class Deny:
        def check(self, action: str, resource: str) -> object:
            class V:
                allowed = False
                rule = "no rule allows it (deny by default)"

            return V()

    acting = Acting(actor=Actor("ada", "user", "10.1.1.1"), events=Events(log), authorizer=Deny())  # type: ignore[arg-type]
    ran: list[int] = []
    with pytest.raises(AccessDenied, match="deny by default"):
        acting.perform("artifact.read", "artifact:x", lambda: ran.append(1))
    assert ran == []

    def broken() -> None:
        raise StoreError("x: no such thing")

    allowing = Acting(actor=Actor("ada"), events=Events(log), authorizer=_Allow())  # type: ignore[arg-type]
    with pytest.raises(StoreError):
        allowing.perform("artifact.read", "artifact:x", broken)
    got = [(e.event.outcome, e.event.attributes.get("reason")) for e in log.records()]
    assert got == [("denied", None), ("error", "StoreError")]


class _Allow:
    def check(self, action: str, resource: str) -> object:
        class V:
            allowed = True
            rule = "test"

        return V()
