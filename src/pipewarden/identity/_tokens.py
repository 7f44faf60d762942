"""API tokens: 256 random bits behind a recognisable prefix, shown once, stored only as a digest.

    pwt_<12-character id>_<43-character secret>

The id finds the stored record without scanning; the secret (256 bits from the
operating system's CSPRNG, base64url) is never stored: only SHA-256 of the
whole token, compared in constant time. A prefix like this lets secret
scanners (and pipewarden's own) recognise a leaked token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from pipewarden.errors import AuthenticationFailed

__all__ = [
    "TOKEN_PATTERN",
    "TOKEN_PREFIX",
    "IssuedToken",
    "ParsedToken",
    "issue_token",
    "parse_token",
    "token_digest",
]

TOKEN_PREFIX = "pwt_"  # noqa: S105  # the public prefix of every token, not a secret
TOKEN_PATTERN = re.compile(r"\Apwt_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})\Z")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token: `plaintext` is shown to its owner once; `token_id` and `digest` are what is stored."""

    token_id: str
    digest: str
    plaintext: str

    def __repr__(self) -> str:
        return f"IssuedToken(token_id={self.token_id!r})"


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A presented token's id, and the means to check it against a stored digest."""

    token_id: str
    _token: str

    def __repr__(self) -> str:
        return f"ParsedToken(token_id={self.token_id!r})"

    def check(self, stored_digest: str) -> None:
        """Raise `AuthenticationFailed` unless this token is the one whose digest was stored."""
        if not hmac.compare_digest(token_digest(self._token), stored_digest):
            raise AuthenticationFailed("the credentials were not accepted")


def issue_token() -> IssuedToken:
    token_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    plaintext = f"{TOKEN_PREFIX}{token_id}_{secret}"
    return IssuedToken(token_id=token_id, digest=token_digest(plaintext), plaintext=plaintext)


def parse_token(presented: str) -> ParsedToken:
    """Check a presented token's shape; `AuthenticationFailed` (saying nothing more) if it is not one."""
    match = TOKEN_PATTERN.match(presented.strip())
    if match is None:
        raise AuthenticationFailed("the credentials were not accepted")
    return ParsedToken(token_id=match.group(1), _token=presented.strip())
