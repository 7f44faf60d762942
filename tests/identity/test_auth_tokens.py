"""API tokens and sessions: expiry, revocation, disabled owners, last use, scopes within roles, logout."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from pipewarden.db import Database
from pipewarden.errors import AccessDenied, AuthenticationFailed, ConfigError, IdentityError
from pipewarden.identity import Subject
from tests.identity.authkit import ROOT, STRONG, Kit

ORIGIN = "198.51.100.7"
NOT_ACCEPTED = r"^the credentials were not accepted$"


@pytest.fixture
def kit(database: Database, tmp_path: Path) -> Kit:
    return Kit(database, tmp_path)


def signed_in(kit: Kit, name: str, *, password: str = STRONG) -> tuple[Subject, str]:
    """Log `name` in (enrolling MFA if its roles need it); the session's subject and token."""
    if kit.accounts.get(name).mfa_enrolled or kit.auth.requires_mfa(kit.accounts.get(name).grants):
        totp, _ = kit.enrol(name, password=password)
        result = kit.auth.login(name, password, origin=ORIGIN, totp_code=kit.code(totp))
    else:
        result = kit.auth.login(name, password, origin=ORIGIN)
    assert result.session is not None
    return kit.auth.authenticate_token(result.session.token, origin=ORIGIN), result.session.token


def test_a_session_stands_for_its_owner_with_full_roles(kit: Kit) -> None:
    kit.user("ada", "ml-engineer")
    subject, token = signed_in(kit, "ada")
    assert subject.name == "ada" and subject.kind == "user" and subject.mfa is True
    assert subject.token_scopes is None and subject.token_id is not None
    assert token not in repr(subject)


def test_a_token_can_do_what_both_its_scopes_and_its_owners_roles_allow(kit: Kit) -> None:
    kit.user("ada", "ml-engineer")
    kit.user("dan", "data-scientist")
    ada, _ = signed_in(kit, "ada")
    dan, _ = signed_in(kit, "dan")
    reader = kit.auth.create_token(
        "ada", by=ada, scopes=["artifact.read"], lifetime=timedelta(days=30), origin=ORIGIN
    )
    everything = kit.auth.create_token(
        "dan", by=dan, scopes=["*"], lifetime=timedelta(days=30), origin=ORIGIN
    )
    as_reader = kit.auth.authenticate_token(reader.plaintext, origin=ORIGIN)
    as_dan = kit.auth.authenticate_token(everything.plaintext, origin=ORIGIN)
    assert as_reader.token_scopes == frozenset({"artifact.read"}) and as_reader.mfa is True
    policy = kit.policy
    # ada's role allows writing; the token's scope does not.
    assert policy.check(ada, "artifact.write", "artifact:fraud/model").allowed
    assert policy.check(as_reader, "artifact.read", "artifact:fraud/model").allowed
    denied = policy.check(as_reader, "artifact.write", "artifact:fraud/model")
    assert not denied.allowed and "token scopes" in denied.rule
    # A '*' token of a data scientist is still only a data scientist: data sets, not models.
    assert policy.check(as_dan, "artifact.write", "artifact:fraud/data/train").allowed
    assert not policy.check(as_dan, "artifact.write", "artifact:fraud/model").allowed
    assert not policy.check(as_dan, "user.create", "user:mallory").allowed


def test_an_expired_token_stops_and_its_holder_is_told_why(kit: Kit) -> None:
    kit.user("vic", "data-scientist")
    vic, _ = signed_in(kit, "vic")
    new = kit.auth.create_token(
        "vic", by=vic, scopes=["artifact.list"], lifetime=timedelta(days=1), origin=ORIGIN
    )
    kit.clock.advance(86400 - 1)
    kit.auth.authenticate_token(new.plaintext, origin=ORIGIN)
    kit.clock.advance(1)
    before = kit.head()
    with pytest.raises(AuthenticationFailed, match=rf"^token {new.info.token_id} expired at "):
        kit.auth.authenticate_token(new.plaintext, origin=ORIGIN)
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.outcome) == ("token.use", "vic", "denied")
    assert event.attributes == {"kind": "api", "reason": "expired"}
    assert new.plaintext not in event.to_json()


