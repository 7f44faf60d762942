"""The dashboard as a browser and a script meet it: pages behind the same guards as the API, the login
form, CSRF on every form, what each role may see, and escaping of whatever the records hold.

A "browser" here is a `TestClient` sending ``Accept: text/html`` and holding the session cookie the
login form set; a "script" sends a bearer token and no such header. Everything is real: the workspace,
the accounts, the store, the audit log and the monitor's rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipewarden.events import Event
from pipewarden.identity import Grant
from pipewarden.monitor import AlertBook, Monitor, builtin_rules
from pipewarden.server.dashboard._render import STATIC
from tests.server.dashkit import FRAUD, HTML, put, rows, sign_in
from tests.server.serverkit import ADMIN, PASSWORD, ROOT, ServerKit, assert_problem, bearer, next_code


@pytest.fixture
def kit(tmp_path: Path) -> ServerKit:
    return ServerKit(tmp_path)


@pytest.fixture
def browser(kit: ServerKit) -> Iterator[TestClient]:
    """A client that sends a browser's Accept header and keeps the cookies the login form sets."""
    with kit.client() as c:
        c.headers.update(HTML)
        yield c


PAGES = (
    "/",
    "/ui/",
    "/ui/alerts",
    "/ui/audit",
    "/ui/artifacts",
    "/ui/users",
    "/ui/artifacts/fraud/m.json/versions/1",
)
#: Built by concatenation, so no file of the repository holds a live-looking payload.
IMG = "<img src=x " + "onerror=alert(1)>"
SCRIPT = "<scr" + "ipt>alert(2)</scr" + "ipt>"


def _csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]*)"', page)
    assert found, "the page has no form with a CSRF field"
    return found.group(1)


# --- signing in ----------------------------------------------------------------------------------------


