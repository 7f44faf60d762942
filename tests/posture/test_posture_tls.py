"""TLS posture against a real TLS server on loopback and certificate files, each certificate made here."""

from __future__ import annotations

import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pipewarden.errors import ConfigError
from pipewarden.posture import PostureBaseline
from pipewarden.posture import _checks_tls as tls
from pipewarden.posture._checks_tls import check_tls, parse_url
from pipewarden.posture._tls_certs import host_matches
from tests.posture.tlskit import DAY, Ca, make_ca, make_intermediate, make_leaf, sha1_signed, tls_server


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
    with tls_server(cert, key, minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1_1) as port:
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
    ca_file = ca.write(tmp_path / "ca.pem")
    good, _ = make_leaf(ca).write(tmp_path, "good")
    assert _rules(tls_cert=good, ca=ca_file) == {}
    stranger = make_ca("someone else's CA").write(tmp_path / "other-ca.pem")
    assert set(_rules(tls_cert=good, ca=stranger)) == {"PW-POST-105"}

    future, _ = make_leaf(ca, not_before=now + 5 * DAY).write(tmp_path, "future")
    assert "not valid before" in _rules(tls_cert=future, ca=ca_file)["PW-POST-102"]

    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505  # the fixture
    weak, _ = make_leaf(ca, key=weak_key).write(tmp_path, "weak")
    found = _rules(tls_cert=weak, ca=ca_file)
    assert set(found) == {"PW-POST-107"} and "RSA key of 1024 bits" in found["PW-POST-107"]

    old = tmp_path / "sha1.pem"
    sha1 = sha1_signed()
    old.write_bytes(sha1.public_bytes(serialization.Encoding.PEM))
    found = _rules(tls_cert=old, ca=old)  # self-signed: its own CA
    assert set(found) == {"PW-POST-108", "PW-POST-105"} and "signed with SHA1" in found["PW-POST-108"]
    # As TLS libraries do, the chain check refuses a SHA-1 signature too, and says so.
    assert "the signature cannot be checked" in found["PW-POST-105"]


def test_unreadable_certificate_files_are_not_determinable(tmp_path: Path) -> None:
    assert set(_rules(tls_cert=tmp_path / "missing.pem")) == {"PW-POST-109"}
    (tmp_path / "not.pem").write_text("not a certificate\n")
    assert "holds no PEM certificate" in _rules(tls_cert=tmp_path / "not.pem")["PW-POST-109"]


def test_wildcards_cover_exactly_one_left_most_label(tmp_path: Path, ca: Ca) -> None:
    cert = make_leaf(ca, dns=("*.pw.example", "exact.example"), ips=("::1",)).cert
    assert host_matches("api.pw.example", cert)
    assert host_matches("API.PW.EXAMPLE.", cert)
    assert not host_matches("pw.example", cert)
    assert not host_matches("a.b.pw.example", cert)
    assert host_matches("exact.example", cert)
    assert host_matches("::1", cert) and not host_matches("127.0.0.1", cert)
    too_wide = make_leaf(ca, dns=("*.example",), ips=()).cert
    assert not host_matches("pw.example", too_wide)


@pytest.mark.parametrize("url", ["ftp://pw.internal", "https://", "pw.internal:443", "https://h:99999"])
def test_unusable_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="--url"):
        parse_url(url)


def test_a_ca_file_that_cannot_be_read_is_not_determinable(tmp_path: Path, ca: Ca) -> None:
    cert, key = make_leaf(ca).write(tmp_path)
    with tls_server(cert, key) as port:
        found = _rules(f"https://127.0.0.1:{port}", ca=tmp_path / "missing-ca.pem")
    assert set(found) == {"PW-POST-109"} and "the CA file cannot be read" in found["PW-POST-109"]


# --- every certificate of the chain is dated ------------------------------------------------------------


def _expired_intermediate(tmp_path: Path, ca: Ca) -> tuple[Path, Path]:
    """A server certificate, valid, issued by an intermediate that expired yesterday under a valid root."""
    now = datetime.now(UTC)
    intermediate = make_intermediate(ca, not_before=now - 400 * DAY, not_after=now - DAY)
    return make_leaf(intermediate).write(tmp_path, "chained", chain=[intermediate])


def test_an_expired_intermediate_fails_a_server_and_a_certificate_file(tmp_path: Path, ca: Ca) -> None:
    ca_file = ca.write(tmp_path / "ca.pem")
    cert, key = _expired_intermediate(tmp_path, ca)
    with tls_server(cert, key) as port:
        served = _rules(f"https://127.0.0.1:{port}", ca=ca_file)
    on_file = _rules(tls_cert=cert, ca=ca_file)
    for found in (served, on_file):
        assert set(found) == {"PW-POST-102"}, found
        assert "the chain's certificate CN=pipewarden test intermediate expired on" in found["PW-POST-102"]
        assert "(1 days ago)" in found["PW-POST-102"]
    # The benign counterpart: the same shape with a valid intermediate passes both ways.
    intermediate = make_intermediate(ca)
    good, good_key = make_leaf(intermediate).write(tmp_path, "good", chain=[intermediate])
    with tls_server(good, good_key) as port:
        assert _rules(f"https://127.0.0.1:{port}", ca=ca_file) == {}
    assert _rules(tls_cert=good, ca=ca_file) == {}


