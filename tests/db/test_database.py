"""The database layer on SQLite and PostgreSQL: migrations, append-only audit tables, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import select, text

from pipewarden.db import Database, audit_checkpoints, audit_records, principals
from pipewarden.errors import ConfigError, DatabaseError


def test_schema_is_current_and_reopening_changes_nothing(database: Database, database_url: str) -> None:
    with database.transaction(write=False) as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == "0003"
    again = Database.open(database_url)
    with again.transaction(write=False) as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    again.dispose()


def test_times_come_back_timezone_aware_utc(database: Database) -> None:
    made = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    with database.transaction() as conn:
        conn.execute(
            principals.insert().values(
                name="ada", kind="user", display_name="", disabled=False, created_at=made
            )
        )
    with database.transaction(write=False) as conn:
        got = conn.execute(select(principals.c.created_at)).scalar_one()
    assert got == made and got.tzinfo is not None


@pytest.mark.parametrize("table", ["audit_records", "audit_checkpoints"])
@pytest.mark.parametrize("statement", ["UPDATE {t} SET {c} = {c}", "DELETE FROM {t}"])
def test_audit_tables_refuse_update_and_delete(database: Database, table: str, statement: str) -> None:
    with database.transaction() as conn:
        if table == "audit_records":
            conn.execute(
                audit_records.insert().values(seq=1, prev_hash=bytes(32), body=b"{}", hash=bytes(32))
            )
        else:
            conn.execute(
                audit_checkpoints.insert().values(
                    size=1, root=bytes(32), envelope=b"{}", created_at=datetime.now(UTC)
                )
            )
    column = "body" if table == "audit_records" else "envelope"
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
        with database.transaction() as conn:
            conn.execute(text(statement.format(t=table, c=column)))
    with database.transaction(write=False) as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 1


def test_postgres_refuses_truncate_of_the_audit_log(postgres_admin_url: str) -> None:
    from tests.dbfixtures import new_postgres_database

    db = Database.open(new_postgres_database(postgres_admin_url))
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
        with db.transaction() as conn:
            conn.execute(text("TRUNCATE audit_records"))
    db.dispose()


def test_bad_urls_are_named_and_the_password_never_shown(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="only sqlite"):
        Database.open("mysql://u:hunter2hunter2@db/x")
    with pytest.raises(ConfigError, match="in-memory"):
        Database.open("sqlite://")
    with pytest.raises(DatabaseError) as info:
        Database.open("postgresql://u:hunter2hunter2@127.0.0.1:1/x")
    assert "hunter2hunter2" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)
    with pytest.raises(ConfigError, match="not a database URL") as bad_port:
        Database.open("postgresql://u:hunter2hunter2@db:abc/x")
    assert "hunter2hunter2" not in str(bad_port.value)


def test_sqlite_refuses_insert_or_replace_into_the_audit_tables(tmp_path: Path) -> None:
    # INSERT OR REPLACE deletes the old row without firing DELETE triggers: a rewrite in one statement.
    db = Database.open(f"sqlite:///{tmp_path / 'pw.db'}")
    with db.transaction() as conn:
        conn.execute(audit_records.insert().values(seq=1, prev_hash=bytes(32), body=b"{}", hash=bytes(32)))
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="REPLACE refused"):
        with db.transaction() as conn:
            conn.execute(
                text(
                    "INSERT OR REPLACE INTO audit_records VALUES (1, zeroblob(32), x'7b', zeroblob(32), NULL)"
                )
            )
    with db.transaction(write=False) as conn:
        assert conn.execute(select(audit_records.c.body)).scalar_one() == b"{}"
    db.dispose()


def test_postgres_commits_are_durable_whatever_the_url_asks(postgres_admin_url: str) -> None:
    from tests.dbfixtures import new_postgres_database

    url = new_postgres_database(postgres_admin_url) + "?options=-csynchronous_commit%3Doff"
    db = Database.open(url)
    with db.transaction(write=False) as conn:
        assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
    db.dispose()
