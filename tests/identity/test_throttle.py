"""Login throttling: failures slow guessing down per account, origin and pair, and cannot lock people out.

The rule under test is the one docs/access.md ("Throttling and lockout")
states; every time is set on the clock, nothing sleeps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipewarden.db import Database
from pipewarden.errors import AuthenticationFailed, LoginThrottled
from pipewarden.identity import Charge, CounterRule, Throttle, Throttled, ThrottleRule
from tests.identity.authkit import STRONG, Kit

T0 = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
USER_ORIGIN = "198.51.100.7"
ATTACKER = "203.0.113.66"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fail(throttle: Throttle, account: str, origin: str, when: datetime) -> Charge:
    charge = throttle.admit(account, origin, at=when)
    assert isinstance(charge, Charge), f"attempt at {when} was throttled: {charge}"
    throttle.settle(charge, succeeded=False)
    return charge


def succeed(throttle: Throttle, account: str, origin: str, when: datetime) -> None:
    charge = throttle.admit(account, origin, at=when)
    assert isinstance(charge, Charge), f"attempt at {when} was throttled: {charge}"
    throttle.settle(charge, succeeded=True)


def test_delays_double_after_the_free_attempts_up_to_the_maximum() -> None:
    rule = CounterRule(3, timedelta(seconds=1), timedelta(minutes=15))
    assert [rule.delay(n).total_seconds() for n in range(1, 9)] == [0, 0, 0, 1, 2, 4, 8, 16]
    assert rule.delay(40) == timedelta(minutes=15)
    assert rule.delay(10**6) == timedelta(minutes=15)


def test_a_pair_locks_after_three_failures_and_says_until_when(database: Database) -> None:
    throttle = Throttle(database)
    for i in range(3):
        fail(throttle, "ada", ATTACKER, at(i))
    fail(throttle, "ada", ATTACKER, at(3))  # the 4th failure locks the pair for 1 s
    refused = throttle.admit("ada", ATTACKER, at=at(3.5))
    assert refused == Throttled(retry_after=at(4), counter="pair")
    fail(throttle, "ada", ATTACKER, at(4))  # 5th: 2 s
    assert throttle.admit("ada", ATTACKER, at=at(5.9)) == Throttled(retry_after=at(6), counter="pair")
    # A refused attempt is not a failure: it does not push the lock further out.
    assert isinstance(throttle.admit("ada", ATTACKER, at=at(6)), Charge)


def test_an_attacker_elsewhere_never_locks_the_user_out_of_an_origin_they_used(database: Database) -> None:
    throttle = Throttle(database)
    succeed(throttle, "ada", USER_ORIGIN, at(0))  # the user's own origin is now known
    # The attacker rotates origins (a botnet): each new origin fails a few times.
    t = 1.0
    for n in range(30):
        origin = f"203.0.113.{n}"
        for _ in range(2):
            verdict = throttle.admit("ada", origin, at=at(t))
            if isinstance(verdict, Charge):
                throttle.settle(verdict, succeeded=False)
            t += 0.25
    # The account is locked for new origins...
    locked = throttle.admit("ada", "192.0.2.200", at=at(t))
    assert isinstance(locked, Throttled) and locked.counter == "account"
    # ...but not for the origin the user has logged in from.
    assert isinstance(throttle.admit("ada", USER_ORIGIN, at=at(t)), Charge)


def test_the_account_counter_slows_a_new_origin_of_a_real_user_too(database: Database) -> None:
    """The documented price: someone new to an account under attack waits like the attacker does."""
    throttle = Throttle(database)
    for n in range(6):
        fail(throttle, "ada", f"203.0.113.{n}", at(n))
    locked = throttle.admit("ada", "192.0.2.1", at=at(5.5))
    assert locked == Throttled(retry_after=at(6), counter="account")
    assert isinstance(throttle.admit("ada", "192.0.2.1", at=at(6)), Charge)


def test_people_behind_a_busy_shared_address_are_not_locked_out_by_its_spraying(database: Database) -> None:
    """One office address: an attacker sprays from it, colleagues keep logging in to their own accounts."""
    throttle = Throttle(database)
    office = "192.0.2.10"
    for n in range(5):
        succeed(throttle, f"colleague{n}", office, at(0))
    for n in range(21):
        fail(throttle, f"victim{n}", office, at(1 + n * 0.01))
    # The address is locked for accounts new to it, and not for the colleagues' own.
    assert isinstance(throttle.admit("someone-new", office, at=at(1.5)), Throttled)
    for n in range(5):
        fail(throttle, f"colleague{n}", office, at(1.5))  # a typo is charged to their own pair only
        succeed(throttle, f"colleague{n}", office, at(1.5))


def test_an_origin_spraying_many_accounts_is_slowed_down(database: Database) -> None:
    throttle = Throttle(database)
    for n in range(21):
        fail(throttle, f"user{n}", ATTACKER, at(n))
    # The 21st failure (at 20 s) locks the origin for a second, whatever account it tries next.
    assert throttle.admit("someone-else", ATTACKER, at=at(20.5)) == Throttled(at(21), "origin")
    # Other origins are not affected.
    assert isinstance(throttle.admit("someone-else", USER_ORIGIN, at=at(20.5)), Charge)


def test_a_success_refunds_its_own_charge_and_clears_its_pair(database: Database) -> None:
    throttle = Throttle(database)
    pair, account, origin = Throttle.keys("ada", USER_ORIGIN)
    fail(throttle, "ada", USER_ORIGIN, at(0))
    fail(throttle, "ada", USER_ORIGIN, at(1))
    assert throttle.state(pair)[0] == 2 and throttle.state(account)[0] == 2
    succeed(throttle, "ada", USER_ORIGIN, at(2))
    # The pair starts over; the account and origin keep the failures (they age out instead).
    assert throttle.state(pair) == (0, None)
    assert throttle.state(account)[0] == 2 and throttle.state(origin)[0] == 2
    # Known now: only the pair is charged for this account at this origin.
    fail(throttle, "ada", USER_ORIGIN, at(3))
    assert throttle.state(pair)[0] == 1
    assert throttle.state(account)[0] == 2 and throttle.state(origin)[0] == 2


def test_attempts_in_flight_are_charged_before_they_are_checked(database: Database) -> None:
    """Parallel guesses cannot all pass while the first is still in argon2: each is charged on admission."""
    throttle = Throttle(database)
    admitted = [throttle.admit("ada", ATTACKER, at=at(0)) for _ in range(6)]
    assert [isinstance(a, Charge) for a in admitted] == [True, True, True, True, False, False]


def test_failures_are_forgotten_after_a_quiet_day(database: Database) -> None:
    throttle = Throttle(database)
    for i in range(5):
        fail(throttle, "ada", ATTACKER, at(i * 100))
    pair = Throttle.keys("ada", ATTACKER)[0]
    assert throttle.state(pair)[0] == 5
    later = at(400) + timedelta(hours=24, seconds=1)
    fail(throttle, "ada", ATTACKER, later)
    assert throttle.state(pair) == (1, None)


def test_a_known_origin_is_trusted_for_ninety_days_then_counts_as_new(database: Database) -> None:
    throttle = Throttle(database)
    succeed(throttle, "ada", USER_ORIGIN, at(0))
    for n in range(6):
        fail(throttle, "ada", f"203.0.113.{n}", at(100 + n))
    assert isinstance(throttle.admit("ada", USER_ORIGIN, at=at(105.5)), Charge)
    much_later = at(0) + timedelta(days=91)
    for n in range(6):
        fail(throttle, "ada", f"203.0.113.{n}", much_later + timedelta(seconds=n))
    verdict = throttle.admit("ada", USER_ORIGIN, at=much_later + timedelta(seconds=5.5))
    assert isinstance(verdict, Throttled) and verdict.counter == "account"


def test_long_or_strange_names_and_origins_get_bounded_keys(database: Database) -> None:
    throttle = Throttle(database)
    name, origin = "x" * 5000, "o\n" * 300
    keys = Throttle.keys(name, origin)
    assert all(len(k) <= 90 for k in keys)
    fail(throttle, name, origin, at(0))
    assert throttle.state(keys[1])[0] == 1


def test_prune_keeps_what_still_matters(database: Database) -> None:
    throttle = Throttle(database)
    succeed(throttle, "ada", USER_ORIGIN, at(0))
    fail(throttle, "bob", ATTACKER, at(0))
    assert throttle.prune(at=at(60)) == 0
    # Two days on: bob's three counters and ada's refunded account and origin counters go;
    # the pair that remembers ada's known origin stays.
    assert throttle.prune(at=at(0) + timedelta(days=2)) == 5
    ada_pair = Throttle.keys("ada", USER_ORIGIN)[0]
    fail(throttle, "ada", "192.0.2.9", at(0) + timedelta(days=2))
    assert throttle.state(ada_pair) == (0, None)
    assert throttle.prune(at=at(0) + timedelta(days=200)) >= 1


def test_rule_values_are_checked() -> None:
    from pipewarden.errors import ConfigError

    with pytest.raises(ConfigError):
        CounterRule(0, timedelta(seconds=1), timedelta(seconds=2))
    with pytest.raises(ConfigError):
        CounterRule(3, timedelta(seconds=5), timedelta(seconds=2))
    with pytest.raises(ConfigError):
        ThrottleRule(forget_after=timedelta(0))


# --- through the Authenticator -------------------------------------------------------------------


def test_login_is_refused_with_a_time_to_come_back_and_one_event(database: Database, tmp_path: Path) -> None:
    kit = Kit(database, tmp_path)
    kit.user("ada")
    for _ in range(4):
        with pytest.raises(AuthenticationFailed, match=r"^the credentials were not accepted$"):
            kit.auth.login("ada", "wrong password, not hers", origin=ATTACKER)
    before = kit.head()
    verifications = kit.passwords.verifications
    with pytest.raises(LoginThrottled, match=r"^ada: too many failed attempts; try again after ") as info:
        kit.auth.login("ada", STRONG, origin=ATTACKER)  # even the right password: not checked at all
    assert info.value.retry_after == kit.clock.now + timedelta(seconds=1)
    assert kit.passwords.verifications == verifications
    [event] = kit.events_since(before)
    assert (event.action, event.outcome, event.attributes["reason"]) == ("auth.login", "denied", "throttled")
    assert event.attributes["counter"] == "pair"
    # The user, from an origin of their own, is not affected.
    assert kit.auth.login("ada", STRONG, origin=USER_ORIGIN).session is not None
    kit.clock.advance(1)
    assert kit.auth.login("ada", STRONG, origin=ATTACKER).session is not None


def test_an_unknown_name_is_throttled_exactly_like_a_real_one(database: Database, tmp_path: Path) -> None:
    kit = Kit(database, tmp_path)
    kit.user("ada")
    messages = {}
    for name in ("ada", "nobody"):
        for _ in range(4):
            with pytest.raises(AuthenticationFailed):
                kit.auth.login(name, "wrong password, not hers", origin=ATTACKER)
        with pytest.raises(LoginThrottled) as info:
            kit.auth.login(name, "wrong password, not hers", origin=ATTACKER)
        messages[name] = (str(info.value).replace(name, "NAME"), info.value.retry_after)
        kit.clock.advance(3600)
    assert messages["ada"][0] == messages["nobody"][0].replace(
        str(messages["nobody"][1].isoformat(timespec="seconds")),
        str(messages["ada"][1].isoformat(timespec="seconds")),
    )


def test_the_real_user_logs_in_from_home_while_the_account_is_under_attack(
    database: Database, tmp_path: Path
) -> None:
    kit = Kit(database, tmp_path)
    kit.user("ada")
    assert kit.auth.login("ada", STRONG, origin=USER_ORIGIN).session is not None  # home is known now
    for n in range(12):
        with pytest.raises(AuthenticationFailed):  # LoginThrottled included, once locked
            kit.auth.login("ada", "wrong password, not hers", origin=f"203.0.113.{n % 3}")
        kit.clock.advance(0.5)
    with pytest.raises(LoginThrottled):
        kit.auth.login("ada", STRONG, origin="192.0.2.77")  # new to the account: waits like the attacker
    assert kit.auth.login("ada", STRONG, origin=USER_ORIGIN).session is not None


def test_forgetting_an_account_clears_its_counters_from_every_origin_and_no_one_elses(
    database: Database,
) -> None:
    throttle = Throttle(database)
    succeed(throttle, "ada", USER_ORIGIN, at(0))
    for i in range(6):
        fail(throttle, "ada", USER_ORIGIN, at(1 + i * 100))
        fail(throttle, "ada", ATTACKER, at(2 + i * 100))
        fail(throttle, "ada_", ATTACKER, at(3 + i * 100))  # '_' is a LIKE wildcard: must not matter
    ada_home, _account, _origin = Throttle.keys("ada", USER_ORIGIN)
    ada_away = Throttle.keys("ada", ATTACKER)[0]
    other = Throttle.keys("ada_", ATTACKER)[0]
    assert throttle.state(ada_home)[0] == 6 and throttle.state(ada_away)[0] == 6
    throttle.forget("ada")
    assert throttle.state(ada_home) == (0, None) and throttle.state(ada_away) == (0, None)
    assert throttle.state(Throttle.keys("ada", USER_ORIGIN)[1]) == (0, None)
    assert throttle.state(other)[0] == 6
    # Her own origin is still known: an attempt from it is charged to the pair alone.
    charge = throttle.admit("ada", USER_ORIGIN, at=at(1000))
    assert isinstance(charge, Charge) and charge.keys == (ada_home,)
