"""The log id lives in the database: every process and replica writing it names the same log.

Checkpoints name the log id, so rewriting the id in the database makes every
checkpoint signed before it, stored or exported, belong to another log.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import delete, func, insert, select, text, update

from pipewarden.audit import database_log_id
from pipewarden.db import Database, audit_log_info
from pipewarden.errors import IntegrityError
from pipewarden.workspace import Workspace
from tests.audit.test_log import event
from tests.audit.test_log_tamper import records, resign_checkpoints, unguarded


@pytest.fixture
def workspaces(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Workspace, Workspace]:
    """Two replicas: two workspace folders (each with its own key) writing one database."""
    monkeypatch.setenv("PIPEWARDEN_DATABASE_URL", database_url)
    first = Workspace.init(tmp_path / "replica-1")
    second = Workspace.init(tmp_path / "replica-2")
    # Each trusts the other's checkpoints, as replicas of one deployment do.
    first.trust(second.keys_dir / "signing.key.pub", store_writer=True)
    second.trust(first.keys_dir / "signing.key.pub", store_writer=True)
    return first, second


def test_replicas_sharing_a_database_share_its_log_id(workspaces: tuple[Workspace, Workspace]) -> None:
    first, second = (ws.audit_log() for ws in workspaces)
    assert first.log_id == second.log_id and first.log_id.startswith("pipewarden-audit-")
    assert not any((ws.root / "audit" / "log-id").exists() for ws in workspaces)
    first.append(event(1))
    second.append(event(2))
    first.close()
    second.close()
    # Each replica's checkpoints name the one log and verify on the other.
    assert first.verify().ok and second.verify().ok
    reopened = Workspace.open(workspaces[0].root).audit_log()
    assert reopened.log_id == first.log_id


def test_racing_first_uses_agree_on_one_id(database_url: str) -> None:
    dbs = [Database.open(database_url) for _ in range(6)]
    start = threading.Barrier(len(dbs))
    ids: list[str] = []

    def first_use(db: Database) -> None:
        start.wait()
        ids.append(database_log_id(db))

    threads = [threading.Thread(target=first_use, args=(db,)) for db in dbs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(ids) == len(dbs) and len(set(ids)) == 1
    with dbs[0].transaction(write=False) as conn:
        assert conn.execute(select(func.count()).select_from(audit_log_info)).scalar_one() == 1
    for db in dbs:
        db.dispose()


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log_info SET log_id = 'mine'", "DELETE FROM audit_log_info"]
)
def test_the_database_refuses_to_change_the_log_id(database: Database, statement: str) -> None:
    made = database_log_id(database)
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="append-only"):
        with database.transaction() as conn:
            conn.execute(text(statement))
    # A second row cannot join it either: the table holds one.
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        with database.transaction() as conn:
            conn.execute(insert(audit_log_info).values(id=2, log_id="second", created_at=func.now()))
    assert database_log_id(database) == made


def test_a_log_id_that_is_not_one_is_refused(database: Database) -> None:
    database_log_id(database)
    with unguarded(database) as conn:
        conn.execute(update(audit_log_info).values(log_id="../../etc/passwd"))
    with pytest.raises(IntegrityError, match="is not one pipewarden makes"):
        database_log_id(database)


def test_a_rewritten_log_id_is_caught_by_verify(
    workspaces: tuple[Workspace, Workspace], database: Database
) -> None:
    ws = workspaces[0]
    log = ws.audit_log()
    log.append_many([event(i) for i in range(12)])
    log.close()
    with unguarded(database) as conn:
        conn.execute(update(audit_log_info).values(log_id="pipewarden-audit-forged"))
    result = Workspace.open(ws.root).audit_log().verify()
    assert result.log_id == "pipewarden-audit-forged"
    assert result.problem is not None and result.problem.kind == "checkpoint"
    assert f"signed for log '{log.log_id}', not 'pipewarden-audit-forged'" in result.problem.detail


def test_a_rewritten_log_id_with_every_stored_checkpoint_resigned_is_caught_by_the_exported_one(
    workspaces: tuple[Workspace, Workspace], database: Database
) -> None:
    # The attacker also holds the signing key: the database alone now holds together.
    ws = workspaces[0]
    log = ws.audit_log()
    log.append_many([event(i) for i in range(20)])
    log.close()
    with unguarded(database) as conn:
        conn.execute(delete(audit_log_info))
        conn.execute(insert(audit_log_info).values(id=1, log_id="test-log", created_at=func.now()))
        resign_checkpoints(conn, records(conn), ws.signing_key())
    reopened = Workspace.open(ws.root).audit_log()
    assert reopened.log_id == "test-log"
    result = reopened.verify()
    assert result.checkpoints == 2  # the re-signed rows verify...
    problem = result.problem  # ...but the exported file names the log it was signed for
    assert problem is not None and problem.kind == "checkpoint"
    assert "000000000020.json" in problem.detail
    assert f"signed for log '{log.log_id}', not 'test-log'" in problem.detail
