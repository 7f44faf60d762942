"""Checking a person's credentials: throttle, password, second factor; then claiming what was used.

`Verifier.verify` is the only place a password or code is checked. It admits
the attempt through the throttle, does the argon2 work whether or not the
account exists (so cost and answer are the same for every name), and checks
a TOTP code or recovery code. Nothing is written until `Verifier.commit`
claims, in one transaction, the TOTP step (a conditional update, so a code
used twice at once is accepted once) or the recovery code, and stores what
the caller adds; only then is the throttle charge refunded.

A refusal is one event (outcome ``denied``) with a `reason`: ``credentials``
for an unknown, disabled or password-less account and a wrong password
alike, ``second_factor``, ``second_factor_needed``, ``throttled`` or
``no_pending_enrolment``. It names the account as typed only when a principal
of that name exists; any other name is recorded, and throttled, under its
pseudonym (`_pseudonyms`), so a password typed into the name field never
reaches the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, NoReturn

from sqlalchemy import Connection, Row, or_, select, update

from pipewarden.crypto import KeyRing
from pipewarden.db import Database, principals, recovery_codes
from pipewarden.errors import (
    AuthenticationFailed,
    ConfigError,
    IdentityError,
    LoginThrottled,
    SecondFactorNeeded,
)
from pipewarden.events import Actor, Events
from pipewarden.identity._accounts import Scalar, emit
from pipewarden.identity._bindings import grants_for
from pipewarden.identity._mfa import match_recovery_code, open_secret
from pipewarden.identity._passwords import MAX_LENGTH, NOT_ACCEPTED, PasswordPolicy
from pipewarden.identity._patterns import NAME_PATTERN
from pipewarden.identity._pseudonyms import Pseudonyms
from pipewarden.identity._subject import Grant
from pipewarden.identity._throttle import Charge, Throttle, Throttled, ThrottleRule

__all__ = ["Credentials", "Proof", "Refused", "SecondFactor", "Verifier"]

#: What a check needs besides the password: a code when enrolled and given ('optional', for a login
#: that may answer "second factor needed"), a code when enrolled ('if_enrolled'), always ('required'),
#: or a code from the secret being enrolled ('pending').
SecondFactor = Literal["optional", "if_enrolled", "required", "pending"]


def _echoed(name: str) -> str:
    """How an error message starts for a login name: the name when it is a well-formed principal name,
    whether or not one exists (so the answer does not tell); otherwise not echoed, as it may be a
    password typed into the wrong field."""
    return name if NAME_PATTERN.fullmatch(name) else "the name given"


@dataclass(frozen=True, slots=True)
class _Account:
    """The account a name stands for: `recorded`, how events and the throttle name the attempt, and,
    when it can log in with a password (an enabled user that has one), its row, grants and codes."""

    recorded: str
    row: Row[Any] | None = None
    grants: tuple[Grant, ...] = ()
    stored: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a person presents; no part of it ever appears in a repr, an event or an error."""

    name: str
    password: str = field(repr=False)
    totp_code: str | None = field(default=None, repr=False)
    recovery_code: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Proof:
    """Credentials that checked out, and what `Verifier.commit` will claim and store for them."""

    name: str
    principal_id: int
    grants: tuple[Grant, ...]
    enrolled: bool
    factor: str | None  # 'totp', 'recovery_code' or None (password only)
    charge: Charge
    step: int | None = None
    recovery_id: int | None = None
    recovery_left: int | None = None
    old_hash: str = field(default="", repr=False)
    new_hash: str | None = field(default=None, repr=False)
    pending_secret: bytes | None = field(default=None, repr=False)


