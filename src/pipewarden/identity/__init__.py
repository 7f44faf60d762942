"""Identity: who is acting. This release holds its credentials: argon2id passwords, TOTP
(RFC 6238) and API tokens.

>>> from pipewarden.identity import Totp
>>> totp = Totp.generate()
>>> step = totp.verify(totp.code_at(time.time()), last_step=None)   # store `step`; replays fail
"""

from __future__ import annotations

from pipewarden.identity._passwords import MIN_LENGTH, MIN_SCORE, PasswordPolicy, Verified
from pipewarden.identity._tokens import TOKEN_PREFIX, IssuedToken, ParsedToken, issue_token, parse_token
from pipewarden.identity._totp import SECRET_BYTES, Totp, hotp

__all__ = [
    "MIN_LENGTH",
    "MIN_SCORE",
    "SECRET_BYTES",
    "TOKEN_PREFIX",
    "IssuedToken",
    "ParsedToken",
    "PasswordPolicy",
    "Totp",
    "Verified",
    "hotp",
    "issue_token",
    "parse_token",
]
