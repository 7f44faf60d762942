"""Passwords: argon2id at or above OWASP's minimums, rehash on change, length and guessability, no hints."""

from __future__ import annotations

import pytest

from pipewarden.errors import AuthenticationFailed, ConfigError
from pipewarden.identity import PasswordPolicy

# The cheapest parameters OWASP allows: fast enough for tests, still a real argon2id.
POLICY = PasswordPolicy(memory_kib=19456, iterations=2)
STRONG = "tangerine orbit velvet quarry"


def test_hashes_are_argon2id_with_the_parameters_asked_for_and_salted() -> None:
    h = POLICY.hash(STRONG)
    assert h.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert POLICY.hash(STRONG) != h  # a fresh salt each time
    assert POLICY.verify(h, STRONG).needs_rehash is False
    assert PasswordPolicy().hash(STRONG).startswith("$argon2id$v=19$m=65536,t=3,p=1$")


def test_a_wrong_password_or_a_broken_hash_says_nothing_more() -> None:
    h = POLICY.hash(STRONG)
    for stored, given in ((h, STRONG + "!"), (h, ""), ("not a hash", STRONG), (h[:-4], STRONG)):
        with pytest.raises(AuthenticationFailed, match=r"^the credentials were not accepted$"):
            POLICY.verify(stored, given)


def test_a_hash_made_with_weaker_parameters_verifies_and_asks_to_be_rehashed() -> None:
    stronger = PasswordPolicy(memory_kib=19456, iterations=3)
    assert stronger.verify(POLICY.hash(STRONG), STRONG).needs_rehash is True


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "5 characters; at least 12"),
        ("password1234", "too easy to guess"),
        ("aaaaaaaaaaaaaaaa", "too easy to guess"),
        ("alicealice12", "too easy to guess"),  # the user's own name, twice
        ("qwertyuiop123", "too easy to guess"),
    ],
)
def test_new_passwords_that_are_short_or_guessable_are_refused_with_a_reason(
    password: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        POLICY.check_new(password, user_inputs=["alice", "alice.smith@example.com"])


def test_no_composition_rules_a_long_lowercase_passphrase_is_fine() -> None:
    POLICY.check_new(STRONG, user_inputs=["alice"])
    with pytest.raises(ConfigError, match="longer than 1024"):
        POLICY.check_new("x" * 1025)


def test_parameters_below_the_minimums_are_refused() -> None:
    with pytest.raises(ConfigError, match="OWASP minimum"):
        PasswordPolicy(memory_kib=4096)
    with pytest.raises(ConfigError, match="floor of 12"):
        PasswordPolicy(min_length=8)


def test_unknown_users_cost_the_same_work() -> None:
    POLICY.dummy_verify("anything at all")  # no exception, a full argon2id verification
    # The dummy hash carries the policy's own parameters, so its verification costs what a real one does.
    assert POLICY._dummy.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PasswordPolicy()._dummy.startswith("$argon2id$v=19$m=65536,t=3,p=1$")


def test_no_password_matches_the_dummy_hash() -> None:
    """It is a random digest, not the hash of any password: not even an empty one or its own text."""
    for guess in ("", "anything at all", POLICY._dummy, "pipewarden: no such user"):
        with pytest.raises(AuthenticationFailed):
            POLICY.verify(POLICY._dummy, guess)
    assert PasswordPolicy()._dummy != PasswordPolicy()._dummy  # a fresh salt and digest per policy
