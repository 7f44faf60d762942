"""Every table pipewarden keeps, in one SQLAlchemy metadata (the Alembic migrations create them).

Times are stored as timezone-aware UTC. Secrets are never stored in the clear:
passwords as argon2id hashes, TOTP secrets sealed with the key ring, recovery
codes and API tokens as digests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UtcDateTime",
    "api_tokens",
    "audit_checkpoints",
    "audit_intake",
    "audit_log_info",
    "audit_records",
    "client_certificates",
    "group_members",
    "groups",
    "identity_keys",
    "login_throttle",
    "metadata",
    "monitor_alerts",
    "monitor_outbox",
    "monitor_silences",
    "monitor_state",
    "principals",
    "recovery_codes",
    "role_bindings",
]

# Constraint names are fixed so migrations can refer to them on every database.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC time on every database (SQLite keeps no zone, so it is put back on read)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("pipewarden stores only timezone-aware times")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_UTC = UtcDateTime()

# --- identity ------------------------------------------------------------------------------------

principals = Table(
    "principals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    # 'user' (a person: password, MFA) or 'service' (a pipeline stage: tokens only).
    Column("kind", String(16), nullable=False),
    Column("display_name", String(256), nullable=False, default=""),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", _UTC, nullable=False),
    Column("password_hash", Text, nullable=True),
    Column("password_changed_at", _UTC, nullable=True),
    # The TOTP secret sealed with the key ring (KeyRing.seal), its AAD naming the principal.
    Column("mfa_secret", LargeBinary, nullable=True),
    Column("mfa_enrolled_at", _UTC, nullable=True),
    # The last TOTP time step accepted: a code of that step or an earlier one is never accepted again.
    Column("mfa_last_step", BigInteger, nullable=True),
    # A secret being enrolled (sealed like mfa_secret), kept apart until a code from it is confirmed.
    Column("mfa_pending_secret", LargeBinary, nullable=True),
    Column("mfa_pending_at", _UTC, nullable=True),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("created_at", _UTC, nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("principal_id", Integer, ForeignKey("principals.id", ondelete="CASCADE"), primary_key=True),
)

role_bindings = Table(
    "role_bindings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # 'principal' or 'group', and its name.
    Column("subject_kind", String(16), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("role", String(64), nullable=False),
    # Where the role applies: '*' everywhere, 'project:<name>', or a resource-name pattern.
    Column("scope", String(256), nullable=False, default="*"),
    Column("granted_by", String(64), nullable=False),
    Column("granted_at", _UTC, nullable=False),
    UniqueConstraint("subject_kind", "subject", "role", "scope", name="uq_role_bindings_grant"),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal_id", Integer, ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(128), nullable=False),
    Column("used_at", _UTC, nullable=True),
    Index("ix_recovery_codes_principal", "principal_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("principal_id", Integer, ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(64), nullable=False),
    # 'api' (made with `token create`) or 'session' (made by `login`, short-lived).
    Column("kind", String(16), nullable=False, default="api"),
    Column("description", String(256), nullable=False, default=""),
    # JSON list of permission strings the token may use, intersected with its owner's roles.
    Column("scopes", Text, nullable=False),
    Column("created_at", _UTC, nullable=False),
    Column("expires_at", _UTC, nullable=False),
    Column("last_used_at", _UTC, nullable=True),
    Column("last_used_origin", String(256), nullable=True),
    Column("revoked_at", _UTC, nullable=True),
    # True when the session passed a second factor, or the token was made by a session that had.
    Column("mfa", Boolean, nullable=False, default=False),
    Index("ix_api_tokens_principal", "principal_id"),
)

login_throttle = Table(
    "login_throttle",
    metadata,
    # 'account:<name>', 'origin:<address>' or 'pair:<digest of both>'; an unknown account name is
    # throttled like a real one (docs/access.md, "Throttling and lockout").
    Column("key", String(320), primary_key=True),
    Column("failures", Integer, nullable=False, default=0),
    Column("first_failure_at", _UTC, nullable=True),
    Column("last_failure_at", _UTC, nullable=True),
    Column("locked_until", _UTC, nullable=True),
    # On a 'pair:' row: when the account last logged in from that origin (a known origin).
    Column("last_success_at", _UTC, nullable=True),
)

# Client certificates of service accounts (mutual TLS), by the SHA-256 of their DER form in lower-case
# hex: a certificate is bound to the one account registered for it, never matched by its subject name.
client_certificates = Table(
    "client_certificates",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("principal_id", Integer, ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("description", String(256), nullable=False, default=""),
    Column("created_by", String(64), nullable=False),
    Column("created_at", _UTC, nullable=False),
    # True when registered from a session that passed MFA (as an API token carries its maker's).
    Column("mfa", Boolean, nullable=False, default=False),
    Index("ix_client_certificates_principal", "principal_id"),
)

# Random keys the identity part keeps, sealed with the key ring (KeyRing.seal, the AAD naming the
# purpose), in the database so that every process and replica uses the same one. 'login-pseudonym'
# names, in events, login attempts for names that are not principals (docs/access.md).
identity_keys = Table(
    "identity_keys",
    metadata,
    Column("purpose", String(64), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("created_at", _UTC, nullable=False),
)

# --- audit ---------------------------------------------------------------------------------------
# audit_records, audit_checkpoints and audit_log_info refuse UPDATE and DELETE by trigger (see the
# initial migration). audit_intake is a queue, not part of the tamper-evident log (docs/audit.md).

audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("prev_hash", LargeBinary(32), nullable=False),
    # The event's canonical JSON, exactly the bytes hashed.
    Column("body", LargeBinary, nullable=False),
    Column("hash", LargeBinary(32), nullable=False),
    # The audit_intake id the record came through, if it did (not hashed): how a writer whose event
    # another process chained finds its position.
    Column("intake_id", BigInteger, nullable=True),
    Index(
        "ix_audit_records_intake_id",
        "intake_id",
        unique=True,
        postgresql_where=text("intake_id IS NOT NULL"),
        sqlite_where=text("intake_id IS NOT NULL"),
    ),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    # The DSSE envelope signed with the server's Ed25519 key.
    Column("envelope", LargeBinary, nullable=False),
    Column("created_at", _UTC, nullable=False),
    # The Merkle frontier at `size` (one 32-byte subtree head per binary digit of size, largest first):
    # where the next process's first checkpoint starts. Not signed; checked against `root` before use.
    Column("frontier", LargeBinary, nullable=True),
)

# Events waiting to be chained: writers of several processes insert here side by side, and whoever
# holds the chain lock moves every pending row into audit_records in one transaction.
audit_intake = Table(
    "audit_intake",
    metadata,
    # Never reused (a sequence; AUTOINCREMENT on SQLite), so audit_records.intake_id stays unique.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("body", LargeBinary, nullable=False),
    sqlite_autoincrement=True,
)

# One row: the log's id, which every checkpoint names. Kept in the database so every process and
# replica writing it agrees on the id.
audit_log_info = Table(
    "audit_log_info",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("log_id", String(128), nullable=False),
    Column("created_at", _UTC, nullable=False),
    CheckConstraint("id = 1", name="ck_audit_log_info_one_row"),
)

# --- monitor -------------------------------------------------------------------------------------
# Alerts (one open row per fingerprint), silences, the outbox of notifications (written before any is
# sent, so a sink that is down delays a notification and never loses it) and the monitor's own state
# (baselines, how far into the audit log it has read), as JSON documents (docs/monitor.md).

monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("title", String(256), nullable=False),
    # The rule's group fields and their values, as a JSON object.
    Column("labels", Text, nullable=False),
    # 'firing', 'acknowledged' or 'resolved'.
    Column("status", String(16), nullable=False),
    Column("first_seen", _UTC, nullable=False),
    Column("last_seen", _UTC, nullable=False),
    Column("detections", Integer, nullable=False),
    # The latest events behind it (JSON list of events) and the latest detection's numbers (JSON).
    Column("evidence", Text, nullable=False),
    Column("facts", Text, nullable=False),
    Column("notified_at", _UTC, nullable=True),
    Column("notified_detections", Integer, nullable=False, default=0),
    Column("acknowledged_by", String(64), nullable=True),
    Column("acknowledged_at", _UTC, nullable=True),
    Column("resolved_at", _UTC, nullable=True),
    Index("ix_monitor_alerts_fingerprint", "fingerprint"),
    Index("ix_monitor_alerts_status", "status"),
    sqlite_autoincrement=True,
)

monitor_silences = Table(
    "monitor_silences",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # Label -> glob pattern, as a JSON object ('rule_id' among the labels).
    Column("matchers", Text, nullable=False),
    Column("reason", String(1024), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", _UTC, nullable=False),
    Column("ends_at", _UTC, nullable=False),
    # Set when it was ended before `ends_at`.
    Column("expired_at", _UTC, nullable=True),
    sqlite_autoincrement=True,
)

monitor_outbox = Table(
    "monitor_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("alert_id", BigInteger, nullable=False),
    Column("sink", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", _UTC, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", _UTC, nullable=False),
    Column("delivered_at", _UTC, nullable=True),
    Column("last_error", String(1024), nullable=True),
    Index("ix_monitor_outbox_pending", "delivered_at", "next_attempt_at"),
    sqlite_autoincrement=True,
)

monitor_state = Table(
    "monitor_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("body", Text, nullable=False),
    Column("updated_at", _UTC, nullable=False),
)
