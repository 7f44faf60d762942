"""Accounts over the API, as an administrator and a newcomer use them: users and service accounts made,
disabled and enabled, roles granted and revoked, a second factor enrolled (over TLS only) and reset,
client certificates registered and presented.

Each test runs a real workspace behind `create_app`. Client certificates reach the app as uvicorn's
`TlsScopeProtocol` hands them over (the ASGI TLS extension), here through the same wrapper it uses;
the handshake itself is tested over real sockets in tests/integration/test_server_mtls.py.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from fastapi.testclient import TestClient

from pipewarden.identity import ClientCertificates, Grant, Totp, certificate_fingerprint
from pipewarden.server._tls import _WithTls
from tests.server.serverkit import ADMIN, PASSWORD, ROOT, ServerKit, assert_problem, bearer, next_code

FRAUD = "project:fraud"
WEAK = "password1"  # refused by the password policy


@pytest.fixture
def kit(tmp_path: Path) -> ServerKit:
    return ServerKit(tmp_path)


@pytest.fixture
def client(kit: ServerKit) -> Iterator[TestClient]:
    with kit.client() as c:
        yield c


def _admin(kit: ServerKit, client: TestClient) -> dict[str, str]:
    """The administrator's login session (password and TOTP), as a bearer header."""
    response = kit.login(client, ADMIN, totp_code=next_code(kit.admin_totp))
    assert response.status_code == 200, response.text
    client.cookies.clear()
    return bearer(response.json()["token"])


def _events(kit: ServerKit, start: int) -> list[tuple[str, str, str]]:
    return [(e.action, e.outcome, e.actor) for e in kit.events_since(start)]


# --- users --------------------------------------------------------------------------------------------


