"""Ed25519 signing keys for people and services, and the set of keys a verifier trusts.

Private keys are PKCS#8 PEM files with mode 0600, optionally encrypted with a
passphrase (read from ``PIPEWARDEN_KEY_PASSPHRASE``, never from an option, so it
stays out of shell history). A key's id is ``ed25519:`` and the SHA-256 of its
raw 32-byte public key, which is what signatures name.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pipewarden.crypto._files import read_private, write_atomic
from pipewarden.errors import IntegrityError, KeyRingError

__all__ = ["PASSPHRASE_ENV", "PublicKey", "SigningKey", "TrustedKeys", "env_passphrase"]

PASSPHRASE_ENV = "PIPEWARDEN_KEY_PASSPHRASE"  # noqa: S105  # the name of a variable, not a secret


def env_passphrase() -> bytes | None:
    """The passphrase from ``PIPEWARDEN_KEY_PASSPHRASE``; unset or empty means none."""
    value = os.environ.get(PASSPHRASE_ENV, "")
    return value.encode() if value else None


def _keyid(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()


class PublicKey:
    """An Ed25519 public key; `verify` raises `IntegrityError`, it never returns False."""

    __slots__ = ("_key", "keyid")

    def __init__(self, key: Ed25519PublicKey) -> None:
        self._key = key
        self.keyid = _keyid(key)

    @classmethod
    def from_pem(cls, data: bytes, *, source: str) -> PublicKey:
        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise KeyRingError(f"{source}: not a PEM public key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyRingError(f"{source}: public key is {type(key).__name__}, not Ed25519")
        return cls(key)

    @classmethod
    def load(cls, path: Path) -> PublicKey:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise KeyRingError(f"{path}: public key cannot be read: {exc.strerror}") from None
        return cls.from_pem(data, source=str(path))

    def to_pem(self) -> bytes:
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, signature: bytes, data: bytes, *, label: str) -> None:
        try:
            self._key.verify(signature, data)
        except InvalidSignature:
            raise IntegrityError(f"{label}: signature by {self.keyid} does not match") from None


class SigningKey:
    """An Ed25519 private key; its material never appears in a message or a repr."""

    __slots__ = ("_key", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = PublicKey(key.public_key())

    def __repr__(self) -> str:
        return f"SigningKey({self.keyid})"

    @property
    def keyid(self) -> str:
        return self.public.keyid

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path, *, passphrase: bytes | None = None) -> SigningKey:
        """Load a PEM private key file, refusing one that others can read."""
        path = Path(path)
        data = read_private(path, what="signing key", hint="")
        if passphrase is None:
            passphrase = env_passphrase()
        try:
            key = serialization.load_pem_private_key(data, password=passphrase)
        except TypeError:
            raise KeyRingError(
                f"{path}: signing key is encrypted; set {PASSPHRASE_ENV}"
                if passphrase is None
                else f"{path}: signing key is not encrypted, but a passphrase was given"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise KeyRingError(f"{path}: not a PEM private key, or the passphrase is wrong") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyRingError(f"{path}: private key is {type(key).__name__}, not Ed25519")
        return cls(key)

    def save(self, path: Path, *, passphrase: bytes | None = None) -> None:
        """Write the private key (mode 0600; refuses to overwrite) and `<path>.pub` beside it."""
        path = Path(path)
        if path.exists():
            raise KeyRingError(f"{path}: exists already; a key file is never overwritten")
        algorithm: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
        )
        pem = self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm
        )
        write_atomic(path, pem, mode=0o600)
        write_atomic(path.with_name(path.name + ".pub"), self.public.to_pem(), mode=0o644)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


class TrustedKeys(Mapping[str, PublicKey]):
    """The public keys a verifier accepts, by key id. Never empty: no keys means nothing verifies."""

    def __init__(self, keys: Iterable[PublicKey], *, source: str) -> None:
        self._keys = {k.keyid: k for k in keys}
        self.source = source
        if not self._keys:
            raise KeyRingError(f"{source}: no trusted public keys; nothing can be verified")

    def __getitem__(self, keyid: str) -> PublicKey:
        return self._keys[keyid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
