"""Granting, revoking and group changes through `Access`: authorized by the policy, each one event.

Runs on SQLite and a real PostgreSQL server, with the real audit log.
"""

from __future__ import annotations

import pytest

from pipewarden.audit import AuditLog
from pipewarden.db import Database
from pipewarden.errors import AccessDenied, ConfigError, IdentityError
from pipewarden.events import Event, Events
from pipewarden.identity import Access, Grant, Policy, Subject
from tests.identity.test_policy_bindings import add_principal

TEAM_LEAD = """\
format: pipewarden.policy/1
roles:
  team-lead:
    description: runs a team's groups; may hand out viewer and nothing more
    allow:
      - actions: group.manage
      - actions: [role.grant, role.revoke]
        resources: "role:viewer"
"""


@pytest.fixture
def log(audit_log: AuditLog) -> AuditLog:
    return audit_log


@pytest.fixture
def access(database: Database, log: AuditLog) -> Access:
    for name, kind in [("root", "user"), ("ada", "user"), ("lead", "user"), ("ci", "service")]:
        add_principal(database, name, kind=kind)
    return Access(database, policy=Policy.from_yaml(TEAM_LEAD, source="policy.yaml"), events=Events(log))


def _events(log: AuditLog) -> list[Event]:
    return [entry.event for entry in log.records()]


ROOT = Subject("root", "user", (Grant("admin"),), mfa=True)
LEAD = Subject("lead", "user", (Grant("team-lead"),), mfa=False)


def test_a_grant_is_stored_and_recorded_as_one_event(access: Access, log: AuditLog) -> None:
    binding = access.grant(ROOT, role="ml-engineer", subject="ada", scope="project:fraud", origin="10.0.0.7")
    assert (binding.role, binding.scope, binding.granted_by) == ("ml-engineer", "project:fraud", "root")
    assert access.subject("ada").grants == (Grant("ml-engineer", "project:fraud"),)
    [event] = _events(log)
    assert (event.action, event.actor, event.resource, event.outcome, event.origin) == (
        "role.grant",
        "root",
        "role:ml-engineer",
        "allowed",
        "10.0.0.7",
    )
    assert dict(event.attributes) == {"scope": "project:fraud", "subject": "ada", "subject_kind": "principal"}
    decision = access.check("ada", "artifact.write", "artifact:fraud/model")
    assert (
        decision.allowed and decision.rule == "role ml-engineer (scope project:fraud) allows artifact.write"
    )
    assert access.check("ada", "artifact.write", "artifact:fraud/model", mfa=False).needs_mfa


def test_a_refused_grant_changes_nothing_and_is_one_denied_event(access: Access, log: AuditLog) -> None:
    for actor, rule in [
        (Subject("ada", "user", (Grant("ml-engineer"),), mfa=True), "no rule allows it (deny by default)"),
        (
            Subject("root", "user", (Grant("admin"),), mfa=False),
            "role admin requires MFA and this session has none",
        ),
        (LEAD, "no rule allows it (deny by default)"),
    ]:
        with pytest.raises(AccessDenied, match=rf"^{actor.name}: role\.grant on role:admin is not allowed"):
            access.grant(actor, role="admin", subject=actor.name)
        event = _events(log)[-1]
        assert (event.action, event.actor, event.resource, event.outcome) == (
            "role.grant",
            actor.name,
            "role:admin",
            "denied",
        )
        assert event.attributes["rule"] == rule
    assert len(_events(log)) == 3
    assert access.bindings() == ()


def test_a_custom_role_may_grant_only_what_it_is_allowed_to(access: Access, log: AuditLog) -> None:
    access.grant(LEAD, role="viewer", subject="ada", scope="project:fraud")
    with pytest.raises(AccessDenied):
        access.grant(LEAD, role="auditor", subject="ada")
    access.revoke(LEAD, role="viewer", subject="ada", scope="project:fraud")
    assert [(e.action, e.outcome) for e in _events(log)] == [
        ("role.grant", "allowed"),
        ("role.grant", "denied"),
        ("role.revoke", "allowed"),
    ]


