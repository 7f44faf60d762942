"""Principals: the users (people, with a password and a second factor) and service accounts (tokens only).

Names follow the same rule as role and group names (lower-case letters,
digits, '.', '_' and '-', starting with a letter, at most 64 characters), so a
name means the same thing in a binding, an event and a token listing. A
principal is never deleted, only disabled: events name it for as long as the
audit log is kept. Disabling takes effect at once: every request re-reads the
flag, and the principal's login sessions are revoked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from pipewarden.db import Database, api_tokens, principals
from pipewarden.errors import AccessDenied, ConfigError, IdentityError
from pipewarden.events import Actor, Event, Events
from pipewarden.events._event import Scalar
from pipewarden.identity._admins import administrators
from pipewarden.identity._bindings import grant, grants_for
from pipewarden.identity._passwords import PasswordPolicy
from pipewarden.identity._patterns import check_name
from pipewarden.identity._roles import ADMIN_ROLE
from pipewarden.identity._subject import Grant
from pipewarden.identity._tokencache import forget_principal

__all__ = ["Accounts", "Principal", "Scalar", "emit", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Principal:
    """A user or service account as stored (never its password hash or MFA secret)."""

    name: str
    kind: str
    display_name: str
    disabled: bool
    created_at: datetime
    mfa_enrolled: bool
    grants: tuple[Grant, ...] = ()


def emit(
    events: Events,
    action: str,
    *,
    actor: Actor,
    resource: str,
    outcome: str,
    attributes: dict[str, Scalar] | None = None,
) -> int:
    """One event for an identity action, `actor` naming who acted and from where."""
    return events.emit(
        Event(
            action=action,
            actor=actor.name,
            actor_kind=actor.kind,
            resource=resource[:1024],
            outcome=outcome,
            origin=actor.origin[:1024],
            attributes=attributes or {},
        )
    )


def _principal(row: Row[Any], grants: tuple[Grant, ...] = ()) -> Principal:
    return Principal(
        name=row.name,
        kind=row.kind,
        display_name=row.display_name,
        disabled=bool(row.disabled),
        created_at=row.created_at,
        mfa_enrolled=row.mfa_enrolled_at is not None,
        grants=grants,
    )


class Accounts:
    """Create, list, disable and enable principals; each change is one event.

    Authorization is the caller's: the CLI and the server `require` the
    ``user.*`` action first and pass the acting principal as `actor`.

    >>> accounts = Accounts(db, events=events)
    >>> accounts.create_user("ada", password=pw, actor=Actor("root", "system"), grants=[Grant("admin")])
    """

    def __init__(
        self,
        db: Database,
        *,
        events: Events,
        passwords: PasswordPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.events = events
        self.passwords = passwords or PasswordPolicy()
        self.clock = clock

    def create_user(
        self,
        name: str,
        *,
        password: str,
        actor: Actor,
        display_name: str = "",
        grants: Sequence[Grant] = (),
    ) -> Principal:
        """A person's account; `ConfigError` (never echoing it) if the password is weak.

        The password is checked before anything is written; `grants` are bound
        in the same transaction, so the account never exists without them.
        """
        check_name(name, what="user")
        self.passwords.check_new(password, user_inputs=[name, display_name])
        return self._create(
            name, kind="user", actor=actor, display_name=display_name, grants=grants, password=password
        )

    def create_service(
        self, name: str, *, actor: Actor, display_name: str = "", grants: Sequence[Grant] = ()
    ) -> Principal:
        """A service account: no password and no second factor; it authenticates with API tokens only."""
        check_name(name, what="service account")
        return self._create(name, kind="service", actor=actor, display_name=display_name, grants=grants)

    def bootstrap_admin(self, name: str, *, password: str, actor: Actor, display_name: str = "") -> Principal:
        """The first administrator (role admin at '*'); refused while an enabled principal is one.

        Only the workspace's local operator (who holds its key files) calls
        this: it is how a deployment gets its first admin without default
        credentials. A weak password is refused before anything is written.
        """
        check_name(name, what="user")
        self.passwords.check_new(password, user_inputs=[name, display_name])
        with self.db.transaction(write=False) as conn:
            admins = administrators(conn)
        if admins.present:
            emit(
                self.events,
                "user.create",
                actor=actor,
                resource=f"user:{name}",
                outcome="denied",
                attributes={"reason": "an administrator exists", "bootstrap": True},
            )
            raise AccessDenied(
                f"{name}: an administrator exists already; log in as one and run 'pipewarden user add'"
            )
        return self._create(
            name,
            kind="user",
            actor=actor,
            display_name=display_name,
            grants=[Grant(ADMIN_ROLE)],
            password=password,
            bootstrap=True,
        )

    def _create(
        self,
        name: str,
        *,
        kind: str,
        actor: Actor,
        display_name: str,
        grants: Sequence[Grant],
        password: str | None = None,
        bootstrap: bool = False,
    ) -> Principal:
        if len(display_name) > 256 or not display_name.isprintable():
            raise ConfigError("the display name has at most 256 printable characters")
        now = self.clock()
        password_hash = self.passwords.hash(password) if password is not None else None
        try:
            with self.db.transaction() as conn:
                if bootstrap and administrators(conn).present:
                    # Checked again under the write lock: two bootstraps at once make one admin.
                    raise AccessDenied(f"{name}: an administrator exists already")
                if conn.execute(select(principals.c.id).where(principals.c.name == name)).first():
                    raise IdentityError(f"{name}: a user or service account of that name exists already")
                conn.execute(
                    insert(principals).values(
                        name=name,
                        kind=kind,
                        display_name=display_name,
                        disabled=False,
                        created_at=now,
                        password_hash=password_hash,
                        password_changed_at=now if password_hash else None,
                    )
                )
                for g in grants:
                    grant(conn, subject=name, role=g.role, scope=g.scope, granted_by=actor.name)
                row = conn.execute(select(principals).where(principals.c.name == name)).one()
        except SQLIntegrityError:
            raise IdentityError(f"{name}: a user or service account of that name exists already") from None
        attributes: dict[str, Scalar] = {
            "kind": kind,
            "grants": ",".join(f"{g.role}@{g.scope}" for g in grants),
        }
        if bootstrap:
            attributes["bootstrap"] = True
        emit(
            self.events,
            "user.create",
            actor=actor,
            resource=f"user:{name}",
            outcome="allowed",
            attributes=attributes,
        )
        return _principal(row, tuple(grants))

    def get(self, name: str) -> Principal:
        """The principal named `name` with its grants; `IdentityError` if there is none."""
        with self.db.transaction(write=False) as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
            if row is None:
                raise IdentityError(f"{name}: no such user or service account")
            return _principal(row, grants_for(conn, name))

    def list(self) -> tuple[Principal, ...]:
        """Every principal, by name, with its grants."""
        with self.db.transaction(write=False) as conn:
            rows = conn.execute(select(principals).order_by(principals.c.name)).all()
            return tuple(_principal(row, grants_for(conn, row.name)) for row in rows)

    def list_as(self, actor: Actor) -> tuple[Principal, ...]:
        """`list`, read by `actor` (authorized by the caller for ``user.read`` on ``user:*``): one
        allowed ``user.read`` event with how many principals it showed."""
        found = self.list()
        emit(
            self.events,
            "user.read",
            actor=actor,
            resource="user:*",
            outcome="allowed",
            attributes={"count": len(found)},
        )
        return found

    def disable(self, name: str, *, actor: Actor) -> Principal:
        """Stop a principal at once: its tokens fail from the next request and its sessions are revoked."""
        if actor.name == name:
            raise ConfigError(f"{name}: you cannot disable yourself; ask another administrator")
        return self._set_disabled(name, disabled=True, actor=actor)

    def enable(self, name: str, *, actor: Actor) -> Principal:
        """Let a disabled principal back in; its API tokens that have not expired work again."""
        return self._set_disabled(name, disabled=False, actor=actor)

    def _set_disabled(self, name: str, *, disabled: bool, actor: Actor) -> Principal:
        action = "user.disable" if disabled else "user.enable"
        now = self.clock()
        with self.db.transaction() as conn:
            row = conn.execute(select(principals).where(principals.c.name == name)).first()
            if row is None:
                raise IdentityError(f"{name}: no such user or service account")
            conn.execute(update(principals).where(principals.c.id == row.id).values(disabled=disabled))
            revoked = 0
            if disabled:
                revoked = conn.execute(
                    update(api_tokens)
                    .where(
                        api_tokens.c.principal_id == row.id,
                        api_tokens.c.kind == "session",
                        api_tokens.c.revoked_at.is_(None),
                    )
                    .values(revoked_at=now)
                ).rowcount
            row = conn.execute(select(principals).where(principals.c.id == row.id)).one()
            principal = _principal(row, grants_for(conn, name))
        forget_principal(name)  # committed: no token of theirs is served from this process's memory
        attributes: dict[str, Scalar] = {"sessions_revoked": int(revoked)} if disabled else {}
        emit(
            self.events,
            action,
            actor=actor,
            resource=f"user:{name}",
            outcome="allowed",
            attributes=attributes,
        )
        return principal
