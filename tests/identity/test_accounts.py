"""Principals: users and service accounts, names, passwords, disabling, and the first administrator."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from pipewarden.db import Database, principals, role_bindings
from pipewarden.errors import AccessDenied, AuthenticationFailed, ConfigError, IdentityError
from pipewarden.events import Actor
from pipewarden.identity import Grant
from tests.identity.authkit import ROOT, STRONG, Kit

ORIGIN = "198.51.100.7"
COMMON = "password1234"  # among the most common passwords there are


@pytest.fixture
def kit(database: Database, tmp_path: Path) -> Kit:
    return Kit(database, tmp_path)


def test_a_user_is_created_with_its_roles_and_one_event(kit: Kit) -> None:
    before = kit.head()
    ada = kit.accounts.create_user(
        "ada",
        password=STRONG,
        actor=ROOT,
        display_name="Ada L.",
        grants=[Grant("ml-engineer", "project:fraud")],
    )
    assert (ada.name, ada.kind, ada.disabled, ada.mfa_enrolled) == ("ada", "user", False, False)
    assert kit.accounts.get("ada").grants == (Grant("ml-engineer", "project:fraud"),)
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.actor_kind, event.resource, event.outcome) == (
        "user.create",
        "root",
        "system",
        "user:ada",
        "allowed",
    )
    assert event.attributes == {"grants": "ml-engineer@project:fraud", "kind": "user"}
    assert STRONG not in event.to_json()
    with kit.db.transaction(write=False) as conn:
        stored = conn.execute(select(principals.c.password_hash).where(principals.c.name == "ada")).scalar()
    assert stored.startswith("$argon2id$") and STRONG not in stored


@pytest.mark.parametrize("name", ["", "Ada", "1ada", "ada smith", "a" * 65, "ada/x", "ada\n"])
def test_names_are_checked(kit: Kit, name: str) -> None:
    with pytest.raises(ConfigError, match="lower-case letters"):
        kit.accounts.create_user(name, password=STRONG, actor=ROOT)
    with pytest.raises(ConfigError, match="lower-case letters"):
        kit.accounts.create_service(name, actor=ROOT)


def test_a_weak_password_is_refused_with_a_reason_and_never_echoed(kit: Kit) -> None:
    for weak, reason in (("ada-ada-ada-1", "too easy to guess"), ("short", "at least 12")):
        with pytest.raises(ConfigError, match=reason) as info:
            kit.accounts.create_user("ada", password=weak, actor=ROOT)
        assert weak not in str(info.value)
    assert kit.accounts.list() == ()
    assert kit.events_since() == []  # nothing was created, so nothing happened


def test_a_name_is_taken_once_whatever_the_kind(kit: Kit) -> None:
    kit.user("ada")
    with pytest.raises(IdentityError, match="ada: a user or service account of that name exists already"):
        kit.accounts.create_service("ada", actor=ROOT)


def test_grants_are_part_of_the_creation_or_nothing_is_created(kit: Kit) -> None:
    kit.user("ada", "viewer")
    with pytest.raises(ConfigError):
        kit.accounts.create_user("bob", password=STRONG, actor=ROOT, grants=[Grant("viewer", "fraud[0]")])
    with pytest.raises(IdentityError, match="no such user"):
        kit.accounts.get("bob")
    with kit.db.transaction(write=False) as conn:
        assert conn.execute(select(role_bindings.c.subject)).scalars().all() == ["ada"]


def test_a_service_account_has_no_password_and_cannot_log_in_with_one(kit: Kit) -> None:
    ci = kit.service("ci", "pipeline-service")
    assert ci.kind == "service" and ci.grants == (Grant("pipeline-service"),)
    with pytest.raises(AuthenticationFailed, match=r"^the credentials were not accepted$"):
        kit.auth.login("ci", "", origin=ORIGIN)


def test_list_shows_everyone_by_name_with_roles(kit: Kit) -> None:
    kit.user("zed", "viewer")
    kit.service("ci", "pipeline-service")
    kit.user("ada", "ml-engineer", "auditor")
    listed = kit.accounts.list()
    assert [(p.name, p.kind) for p in listed] == [("ada", "user"), ("ci", "service"), ("zed", "user")]
    assert {g.role for g in listed[0].grants} == {"ml-engineer", "auditor"}


def test_disable_and_enable_are_events_and_take_effect_at_once(kit: Kit) -> None:
    kit.user("vic", "viewer")
    session = kit.auth.login("vic", STRONG, origin=ORIGIN).session
    assert session is not None
    admin = Actor("boss", "user", ORIGIN)
    before = kit.head()
    assert kit.accounts.disable("vic", actor=admin).disabled is True
    with pytest.raises(AuthenticationFailed):
        kit.auth.login("vic", STRONG, origin=ORIGIN)
    with pytest.raises(AuthenticationFailed):
        kit.auth.authenticate_token(session.token, origin=ORIGIN)
    assert kit.accounts.enable("vic", actor=admin).disabled is False
    assert kit.auth.login("vic", STRONG, origin=ORIGIN).session is not None
    events = kit.events_since(before)
    assert [(e.action, e.actor, e.resource, e.outcome) for e in events if e.action.startswith("user.")] == [
        ("user.disable", "boss", "user:vic", "allowed"),
        ("user.enable", "boss", "user:vic", "allowed"),
    ]
    assert events[0].attributes == {"sessions_revoked": 1}
    with pytest.raises(ConfigError, match="cannot disable yourself"):
        kit.accounts.disable("boss", actor=admin)
    with pytest.raises(IdentityError, match="ghost: no such user"):
        kit.accounts.enable("ghost", actor=admin)


def test_the_first_administrator_is_made_once_and_only_while_there_is_none(kit: Kit) -> None:
    first = kit.accounts.bootstrap_admin("boss", password=STRONG, actor=ROOT)
    assert first.grants == (Grant("admin"),)
    before = kit.head()
    with pytest.raises(AccessDenied, match="an administrator exists already"):
        kit.accounts.bootstrap_admin("mallory", password=STRONG, actor=ROOT)
    [event] = kit.events_since(before)
    assert (event.action, event.resource, event.outcome) == ("user.create", "user:mallory", "denied")
    assert event.attributes["bootstrap"] is True
    # When every administrator is disabled, the local operator may make a new one: the way back in.
    kit.accounts.disable("boss", actor=ROOT)
    assert kit.accounts.bootstrap_admin("boss2", password=STRONG, actor=ROOT).name == "boss2"


def test_an_admin_through_a_group_counts_as_an_administrator(kit: Kit) -> None:
    from pipewarden.identity._bindings import add_member, create_group, grant

    kit.user("ada", "viewer")
    with kit.db.transaction() as conn:
        create_group(conn, name="ops")
        grant(conn, subject="ops", subject_kind="group", role="admin", granted_by="test")
        add_member(conn, group="ops", principal="ada")
    with pytest.raises(AccessDenied):
        kit.accounts.bootstrap_admin("boss", password=STRONG, actor=ROOT)


def test_a_weak_bootstrap_password_is_refused_before_anything(kit: Kit) -> None:
    with pytest.raises(ConfigError, match="too easy to guess"):
        kit.accounts.bootstrap_admin("boss", password=COMMON, actor=ROOT)
    assert kit.accounts.list() == ()


def test_listing_principals_for_someone_is_one_event_with_the_count(kit: Kit) -> None:
    kit.user("ada", "viewer")
    kit.service("ci", "pipeline-service")
    before = kit.head()
    listed = kit.accounts.list_as(Actor("boss", "user", "10.0.0.9"))
    assert [p.name for p in listed] == ["ada", "ci"]
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.resource, event.outcome, event.origin) == (
        "user.read",
        "boss",
        "user:*",
        "allowed",
        "10.0.0.9",
    )
    assert event.attributes == {"count": 2}
