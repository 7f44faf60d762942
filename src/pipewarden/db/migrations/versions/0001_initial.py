"""The initial schema: identity, tokens, login throttling, and the append-only audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_UTC = sa.DateTime(timezone=True)
#: Tables the database itself keeps append-only.
APPEND_ONLY = ("audit_records", "audit_checkpoints", "audit_log_info")
_PRIMARY_KEY = {"audit_records": "seq", "audit_checkpoints": "size", "audit_log_info": "id"}


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(256), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("password_changed_at", _UTC, nullable=True),
        sa.Column("mfa_secret", sa.LargeBinary, nullable=True),
        sa.Column("mfa_enrolled_at", _UTC, nullable=True),
        sa.Column("mfa_last_step", sa.BigInteger, nullable=True),
        sa.Column("mfa_pending_secret", sa.LargeBinary, nullable=True),
        sa.Column("mfa_pending_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_principals"),
        sa.UniqueConstraint("name", name="uq_principals_name"),
    )
    op.create_table(
        "groups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_groups"),
        sa.UniqueConstraint("name", name="uq_groups_name"),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.Integer, nullable=False),
        sa.Column("principal_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("group_id", "principal_id", name="pk_group_members"),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], ondelete="CASCADE", name="fk_group_members_group_id_groups"
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            ondelete="CASCADE",
            name="fk_group_members_principal_id_principals",
        ),
    )
    op.create_table(
        "role_bindings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(256), nullable=False),
        sa.Column("granted_by", sa.String(64), nullable=False),
        sa.Column("granted_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_role_bindings"),
        sa.UniqueConstraint("subject_kind", "subject", "role", "scope", name="uq_role_bindings_grant"),
    )
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("principal_id", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("used_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recovery_codes"),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            ondelete="CASCADE",
            name="fk_recovery_codes_principal_id_principals",
        ),
    )
    op.create_index("ix_recovery_codes_principal", "recovery_codes", ["principal_id"])
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("expires_at", _UTC, nullable=False),
        sa.Column("last_used_at", _UTC, nullable=True),
        sa.Column("last_used_origin", sa.String(256), nullable=True),
        sa.Column("revoked_at", _UTC, nullable=True),
        sa.Column("mfa", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("token_id", name="pk_api_tokens"),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            ondelete="CASCADE",
            name="fk_api_tokens_principal_id_principals",
        ),
    )
    op.create_index("ix_api_tokens_principal", "api_tokens", ["principal_id"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(320), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_failure_at", _UTC, nullable=True),
        sa.Column("last_failure_at", _UTC, nullable=True),
        sa.Column("locked_until", _UTC, nullable=True),
        sa.Column("last_success_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_login_throttle"),
    )
    op.create_table(
        "identity_keys",
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("sealed", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("purpose", name="pk_identity_keys"),
    )
    op.create_table(
        "audit_records",
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.Column("intake_id", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_records"),
    )
    op.create_index(
        "ix_audit_records_intake_id",
        "audit_records",
        ["intake_id"],
        unique=True,
        postgresql_where=sa.text("intake_id IS NOT NULL"),
        sqlite_where=sa.text("intake_id IS NOT NULL"),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("frontier", sa.LargeBinary, nullable=True),
        sa.PrimaryKeyConstraint("size", name="pk_audit_checkpoints"),
    )
    # Not append-only: rows wait here for a few milliseconds, until the chain takes them.
    op.create_table(
        "audit_intake",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_intake"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "audit_log_info",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("log_id", sa.String(128), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log_info"),
        sa.CheckConstraint("id = 1", name="ck_audit_log_info_one_row"),
    )
    _append_only()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CHAIN_FUNCTION)


# PostgreSQL: chain every pending intake row, in the server, under the chain lock (advisory
# `lock_key`), unless the rows `wanted` are chained already: then only say where. Run alone (its
# own transaction), so the lock is taken and released with no round trip to a client between, and
# committed without waiting for the disk, so the next writer need not wait for this one's flush
# (a commit of the caller's own that waits for it follows). Each row's hash is the one
# pipewarden.audit.record_hash makes: SHA-256(domain || position as 8 bytes, big-endian ||
# previous hash || body), `domain` given by the caller. Returns the rows it chained, in order,
# with their hashes and the size of the newest checkpoint, and the rows wanted that were
# chained before (hash NULL).
_CHAIN_FUNCTION = """
CREATE OR REPLACE FUNCTION pipewarden_audit_chain(lock_key bigint, wanted bigint[], domain bytea)
RETURNS TABLE (intake bigint, seq bigint, digest bytea, checkpointed bigint)
LANGUAGE plpgsql AS $$
DECLARE
  head_seq bigint;
  head_hash bytea;
  newest bigint;
  pending record;
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM pg_advisory_xact_lock(lock_key);
  IF cardinality(wanted) > 0 AND (
    SELECT count(*) FROM audit_records AS r WHERE r.intake_id = ANY(wanted)
  ) = cardinality(wanted) THEN
    RETURN QUERY SELECT r.intake_id, r.seq, NULL::bytea, NULL::bigint
      FROM audit_records AS r WHERE r.intake_id = ANY(wanted);
    RETURN;
  END IF;
  RETURN QUERY SELECT r.intake_id, r.seq, NULL::bytea, NULL::bigint
    FROM audit_records AS r WHERE r.intake_id = ANY(wanted);
  SELECT r.seq, r.hash INTO head_seq, head_hash FROM audit_records AS r ORDER BY r.seq DESC LIMIT 1;
  IF head_seq IS NULL THEN
    head_seq := 0;
    head_hash := decode(repeat('00', 32), 'hex');
  END IF;
  SELECT coalesce(max(c.size), 0) INTO newest FROM audit_checkpoints AS c;
  FOR pending IN
    WITH taken AS (DELETE FROM audit_intake RETURNING id, body) SELECT id, body FROM taken ORDER BY id
  LOOP
    head_seq := head_seq + 1;
    digest := sha256(domain || int8send(head_seq) || head_hash || pending.body);
    INSERT INTO audit_records (seq, prev_hash, body, hash, intake_id)
      VALUES (head_seq, head_hash, pending.body, digest, pending.id);
    intake := pending.id;
    seq := head_seq;
    checkpointed := newest;
    head_hash := digest;
    RETURN NEXT;
  END LOOP;
END $$
"""


def _append_only() -> None:
    """UPDATE and DELETE (and TRUNCATE, on PostgreSQL) on the audit tables fail in the database itself."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            "CREATE OR REPLACE FUNCTION pipewarden_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION pipewarden_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION pipewarden_append_only()"
            )
    else:
        for table in APPEND_ONLY:
            for verb in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {verb} refused'); END"
                )
            # INSERT OR REPLACE deletes the row it replaces without firing DELETE triggers (unless the
            # connection turned recursive_triggers on, which an intruder's would not): refuse an insert
            # whose key is taken, before SQLite's conflict handling removes the old row.
            key = _PRIMARY_KEY[table]
            taken = f"SELECT 1 FROM {table} WHERE {key} = NEW.{key}"  # noqa: S608  # constant names, no input
            op.execute(
                f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} WHEN EXISTS ({taken}) "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: REPLACE refused'); END"
            )
