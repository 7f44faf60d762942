"""A user's own password change: a fresh authentication through the login throttle, the password
policy, sessions ended but the caller's, API tokens kept, one event; two changes at once make one.

Every test runs on SQLite and PostgreSQL and reads the events back from the real audit log.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from pipewarden.db import Database, principals
from pipewarden.errors import AuthenticationFailed, ConfigError, LoginThrottled, SecondFactorNeeded
from pipewarden.identity import LoginStatus, PasswordChanged, Session, Throttle
from tests.identity.authkit import ROOT, STRONG, Kit

ORIGIN = "198.51.100.7"
NEW = "juniper canvas harbour ribbon"
WRONG = "wrong password, not hers"
NOT_ACCEPTED = r"^the credentials were not accepted$"
DISPLAY = "Victor Quarrel Smythe"


@pytest.fixture
def kit(database: Database, tmp_path: Path) -> Kit:
    return Kit(database, tmp_path)


def _hash(kit: Kit, name: str) -> str:
    with kit.db.transaction(write=False) as conn:
        return str(conn.execute(select(principals.c.password_hash).where(principals.c.name == name)).scalar())


def _session(kit: Kit, name: str, *, origin: str = ORIGIN, password: str = STRONG) -> Session:
    session = kit.auth.login(name, password, origin=origin).session
    assert session is not None
    return session


def test_a_changed_password_ends_the_other_sessions_and_is_one_event(kit: Kit) -> None:
    kit.user("vic", "viewer")
    here, laptop, phone = (_session(kit, "vic") for _ in range(3))
    before = kit.head()
    changed = kit.auth.change_password(
        "vic", current_password=STRONG, new_password=NEW, origin=ORIGIN, keep_session=here.token_id
    )
    assert changed == PasswordChanged("vic", sessions_revoked=2, recovery_codes_left=None)
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.resource, event.outcome, event.origin) == (
        "auth.password_change",
        "vic",
        "user:vic",
        "allowed",
        ORIGIN,
    )
    assert event.attributes == {"factor": "password", "sessions_revoked": 2}
    assert STRONG not in event.to_json() and NEW not in event.to_json()
    # The session the change was made from goes on; the others are revoked at once.
    assert kit.auth.authenticate_token(here.token, origin=ORIGIN).name == "vic"
    for ended in (laptop, phone):
        with pytest.raises(AuthenticationFailed, match="revoked"):
            kit.auth.authenticate_token(ended.token, origin=ORIGIN)
    # The old password is gone and the new one works, stored as a fresh argon2id hash.
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.login("vic", STRONG, origin=ORIGIN)
    assert kit.auth.login("vic", NEW, origin=ORIGIN).session is not None
    assert _hash(kit, "vic").startswith("$argon2id$") and NEW not in _hash(kit, "vic")


def test_without_a_session_to_keep_every_session_ends(kit: Kit) -> None:
    kit.user("vic", "viewer")
    sessions = [_session(kit, "vic") for _ in range(2)]
    changed = kit.auth.change_password("vic", current_password=STRONG, new_password=NEW, origin=ORIGIN)
    assert changed.sessions_revoked == 2
    for ended in sessions:
        with pytest.raises(AuthenticationFailed, match="revoked"):
            kit.auth.authenticate_token(ended.token, origin=ORIGIN)


def test_api_tokens_outlive_a_password_change(kit: Kit) -> None:
    kit.user("ada", "ml-engineer")
    totp, _ = kit.enrol("ada")
    login = kit.auth.login("ada", STRONG, origin=ORIGIN, totp_code=kit.code(totp))
    token = kit.auth.create_token(
        "ada", by=login.subject, scopes=["artifact.read"], lifetime=timedelta(days=30), origin=ORIGIN
    )
    kit.clock.advance(30)
    kit.auth.change_password(
        "ada", current_password=STRONG, new_password=NEW, origin=ORIGIN, totp_code=kit.code(totp)
    )
    assert kit.auth.authenticate_token(token.plaintext, origin=ORIGIN).token_id == token.info.token_id


def test_a_wrong_current_password_changes_nothing_and_says_nothing_more(kit: Kit) -> None:
    kit.user("vic", "viewer")
    kit.user("dora", "viewer")
    kit.accounts.disable("dora", actor=ROOT)
    kit.service("ci", "pipeline-service")
    stored = _hash(kit, "vic")
    for name, password in (("vic", WRONG), ("nobody", WRONG), ("dora", STRONG), ("ci", STRONG)):
        before = kit.head()
        with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
            kit.auth.change_password(name, current_password=password, new_password=NEW, origin=ORIGIN)
        [event] = kit.events_since(before)
        # A principal's name is recorded as typed; a name that is none, as its pseudonym.
        recorded = kit.auth.recorded_name(name)
        assert recorded == name or (name == "nobody" and recorded.startswith("unknown:"))
        assert (event.action, event.actor, event.outcome, event.attributes) == (
            "auth.password_change",
            recorded,
            "denied",
            {"reason": "credentials"},
        )
        assert password not in event.to_json() and NEW not in event.to_json()
    assert _hash(kit, "vic") == stored


def test_guessing_through_a_password_change_is_throttled_like_a_login(kit: Kit) -> None:
    """The change shares the login's counters: it is no side door for guessing passwords faster."""
    kit.user("vic", "viewer")
    for n in range(3):  # the pair counter's free failures
        with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
            kit.auth.change_password("vic", current_password=f"{WRONG} {n}", new_password=NEW, origin=ORIGIN)
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.change_password("vic", current_password=WRONG, new_password=NEW, origin=ORIGIN)
    before = kit.head()
    # Locked now: refused unchecked, even with the right password, by the change and by login alike.
    with pytest.raises(LoginThrottled, match="too many failed attempts"):
        kit.auth.change_password("vic", current_password=STRONG, new_password=NEW, origin=ORIGIN)
    with pytest.raises(LoginThrottled):
        kit.auth.login("vic", STRONG, origin=ORIGIN)
    events = kit.events_since(before)
    assert kit.actions(events) == [("auth.password_change", "denied"), ("auth.login", "denied")]
    assert events[0].attributes["reason"] == "throttled"
    # Failed logins count against a change too.
    kit.clock.advance(3600)
    kit.user("dora", "viewer")
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            kit.auth.login("dora", WRONG, origin=ORIGIN)
    with pytest.raises(LoginThrottled):
        kit.auth.change_password("dora", current_password=STRONG, new_password=NEW, origin=ORIGIN)