def test_an_administrator_creates_a_user_with_roles_once(kit: ServerKit, client: TestClient) -> None:
    admin = _admin(kit, client)
    start = kit.head()
    body = {
        "password": PASSWORD,
        "display_name": "Ada L.",
        "grants": [{"role": "ml-engineer", "scope": FRAUD}],
    }
    made = client.put("/v1/users/ada", json=body, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["kind"] == "user" and made.json()["grants"] == [
        {"role": "ml-engineer", "scope": FRAUD}
    ]
    assert _events(kit, start) == [("user.create", "allowed", ADMIN)]
    listed = {u["name"]: u for u in client.get("/v1/users", headers=admin).json()["users"]}
    assert listed["ada"]["display_name"] == "Ada L." and listed["ada"]["mfa_enrolled"] is False
    # The name is taken now: refused, recorded, and nothing about the account changes.
    start = kit.head()
    again = client.put("/v1/users/ada", json={"password": PASSWORD}, headers=admin)
    assert "exists already" in assert_problem(again, 400, "bad-request")["detail"]
    assert _events(kit, start) == [("user.create", "error", ADMIN)]
    assert kit.accounts.get("ada").grants == (Grant("ml-engineer", FRAUD),)


def test_a_weak_password_or_an_unknown_role_creates_nothing(kit: ServerKit, client: TestClient) -> None:
    admin = _admin(kit, client)
    start = kit.head()
    weak = client.put("/v1/users/bob", json={"password": WEAK}, headers=admin)
    assert_problem(weak, 400, "bad-request", private=(WEAK,))
    unknown = client.put(
        "/v1/users/bob", json={"password": PASSWORD, "grants": [{"role": "wizard"}]}, headers=admin
    )
    assert "wizard" in assert_problem(unknown, 400, "bad-request")["detail"]
    assert _events(kit, start) == [("user.create", "error", ADMIN)] * 2
    assert all(WEAK not in str(e.attributes) for e in kit.events_since(start))
    assert "bob" not in {p.name for p in kit.accounts.list()}


def test_only_who_may_create_and_grant_makes_accounts(kit: ServerKit, client: TestClient) -> None:
    kit.service("svc-eng", Grant("ml-engineer", FRAUD))
    engineer = bearer(kit.token("svc-eng"))
    start = kit.head()
    refused = client.put("/v1/users/eve", json={"password": PASSWORD}, headers=engineer)
    assert_problem(refused, 403, "access-denied")
    assert _events(kit, start) == [("user.create", "denied", "svc-eng")]
    assert_problem(client.put("/v1/users/eve", json={"password": PASSWORD}), 401, "authentication-failed")
    assert "eve" not in {p.name for p in kit.accounts.list()}


def test_disabling_stops_a_principal_at_once_and_enabling_lets_it_back(
    kit: ServerKit, client: TestClient
) -> None:
    admin = _admin(kit, client)
    kit.service("svc-etl", Grant("pipeline-service", FRAUD))
    token = bearer(kit.token("svc-etl"))
    assert client.get("/v1/whoami", headers=token).status_code == 200
    start = kit.head()
    done = client.post("/v1/users/svc-etl/disable", headers=admin)
    assert done.status_code == 200 and done.json()["disabled"] is True
    assert _events(kit, start) == [("user.disable", "allowed", ADMIN)]
    assert_problem(client.get("/v1/whoami", headers=token), 401, "authentication-failed")
    assert client.post("/v1/users/svc-etl/enable", headers=admin).json()["disabled"] is False
    assert client.get("/v1/whoami", headers=token).status_code == 200
    # Nobody disables themselves, and an unknown name is an error; each is one event.
    start = kit.head()
    assert_problem(client.post(f"/v1/users/{ADMIN}/disable", headers=admin), 400, "bad-request")
    assert_problem(client.post("/v1/users/ghost/disable", headers=admin), 400, "bad-request")
    assert _events(kit, start) == [("user.disable", "error", ADMIN)] * 2


def test_acting_on_an_account_needs_the_right_to_grant_its_roles(kit: ServerKit) -> None:
    # A custom role with user.update everywhere, but no role.grant: it cannot disable an admin.
    (kit.ws.root / "policy.yaml").write_text(
        "format: pipewarden.policy/1\n"
        "roles:\n  helpdesk:\n    requires_mfa: false\n    allow:\n"
        "      - actions: [user.update]\n        resources: 'user:*'\n"
    )
    kit.service("svc-help", Grant("helpdesk"))
    helpdesk = bearer(kit.token("svc-help"))
    with kit.client() as fresh:  # the policy is read when the app is made
        start = kit.head()
        refused = fresh.post(f"/v1/users/{ADMIN}/disable", headers=helpdesk)
    assert "role.grant on role:admin" in assert_problem(refused, 403, "access-denied")["detail"]
    assert _events(kit, start) == [("user.disable", "denied", "svc-help")]
    assert kit.accounts.get(ADMIN).disabled is False


# --- roles ---------------------------------------------------------------------------------------------


def test_roles_are_listed_granted_and_revoked(kit: ServerKit, client: TestClient) -> None:
    admin = _admin(kit, client)
    kit.service("svc-etl", Grant("viewer", FRAUD))
    roles = client.get("/v1/roles", headers=admin).json()
    assert {"admin", "ml-engineer", "viewer"} <= {r["name"] for r in roles["roles"]}
    start = kit.head()
    granted = client.post(
        "/v1/roles/pipeline-service/bindings", json={"subject": "svc-etl", "scope": FRAUD}, headers=admin
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()["granted_by"] == ADMIN
    mine = client.get("/v1/bindings", params={"subject": "svc-etl"}, headers=admin).json()
    assert {(b["role"], b["scope"]) for b in mine["bindings"]} == {
        ("viewer", FRAUD),
        ("pipeline-service", FRAUD),
    }
    assert {g["role"] for g in mine["grants"]} == {"viewer", "pipeline-service"}
    revoked = client.delete(
        "/v1/roles/viewer/bindings", params={"subject": "svc-etl", "scope": FRAUD}, headers=admin
    )
    assert revoked.status_code == 200, revoked.text
    assert _events(kit, start)[0::2] == [("role.grant", "allowed", ADMIN), ("role.revoke", "allowed", ADMIN)]
    assert kit.accounts.get("svc-etl").grants == (Grant("pipeline-service", FRAUD),)
    # What cannot be: a role the policy does not define, a binding that is not there, the last admin.
    start = kit.head()
    assert_problem(
        client.post("/v1/roles/wizard/bindings", json={"subject": "svc-etl"}, headers=admin),
        400,
        "bad-request",
    )
    assert_problem(
        client.delete(
            "/v1/roles/viewer/bindings", params={"subject": "svc-etl", "scope": FRAUD}, headers=admin
        ),
        400,
        "bad-request",
    )
    last = client.delete("/v1/roles/admin/bindings", params={"subject": ADMIN}, headers=admin)
    assert last.status_code in (400, 403) and last.status_code != 200
    assert len(kit.events_since(start)) == 3
    assert kit.accounts.get(ADMIN).grants == (Grant("admin"),)


def test_a_viewer_reads_no_roles_and_grants_nothing(kit: ServerKit, client: TestClient) -> None:
    kit.service("svc-view", Grant("viewer", FRAUD))
    viewer = bearer(kit.token("svc-view"))
    assert_problem(client.get("/v1/roles", headers=viewer), 403, "access-denied")
    start = kit.head()
    grab = client.post("/v1/roles/admin/bindings", json={"subject": "svc-view"}, headers=viewer)
    assert_problem(grab, 403, "access-denied")
    assert _events(kit, start) == [("role.grant", "denied", "svc-view")]
    assert kit.accounts.get("svc-view").grants == (Grant("viewer", FRAUD),)


# --- the second factor --------------------------------------------------------------------------------


def _tls_client(kit: ServerKit, **settings: Any) -> TestClient:
    return TestClient(
        kit.app(tls_auto=True, **settings), base_url="https://testserver", raise_server_exceptions=False
    )


def _totp(secret: str) -> Totp:
    return Totp(base64.b32decode(secret + "=" * (-len(secret) % 8)))


def test_a_newcomer_enrols_mfa_over_tls_and_an_administrator_resets_it(kit: ServerKit) -> None:
    kit.user("ada", Grant("ml-engineer", FRAUD))  # a role that requires MFA: no session before enrolling
    with _tls_client(kit) as tls:
        first = kit.login(tls, "ada")
        assert first.json()["status"] == "mfa_enrolment_needed" and "token" not in first.json()
        wrong = tls.post("/v1/mfa/enrolment", json={"name": "ada", "password": "not the password"})
        assert_problem(wrong, 401, "authentication-failed")
        begun = tls.post("/v1/mfa/enrolment", json={"name": "ada", "password": PASSWORD})
        assert begun.status_code == 200, begun.text
        totp = _totp(begun.json()["secret"])
        assert (
            begun.json()["uri"].startswith("otpauth://totp/")
            and begun.json()["secret"] in begun.json()["uri"]
        )
        done = tls.post(
            "/v1/mfa/enrolment/confirm",
            json={"name": "ada", "password": PASSWORD, "totp_code": totp.code_at(time.time())},
        )
        assert done.status_code == 200, done.text
        codes = done.json()["recovery_codes"]
        assert len(codes) == 10 and len(set(codes)) == 10
        session = bearer(done.json()["token"])
        assert tls.get("/v1/whoami", headers=session).json()["mfa"] is True
        fresh = tls.post(
            "/v1/mfa/recovery-codes", json={"name": "ada", "password": PASSWORD, "recovery_code": codes[0]}
        )
        assert fresh.status_code == 200 and not set(fresh.json()["recovery_codes"]) & set(codes)
        # The administrator resets it: the secret and the sessions go; ada enrols again at her next login.
        admin = _admin(kit, tls)
        start = kit.head()
        assert tls.delete("/v1/users/ada/mfa", headers=admin).status_code == 200
        assert _events(kit, start) == [("auth.mfa_reset", "allowed", ADMIN)]
        assert_problem(tls.get("/v1/whoami", headers=session), 401, "authentication-failed")
        assert kit.login(tls, "ada").json()["status"] == "mfa_enrolment_needed"
    # No secret and no event of anyone's in the record of it.
    secret = begun.json()["secret"]
    assert all(secret not in str(e.to_dict()) for e in kit.events_since(0))


def test_the_secret_is_never_sent_over_plain_http(kit: ServerKit, client: TestClient) -> None:
    kit.user("ada", Grant("ml-engineer", FRAUD))
    start = kit.head()
    for path in ("/v1/mfa/enrolment", "/v1/mfa/recovery-codes"):
        refused = client.post(path, json={"name": "ada", "password": PASSWORD})
        assert "only over TLS" in assert_problem(refused, 400, "bad-request")["detail"]
    assert [(e.action, e.outcome, e.attributes["reason"]) for e in kit.events_since(start)] == [
        ("http.request", "denied", "plain http")
    ] * 2
    assert kit.accounts.get("ada").mfa_enrolled is False


# --- service accounts and client certificates ---------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _cert(ca: trustme.CA, name: str) -> str:
    return ca.issue_cert(f"{name}@pipelines.example").cert_chain_pems[0].bytes().decode()


def _presenting(kit: ServerKit, pem: str | None) -> TestClient:
    """A TLS client whose connection presented `pem` (the app wrapped as `TlsScopeProtocol` wraps it)."""
    app = kit.app(tls_auto=True, client_ca=kit.root / "clients-ca.pem")
    tls = {"client_cert_chain": [pem] if pem else [], "client_cert_name": None, "client_cert_error": None}
    return TestClient(_WithTls(app, tls), base_url="https://testserver", raise_server_exceptions=False)  # type: ignore[arg-type]


def test_a_service_account_is_made_and_its_certificate_registered_from_a_session(
    kit: ServerKit, client: TestClient, ca: trustme.CA
) -> None:
    admin = _admin(kit, client)
    made = client.put(
        "/v1/service-accounts/svc-etl",
        json={"grants": [{"role": "pipeline-service", "scope": FRAUD}]},
        headers=admin,
    )
    assert made.status_code == 201 and made.json()["kind"] == "service", made.text
    pem = _cert(ca, "etl")
    start = kit.head()
    added = client.post("/v1/service-accounts/svc-etl/certificates", json={"certificate": pem}, headers=admin)
    assert added.status_code == 201, added.text
    fp = certificate_fingerprint(pem.encode())
    assert added.json()["fingerprint"] == fp and added.json()["sha256"].count(":") == 31
    assert [(e.action, e.outcome, e.attributes["change"]) for e in kit.events_since(start)] == [
        ("user.update", "allowed", "certificate.add")
    ]
    listed = client.get("/v1/service-accounts", headers=admin).json()["service_accounts"]
    assert [(s["name"], s["certificates"]) for s in listed] == [("svc-etl", [fp])]
    # One certificate is one credential; a person's account takes none; an API token registers none.
    again = client.post("/v1/service-accounts/svc-etl/certificates", json={"fingerprint": fp}, headers=admin)
    assert "registered already" in assert_problem(again, 400, "bad-request")["detail"]
    person = client.post(
        f"/v1/service-accounts/{ADMIN}/certificates", json={"certificate": pem}, headers=admin
    )
    assert_problem(person, 400, "bad-request")
    by_token = client.post(
        "/v1/service-accounts/svc-etl/certificates",
        json={"certificate": _cert(ca, "other")},
        headers=bearer(kit.token(ADMIN)),
    )
    assert "login session" in assert_problem(by_token, 403, "access-denied")["detail"]
    gone = client.delete(f"/v1/service-accounts/svc-etl/certificates/{added.json()['sha256']}", headers=admin)
    assert gone.status_code == 200 and client.get(
        "/v1/service-accounts/svc-etl/certificates", headers=admin
    ).json() == {"certificates": []}


def test_a_registered_certificate_authenticates_as_its_service_account_and_nothing_else(
    kit: ServerKit, client: TestClient, ca: trustme.CA
) -> None:
    kit.service("svc-etl", Grant("pipeline-service", FRAUD))
    kit.service("svc-other", Grant("viewer", FRAUD))
    pem = _cert(ca, "etl")
    certificates = ClientCertificates(kit.ws.database(), policy=kit.auth.policy, events=kit.events)
    certificates.register("svc-etl", certificate_fingerprint(pem.encode()), by=kit.admin, origin="test")
    kit.put("fraud/models/clf.json", b'{"w": [1, 2]}')
    with _presenting(kit, pem) as etl:
        me = etl.get("/v1/whoami")
        assert me.status_code == 200, me.text
        assert (me.json()["name"], me.json()["kind"]) == ("svc-etl", "service")
        assert me.json()["token_id"].startswith("cert:")
        verify = "/v1/artifacts/fraud/models/clf.json/verify"
        assert etl.post(verify).status_code == 200  # a program's change: no CSRF token needed
        # Its roles decide, as for a token: a pipeline's account reads no alerts.
        assert_problem(etl.get("/v1/alerts"), 403, "access-denied")
        # A token of another principal on the same connection is refused, not preferred.
        other_token = bearer(kit.token("svc-other"))
        start = kit.head()
        other = etl.get("/v1/whoami", headers=other_token)
        assert_problem(other, 401, "authentication-failed")
        assert [(e.action, e.outcome, e.actor) for e in kit.events_since(start)] == [
            ("http.request", "denied", "svc-other")
        ]
        # Its own token on the certified connection is fine.
        assert etl.get("/v1/whoami", headers=bearer(kit.token("svc-etl"))).json()["name"] == "svc-etl"
        # A browser page of another site cannot ride on the certificate.
        assert_problem(etl.post(verify, headers={"sec-fetch-site": "cross-site"}), 403, "access-denied")
        assert_problem(etl.post(verify, headers={"origin": "https://evil.example"}), 403, "access-denied")
    # A certificate the CA issued that nobody registered is refused, whatever else the request carries.
    etl_token = bearer(kit.token("svc-etl"))
    with _presenting(kit, _cert(ca, "etl")) as stranger:
        start = kit.head()
        assert_problem(stranger.get("/v1/whoami"), 401, "authentication-failed")
        assert_problem(stranger.get("/v1/whoami", headers=etl_token), 401, "authentication-failed")
        assert [(e.action, e.outcome, e.actor) for e in kit.events_since(start)] == [
            ("certificate.use", "denied", "anonymous")
        ] * 2
    # A disabled account's certificate stops working at once.
    kit.accounts.disable("svc-etl", actor=ROOT)
    with _presenting(kit, pem) as etl:
        assert_problem(etl.get("/v1/whoami"), 401, "authentication-failed")
    # Without mutual TLS configured, a certificate in the scope is not looked at.
    unconfigured = _WithTls(kit.app(tls_auto=True), {"client_cert_chain": [pem]})  # type: ignore[arg-type]
    with TestClient(unconfigured, base_url="https://testserver") as off:  # type: ignore[arg-type]
        assert_problem(off.get("/v1/whoami"), 401, "authentication-failed")
