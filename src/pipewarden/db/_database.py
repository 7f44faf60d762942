"""The database: one SQLAlchemy engine, SQLite in the workspace or PostgreSQL, kept at the newest schema.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed transaction
survives a crash of the process and of the machine) and a busy timeout, so
several processes share one file. A write transaction takes SQLite's write lock
when it begins (``BEGIN IMMEDIATE``), never half-way, so two writers queue
instead of failing. PostgreSQL is reached with psycopg 3.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from pipewarden.errors import ConfigError, DatabaseError

__all__ = ["DATABASE_URL_ENV", "Database"]

logger = logging.getLogger(__name__)

DATABASE_URL_ENV = "PIPEWARDEN_DATABASE_URL"
_MIGRATIONS = Path(__file__).with_name("migrations")
#: The key of PostgreSQL advisory locks taken by pipewarden ("pwdn" in ASCII), plus a small number per use.
_LOCK_BASE = 0x7077_646E_0000
LOCK_MIGRATE, LOCK_AUDIT, LOCK_MONITOR = 1, 2, 3


def _normalise(url: str) -> Any:
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018  # a port that is not a number is found here, not at the first connection
    except (ArgumentError, ValueError):
        raise ConfigError(f"{DATABASE_URL_ENV}: {url.split('@')[-1]!r} is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # psycopg 3 whatever driver the URL names (plain 'postgresql://' means psycopg2 to SQLAlchemy).
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigError(
                "the database URL names an in-memory SQLite database; the audit log must persist"
            )
        return parsed
    raise ConfigError(
        f"database URL {parsed.render_as_string(hide_password=True)!r}: only sqlite:/// and postgresql:// "
        "are supported"
    )


class Database:
    """An engine bound to one database, upgraded to the newest schema when opened.

    >>> db = Database.open("sqlite:////tmp/pw.db")
    >>> with db.transaction() as conn: ...
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.label = engine.url.render_as_string(hide_password=True)

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Database:
        """Connect to `url` (``sqlite:///path`` or ``postgresql://...``) and bring its schema up to date."""
        parsed = _normalise(url)
        kwargs: dict[str, Any] = {"future": True}
        if parsed.get_backend_name() == "sqlite":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(parsed, **kwargs)
        except ModuleNotFoundError:
            raise ConfigError(
                "PostgreSQL needs the psycopg driver: pip install 'pipewarden[postgres]'"
            ) from None
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ConfigError(f"database {parsed.render_as_string(hide_password=True)}: {exc}") from None
        if engine.dialect.name == "sqlite":
            _sqlite_settings(engine)
        else:
            _postgres_settings(engine)
        db = cls(engine)
        if upgrade:
            db.upgrade()
        return db

    @classmethod
    def for_workspace(cls, root: Path) -> Database:
        """``$PIPEWARDEN_DATABASE_URL`` if set, else ``pipewarden.db`` (SQLite) in the workspace."""
        url = os.environ.get(DATABASE_URL_ENV) or f"sqlite:///{(root / 'pipewarden.db').resolve()}"
        return cls.open(url)

    def upgrade(self) -> None:
        """Apply every Alembic migration not yet applied (one process at a time on PostgreSQL)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self.transaction() as conn:
                self.lock(conn, LOCK_MIGRATE)
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise self.error("cannot bring the schema up to date", exc) from None

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """A connection in a transaction committed at the end of the block (rolled back on an error).

        On SQLite a write transaction holds the write lock from its start.
        """
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(pipewarden_write=write)
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc.orig, OSError):
                raise self.error("connection lost", exc) from None
            raise

    def lock(self, conn: Connection, what: int) -> None:
        """Serialise writers of one kind across processes until the transaction ends.

        SQLite needs nothing more (a write transaction holds the database's only
        write lock); PostgreSQL takes a transaction-scoped advisory lock.
        """
        if self.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_BASE + what})

    def lock_key(self, what: int) -> int:
        """The PostgreSQL advisory lock key `lock` takes for `what`, for statements that take it directly."""
        return _LOCK_BASE + what

    def error(self, what: str, exc: BaseException) -> DatabaseError:
        detail = getattr(exc, "orig", None) or exc
        return DatabaseError(f"database {self.label}: {what}: {str(detail).strip().splitlines()[0]}")

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_settings(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event below decide how each transaction starts.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("pipewarden_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _postgres_settings(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        # A commit returns once it is on disk, whatever the server's, role's or URL's default says:
        # the audit log promises that an event whose append returned survives a crash.
        with dbapi_conn.cursor() as cur:
            cur.execute("SET synchronous_commit TO on")
        dbapi_conn.commit()
