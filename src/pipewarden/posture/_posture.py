"""`check_posture`: every posture check over one workspace, in one report with a summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipewarden.db import Database
from pipewarden.errors import ConfigError
from pipewarden.findings import Finding, Location, Report
from pipewarden.posture._catalogue import SUMMARY_RULE, CheckResult, PostureBaseline, finding
from pipewarden.posture._checks_identity import check_identity
from pipewarden.posture._checks_keys import check_keys
from pipewarden.posture._checks_monitor import check_monitor
from pipewarden.posture._checks_records import check_audit_verify, check_dependency_db
from pipewarden.posture._checks_storage import check_storage
from pipewarden.posture._checks_tls import check_tls, parse_url
from pipewarden.posture._guard import guarded_group
from pipewarden.workspace import Workspace

__all__ = ["check_posture"]


def _database_once(workspace: Workspace) -> Callable[[], Database]:
    """The workspace's database, opened on first use; a failure to open it, whatever it is (a server
    that does not answer, a URL whose port is not a number), is raised to every caller alike (each
    check it blocks reports itself not determinable), without trying again."""
    opened: list[Database] = []
    failed: list[Exception] = []

    def database() -> Database:
        if failed:
            raise failed[0]
        if not opened:
            try:
                opened.append(workspace.database())
            except Exception as exc:  # handed to each check, which reports it
                failed.append(exc)
                raise
        return opened[0]

    return database


def check_posture(
    workspace: Workspace,
    *,
    now: datetime | None = None,
    url: str | None = None,
    tls_cert: Path | None = None,
    ca: Path | None = None,
    osv_db: Path | None = None,
    probe_sinks: bool = True,
    baseline: PostureBaseline | None = None,
) -> Report:
    """Check a deployment against the posture baseline (docs/posture.md); one finding per problem.

    Looks at the TLS of the server at `url` (and/or the certificate file `tls_cert`, chains checked
    against `ca` or the system's trust store), MFA and account hygiene, key files and key age, the
    store's encryption and connections, the last `audit verify`, alert sinks (connecting to each
    network sink unless `probe_sinks` is False) and the age of the OSV database `osv_db`. A check that
    passes adds nothing; one that cannot be decided adds a finding saying why (fail closed). The last
    finding, PW-POST-200, counts the checks run, passed, failed and not determinable. `now` (aware)
    is the time every age is measured at. Raises `ConfigError` only for unusable arguments.

    >>> report = check_posture(Workspace.open(), url="https://pw.internal:8443")
    >>> report.exit_code(Severity.MEDIUM)
    """
    when = now if now is not None else datetime.now(UTC)
    if when.tzinfo is None:
        raise ConfigError(f"now {when.isoformat()}: must be a timezone-aware time")
    rules = baseline if baseline is not None else PostureBaseline()
    if url is not None:
        parse_url(url)  # a usage error, before anything is checked
    if ca is not None and url is None and tls_cert is None:
        raise ConfigError(f"--ca {ca}: give --url or --tls-cert for it to check")
    database = _database_once(workspace)
    root = workspace.root
    here = Location(path=str(root))
    # Each check turns what it did not plan for into its own "could not be determined" finding; these
    # guards are the last line, so that no error ever ends the report instead.
    results: list[CheckResult] = guarded_group(
        ("tls",),
        rule="PW-POST-109",
        place=Location(path="tls"),
        run=lambda: [check_tls(url=url, tls_cert=tls_cert, ca=ca, now=when, baseline=rules)],
    )
    results += guarded_group(
        ("role-mfa", "mfa-enrolment", "stale-accounts", "token-expiry", "token-use"),
        rule="PW-POST-119",
        place=here,
        run=lambda: check_identity(root, database, now=when, baseline=rules),
    )
    results += guarded_group(
        ("key-files", "workspace-permissions", "kek-age", "store-encryption"),
        rule="PW-POST-129",
        place=here,
        run=lambda: check_keys(workspace, now=when, baseline=rules),
    )
    results += guarded_group(
        ("database-connection", "s3-endpoint")
        if workspace.config.backend == "s3"
        else ("database-connection",),
        rule="PW-POST-139",
        place=here,
        run=lambda: check_storage(workspace),
    )
    results += guarded_group(
        ("audit-verify",),
        rule="PW-POST-149",
        place=here,
        run=lambda: [check_audit_verify(root, database, now=when, baseline=rules)],
    )
    results += guarded_group(
        ("alert-routing", "alert-delivery"),
        rule="PW-POST-159",
        place=here,
        run=lambda: check_monitor(root, database, probe=probe_sinks, baseline=rules),
    )
    results += guarded_group(
        ("dependency-db",),
        rule="PW-POST-169",
        place=Location(path=str(osv_db) if osv_db is not None else "osv-db"),
        run=lambda: [check_dependency_db(osv_db, now=when, baseline=rules)],
    )
    findings = [f for result in results for f in result.findings]
    findings.append(_summary(workspace, results, when, rules))
    return Report.build(command="posture", findings=findings, targets=len(results))


def _summary(
    workspace: Workspace, results: list[CheckResult], when: datetime, rules: PostureBaseline
) -> Finding:
    statuses = {result.check: result.status for result in results}
    counts = Counter(statuses.values())
    passed, failed = counts["passed"], counts["failed"]
    undetermined, skipped = counts["not determinable"], counts["not checked"]
    return finding(
        SUMMARY_RULE,
        f"{len(results)} checks: {passed} passed, {failed} failed, {undetermined} not determinable, "
        f"{skipped} not checked (as of {when:%Y-%m-%d %H:%M} UTC)",
        location=Location(path=str(workspace.root)),
        evidence={
            "checks": len(results),
            "passed": passed,
            "failed": failed,
            "not_determinable": undetermined,
            "not_checked": skipped,
            "results": statuses,
            "as_of": when.astimezone(UTC).isoformat(),
            "baseline": {
                "cert_expiry_warning_days": rules.cert_expiry_warning.days,
                "stale_account_after_days": rules.stale_account_after.days,
                "token_unused_after_days": rules.token_unused_after.days,
                "kek_max_age_days": rules.kek_max_age.days,
                "audit_verify_within_days": rules.audit_verify_within.days,
                "osv_db_max_age_days": rules.osv_db_max_age.days,
            },
        },
    )
