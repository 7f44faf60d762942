"""What every request and response goes through: problem documents, security headers, body and rate
limits, closed CORS, the route table's check at start-up, and the OpenAPI document."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from pipewarden.errors import ConfigError
from pipewarden.identity import Grant
from pipewarden.monitor import AlertBook
from pipewarden.server import Guard, route_table
from pipewarden.server import _app as app_module
from pipewarden.server._table import GuardedRouter
from tests.server.serverkit import SECURITY_HEADERS, ServerKit, assert_problem, bearer

FRAUD = "project:fraud"


@pytest.fixture
def kit(tmp_path: Path) -> ServerKit:
    return ServerKit(tmp_path)


@pytest.fixture
def admin_token(kit: ServerKit) -> str:
    kit.service("ops", Grant("admin"))
    return kit.token("ops")


def _chunks(total: int, size: int = 4096) -> Iterator[bytes]:
    """A body sent without a Content-Length (chunked): only counting it as it arrives can limit it."""
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b"7" * n


def _assert_headers(response: object, *, tls: bool) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, (response, name)
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "object-src 'none'" in csp
    assert ("strict-transport-security" in headers) is tls


# --- problem documents -----------------------------------------------------------------------------------


def test_an_unexpected_failure_is_a_500_with_a_reference_and_nothing_else(
    kit: ServerKit, admin_token: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret_path = f"{kit.ws.root}/pipewarden.db"

    def broken(self: AlertBook, **kwargs: object) -> list[object]:
        raise RuntimeError(f"{secret_path}: disk I/O error\nTraceback (most recent call last):")

    monkeypatch.setattr(AlertBook, "alerts", broken)
    with caplog.at_level(logging.ERROR, logger="pipewarden.server._problems"):
        response = kit.client().get("/v1/alerts", headers=bearer(admin_token))
    body = assert_problem(response, 500, "internal", private=(secret_path, "disk I/O", "RuntimeError"))
    assert re.fullmatch(r"[0-9a-f]{16}", body["reference"])
    assert body["reference"] in body["detail"]
    _assert_headers(response, tls=False)
    # The operator finds the reference, with the whole story, in the server's log.
    logged = [r for r in caplog.records if body["reference"] in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "disk I/O error" in str(logged[0].exc_info[1])


def test_errors_are_problem_documents_that_show_nothing_of_the_server(
    kit: ServerKit, admin_token: str
) -> None:
    client = kit.client()
    private = (str(kit.ws.root),)
    assert_problem(client.get("/v1/nothing-here"), 404, "http", private=private)
    assert_problem(client.put("/v1/whoami"), 405, "http", private=private)
    missing = client.get("/v1/artifacts/fraud/nope.json/versions/1", headers=bearer(admin_token))
    assert_problem(missing, 404, "not-found", private=private)
    bad_version = client.get("/v1/artifacts/fraud/nope.json/versions/zero", headers=bearer(admin_token))
    assert_problem(bad_version, 400, "bad-request", private=private)
    not_json = client.post(
        "/v1/alerts/silences",
        content=b"{not json",
        headers={**bearer(admin_token), "content-type": "application/json"},
    )
    assert_problem(not_json, 422, "invalid-request", private=private)
    unknown_field_type = client.post(
        "/v1/alerts/silences", json={"matchers": "all", "reason": 7}, headers=bearer(admin_token)
    )
    detail = assert_problem(unknown_field_type, 422, "invalid-request", private=private)["detail"]
    assert "matchers" in detail


# --- headers ----------------------------------------------------------------------------------------------


def test_every_response_carries_the_security_headers_errors_included(
    kit: ServerKit, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kit.service("looker", Grant("viewer", FRAUD))
    client = kit.client(max_json_bytes=64, rate_per_minute=20)
    responses = [
        client.get("/healthz"),
        client.get("/openapi.json"),
        client.get("/v1/whoami"),
        client.get("/metrics", headers=bearer(kit.token("looker"))),
        client.get("/v1/nothing-here"),
        client.put("/v1/whoami"),
        client.post("/v1/session", json={"name": "x"}),
        client.post("/v1/session", content=b"x" * 100, headers={"content-type": "application/json"}),
    ]
    monkeypatch.setattr(AlertBook, "alerts", lambda self, **kw: 1 / 0)
    responses.append(client.get("/v1/alerts", headers=bearer(admin_token)))
    responses.extend(client.get("/v1/whoami", headers=bearer(admin_token)) for _ in range(20))
    statuses = {r.status_code for r in responses}
    assert {200, 401, 403, 404, 405, 413, 422, 429, 500} <= statuses, statuses
    for response in responses:
        _assert_headers(response, tls=False)


def test_over_tls_every_response_also_carries_hsts(kit: ServerKit, monkeypatch: pytest.MonkeyPatch) -> None:
    kit.service("ops", Grant("admin"))
    token = kit.token("ops")
    monkeypatch.setattr(AlertBook, "alerts", lambda self, **kw: 1 / 0)
    with TestClient(
        kit.app(tls_auto=True), base_url="https://testserver", raise_server_exceptions=False
    ) as c:
        for response in (c.get("/healthz"), c.get("/v1/whoami"), c.get("/v1/alerts", headers=bearer(token))):
            _assert_headers(response, tls=True)
            assert "max-age=63072000" in response.headers["strict-transport-security"]


# --- limits ------------------------------------------------------------------------------------------------


def test_a_json_body_over_its_limit_is_413_declared_or_streamed(kit: ServerKit, admin_token: str) -> None:
    client = kit.client(max_json_bytes=256)
    big = {"matchers": {"rule_id": "PW-MON-101"}, "reason": "r" * 400}
    declared = client.post("/v1/alerts/silences", json=big, headers=bearer(admin_token))
    assert_problem(declared, 413, "too-large")
    streamed = client.post(
        "/v1/alerts/silences",
        content=_chunks(1000, size=100),
        headers={**bearer(admin_token), "content-type": "application/json"},
    )
    assert_problem(streamed, 413, "too-large")
    assert "256 bytes" in streamed.json()["detail"]
    assert AlertBook(kit.ws.database()).silences() == []
    small = client.post(
        "/v1/alerts/silences",
        json={"matchers": {"rule_id": "x"}, "reason": "ok"},
        headers=bearer(admin_token),
    )
    assert small.status_code == 201


def test_an_upload_over_its_limit_is_413_and_nothing_is_stored(kit: ServerKit) -> None:
    kit.service("ci", Grant("pipeline-service", FRAUD))
    token = kit.token("ci")
    # Uploads have their own limit, far above the JSON one: a model is not a request document.
    client = kit.client(max_json_bytes=128, max_upload_bytes=8192)
    declared = client.put("/v1/artifacts/fraud/data/big.json", content=b"1" * 9000, headers=bearer(token))
    assert_problem(declared, 413, "too-large")
    streamed = client.put("/v1/artifacts/fraud/data/big.json", content=_chunks(20_000), headers=bearer(token))
    assert_problem(streamed, 413, "too-large")
    assert "8192 bytes" in streamed.json()["detail"]
    assert "fraud/data/big.json" not in kit.ws.store().names()
    assert not list((kit.ws.root / "spool").glob("*"))
    fits = client.put(
        "/v1/artifacts/fraud/data/fits.json", content=b"[" + b"1," * 2000 + b"1]", headers=bearer(token)
    )
    assert fits.status_code == 201, fits.text


def test_a_scan_upload_gets_the_upload_limit(kit: ServerKit, admin_token: str) -> None:
    client = kit.client(max_json_bytes=128, max_upload_bytes=8192)
    body = b"[" + b"1," * 1000 + b"1]"
    scanned = client.post(
        "/v1/scan/fraud", params={"name": "rows.json"}, content=body, headers=bearer(admin_token)
    )
    assert scanned.status_code == 200, scanned.text
    assert str(kit.ws.root) not in scanned.text
    too_big = client.post("/v1/scan/fraud", content=_chunks(9000), headers=bearer(admin_token))
    assert_problem(too_big, 413, "too-large")


def test_too_many_requests_get_429_with_retry_after(kit: ServerKit, admin_token: str) -> None:
    client = kit.client(rate_per_minute=3)
    answers = [client.get("/v1/whoami", headers=bearer(admin_token)).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    limited = client.get("/v1/whoami", headers=bearer(admin_token))
    assert_problem(limited, 429, "rate-limited")
    assert int(limited.headers["retry-after"]) >= 1
    # Load balancers keep asking for health whatever the rate.
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))


def test_cors_is_closed_to_other_origins(kit: ServerKit, admin_token: str) -> None:
    client = kit.client()
    origin = {"origin": "https://attacker.example"}
    simple = client.get("/v1/whoami", headers={**bearer(admin_token), **origin})
    assert simple.status_code == 200
    preflight = client.options(
        "/v1/whoami",
        headers={**origin, "access-control-request-method": "DELETE", "access-control-request-headers": "x"},
    )
    assert preflight.status_code >= 400
    for response in (simple, preflight):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")], response.headers


# --- the route table at start-up -------------------------------------------------------------------------


def test_an_app_with_an_unguarded_route_is_refused_at_start_up(
    kit: ServerKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = app_module._routers

    def with_plain_router() -> list[object]:
        plain = APIRouter()

        @plain.get("/v1/backdoor")
        def backdoor() -> dict[str, str]:
            return {"all": "yours"}

        return [*original(), plain]

    monkeypatch.setattr(app_module, "_routers", with_plain_router)
    with pytest.raises(ConfigError, match=r"routes without a guard .*GET /v1/backdoor"):
        kit.app()

    def with_misused_router() -> list[object]:
        guarded = GuardedRouter()

        @guarded.post("/v1/sneaky")  # the plain decorator: no guard declared
        def sneaky() -> None:
            return None

        return [*original(), guarded]

    monkeypatch.setattr(app_module, "_routers", with_misused_router)
    with pytest.raises(ConfigError, match=r"POST /v1/sneaky"):
        kit.app()
    monkeypatch.setattr(app_module, "_routers", original)
    assert len(route_table(kit.app())) > 10


def test_a_guard_must_name_its_resource_from_the_path() -> None:
    router = GuardedRouter()
    with pytest.raises(ConfigError, match=r"\['name'\], not in the path"):
        router.get_("/v1/things/{thing}", guard=Guard.needs("artifact.read", "artifact:{name}"))(lambda: None)
    with pytest.raises(ConfigError, match="not a pipewarden action"):
        Guard.needs("artifact.steal", "artifact:{name}")
    with pytest.raises(ConfigError, match="<type>:<name>"):
        Guard.needs("artifact.read", "{name}")


def test_the_openapi_document_describes_every_route(kit: ServerKit) -> None:
    client = kit.client()
    response = client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.") and doc["info"]["title"] == "pipewarden"
    described = {(m.upper(), path) for path, item in doc["paths"].items() for m in item}
    # The dashboard's pages answer HTML, not the API's JSON: they are kept out of the API's document.
    from fastapi.routing import APIRoute

    from pipewarden.server._table import _flatten

    hidden = {
        (m, r.path.replace(":path}", "}"))
        for r in _flatten(list(client.app.routes))
        for m in (getattr(r, "methods", None) or ())
        if isinstance(r, APIRoute) and not r.include_in_schema
    }
    table = {(s.method, s.path.replace(":path}", "}")) for s in route_table(client.app)}  # type: ignore[arg-type]
    assert table - hidden <= described, table - hidden - described
    assert all(path.startswith(("/ui", "/")) for _, path in hidden)
