"""Passwords: argon2id hashes, a length floor and a strength estimate, no composition rules.

Parameters follow OWASP's Password Storage Cheat Sheet and ASVS 4.0 (2.4): argon2id
with at least 19 MiB of memory, 2 iterations and 1 degree of parallelism;
pipewarden uses 64 MiB and 3 iterations. A hash made with weaker parameters
still verifies, and `verify` says it needs rehashing so the caller stores a new
one at login. NIST SP 800-63B (5.1.1.2) asks for a minimum length and a check
against guessable choices, and against composition rules; zxcvbn estimates how
guessable a password is, the user's own name and e-mail included.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import ARGON2_VERSION

from pipewarden.errors import AuthenticationFailed, ConfigError

__all__ = ["MIN_LENGTH", "MIN_SCORE", "NOT_ACCEPTED", "PasswordPolicy", "Verified"]

#: The whole answer to a credential that was not accepted, whichever part was wrong.
NOT_ACCEPTED = "the credentials were not accepted"
MIN_LENGTH = 12
MAX_LENGTH = 1024
#: zxcvbn's score runs 0-4; 3 is "safely unguessable: moderate protection from offline slow-hash attacks".
MIN_SCORE = 3


@dataclass(frozen=True, slots=True)
class Verified:
    """A password that matched; `needs_rehash` when the stored hash used weaker parameters than now."""

    needs_rehash: bool


class PasswordPolicy:
    """Checks new passwords and hashes and verifies them."""

    def __init__(
        self,
        *,
        min_length: int = MIN_LENGTH,
        min_score: int = MIN_SCORE,
        memory_kib: int = 65536,
        iterations: int = 3,
        parallelism: int = 1,
    ) -> None:
        if min_length < MIN_LENGTH:
            raise ConfigError(f"minimum password length {min_length} is below the floor of {MIN_LENGTH}")
        if memory_kib < 19456 or iterations < 2 or parallelism < 1:
            raise ConfigError("argon2id parameters below the OWASP minimum (19 MiB, 2 iterations, 1 lane)")
        self.min_length = min_length
        self.min_score = min_score
        self._hasher = PasswordHasher(
            time_cost=iterations, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy = _unmatchable_hash(self._hasher)

    def check_new(self, password: str, *, user_inputs: Sequence[str] = ()) -> None:
        """Refuse a new password that is too short, too long, or easy to guess; say why and what helps."""
        if len(password) < self.min_length:
            raise ConfigError(
                f"the password is {len(password)} characters; at least {self.min_length} are needed"
            )
        if len(password) > MAX_LENGTH:
            raise ConfigError(f"the password is longer than {MAX_LENGTH} characters")
        import zxcvbn

        # The user's own names count as guessable, whole and in parts ("alice.smith@example.com"
        # gives alice, smith, example too).
        words = {w for u in user_inputs if u for w in (u, *re.split(r"[^0-9A-Za-z]+", u)) if len(w) >= 3}
        result = zxcvbn.zxcvbn(password, user_inputs=sorted(words))
        if result["score"] < self.min_score:
            feedback = result.get("feedback") or {}
            hint = " ".join(filter(None, [feedback.get("warning", ""), *feedback.get("suggestions", [])]))
            raise ConfigError(
                "the password is too easy to guess" + (f": {hint}" if hint else "") + " (a passphrase of "
                "several unrelated words is both strong and memorable)"
            )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> Verified:
        """Return `Verified` or raise `AuthenticationFailed` (which never says more than that)."""
        try:
            self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise AuthenticationFailed(NOT_ACCEPTED) from None
        return Verified(needs_rehash=self._hasher.check_needs_rehash(stored_hash))

    def dummy_verify(self, password: str) -> None:
        """The work of a real verification, for a user that does not exist (no enumeration by timing).

        Exactly one argon2id run with this policy's parameters, like `verify`,
        in the first call of a process as in every other: the hash it checks
        against was made without hashing anything (see `_unmatchable_hash`).
        """
        try:
            self._hasher.verify(self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass


def _b64(raw: bytes) -> str:
    """Base64 without padding, as the PHC string format that argon2 hashes use writes it."""
    return base64.b64encode(raw).decode().rstrip("=")


def _unmatchable_hash(hasher: PasswordHasher) -> str:
    """An argon2id hash string with `hasher`'s parameters, a random salt and a random digest.

    Verifying a password against it costs one argon2id run with exactly those
    parameters, the same as checking a real user's hash, and never succeeds (a
    password would have to hash to 256 random bits). Making it costs nothing, so
    an unknown name costs one argon2 run even in a fresh process: a dummy hash
    made lazily by hashing would cost two there, telling which names exist.
    """
    return (
        f"$argon2id$v={ARGON2_VERSION}$m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"
        f"${_b64(secrets.token_bytes(hasher.salt_len))}${_b64(secrets.token_bytes(hasher.hash_len))}"
    )
