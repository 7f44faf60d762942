"""Using a token: the database's answer to a presented token, or the token cache's within its lifetime.

Every refusal is decided by the database and is one ``token.use`` event; a
token that works is kept in the cache (if there is one) and its last use is
written at most once a minute per origin, whether it was read afresh or
served from memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from pipewarden.db import Database, api_tokens, principals
from pipewarden.errors import AuthenticationFailed
from pipewarden.events import Actor, Events
from pipewarden.identity._accounts import Scalar, emit
from pipewarden.identity._bindings import grants_for
from pipewarden.identity._passwords import NOT_ACCEPTED
from pipewarden.identity._subject import Subject
from pipewarden.identity._tokencache import CachedToken, TokenCache
from pipewarden.identity._tokens import parse_token

__all__ = ["LAST_USE_GRANULARITY", "TokenUse"]

#: A token's last use is written at most this often per origin (a busy token is not a write per request).
LAST_USE_GRANULARITY = timedelta(minutes=1)
_USE_QUERY = select(
    api_tokens,
    principals.c.name.label("owner"),
    principals.c.kind.label("owner_kind"),
    principals.c.disabled,
).join(principals, principals.c.id == api_tokens.c.principal_id)


def _use_due(last: datetime | None, last_origin: str | None, *, origin: str, at: datetime) -> bool:
    """Whether a use at `at` from `origin` is to be written: none from there within `LAST_USE_GRANULARITY`."""
    return last is None or last_origin != origin[:256] or at - last >= LAST_USE_GRANULARITY


class TokenUse:
    """Authenticating presented tokens against one database, with an optional `TokenCache`."""

    def __init__(
        self, db: Database, *, events: Events, clock: Callable[[], datetime], cache: TokenCache | None
    ) -> None:
        self.db = db
        self.events = events
        self.clock = clock
        self.cache = cache

    def _emit(
        self, action: str, actor: Actor, resource: str, outcome: str, attributes: dict[str, Scalar]
    ) -> None:
        emit(self.events, action, actor=actor, resource=resource, outcome=outcome, attributes=attributes)

    def authenticate(self, token: str, *, origin: str) -> Subject:
        """The `Subject` behind a token, or `AuthenticationFailed` (after one ``token.use`` event)."""
        now = self.clock()
        cache = self.cache
        if cache is None:
            return self._authenticate(token, origin=origin, now=now)
        key = cache.key(token)
        entry = cache.get(key, now=now)
        if entry is not None:
            self._record_cached_use(cache, entry, key, origin=origin, at=now)
            return entry.subject
        # Read before the database: an invalidation in between makes `put` refuse what was read.
        generation = cache.generation
        return self._authenticate(token, origin=origin, now=now, cache_as=(key, generation))

    def _authenticate(
        self, token: str, *, origin: str, now: datetime, cache_as: tuple[bytes, int] | None = None
    ) -> Subject:
        """The database's answer; a token that works is kept in the cache under `cache_as`."""
        anonymous = Actor("anonymous", "anonymous", origin)
        try:
            parsed = parse_token(token)
        except AuthenticationFailed:
            self._emit("token.use", anonymous, "token:?", "denied", {"reason": "malformed"})
            raise
        with self.db.transaction(write=False) as conn:
            row = conn.execute(_USE_QUERY.where(api_tokens.c.token_id == parsed.token_id)).first()
            grants = grants_for(conn, row.owner) if row is not None else ()
        resource = f"token:{row.owner if row is not None else '?'}/{parsed.token_id}"
        try:
            if row is None:
                raise AuthenticationFailed(NOT_ACCEPTED)
            parsed.check(row.digest)
        except AuthenticationFailed:
            self._emit("token.use", anonymous, resource, "denied", {"reason": "unknown"})
            raise AuthenticationFailed(NOT_ACCEPTED) from None
        # The token is genuine: its holder may be told why it no longer works.
        what = "the login session" if row.kind == "session" else f"token {row.token_id}"
        again = "run 'pipewarden login'" if row.kind == "session" else "ask for a new token"
        reason, message = None, ""
        if row.revoked_at is not None:
            reason, message = "revoked", f"{what} was revoked; {again}"
        elif row.expires_at <= now:
            reason, message = "expired", f"{what} expired at {row.expires_at.isoformat()}; {again}"
        elif row.disabled:
            reason, message = "disabled", f"{what}: its owner {row.owner} is disabled"
        if reason is not None:
            owner = Actor(row.owner, row.owner_kind, origin)
            self._emit("token.use", owner, resource, "denied", {"reason": reason, "kind": row.kind})
            raise AuthenticationFailed(message)
        wrote = self._record_use(row.token_id, row.last_used_at, row.last_used_origin, origin=origin, at=now)
        scopes = None if row.kind == "session" else frozenset(json.loads(row.scopes))
        subject = Subject(
            row.owner, row.owner_kind, grants, mfa=bool(row.mfa), token_scopes=scopes, token_id=row.token_id
        )
        if cache_as is not None and self.cache is not None:
            key, generation = cache_as
            entry = self.cache.new_entry(
                subject,
                token_id=row.token_id,
                owner=row.owner,
                kind=row.kind,
                expires_at=row.expires_at,
                last_used_at=now if wrote else row.last_used_at,
                last_used_origin=origin[:256] if wrote else row.last_used_origin,
            )
            self.cache.put(key, entry, generation=generation)
        return subject

    def cached(self, token: str, *, origin: str) -> Subject | None:
        """The `Subject` of a token the cache holds, when using it needs nothing of the database (its
        last use from `origin` is recorded already); None otherwise: then call `authenticate`.

        For a caller on an event loop, which must not wait for the database but may answer from memory.
        """
        if self.cache is None:
            return None
        now = self.clock()
        entry = self.cache.get(self.cache.key(token), now=now)
        if entry is None or _use_due(entry.last_used_at, entry.last_used_origin, origin=origin, at=now):
            return None
        return entry.subject

    def _record_cached_use(
        self, cache: TokenCache, entry: CachedToken, key: bytes, *, origin: str, at: datetime
    ) -> None:
        """The last use of a token served from memory, written as rarely as for one read afresh."""
        if self._record_use(entry.token_id, entry.last_used_at, entry.last_used_origin, origin=origin, at=at):
            cache.used(key, at=at, origin=origin[:256])

    def _record_use(
        self, token_id: str, last: datetime | None, last_origin: str | None, *, origin: str, at: datetime
    ) -> bool:
        """Write the token's last use unless one from the same origin is under a minute old; written?"""
        if not _use_due(last, last_origin, origin=origin, at=at):
            return False
        with self.db.transaction() as conn:
            conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_id == token_id)
                .values(last_used_at=at, last_used_origin=origin[:256])
            )
        return True
