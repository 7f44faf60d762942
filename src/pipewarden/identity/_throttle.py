"""Login throttling: failures slow down further attempts, without letting an attacker lock people out.

Three counters, each a row of ``login_throttle``:

- ``pair:<account digest>/<digest>``: one account tried from one origin (the
  account's part lets a reset find every pair of one account);
- ``account:<name>``: one account tried from any origin not known for it;
- ``origin:<origin>``: any account tried from one origin not known for it (password spraying).

An origin is known for an account when the account logged in from it within
`ThrottleRule.trust_origin_for`. An attempt is refused ("try again after T")
while a counter that applies to it is locked: the pair always, the account
and origin counters only when the origin is not known for the account. So an
attacker failing elsewhere (or failing against other accounts from a shared
address) slows down whoever is new to the account, and never the account's
own people at the origins they use; only their own pair can lock them there.

Each attempt is charged to its counters *before* its password is checked and
refunded if it turns out to be right, so parallel guesses cannot slip through
while the first one is still being verified. After `free` failures a counter
locks for `base_delay` doubled with each further failure, up to `max_delay`;
a counter whose last failure is older than `forget_after` starts over. The
library never sleeps: it answers with the time to come back.

Unknown account names are counted exactly like real ones, so neither the
answers nor the delays tell whether an account exists. (`Verifier` counts an
attempt under the name events record: the name as typed when a principal of
that name exists, its pseudonym otherwise, so no mistyped password is stored
here either.) docs/access.md
("Throttling and lockout") states the rule for users and operators.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pipewarden.db import Database, login_throttle
from pipewarden.errors import ConfigError

__all__ = ["Charge", "CounterRule", "Throttle", "ThrottleRule", "Throttled"]

_MAX_READABLE = 256


@dataclass(frozen=True, slots=True)
class CounterRule:
    """How one kind of counter locks: `free` failures, then `base_delay` doubling up to `max_delay`."""

    free: int
    base_delay: timedelta
    max_delay: timedelta

    def __post_init__(self) -> None:
        if self.free < 1 or self.base_delay <= timedelta(0) or self.max_delay < self.base_delay:
            raise ConfigError(
                "a throttle counter needs at least one free attempt and 0 < base delay <= maximum delay"
            )

    def delay(self, failures: int) -> timedelta:
        """How long the counter stays locked after its `failures`-th failure."""
        over = failures - self.free
        if over <= 0:
            return timedelta(0)
        # Doubling stops where it passes the maximum (no huge powers of two).
        return min(self.base_delay * (1 << min(over - 1, 40)), self.max_delay)


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    """The whole rule; the defaults are what docs/access.md states."""

    pair: CounterRule = CounterRule(3, timedelta(seconds=1), timedelta(minutes=15))
    account: CounterRule = CounterRule(5, timedelta(seconds=1), timedelta(minutes=15))
    origin: CounterRule = CounterRule(20, timedelta(seconds=1), timedelta(minutes=15))
    forget_after: timedelta = timedelta(hours=24)
    trust_origin_for: timedelta = timedelta(days=90)

    def __post_init__(self) -> None:
        if self.forget_after <= timedelta(0) or self.trust_origin_for <= timedelta(0):
            raise ConfigError("throttle periods must be positive")

    def for_key(self, key: str) -> CounterRule:
        kind = key.partition(":")[0]
        return self.pair if kind == "pair" else self.account if kind == "account" else self.origin


@dataclass(frozen=True, slots=True)
class Throttled:
    """An attempt refused before its credentials were looked at; `retry_after` is when to come back."""

    retry_after: datetime
    counter: str  # 'pair', 'account' or 'origin'


@dataclass(frozen=True, slots=True)
class Charge:
    """The counters one admitted attempt was charged to, to be settled once its outcome is known."""

    keys: tuple[str, ...]
    pair_key: str
    at: datetime


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _pair_prefix(account: str) -> str:
    """What every pair key of `account` starts with (hex digits only: nothing in it is a wildcard)."""
    return f"pair:{_digest(account)[:16]}/"


def _readable(prefix: str, value: str) -> str:
    """``prefix:value`` for short printable values, else ``prefix:#<digest>`` (bounded key length)."""
    if value and len(value) <= _MAX_READABLE and value.isprintable():
        return f"{prefix}:{value}"
    return f"{prefix}:#{_digest(value)}"


