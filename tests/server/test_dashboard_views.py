"""The dashboard's working pages and what they are drawn from: the audit log page (filters, pages,
each record's verification), the overview (alert counts, the day's activity, the store's and the
log's verification), artifacts with their lineage graph, and users with their roles and MFA.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from pipewarden.db import audit_records
from pipewarden.events import Event
from pipewarden.identity import Grant
from pipewarden.server.dashboard import _summary
from pipewarden.server.dashboard._lineage import layout
from tests.server.dashkit import FRAUD, HTML, put, sign_in
from tests.server.serverkit import ADMIN, ServerKit, bearer


@pytest.fixture
def kit(tmp_path: Path) -> ServerKit:
    return ServerKit(tmp_path)


@pytest.fixture
def browser(kit: ServerKit) -> Iterator[TestClient]:
    """A client that sends a browser's Accept header and keeps the cookies the login form sets."""
    with kit.client() as c:
        c.headers.update(HTML)
        yield c


# --- the audit log page ---------------------------------------------------------------------------------


def test_the_audit_page_filters_and_pages_backwards(kit: ServerKit, browser: TestClient) -> None:
    for i in range(70):
        kit.events.emit(
            Event(action="data.check", actor=f"bot{i % 2}", resource="data:fraud/x", outcome="allowed")
        )
    sign_in(kit, browser)
    first = browser.get("/ui/audit?actor=bot1").text
    seqs = [int(s) for s in re.findall(r'<td class="num">(\d+)</td>', first)]
    assert len(seqs) == 35 and seqs == sorted(seqs, reverse=True)
    assert "Older records" not in first  # the whole log was looked at
    everything = browser.get("/ui/audit").text
    page_one = [int(s) for s in re.findall(r'<td class="num">(\d+)</td>', everything)]
    assert len(page_one) == 50
    older = re.search(r'href="(/ui/audit\?[^"]*before=(\d+))"', everything)
    assert older and int(older.group(2)) == page_one[-1]
    page_two = browser.get(older.group(1).replace("&amp;", "&")).text
    seqs_two = [int(s) for s in re.findall(r'<td class="num">(\d+)</td>', page_two)]
    assert seqs_two and max(seqs_two) == page_one[-1] - 1
    denied = browser.get("/ui/audit?outcome=denied").text
    assert "state-allowed" not in denied.split("<tbody>", 1)[-1]
    assert browser.get("/ui/audit?outcome=maybe").status_code == 400


def test_each_record_shows_whether_the_newest_verification_covers_it(
    kit: ServerKit, browser: TestClient
) -> None:
    csrf = sign_in(kit, browser)

    def marks() -> dict[int, str]:
        page = browser.get("/ui/audit").text
        found = re.findall(r'<td class="num">(\d+)</td>.*?class="state state-(\w+)" title=', page, flags=re.S)
        return {int(seq): mark for seq, mark in found}

    assert set(marks().values()) == {"unchecked"}
    verified = browser.post("/ui/audit/verify", data={"csrf_token": csrf, "back": "/ui/audit"})
    assert verified.url.path == "/ui/audit"
    after = marks()
    newest_checked = max(seq for seq, mark in after.items() if mark == "verified")
    assert all(mark == "verified" for seq, mark in after.items() if seq <= newest_checked)
    assert all(mark == "unchecked" for seq, mark in after.items() if seq > newest_checked)
    assert newest_checked >= 3

    # What a database administrator could do: take the append-only triggers away and edit record 2.
    with kit.ws.database().engine.begin() as conn:
        for verb in ("update", "delete"):
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS audit_records_no_{verb}")
        row = conn.execute(select(audit_records).where(audit_records.c.seq == 2)).one()
        forged = bytes(row.body).replace(ADMIN.encode(), b"eve!")
        conn.execute(update(audit_records).where(audit_records.c.seq == 2).values(body=forged))
    failed = browser.post("/ui/audit/verify", data={"csrf_token": csrf, "back": "/ui/audit"})
    assert failed.status_code == 200 and "verification failed" in failed.text
    broken = marks()
    assert broken[1] == "verified" and all(mark == "broken" for seq, mark in broken.items() if seq >= 2)
    overview = browser.get("/ui/").text
    assert "record 2" in overview and 'state-broken">failed' in overview


def test_a_script_that_verifies_a_tampered_log_gets_409(kit: ServerKit) -> None:
    kit.service("audit-bot", Grant("auditor"))
    token = kit.token("audit-bot")
    with kit.ws.database().engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER IF EXISTS audit_records_no_update")
        conn.execute(update(audit_records).where(audit_records.c.seq == 1).values(hash=b"\0" * 32))
    with kit.client() as client:
        response = client.post("/ui/audit/verify", headers=bearer(token))
    assert response.status_code == 409 and "record 1" in response.text


# --- the overview and what it is drawn from --------------------------------------------------------------


def test_the_overview_counts_alerts_charts_the_day_and_verifies_the_store(
    kit: ServerKit, browser: TestClient
) -> None:
    kit.alert("ada")
    kit.alert("bob")
    put(kit, "fraud/m.json")
    csrf = sign_in(kit, browser)
    page = browser.get("/ui/").text
    card = page.split('id="alerts-title"', 1)[1].split("</section>", 1)[0]
    assert '<p class="big">2</p>' in card
    assert re.search(r'sev-high">high</span> <span class="count">2<', card)
    assert page.count('class="bar"') == 24
    assert "not verified yet" in page.split('id="integrity-title"', 1)[1]
    seq = kit.head()
    browser.post("/ui/store/verify", data={"csrf_token": csrf, "back": "/ui/"})
    verify, view = kit.events_since(seq)
    assert (verify.action, verify.resource, verify.attributes["checked"]) == (
        "artifact.verify",
        "artifact:*",
        1,
    )
    assert (view.action, view.attributes["sections"]) == ("dashboard.view", "alerts,log")
    store = browser.get("/ui/").text.split("Artifact store", 1)[1]
    assert 'state-verified">verified' in store and ": 1 version</p>" in store


