"""Time-based one-time passwords: RFC 6238 (TOTP) over RFC 4226 (HOTP).

A code is accepted in the time step it belongs to or one step either side
(clock drift), and only for a step later than the last step accepted for the
same secret: a code, once used, is never accepted again, nor is any code
older than it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from pipewarden.errors import AuthenticationFailed, ConfigError

__all__ = ["SECRET_BYTES", "Totp", "hotp"]

#: RFC 4226, 4 (R6) asks for at least 128 bits and recommends 160.
SECRET_BYTES = 20
_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


def hotp(secret: bytes, counter: int, *, digits: int = 6, algorithm: str = "sha1") -> str:
    """HOTP (RFC 4226, 5.3): HMAC of the 8-byte counter, dynamic truncation, `digits` decimal digits."""
    mac = hmac.new(secret, struct.pack(">Q", counter), _DIGESTS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


@dataclass(frozen=True, slots=True)
class Totp:
    """One TOTP secret and its parameters; `secret` never appears in a repr."""

    secret: bytes = field(repr=False)
    digits: int = 6
    period: int = 30
    algorithm: str = "sha1"

    def __post_init__(self) -> None:
        if self.algorithm not in _DIGESTS:
            raise ConfigError(f"TOTP algorithm {self.algorithm!r} is not one of {', '.join(_DIGESTS)}")
        if not 6 <= self.digits <= 10:
            raise ConfigError(f"TOTP codes have 6 to 10 digits, not {self.digits}")
        if self.period < 1:
            raise ConfigError("TOTP period must be at least one second")
        if len(self.secret) < 16:
            raise ConfigError("TOTP secret must be at least 128 bits")

    @classmethod
    def generate(cls) -> Totp:
        return cls(secrets.token_bytes(SECRET_BYTES))

    def step(self, at: float) -> int:
        return int(at // self.period)

    def code_at(self, at: float) -> str:
        return hotp(self.secret, self.step(at), digits=self.digits, algorithm=self.algorithm)

    def verify(self, code: str, *, last_step: int | None, at: float | None = None, window: int = 1) -> int:
        """Return the step `code` belongs to (store it as the new `last_step`), or raise.

        Raises `AuthenticationFailed` if the code matches no step within
        `window` of `at` (now by default), or only a step at or before
        `last_step` (a replay). Every candidate is compared in constant time.
        """
        now = self.step(time.time() if at is None else at)
        candidate = code.strip()
        matched: int | None = None
        for step in range(now - window, now + window + 1):
            expected = hotp(self.secret, step, digits=self.digits, algorithm=self.algorithm)
            if hmac.compare_digest(expected.encode(), candidate.encode()) and matched is None:
                matched = step
        if matched is None or (last_step is not None and matched <= last_step):
            raise AuthenticationFailed("the one-time code was not accepted")
        return matched

    def uri(self, *, account: str, issuer: str = "pipewarden") -> str:
        """An ``otpauth://`` URI (the Key URI format authenticator apps scan as a QR code)."""
        label = quote(f"{issuer}:{account}")
        query = urlencode(
            {
                "secret": base64.b32encode(self.secret).decode().rstrip("="),
                "issuer": issuer,
                "algorithm": self.algorithm.upper(),
                "digits": self.digits,
                "period": self.period,
            }
        )
        return f"otpauth://totp/{label}?{query}"