def test_a_page_sends_a_browser_to_the_login_form_and_back_after_it(
    kit: ServerKit, browser: TestClient
) -> None:
    first = browser.get("/ui/alerts?show=all", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/login?next=/ui/alerts%3Fshow%3Dall"
    form = browser.get(first.headers["location"])
    assert form.status_code == 200 and 'name="next" value="/ui/alerts?show=all"' in form.text
    for field in ("name", "password", "totp_code", "recovery_code"):
        assert f'<label for="{field}">' in form.text and f'id="{field}"' in form.text
    seq = kit.head()
    done = browser.post(
        "/ui/login",
        data={
            "name": ADMIN,
            "password": PASSWORD,
            "totp_code": next_code(kit.admin_totp),
            "next": "/ui/alerts?show=all",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/ui/alerts?show=all"
    cookies = {h.split("=", 1)[0]: h.lower() for h in done.headers.get_list("set-cookie")}
    assert "httponly" in cookies["pw_session"] and "samesite=strict" in cookies["pw_session"]
    assert "httponly" not in cookies["pw_csrf"]  # pages may read it, other sites may not
    assert [(e.action, e.actor, e.outcome) for e in kit.events_since(seq)] == [
        ("auth.login", ADMIN, "allowed")
    ]
    assert browser.get("/ui/alerts?show=all").status_code == 200


@pytest.mark.parametrize(
    ("factor", "status", "says"),
    [
        ({"password": "not the password at all"}, 401, "was not accepted"),
        ({}, 401, "Enter the code from your authenticator app"),
        ({"totp_code": "000000"}, 401, "was not accepted"),
    ],
)
def test_a_failed_login_shows_the_form_again_and_sets_no_cookie(
    kit: ServerKit, browser: TestClient, factor: dict[str, str], status: int, says: str
) -> None:
    data = {"name": ADMIN, "password": PASSWORD, **factor}
    response = browser.post("/ui/login", data=data, follow_redirects=False)
    assert response.status_code == status and says in response.text
    assert "set-cookie" not in response.headers
    assert data["password"] not in response.text
    assert f'value="{ADMIN}"' in response.text  # the name stays filled in


def test_a_login_from_another_sites_page_is_refused_before_any_password_is_checked(
    kit: ServerKit, browser: TestClient
) -> None:
    seq = kit.head()
    data = {"name": ADMIN, "password": PASSWORD, "totp_code": next_code(kit.admin_totp)}
    response = browser.post("/ui/login", data=data, headers={"sec-fetch-site": "cross-site"})
    assert response.status_code == 403 and "set-cookie" not in response.headers
    forged = browser.post("/ui/login", data=data, headers={"origin": "https://evil.example"})
    assert forged.status_code == 403
    assert [e.action for e in kit.events_since(seq)] == []


@pytest.mark.parametrize(
    "target", ["//evil.example/ui/", "https://evil.example/", "/v1/alerts", "/ui/\\evil"]
)
def test_after_login_the_browser_goes_nowhere_but_the_dashboard(
    kit: ServerKit, browser: TestClient, target: str
) -> None:
    response = browser.post(
        "/ui/login",
        data={"name": ADMIN, "password": PASSWORD, "totp_code": next_code(kit.admin_totp), "next": target},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/ui/"


def test_an_account_that_must_enrol_mfa_is_told_how(kit: ServerKit, browser: TestClient) -> None:
    kit.user("mel", Grant("ml-engineer", FRAUD))  # a role that requires MFA; not enrolled yet
    response = browser.post("/ui/login", data={"name": "mel", "password": PASSWORD})
    assert response.status_code == 403 and "pipewarden user enrol-mfa" in response.text


def test_signing_out_revokes_the_session_and_its_cookie_no_longer_opens_pages(
    kit: ServerKit, browser: TestClient
) -> None:
    csrf = sign_in(kit, browser)
    session = browser.cookies["pw_session"]
    out = browser.post("/ui/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    browser.cookies.set("pw_session", session)  # a copy kept by someone else
    again = browser.get("/ui/", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/ui/login"
    assert any(h.startswith("pw_session=") for h in again.headers.get_list("set-cookie"))  # forgotten


# --- every page behind its guard ------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_without_a_session_a_browser_is_sent_to_login_and_a_script_gets_401(
    kit: ServerKit, path: str
) -> None:
    with kit.client() as client:
        response = client.get(path, headers=HTML, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/ui/login")
        assert_problem(client.get(path), 401, "authentication-failed")


def test_every_page_renders_for_an_administrator_each_view_one_event(
    kit: ServerKit, browser: TestClient
) -> None:
    put(kit, "fraud/m.json")
    kit.alert()
    sign_in(kit, browser)
    expected = {
        "/ui/": "dashboard.view",
        "/ui/alerts": "alert.read",
        "/ui/audit": "audit.read",
        "/ui/artifacts": "artifact.list",
        "/ui/users": "user.read",
        "/ui/artifacts/fraud/m.json/versions/1": "artifact.list",
    }
    for path, action in expected.items():
        seq = kit.head()
        response = browser.get(path)
        assert response.status_code == 200, (path, response.text[:500])
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert [(e.action, e.actor, e.outcome) for e in kit.events_since(seq)] == [(action, ADMIN, "allowed")]
        # Nothing inline: the content-security policy allows the dashboard's own files only.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text), path
        assert " style=" not in response.text and "<style" not in response.text, path
        assert 'href="#content"' in response.text and 'id="content"' in response.text  # skip link


def test_static_files_are_served_by_exact_name_only(kit: ServerKit, browser: TestClient) -> None:
    css = STATIC["dashboard.css"]
    response = browser.get(f"/ui/static/dashboard.css?v={css.version}")
    assert response.status_code == 200 and response.content == css.body
    assert response.headers["content-type"].startswith("text/css")
    assert "immutable" in response.headers["cache-control"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "immutable" not in browser.get("/ui/static/dashboard.js").headers["cache-control"]
    for name in ("_pages.py", "..%2F_pages.py", "..%2F..%2F_caller.py", "dashboard.CSS", "login.html"):
        assert browser.get(f"/ui/static/{name}").status_code == 404, name


# --- CSRF on forms --------------------------------------------------------------------------------------


def test_a_form_posted_with_the_cookie_needs_the_pages_csrf_value(
    kit: ServerKit, browser: TestClient
) -> None:
    alert_id = kit.alert()
    csrf = sign_in(kit, browser)
    assert _csrf_of(browser.get("/ui/alerts").text) == csrf
    path = f"/ui/alerts/{alert_id}/ack"
    seq = kit.head()
    refused = [
        browser.post(path, data={}),
        browser.post(path, data={"csrf_token": "0" * 40}),
        browser.post(path, data={"csrf_token": [csrf, csrf]}),
        # Only an urlencoded form is read for the field: the same value in a multipart body is not.
        browser.post(path, files={"csrf_token": (None, csrf)}),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    assert "csrf_token" in refused[0].text
    events = kit.events_since(seq)
    assert [(e.action, e.outcome, e.attributes.get("reason")) for e in events] == [
        ("http.request", "denied", "csrf")
    ] * 4
    assert AlertBook(kit.ws.database()).alerts()[0].status == "firing"
    done = browser.post(path, data={"csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/ui/alerts"
    assert AlertBook(kit.ws.database()).alerts()[0].acknowledged_by == ADMIN


def test_the_csrf_header_works_for_forms_too_and_a_token_needs_none(
    kit: ServerKit, browser: TestClient
) -> None:
    csrf = sign_in(kit, browser)
    made = browser.post(
        "/ui/alerts/silences",
        data={"rule_id": "PW-MON-101", "reason": "load test", "minutes": "60"},
        headers={"x-csrf-token": csrf},
        follow_redirects=False,
    )
    assert made.status_code == 303
    kit.service("oncall", Grant("admin"))
    with kit.client() as script:
        answer = script.post(
            "/ui/alerts/silences",
            data={"rule_id": "PW-MON-102", "reason": "maintenance", "minutes": "30"},
            headers=bearer(kit.token("oncall")),
        )
    # A script is not redirected (that would be a second request): it gets a page saying what was done.
    assert answer.status_code == 200 and "Silence 2 made" in answer.text
    assert [s.created_by for s in AlertBook(kit.ws.database()).silences()] == [ADMIN, "oncall"]


# --- alerts ---------------------------------------------------------------------------------------------


def test_an_alert_is_silenced_from_its_row_with_its_labels(kit: ServerKit, browser: TestClient) -> None:
    alert_id = kit.alert("ada")
    csrf = sign_in(kit, browser)
    page = browser.get("/ui/alerts").text
    row = next(r for r in rows(page, "alerts") if f'id="alert-{alert_id}"' in r)
    assert "brute force on one account" in row and 'class="badge sev-high">high<' in row
    assert 'name="label" value="resource=user:ada" checked' in row
    seq = kit.head()
    response = browser.post(
        "/ui/alerts/silences",
        data={
            "csrf_token": csrf,
            "rule_id": "PW-MON-101",
            "label": "resource=user:ada",
            "reason": "password reset drill",
            "minutes": "240",
        },
    )
    assert response.status_code == 200 and response.url.path == "/ui/alerts"
    (silence,) = AlertBook(kit.ws.database()).silences()
    assert silence.matchers == {"rule_id": "PW-MON-101", "resource": "user:ada"}
    assert silence.ends_at - silence.created_at == timedelta(hours=4)
    row = next(r for r in rows(response.text, "alerts") if f'id="alert-{alert_id}"' in r)
    assert "silenced" in row
    assert [e.action for e in kit.events_since(seq)][:1] == ["alert.silence"]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"rule_id": "PW-MON-101", "minutes": "60"}, "Reason: required"),
        ({"rule_id": "PW-MON-101", "reason": "r", "minutes": "50000"}, "at most 30 days"),
        ({"rule_id": "PW-MON-101", "reason": "r", "minutes": "-5"}, "a positive integer"),
        ({"rule_id": "PW-MON-101", "reason": "r", "minutes": "60", "label": "nolabel"}, "name=value"),
    ],
)
def test_a_bad_silence_form_is_refused_and_nothing_is_silenced(
    kit: ServerKit, browser: TestClient, data: dict[str, str], says: str
) -> None:
    csrf = sign_in(kit, browser)
    response = browser.post("/ui/alerts/silences", data={"csrf_token": csrf, **data})
    assert response.status_code == 400 and says in response.text
    assert AlertBook(kit.ws.database()).silences() == []


# --- what each role sees --------------------------------------------------------------------------------


def test_a_viewer_sees_its_projects_artifacts_and_nothing_else(kit: ServerKit, browser: TestClient) -> None:
    kit.user("val", Grant("viewer", FRAUD))  # a viewer needs no second factor
    put(kit, "fraud/models/clf.json")
    put(kit, "churn/models/secret-model.json")
    put(kit, "churn/data/raw.json")
    put(kit, "fraud/models/mixed.json", parents=("churn/data/raw.json@1",))
    kit.alert()
    sign_in(kit, browser, "val")

    home = browser.get("/ui/")
    assert home.status_code == 200 and "Open alerts" not in home.text and "Integrity" not in home.text
    nav = home.text.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    assert "Artifacts" in nav and all(item not in nav for item in ("Alerts", "Audit log", "Users"))

    listing = browser.get("/ui/artifacts").text
    assert "fraud/models/clf.json" in listing and "churn/" not in listing
    for path in (
        "/ui/alerts",
        "/ui/audit",
        "/ui/users",
        "/ui/artifacts/churn/models/secret-model.json/versions/1",
    ):
        refused = browser.get(path)
        assert refused.status_code == 403, path
        assert "Not allowed" in refused.text and 'role="alert"' in refused.text
    # A lineage that reaches into another project is refused, without naming what it reaches.
    mixed = browser.get("/ui/artifacts/fraud/models/mixed.json/versions/1")
    assert mixed.status_code == 403 and "churn" not in mixed.text
    seq = kit.head()
    browser.get("/ui/")
    (view,) = kit.events_since(seq)
    assert (view.action, view.actor, view.attributes["sections"]) == ("dashboard.view", "val", "none")


def test_forms_are_offered_only_to_roles_that_may_use_them(kit: ServerKit) -> None:
    kit.service("auditor-bot", Grant("auditor"))
    kit.service("oncall", Grant("admin"))
    with kit.client() as client:
        auditor = client.get("/ui/", headers=bearer(kit.token("auditor-bot"))).text
        admin = client.get("/ui/", headers=bearer(kit.token("oncall"))).text
    assert 'action="/ui/audit/verify"' in auditor and 'action="/ui/store/verify"' not in auditor
    assert "Open alerts" not in auditor  # an auditor reads the log, not alerts
    assert 'action="/ui/audit/verify"' in admin and 'action="/ui/store/verify"' in admin


# --- escaping -------------------------------------------------------------------------------------------


def test_hostile_text_in_records_names_and_labels_is_shown_escaped(
    kit: ServerKit, browser: TestClient
) -> None:
    kit.accounts.create_user("mallory", password=PASSWORD, actor=ROOT, display_name=IMG)
    kit.events.emit(
        Event(
            action="data.check",
            actor=SCRIPT,
            resource="data:fraud/" + IMG,
            outcome="denied",
            origin='"><b>origin</b>',
            attributes={"note": IMG, "detail": SCRIPT},
        )
    )
    # An alert whose label is an attacker's choice: password spraying from a forged origin.
    book = AlertBook(kit.ws.database())
    monitor = Monitor(builtin_rules(), book=book)
    start = datetime.now(UTC)
    for i in range(8):
        monitor.observe(
            Event(
                action="auth.login",
                actor=f"unknown:{i}",
                actor_kind="anonymous",
                resource=f"user:victim{i}",
                outcome="denied",
                origin='x"><svg onload=alert(3)>',
                attributes={"reason": "credentials"},
                time=start + timedelta(seconds=i),
            )
        )
    sign_in(kit, browser)
    pages = {path: browser.get(path).text for path in ("/ui/users", "/ui/audit", "/ui/alerts", "/ui/")}
    for path, text in pages.items():
        for raw in (IMG, SCRIPT, "<svg onload", "<b>origin</b>"):
            assert raw not in text, (path, raw)
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages["/ui/users"]
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in pages["/ui/audit"]
    assert 'value="origin=x&#34;&gt;&lt;svg onload=alert(3)&gt;"' in pages["/ui/alerts"]
    # Artifact names cannot hold markup at all; the refusal that names one escapes it.
    refused = browser.get("/ui/artifacts/fraud/" + SCRIPT + "/versions/1")
    assert refused.status_code == 400 and SCRIPT not in refused.text
