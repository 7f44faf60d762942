"""Logins: passwords, no user enumeration, rehash, TOTP with replay protection, recovery codes, re-auth.

Every test runs on SQLite and PostgreSQL and reads the events back from the
real audit log.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pipewarden.db import Database, api_tokens, principals
from pipewarden.errors import AccessDenied, AuthenticationFailed, ConfigError, IdentityError
from pipewarden.events import Event
from pipewarden.identity import (
    Authenticator,
    Grant,
    LoginStatus,
    PasswordPolicy,
    Policy,
    Role,
    Rule,
    Subject,
)
from tests.identity.authkit import ROOT, STRONG, Kit

ORIGIN = "198.51.100.7"
WRONG = "wrong password, not hers"
NOT_ACCEPTED = r"^the credentials were not accepted$"


@pytest.fixture
def kit(database: Database, tmp_path: Path) -> Kit:
    return Kit(database, tmp_path)


def _shape(event: Event) -> tuple[object, ...]:
    """An event without who it names and when: what must not differ between a real and an unknown name."""
    return (
        event.action,
        event.actor_kind,
        event.outcome,
        event.origin,
        event.resource.replace(event.actor, "NAME"),
        tuple(sorted(event.attributes.items())),
    )


def test_a_right_password_opens_a_session_and_is_one_event(kit: Kit) -> None:
    kit.user("vic", "viewer")
    before = kit.head()
    result = kit.auth.login("vic", STRONG, origin=ORIGIN)
    assert result.status is LoginStatus.SIGNED_IN and result.session is not None
    assert result.subject.name == "vic" and result.subject.mfa is False
    assert result.session.expires_at == kit.clock.now + timedelta(hours=12)
    assert result.session.token not in repr(result)
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.outcome, event.origin) == (
        "auth.login",
        "vic",
        "allowed",
        ORIGIN,
    )
    assert event.attributes == {"factor": "password", "mfa": False, "session": result.session.token_id}


def test_a_wrong_password_says_nothing_more_and_never_reaches_an_event(kit: Kit) -> None:
    kit.user("vic", "viewer")
    before = kit.head()
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.login("vic", WRONG, origin=ORIGIN)
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.outcome) == ("auth.login", "vic", "denied")
    assert event.attributes == {"reason": "credentials"}
    assert WRONG not in event.to_json()


def test_unknown_disabled_and_service_names_are_answered_like_a_wrong_password(kit: Kit) -> None:
    kit.user("vic", "viewer")
    kit.user("dora", "viewer")
    kit.accounts.disable("dora", actor=ROOT)
    kit.service("ci", "pipeline-service")
    answers: dict[str, tuple[str, tuple[object, ...]]] = {}
    for name in ("vic", "nobody", "dora", "ci"):
        before, dummies, real = kit.head(), kit.passwords.dummy_verifications, kit.passwords.verifications
        with pytest.raises(AuthenticationFailed) as info:
            kit.auth.login(name, WRONG, origin=ORIGIN)
        [event] = kit.events_since(before)
        # A principal's name is recorded as typed; a name that is none, as its pseudonym.
        assert event.actor == (name if name != "nobody" else kit.auth.recorded_name(name))
        answers[name] = (str(info.value), _shape(event))
        # The argon2 work is done either way: a real verification, or the dummy one.
        assert (kit.passwords.dummy_verifications - dummies) + (kit.passwords.verifications - real) == 1
        if name != "vic":
            assert kit.passwords.dummy_verifications == dummies + 1
    assert len(set(answers.values())) == 1, answers
    # Even the right password of a disabled user is answered the same way.
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.login("dora", STRONG, origin=ORIGIN)


def test_a_hash_with_older_parameters_is_replaced_at_login(database: Database, tmp_path: Path) -> None:
    kit = Kit(database, tmp_path)
    kit.user("vic", "viewer")  # hashed at t=2
    with database.transaction(write=False) as conn:
        old = conn.execute(select(principals.c.password_hash).where(principals.c.name == "vic")).scalar()
    assert old.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    stronger = Authenticator(
        database,
        events=kit.events,
        keyring=kit.keyring,
        passwords=PasswordPolicy(memory_kib=19456, iterations=3),
        clock=kit.clock,
    )
    assert stronger.login("vic", STRONG, origin=ORIGIN).session is not None
    with database.transaction(write=False) as conn:
        new = conn.execute(select(principals.c.password_hash).where(principals.c.name == "vic")).scalar()
    assert new.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
    assert stronger.login("vic", STRONG, origin=ORIGIN).session is not None
    with pytest.raises(AuthenticationFailed):
        stronger.login("vic", WRONG, origin=ORIGIN)


def _sessions(database: Database) -> int:
    with database.transaction(write=False) as conn:
        return int(conn.execute(select(func.count()).select_from(api_tokens)).scalar() or 0)


def test_a_role_that_requires_mfa_means_enrolling_before_any_session(kit: Kit) -> None:
    kit.user("ada", "ml-engineer")
    before = kit.head()
    first = kit.auth.login("ada", STRONG, origin=ORIGIN)
    assert first.status is LoginStatus.MFA_ENROLMENT_NEEDED and first.mfa_enrolment_required
    assert first.session is None and _sessions(kit.db) == 0
    enrolment = kit.auth.begin_mfa_enrolment("ada", password=STRONG, origin=ORIGIN)
    assert enrolment.secret not in repr(enrolment) and "secret=" + enrolment.secret in enrolment.uri
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.confirm_mfa_enrolment("ada", "000000", password=STRONG, origin=ORIGIN)
    done = kit.auth.confirm_mfa_enrolment("ada", kit.code(enrolment.totp), password=STRONG, origin=ORIGIN)
    assert done.login.status is LoginStatus.SIGNED_IN and done.login.subject.mfa is True
    assert len(done.recovery_codes.codes) == 10
    events = kit.events_since(before)
    assert kit.actions(events) == [
        ("auth.login", "denied"),
        ("auth.mfa_enrol", "allowed"),
        ("auth.mfa_enrol", "denied"),
        ("auth.mfa_enrol", "allowed"),
    ]
    assert events[0].attributes == {"reason": "mfa_enrolment_needed"}
    assert events[3].attributes["stage"] == "confirm" and events[3].attributes["mfa"] is True
    text = "".join(e.to_json() for e in events)
    assert enrolment.secret not in text and not any(c in text for c in done.recovery_codes.codes)


def test_an_enrolled_user_always_needs_the_second_factor(kit: Kit) -> None:
    kit.user("vic", "viewer")
    totp, _codes = kit.enrol("vic")  # optional for a viewer; once enrolled, required
    paused = kit.auth.login("vic", STRONG, origin=ORIGIN)
    assert paused.status is LoginStatus.SECOND_FACTOR_NEEDED and paused.session is None
    before = kit.head()
    wrong = "123456" if kit.code(totp) != "123456" else "654321"
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.login("vic", STRONG, origin=ORIGIN, totp_code=wrong)
    [event] = kit.events_since(before)
    assert event.attributes == {"reason": "second_factor"}
    signed = kit.auth.login("vic", STRONG, origin=ORIGIN, totp_code=kit.code(totp))
    assert signed.subject.mfa is True and signed.session is not None


def test_a_code_is_accepted_once_and_never_again_nor_any_older_one(kit: Kit) -> None:
    kit.user("vic", "viewer")
    totp, _ = kit.enrol("vic")
    code = kit.code(totp)
    assert kit.auth.login("vic", STRONG, origin=ORIGIN, totp_code=code).session is not None
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.login("vic", STRONG, origin=ORIGIN, totp_code=code)  # the same code: a replay
    kit.clock.advance(10)  # still inside the window of that step
    with pytest.raises(AuthenticationFailed):
        kit.auth.login("vic", STRONG, origin=ORIGIN, totp_code=code)
    # The previous step's code is inside the window but older than the one used: refused.
    with pytest.raises(AuthenticationFailed):
        kit.auth.login("vic", STRONG, origin=ORIGIN, totp_code=kit.code(totp, offset_steps=-1))
    kit.clock.advance(30)
    assert kit.auth.login("vic", STRONG, origin=ORIGIN, totp_code=kit.code(totp)).session is not None


def test_the_window_is_one_step_either_side(kit: Kit) -> None:
    kit.user("vic", "viewer")
    totp, _ = kit.enrol("vic")
    kit.clock.advance(300)
    for offset in (2, -2):
        with pytest.raises(AuthenticationFailed):
            kit.auth.login("vic", STRONG, origin=ORIGIN, totp_code=kit.code(totp, offset_steps=offset))
    # One step behind (a slow phone) and one ahead (a fast one) are accepted, in that order.
    assert kit.auth.login("vic", STRONG, origin=ORIGIN, totp_code=kit.code(totp, offset_steps=-1)).session
    assert kit.auth.login("vic", STRONG, origin=ORIGIN, totp_code=kit.code(totp, offset_steps=1)).session


def test_the_same_code_at_once_from_many_requests_opens_one_session(kit: Kit) -> None:
    kit.user("vic", "viewer")
    totp, _ = kit.enrol("vic")
    code = kit.code(totp)
    outcomes: list[str] = []
    lock = threading.Lock()

    def attempt(n: int) -> None:
        try:
            kit.auth.login("vic", STRONG, origin=f"10.0.0.{n}", totp_code=code)
            result = "ok"
        except AuthenticationFailed:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]


def test_recovery_codes_work_once_each_and_count_down(kit: Kit) -> None:
    kit.user("ada", "ml-engineer")
    _totp, codes = kit.enrol("ada")
    before = kit.head()
    # Case and separators do not matter when a code is typed.
    typed = codes[0].upper().replace("-", " ")
    first = kit.auth.login("ada", STRONG, origin=ORIGIN, recovery_code=typed)
    assert first.subject.mfa is True and first.recovery_codes_left == 9
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.login("ada", STRONG, origin=ORIGIN, recovery_code=codes[0])
    assert kit.auth.login("ada", STRONG, origin=ORIGIN, recovery_code=codes[1]).recovery_codes_left == 8
    events = kit.events_since(before)
    assert kit.actions(events) == [
        ("auth.login", "allowed"),
        ("auth.login", "denied"),
        ("auth.login", "allowed"),
    ]
    assert events[0].attributes["factor"] == "recovery_code"
    assert events[0].attributes["recovery_codes_left"] == 9
    with pytest.raises(ConfigError, match="not both"):
        kit.auth.login("ada", STRONG, origin=ORIGIN, totp_code="123456", recovery_code=codes[2])


def test_changing_the_second_factor_needs_the_password_and_the_current_one(kit: Kit) -> None:
    kit.user("ada", "ml-engineer")
    totp, codes = kit.enrol("ada")
    with pytest.raises(AuthenticationFailed, match="needs your password and a one-time code"):
        kit.auth.begin_mfa_enrolment("ada", password=STRONG, origin=ORIGIN)
    with pytest.raises(AuthenticationFailed, match=NOT_ACCEPTED):
        kit.auth.begin_mfa_enrolment("ada", password=WRONG, origin=ORIGIN, totp_code=kit.code(totp))
    new = kit.auth.begin_mfa_enrolment("ada", password=STRONG, origin=ORIGIN, totp_code=kit.code(totp))
    kit.clock.advance(30)
    # Until confirmed, the old authenticator is still the one that works.
    assert kit.auth.login("ada", STRONG, origin=ORIGIN, totp_code=kit.code(totp)).session is not None
    done = kit.auth.confirm_mfa_enrolment("ada", kit.code(new.totp), password=STRONG, origin=ORIGIN)
    kit.clock.advance(30)
    with pytest.raises(AuthenticationFailed):
        kit.auth.login("ada", STRONG, origin=ORIGIN, totp_code=kit.code(totp))
    with pytest.raises(AuthenticationFailed):
        kit.auth.login("ada", STRONG, origin=ORIGIN, recovery_code=codes[5])  # old codes are gone
    assert kit.auth.login("ada", STRONG, origin=ORIGIN, recovery_code=done.recovery_codes.codes[5]).session


def test_new_recovery_codes_need_a_fresh_second_factor_and_replace_the_old(kit: Kit) -> None:
    kit.user("ada", "ml-engineer")
    totp, old = kit.enrol("ada")
    with pytest.raises(AuthenticationFailed, match="one-time code"):
        kit.auth.regenerate_recovery_codes("ada", password=STRONG, origin=ORIGIN)
    before = kit.head()
    new = kit.auth.regenerate_recovery_codes("ada", password=STRONG, origin=ORIGIN, totp_code=kit.code(totp))
    assert len(new.codes) == 10 and not set(new.codes) & set(old)
    [event] = kit.events_since(before)
    assert (event.action, event.outcome, event.attributes["stage"]) == (
        "auth.recovery_code",
        "allowed",
        "regenerate",
    )
    with pytest.raises(AuthenticationFailed):
        kit.auth.login("ada", STRONG, origin=ORIGIN, recovery_code=old[0])
    assert kit.auth.login("ada", STRONG, origin=ORIGIN, recovery_code=new.codes[0]).session is not None
    kit.user("vic", "viewer")
    with pytest.raises(IdentityError, match="no second factor is enrolled"):
        kit.auth.regenerate_recovery_codes("vic", password=STRONG, origin=ORIGIN, totp_code="123456")


def test_an_enrolment_waits_fifteen_minutes_for_its_first_code(kit: Kit) -> None:
    kit.user("ada", "ml-engineer")
    enrolment = kit.auth.begin_mfa_enrolment("ada", password=STRONG, origin=ORIGIN)
    kit.clock.advance(16 * 60)
    with pytest.raises(IdentityError, match="no MFA enrolment is waiting"):
        kit.auth.confirm_mfa_enrolment("ada", kit.code(enrolment.totp), password=STRONG, origin=ORIGIN)
    again = kit.auth.begin_mfa_enrolment("ada", password=STRONG, origin=ORIGIN)
    kit.clock.advance(14 * 60)
    done = kit.auth.confirm_mfa_enrolment("ada", kit.code(again.totp), password=STRONG, origin=ORIGIN)
    assert done.login.subject.mfa is True


def test_an_admin_resets_mfa_only_from_a_session_that_passed_mfa(kit: Kit) -> None:
    kit.user("boss", "admin")
    kit.user("ada", "ml-engineer")
    boss_totp, _ = kit.enrol("boss")
    ada_totp, _ = kit.enrol("ada")
    ada_session = kit.auth.login("ada", STRONG, origin=ORIGIN, totp_code=kit.code(ada_totp)).session
    assert ada_session is not None
    ada = kit.auth.authenticate_token(ada_session.token, origin=ORIGIN)
    boss = kit.auth.login("boss", STRONG, origin=ORIGIN, totp_code=kit.code(boss_totp)).subject
    # Without user.update (ada herself), or as an admin whose session has no MFA: refused, one event each.
    before = kit.head()
    with pytest.raises(AccessDenied):
        kit.auth.reset_mfa("ada", by=ada, origin=ORIGIN)
    with pytest.raises(AccessDenied):
        kit.auth.reset_mfa("ada", by=replace(boss, mfa=False), origin=ORIGIN)
    assert kit.actions(kit.events_since(before)) == [("auth.mfa_reset", "denied")] * 2
    before = kit.head()
    kit.auth.reset_mfa("ada", by=boss, origin=ORIGIN)
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.resource, event.outcome) == (
        "auth.mfa_reset",
        "boss",
        "user:ada",
        "allowed",
    )
    assert event.attributes == {"sessions_revoked": 2}  # the enrolment's session and the login's
    with pytest.raises(AuthenticationFailed, match="revoked"):
        kit.auth.authenticate_token(ada_session.token, origin=ORIGIN)
    assert kit.auth.login("ada", STRONG, origin=ORIGIN).status is LoginStatus.MFA_ENROLMENT_NEEDED


def test_a_role_allowed_to_reset_without_mfa_still_needs_an_mfa_session(
    database: Database, tmp_path: Path
) -> None:
    """A custom role may grant user.update without requiring MFA; the reset itself still asks for it."""
    kit = Kit(database, tmp_path)
    # Resetting an ML engineer's second factor also needs the power to make one (role.grant).
    helpdesk = Role("helpdesk", (Rule.of("user.update"), Rule.of("role.grant", "role:ml-engineer")))
    auth = Authenticator(
        database,
        events=kit.events,
        keyring=kit.keyring,
        policy=Policy(roles=[helpdesk]),
        passwords=kit.passwords,
        clock=kit.clock,
    )
    kit.user("ada", "ml-engineer")
    kit.enrol("ada")
    with pytest.raises(AccessDenied, match="needs a session that passed MFA"):
        auth.reset_mfa("ada", by=Subject("desk", "user", (Grant("helpdesk"),)), origin=ORIGIN)
    auth.reset_mfa("ada", by=Subject("desk", "user", (Grant("helpdesk"),), mfa=True), origin=ORIGIN)
    assert kit.accounts.get("ada").mfa_enrolled is False
