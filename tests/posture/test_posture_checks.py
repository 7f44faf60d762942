"""Posture over a real workspace: a well-configured deployment passes every check, and each problem
planted in it makes exactly its own check fire, at its severity."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from pipewarden.crypto import SigningKey
from pipewarden.db import api_tokens, monitor_outbox
from pipewarden.events import Actor
from pipewarden.posture import POSTURE_CHECKS, PostureBaseline
from tests.posture.deployment import DAY, HOOK_SECRET_ENV, ORIGIN, Deployment, closed_port, rules


@pytest.fixture
def dep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    deployment = Deployment(tmp_path, monkeypatch)
    try:
        yield deployment
    finally:
        deployment.close()


def test_a_well_configured_deployment_yields_only_the_summary(dep: Deployment) -> None:
    report = dep.posture()
    assert rules(report) == {}
    (summary,) = report.findings
    assert summary.rule_id == "PW-POST-200" and summary.severity.label == "info"
    assert summary.evidence["failed"] == 0 and summary.evidence["not_determinable"] == 0
    assert summary.evidence["checks"] == summary.evidence["passed"] == 16
    assert set(summary.evidence["results"].values()) == {"passed"}
    assert summary.evidence["baseline"]["kek_max_age_days"] == 365
    assert report.exit_code(POSTURE_CHECKS["PW-POST-115"][1]) == 0


def test_every_finding_carries_its_fix_and_catalogue_severity(dep: Deployment) -> None:
    dep.user("bob", "admin", days_ago=5)
    (dep.ws.root / "monitor.yaml").unlink()
    report = dep.posture(tls_cert=None, osv_db=None)
    assert {"PW-POST-100", "PW-POST-111", "PW-POST-151", "PW-POST-161"} <= set(rules(report))
    for f in report.findings:
        title, severity, fix = POSTURE_CHECKS[f.rule_id]
        assert (f.title, f.severity, f.evidence["fix"]) == (title, severity, fix)


# --- identity ---------------------------------------------------------------------------------------------


def test_an_administrator_without_mfa_is_high_and_enrolling_clears_it(dep: Deployment) -> None:
    dep.user("bob", "admin", days_ago=5)
    report = dep.posture()
    assert rules(report) == {"PW-POST-111": "high"}
    (bob,) = report.at_or_above(POSTURE_CHECKS["PW-POST-111"][1])
    assert bob.location.member == "user:bob" and "admin at *" in bob.message
    dep.enrol("bob", days_ago=1)
    assert rules(dep.posture()) == {}


def test_other_roles_requiring_mfa_without_enrolment_are_medium(dep: Deployment) -> None:
    dep.user("carol", "ml-engineer", days_ago=5)
    dep.user("dan", "viewer", days_ago=5)  # viewer needs no second factor
    dep.login("dan", days_ago=1)
    assert rules(dep.posture()) == {"PW-POST-112": "medium"}


def test_a_role_that_administers_without_mfa_is_reported(dep: Deployment) -> None:
    policy = dep.ws.root / "policy.yaml"
    policy.write_text(
        "format: pipewarden.policy/1\n"
        "roles:\n"
        "  helpdesk:\n"
        "    requires_mfa: false\n"
        "    allow:\n"
        "      - actions: [user.read, user.update]\n"
        "  reader:\n"
        "    allow:\n"
        "      - actions: [artifact.read]\n"
    )
    policy.chmod(0o600)
    report = dep.posture()
    assert rules(report) == {"PW-POST-110": "high"}
    (found,) = [f for f in report.findings if f.rule_id == "PW-POST-110"]
    assert found.evidence["role"] == "helpdesk" and found.evidence["actions"] == ["user.update"]
    policy.write_text(policy.read_text().replace("requires_mfa: false", "requires_mfa: true"))
    assert rules(dep.posture()) == {}


def test_an_unreadable_policy_makes_the_role_checks_not_determinable(dep: Deployment) -> None:
    policy = dep.ws.root / "policy.yaml"
    policy.write_text("format: pipewarden.policy/1\nroles: [not, a, mapping]\n")
    policy.chmod(0o600)
    report = dep.posture()
    assert rules(report) == {"PW-POST-119": "high"}
    checks = {f.evidence["check"] for f in report.findings if f.rule_id == "PW-POST-119"}
    assert checks == {"role-mfa", "mfa-enrolment"}
    assert next(f for f in report.findings if f.rule_id == "PW-POST-200").evidence["not_determinable"] == 2


def test_accounts_unused_for_ninety_days_are_reported(dep: Deployment) -> None:
    dep.user("olga", "viewer", days_ago=200)  # made, never logged in
    dep.user("pat", "viewer", days_ago=200)
    dep.login("pat", days_ago=95)
    dep.user("quinn", "viewer", days_ago=200)
    dep.login("quinn", days_ago=30)  # recent enough
    dep.service("etl", "pipeline-service", days_ago=300)
    dep.use(dep.token("etl", days_ago=150, lifetime=365 * DAY), days_ago=100)
    report = dep.posture()
    stale = {f.evidence["principal"]: f.message for f in report.findings if f.rule_id == "PW-POST-113"}
    assert set(stale) == {"olga", "pat", "etl"}
    assert "never logged in or used a token since it was made" in stale["olga"]
    assert "last logged in or used a token on" in stale["pat"] and "95 days ago" in stale["pat"]
    assert "service etl: last used a token" in stale["etl"]
    # etl's token, last used 100 days ago, is also an unused token (low).
    assert rules(report) == {"PW-POST-113": "medium", "PW-POST-115": "low"}


def test_disabled_accounts_are_not_judged(dep: Deployment) -> None:
    dep.user("olga", "admin", days_ago=200)
    dep.accounts.disable("olga", actor=Actor("ada", "user", ORIGIN))
    assert rules(dep.posture()) == {}


def test_tokens_without_expiry_and_unused_tokens(dep: Deployment) -> None:
    forever = dep.token("ci-bot", days_ago=5)
    dep.use(forever, days_ago=1)
    # No pipewarden command makes a token outlive MAX_TOKEN_LIFETIME; a row written another way can.
    with dep.ws.database().transaction() as conn:
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.token_id == forever.info.token_id)
            .values(expires_at=dep.now + 3650 * DAY)
        )
    idle = dep.token("ci-bot", days_ago=45)
    report = dep.posture()
    assert rules(report) == {"PW-POST-114": "medium", "PW-POST-115": "low"}
    by_rule = {f.rule_id: f for f in report.findings}
    assert by_rule["PW-POST-114"].evidence["token_id"] == forever.info.token_id
    assert by_rule["PW-POST-115"].evidence["token_id"] == idle.info.token_id
    assert "never used since it was made" in by_rule["PW-POST-115"].message
    assert forever.plaintext not in json.dumps(report.to_dict())
    dep.use(idle, days_ago=0)
    assert "PW-POST-115" not in rules(dep.posture())


# --- keys and files -----------------------------------------------------------------------------------


def test_a_key_ring_readable_by_everyone_is_critical(dep: Deployment) -> None:
    dep.ws.keyring_path.chmod(0o644)
    report = dep.posture()
    # pipewarden refuses such a key ring, so the store cannot encrypt and the key's age cannot be read.
    assert rules(report) == {"PW-POST-120": "critical", "PW-POST-130": "high", "PW-POST-129": "high"}
    assert report.exit_code(POSTURE_CHECKS["PW-POST-120"][1]) == 1


def test_a_signing_key_readable_by_the_group_is_high(dep: Deployment) -> None:
    dep.ws.signing_key_path.chmod(0o640)
    assert rules(dep.posture()) == {"PW-POST-121": "high"}


def test_an_open_workspace_folder_exposes_the_database(dep: Deployment) -> None:
    dep.ws.root.chmod(0o755)
    report = dep.posture()
    assert rules(report) == {"PW-POST-122": "high"}
    places = {Path(f.location.path).name for f in report.findings if f.rule_id == "PW-POST-122"}
    assert {"ws", "pipewarden.db"} <= places


def test_files_that_decide_trust_must_not_be_writable_by_others(dep: Deployment, tmp_path: Path) -> None:
    other = SigningKey.generate()
    other.save(tmp_path / "partner.key")
    trusted = dep.ws.trust(tmp_path / "partner.key.pub")
    path = next((dep.ws.keys_dir / "trusted").glob("*.pub"))
    assert trusted.keyid
    path.chmod(0o666)
    report = dep.posture()
    assert rules(report) == {"PW-POST-123": "high"}
    assert [f.location.path for f in report.findings if f.rule_id == "PW-POST-123"] == [str(path)]


def test_a_key_encryption_key_past_its_age_is_due_for_rotation(dep: Deployment) -> None:
    doc = json.loads(dep.ws.keyring_path.read_text())
    doc["keys"][0]["created"] = (dep.now - 400 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    dep.ws.keyring_path.write_text(json.dumps(doc))
    report = dep.posture()
    assert rules(report) == {"PW-POST-124": "medium"}
    (due,) = [f for f in report.findings if f.rule_id == "PW-POST-124"]
    assert due.evidence["age_days"] == 400 and due.evidence["max_age_days"] == 365
    # The maximum age is a parameter of the baseline.
    assert rules(dep.posture(baseline=PostureBaseline(kek_max_age=500 * DAY))) == {}
    dep.ws.keyring().rotate()
    assert rules(dep.posture()) == {}


# --- audit log ------------------------------------------------------------------------------------------


def test_never_verified_and_verified_within_seven_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = Deployment(tmp_path, monkeypatch, verified=False)
    try:
        report = dep.posture()
        assert rules(report) == {"PW-POST-140": "medium"}
        assert "has never been run" in next(f.message for f in report.findings if f.rule_id == "PW-POST-140")
        dep.record_verify("allowed", days_ago=6)
        assert rules(dep.posture()) == {}
    finally:
        dep.close()


def test_an_old_verify_a_failed_one_and_forged_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dep = Deployment(tmp_path, monkeypatch, verified=False)
    try:
        dep.record_verify("allowed", days_ago=8)
        report = dep.posture()
        assert rules(report) == {"PW-POST-140": "medium"}
        assert "8 days ago" in next(f.message for f in report.findings if f.rule_id == "PW-POST-140")
        # A denied run verified nothing; an ingested event is a sender's word, not pipewarden's record.
        dep.record_verify("denied", days_ago=0)
        dep.record_verify("allowed", days_ago=0, ingested_by="stage-7")
        assert rules(dep.posture()) == {"PW-POST-140": "medium"}
        dep.record_verify("error", days_ago=1, reason="integrity", detail="record 12 was modified")
        report = dep.posture()
        assert rules(report) == {"PW-POST-141": "high"}
        assert "record 12 was modified" in next(
            f.message for f in report.findings if f.rule_id == "PW-POST-141"
        )
        dep.verify_audit()  # a real verification that passes, newest now
        assert rules(dep.posture()) == {}
    finally:
        dep.close()


# --- monitor --------------------------------------------------------------------------------------------


def test_alerts_routed_only_to_this_machine_reach_nobody(dep: Deployment) -> None:
    (dep.ws.root / "monitor.yaml").unlink()  # the default: console and a file
    assert rules(dep.posture()) == {"PW-POST-151": "medium"}
    # A webhook that exists but gets only low alerts does not count either.
    dep.write_monitor(
        f"http://127.0.0.1:{dep.hook.getsockname()[1]}/a",
        routes="  - {min_severity: critical, sinks: [hook]}\n",
    )
    assert rules(dep.posture()) == {"PW-POST-151": "medium"}


def test_an_unreachable_webhook_is_reported_and_a_listening_one_is_not(dep: Deployment) -> None:
    assert rules(dep.posture()) == {}  # the fixture's webhook listens
    dep.write_monitor(f"http://127.0.0.1:{closed_port()}/alerts")
    report = dep.posture()
    assert rules(report) == {"PW-POST-152": "medium"}
    (down,) = [f for f in report.findings if f.rule_id == "PW-POST-152"]
    assert down.evidence["sink"] == "hook" and down.location.member == "sink hook"
    # Not probing is said, never passed silently.
    assert rules(dep.posture(probe=False)) == {"PW-POST-155": "info"}


def test_monitor_settings_that_cannot_load_are_reported(
    dep: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(HOOK_SECRET_ENV)
    report = dep.posture()
    assert rules(report) == {"PW-POST-150": "medium", "PW-POST-159": "high"}
    assert HOOK_SECRET_ENV in next(f.message for f in report.findings if f.rule_id == "PW-POST-150")


def test_sinks_without_transport_encryption(dep: Deployment) -> None:
    # TEST-NET-1 addresses (RFC 5737): never reached, and not probed here.
    dep.write_monitor(
        "http://192.0.2.10/alerts",
        extra="  - {name: mail, type: smtp, host: 192.0.2.25, port: 25, sender: pw@example.test, "
        "recipients: [sec@example.test], starttls: false}\n",
        routes="  - {min_severity: high, sinks: [hook, mail]}\n",
    )
    report = dep.posture(probe=False)
    assert rules(report) == {"PW-POST-153": "medium", "PW-POST-155": "info"}
    assert {f.evidence["sink"] for f in report.findings if f.rule_id == "PW-POST-153"} == {"hook", "mail"}
    dep.write_monitor("https://192.0.2.10/alerts")
    assert rules(dep.posture(probe=False)) == {"PW-POST-155": "info"}


def test_notifications_failing_in_the_outbox_are_reported(dep: Deployment) -> None:
    with dep.ws.database().transaction() as conn:
        for attempts, delivered in ((3, None), (5, None), (1, dep.now), (0, None)):
            conn.execute(
                insert(monitor_outbox).values(
                    alert_id=1,
                    sink="hook",
                    payload="{}",
                    created_at=dep.now - 2 * DAY,
                    attempts=attempts,
                    next_attempt_at=dep.now,
                    delivered_at=delivered,
                    last_error="hook: cannot reach https://alerts.example.test (URLError)",
                )
            )
    report = dep.posture()
    assert rules(report) == {"PW-POST-154": "medium"}
    (stuck,) = [f for f in report.findings if f.rule_id == "PW-POST-154"]
    assert stuck.evidence["undelivered"] == 2 and stuck.evidence["attempts"] == 5


# --- dependency database ------------------------------------------------------------------------------


def test_the_dependency_database_age(dep: Deployment) -> None:
    assert rules(dep.posture(osv_db=dep.write_osv(days_ago=30))) == {"PW-POST-160": "medium"}
    assert rules(dep.posture(osv_db=dep.root / "no-such-db")) == {"PW-POST-169": "high"}
    assert rules(dep.posture(osv_db=None)) == {"PW-POST-161": "info"}


def test_reports_render_in_every_format_without_secrets(dep: Deployment) -> None:
    dep.user("bob", "admin", days_ago=5)
    report = dep.posture()
    for fmt in ("text", "json", "sarif", "html"):
        text = report.render(fmt)
        assert "PW-POST-111" in text
        assert os.environ[HOOK_SECRET_ENV] not in text
    assert dep.ci_token.plaintext not in report.render("json")


def test_now_must_be_aware_and_ca_needs_something_to_check(dep: Deployment) -> None:
    from pipewarden.errors import ConfigError
    from pipewarden.posture import check_posture

    with pytest.raises(ConfigError, match="timezone-aware"):
        check_posture(dep.ws, now=dep.now.replace(tzinfo=None))
    with pytest.raises(ConfigError, match="--ca"):
        check_posture(dep.ws, ca=dep.tls_cert)
    with pytest.raises(ConfigError):
        PostureBaseline(stale_account_after=timedelta(0))