class Refused(Exception):
    """A claim that lost a race (a code used meanwhile, a disabled account, a password changed
    meanwhile): a failure after all. Raised inside `Verifier.commit`, by it or by its `then`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Verifier:
    """Credential checks of one database, throttled, each refusal one event."""

    def __init__(
        self,
        db: Database,
        *,
        events: Events,
        keyring: KeyRing,
        passwords: PasswordPolicy,
        rule: ThrottleRule | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.events = events
        self.keyring = keyring
        self.passwords = passwords
        self.throttle = Throttle(db, rule=rule)
        self.clock = clock
        self.pseudonyms = Pseudonyms(db, keyring=keyring, clock=clock)

    def _refuse(
        self,
        name: str,
        *,
        origin: str,
        action: str,
        reason: str,
        attributes: dict[str, Scalar] | None = None,
    ) -> None:
        """One denied event for an attempt on `name`: a principal's name, or a pseudonym."""
        emit(
            self.events,
            action,
            actor=Actor(name, "user", origin),
            resource=f"user:{name}",
            outcome="denied",
            attributes={"reason": reason, **(attributes or {})},
        )

    def _fail(self, name: str, *, origin: str, action: str, reason: str) -> NoReturn:
        self._refuse(name, origin=origin, action=action, reason=reason)
        raise AuthenticationFailed(NOT_ACCEPTED)

    def verify(
        self,
        creds: Credentials,
        *,
        origin: str,
        action: str,
        second_factor: SecondFactor,
        window: timedelta | None = None,
    ) -> Proof:
        """Check `creds`: a `Proof`, or one event and `LoginThrottled` / `AuthenticationFailed`."""
        if creds.totp_code and creds.recovery_code:
            raise ConfigError("give a one-time code or a recovery code, not both")
        now = self.clock()
        account = self._load(creds.name)
        admitted = self.throttle.admit(account.recorded, origin, at=now)
        if isinstance(admitted, Throttled):
            when = admitted.retry_after.isoformat(timespec="seconds")
            self._refuse(
                account.recorded,
                origin=origin,
                action=action,
                reason="throttled",
                attributes={"retry_after": when, "counter": admitted.counter},
            )
            raise LoginThrottled(
                f"{_echoed(creds.name)}: too many failed attempts; try again after {when}",
                retry_after=admitted.retry_after,
            )
        charge = admitted
        row, password = account.row, creds.password
        if row is None or len(password) > MAX_LENGTH:
            # The same argon2 work as a real check, so the cost does not tell the account exists.
            self.passwords.dummy_verify(password[:MAX_LENGTH])
            self._fail(account.recorded, origin=origin, action=action, reason="credentials")
        try:
            verified = self.passwords.verify(row.password_hash, password)
        except AuthenticationFailed:
            self._fail(account.recorded, origin=origin, action=action, reason="credentials")
        new_hash = self.passwords.hash(password) if verified.needs_rehash else None
        proof = Proof(
            name=row.name,
            principal_id=int(row.id),
            grants=account.grants,
            enrolled=row.mfa_secret is not None,
            factor=None,
            charge=charge,
            old_hash=row.password_hash,
            new_hash=new_hash,
        )
        return self._second_factor(
            creds,
            proof,
            row,
            list(account.stored),
            origin=origin,
            action=action,
            mode=second_factor,
            window=window,
            now=now,
        )

    def recorded_name(self, name: str) -> str:
        """How events and the throttle name an attempt on `name`: as typed if a principal of that
        name exists, else its pseudonym."""
        return self._load(name).recorded

    def _load(self, name: str) -> _Account:
        """The account `name` stands for (see `_Account`), found with the same work for every name."""
        self.pseudonyms.key()  # read for every name, so its first read does not tell unknown names apart
        if NAME_PATTERN.fullmatch(name) is None:
            return _Account(self.pseudonyms.of(name))
        with self.db.transaction(write=False) as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
            if row is None:
                return _Account(self.pseudonyms.of(name))
            if row.kind != "user" or row.disabled or not row.password_hash:
                return _Account(name)
            stored = tuple(
                (int(r.id), str(r.digest))
                for r in conn.execute(
                    select(recovery_codes.c.id, recovery_codes.c.digest).where(
                        recovery_codes.c.principal_id == row.id, recovery_codes.c.used_at.is_(None)
                    )
                )
            )
            return _Account(name, row, grants_for(conn, name), stored)

    def _second_factor(
        self,
        creds: Credentials,
        proof: Proof,
        row: Row[Any],
        stored: list[tuple[int, str]],
        *,
        origin: str,
        action: str,
        mode: SecondFactor,
        window: timedelta | None,
        now: datetime,
    ) -> Proof:
        if mode == "pending":
            fresh = row.mfa_pending_at is not None and (window is None or now - row.mfa_pending_at <= window)
            if row.mfa_pending_secret is None or not fresh:
                self.throttle.settle(proof.charge, succeeded=True, trust_origin=False)
                self._refuse(proof.name, origin=origin, action=action, reason="no_pending_enrolment")
                raise IdentityError(
                    f"{proof.name}: no MFA enrolment is waiting for a code (or it expired); start again"
                )
            totp = open_secret(self.keyring, proof.name, row.mfa_pending_secret)
            try:
                step = totp.verify(creds.totp_code or "", last_step=None, at=now.timestamp())
            except AuthenticationFailed:
                self._fail(proof.name, origin=origin, action=action, reason="second_factor")
            return replace(proof, factor="totp", step=step, pending_secret=row.mfa_pending_secret)
        has_code = bool(creds.totp_code or creds.recovery_code)
        if not proof.enrolled:
            if mode == "required":
                self.throttle.settle(proof.charge, succeeded=True, trust_origin=False)
                self._refuse(proof.name, origin=origin, action=action, reason="not_enrolled")
                raise IdentityError(f"{proof.name}: no second factor is enrolled; enrol one first")
            return proof  # a code given to an account without a second factor is not looked at
        if not has_code:
            if mode == "optional":
                return proof
            self.throttle.settle(proof.charge, succeeded=True, trust_origin=False)
            self._refuse(proof.name, origin=origin, action=action, reason="second_factor_needed")
            raise SecondFactorNeeded(
                f"{proof.name}: this needs your password and a one-time code (or a recovery code)"
            )
        if creds.recovery_code:
            found = match_recovery_code(proof.name, creds.recovery_code, stored)
            if found is None:
                self._fail(proof.name, origin=origin, action=action, reason="second_factor")
            return replace(proof, factor="recovery_code", recovery_id=found, recovery_left=len(stored) - 1)
        totp = open_secret(self.keyring, proof.name, row.mfa_secret)
        try:
            step = totp.verify(creds.totp_code or "", last_step=row.mfa_last_step, at=now.timestamp())
        except AuthenticationFailed:
            self._fail(proof.name, origin=origin, action=action, reason="second_factor")
        return replace(proof, factor="totp", step=step)

    def settle(self, proof: Proof, *, succeeded: bool, trust_origin: bool) -> None:
        self.throttle.settle(proof.charge, succeeded=succeeded, trust_origin=trust_origin)

    def commit(
        self,
        proof: Proof,
        *,
        origin: str,
        action: str,
        then: Callable[[Connection], None],
        trust_origin: bool = True,
    ) -> None:
        """Claim the code used, store a rehash and whatever `then` writes, in one transaction.

        A claim that fails (the same code or recovery code used by a parallel
        request, the account disabled meanwhile), or a `then` that raises
        `Refused` (what it was to change changed meanwhile), writes nothing and
        is a failure: one event and `AuthenticationFailed`.
        """
        try:
            with self.db.transaction() as conn:
                self._claim(conn, proof)
                then(conn)
        except Refused as refused:
            self._fail(proof.name, origin=origin, action=action, reason=refused.reason)
        self.throttle.settle(proof.charge, succeeded=True, trust_origin=trust_origin)

    def _claim(self, conn: Connection, proof: Proof) -> None:
        me = principals.c.id == proof.principal_id
        live = conn.execute(select(principals.c.disabled).where(me).with_for_update()).scalar()
        if live is None or live:
            raise Refused("credentials")
        if proof.step is not None:
            if proof.pending_secret is not None:
                claimed = update(principals).where(
                    me, principals.c.mfa_pending_secret == proof.pending_secret
                )
            else:
                fresh = or_(principals.c.mfa_last_step.is_(None), principals.c.mfa_last_step < proof.step)
                claimed = update(principals).where(me, fresh)
            if conn.execute(claimed.values(mfa_last_step=proof.step)).rowcount != 1:
                raise Refused("second_factor")
        if proof.recovery_id is not None:
            used = conn.execute(
                update(recovery_codes)
                .where(recovery_codes.c.id == proof.recovery_id, recovery_codes.c.used_at.is_(None))
                .values(used_at=self.clock())
            )
            if used.rowcount != 1:
                raise Refused("second_factor")
        if proof.new_hash is not None:
            # Only over the hash that was checked: a password changed meanwhile is not undone.
            conn.execute(
                update(principals)
                .where(me, principals.c.password_hash == proof.old_hash)
                .values(password_hash=proof.new_hash)
            )
