"""Stored tokens: API tokens (`token create`) and login sessions (`login`), rows of ``api_tokens``.

Both are `issue_token` tokens; only their digest is stored. A session acts with
its owner's full roles for a few hours; an API token is limited to its scopes
(action patterns, optionally ``@`` a resource selector) on top of its owner's
roles, and lives until its expiry (at most `MAX_TOKEN_LIFETIME`) or revocation.

A token acts as its owner, so making or revoking someone else's token is
acting on their account: besides ``token.manage`` it needs ``role.grant`` on
every role the owner holds (`_guard.control_needs`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from pipewarden.db import Database, api_tokens, principals
from pipewarden.errors import AccessDenied, AuthenticationFailed, ConfigError, IdentityError
from pipewarden.events import Actor, Events
from pipewarden.identity import _guard
from pipewarden.identity._accounts import Scalar, emit, utcnow
from pipewarden.identity._guard import Need, check_control_unchanged, control_needs
from pipewarden.identity._passwords import NOT_ACCEPTED
from pipewarden.identity._patterns import TokenScope
from pipewarden.identity._policy import Decision, Policy
from pipewarden.identity._subject import Subject
from pipewarden.identity._tokencache import TokenCache, forget_token
from pipewarden.identity._tokens import issue_token, parse_token
from pipewarden.identity._tokenuse import TokenUse

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "MAX_SCOPES",
    "MAX_TOKEN_LIFETIME",
    "SESSION_LIFETIME",
    "NewToken",
    "TokenInfo",
    "Tokens",
    "check_lifetime",
    "check_scopes",
    "insert_token",
    "token_info",
    "token_query",
]

DEFAULT_TOKEN_LIFETIME = timedelta(days=90)
MAX_TOKEN_LIFETIME = timedelta(days=365)
SESSION_LIFETIME = timedelta(hours=12)
MAX_SCOPES = 32


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What is known about a stored token; never its secret, which is not stored."""

    token_id: str
    owner: str
    kind: str  # 'api' or 'session'
    description: str
    scopes: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    last_used_origin: str | None
    revoked_at: datetime | None
    mfa: bool

    def state(self, at: datetime) -> str:
        """'revoked', 'expired' or 'active' at time `at`."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= at else "active"

    def to_dict(self, at: datetime) -> dict[str, object]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.isoformat()

        return {
            "token_id": self.token_id,
            "owner": self.owner,
            "kind": self.kind,
            "description": self.description,
            "scopes": list(self.scopes),
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "last_used_at": iso(self.last_used_at),
            "last_used_origin": self.last_used_origin,
            "revoked_at": iso(self.revoked_at),
            "mfa": self.mfa,
            "state": self.state(at),
        }


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: `plaintext` is shown to its owner once and never again."""

    info: TokenInfo
    plaintext: str = field(repr=False)


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """The scopes, each checked (`TokenScope.parse`), without duplicates; at least one is needed."""
    if isinstance(scopes, str):
        scopes = [scopes]
    unique = tuple(dict.fromkeys(s.strip() for s in scopes))
    if not unique:
        raise ConfigError("a token needs at least one scope, such as 'artifact.read' ('*' for all)")
    if len(unique) > MAX_SCOPES:
        raise ConfigError(f"a token has at most {MAX_SCOPES} scopes, not {len(unique)}")
    for scope in unique:
        TokenScope.parse(scope)
    return unique


def check_lifetime(lifetime: timedelta) -> timedelta:
    if lifetime <= timedelta(0):
        raise ConfigError("a token's lifetime must be positive")
    if lifetime > MAX_TOKEN_LIFETIME:
        raise ConfigError(
            f"a token lives at most {MAX_TOKEN_LIFETIME.days} days; make a new one when it ends"
        )
    return lifetime


def token_query() -> Any:
    return select(api_tokens, principals.c.name.label("owner")).join(
        principals, principals.c.id == api_tokens.c.principal_id
    )


def token_info(row: Row[Any]) -> TokenInfo:
    return TokenInfo(
        token_id=row.token_id,
        owner=row.owner,
        kind=row.kind,
        description=row.description,
        scopes=tuple(json.loads(row.scopes)),
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        last_used_origin=row.last_used_origin,
        revoked_at=row.revoked_at,
        mfa=bool(row.mfa),
    )