def test_an_enrolled_user_gives_the_second_factor_too(kit: Kit) -> None:
    kit.user("vic", "viewer")
    totp, codes = kit.enrol("vic")
    before = kit.head()
    with pytest.raises(SecondFactorNeeded, match=r"^vic: this needs your password and a one-time code"):
        kit.auth.change_password("vic", current_password=STRONG, new_password=NEW, origin=ORIGIN)
    wrong = "123456" if kit.code(totp) != "123456" else "654321"
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.change_password(
            "vic", current_password=STRONG, new_password=NEW, origin=ORIGIN, totp_code=wrong
        )
    code = kit.code(totp)
    changed = kit.auth.change_password(
        "vic", current_password=STRONG, new_password=NEW, origin=ORIGIN, totp_code=code
    )
    assert changed.recovery_codes_left is None
    events = kit.events_since(before)
    assert kit.actions(events) == [
        ("auth.password_change", "denied"),
        ("auth.password_change", "denied"),
        ("auth.password_change", "allowed"),
    ]
    assert [e.attributes.get("reason") for e in events[:2]] == ["second_factor_needed", "second_factor"]
    assert events[2].attributes["factor"] == "totp"
    # The code was claimed: it does not open a session afterwards.
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.login("vic", NEW, origin=ORIGIN, totp_code=code)
    # A recovery code does instead of a one-time code, once, and the count left is told.
    again = kit.auth.change_password(
        "vic", current_password=NEW, new_password=STRONG, origin=ORIGIN, recovery_code=codes[0]
    )
    assert again.recovery_codes_left == 9
    assert kit.events_since(kit.head() - 1)[0].attributes["recovery_codes_left"] == 9
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.login("vic", STRONG, origin=ORIGIN, recovery_code=codes[0])


@pytest.mark.parametrize(
    ("new", "match", "reason"),
    [
        (STRONG, "the new password is the current one", "reused"),
        (STRONG + "2", "too easy to guess", "weak_password"),  # the current one and a digit
        ("password1234", "too easy to guess", "weak_password"),
        ("vicvicvicvic1", "too easy to guess", "weak_password"),
        ("short", "at least 12", "weak_password"),
        (DISPLAY, "too easy to guess", "weak_password"),  # the display name
    ],
)
def test_the_new_password_must_pass_the_policy(kit: Kit, new: str, match: str, reason: str) -> None:
    kit.accounts.create_user("vic", password=STRONG, actor=ROOT, display_name=DISPLAY)
    session = _session(kit, "vic")
    before = kit.head()
    with pytest.raises(ConfigError, match=match) as info:
        kit.auth.change_password("vic", current_password=STRONG, new_password=new, origin=ORIGIN)
    assert new not in str(info.value)
    [event] = kit.events_since(before)
    assert (event.action, event.outcome, event.attributes) == (
        "auth.password_change",
        "denied",
        {"reason": reason},
    )
    assert new not in event.to_json()
    # Nothing changed: the password, the sessions, and the throttle (the right password was refunded).
    assert kit.auth.login("vic", STRONG, origin=ORIGIN).session is not None
    assert kit.auth.authenticate_token(session.token, origin=ORIGIN).name == "vic"
    pair = Throttle.keys("vic", ORIGIN)[0]
    assert kit.auth.changes.verifier.throttle.state(pair)[0] == 0


def test_the_policy_answers_only_after_the_current_password_checked_out(kit: Kit) -> None:
    """Otherwise a stranger could learn, from 'too easy to guess', what an account's display name is."""
    kit.accounts.create_user("vic", password=STRONG, actor=ROOT, display_name=DISPLAY)
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.change_password("vic", current_password=WRONG, new_password=DISPLAY, origin=ORIGIN)


def test_two_changes_at_once_leave_one_new_password(kit: Kit) -> None:
    kit.user("vic", "viewer")
    candidates = [NEW, "meadow pepper anchor violin", "saddle engine walnut frost"]
    outcomes: dict[str, str] = {}
    lock = threading.Lock()

    def attempt(new: str, n: int) -> None:
        try:
            kit.auth.change_password("vic", current_password=STRONG, new_password=new, origin=f"10.0.1.{n}")
            result = "changed"
        except AuthenticationFailed:
            result = "refused"
        with lock:
            outcomes[new] = result

    threads = [threading.Thread(target=attempt, args=(new, n)) for n, new in enumerate(candidates)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes.values()) == ["changed", "refused", "refused"]
    [winner] = [new for new, result in outcomes.items() if result == "changed"]
    # Only the winner's password works: a refused change did not overwrite it afterwards.
    assert kit.auth.login("vic", winner, origin=ORIGIN).status is LoginStatus.SIGNED_IN
    for loser in set(candidates) - {winner}:
        with pytest.raises(AuthenticationFailed):
            kit.auth.login("vic", loser, origin="10.0.2.1")
