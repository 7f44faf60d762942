"""Stored tokens: API tokens (`token create`) and login sessions (`login`), rows of ``api_tokens``.

Both are `issue_token` tokens; only their digest is stored. A session acts with
its owner's full roles for a few hours; an API token is limited to its scopes
(action patterns, optionally ``@`` a resource selector) on top of its owner's
roles, and lives until its expiry (at most `MAX_TOKEN_LIFETIME`) or revocation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from pipewarden.db import api_tokens, principals
from pipewarden.errors import ConfigError
from pipewarden.identity._patterns import TokenScope
from pipewarden.identity._tokens import issue_token

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "MAX_SCOPES",
    "MAX_TOKEN_LIFETIME",
    "SESSION_LIFETIME",
    "NewToken",
    "TokenInfo",
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
        raise ConfigError(f"a token lives at most {MAX_TOKEN_LIFETIME.days} days; make a new one when it ends")
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
