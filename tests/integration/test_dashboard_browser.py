"""The dashboard in a real browser: headless Chromium driven by Selenium against uvicorn over TLS.

The server is `create_app` over a `ServerKit` workspace, served by uvicorn on loopback with a
certificate from a throwaway `trustme` CA. Chromium is told to accept exactly that certificate's key
(``--ignore-certificate-errors-spki-list``, a pin on the key: any other certificate is still
refused), because a headless Chromium reads its trusted CAs from an NSS database that the test would
have to create with tools Debian does not install by default.

The story a user would follow: sign in with a password and a TOTP code, meet an alert raised by a
scripted attack (password spraying over the API from another loopback address, then the monitor run
over the audit log), silence it from its row, verify the audit log and the store from the overview,
and open a model's lineage. Screenshots go to ``$PIPEWARDEN_TEST_ARTIFACTS`` if set, else to the test's
temporary folder; their paths are printed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pipewarden.events import Event
from pipewarden.monitor import AlertBook, Monitor, builtin_rules
from pipewarden.server import ServerSettings, create_app
from pipewarden.server._tls import TlsFiles, server_context
from tests.integration.test_server_tls import serving
from tests.server.serverkit import ADMIN, PASSWORD, ROOT, ServerKit, next_code

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
HOST = "127.0.0.1"
ATTACKER = "127.0.0.2"  # another loopback address: the attack's origin differs from the browser's

if not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and os.environ.get("PIPEWARDEN_REQUIRE_BROWSER") == "1":
    # CI installs the browser (.ci/run) and sets this: there a missing browser fails instead of skipping.
    raise RuntimeError(
        "PIPEWARDEN_REQUIRE_BROWSER=1 but /usr/bin/chromium or /usr/bin/chromedriver is missing"
    )
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
)

from selenium import webdriver  # noqa: E402  # after the skip: the browser is what these tests need
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

DATA = "fraud/data/train.json"
MODEL = "fraud/models/clf.json"


@dataclass
class Site:
    kit: ServerKit
    base: str
    ca: trustme.CA
    spki: str
    shots: Path


def _spki_pin(cert_pem: bytes) -> str:
    """The base64 SHA-256 of the certificate's public key: what Chromium's pin option takes."""
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _a_day_of_pipeline_activity(kit: ServerKit) -> None:
    """What the log would hold after a day of a training pipeline reading the model, hour by hour,
    with a refusal now and then: the overview's chart then has a day to show."""
    now = datetime.now(UTC)
    for hours_ago in range(23, 0, -1):
        for i in range(4 + (hours_ago * 7) % 13):
            kit.events.emit(
                Event(
                    action="artifact.read",
                    actor="svc-train",
                    actor_kind="service",
                    resource=f"artifact:{MODEL}",
                    outcome="denied" if i == 0 and hours_ago % 4 == 0 else "allowed",
                    origin="http:10.0.0.7",
                    time=now - timedelta(hours=hours_ago, minutes=i * 3),
                )
            )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("dashboard")
    kit = ServerKit(root)
    kit.accounts.create_user("ada", password=PASSWORD, actor=ROOT, display_name="Ada (fraud team)", grants=[])
    kit.put(DATA, b'{"rows": [[0.1, 1], [0.7, 0]]}')
    model = root / "clf.json"
    model.write_bytes(b'{"weights": [0.25, 0.5], "bias": 0.1}')
    kit.ws.store().put(model, name=MODEL, actor=ROOT.name, parents=[f"{DATA}@1"])
    _a_day_of_pipeline_activity(kit)
    ca = trustme.CA()
    leaf = ca.issue_cert(HOST, "localhost")
    files = TlsFiles(root / "server.pem", root / "server.key")
    files.cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(files.key))
    settings = ServerSettings(tls_cert=files.cert, tls_key=files.key)
    shots = Path(os.environ.get("PIPEWARDEN_TEST_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with serving(create_app(settings, workspace=kit.ws), server_context(files), files) as port:
        yield Site(kit, f"https://{HOST}:{port}", ca, _spki_pin(leaf.cert_chain_pems[0].bytes()), shots)


@pytest.fixture(scope="module")
def browser(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the test may run as root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
        f"--ignore-certificate-errors-spki-list={site.spki}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: webdriver.Chrome, css: str, *, timeout: float = 15) -> WebElement:
    found: WebElement = WebDriverWait(driver, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )
    return found


def _go(driver: webdriver.Chrome, element: WebElement) -> None:
    """Click `element` (a link, a form's button) and wait until the page it leads to has replaced this one."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 15).until(ec.staleness_of(page))
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _shoot(site: Site, driver: webdriver.Chrome, name: str) -> Path:
    path = site.shots / f"dashboard-{name}.png"
    assert driver.save_screenshot(str(path)), path
    print(f"screenshot: {path}")
    return path


def _severe_console_messages(driver: webdriver.Chrome) -> list[str]:
    """What the browser logged as errors: a content-security-policy refusal (an inline script or
    style), a script error, a file that did not load."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def signed_in(site: Site, browser: webdriver.Chrome) -> dict[str, Any]:
    """Sign in as the administrator through the login form, with a TOTP code; what was seen on the way."""
    seq = site.kit.head()
    browser.get(f"{site.base}/ui/alerts")
    _wait(browser, "form[action='/ui/login']")
    landed = browser.current_url
    browser.find_element(By.ID, "name").send_keys(ADMIN)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "totp_code").send_keys(next_code(site.kit.admin_totp))
    _go(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/ui/login'] button[type=submit]"))
    _wait(browser, "h1")
    cookies = {c["name"]: c for c in browser.get_cookies()}
    logins = [e for e in site.kit.events_since(seq) if e.action == "auth.login"]
    return {"landed": landed, "after": browser.current_url, "cookies": cookies, "logins": logins}


def test_signing_in_with_a_totp_code(site: Site, signed_in: dict[str, Any]) -> None:
    # Not signed in, the alerts page sent the browser to the login form, and back to it afterwards.
    assert signed_in["landed"].startswith(f"{site.base}/ui/login?next=/ui/alerts")
    assert signed_in["after"] == f"{site.base}/ui/alerts"
    session = signed_in["cookies"]["pw_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    login = signed_in["logins"]
    assert [(e.actor, e.outcome) for e in login] == [(ADMIN, "allowed")]


def _spray(site: Site) -> list[int]:
    """Password spraying: one wrong password on each of eight accounts, from one origin, over the API."""
    context = ssl.create_default_context()
    site.ca.configure_trust(context)
    transport = httpx.HTTPTransport(local_address=ATTACKER, verify=context)
    with httpx.Client(base_url=site.base, transport=transport, timeout=30) as client:
        return [
            client.post("/v1/session", json={"name": f"victim{i}", "password": "Summer2024!"}).status_code
            for i in range(8)
        ]


def _run_monitor(site: Site) -> None:
    """The monitor with the built-in rules over the whole audit log, opening alerts in the workspace."""
    monitor = Monitor(builtin_rules(), book=AlertBook(site.kit.ws.database()))
    events: list[Event] = [entry.event for entry in site.kit.ws.audit_log().records()]
    for event in events:
        monitor.observe(event)


def _row_of(browser: webdriver.Chrome, rule: str) -> WebElement:
    rows = [r for r in browser.find_elements(By.CSS_SELECTOR, "table.alerts tbody tr") if rule in r.text]
    assert len(rows) == 1, [r.text for r in rows]
    return rows[0]


def test_an_attack_raises_an_alert_that_is_silenced_from_its_row(
    site: Site, browser: webdriver.Chrome, signed_in: dict[str, Any]
) -> None:
    assert _spray(site) == [401] * 8
    _run_monitor(site)
    browser.get(f"{site.base}/ui/alerts")
    row = _row_of(browser, "PW-MON-102")
    assert "password spraying from one origin" in row.text
    assert f"origin=http:{ATTACKER}" in row.text
    assert "high" in row.find_element(By.CSS_SELECTOR, ".badge").text
    assert "firing" in row.find_element(By.CSS_SELECTOR, "td.status").text

    row.find_element(By.CSS_SELECTOR, "details.silence summary").click()
    row.find_element(By.CSS_SELECTOR, "input[name=reason]").send_keys("red-team exercise, ticket SEC-12")
    seq = site.kit.head()
    _go(browser, row.find_element(By.CSS_SELECTOR, "details.silence button[type=submit]"))
    WebDriverWait(browser, 15).until(lambda d: "silenced" in _row_of(d, "PW-MON-102").text)

    status = _row_of(browser, "PW-MON-102").find_element(By.CSS_SELECTOR, "td.status").text
    assert "silenced" in status
    silences = browser.find_elements(By.XPATH, "//h2[text()='Active silences']/following-sibling::table[1]")
    assert silences and "red-team exercise, ticket SEC-12" in silences[0].text
    assert f"origin=http:{ATTACKER}" in silences[0].text
    made = [e for e in site.kit.events_since(seq) if e.action == "alert.silence"]
    assert [(e.actor, e.outcome) for e in made] == [(ADMIN, "allowed")]
    _shoot(site, browser, "alerts")


def test_the_overview_verifies_the_log_and_the_store_and_charts_the_day(
    site: Site, browser: webdriver.Chrome, signed_in: dict[str, Any]
) -> None:
    browser.get(f"{site.base}/ui/")
    assert "not verified yet" in _wait(browser, "#integrity-title").find_element(By.XPATH, "..").text
    _go(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/ui/audit/verify'] button"))
    _wait(browser, "#integrity-title")
    _go(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/ui/store/verify'] button"))
    card = _wait(browser, "#integrity-title").find_element(By.XPATH, "..")
    assert "not verified yet" not in card.text
    assert card.text.count("verified") >= 2 and "2 versions" in card.text
    alerts = browser.find_element(By.ID, "alerts-title").find_element(By.XPATH, "..")
    assert "silenced" in alerts.text
    # The chart: 24 hourly bars, the last (this hour) holding at least the attack's eight refusals.
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar")
    assert len(bars) == 24
    heights = [float(bar.get_attribute("height") or 0) for bar in bars]
    assert all(h > 0 for h in heights[1:]), heights  # the day's activity, hour by hour, and this hour's
    refused = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.bar-refused")
    assert refused, "the attack's refused logins are not charted"
    _shoot(site, browser, "overview")


def test_an_artifacts_lineage_shows_the_model_and_the_data_it_came_from(
    site: Site, browser: webdriver.Chrome, signed_in: dict[str, Any]
) -> None:
    browser.get(f"{site.base}/ui/artifacts")
    _go(browser, browser.find_element(By.LINK_TEXT, MODEL))
    _wait(browser, "svg.lineage")
    assert browser.find_element(By.TAG_NAME, "h1").text == f"{MODEL}@1"
    nodes = {
        n.get_attribute("data-ref") for n in browser.find_elements(By.CSS_SELECTOR, "svg.lineage a.node")
    }
    assert nodes == {f"{MODEL}@1", f"{DATA}@1"}
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.lineage path.edge")) == 1
    current = browser.find_element(By.CSS_SELECTOR, "svg.lineage a.node.current")
    assert current.get_attribute("data-ref") == f"{MODEL}@1"
    _shoot(site, browser, "lineage")
    # The parent's node is a link to its own page.
    _go(browser, browser.find_element(By.CSS_SELECTOR, f"svg.lineage a.node[data-ref='{DATA}@1']"))
    WebDriverWait(browser, 15).until(lambda d: d.find_element(By.TAG_NAME, "h1").text == f"{DATA}@1")


def test_pages_work_from_the_keyboard_and_break_no_content_policy(
    site: Site, browser: webdriver.Chrome, signed_in: dict[str, Any]
) -> None:
    browser.get_log("browser")  # what earlier pages logged is theirs
    browser.get(f"{site.base}/ui/users")
    _wait(browser, "#user-table")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content"
    assert skip.rect["y"] >= 0, "the skip link stays off screen when focused"
    skip.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "content"
    # The script ran (it reveals the table filter) and filters by what is typed.
    field = browser.find_element(By.ID, "filter")
    assert field.is_displayed()
    field.send_keys("fraud team")
    visible = [
        r.text for r in browser.find_elements(By.CSS_SELECTOR, "#user-table tbody tr") if r.is_displayed()
    ]
    assert len(visible) == 1 and "Ada (fraud team)" in visible[0]
    # Every field a person fills in has a label.
    for page in ("/ui/alerts", "/ui/audit", "/ui/"):
        browser.get(site.base + page)
        _wait(browser, "h1")
        for field in browser.find_elements(By.CSS_SELECTOR, "main input:not([type=hidden]), main select"):
            if field.is_displayed() and field.get_attribute("type") != "checkbox":
                fid = field.get_attribute("id")
                assert fid and browser.find_elements(By.CSS_SELECTOR, f"label[for='{fid}']"), (page, fid)
    assert _severe_console_messages(browser) == []


def test_signing_out_ends_the_session(
    site: Site, browser: webdriver.Chrome, signed_in: dict[str, Any]
) -> None:
    browser.get(f"{site.base}/ui/")
    _go(browser, browser.find_element(By.CSS_SELECTOR, "form[action='/ui/logout'] button"))
    _wait(browser, "form[action='/ui/login']")
    assert "pw_session" not in {c["name"] for c in browser.get_cookies()}
    browser.get(f"{site.base}/ui/alerts")
    _wait(browser, "form[action='/ui/login']")
    assert browser.current_url.startswith(f"{site.base}/ui/login")