class Throttle:
    """The counters of one database under one `ThrottleRule`.

    >>> throttle = Throttle(db)
    >>> verdict = throttle.admit("ada", "203.0.113.5", at=now)
    >>> if isinstance(verdict, Throttled): refuse(verdict.retry_after)
    >>> throttle.settle(verdict, succeeded=True)
    """

    def __init__(self, db: Database, *, rule: ThrottleRule | None = None) -> None:
        self.db = db
        self.rule = rule or ThrottleRule()

    @staticmethod
    def keys(account: str, origin: str) -> tuple[str, str, str]:
        """The (pair, account, origin) counter keys of an attempt."""
        return (
            f"{_pair_prefix(account)}{_digest(account, origin)}",
            _readable("account", account),
            _readable("origin", origin),
        )

    def admit(self, account: str, origin: str, *, at: datetime) -> Charge | Throttled:
        """Refuse the attempt if a counter that applies is locked; else charge it and return the charge."""
        pair_key, account_key, origin_key = self.keys(account, origin)
        with self.db.transaction() as conn:
            rows = {key: self._lock_row(conn, key) for key in (pair_key, account_key, origin_key)}
            pair = rows[pair_key]
            known = (
                pair.last_success_at is not None and at - pair.last_success_at <= self.rule.trust_origin_for
            )
            applies = [pair_key] if known else [pair_key, account_key, origin_key]
            locked = [
                (rows[k].locked_until, k.partition(":")[0])
                for k in applies
                if rows[k].locked_until is not None and rows[k].locked_until > at
            ]
            if locked:
                until, counter = max(locked)
                return Throttled(retry_after=until, counter=counter)
            for key in applies:
                self._fail(conn, key, rows[key], at)
        return Charge(keys=tuple(applies), pair_key=pair_key, at=at)

    def settle(self, charge: Charge, *, succeeded: bool, trust_origin: bool = True) -> None:
        """Keep the charge of a failure; refund a success (and remember its origin when `trust_origin`).

        A refund takes back the one failure this attempt added; it does not
        clear failures others made from elsewhere, which age out instead.
        """
        if not succeeded:
            return
        with self.db.transaction() as conn:
            for key in charge.keys:
                row = self._lock_row(conn, key)
                failures = max(int(row.failures) - 1, 0)
                values: dict[str, object] = {"failures": failures}
                if key == charge.pair_key and trust_origin:
                    values = {
                        "failures": 0,
                        "first_failure_at": None,
                        "last_failure_at": None,
                        "locked_until": None,
                        "last_success_at": charge.at,
                    }
                elif self.rule.for_key(key).delay(failures) == timedelta(0):
                    values["locked_until"] = None
                conn.execute(update(login_throttle).where(login_throttle.c.key == key).values(**values))

    def state(self, key: str) -> tuple[int, datetime | None]:
        """A counter's failures and lock end (for operators and tests)."""
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                select(login_throttle.c.failures, login_throttle.c.locked_until).where(
                    login_throttle.c.key == key
                )
            ).first()
        return (0, None) if row is None else (int(row.failures), row.locked_until)

    def forget(self, account: str) -> None:
        """Clear the failures counted against an account, from anywhere (an administrator vouching for
        it, after a reset): its account counter and each of its pair counters. The pairs keep when the
        account last logged in from their origin, so its known origins stay known."""
        with self.db.transaction() as conn:
            conn.execute(delete(login_throttle).where(login_throttle.c.key == _readable("account", account)))
            conn.execute(
                update(login_throttle)
                .where(login_throttle.c.key.startswith(_pair_prefix(account), autoescape=True))
                .values(failures=0, first_failure_at=None, last_failure_at=None, locked_until=None)
            )

    def prune(self, *, at: datetime) -> int:
        """Delete counters with nothing left to remember (no recent failure, no trusted origin)."""
        quiet = at - self.rule.forget_after
        untrusted = at - self.rule.trust_origin_for
        with self.db.transaction() as conn:
            gone = conn.execute(
                delete(login_throttle).where(
                    (login_throttle.c.last_failure_at.is_(None)) | (login_throttle.c.last_failure_at < quiet),
                    (login_throttle.c.last_success_at.is_(None))
                    | (login_throttle.c.last_success_at < untrusted),
                )
            )
        return int(gone.rowcount)

    def _lock_row(self, conn: Connection, key: str) -> Row[Any]:
        """The counter's row, created if missing and locked until the transaction ends."""
        values = {"key": key, "failures": 0}
        if self.db.dialect == "postgresql":
            conn.execute(postgresql.insert(login_throttle).values(**values).on_conflict_do_nothing())
        else:
            # SQLite: the write transaction already holds the database's one write lock.
            conn.execute(sqlite.insert(login_throttle).values(**values).on_conflict_do_nothing())
        return conn.execute(select(login_throttle).where(login_throttle.c.key == key).with_for_update()).one()

    def _fail(self, conn: Connection, key: str, row: Row[Any], at: datetime) -> None:
        last = row.last_failure_at
        stale = last is None or at - last > self.rule.forget_after
        failures = 1 if stale else int(row.failures) + 1
        delay = self.rule.for_key(key).delay(failures)
        conn.execute(
            update(login_throttle)
            .where(login_throttle.c.key == key)
            .values(
                failures=failures,
                first_failure_at=at if stale else row.first_failure_at,
                last_failure_at=at,
                locked_until=at + delay if delay else None,
            )
        )
