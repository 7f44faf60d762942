"""The posture baseline: every check's rule id, title, severity and fix, and the thresholds it applies.

Rule ids are grouped by what they look at (docs/posture.md): 10x TLS, 11x identity, 12x keys, 13x the
store and its connections, 14x the audit log, 15x the monitor's alert sinks, 16x the dependency
database; 200 is the summary. In each group an id ending in 9 says the group's check could not be
decided, at high severity (fail closed: never a quiet pass, and a gate failing on high stops on it).
One unknown is a limitation by design rather than a fault, and low: PW-POST-125, a key provider that
records no creation dates (keys from an environment variable), whose keys' age can never be known here.
A few info ids say a check was not asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from pipewarden.errors import ConfigError
from pipewarden.findings import Finding, Location, Severity

__all__ = [
    "NOT_CHECKED",
    "POSTURE_CHECKS",
    "SUMMARY_RULE",
    "UNDETERMINED",
    "CheckResult",
    "PostureBaseline",
    "finding",
]

_I, _L, _M, _H, _C = Severity.INFO, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL

#: rule id -> (title, severity, fix). Every id is documented in docs/posture.md.
POSTURE_CHECKS: Mapping[str, tuple[str, Severity, str]] = MappingProxyType(
    {
        # --- TLS -----------------------------------------------------------------------------------
        "PW-POST-100": (
            "TLS not checked",
            _I,
            "run 'pipewarden posture --url https://host:port' against the server, or give its "
            "certificate with --tls-cert",
        ),
        "PW-POST-101": (
            "TLS not enforced",
            _H,
            "serve only https:// (terminate TLS at the server or its load balancer) and give clients "
            "the https:// address",
        ),
        "PW-POST-102": (
            "certificate expired or not yet valid",
            _H,
            "install a currently valid certificate and automate its renewal",
        ),
        "PW-POST-103": (
            "certificate expires soon",
            _M,
            "renew the certificate now and automate renewal well ahead of expiry",
        ),
        "PW-POST-104": (
            "certificate does not match the host name",
            _H,
            "issue a certificate whose subjectAltName lists the name (or address) clients connect to",
        ),
        "PW-POST-105": (
            "certificate chain does not verify",
            _H,
            "serve the full chain of a certificate issued by a CA the clients trust (give a private CA "
            "with --ca)",
        ),
        "PW-POST-106": (
            "protocol older than TLS 1.2 accepted",
            _H,
            "set the server's minimum protocol to TLS 1.2 (better 1.3)",
        ),
        "PW-POST-107": (
            "weak certificate key",
            _M,
            "issue a new certificate on an RSA key of 2048 bits or more, or an EC key of 256 bits or more",
        ),
        "PW-POST-108": (
            "weak certificate signature",
            _M,
            "reissue the certificate signed with SHA-256 or stronger",
        ),
        "PW-POST-109": (
            "TLS could not be checked",
            _H,
            "make the server reachable from where posture runs (from a host whose TLS library can offer "
            "TLS 1.0 and 1.1), or give a readable PEM certificate and the CA it chains to",
        ),
        # --- identity ------------------------------------------------------------------------------
        "PW-POST-110": (
            "administrative role does not require MFA",
            _H,
            "set 'requires_mfa: true' on the role in policy.yaml",
        ),
        "PW-POST-111": (
            "administrator without MFA enrolled",
            _H,
            "have the administrator enrol now ('pipewarden user enrol-mfa'), or disable the account "
            "until they do",
        ),
        "PW-POST-112": (
            "user whose roles require MFA has not enrolled",
            _M,
            "have the user enrol ('pipewarden user enrol-mfa'), or revoke the roles they do not use",
        ),
        "PW-POST-113": (
            "account unused for a long time",
            _M,
            "disable the account ('pipewarden user disable NAME') unless it is still needed",
        ),
        "PW-POST-114": (
            "API token without expiry",
            _M,
            "revoke the token ('pipewarden token revoke ID') and issue one with --expires (at most 1y)",
        ),
        "PW-POST-115": (
            "API token unused",
            _L,
            "revoke the token ('pipewarden token revoke ID') if nothing needs it",
        ),
        "PW-POST-119": (
            "identity settings could not be checked",
            _H,
            "make the database and policy.yaml readable (see the message), then run posture again",
        ),
        # --- keys ----------------------------------------------------------------------------------
        "PW-POST-120": (
            "key file open to other users",
            _C,
            "chmod 600 the file, then rotate the key: anyone on the machine may have copied it",
        ),
        "PW-POST-121": (
            "key file open to the group",
            _H,
            "chmod 600 the file, and rotate the key if anyone in the group should not have had it",
        ),
        "PW-POST-122": (
            "workspace folder or database file open to others",
            _H,
            "chmod 700 the workspace and keys folders and chmod 600 the database file",
        ),
        "PW-POST-123": (
            "file that decides trust is writable by others",
            _H,
            "chmod go-w the file or folder, and check its content was not changed",
        ),
        "PW-POST-124": (
            "key-encryption key rotation due",
            _M,
            "run 'pipewarden keys rotate', then retire the old key once nothing needs it",
        ),
        "PW-POST-125": (
            "key age not recorded by the key provider",
            _L,
            "rotate on a schedule where the provider keeps the keys, or use a provider that records when "
            "each key was made (the key file does)",
        ),
        "PW-POST-129": (
            "keys could not be checked",
            _H,
            "see the message: make the key files and the key ring readable by this process",
        ),
        # --- store and connections -----------------------------------------------------------------
        "PW-POST-130": (
            "store encryption unavailable",
            _H,
            "make the key ring readable by this process (see the message); nothing can be stored or read "
            "until it is",
        ),
        "PW-POST-131": (
            "database connection may be unencrypted",
            _H,
            "add sslmode=verify-full (with sslrootcert) to PIPEWARDEN_DATABASE_URL",
        ),
        "PW-POST-132": (
            "database server identity not verified",
            _M,
            "use sslmode=verify-full (with sslrootcert) instead of sslmode=require",
        ),
        "PW-POST-133": (
            "S3 endpoint over plain HTTP",
            _H,
            "set store.s3.endpoint_url (or AWS_ENDPOINT_URL_S3) to an https:// endpoint",
        ),
        "PW-POST-139": (
            "store connections could not be checked",
            _H,
            "fix the database URL or store settings named in the message",
        ),
        # --- audit log -----------------------------------------------------------------------------
        "PW-POST-140": (
            "audit log not verified recently",
            _M,
            "run 'pipewarden audit verify' on a schedule (daily), and keep its exported checkpoints "
            "elsewhere",
        ),
        "PW-POST-141": (
            "last audit log verification failed",
            _H,
            "investigate now: the record of who did what was altered; see 'pipewarden audit verify' and "
            "docs/audit.md",
        ),
        "PW-POST-149": (
            "audit log could not be checked",
            _H,
            "make the database readable, and run 'pipewarden audit verify' to find damaged records",
        ),
        # --- monitor -------------------------------------------------------------------------------
        "PW-POST-150": (
            "monitor settings cannot be loaded",
            _M,
            "fix monitor.yaml or set the environment variables it names, where the monitor runs",
        ),
        "PW-POST-151": (
            "no alert sink reaches people",
            _M,
            "add a webhook, slack or smtp sink to monitor.yaml and route high alerts to it",
        ),
        "PW-POST-152": (
            "alert sink unreachable",
            _M,
            "fix the sink's address or the network path to it; alerts wait in the outbox meanwhile",
        ),
        "PW-POST-153": (
            "alert sink without transport encryption",
            _M,
            "use an https:// URL for the webhook, or STARTTLS for SMTP",
        ),
        "PW-POST-154": (
            "alert notifications failing",
            _M,
            "fix the sink named (see last_error), then run 'pipewarden monitor run' to deliver the outbox",
        ),
        "PW-POST-155": (
            "alert sink reachability not checked",
            _I,
            "run posture without --no-probe from a host on the monitor's network",
        ),
        "PW-POST-159": (
            "alert delivery could not be checked",
            _H,
            "see the message; make monitor.yaml loadable and the database readable",
        ),
        # --- dependency database ---------------------------------------------------------------------
        "PW-POST-160": (
            "dependency database out of date",
            _M,
            "download a fresh OSV database (daily) before auditing dependencies",
        ),
        "PW-POST-161": (
            "dependency database not checked",
            _I,
            "give the offline OSV database 'pipewarden deps --db' uses with --osv-db",
        ),
        "PW-POST-169": (
            "dependency database could not be checked",
            _H,
            "give a readable folder or zip of OSV records with --osv-db",
        ),
        # --- summary -------------------------------------------------------------------------------
        "PW-POST-200": (
            "posture checked",
            _I,
            "fix the failed checks worst first (each finding names its fix), then decide the ones that "
            "could not be determined",
        ),
    }
)

SUMMARY_RULE = "PW-POST-200"
#: The ids that say a check could not be decided (PW-POST-125: never, by the key provider's design).
UNDETERMINED = frozenset(
    {rule for rule in POSTURE_CHECKS if rule.endswith("9") and rule != SUMMARY_RULE} | {"PW-POST-125"}
)
#: The ids that say a check was not asked for.
NOT_CHECKED = frozenset({"PW-POST-100", "PW-POST-155", "PW-POST-161"})

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class PostureBaseline:
    """The thresholds posture holds a deployment to (docs/posture.md, "The baseline")."""

    #: A certificate expiring within this is reported (PW-POST-103).
    cert_expiry_warning: timedelta = 30 * _DAY
    #: An enabled account with no login (or token use) for this long is reported (PW-POST-113).
    stale_account_after: timedelta = 90 * _DAY
    #: An active API token not used for this long is reported (PW-POST-115).
    token_unused_after: timedelta = 30 * _DAY
    #: The current key-encryption key older than this is due for rotation (PW-POST-124).
    kek_max_age: timedelta = 365 * _DAY
    #: A passing `audit verify` must be at most this old (PW-POST-140).
    audit_verify_within: timedelta = 7 * _DAY
    #: The offline dependency database's newest record at most this old (PW-POST-160).
    osv_db_max_age: timedelta = 7 * _DAY
    #: Seconds a network probe (TLS handshake, sink connect) waits.
    probe_timeout: float = 3.0

    def __post_init__(self) -> None:
        for name in (
            "cert_expiry_warning",
            "stale_account_after",
            "token_unused_after",
            "kek_max_age",
            "audit_verify_within",
            "osv_db_max_age",
        ):
            value = getattr(self, name)
            if not isinstance(value, timedelta) or value <= timedelta(0):
                raise ConfigError(f"{name} {value!r}: must be a positive duration")
        if not 0 < self.probe_timeout <= 120:
            raise ConfigError(f"probe_timeout {self.probe_timeout!r}: must be more than 0 and at most 120 s")


def finding(
    rule_id: str, message: str, *, location: Location, evidence: Mapping[str, Any] | None = None
) -> Finding:
    """A finding of `rule_id` with the catalogue's title and severity, its fix in the evidence."""
    title, severity, fix = POSTURE_CHECKS[rule_id]
    return Finding(
        rule_id=rule_id,
        severity=severity,
        title=title,
        message=message,
        location=location,
        evidence={**(evidence or {}), "fix": fix},
    )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one check concluded: its findings (none when it passed)."""

    check: str
    findings: tuple[Finding, ...] = ()

    @property
    def status(self) -> str:
        """'failed', 'not determinable', 'not checked' or 'passed'."""
        rules = {f.rule_id for f in self.findings}
        if rules - UNDETERMINED - NOT_CHECKED:
            return "failed"
        if rules & UNDETERMINED:
            return "not determinable"
        if rules & NOT_CHECKED:
            return "not checked"
        return "passed"