def test_a_revoked_token_stops_at_once(kit: Kit) -> None:
    kit.user("vic", "data-scientist")
    vic, _ = signed_in(kit, "vic")
    new = kit.auth.create_token(
        "vic", by=vic, scopes=["artifact.list"], lifetime=timedelta(days=9), origin=ORIGIN
    )
    kit.auth.authenticate_token(new.plaintext, origin=ORIGIN)
    before = kit.head()
    info = kit.auth.revoke_token(new.info.token_id, by=vic, origin=ORIGIN)
    assert info.state(kit.clock.now) == "revoked"
    with pytest.raises(AuthenticationFailed, match="was revoked"):
        kit.auth.authenticate_token(new.plaintext, origin=ORIGIN)
    with pytest.raises(IdentityError, match="revoked already"):
        kit.auth.revoke_token(new.info.token_id, by=vic, origin=ORIGIN)
    assert kit.actions(kit.events_since(before)) == [("token.revoke", "allowed"), ("token.use", "denied")]


def test_a_disabled_owner_stops_its_tokens_and_ends_its_sessions(kit: Kit) -> None:
    kit.user("boss", "admin")
    kit.service("ci", "pipeline-service")
    boss, _ = signed_in(kit, "boss")
    kit.user("vic", "viewer")
    _vic, vic_session = signed_in(kit, "vic")
    ci = kit.auth.create_token(
        "ci", by=boss, scopes=["artifact.*"], lifetime=timedelta(days=30), origin=ORIGIN
    )
    kit.auth.authenticate_token(ci.plaintext, origin=ORIGIN)
    kit.accounts.disable("ci", actor=ROOT)
    kit.accounts.disable("vic", actor=ROOT)
    with pytest.raises(AuthenticationFailed, match="its owner ci is disabled"):
        kit.auth.authenticate_token(ci.plaintext, origin=ORIGIN)
    with pytest.raises(AuthenticationFailed, match="revoked"):
        kit.auth.authenticate_token(vic_session, origin=ORIGIN)
    kit.accounts.enable("ci", actor=ROOT)
    kit.accounts.enable("vic", actor=ROOT)
    assert kit.auth.authenticate_token(ci.plaintext, origin=ORIGIN).name == "ci"  # API tokens come back
    with pytest.raises(AuthenticationFailed):
        kit.auth.authenticate_token(vic_session, origin=ORIGIN)  # sessions do not


def test_last_use_is_recorded_with_its_origin(kit: Kit) -> None:
    kit.user("vic", "data-scientist")
    vic, _ = signed_in(kit, "vic")
    new = kit.auth.create_token(
        "vic", by=vic, scopes=["artifact.list"], lifetime=timedelta(days=9), origin=ORIGIN
    )

    def last_use() -> tuple[object, object]:
        [info] = [t for t in kit.auth.tokens.list(by=vic, origin=ORIGIN) if t.token_id == new.info.token_id]
        return info.last_used_at, info.last_used_origin

    assert last_use() == (None, None)
    kit.auth.authenticate_token(new.plaintext, origin="10.1.1.1")
    first = kit.clock.now
    assert last_use() == (first, "10.1.1.1")
    kit.clock.advance(20)
    kit.auth.authenticate_token(new.plaintext, origin="10.1.1.1")
    assert last_use() == (first, "10.1.1.1")  # same origin within a minute: not written again
    kit.auth.authenticate_token(new.plaintext, origin="10.2.2.2")
    assert last_use() == (kit.clock.now, "10.2.2.2")  # a new origin is written at once
    kit.clock.advance(61)
    kit.auth.authenticate_token(new.plaintext, origin="10.2.2.2")
    assert last_use() == (kit.clock.now, "10.2.2.2")


