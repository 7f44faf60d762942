"""Pseudonyms for login names that are not principals: what events record instead of the name typed.

A login attempt names an account, and people mistype: a password typed into
the name field would otherwise land in the permanent, append-only audit log as
the attempt's actor. So an attempt is recorded under the name typed only when
a principal of that name exists; any other name is recorded as
``unknown:<16 hex digits>``, the first 64 bits of HMAC-SHA256 of the name under
a secret key. The same name always gives the same pseudonym, so repeated
attempts on one unknown name still correlate (the monitor's brute-force and
password-spraying rules need that), but without the key nobody can test
guesses of what was typed against the log.

The key is 32 random bytes made once per deployment and kept in the
database's ``identity_keys`` table sealed with the key ring (`KeyRing.seal`:
AES-256-GCM under a fresh data key wrapped by the current KEK, the purpose
bound as associated data). Every process and replica therefore uses the same
key, and reading it takes both the database and the key ring. If the KEK that
sealed it has been retired or is gone from the key ring, a new key replaces it
(pseudonyms made before then no longer match later ones); a sealed key that
does not open under a KEK the ring holds is tampering, and an error.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from pipewarden.crypto import KeyRing
from pipewarden.db import Database, identity_keys
from pipewarden.errors import IntegrityError, KeyRingError

__all__ = ["PSEUDONYM_PREFIX", "Pseudonyms"]

PSEUDONYM_PREFIX = "unknown:"
_PURPOSE = "login-pseudonym"
_CONTEXT = b"pipewarden.identity_keys:login-pseudonym"
_LABEL = "the login pseudonym key"
_KEY_BYTES = 32
#: 16 hex digits, 64 bits: distinct names collide only after billions of them.
_HEX_DIGITS = 16


class Pseudonyms:
    """The pseudonyms of one deployment: its database and key ring. The key is read once per instance."""

    def __init__(self, db: Database, *, keyring: KeyRing, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.keyring = keyring
        self.clock = clock
        self._key: bytes | None = None

    def of(self, name: str) -> str:
        """``unknown:<16 hex>`` for `name`: the same for the same name, telling nothing of it unkeyed."""
        mac = hmac.new(self.key(), name.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return PSEUDONYM_PREFIX + mac.hexdigest()[:_HEX_DIGITS]

    def key(self) -> bytes:
        """The deployment's pseudonym key, made and stored the first time any process needs it."""
        if self._key is None:
            self._key = self._load()
        return self._key

    def _load(self) -> bytes:
        with self.db.transaction(write=False) as conn:
            sealed = self._stored(conn)
        if sealed is None:
            return self._create()
        try:
            return self._open(sealed)
        except KeyRingError:
            # Sealed under a KEK the ring no longer holds (retired, or a replaced key ring): no one can
            # open it any more, so a new key takes its place. IntegrityError (tampering) goes up.
            return self._replace(sealed)

    @staticmethod
    def _stored(conn: Connection) -> bytes | None:
        found = conn.execute(
            select(identity_keys.c.sealed).where(identity_keys.c.purpose == _PURPOSE)
        ).scalar()
        return None if found is None else bytes(found)

    def _open(self, sealed: bytes) -> bytes:
        key = self.keyring.open(sealed, context=_CONTEXT, label=_LABEL)
        if len(key) != _KEY_BYTES:
            raise IntegrityError(f"{_LABEL}: holds {len(key)} bytes, not {_KEY_BYTES}")
        return key

    def _seal_new(self) -> tuple[bytes, bytes]:
        key = secrets.token_bytes(_KEY_BYTES)
        return key, self.keyring.seal(key, context=_CONTEXT)

    def _create(self) -> bytes:
        """Store a new key unless another process stored one first; either way, the stored one."""
        key, sealed = self._seal_new()
        values = {"purpose": _PURPOSE, "sealed": sealed, "created_at": self.clock()}
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        with self.db.transaction() as conn:
            conn.execute(dialect.insert(identity_keys).values(**values).on_conflict_do_nothing())
            stored = self._stored(conn)
        return key if stored == sealed else self._open(stored or b"")

    def _replace(self, old: bytes) -> bytes:
        """Replace the unopenable key `old`, unless another process replaced it first."""
        key, sealed = self._seal_new()
        with self.db.transaction() as conn:
            conn.execute(
                update(identity_keys)
                .where(identity_keys.c.purpose == _PURPOSE, identity_keys.c.sealed == old)
                .values(sealed=sealed, created_at=self.clock())
            )
            stored = self._stored(conn)
        return key if stored == sealed else self._open(stored or b"")
