"""Authenticated tokens kept in memory for a few seconds, so a busy client is not a database read per call.

A `TokenCache` maps a keyed hash of a presented token (HMAC-SHA-256 under a
random key of the process; the token itself is never kept) to what the
database said about it when it last worked: the `Subject`, the token's expiry
and its last recorded use. Only a token that passed every check is stored; a
wrong, revoked, expired or disabled one is never cached, so a miss always goes
to the database and a token that does not work there never works here.

How stale an entry may be is bounded twice:

- by its lifetime (`lifetime` seconds from the database read that made it):
  a change made anywhere else (another replica, the command line) reaches
  this process within that time;
- by invalidation: a revocation, a logout, a principal disabled, a password or
  second factor reset (which end sessions) and any change of roles or groups
  made through this process drop the affected entries before the call that
  made it returns (`forget_token`, `forget_principal`, `forget_all`, reaching
  every cache of the process).

A read that began before a change committed must not store what it read
after the change dropped entries: every invalidation bumps a generation
number, and `put` refuses an entry read under an older one.

The expiry is checked on every use (`get` returns nothing for an entry whose
token has expired, and the caller then asks the database, which refuses it
and records why).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from pipewarden.errors import ConfigError
from pipewarden.identity._subject import Subject

__all__ = [
    "DEFAULT_TOKEN_CACHE_SECONDS",
    "MAX_TOKEN_CACHE_SECONDS",
    "CachedToken",
    "TokenCache",
    "forget_all",
    "forget_principal",
    "forget_token",
]

#: How long an authenticated token is trusted from memory by default (the server's setting).
DEFAULT_TOKEN_CACHE_SECONDS = 5.0
#: The longest a revocation made elsewhere may take to reach a process: kept short on purpose.
MAX_TOKEN_CACHE_SECONDS = 60.0
_DEFAULT_ENTRIES = 10_000

#: Every cache of this process, for invalidations made by whatever object made the change.
_CACHES: weakref.WeakSet[TokenCache] = weakref.WeakSet()
_CACHES_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class CachedToken:
    """What the database said about a token that worked, and when this process read it."""

    subject: Subject
    token_id: str
    owner: str
    kind: str
    expires_at: datetime
    last_used_at: datetime | None
    last_used_origin: str | None
    read_at: float  # the cache's monotonic clock


class TokenCache:
    """Authenticated tokens by keyed hash, each for at most `lifetime` seconds; at most `max_entries`.

    >>> cache = TokenCache(lifetime=5.0)
    >>> auth = Authenticator(db, events=events, keyring=keyring, token_cache=cache)
    """

    def __init__(
        self,
        *,
        lifetime: float = DEFAULT_TOKEN_CACHE_SECONDS,
        max_entries: int = _DEFAULT_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < lifetime <= MAX_TOKEN_CACHE_SECONDS:
            raise ConfigError(
                f"token cache lifetime {lifetime}: must be more than 0 and at most "
                f"{MAX_TOKEN_CACHE_SECONDS:g} seconds (a revocation elsewhere waits that long)"
            )
        if max_entries < 1:
            raise ConfigError(f"token cache size {max_entries}: must be at least 1")
        self.lifetime = lifetime
        self.max_entries = max_entries
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._entries: OrderedDict[bytes, CachedToken] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        with _CACHES_LOCK:
            _CACHES.add(self)

    def __repr__(self) -> str:
        return f"TokenCache(lifetime={self.lifetime:g}, entries={len(self._entries)})"

    def __len__(self) -> int:
        return len(self._entries)

    def key(self, token: str) -> bytes:
        """The keyed hash a token is found under (the token is never stored)."""
        return hmac.new(self._key, token.encode(), hashlib.sha256).digest()

    @property
    def generation(self) -> int:
        """Read before asking the database; hand it to `put` with what was read."""
        return self._generation

    def get(self, key: bytes, *, now: datetime) -> CachedToken | None:
        """The entry for `key` while it is younger than the lifetime and its token has not expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._clock() - entry.read_at >= self.lifetime or entry.expires_at <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: bytes, entry: CachedToken, *, generation: int) -> bool:
        """Keep `entry`, read from the database under `generation`; refused (False) if anything was
        invalidated since, as the read may predate the change."""
        with self._lock:
            if generation != self._generation:
                return False
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return True

    def used(self, key: bytes, *, at: datetime, origin: str) -> None:
        """Note a last use written to the database, so the next one is rate-limited from memory too."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries[key] = replace(entry, last_used_at=at, last_used_origin=origin)

    def new_entry(
        self,
        subject: Subject,
        *,
        token_id: str,
        owner: str,
        kind: str,
        expires_at: datetime,
        last_used_at: datetime | None,
        last_used_origin: str | None,
    ) -> CachedToken:
        return CachedToken(
            subject=subject,
            token_id=token_id,
            owner=owner,
            kind=kind,
            expires_at=expires_at,
            last_used_at=last_used_at,
            last_used_origin=last_used_origin,
            read_at=self._clock(),
        )

    def _drop(self, keep: Callable[[CachedToken], bool] | None) -> None:
        with self._lock:
            self._generation += 1
            if keep is None:
                self._entries.clear()
                return
            for key in [k for k, e in self._entries.items() if not keep(e)]:
                del self._entries[key]

    def drop_token(self, token_id: str) -> None:
        self._drop(lambda e: e.token_id != token_id)

    def drop_principal(self, name: str) -> None:
        self._drop(lambda e: e.owner != name)

    def clear(self) -> None:
        self._drop(None)


def _every_cache() -> list[TokenCache]:
    with _CACHES_LOCK:
        return list(_CACHES)


def forget_token(token_id: str) -> None:
    """A token was revoked (or its session ended): no cache of this process serves it any more."""
    for cache in _every_cache():
        cache.drop_token(token_id)


def forget_principal(name: str) -> None:
    """A principal was disabled, or its sessions ended: none of its tokens is served from memory."""
    for cache in _every_cache():
        cache.drop_principal(name)


def forget_all() -> None:
    """Roles or groups changed (a group change reaches all its members): every cache starts afresh."""
    for cache in _every_cache():
        cache.clear()