def test_bad_requests_are_refused_before_anything_happens(access: Access, log: AuditLog) -> None:
    with pytest.raises(ConfigError, match=r"^release-manager: no such role"):
        access.grant(ROOT, role="release-manager", subject="ada")
    with pytest.raises(ConfigError, match="is not a resource type"):
        access.grant(ROOT, role="viewer", subject="ada", scope="projekt:fraud")
    assert _events(log) == []


def test_a_change_that_fails_is_recorded_as_an_error(access: Access, log: AuditLog) -> None:
    with pytest.raises(IdentityError, match=r"^eve: no such user"):
        access.grant(ROOT, role="viewer", subject="eve")
    with pytest.raises(IdentityError, match=r"^ada: holds no role viewer"):
        access.revoke(ROOT, role="viewer", subject="ada")
    assert [(e.action, e.outcome, e.attributes.get("reason")) for e in _events(log)] == [
        ("role.grant", "error", "IdentityError"),
        ("role.revoke", "error", "IdentityError"),
    ]


def test_the_last_administrator_cannot_be_revoked(access: Access) -> None:
    access.grant(ROOT, role="admin", subject="root")
    with pytest.raises(IdentityError, match="no enabled administrator"):
        access.revoke(ROOT, role="admin", subject="root")
    assert access.subject("root").grants == (Grant("admin"),)
    access.grant(ROOT, role="admin", subject="ada")
    access.revoke(ROOT, role="admin", subject="root")
    assert access.subject("root").grants == ()


def test_joining_a_group_needs_the_right_to_grant_its_roles(access: Access, log: AuditLog) -> None:
    access.create_group(LEAD, "readers")
    access.grant(ROOT, role="viewer", subject="readers", subject_kind="group")
    access.add_member(LEAD, group="readers", principal="ada")
    assert access.subject("ada").grants == (Grant("viewer"),)
    access.create_group(LEAD, "builders")
    access.grant(ROOT, role="ml-engineer", subject="builders", subject_kind="group")
    with pytest.raises(AccessDenied, match=r"^lead: role\.grant on role:ml-engineer is not allowed"):
        access.add_member(LEAD, group="builders", principal="lead")
    assert access.subject("lead").grants == ()
    denied = _events(log)[-1]
    assert (denied.action, denied.resource, denied.outcome) == ("group.manage", "group:builders", "denied")
    assert (denied.attributes["change"], denied.attributes["member"]) == ("add", "lead")
    with pytest.raises(AccessDenied):
        access.delete_group(LEAD, "builders")
    access.remove_member(LEAD, group="readers", principal="ada")
    assert access.subject("ada").grants == ()
    assert [(g.name, g.members) for g in access.groups()] == [("builders", ()), ("readers", ())]
    access.delete_group(ROOT, "builders")
    assert [g.name for g in access.groups()] == ["readers"]
    assert all(b.subject != "builders" for b in access.bindings())
    changes = [
        (e.resource, e.attributes.get("change"), e.outcome)
        for e in _events(log)
        if e.action == "group.manage"
    ]
    assert changes == [
        ("group:readers", "create", "allowed"),
        ("group:readers", "add", "allowed"),
        ("group:builders", "create", "allowed"),
        ("group:builders", "add", "denied"),
        ("group:builders", "delete", "denied"),
        ("group:readers", "remove", "allowed"),
        ("group:builders", "delete", "allowed"),
    ]


def test_access_check_for_a_disabled_or_unknown_principal(access: Access, database: Database) -> None:
    add_principal(database, "gone", disabled=True)
    access.grant(ROOT, role="admin", subject="gone")
    decision = access.check("gone", "artifact.read", "artifact:x")
    assert not decision.allowed and decision.rule == "the account gone is disabled"
    with pytest.raises(IdentityError, match=r"^eve: no such user or service account"):
        access.check("eve", "artifact.read", "artifact:x")
    assert access.subject("ci").kind == "service"
