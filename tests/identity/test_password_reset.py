"""An administrator's reset of someone else's password: authorized, from an MFA session, never one's
own; the person's sessions end, their API tokens stay, their throttle counter is forgotten.

Every test runs on SQLite and PostgreSQL and reads the events back from the real audit log.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from pipewarden.db import Database
from pipewarden.errors import AccessDenied, AuthenticationFailed, ConfigError, IdentityError, LoginThrottled
from pipewarden.identity import Authenticator, Grant, PasswordChanged, Policy, Role, Rule, Subject
from tests.identity.authkit import ROOT, STRONG, Kit

ORIGIN = "198.51.100.7"
NEW = "juniper canvas harbour ribbon"
WRONG = "wrong password, not hers"


@pytest.fixture
def kit(database: Database, tmp_path: Path) -> Kit:
    return Kit(database, tmp_path)


def _boss(kit: Kit) -> Subject:
    """An administrator acting in a session that passed MFA."""
    kit.user("boss", "admin")
    totp, _ = kit.enrol("boss")
    return kit.auth.login("boss", STRONG, origin=ORIGIN, totp_code=kit.code(totp)).subject


def test_a_reset_sets_the_password_ends_every_session_and_keeps_api_tokens(kit: Kit) -> None:
    boss = _boss(kit)
    kit.user("ada", "ml-engineer")
    totp, _ = kit.enrol("ada")  # its confirmation opened a session too
    login = kit.auth.login("ada", STRONG, origin=ORIGIN, totp_code=kit.code(totp))
    assert login.session is not None
    token = kit.auth.create_token(
        "ada", by=login.subject, scopes=["artifact.read"], lifetime=timedelta(days=30), origin=ORIGIN
    )
    before = kit.head()
    reset = kit.auth.reset_password("ada", new_password=NEW, by=boss, origin=ORIGIN)
    assert reset == PasswordChanged("ada", sessions_revoked=2)
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.resource, event.outcome, event.attributes) == (
        "auth.password_reset",
        "boss",
        "user:ada",
        "allowed",
        {"sessions_revoked": 2},
    )
    assert NEW not in event.to_json()
    with pytest.raises(AuthenticationFailed, match="revoked"):
        kit.auth.authenticate_token(login.session.token, origin=ORIGIN)
    assert kit.auth.authenticate_token(token.plaintext, origin=ORIGIN).name == "ada"
    kit.clock.advance(30)
    with pytest.raises(AuthenticationFailed):
        kit.auth.login("ada", STRONG, origin=ORIGIN, totp_code=kit.code(totp))
    # The second factor is untouched: the new password and the same authenticator let her in.
    assert kit.auth.login("ada", NEW, origin=ORIGIN, totp_code=kit.code(totp)).subject.mfa is True


def test_who_may_reset_and_each_refusal_is_one_event(kit: Kit) -> None:
    boss = _boss(kit)
    kit.user("vic", "viewer")
    vic_session = kit.auth.login("vic", STRONG, origin=ORIGIN).session
    assert vic_session is not None
    vic = kit.auth.authenticate_token(vic_session.token, origin=ORIGIN)
    refusals = [
        # Without user.update on the user.
        (vic, "boss", AccessDenied, "user.update on user:boss is not allowed", "rule"),
        # An administrator whose session did not pass MFA (the admin role requires it).
        (replace(boss, mfa=False), "vic", AccessDenied, "role admin requires MFA", "rule"),
        # One's own password: that is a change, which asks for the current one.
        (boss, "boss", AccessDenied, "change your own password with 'pipewarden user password'", "reason"),
    ]
    for by, name, error, match, key in refusals:
        before = kit.head()
        with pytest.raises(error, match=match):
            kit.auth.reset_password(name, new_password=NEW, by=by, origin=ORIGIN)
        [event] = kit.events_since(before)
        assert (event.action, event.actor, event.resource, event.outcome) == (
            "auth.password_reset",
            by.name,
            f"user:{name}",
            "denied",
        )
        assert key in event.attributes
    assert kit.auth.login("boss", STRONG, origin="10.9.9.9").status.value == "second_factor_needed"
    assert kit.auth.authenticate_token(vic_session.token, origin=ORIGIN).name == "vic"


def test_a_custom_role_with_user_update_still_needs_an_mfa_session(
    database: Database, tmp_path: Path
) -> None:
    kit = Kit(database, tmp_path)
    auth = Authenticator(
        database,
        events=kit.events,
        keyring=kit.keyring,
        # Resetting a viewer's password also needs the power to make one (role.grant on role:viewer).
        policy=Policy(
            roles=[Role("helpdesk", (Rule.of("user.update"), Rule.of("role.grant", "role:viewer")))]
        ),
        passwords=kit.passwords,
        clock=kit.clock,
    )
    kit.user("vic", "viewer")
    desk = Subject("desk", "user", (Grant("helpdesk"),))
    with pytest.raises(AccessDenied, match="needs a session that passed MFA"):
        auth.reset_password("vic", new_password=NEW, by=desk, origin=ORIGIN)
    auth.reset_password("vic", new_password=NEW, by=replace(desk, mfa=True), origin=ORIGIN)
    assert auth.login("vic", NEW, origin=ORIGIN).session is not None


def test_the_new_password_must_pass_the_policy_and_unknown_users_are_errors(kit: Kit) -> None:
    boss = _boss(kit)
    kit.accounts.create_user("vic", password=STRONG, actor=ROOT, display_name="Victor Quarrel")
    kit.service("ci", "pipeline-service")
    for weak in ("password1234", "Victor Quarrel 1", "short"):
        before = kit.head()
        with pytest.raises(ConfigError) as info:
            kit.auth.reset_password("vic", new_password=weak, by=boss, origin=ORIGIN)
        assert weak not in str(info.value)
        [event] = kit.events_since(before)
        assert (event.outcome, event.attributes) == ("denied", {"reason": "weak_password"})
        assert weak not in event.to_json()
    assert kit.auth.login("vic", STRONG, origin=ORIGIN).session is not None
    for name in ("nobody", "ci"):
        with pytest.raises(IdentityError, match=f"^{name}: no such user$"):
            kit.auth.reset_password(name, new_password=NEW, by=boss, origin=ORIGIN)


def test_a_reset_forgets_the_failures_counted_against_the_account(kit: Kit) -> None:
    """The account counter locks out every origin not known for it; after a reset the user gets in."""
    boss = _boss(kit)
    kit.user("vic", "viewer")
    for n in range(6):  # from six unknown origins: the account counter's 5 free failures, and one more
        with pytest.raises(AuthenticationFailed):
            kit.auth.login("vic", WRONG, origin=f"203.0.113.{n}")
    with pytest.raises(LoginThrottled):
        kit.auth.login("vic", STRONG, origin="192.0.2.50")
    kit.auth.reset_password("vic", new_password=NEW, by=boss, origin=ORIGIN)
    assert kit.auth.login("vic", NEW, origin="192.0.2.50").session is not None


def test_a_reset_also_unlocks_the_users_own_origins(kit: Kit) -> None:
    """Failures from the user's own (known) origin lock only their pair counter, which the account
    counter does not cover; a reset clears it too, so they log in at once, and the origin stays known.
    (Regression: only the account counter was cleared, and the user waited out the pair's lock.)"""
    boss = _boss(kit)
    kit.user("vic", "viewer")
    home = "192.0.2.80"
    assert kit.auth.login("vic", STRONG, origin=home).session is not None  # the origin is now known
    for _ in range(5):  # the pair's 3 free failures, then locks that double
        with pytest.raises(AuthenticationFailed):
            kit.auth.login("vic", WRONG, origin=home)
        kit.clock.advance(1)
    with pytest.raises(LoginThrottled):
        kit.auth.login("vic", STRONG, origin=home)
    kit.auth.reset_password("vic", new_password=NEW, by=boss, origin=ORIGIN)
    assert kit.auth.login("vic", NEW, origin=home).session is not None
    # Still a known origin: failures from elsewhere that lock the account counter do not stop vic here.
    for n in range(6):
        with pytest.raises(AuthenticationFailed):
            kit.auth.login("vic", WRONG, origin=f"203.0.113.{n}")
    assert kit.auth.login("vic", NEW, origin=home).session is not None
