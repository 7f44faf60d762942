"""The key ring: envelope encryption over whichever key provider holds the KEKs."""

from __future__ import annotations

import struct
from pathlib import Path

from pipewarden.crypto._keys._env import ENV_VAR, EnvKeyProvider
from pipewarden.crypto._keys._file import FileKeyProvider
from pipewarden.crypto._keys._interface import KekInfo, KeyProvider, WrappedKey
from pipewarden.crypto._stream import new_data_key, open_sealed, seal
from pipewarden.errors import IntegrityError

__all__ = ["KeyRing"]

_SEALED_MAGIC = b"PWSEAL1"


class KeyRing:
    """Envelope encryption: fresh data keys, sealed under the provider's current KEK.

    >>> ring = KeyRing.from_file(Path(".pipewarden/keys/keyring.json"))
    >>> box = ring.seal(b"totp secret", context=b"user:alice")
    >>> ring.open(box, context=b"user:alice", label="alice") == b"totp secret"
    """

    def __init__(self, provider: KeyProvider) -> None:
        self.provider = provider

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        return cls(FileKeyProvider(path))

    @classmethod
    def from_env(cls, variable: str = ENV_VAR) -> KeyRing:
        return cls(EnvKeyProvider(variable))

    @property
    def current_id(self) -> str:
        return self.provider.current_id()

    def keys(self) -> tuple[KekInfo, ...]:
        return self.provider.keys()

    def wrap(self, data_key: bytes, *, context: bytes) -> WrappedKey:
        return self.provider.wrap(data_key, context=context)

    def unwrap(self, wrapped: WrappedKey, *, context: bytes, label: str) -> bytes:
        return self.provider.unwrap(wrapped, context=context, label=label)

    def rotate(self) -> str:
        return self.provider.rotate()

    def retire(self, kek_id: str) -> None:
        self.provider.retire(kek_id)

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Encrypt a small value under a fresh data key; the result carries its wrapped key."""
        data_key = new_data_key()
        wrapped = self.wrap(data_key, context=context)
        kek = wrapped.kek_id.encode()
        return (
            _SEALED_MAGIC
            + struct.pack(">H", len(kek))
            + kek
            + struct.pack(">H", len(wrapped.blob))
            + wrapped.blob
            + seal(data_key, plaintext, aad=context)
        )

    def open(self, sealed: bytes, *, context: bytes, label: str) -> bytes:
        """Open what `seal` made with the same context; `IntegrityError` if anything differs."""
        try:
            if not sealed.startswith(_SEALED_MAGIC):
                raise ValueError("no header")
            pos = len(_SEALED_MAGIC)
            (n,) = struct.unpack_from(">H", sealed, pos)
            kek_id = sealed[pos + 2 : pos + 2 + n].decode()
            pos += 2 + n
            (m,) = struct.unpack_from(">H", sealed, pos)
            blob = sealed[pos + 2 : pos + 2 + m]
            pos += 2 + m
            wrapped = WrappedKey(kek_id=kek_id, blob=blob)
        except (ValueError, struct.error, UnicodeDecodeError):
            raise IntegrityError(f"{label}: sealed value is malformed") from None
        data_key = self.unwrap(wrapped, context=context, label=label)
        return open_sealed(data_key, sealed[pos:], aad=context, label=label)
