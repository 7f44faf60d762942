"""The database every part keeps its records in: SQLite in the workspace by default,
PostgreSQL (``PIPEWARDEN_DATABASE_URL=postgresql://...``) for shared deployments.
Alembic migrations keep its schema current.

>>> from pipewarden.db import Database, principals
>>> db = Database.open("sqlite:////tmp/pipewarden.db")
>>> with db.transaction(write=False) as conn:
...     conn.execute(principals.select()).all()
"""

from __future__ import annotations

from pipewarden.db._database import DATABASE_URL_ENV, LOCK_AUDIT, LOCK_MIGRATE, Database
from pipewarden.db._tables import (
    api_tokens,
    audit_checkpoints,
    audit_intake,
    audit_log_info,
    audit_records,
    client_certificates,
    group_members,
    groups,
    identity_keys,
    login_throttle,
    metadata,
    monitor_alerts,
    monitor_outbox,
    monitor_silences,
    monitor_state,
    principals,
    recovery_codes,
    role_bindings,
)

__all__ = [
    "DATABASE_URL_ENV",
    "LOCK_AUDIT",
    "LOCK_MIGRATE",
    "Database",
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