def test_an_expired_certificate_the_server_did_not_send_fails_the_chain(
    tmp_path: Path, ca: Ca, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = ca.write(tmp_path / "ca.pem")
    cert, key = _expired_intermediate(tmp_path, ca)
    # A Python that cannot read the certificates a server sends sees only the server's own, which is
    # valid: OpenSSL's "expired" is then about another one, and the chain is not passed.
    monkeypatch.setattr(tls, "_served_chain", lambda conn: (conn.getpeercert(binary_form=True),))
    with tls_server(cert, key) as port:
        found = _rules(f"https://127.0.0.1:{port}", ca=ca_file)
    assert set(found) == {"PW-POST-105"} and "certificate has expired" in found["PW-POST-105"]


def test_an_expired_trusted_ca_fails_the_chain(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old_root = make_ca("retired root", not_before=now - 3650 * DAY, not_after=now - 2 * DAY)
    ca_file = old_root.write(tmp_path / "old-ca.pem")
    cert, key = make_leaf(old_root).write(tmp_path)
    with tls_server(cert, key) as port:
        served = _rules(f"https://127.0.0.1:{port}", ca=ca_file)
    assert set(served) == {"PW-POST-105"} and "certificate has expired" in served["PW-POST-105"]
    on_file = _rules(tls_cert=cert, ca=ca_file)
    assert set(on_file) == {"PW-POST-105"}
    assert "the trusted CA CN=retired root is outside its validity window" in on_file["PW-POST-105"]


def test_expired_dates_do_not_hide_a_forged_signature(tmp_path: Path, ca: Ca) -> None:
    now = datetime.now(UTC)
    ca_file = ca.write(tmp_path / "ca.pem")
    intermediate = make_intermediate(ca, not_before=now - 400 * DAY, not_after=now - DAY)
    # Names the intermediate as its issuer in every field, but another key signed it.
    forged = make_leaf(intermediate, forged_by=ec.generate_private_key(ec.SECP256R1()))
    cert, key = forged.write(tmp_path, "forged", chain=[intermediate])
    with tls_server(cert, key) as port:
        served = _rules(f"https://127.0.0.1:{port}", ca=ca_file)
    assert set(served) == {"PW-POST-102", "PW-POST-105"}
    assert "signature" in served["PW-POST-105"]
    on_file = _rules(tls_cert=cert, ca=ca_file)
    assert set(on_file) == {"PW-POST-102", "PW-POST-105"}
    assert "but the signature does not verify" in on_file["PW-POST-105"]


# --- a certificate file without --ca: the system trust store ---------------------------------------------


def test_a_certificate_file_without_ca_is_checked_against_the_system_trust_store(
    tmp_path: Path, ca: Ca, monkeypatch: pytest.MonkeyPatch
) -> None:
    self_signed, _ = make_leaf(None).write(tmp_path, "self-signed")
    found = _rules(tls_cert=self_signed)
    assert set(found) == {"PW-POST-105"}
    assert "does not verify against the system trust store" in found["PW-POST-105"]
    # OpenSSL's own variables choose the system store, for files as for servers: trust the test CA.
    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.write(tmp_path / "system-ca.pem")))
    monkeypatch.setenv("SSL_CERT_DIR", str(store))
    cert, key = make_leaf(ca).write(tmp_path)
    assert _rules(tls_cert=cert) == {}
    with tls_server(cert, key) as port:
        assert _rules(f"https://127.0.0.1:{port}") == {}
    assert set(_rules(tls_cert=self_signed)) == {"PW-POST-105"}


def test_a_certificate_file_without_ca_or_system_store_is_not_determinable(
    tmp_path: Path, ca: Ca, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-such-folder"))
    cert, _ = make_leaf(ca).write(tmp_path)
    found = _rules(tls_cert=cert)
    assert set(found) == {"PW-POST-109"} and "no system trust store" in found["PW-POST-109"]


# --- old protocols ------------------------------------------------------------------------------------


def test_a_server_accepting_tls_1_0_to_1_3_is_reported(tmp_path: Path, ca: Ca) -> None:
    if not ssl.HAS_TLSv1_1:
        pytest.skip("this TLS library cannot speak TLS 1.1")
    cert, key = make_leaf(ca).write(tmp_path)
    # The server's security level is lowered to 0 with the protocols (tls_server), as is the probe's.
    with tls_server(cert, key, minimum=ssl.TLSVersion.TLSv1) as port:
        found = _rules(f"https://127.0.0.1:{port}", ca=ca.write(tmp_path / "ca.pem"))
    assert set(found) == {"PW-POST-106"} and "accepts TLSv1.1" in found["PW-POST-106"]


def test_a_client_that_cannot_offer_old_protocols_is_not_a_refusal(
    tmp_path: Path, ca: Ca, monkeypatch: pytest.MonkeyPatch
) -> None:
    offer_old = tls._old_protocols

    def policy_bound() -> ssl.SSLContext:
        # What a FIPS or crypto-policy host leaves the probe: only ciphers of TLS 1.2, so no TLS 1.0/1.1
        # hello can be made at all (NO_CIPHERS_AVAILABLE), whatever the server would say.
        context = offer_old()
        context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
        return context

    monkeypatch.setattr(tls, "_old_protocols", policy_bound)
    cert, key = make_leaf(ca).write(tmp_path)
    with tls_server(cert, key, minimum=ssl.TLSVersion.TLSv1) as port:
        found = _rules(f"https://127.0.0.1:{port}", ca=ca.write(tmp_path / "ca.pem"))
    assert set(found) == {"PW-POST-109"}
    assert "this machine cannot offer TLS 1.0 or 1.1 (NO_CIPHERS_AVAILABLE)" in found["PW-POST-109"]
