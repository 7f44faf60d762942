"""The second factor's material: sealed TOTP secrets bound to their principal, and recovery codes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.crypto import FileKeyProvider, KeyRing
from pipewarden.errors import IntegrityError
from pipewarden.identity import RECOVERY_CODE_COUNT, MfaEnrolment, Session, StoredSession, Totp
from pipewarden.identity._logins import Credentials
from pipewarden.identity._mfa import (
    match_recovery_code,
    new_recovery_codes,
    open_secret,
    recovery_digest,
    seal_secret,
)


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing(FileKeyProvider.create(tmp_path / "keyring.json"))


def test_a_sealed_secret_opens_only_for_the_principal_it_was_sealed_for(ring: KeyRing) -> None:
    totp = Totp.generate()
    sealed = seal_secret(ring, "ada", totp)
    assert totp.secret not in sealed
    assert open_secret(ring, "ada", sealed).secret == totp.secret
    # Copied onto another account's row, it does not open.
    with pytest.raises(IntegrityError):
        open_secret(ring, "mallory", sealed)
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(IntegrityError):
        open_secret(ring, "ada", flipped)


def test_recovery_codes_are_ten_80_bit_codes_in_groups_of_four() -> None:
    codes = new_recovery_codes("ada")
    assert len(codes.codes) == RECOVERY_CODE_COUNT == 10 and len(set(codes.codes)) == 10
    for code in codes.codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        raw = base64.b32decode("".join(groups).upper())
        assert len(raw) == 10  # 80 bits
    assert not any(c in repr(codes) for c in codes.codes)


def test_a_recovery_digest_is_bound_to_its_principal_and_forgives_typing() -> None:
    code = new_recovery_codes("ada").codes[0]
    stored = [
        (1, recovery_digest("ada", code)),
        (2, recovery_digest("ada", new_recovery_codes("ada").codes[0])),
    ]
    assert recovery_digest("bob", code) != stored[0][1]
    for typed in (code, code.upper(), code.replace("-", ""), code.replace("-", " "), f"  {code} "):
        assert match_recovery_code("ada", typed, stored) == 1
    assert match_recovery_code("bob", code, [(1, recovery_digest("bob", code))]) == 1
    assert match_recovery_code("ada", code, [(1, recovery_digest("bob", code))]) is None
    for bad in ("", "1111-1111-1111-1111", code[:-1], code + "a", "0" * 16):
        assert match_recovery_code("ada", bad, stored) is None


@given(st.text(max_size=40))
def test_matching_never_raises_on_anything_typed(typed: str) -> None:
    assert match_recovery_code("ada", typed, [(1, recovery_digest("ada", "aaaa-bbbb-cccc-dddd"))]) in (
        None,
        1,
    )


def test_an_enrolment_shows_the_secret_for_typing_and_scanning_but_never_in_a_repr() -> None:
    totp = Totp.generate()
    enrolment = MfaEnrolment("ada", totp)
    assert base64.b32decode(enrolment.secret + "=" * (-len(enrolment.secret) % 8)) == totp.secret
    assert enrolment.uri.startswith("otpauth://totp/pipewarden%3Aada?secret=" + enrolment.secret)
    assert enrolment.secret not in repr(enrolment)


def test_credentials_and_sessions_keep_their_secrets_out_of_reprs() -> None:
    creds = Credentials("ada", "tangerine orbit", totp_code="123456", recovery_code="aaaa-bbbb-cccc-dddd")
    assert repr(creds) == "Credentials(name='ada')"
    when = datetime(2026, 1, 1, tzinfo=UTC)
    token = "pwt_AAAAAAAAAAAA_" + "B" * 43
    assert token not in repr(Session("AAAAAAAAAAAA", when, token))
    assert token not in repr(StoredSession("ada", "AAAAAAAAAAAA", when, token))
