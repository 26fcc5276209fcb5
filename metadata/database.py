"""Engines on the metadata database, and its schema brought to an Alembic revision.

`upgrade(url)` is what start-up runs (`rag serve`, `rag worker`, every CLI command that
opens a store) and what `rag db upgrade` runs by hand: the schema is at head before any
store reads it, so a fresh data folder needs no manual step. Replicas starting together
take turns (a PostgreSQL advisory lock; SQLite's write lock), and an up-to-date schema
costs one read of `alembic_version`.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from core.errors import ConfigError

#: The file of the default (SQLite) metadata database, under `data_dir`.
SQLITE_FILE = "metadata.sqlite3"
#: Any constant: the PostgreSQL advisory lock that serialises migrations across replicas.
_MIGRATION_LOCK = 0x5241_4744_4231  # "RAGDB1"
_upgraded: set[str] = set()  # URLs already at head in this process
_upgrading = threading.Lock()


def sqlite_url(data_dir: Path) -> str:
    """The default database: a SQLite file in the data folder."""
    return f"sqlite:///{data_dir / SQLITE_FILE}"


def create_engine(
    url: str, *, synchronous: Literal["FULL", "NORMAL"] = "FULL", **options: Any
) -> sa.Engine:
    """An engine on `url`; on SQLite, WAL with a busy timeout (threads and processes
    share the file) and overwritten deletes (an erased row's bytes do not linger).

    `synchronous=NORMAL` trades the last commits before a power cut for no fsync per
    commit: the ledger and the key store use it; the manifest and the audit log do not.
    """
    # A file has no stale connections to ping for (the ping cost 0.3 ms per checkout).
    ping = not url.startswith("sqlite")
    if url.startswith("postgresql") and "connect_args" not in options:
        options["connect_args"] = {"connect_timeout": 10}  # a down server fails the start
    try:
        engine = sa.create_engine(url, pool_pre_ping=ping, **options)
    except (ArgumentError, ImportError) as exc:
        raise ConfigError(
            f"cannot open the metadata database at {url}: {exc}; set RAG_DATABASE_URL to a "
            "SQLAlchemy URL (sqlite:///path or postgresql+psycopg://user@host/db)"
        ) from exc
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

    return engine


def sqlite_immediate(engine: sa.Engine) -> None:
    """SQLite transactions that take the write lock at BEGIN, DDL included (SQLAlchemy's
    recipe): a read-then-write (the audit head, a migration) is one atomic step across
    processes, and a second process waits for the first instead of failing."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@cache
def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", "metadata:migrations")
    return config


def head() -> str:
    """The newest revision this code knows."""
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None
    return revision


def current(url: str) -> str | None:
    """The revision the database is at (None: no schema yet)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise ConfigError(f"cannot read the metadata database's revision: {exc}") from exc
    finally:
        engine.dispose()


def _run(url: str, action: Literal["upgrade", "downgrade"], revision: str) -> None:
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        sqlite_immediate(engine)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
            config = _config()
            config.attributes["connection"] = connection
            try:
                if action == "upgrade":
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)
            finally:
                config.attributes.pop("connection", None)
    except SQLAlchemyError as exc:
        raise ConfigError(
            f"cannot migrate the metadata database ({action} {revision}): {exc}"
        ) from exc
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` (head: the code's). Idempotent; once per process."""
    with _upgrading:
        if revision == "head" and url in _upgraded:
            return
        _run(url, "upgrade", revision)
        if revision == "head":
            _upgraded.add(url)


def downgrade(url: str, revision: str = "base") -> None:
    """Take the schema back to `revision` (base: no tables). Operators and tests only."""
    with _upgrading:
        _upgraded.discard(url)
        _run(url, "downgrade", revision)