def _log_with_events_at(kit: ServerKit, times: list[datetime]) -> None:
    for i, when in enumerate(times):
        outcome = "denied" if i % 3 == 0 else "allowed"
        kit.events.emit(
            Event(action="data.check", actor="bot", resource="data:x/y", outcome=outcome, time=when)
        )


def test_hourly_activity_by_position_matches_the_exact_count(
    kit: ServerKit, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2030, 5, 1, 12, 30, tzinfo=UTC)
    # Older than the window, then a spread over the day (some hours empty), then later than `now`.
    times = [now - timedelta(hours=30)] + [
        now - timedelta(minutes=m) for m in (1400, 1300, 1290, 700, 500, 499, 498, 200, 59, 31, 29, 2)
    ]
    _log_with_events_at(kit, sorted(times))
    log = kit.ws.audit_log()
    exact = _summary.activity(log, now=now)
    assert exact.exact and len(exact.hours) == 24
    assert exact.hours[-1].start == datetime(2030, 5, 1, 12, tzinfo=UTC)
    assert exact.total == 12 and exact.refused == sum(1 for i in range(13) if i % 3 == 0 and i > 0)
    assert exact.hours[-1].events == 2  # 12:01 and 12:28
    monkeypatch.setattr(_summary, "FULL_READ", 0)
    counted = _summary.activity(log, now=now)
    assert not counted.exact and counted.refused is None
    assert [h.events for h in counted.hours] == [h.events for h in exact.hours]


def test_the_chart_scales_to_a_round_top_and_labels_every_bar() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    hours = tuple(_summary.Hour(start + timedelta(hours=i), i * 3, i) for i in range(24))
    drawn = _summary.chart(_summary.Activity(hours, exact=True))
    assert [label for _, label in drawn.gridlines] == ["0", "20", "40", "60", "80"]
    tallest = drawn.bars[-1]
    assert tallest.label == "23:00-00:00 UTC: 69 events, 23 refused"
    assert tallest.y == pytest.approx(drawn.base - (drawn.base - drawn.top) * 69 / 80, abs=0.1)
    assert drawn.bars[0].height == 0


def test_a_lineage_graph_places_each_version_once_with_edges_left_to_right(kit: ServerKit) -> None:
    put(kit, "fraud/data/raw.json")
    put(kit, "fraud/data/features.json", parents=("fraud/data/raw.json@1",))
    put(kit, "fraud/data/labels.json", parents=("fraud/data/raw.json@1",))
    put(kit, "fraud/models/m.json", parents=("fraud/data/features.json@1", "fraud/data/labels.json@1"))
    graph = layout(kit.ws.store().lineage("fraud/models/m.json@1"))
    place = {n.ref: (n.x, n.y) for n in graph.nodes}
    assert len(graph.nodes) == 4 and len(graph.edges) == 4  # raw is one node, reached by two paths
    assert place["fraud/data/raw.json@1"][0] < place["fraud/data/features.json@1"][0]
    assert place["fraud/data/features.json@1"][0] == place["fraud/data/labels.json@1"][0]
    assert place["fraud/data/labels.json@1"][0] < place["fraud/models/m.json@1"][0]
    assert [n.ref for n in graph.nodes if n.current] == ["fraud/models/m.json@1"]
    assert max(x for x, _ in place.values()) + graph.node_w <= graph.width


def test_the_artifact_page_shows_manifest_verdict_signer_and_both_lineage_nodes(
    kit: ServerKit, browser: TestClient
) -> None:
    data = put(kit, "fraud/data/train.json")
    model = put(kit, "fraud/models/clf.json", parents=("fraud/data/train.json@1",))
    sign_in(kit, browser)
    page = browser.get("/ui/artifacts/fraud/models/clf.json/versions/1").text
    assert model.digest in page and model.signer in page and "clean" in page
    assert set(re.findall(r'data-ref="([^"]+)"', page)) == {data.ref, model.ref}
    assert 'href="/ui/artifacts/fraud/data/train.json/versions/1"' in page
    assert browser.get("/ui/artifacts/fraud/models/clf.json/versions/2").status_code == 404
    assert browser.get("/ui/artifacts/fraud/models/clf.json/versions/x").status_code == 400


def test_the_users_page_shows_roles_and_mfa(kit: ServerKit, browser: TestClient) -> None:
    kit.user("mel", Grant("ml-engineer", FRAUD))
    kit.service("ci-bot", Grant("pipeline-service", FRAUD))
    sign_in(kit, browser)
    rows: dict[str, Any] = {}
    for row in re.findall(r"<tr>.*?</tr>", browser.get("/ui/users").text, flags=re.S):
        name = re.search(r'<td class="mono">([^<]+)</td>', row)
        if name:
            rows[name.group(1)] = row
    assert "enrolled" in rows[ADMIN] and "admin" in rows[ADMIN]
    assert "required, not enrolled" in rows["mel"] and "at project:fraud" in rows["mel"]
    assert "tokens only" in rows["ci-bot"]
