"""The second factor's material: TOTP secrets sealed with the key ring, and single-use recovery codes.

A TOTP secret is stored only sealed (`KeyRing.seal`, AES-256-GCM under a fresh
data key) with associated data naming the principal, so a sealed secret
copied onto another account's row does not open. Recovery codes carry 80
random bits each (16 base32 characters, shown as four groups of four); that
is beyond offline guessing, so a SHA-256 digest (with the principal's name
mixed in) is a safe way to keep them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipewarden.crypto import KeyRing
from pipewarden.identity._totp import Totp

__all__ = [
    "RECOVERY_CODE_COUNT",
    "MfaEnrolment",
    "RecoveryCodes",
    "match_recovery_code",
    "new_recovery_codes",
    "open_secret",
    "recovery_digest",
    "seal_secret",
]

RECOVERY_CODE_COUNT = 10
_RECOVERY_BYTES = 10  # 80 bits: 16 base32 characters
_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def _aad(principal: str) -> bytes:
    return f"pipewarden.mfa/1:principal:{principal}".encode()


def seal_secret(keyring: KeyRing, principal: str, totp: Totp) -> bytes:
    return keyring.seal(totp.secret, context=_aad(principal))


def open_secret(keyring: KeyRing, principal: str, sealed: bytes) -> Totp:
    """The principal's TOTP; `IntegrityError` if the sealed value was altered or belongs to another."""
    return Totp(keyring.open(sealed, context=_aad(principal), label=f"{principal}: MFA secret"))


@dataclass(frozen=True, slots=True)
class MfaEnrolment:
    """A TOTP secret being enrolled, shown to its owner once: `uri` for a QR code, `secret` to type in."""

    principal: str
    totp: Totp = field(repr=False)

    @property
    def secret(self) -> str:
        """The secret in base32, as authenticator apps take it when typed in."""
        return base64.b32encode(self.totp.secret).decode().rstrip("=")

    @property
    def uri(self) -> str:
        return self.totp.uri(account=self.principal)


@dataclass(frozen=True, slots=True)
class RecoveryCodes:
    """Freshly issued recovery codes, shown once; each works once, in place of a one-time code."""

    principal: str
    codes: tuple[str, ...] = field(repr=False)

    def __repr__(self) -> str:
        return f"RecoveryCodes(principal={self.principal!r}, count={len(self.codes)})"


def _normalise(code: str) -> str | None:
    """Lower case without separators, or None if it cannot be a recovery code."""
    text = "".join(c for c in code.strip().lower() if c not in "- ")
    if len(text) != 16 or not set(text) <= _ALPHABET:
        return None
    return text


def recovery_digest(principal: str, code: str) -> str:
    normal = _normalise(code) or code
    return hashlib.sha256(f"pipewarden.recovery/1\0{principal}\0{normal}".encode()).hexdigest()


def new_recovery_codes(principal: str) -> RecoveryCodes:
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        text = base64.b32encode(secrets.token_bytes(_RECOVERY_BYTES)).decode().lower()
        codes.append("-".join(text[i : i + 4] for i in range(0, 16, 4)))
    return RecoveryCodes(principal, tuple(codes))


def match_recovery_code(principal: str, code: str, stored: Iterable[tuple[int, str]]) -> int | None:
    """The id of the stored (id, digest) pair `code` matches, or None; every digest is compared."""
    if _normalise(code) is None:
        return None
    presented = recovery_digest(principal, code)
    found: int | None = None
    for row_id, digest in stored:
        if hmac.compare_digest(presented, digest) and found is None:
            found = row_id
    return found
