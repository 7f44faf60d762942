"""TLS posture against a real TLS server on loopback and certificate files, each certificate made here."""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipewarden.errors import ConfigError
from pipewarden.posture import PostureBaseline
from pipewarden.posture._checks_tls import check_tls, parse_url
from tests.posture.tlskit import DAY, Ca, make_ca, make_leaf, sha1_signed, tls_server


@pytest.fixture(scope="module")
def ca() -> Ca:
    return make_ca()


def _rules(url: str | None = None, *, tls_cert: Path | None = None, ca: Path | None = None) -> dict[str, str]:
    """Rule id -> message of what the TLS check found."""
    result = check_tls(url=url, tls_cert=tls_cert, ca=ca, now=datetime.now(UTC), baseline=PostureBaseline())
    return {f.rule_id: f.message for f in result.findings}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_valid_server_passes_against_its_ca(tmp_path: Path, ca: Ca) -> None:
    cert, key = make_leaf(ca).write(tmp_path)
    with tls_server(cert, key) as port:
        assert _rules(f"https://127.0.0.1:{port}", ca=ca.write(tmp_path / "ca.pem")) == {}
        # The same server by name: 'localhost' is in its subjectAltName too.
        assert _rules(f"https://localhost:{port}", ca=tmp_path / "ca.pem") == {}


def test_a_certificate_from_an_untrusted_issuer_fails_the_chain(tmp_path: Path, ca: Ca) -> None:
    cert, key = make_leaf(ca).write(tmp_path)
    stranger = make_ca("someone else's CA").write(tmp_path / "other-ca.pem")
    with tls_server(cert, key) as port:
        found = _rules(f"https://127.0.0.1:{port}", ca=stranger)
        # The system trust store does not know the test CA either.
        default = _rules(f"https://127.0.0.1:{port}")
    assert set(found) == {"PW-POST-105"} and "does not verify" in found["PW-POST-105"]
    assert set(default) == {"PW-POST-105"} and "system trust store" in default["PW-POST-105"]


def test_an_expired_certificate_is_reported_by_its_dates_not_twice(tmp_path: Path, ca: Ca) -> None:
    now = datetime.now(UTC)
    cert, key = make_leaf(ca, not_before=now - 400 * DAY, not_after=now - 3 * DAY).write(tmp_path)
    with tls_server(cert, key) as port:
        found = _rules(f"https://127.0.0.1:{port}", ca=ca.write(tmp_path / "ca.pem"))
    assert set(found) == {"PW-POST-102"}
    assert "expired on" in found["PW-POST-102"] and "(3 days ago)" in found["PW-POST-102"]


def test_a_certificate_for_another_host_is_reported(tmp_path: Path, ca: Ca) -> None:
    cert, key = make_leaf(ca, dns=("other.example",), ips=()).write(tmp_path)
    with tls_server(cert, key) as port:
        found = _rules(f"https://127.0.0.1:{port}", ca=ca.write(tmp_path / "ca.pem"))
    assert set(found) == {"PW-POST-104"}
    assert "is for other.example, not 127.0.0.1" in found["PW-POST-104"]


def test_a_certificate_expiring_within_thirty_days_is_reported(tmp_path: Path, ca: Ca) -> None:
    cert, key = make_leaf(ca, not_after=datetime.now(UTC) + 10 * DAY).write(tmp_path)
    with tls_server(cert, key) as port:
        found = _rules(f"https://127.0.0.1:{port}", ca=ca.write(tmp_path / "ca.pem"))
    assert set(found) == {"PW-POST-103"} and "in 9 days" in found["PW-POST-103"]


def test_a_server_speaking_only_old_protocols_is_reported(tmp_path: Path, ca: Ca) -> None:
    if not ssl.HAS_TLSv1_1:
        pytest.skip("this TLS library cannot speak TLS 1.1")
    cert, key = make_leaf(ca).write(tmp_path)
    with tls_server(cert, key, old_protocols_only=True) as port:
        found = _rules(f"https://127.0.0.1:{port}", ca=ca.write(tmp_path / "ca.pem"))
    # It accepts TLS 1.1, and no TLS 1.2 handshake completes, so its certificate cannot be read either.
    assert set(found) == {"PW-POST-106", "PW-POST-109"}
    assert "accepts TLSv1.1" in found["PW-POST-106"]
    assert "no TLS 1.2 or newer handshake" in found["PW-POST-109"]


