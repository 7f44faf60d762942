"""What the authentication tests share: real components over one database, and a clock tests move.

Everything is the real thing: the database (SQLite or PostgreSQL), the audit
log the events land in, a key ring on disk, argon2id (at OWASP's cheapest
allowed parameters, for speed). The clock is the only stand-in: tests move
it instead of sleeping.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipewarden.audit import AuditLog
from pipewarden.crypto import FileKeyProvider, KeyRing, SigningKey, TrustedKeys
from pipewarden.db import Database
from pipewarden.events import Actor, Event, Events
from pipewarden.identity import (
    Accounts,
    Authenticator,
    Grant,
    PasswordPolicy,
    Policy,
    Principal,
    ThrottleRule,
    Totp,
    Verified,
)

#: 2026-01-05 09:00:00 UTC: a TOTP step boundary (a multiple of 30 seconds).
START = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
STRONG = "tangerine orbit velvet quarry"
OTHER_STRONG = "lantern meadow copper whistle"
ROOT = Actor("root", "system", "test")


class Clock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class CountingPolicy(PasswordPolicy):
    """The real password policy, counting the argon2 verifications it does for accounts that do not exist."""

    def __init__(self, **kwargs: int) -> None:
        super().__init__(memory_kib=19456, iterations=2, **kwargs)
        self.dummy_verifications = 0
        self.verifications = 0

    def verify(self, stored_hash: str, password: str) -> Verified:
        self.verifications += 1
        return super().verify(stored_hash, password)

    def dummy_verify(self, password: str) -> None:
        self.dummy_verifications += 1
        super().dummy_verify(password)


class Kit:
    """One deployment's authentication, built from real parts over `db`."""

    def __init__(self, db: Database, tmp_path: Path, *, throttle: ThrottleRule | None = None) -> None:
        self.db = db
        self.clock = Clock()
        key = SigningKey.generate()
        self.log = AuditLog(
            db,
            signing_key=key,
            trusted=TrustedKeys([key.public], source="test"),
            log_id="test",
            checkpoint_dir=tmp_path / "checkpoints",
        )
        self.events = Events(self.log)
        self.keyring = KeyRing(FileKeyProvider.create(tmp_path / "keyring.json"))
        self.passwords = CountingPolicy()
        self.policy = Policy.default()
        self.accounts = Accounts(db, events=self.events, passwords=self.passwords, clock=self.clock)
        self.auth = Authenticator(
            db,
            events=self.events,
            keyring=self.keyring,
            policy=self.policy,
            passwords=self.passwords,
            throttle=throttle,
            clock=self.clock,
        )

    def user(self, name: str, *roles: str, password: str = STRONG) -> Principal:
        return self.accounts.create_user(
            name, password=password, actor=ROOT, grants=[Grant(r) for r in roles]
        )

    def service(self, name: str, *roles: str) -> Principal:
        return self.accounts.create_service(name, actor=ROOT, grants=[Grant(r) for r in roles])

    def code(self, totp: Totp, *, offset_steps: int = 0) -> str:
        return totp.code_at(self.clock.now.timestamp() + offset_steps * totp.period)

    def enrol(
        self, name: str, *, password: str = STRONG, origin: str = "10.0.0.1"
    ) -> tuple[Totp, tuple[str, ...]]:
        """Enrol `name`'s second factor: its TOTP and recovery codes. Moves the clock a step on."""
        enrolment = self.auth.begin_mfa_enrolment(name, password=password, origin=origin)
        done = self.auth.confirm_mfa_enrolment(
            name, self.code(enrolment.totp), password=password, origin=origin
        )
        self.clock.advance(enrolment.totp.period)
        return enrolment.totp, done.recovery_codes.codes

    def events_since(self, seq: int = 0) -> list[Event]:
        return [entry.event for entry in self.log.records(seq + 1)]

    def head(self) -> int:
        entries = self.log.tail(1)
        return entries[-1].seq if entries else 0

    def actions(self, events: Sequence[Event]) -> list[tuple[str, str]]:
        return [(e.action, e.outcome) for e in events]