def insert_token(
    conn: Connection,
    *,
    principal_id: int,
    owner: str,
    kind: str,
    scopes: Sequence[str],
    description: str,
    created_at: datetime,
    lifetime: timedelta,
    mfa: bool,
) -> NewToken:
    """Store a fresh token's digest in the caller's transaction and return it with its plaintext."""
    if len(description) > 256 or not description.isprintable():
        raise ConfigError("a token's description has at most 256 printable characters")
    issued = issue_token()
    info = TokenInfo(
        token_id=issued.token_id,
        owner=owner,
        kind=kind,
        description=description,
        scopes=tuple(scopes),
        created_at=created_at,
        expires_at=created_at + lifetime,
        last_used_at=None,
        last_used_origin=None,
        revoked_at=None,
        mfa=mfa,
    )
    conn.execute(
        insert(api_tokens).values(
            token_id=issued.token_id,
            principal_id=principal_id,
            digest=issued.digest,
            kind=kind,
            description=description,
            scopes=json.dumps(list(scopes)),
            created_at=created_at,
            expires_at=info.expires_at,
            mfa=mfa,
        )
    )
    return NewToken(info, issued.plaintext)


class Tokens:
    """API tokens and sessions of one database: authenticate, create, list, revoke; each change an event.

    Creating, listing and revoking are authorized here, against the policy,
    for the acting `Subject`: one's own tokens need ``token.create`` /
    ``token.read`` / ``token.revoke`` on ``token:<self>``, anyone else's
    ``token.manage`` on ``token:<owner>``, and, to make or revoke one,
    ``role.grant`` on every role the owner holds.

    With a `cache`, a token that worked is trusted from memory for the cache's
    short lifetime (`_tokencache`); its expiry is still checked on every use.
    """

    def __init__(
        self,
        db: Database,
        *,
        events: Events,
        policy: Policy,
        clock: Callable[[], datetime] = utcnow,
        cache: TokenCache | None = None,
    ) -> None:
        self.db = db
        self.events = events
        self.policy = policy
        self.clock = clock
        self.cache = cache
        self._use = TokenUse(db, events=events, clock=clock, cache=cache)

    def _emit(
        self, action: str, actor: Actor, resource: str, outcome: str, attributes: dict[str, Scalar]
    ) -> None:
        emit(self.events, action, actor=actor, resource=resource, outcome=outcome, attributes=attributes)

    def authorize(
        self,
        by: Subject,
        action: str,
        resource: str,
        *,
        origin: str,
        event: str | None = None,
        more: Sequence[Need] = (),
    ) -> Decision:
        """`action` on `resource` and each of `more`; a denial is one event (named `event`, else
        `action`, on `resource`) and `AccessDenied`."""
        return _guard.authorize(
            self.policy,
            by,
            [(action, resource), *more],
            events=self.events,
            action=event or action,
            resource=resource,
            origin=origin,
        )

    def _control(self, owner: str) -> tuple[frozenset[str], list[Need]]:
        """The owner's roles and the ``role.grant`` on each that acting on its tokens needs."""
        with self.db.transaction(write=False) as conn:
            return control_needs(conn, owner)

    # --- using a token ---------------------------------------------------------------------------

    def authenticate(self, token: str, *, origin: str) -> Subject:
        """The `Subject` behind a token, or `AuthenticationFailed` (after one ``token.use`` event)."""
        return self._use.authenticate(token, origin=origin)

    def cached(self, token: str, *, origin: str) -> Subject | None:
        """The `Subject` of a token the cache holds, when using it needs nothing of the database (its
        last use from `origin` is recorded already); None otherwise: then call `authenticate`."""
        return self._use.cached(token, origin=origin)

    def end_session(self, token: str, *, origin: str) -> TokenInfo:
        """Revoke the login session `token` (one ``auth.logout`` event); an API token is refused."""
        parsed = parse_token(token)
        with self.db.transaction() as conn:
            row = conn.execute(token_query().where(api_tokens.c.token_id == parsed.token_id)).first()
            if row is None:
                raise AuthenticationFailed(NOT_ACCEPTED)
            parsed.check(row.digest)
            if row.kind != "session":
                raise ConfigError(
                    f"token {row.token_id}: an API token, not a login session; "
                    "revoke it with 'pipewarden token revoke'"
                )
            ended = row.revoked_at is not None
            if not ended:
                conn.execute(
                    update(api_tokens)
                    .where(api_tokens.c.token_id == row.token_id)
                    .values(revoked_at=self.clock())
                )
            info = token_info(conn.execute(token_query().where(api_tokens.c.token_id == row.token_id)).one())
        forget_token(info.token_id)  # committed: no process-local cache serves it from now on
        actor = Actor(info.owner, "user", origin)
        self._emit(
            "auth.logout", actor, f"user:{info.owner}", "allowed", {"session": info.token_id, "ended": ended}
        )
        return info

    def info(self, token_id: str) -> TokenInfo:
        """A token's record, for its own holder (`whoami`): the caller has authenticated with it."""
        with self.db.transaction(write=False) as conn:
            row = conn.execute(token_query().where(api_tokens.c.token_id == token_id)).first()
        if row is None:
            raise IdentityError(f"token {token_id}: no such token")
        return token_info(row)

    # --- managing tokens -------------------------------------------------------------------------

    def insert(
        self,
        conn: Connection,
        *,
        principal_id: int,
        owner: str,
        kind: str,
        scopes: Sequence[str],
        description: str,
        lifetime: timedelta,
        mfa: bool,
    ) -> NewToken:
        return insert_token(
            conn,
            principal_id=principal_id,
            owner=owner,
            kind=kind,
            scopes=scopes,
            description=description,
            created_at=self.clock(),
            lifetime=lifetime,
            mfa=mfa,
        )

    def create(
        self,
        owner: str,
        *,
        by: Subject,
        scopes: Sequence[str],
        lifetime: timedelta,
        origin: str,
        description: str = "",
        mfa_required: bool,
    ) -> NewToken:
        """An API token for `owner`, shown once; one ``token.create`` event.

        Made only from a login session (a token does not mint tokens). When
        the owner holds a role that requires MFA the acting session must have
        passed MFA; the token then carries that assurance (`mfa`), as it
        carries the creator's session's otherwise. A token for someone else
        needs ``token.manage`` and ``role.grant`` on each of their roles.
        """
        actor = Actor(by.name, by.kind, origin)
        resource = f"token:{owner}"
        roles: frozenset[str] = frozenset()
        if owner == by.name:
            self.authorize(by, "token.create", resource, origin=origin)
        else:
            roles, control = self._control(owner)
            self.authorize(by, "token.manage", resource, origin=origin, event="token.create", more=control)
        checked = check_scopes(scopes)
        check_lifetime(lifetime)
        refusal = None
        if by.token_scopes is not None:
            refusal = "API tokens are made from a login session, not with another API token"
        elif mfa_required and not by.mfa:
            refusal = (
                f"{owner} holds a role that requires MFA; make its tokens from a session that passed MFA"
            )
        if refusal is not None:
            self._emit("token.create", actor, resource, "denied", {"reason": refusal})
            raise AccessDenied(f"{by.name}: {refusal}")
        with self.db.transaction() as conn:
            row = conn.execute(
                select(principals.c.id, principals.c.disabled).where(principals.c.name == owner)
            ).first()
            if row is None:
                raise IdentityError(f"{owner}: no such user or service account")
            if row.disabled:
                raise IdentityError(f"{owner}: is disabled; enable it before making it tokens")
            if owner != by.name:
                check_control_unchanged(conn, owner, roles)
            new = self.insert(
                conn,
                principal_id=int(row.id),
                owner=owner,
                kind="api",
                scopes=checked,
                description=description,
                lifetime=lifetime,
                mfa=by.mfa,
            )
        self._emit(
            "token.create",
            actor,
            f"token:{owner}/{new.info.token_id}",
            "allowed",
            {
                "owner": owner,
                "kind": new.info.kind,
                "token_id": new.info.token_id,
                "scopes": " ".join(checked)[:1024],
                "expires_at": new.info.expires_at.isoformat(),
                "mfa": new.info.mfa,
            },
        )
        return new

    def list(self, *, by: Subject, origin: str, owner: str | None = None) -> tuple[TokenInfo, ...]:
        """Tokens of `owner` (default: `by`'s; '*': everyone's), newest first; one ``token.read`` event."""
        whose = owner or by.name
        action = "token.read" if whose == by.name else "token.manage"
        resource = f"token:{whose}"
        self.authorize(by, action, resource, origin=origin, event="token.read")
        query = token_query().order_by(api_tokens.c.created_at.desc(), api_tokens.c.token_id)
        if whose != "*":
            query = query.where(principals.c.name == whose)
        with self.db.transaction(write=False) as conn:
            found = tuple(token_info(r) for r in conn.execute(query))
        actor = Actor(by.name, by.kind, origin)
        self._emit("token.read", actor, resource, "allowed", {"count": len(found)})
        return found

    def revoke(self, token_id: str, *, by: Subject, origin: str) -> TokenInfo:
        """Revoke a token or session at once; one ``token.revoke`` event."""
        with self.db.transaction(write=False) as conn:
            row = conn.execute(token_query().where(api_tokens.c.token_id == token_id)).first()
        if row is None:
            raise IdentityError(f"token {token_id}: no such token")
        resource = f"token:{row.owner}/{token_id}"
        if row.owner == by.name:
            self.authorize(by, "token.revoke", resource, origin=origin)
        else:
            # Revoking an administrator's tokens (their login sessions too) is acting on their account.
            control = self._control(row.owner)[1]
            self.authorize(by, "token.manage", resource, origin=origin, event="token.revoke", more=control)
        with self.db.transaction() as conn:
            done = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=self.clock())
            ).rowcount
            info = token_info(conn.execute(token_query().where(api_tokens.c.token_id == token_id)).one())
        forget_token(token_id)  # committed: no process-local cache serves it from now on
        if done != 1:
            raise IdentityError(f"token {token_id}: was revoked already")
        actor = Actor(by.name, by.kind, origin)
        self._emit("token.revoke", actor, resource, "allowed", {"owner": info.owner, "kind": info.kind})
        return info