def test_plain_http_is_tls_not_enforced_and_user_info_is_never_shown() -> None:
    found = _rules("http://operator:hunter2-not-real@pw.internal:8080/dashboard")
    assert set(found) == {"PW-POST-101"}
    assert found["PW-POST-101"].startswith("http://pw.internal:8080: served over plain HTTP")
    assert "hunter2" not in found["PW-POST-101"] and "operator" not in found["PW-POST-101"]


def test_a_server_that_cannot_be_reached_is_not_determinable_never_a_pass() -> None:
    found = _rules(f"https://127.0.0.1:{_closed_port()}")
    assert set(found) == {"PW-POST-109"} and "cannot connect" in found["PW-POST-109"]


def test_nothing_to_check_is_said_as_an_info_finding() -> None:
    result = check_tls(url=None, tls_cert=None, ca=None, now=datetime.now(UTC), baseline=PostureBaseline())
    assert [(f.rule_id, f.severity.label) for f in result.findings] == [("PW-POST-100", "info")]
    assert result.status == "not checked"


def test_certificate_files_are_judged_on_dates_key_and_signature(tmp_path: Path, ca: Ca) -> None:
    now = datetime.now(UTC)
    good, _ = make_leaf(ca).write(tmp_path, "good")
    assert _rules(tls_cert=good) == {}
    assert _rules(tls_cert=good, ca=ca.write(tmp_path / "ca.pem")) == {}
    stranger = make_ca("someone else's CA").write(tmp_path / "other-ca.pem")
    assert set(_rules(tls_cert=good, ca=stranger)) == {"PW-POST-105"}

    future, _ = make_leaf(ca, not_before=now + 5 * DAY).write(tmp_path, "future")
    assert "not valid before" in _rules(tls_cert=future)["PW-POST-102"]

    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  # the fixture
    weak, _ = make_leaf(ca, key=weak_key).write(tmp_path, "weak")
    found = _rules(tls_cert=weak)
    assert set(found) == {"PW-POST-107"} and "RSA key of 1024 bits" in found["PW-POST-107"]

    old = tmp_path / "sha1.pem"
    old.write_bytes(sha1_signed().public_bytes(serialization.Encoding.PEM))
    found = _rules(tls_cert=old)
    assert set(found) == {"PW-POST-108"} and "signed with SHA1" in found["PW-POST-108"]


def test_unreadable_certificate_files_are_not_determinable(tmp_path: Path) -> None:
    assert set(_rules(tls_cert=tmp_path / "missing.pem")) == {"PW-POST-109"}
    (tmp_path / "not.pem").write_text("not a certificate\n")
    assert "holds no PEM certificate" in _rules(tls_cert=tmp_path / "not.pem")["PW-POST-109"]


def test_wildcards_cover_exactly_one_left_most_label(tmp_path: Path, ca: Ca) -> None:
    from pipewarden.posture._checks_tls import _host_matches

    cert = make_leaf(ca, dns=("*.pw.example", "exact.example"), ips=("::1",)).cert
    assert _host_matches("api.pw.example", cert)
    assert _host_matches("API.PW.EXAMPLE.", cert)
    assert not _host_matches("pw.example", cert)
    assert not _host_matches("a.b.pw.example", cert)
    assert _host_matches("exact.example", cert)
    assert _host_matches("::1", cert) and not _host_matches("127.0.0.1", cert)
    too_wide = make_leaf(ca, dns=("*.example",), ips=()).cert
    assert not _host_matches("pw.example", too_wide)


@pytest.mark.parametrize("url", ["ftp://pw.internal", "https://", "pw.internal:443", "https://h:99999"])
def test_unusable_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="--url"):
        parse_url(url)


def test_a_ca_file_that_cannot_be_read_is_not_determinable(tmp_path: Path, ca: Ca) -> None:
    cert, key = make_leaf(ca).write(tmp_path)
    with tls_server(cert, key) as port:
        found = _rules(f"https://127.0.0.1:{port}", ca=tmp_path / "missing-ca.pem")
    assert set(found) == {"PW-POST-109"} and "the CA file cannot be read" in found["PW-POST-109"]