@pytest.mark.parametrize("kind", ["malformed", "unknown id", "wrong secret"])
def test_a_token_that_is_not_ours_says_nothing_more(kit: Kit, kind: str) -> None:
    kit.user("vic", "data-scientist")
    vic, session = signed_in(kit, "vic")
    presented = {
        "malformed": "hunter2",
        "unknown id": "pwt_AAAAAAAAAAAA_" + session[-43:],
        "wrong secret": session[:-43] + ("A" if session[-43] != "A" else "B") + session[-42:],
    }[kind]
    before = kit.head()
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.authenticate_token(presented, origin=ORIGIN)
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.actor_kind, event.outcome) == (
        "token.use",
        "anonymous",
        "anonymous",
        "denied",
    )
    assert presented not in event.to_json() and vic.name not in event.actor


def test_tokens_of_mfa_roles_come_only_from_mfa_sessions_and_never_from_tokens(kit: Kit) -> None:
    kit.user("ada", "ml-engineer")
    ada, _ = signed_in(kit, "ada")
    before = kit.head()
    with pytest.raises(AccessDenied):
        # Without MFA the ml-engineer role gives nothing, token.create included.
        kit.auth.create_token(
            "ada", by=replace(ada, mfa=False), scopes=["*"], lifetime=timedelta(days=1), origin=ORIGIN
        )
    token = kit.auth.create_token("ada", by=ada, scopes=["*"], lifetime=timedelta(days=1), origin=ORIGIN)
    via_token = kit.auth.authenticate_token(token.plaintext, origin=ORIGIN)
    with pytest.raises(AccessDenied, match="made from a login session"):
        kit.auth.create_token("ada", by=via_token, scopes=["*"], lifetime=timedelta(days=1), origin=ORIGIN)
    assert kit.actions(kit.events_since(before)) == [
        ("token.create", "denied"),
        ("token.create", "allowed"),
        ("token.create", "denied"),
    ]


def test_an_owner_that_needs_mfa_gets_tokens_only_from_a_session_with_it(
    database: Database, tmp_path: Path
) -> None:
    """A creator whose own role does not need MFA still needs it to make tokens for one that does."""
    from pipewarden.identity import Authenticator, Grant, Policy, Role, Rule

    kit = Kit(database, tmp_path)
    # Making someone's token also needs the power to grant their roles (role.grant on each).
    minter = Role(
        "token-desk",
        (Rule.of("token.manage"), Rule.of("role.grant", ["role:ml-engineer", "role:pipeline-service"])),
    )
    auth = Authenticator(
        database,
        events=kit.events,
        keyring=kit.keyring,
        policy=Policy(roles=[minter]),
        passwords=kit.passwords,
        clock=kit.clock,
    )
    kit.user("ada", "ml-engineer")
    desk = Subject("desk", "user", (Grant("token-desk"),))
    with pytest.raises(AccessDenied, match="requires MFA"):
        auth.create_token("ada", by=desk, scopes=["artifact.read"], lifetime=timedelta(days=1), origin=ORIGIN)
    kit.service("ci", "pipeline-service")
    made = auth.create_token(
        "ci", by=desk, scopes=["artifact.read"], lifetime=timedelta(days=1), origin=ORIGIN
    )
    assert made.info.mfa is False and made.info.owner == "ci"


def test_one_may_manage_ones_own_tokens_and_others_only_with_token_manage(kit: Kit) -> None:
    kit.user("ada", "ml-engineer")
    kit.user("dan", "data-scientist")
    kit.user("boss", "admin")
    ada, _ = signed_in(kit, "ada")
    dan, _ = signed_in(kit, "dan")
    boss, _ = signed_in(kit, "boss")
    mine = kit.auth.create_token(
        "dan", by=dan, scopes=["artifact.read"], lifetime=timedelta(days=3), origin=ORIGIN
    )
    before = kit.head()
    with pytest.raises(AccessDenied):
        kit.auth.create_token(
            "dan", by=ada, scopes=["artifact.read"], lifetime=timedelta(days=3), origin=ORIGIN
        )
    with pytest.raises(AccessDenied):
        kit.auth.revoke_token(mine.info.token_id, by=ada, origin=ORIGIN)
    with pytest.raises(AccessDenied):
        kit.auth.list_tokens(by=ada, origin=ORIGIN, owner="dan")
    assert kit.actions(kit.events_since(before)) == [
        ("token.create", "denied"),
        ("token.revoke", "denied"),
        ("token.read", "denied"),
    ]
    listed = kit.auth.list_tokens(by=boss, origin=ORIGIN, owner="*")
    assert {t.owner for t in listed} == {"ada", "dan", "boss"}
    assert mine.plaintext not in repr(listed) and mine.plaintext not in str(
        [t.to_dict(kit.clock.now) for t in listed]
    )
    assert [t.token_id for t in kit.auth.list_tokens(by=dan, origin=ORIGIN) if t.kind == "api"] == [
        mine.info.token_id
    ]
    kit.auth.revoke_token(mine.info.token_id, by=boss, origin=ORIGIN)


