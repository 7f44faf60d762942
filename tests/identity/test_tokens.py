"""API tokens: 256 random bits, a recognisable prefix, only a digest stored, checked in constant time."""

from __future__ import annotations

import base64

import pytest

from pipewarden.errors import AuthenticationFailed
from pipewarden.identity import issue_token, parse_token
from pipewarden.identity._tokens import TOKEN_PATTERN, token_digest


def test_an_issued_token_has_the_prefix_256_bits_and_is_stored_only_as_a_digest() -> None:
    issued = issue_token()
    match = TOKEN_PATTERN.match(issued.plaintext)
    assert issued.plaintext.startswith("pwt_") and match is not None
    secret = match.group(2)  # base64url: it may itself contain '_'
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert issued.digest == token_digest(issued.plaintext) and issued.plaintext not in issued.digest
    assert issued.plaintext not in repr(issued) and issued.token_id in repr(issued)
    assert len({issue_token().plaintext for _ in range(100)}) == 100


def test_a_presented_token_checks_against_its_digest_and_nothing_else() -> None:
    issued, other = issue_token(), issue_token()
    parsed = parse_token(issued.plaintext)
    assert parsed.token_id == issued.token_id
    parsed.check(issued.digest)
    with pytest.raises(AuthenticationFailed, match=r"^the credentials were not accepted$"):
        parsed.check(other.digest)
    assert issued.plaintext not in repr(parsed)


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "pwt_",
        "ghp_abcdefghijkl_" + "A" * 43,
        "pwt_short_" + "A" * 43,
        "pwt_abcdefghijkl_" + "A" * 42,
        "pwt_abcdefghijkl_" + "A" * 42 + "!",
    ],
)
def test_anything_not_shaped_like_a_token_is_refused_without_detail(presented: str) -> None:
    with pytest.raises(AuthenticationFailed, match=r"^the credentials were not accepted$"):
        parse_token(presented)
