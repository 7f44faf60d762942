"""The monitor: alerts, silences, the notification outbox and the monitor's state.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def _id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )


def upgrade() -> None:
    op.create_table(
        "monitor_alerts",
        _id(),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("title", sa.String(256), nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen", _UTC, nullable=False),
        sa.Column("last_seen", _UTC, nullable=False),
        sa.Column("detections", sa.Integer, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("facts", sa.Text, nullable=False),
        sa.Column("notified_at", _UTC, nullable=True),
        sa.Column("notified_detections", sa.Integer, nullable=False),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("acknowledged_at", _UTC, nullable=True),
        sa.Column("resolved_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_alerts"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_monitor_alerts_fingerprint", "monitor_alerts", ["fingerprint"])
    op.create_index("ix_monitor_alerts_status", "monitor_alerts", ["status"])
    op.create_table(
        "monitor_silences",
        _id(),
        sa.Column("matchers", sa.Text, nullable=False),
        sa.Column("reason", sa.String(1024), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("ends_at", _UTC, nullable=False),
        sa.Column("expired_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_silences"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "monitor_outbox",
        _id(),
        sa.Column("alert_id", sa.BigInteger, nullable=False),
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _UTC, nullable=False),
        sa.Column("delivered_at", _UTC, nullable=True),
        sa.Column("last_error", sa.String(1024), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_outbox"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_monitor_outbox_pending", "monitor_outbox", ["delivered_at", "next_attempt_at"])
    op.create_table(
        "monitor_state",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_monitor_state"),
    )


def downgrade() -> None:
    for table in ("monitor_state", "monitor_outbox", "monitor_silences", "monitor_alerts"):
        op.drop_table(table)
