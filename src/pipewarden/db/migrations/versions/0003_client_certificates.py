"""Client certificates of service accounts, for mutual TLS.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "client_certificates",
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("principal_id", sa.Integer, nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("mfa", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name="pk_client_certificates"),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            ondelete="CASCADE",
            name="fk_client_certificates_principal_id_principals",
        ),
    )
    op.create_index("ix_client_certificates_principal", "client_certificates", ["principal_id"])


def downgrade() -> None:
    op.drop_index("ix_client_certificates_principal", table_name="client_certificates")
    op.drop_table("client_certificates")
