"""Login attempts on names that are not principals are recorded under a keyed pseudonym.

A password typed into the name field used to go into the permanent audit log
as the attempt's actor and resource (regression). Now a name is recorded as
typed only when a principal of that name exists; any other is recorded (and
throttled) as ``unknown:<16 hex>``, HMAC-SHA256 under a key sealed with the key
ring in the database: stable, so repeated attempts still correlate, and not
reversible without the key.

Runs on SQLite and PostgreSQL, reading the events back from the real audit log.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from sqlalchemy import select, update

from pipewarden.crypto import FileKeyProvider, KeyRing
from pipewarden.db import Database, identity_keys, login_throttle
from pipewarden.errors import AuthenticationFailed, IntegrityError, LoginThrottled
from pipewarden.identity import Authenticator
from pipewarden.identity._pseudonyms import Pseudonyms
from tests.identity.authkit import ROOT, STRONG, Kit

ORIGIN = "cli:ada@laptop"
SWAPPED_IN = "Tr0ub4dor&3-horse-staple"  # typed into the name field by mistake
PSEUDONYM = re.compile(r"unknown:[0-9a-f]{16}")


@pytest.fixture
def kit(database: Database, tmp_path: Path) -> Kit:
    return Kit(database, tmp_path)


def _fresh(kit: Kit, keyring: KeyRing | None = None) -> Authenticator:
    """Another process over the same deployment (or, with `keyring`, under another key ring)."""
    return Authenticator(
        kit.db,
        events=kit.events,
        keyring=keyring or kit.keyring,
        passwords=kit.passwords,
        clock=kit.clock,
    )


def _throttle_keys(db: Database) -> list[str]:
    with db.transaction(write=False) as conn:
        return list(conn.execute(select(login_throttle.c.key)).scalars())


def test_a_password_typed_as_the_name_never_reaches_the_log_or_the_throttle_table(kit: Kit) -> None:
    kit.user("ada", "viewer")
    before = kit.head()
    with pytest.raises(AuthenticationFailed, match=r"^the credentials were not accepted$"):
        kit.auth.login(SWAPPED_IN, "ada", origin=ORIGIN)  # the fields swapped
    [event] = kit.events_since(before)
    assert PSEUDONYM.fullmatch(event.actor), event.actor
    assert event.resource == f"user:{event.actor}"
    assert (event.action, event.outcome, event.attributes) == (
        "auth.login",
        "denied",
        {"reason": "credentials"},
    )
    assert all(SWAPPED_IN not in e.to_json() for e in kit.events_since(0))
    assert all(SWAPPED_IN not in key for key in _throttle_keys(kit.db))
    assert event.actor == kit.auth.recorded_name(SWAPPED_IN)


def test_the_pseudonym_is_stable_across_processes_and_differs_between_names(kit: Kit) -> None:
    names = [SWAPPED_IN, "nobody", "Nobody", "x" * 300, "nul\x00name", ""]
    first = {name: kit.auth.recorded_name(name) for name in names}
    again = {name: _fresh(kit).recorded_name(name) for name in names}
    assert first == again
    assert len(set(first.values())) == len(names)
    assert all(PSEUDONYM.fullmatch(p) for p in first.values())
    # Keyed: not the plain hash of the name, which anyone could compute for a guess.
    assert first["nobody"] != "unknown:" + hashlib.sha256(b"nobody").hexdigest()[:16]


def test_names_of_principals_are_recorded_as_typed(kit: Kit) -> None:
    kit.user("vic", "viewer")
    kit.user("dora", "viewer")
    kit.accounts.disable("dora", actor=ROOT)
    kit.service("ci", "pipeline-service")
    for name in ("vic", "dora", "ci"):
        before = kit.head()
        with pytest.raises(AuthenticationFailed):
            kit.auth.login(name, "wrong password for sure", origin=ORIGIN)
        [event] = kit.events_since(before)
        assert (event.actor, event.resource) == (name, f"user:{name}")
    # A name of principal shape that nobody holds is not recorded as typed.
    assert PSEUDONYM.fullmatch(kit.auth.recorded_name("eve"))


def test_repeated_attempts_on_one_unknown_name_still_correlate_and_are_throttled(kit: Kit) -> None:
    """The monitor's brute-force rule and the throttle both need the same name for the same attempts."""
    before = kit.head()
    for _ in range(4):  # three free failures of the pair, and a fourth that locks it for a second
        with pytest.raises(AuthenticationFailed):
            _fresh(kit).login(SWAPPED_IN, "guess", origin=ORIGIN)
        kit.clock.advance(0.1)
    with pytest.raises(LoginThrottled) as info:
        _fresh(kit).login(SWAPPED_IN, "guess", origin=ORIGIN)
    events = kit.events_since(before)
    assert len({e.actor for e in events}) == 1
    assert [e.attributes["reason"] for e in events] == ["credentials"] * 4 + ["throttled"]
    # The refusal does not echo a name that could be a password.
    assert SWAPPED_IN not in str(info.value)
    assert str(info.value).startswith("the name given: too many failed attempts; try again after ")


def test_the_key_is_kept_sealed_in_the_database(kit: Kit) -> None:
    kit.auth.recorded_name("nobody")
    key = kit.auth._verifier.pseudonyms.key()
    with kit.db.transaction(write=False) as conn:
        [row] = conn.execute(select(identity_keys)).all()
    assert row.purpose == "login-pseudonym" and key not in bytes(row.sealed)
    assert Pseudonyms(kit.db, keyring=kit.keyring, clock=kit.clock).key() == key


def test_a_key_sealed_under_a_key_ring_that_is_gone_is_replaced(kit: Kit, tmp_path: Path) -> None:
    old = kit.auth.recorded_name("nobody")
    other = KeyRing(FileKeyProvider.create(tmp_path / "other-keyring.json"))
    replaced = _fresh(kit, other).recorded_name("nobody")
    assert PSEUDONYM.fullmatch(replaced) and replaced != old
    assert _fresh(kit, other).recorded_name("nobody") == replaced


def test_a_tampered_key_is_an_error_not_a_new_key(kit: Kit) -> None:
    kit.auth.recorded_name("nobody")
    with kit.db.transaction() as conn:
        sealed = bytes(conn.execute(select(identity_keys.c.sealed)).scalar_one())
        flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
        conn.execute(update(identity_keys).values(sealed=flipped))
    with pytest.raises(IntegrityError, match="the login pseudonym key"):
        _fresh(kit).login("nobody", STRONG, origin=ORIGIN)
