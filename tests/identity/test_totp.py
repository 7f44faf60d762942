"""TOTP: the RFC test vectors, the ±1 step window at its edges, and replay protection."""

from __future__ import annotations

import pytest

from pipewarden.errors import AuthenticationFailed, ConfigError
from pipewarden.identity import Totp, hotp

# RFC 6238, Appendix B: 8-digit codes, 30-second steps, one seed per hash.
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238 = [
    (59, {"sha1": "94287082", "sha256": "46119246", "sha512": "90693936"}),
    (1111111109, {"sha1": "07081804", "sha256": "68084774", "sha512": "25091201"}),
    (1111111111, {"sha1": "14050471", "sha256": "67062674", "sha512": "99943326"}),
    (1234567890, {"sha1": "89005924", "sha256": "91819424", "sha512": "93441116"}),
    (2000000000, {"sha1": "69279037", "sha256": "90698825", "sha512": "38618901"}),
    (20000000000, {"sha1": "65353130", "sha256": "77737706", "sha512": "47863826"}),
]
# RFC 4226, Appendix D: HOTP values for counters 0..9.
RFC4226 = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]


@pytest.mark.parametrize(("at", "codes"), RFC6238)
@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sha512"])
def test_rfc6238_vectors(at: int, codes: dict[str, str], algorithm: str) -> None:
    totp = Totp(SEEDS[algorithm], digits=8, algorithm=algorithm)
    assert totp.code_at(at) == codes[algorithm]
    assert totp.verify(codes[algorithm], last_step=None, at=at) == at // 30


def test_rfc4226_vectors() -> None:
    assert [hotp(SEEDS["sha1"], c) for c in range(10)] == RFC4226


def test_window_is_one_step_either_side_and_no_more() -> None:
    totp = Totp(SEEDS["sha1"])
    at = 1_000_000_020.0  # the middle of step 33333334
    step = totp.step(at)
    for offset in (-1, 0, 1):
        assert totp.verify(totp.code_at(at + offset * 30), last_step=None, at=at) == step + offset
    for offset in (-2, 2):
        with pytest.raises(AuthenticationFailed):
            totp.verify(totp.code_at(at + offset * 30), last_step=None, at=at)
    # The edges of a step: its first and last second belong to it.
    start = step * 30
    assert totp.verify(totp.code_at(start), last_step=None, at=start + 29.999) == step


def test_a_code_once_accepted_is_never_accepted_again_nor_an_older_one() -> None:
    totp = Totp(SEEDS["sha1"])
    at = 1_700_000_000.0
    accepted = totp.verify(totp.code_at(at), last_step=None, at=at)
    with pytest.raises(AuthenticationFailed):
        totp.verify(totp.code_at(at), last_step=accepted, at=at)
    with pytest.raises(AuthenticationFailed):
        totp.verify(totp.code_at(at - 30), last_step=accepted, at=at)
    assert totp.verify(totp.code_at(at + 30), last_step=accepted, at=at) == accepted + 1


def test_wrong_codes_and_the_message_says_nothing_about_why() -> None:
    totp = Totp(SEEDS["sha1"])
    for code in ("000000", "", "abcdef", "1234567", totp.code_at(0)):
        with pytest.raises(AuthenticationFailed, match=r"^the one-time code was not accepted$"):
            totp.verify(code, last_step=None, at=1_700_000_000.0)


def test_secrets_parameters_and_the_enrolment_uri() -> None:
    totp = Totp.generate()
    assert len(totp.secret) == 20 and totp.secret not in repr(totp).encode()
    assert "secret" not in repr(totp)
    uri = Totp(SEEDS["sha1"]).uri(account="alice@example.com")
    assert uri.startswith(
        "otpauth://totp/pipewarden%3Aalice%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    )
    assert "algorithm=SHA1" in uri and "digits=6" in uri and "period=30" in uri
    with pytest.raises(ConfigError, match="128 bits"):
        Totp(b"short")
    with pytest.raises(ConfigError, match="md5"):
        Totp(SEEDS["sha1"], algorithm="md5")
    with pytest.raises(ConfigError, match="6 to 10 digits"):
        Totp(SEEDS["sha1"], digits=4)
