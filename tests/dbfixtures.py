"""The `database` fixture: every database test runs on SQLite and on a real PostgreSQL server.

PostgreSQL tests are skipped only where no PostgreSQL binaries are installed;
CI installs them (``.ci/run``), and there ``PIPEWARDEN_REQUIRE_POSTGRES=1``
turns a missing server into a failure instead of a skip.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from pipewarden.audit import AuditLog
from pipewarden.crypto import SigningKey, TrustedKeys
from pipewarden.db import Database
from tests.integration.pgserver import find_bindir, postgres_server

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("PIPEWARDEN_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL binaries are required here but none are installed")
        pytest.skip("no PostgreSQL binaries installed")
    with postgres_server(bindir) as url:
        yield url


def new_postgres_database(admin_url: str) -> str:
    """Create an empty database on the test server and return its URL."""
    name = f"pw_{os.getpid()}_{next(_numbers)}"
    engine = create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return new_postgres_database(request.getfixturevalue("postgres_admin_url"))
    return f"sqlite:///{tmp_path / 'pipewarden.db'}"


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    db = Database.open(database_url)
    try:
        yield db
    finally:
        db.dispose()


def new_audit_log(database: Database, folder: Path, *, log_id: str = "test-log") -> AuditLog:
    """A real audit log in `database`, signing with a fresh key, exporting checkpoints to `folder`."""
    key = SigningKey.generate()
    return AuditLog(
        database,
        signing_key=key,
        trusted=TrustedKeys([key.public], source="test"),
        log_id=log_id,
        checkpoint_dir=folder,
    )


@pytest.fixture
def audit_log(database: Database, tmp_path: Path) -> AuditLog:
    """The audit log of the `database` fixture (SQLite and PostgreSQL)."""
    return new_audit_log(database, tmp_path / "checkpoints")
