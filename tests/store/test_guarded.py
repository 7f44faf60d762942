"""The store as a principal sees it: each operation authorized by the policy and recorded as one event."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipewarden.audit import AuditLog
from pipewarden.crypto import FileKeyProvider, KeyRing, SigningKey, TrustedKeys
from pipewarden.errors import AccessDenied, ArtifactRefused, IntegrityError
from pipewarden.events import Acting, Actor, Event, Events, LocalOperator
from pipewarden.identity import Grant, Policy, Subject
from pipewarden.store import ArtifactStore, GuardedStore, LocalBackend
from tests.store.test_store import _evil_pickle


@pytest.fixture
def log(audit_log: AuditLog) -> AuditLog:
    return audit_log


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    ring = tmp_path / "keyring.json"
    FileKeyProvider.create(ring)
    key = SigningKey.generate()
    return ArtifactStore(
        LocalBackend(tmp_path / "store"),
        keyring=KeyRing.from_file(ring),
        signing_key=key,
        trusted=TrustedKeys([key.public], source="test"),
    )


def _as(store: ArtifactStore, log: AuditLog, subject: Subject) -> GuardedStore:
    actor = Actor(subject.name, subject.kind, "10.0.0.7")
    return GuardedStore(
        store, Acting(actor=actor, events=Events(log), authorizer=Policy.default().bind(subject))
    )


def _events(log: AuditLog) -> list[Event]:
    return [entry.event for entry in log.records()]


def _csv(tmp_path: Path, name: str = "rows.csv") -> Path:
    path = tmp_path / name
    path.write_text("a,b\n1,2\n3,4\n")
    return path


def test_every_operation_is_one_event_naming_actor_resource_and_outcome(
    store: ArtifactStore, log: AuditLog, tmp_path: Path
) -> None:
    engineer = Subject("ada", "user", (Grant("ml-engineer", "project:fraud"),), mfa=True)
    guarded = _as(store, log, engineer)
    art = guarded.put(_csv(tmp_path), name="fraud/train")
    guarded.get("fraud/train@1", tmp_path / "out.csv")
    events = _events(log)
    assert [(e.action, e.resource, e.outcome) for e in events] == [
        ("artifact.write", "artifact:fraud/train", "allowed"),
        ("artifact.read", "artifact:fraud/train", "allowed"),
    ]
    write = events[0]
    assert (write.actor, write.actor_kind, write.origin) == ("ada", "user", "10.0.0.7")
    assert write.attributes["sha256"] == art.digest and write.attributes["version"] == 1
    assert log.verify().ok


def test_out_of_scope_is_denied_recorded_and_nothing_is_written(
    store: ArtifactStore, log: AuditLog, tmp_path: Path
) -> None:
    engineer = Subject("ada", "user", (Grant("ml-engineer", "project:fraud"),), mfa=True)
    with pytest.raises(AccessDenied, match=r"artifact\.write on artifact:churn/train"):
        _as(store, log, engineer).put(_csv(tmp_path), name="churn/train")
    assert store.names() == []
    [event] = _events(log)
    assert (event.action, event.outcome) == ("artifact.write", "denied")
    assert "rule" in event.attributes


def test_a_listing_shows_only_what_the_principal_may_list(
    store: ArtifactStore, log: AuditLog, tmp_path: Path
) -> None:
    admin = Subject("root", "user", (Grant("admin"),), mfa=True)
    for name in ("fraud/model", "churn/model", "fraud/data"):
        _as(store, log, admin).put(_csv(tmp_path), name=name)
    scoped = Subject("ada", "user", (Grant("viewer", "project:fraud"),))
    listed = _as(store, log, scoped).artifacts()
    assert sorted(a.name for a in listed) == ["fraud/data", "fraud/model"]
    auditor = Subject("eve", "user", (Grant("auditor"),))
    assert _as(store, log, auditor).artifacts() == []
    last = _events(log)[-1]
    assert (last.action, last.resource, last.outcome, last.attributes["count"]) == (
        "artifact.list",
        "artifact:*",
        "allowed",
        0,
    )


def test_a_refused_model_and_a_tampered_body_are_events_too(
    store: ArtifactStore, log: AuditLog, tmp_path: Path
) -> None:
    service = Subject("train-job", "service", (Grant("pipeline-service"),))
    guarded = _as(store, log, service)
    with pytest.raises(ArtifactRefused):
        guarded.put(_evil_pickle(tmp_path / "evil.pkl"), name="fraud/model")
    art = guarded.put(_csv(tmp_path), name="fraud/data")
    body = store.backend.root / art.body_key  # type: ignore[attr-defined]
    raw = bytearray(body.read_bytes())
    raw[-20] ^= 1
    body.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError):
        guarded.get("fraud/data", tmp_path / "out.csv")
    outcomes = [(e.action, e.outcome, e.attributes.get("reason")) for e in _events(log)]
    assert outcomes == [
        ("artifact.write", "denied", "scan"),
        ("artifact.write", "allowed", None),
        ("artifact.read", "error", "integrity"),
    ]
    assert not (tmp_path / "out.csv").exists()


def test_the_local_operator_is_allowed_and_recorded_as_system(
    store: ArtifactStore, log: AuditLog, tmp_path: Path
) -> None:
    acting = Acting(
        actor=Actor("alice", "system", "cli:alice@host"), events=Events(log), authorizer=LocalOperator()
    )
    GuardedStore(store, acting).put(_csv(tmp_path), name="anything")
    [event] = _events(log)
    assert (event.actor, event.actor_kind, event.outcome) == ("alice", "system", "allowed")
