"""The API as its clients use it: logging in from a browser (cookie and CSRF) or a program (bearer),
artifacts up and down, lineage and verification, the audit log, alerts and metrics.

Each test runs a real workspace behind `create_app`; nothing is mocked. Every answer that is an error
must be a problem document that shows nothing of the server's internals (`assert_problem`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pipewarden.audit import verify_proof
from pipewarden.db import audit_records
from pipewarden.identity import Grant
from pipewarden.server._caller import csrf_token
from pipewarden.store import LocalBackend
from tests.scan._asm import system_call
from tests.server.serverkit import ADMIN, ServerKit, assert_problem, bearer, next_code

FRAUD = "project:fraud"
MODEL = b'{"layers": [4, 8, 1], "weights": [0.125, -0.5, 0.75]}'


@pytest.fixture
def kit(tmp_path: Path) -> ServerKit:
    return ServerKit(tmp_path)


@pytest.fixture
def client(kit: ServerKit) -> Iterator[TestClient]:
    with kit.client() as c:
        yield c


def _set_cookies(response: object) -> dict[str, str]:
    """Each Set-Cookie header of `response`, by cookie name, lower-cased for the attribute checks."""
    found = {}
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        name = header.split("=", 1)[0]
        found[name] = header.lower()
    return found


def _spool(kit: ServerKit) -> list[str]:
    folder = kit.ws.root / "spool"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- health and sessions -------------------------------------------------------------------------------


def test_healthz_is_public_and_says_only_that_the_server_is_up(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_login_with_password_and_totp_opens_a_session_in_a_strict_http_only_cookie(
    kit: ServerKit, client: TestClient
) -> None:
    kit.user("ada", Grant("ml-engineer", FRAUD))
    totp, _, _ = kit.enrol("ada")
    response = kit.login(client, "ada", totp_code=next_code(totp))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "signed_in" and body["name"] == "ada"
    assert body["token"].startswith("pwt_") and body["csrf_token"] == csrf_token(body["token"])
    cookies = _set_cookies(response)
    session = cookies["pw_session"]
    assert "httponly" in session and "samesite=strict" in session and "path=/" in session
    # Served over plain HTTP (loopback development), a Secure cookie would never come back: not set.
    assert "secure" not in session.replace("samesite", "")
    # The CSRF value is for the page's script to read and send back: not HttpOnly, same site only.
    assert "httponly" not in cookies["pw_csrf"] and "samesite=strict" in cookies["pw_csrf"]
    me = client.get("/v1/whoami")  # the cookie alone, on a safe method
    assert me.status_code == 200
    assert me.json()["name"] == "ada" and me.json()["mfa"] is True
    assert me.json()["grants"] == [{"role": "ml-engineer", "scope": FRAUD}]


def test_over_tls_the_session_cookie_is_secure_and_hsts_is_sent(kit: ServerKit) -> None:
    kit.user("ada", Grant("ml-engineer", FRAUD))
    _, codes, _ = kit.enrol("ada")
    with TestClient(kit.app(tls_auto=True), base_url="https://testserver") as tls_client:
        response = kit.login(tls_client, "ada", recovery_code=codes[0])
    assert response.status_code == 200, response.text
    cookies = _set_cookies(response)
    assert all("; secure" in c for c in cookies.values()), cookies
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_a_login_that_fails_says_nothing_about_why(kit: ServerKit, client: TestClient) -> None:
    kit.user("ada", Grant("ml-engineer", FRAUD))
    kit.enrol("ada")
    second = kit.login(client, "ada")  # the right password, no code: asks for it, opens nothing
    assert second.status_code == 200 and second.json() == {"status": "second_factor_needed", "name": "ada"}
    assert "set-cookie" not in second.headers
    wrong = client.post("/v1/session", json={"name": "ada", "password": "not the password at all"})
    nobody = client.post("/v1/session", json={"name": "nobody", "password": "not the password at all"})
    for response in (wrong, nobody):
        body = assert_problem(response, 401, "authentication-failed")
        assert body["detail"] == "the credentials were not accepted"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "not the password" not in response.text
    assert wrong.json() == nobody.json()


def test_a_change_made_with_the_cookie_needs_the_csrf_token(kit: ServerKit, client: TestClient) -> None:
    kit.user("ada", Grant("ml-engineer", FRAUD))
    totp, _, _ = kit.enrol("ada")
    kit.put("fraud/models/clf.json", MODEL)
    csrf = kit.login(client, "ada", totp_code=next_code(totp)).json()["csrf_token"]
    verify = "/v1/artifacts/fraud/models/clf.json/verify"
    start = kit.head()
    missing = client.post(verify)
    assert_problem(missing, 403, "access-denied")
    assert "X-CSRF-Token" in missing.json()["detail"]
    assert_problem(client.post(verify, headers={"x-csrf-token": "0" * 40}), 403, "access-denied")
    assert_problem(client.delete("/v1/session"), 403, "access-denied")  # logging out is a change too
    refusals = kit.events_since(start)
    assert [(e.action, e.outcome, e.attributes.get("reason")) for e in refusals] == [
        ("http.request", "denied", "csrf")
    ] * 3
    done = client.post(verify, headers={"x-csrf-token": csrf})
    assert done.status_code == 200 and done.json()["ok"] is True
    assert client.get("/v1/artifacts/fraud/models/clf.json/versions/1").status_code == 200
    # A bearer token is not sent by browsers on their own: it needs no CSRF value.
    token = kit.token("ada")
    client.cookies.clear()
    assert client.post(verify, headers=bearer(token)).status_code == 200


def test_logout_revokes_the_session_everywhere(kit: ServerKit, client: TestClient) -> None:
    kit.user("ada", Grant("ml-engineer", FRAUD))
    totp, _, _ = kit.enrol("ada")
    login = kit.login(client, "ada", totp_code=next_code(totp)).json()
    start = kit.head()
    out = client.delete("/v1/session", headers={"x-csrf-token": login["csrf_token"]})
    assert out.status_code == 200 and out.json() == {"ended": login["token_id"]}
    cleared = _set_cookies(out)
    assert 'pw_session=""' in cleared["pw_session"] and "max-age=0" in cleared["pw_session"]
    assert [(e.action, e.actor, e.outcome) for e in kit.events_since(start)] == [
        ("auth.logout", "ada", "allowed")
    ]
    client.cookies.clear()
    assert_problem(client.get("/v1/whoami", headers=bearer(login["token"])), 401, "authentication-failed")
    client.cookies.set("pw_session", login["token"])
    assert_problem(client.get("/v1/whoami"), 401, "authentication-failed")


def test_bearer_sessions_and_api_tokens_act_with_what_they_carry(kit: ServerKit, client: TestClient) -> None:
    kit.user("ada", Grant("ml-engineer", FRAUD))
    totp, _, _ = kit.enrol("ada")
    kit.put("fraud/models/clf.json", MODEL)
    session = kit.login(client, "ada", totp_code=next_code(totp)).json()["token"]
    client.cookies.clear()
    me = client.get("/v1/whoami", headers=bearer(session)).json()
    assert me["kind"] == "user" and me["mfa"] is True and me["token_scopes"] is None
    kit.service("ci", Grant("pipeline-service", FRAUD))
    listing_only = kit.token("ci", scopes=("artifact.list",))
    me = client.get("/v1/whoami", headers=bearer(listing_only)).json()
    assert me["name"] == "ci" and me["kind"] == "service" and me["token_scopes"] == ["artifact.list"]
    content = "/v1/artifacts/fraud/models/clf.json/versions/1/content"
    assert client.get(
        "/v1/artifacts/fraud/models/clf.json/versions/1", headers=bearer(listing_only)
    ).is_success
    # The role may read bytes; the token's scope may not: a token never does more than its scopes.
    denied = assert_problem(client.get(content, headers=bearer(listing_only)), 403, "access-denied")
    assert "token scopes" in denied["detail"]
    assert client.get(content, headers=bearer(kit.token("ci"))).content == MODEL


# --- artifacts -------------------------------------------------------------------------------------------


def test_an_upload_streams_in_is_scanned_stored_and_downloads_identical(
    kit: ServerKit, client: TestClient
) -> None:
    kit.service("ci", Grant("pipeline-service", FRAUD))
    token = kit.token("ci")
    payload = b'{"rows": [' + b",".join(b"[%d, %d]" % (i, i * i) for i in range(5000)) + b"]}"

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    up = client.put("/v1/artifacts/fraud/data/squares.json", content=chunks(), headers=bearer(token))
    assert up.status_code == 201, up.text
    stored = up.json()
    assert stored["ref"] == "fraud/data/squares.json@1" and stored["created_by"] == "ci"
    assert stored["sha256"] == hashlib.sha256(payload).hexdigest() and stored["size"] == len(payload)
    assert stored["scan"]["scanned"] is True and stored["media_type"] == "application/json"
    down = client.get("/v1/artifacts/fraud/data/squares.json/versions/1/content", headers=bearer(token))
    assert down.status_code == 200
    assert down.content == payload
    assert down.headers["x-pipewarden-sha256"] == hashlib.sha256(payload).hexdigest()
    assert down.headers["x-pipewarden-ref"] == "fraud/data/squares.json@1"
    assert 'filename="squares.json"' in down.headers["content-disposition"]
    listed = client.get("/v1/artifacts", headers=bearer(token)).json()["artifacts"]
    assert [a["ref"] for a in listed] == ["fraud/data/squares.json@1"]
    assert _spool(kit) == []  # nothing of the upload or the download is left behind


def test_a_malicious_pickle_is_refused_by_the_scan_and_never_stored(
    kit: ServerKit, client: TestClient
) -> None:
    kit.service("ci", Grant("pipeline-service", FRAUD))
    token = kit.token("ci")
    start = kit.head()
    # os.system through GLOBAL + REDUCE: code that runs when the file is unpickled (CWE-502).
    evil = system_call("server-upload")
    response = client.put("/v1/artifacts/fraud/models/evil.pkl", content=evil, headers=bearer(token))
    body = assert_problem(response, 422, "refused-by-scan", private=(str(kit.ws.root), "spool", "/tmp"))
    assert "fraud/models/evil.pkl" in body["detail"] and "PW-SCAN-101" in body["detail"]
    events = kit.events_since(start)
    assert [(e.action, e.outcome, e.attributes.get("reason")) for e in events] == [
        ("artifact.write", "denied", "scan")
    ]
    missing = client.get("/v1/artifacts/fraud/models/evil.pkl/versions/1", headers=bearer(token))
    assert_problem(missing, 404, "not-found", private=(str(kit.ws.root),))
    assert "fraud/models/evil.pkl" not in kit.ws.store().names()
    assert _spool(kit) == []


def test_a_scan_over_http_reports_under_the_given_name_and_stores_nothing(
    kit: ServerKit, client: TestClient
) -> None:
    kit.service("ops", Grant("admin"))
    token = kit.token("ops")
    # os.system through GLOBAL + REDUCE, as above; the benign counterpart is a plain JSON document.
    evil = client.post(
        "/v1/scan/fraud", params={"name": "m.pkl"}, content=system_call("scan"), headers=bearer(token)
    )
    assert evil.status_code == 200, evil.text
    findings = evil.json()["findings"]
    assert [(f["rule_id"], f["location"]["path"]) for f in findings] == [("PW-SCAN-101", "m.pkl")]
    assert str(kit.ws.root) not in evil.text and "spool" not in evil.text
    clean = client.post("/v1/scan/fraud", params={"name": "w.json"}, content=MODEL, headers=bearer(token))
    assert clean.status_code == 200 and clean.json()["findings"] == []
    assert kit.ws.store().names() == [] and _spool(kit) == []


def test_a_tampered_artifact_is_refused_at_download_without_a_byte_of_it(
    kit: ServerKit, client: TestClient
) -> None:
    kit.service("ci", Grant("pipeline-service", FRAUD))
    token = kit.token("ci")
    art = kit.put("fraud/models/clf.json", MODEL)
    backend = LocalBackend(kit.ws.root / "store")
    body = bytearray(backend.get(art.body_key))
    body[-20] ^= 0x01  # one bit of the last chunk's ciphertext, as someone with the folder could
    backend.put(art.body_key, bytes(body))
    start = kit.head()
    response = client.get("/v1/artifacts/fraud/models/clf.json/versions/1/content", headers=bearer(token))
    problem = assert_problem(response, 409, "integrity", private=(str(kit.ws.root),))
    assert "fraud/models/clf.json@1" in problem["detail"]
    assert b"weights" not in response.content and "x-pipewarden-sha256" not in response.headers
    assert [(e.action, e.outcome) for e in kit.events_since(start)] == [("artifact.read", "error")]
    assert _spool(kit) == []
    verdict = client.post("/v1/artifacts/fraud/models/clf.json/verify", headers=bearer(token)).json()
    assert verdict["ok"] is False and [f["ref"] for f in verdict["failures"]] == ["fraud/models/clf.json@1"]


def test_lineage_follows_parents_the_caller_may_list(kit: ServerKit, client: TestClient) -> None:
    kit.service("ci", Grant("pipeline-service", FRAUD))
    token = kit.token("ci")
    kit.put("fraud/data/train.json", b'{"rows": [[1, 0], [0, 1]]}')
    kit.put("churn/data/train.json", b'{"rows": [[1, 1]]}')
    child = client.put(
        "/v1/artifacts/fraud/models/clf.json",
        params={"parent": "fraud/data/train.json@1"},
        content=MODEL,
        headers=bearer(token),
    )
    assert child.status_code == 201, child.text
    assert child.json()["parents"][0]["ref"] == "fraud/data/train.json@1"
    tree = client.get("/v1/artifacts/fraud/models/clf.json/versions/1/lineage", headers=bearer(token)).json()
    assert tree["artifact"]["ref"] == "fraud/models/clf.json@1"
    assert [p["artifact"]["ref"] for p in tree["parents"]] == ["fraud/data/train.json@1"]
    # A parent outside the caller's project cannot be named (its existence is not even confirmed).
    outside = client.put(
        "/v1/artifacts/fraud/models/clf.json",
        params={"parent": "churn/data/train.json@1"},
        content=MODEL,
        headers=bearer(token),
    )
    assert_problem(outside, 403, "access-denied")
    assert [a.version for a in kit.ws.store().artifacts("fraud/models/clf.json")] == [1]


# --- the audit log ---------------------------------------------------------------------------------------


def test_the_audit_log_is_read_verified_and_proven_over_http(kit: ServerKit, client: TestClient) -> None:
    kit.service("audit-bot", Grant("auditor"))
    token = kit.token("audit-bot")
    client.get("/v1/whoami")  # no credential: one denial in the log
    records = client.get("/v1/audit/records", params={"limit": 50}, headers=bearer(token)).json()["records"]
    assert records and [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    assert all(len(r["hash"]) == 64 for r in records)
    denied = client.get("/v1/audit/records", params={"outcome": "denied"}, headers=bearer(token)).json()
    assert denied["records"] and {r["outcome"] for r in denied["records"]} == {"denied"}
    assert_problem(
        client.get("/v1/audit/records", params={"outcome": "maybe"}, headers=bearer(token)),
        422,
        "invalid-request",
    )
    verified = client.post("/v1/audit/verify", headers=bearer(token))
    assert verified.status_code == 200 and verified.json()["ok"] is True
    seq = records[0]["seq"]
    proof = client.get(f"/v1/audit/records/{seq}/proof", headers=bearer(token))
    assert proof.status_code == 200
    checked = verify_proof(proof.content, kit.ws.store_writers())
    assert checked.seq == seq and checked.event.action == records[0]["action"]


def test_a_tampered_audit_log_fails_verification_naming_the_record(
    kit: ServerKit, client: TestClient
) -> None:
    kit.service("audit-bot", Grant("auditor"))
    token = kit.token("audit-bot")
    db = kit.ws.database()
    # What a database administrator could do: take the append-only triggers away and edit a record.
    with db.engine.begin() as conn:
        for verb in ("update", "delete"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS audit_records_no_{verb}")
        row = conn.execute(select(audit_records).where(audit_records.c.seq == 2)).one()
        forged = bytes(row.body).replace(ADMIN.encode(), b"eve!")
        assert forged != bytes(row.body)
        conn.execute(update(audit_records).where(audit_records.c.seq == 2).values(body=forged))
    response = client.post("/v1/audit/verify", headers=bearer(token))
    problem = assert_problem(response, 409, "integrity")
    assert "record 2" in problem["detail"]


# --- alerts and metrics ----------------------------------------------------------------------------------


def test_alerts_are_listed_acknowledged_and_silenced(kit: ServerKit, client: TestClient) -> None:
    kit.service("oncall", Grant("admin"))
    token = kit.token("oncall")
    alert_id = kit.alert("ada")
    listed = client.get("/v1/alerts", headers=bearer(token)).json()["alerts"]
    assert [(a["id"], a["status"]) for a in listed] == [(alert_id, "firing")]
    start = kit.head()
    ack = client.post(f"/v1/alerts/{alert_id}/ack", headers=bearer(token))
    assert ack.status_code == 200, ack.text
    assert ack.json()["status"] == "acknowledged" and ack.json()["acknowledged_by"] == "oncall"
    silence = client.post(
        "/v1/alerts/silences",
        json={"matchers": {"rule_id": listed[0]["rule_id"]}, "reason": "password reset drill", "minutes": 60},
        headers=bearer(token),
    )
    assert silence.status_code == 201, silence.text
    assert silence.json()["reason"] == "password reset drill"
    assert [(e.action, e.actor, e.outcome) for e in kit.events_since(start)] == [
        ("alert.ack", "oncall", "allowed"),
        ("alert.silence", "oncall", "allowed"),
    ]
    now = client.get("/v1/alerts", headers=bearer(token)).json()["alerts"]
    assert now[0]["status"] == "acknowledged" and now[0]["silenced_by"] == silence.json()["id"]
    assert_problem(
        client.post("/v1/alerts/silences", json={"matchers": {}, "reason": "x"}, headers=bearer(token)),
        422,
        "invalid-request",
    )
    unknown = client.post("/v1/alerts/424242/ack", headers=bearer(token))
    assert unknown.status_code in (400, 404) and "424242" in unknown.json()["detail"]


def test_metrics_need_server_metrics_and_are_prometheus_text(kit: ServerKit, client: TestClient) -> None:
    kit.service("ops", Grant("admin"))
    kit.service("looker", Grant("viewer"))
    assert_problem(client.get("/metrics", headers=bearer(kit.token("looker"))), 403, "access-denied")
    assert_problem(client.get("/metrics"), 401, "authentication-failed")
    for _ in range(3):
        client.get("/healthz")
    response = client.get("/metrics", headers=bearer(kit.token("ops")))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert "# TYPE pipewarden_http_requests_total counter" in lines
    assert 'pipewarden_http_requests_total{method="GET",route="/healthz",status="200"} 3' in lines
    assert 'pipewarden_http_requests_total{method="GET",route="/metrics",status="403"} 1' in lines
    assert "# TYPE pipewarden_http_request_duration_seconds histogram" in lines
    count = next(line for line in lines if line.startswith("pipewarden_http_request_duration_seconds_count"))
    assert int(count.split()[-1]) >= 5


def test_listing_shows_only_what_the_caller_may_list(kit: ServerKit, client: TestClient) -> None:
    kit.put("fraud/models/clf.json", MODEL)
    kit.put("churn/models/clf.json", MODEL)
    kit.service("fraud-ci", Grant("pipeline-service", FRAUD))
    kit.service("auditing", Grant("auditor"))
    kit.service("root-ops", Grant("admin"))

    def refs(owner: str) -> list[str]:
        response = client.get("/v1/artifacts", headers=bearer(kit.token(owner)))
        return sorted(a["ref"] for a in response.json()["artifacts"])

    assert refs("fraud-ci") == ["fraud/models/clf.json@1"]
    assert refs("auditing") == []
    assert refs("root-ops") == ["churn/models/clf.json@1", "fraud/models/clf.json@1"]