def test_token_settings_are_checked(kit: Kit) -> None:
    kit.user("vic", "data-scientist")
    vic, _ = signed_in(kit, "vic")

    def make(scopes: list[str], days: float) -> object:
        return kit.auth.create_token(
            "vic", by=vic, scopes=scopes, lifetime=timedelta(days=days), origin=ORIGIN
        )

    with pytest.raises(ConfigError, match="at most 365 days"):
        make(["artifact.list"], 366)
    with pytest.raises(ConfigError, match="positive"):
        make(["artifact.list"], 0)
    with pytest.raises(ConfigError, match="at least one scope"):
        make([], 1)
    with pytest.raises(ConfigError, match=r"artifact\.steal"):
        make(["artifact.steal"], 1)
    make(["artifact.list@project:fraud"], 365)
    kit.user("boss", "admin")
    boss, _ = signed_in(kit, "boss")
    with pytest.raises(IdentityError, match="ghost: no such user"):
        kit.auth.create_token("ghost", by=boss, scopes=["*"], lifetime=timedelta(days=1), origin=ORIGIN)


def test_logout_revokes_the_session_but_not_an_api_token(kit: Kit) -> None:
    kit.user("vic", "data-scientist")
    vic, session = signed_in(kit, "vic")
    api = kit.auth.create_token(
        "vic", by=vic, scopes=["artifact.list"], lifetime=timedelta(days=3), origin=ORIGIN
    )
    with pytest.raises(ConfigError, match="an API token, not a login session"):
        kit.auth.logout(api.plaintext, origin=ORIGIN)
    before = kit.head()
    info = kit.auth.logout(session, origin=ORIGIN)
    assert info.kind == "session" and info.revoked_at is not None
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.outcome) == ("auth.logout", "vic", "allowed")
    with pytest.raises(AuthenticationFailed, match="the login session was revoked; run 'pipewarden login'"):
        kit.auth.authenticate_token(session, origin=ORIGIN)
    kit.auth.authenticate_token(api.plaintext, origin=ORIGIN)
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.logout("pwt_AAAAAAAAAAAA_" + session[-43:], origin=ORIGIN)


def test_sessions_expire_after_twelve_hours(kit: Kit) -> None:
    kit.user("vic", "viewer")
    _vic, session = signed_in(kit, "vic")
    kit.clock.advance(12 * 3600 - 1)
    kit.auth.authenticate_token(session, origin=ORIGIN)
    kit.clock.advance(1)
    with pytest.raises(AuthenticationFailed, match="the login session expired at"):
        kit.auth.authenticate_token(session, origin=ORIGIN)


def test_a_token_create_event_says_what_kind_of_token_was_made(kit: Kit) -> None:
    """docs/access.md lists `kind` among the token events' attributes; token.create used to lack it."""
    kit.user("ada", "ml-engineer")
    ada, _ = signed_in(kit, "ada")
    before = kit.head()
    made = kit.auth.create_token(
        "ada", by=ada, scopes=["artifact.read"], lifetime=timedelta(days=30), origin=ORIGIN
    )
    [event] = kit.events_since(before)
    assert (event.action, event.resource, event.outcome) == (
        "token.create",
        f"token:ada/{made.info.token_id}",
        "allowed",
    )
    assert event.attributes == {
        "expires_at": made.info.expires_at.isoformat(),
        "kind": "api",
        "mfa": True,
        "owner": "ada",
        "scopes": "artifact.read",
        "token_id": made.info.token_id,
    }
    assert made.plaintext not in event.to_json()
