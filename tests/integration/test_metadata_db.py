"""The metadata database on SQLite and PostgreSQL: migrations up and down, models equal to
the migrations, a fresh data folder that starts with no manual step, and a data folder of
the release before (tests/fixtures/legacy-data) migrated without losing a row.

PostgreSQL is the real server at 127.0.0.1:5432 in a throwaway schema per test (skipped
with the reason where none runs, failed under CI=true).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from typer.testing import CliRunner

from api.cli import app as cli
from api.wiring import build_app_context
from auth.keys import KeyStore
from core.errors import ConfigError
from core.settings import Settings
from core.types import Role
from governance.audit import AuditLog
from metadata import database
from metadata.legacy import import_legacy
from metadata.models import Base
from tests.services import cli_settings, postgres_schema

pytestmark = pytest.mark.integration

LEGACY = Path(__file__).resolve().parent.parent / "fixtures" / "legacy-data"
TABLES = {"documents", "api_keys", "llm_ledger", "audit_log", "audit_chain", "legacy_imports"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """The database under test: None is the default (SQLite in the data folder)."""
    if request.param == "sqlite":
        yield None
        return
    with postgres_schema("metadata") as url:
        yield url


def _url(url: str | None, data_dir: Path) -> str:
    return url or database.sqlite_url(data_dir)


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_migrations_go_up_and_down(url: str | None, tmp_path: Path) -> None:
    target = _url(url, tmp_path)
    assert database.current(target) is None
    database.upgrade(target)
    assert database.current(target) == database.head()
    assert _tables(target) == TABLES
    database.downgrade(target, "base")
    assert database.current(target) is None
    assert _tables(target) == set()
    database.upgrade(target)
    assert _tables(target) == TABLES
    database.upgrade(target)  # at head: nothing to do
    assert database.current(target) == database.head()


def test_the_models_match_the_migrations(url: str | None, tmp_path: Path) -> None:
    """What the stores read (the models) is what the revisions build, on each database."""
    target = _url(url, tmp_path)
    database.upgrade(target)
    engine = sa.create_engine(target)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def _settings(data_dir: Path, url: str | None) -> Settings:
    return Settings(_env_file=None, data_dir=data_dir, database_url=url)  # type: ignore[call-arg]


def test_a_fresh_data_folder_starts_with_no_manual_step(
    url: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "fresh"
    context = build_app_context(_settings(data_dir, url))
    try:
        context.manifest.commit("acme", "a.md", "h", ["x"])  # the schema is there
        assert context.manifest.get("acme", "a.md") is not None
    finally:
        context.close()
    assert database.current(_url(url, data_dir)) == database.head()

    other = tmp_path / "by-hand"
    runner = CliRunner()
    with cli_settings(monkeypatch, _settings(other, url)):
        if url is not None:
            monkeypatch.setenv("RAG_DATABASE_URL", url)
            database.downgrade(url, "base")
        behind = runner.invoke(cli, ["db", "current"])
        assert behind.exit_code == 1, behind.output
        upgraded = runner.invoke(cli, ["db", "upgrade"])
        assert upgraded.exit_code == 0, upgraded.output
        assert database.head() in upgraded.output
        assert runner.invoke(cli, ["db", "current"]).exit_code == 0


def _old_rows(name: str, table: str, order: str) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(LEGACY / name)) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY {order}")]


def _new_rows(url: str, table: str, order: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as db:
            query = sa.text(f"SELECT * FROM {table} ORDER BY {order}")
            return [dict(r._mapping) for r in db.execute(query)]
    finally:
        engine.dispose()


def _when(value: Any) -> str:
    """A stored time as comparable text: old files hold ISO strings, new rows datetimes."""
    from datetime import UTC, datetime

    if value is None:
        return "-"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    moment = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    return moment.isoformat(timespec="microseconds")


def test_a_data_folder_of_the_release_before_is_migrated_without_loss(
    url: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(LEGACY, data_dir)
    jobs_before = hashlib.sha256((data_dir / "jobs.sqlite3").read_bytes()).hexdigest()
    context = build_app_context(_settings(data_dir, url))
    try:
        target = context.database_url  # what start-up does: migrate, then copy
    finally:
        context.close()

    old_docs = _old_rows("manifest.sqlite3", "documents", "collection, tenant, source")
    new_docs = _new_rows(target, "documents", "collection, tenant, source")
    assert len(new_docs) == len(old_docs) == 4
    for old, new in zip(old_docs, new_docs, strict=True):
        assert {**old, "updated_at": _when(old["updated_at"])} == {
            **new,
            "updated_at": _when(new["updated_at"]),
        }

    old_ledger = _old_rows("ledger.sqlite3", "llm_ledger", "id")
    new_ledger = _new_rows(target, "llm_ledger", "id")
    assert len(new_ledger) == len(old_ledger) == 3
    for old, new in zip(old_ledger, new_ledger, strict=True):
        old.pop("id"), new.pop("id")
        assert {**old, "at": _when(old["at"])} == {**new, "at": _when(new["at"])}

    times = ("created_at", "expires_at", "revoked_at")
    old_keys = _old_rows("metadata.sqlite3", "api_keys", "key_id")
    new_keys = _new_rows(target, "api_keys", "key_id")
    assert [{**k, **{t: _when(k[t]) for t in times}} for k in new_keys] == [
        {**k, **{t: _when(k[t]) for t in times}} for k in old_keys
    ]
    old_audit = _old_rows("metadata.sqlite3", "audit_log", "seq")
    new_audit = _new_rows(target, "audit_log", "seq")
    assert [{**r, "at": _when(r["at"])} for r in new_audit] == [
        {**r, "at": _when(r["at"])} for r in old_audit
    ]
    assert len(new_audit) == 5
    assert _new_rows(target, "audit_chain", "id") == _old_rows(
        "metadata.sqlite3", "audit_chain", "id"
    )

    # The old admin key still opens the door; the revoked one stays shut.
    token = (data_dir / "admin-token.txt").read_text().strip()
    keys = KeyStore(target)
    try:
        assert keys.authenticate(token).role == Role.ADMIN
    finally:
        keys.close()
    # The chain verifies, through `rag audit verify` too, and grows on from its old head.
    audit = AuditLog(target, tmp_path / "spool.jsonl")
    try:
        from governance.audit import AuditEvent

        audit.record(AuditEvent("db.migrated", "test", None, "ok"))
        result = audit.verify()
        assert (result.ok, result.records, result.head_seq) == (True, 6, 6)
    finally:
        audit.close()
    with cli_settings(monkeypatch, _settings(data_dir, url)):
        if url is not None:
            monkeypatch.setenv("RAG_DATABASE_URL", url)
        verified = CliRunner().invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "6 records" in verified.output

    # Once only: the next start copies nothing; the in-process jobs file is not touched.
    assert import_legacy(target, data_dir) == {}
    assert len(_new_rows(target, "llm_ledger", "id")) == 3
    assert hashlib.sha256((data_dir / "jobs.sqlite3").read_bytes()).hexdigest() == jobs_before


def test_two_audit_chains_are_never_spliced(tmp_path: Path) -> None:
    """Old records into a database whose chain already has its own: refused, loudly."""
    with postgres_schema("splice") as url:
        audit = AuditLog(url, tmp_path / "spool.jsonl")
        try:
            from governance.audit import AuditEvent

            audit.record(AuditEvent("ask", "someone", "acme", "ok"))
        finally:
            audit.close()
        data_dir = tmp_path / "data"
        shutil.copytree(LEGACY, data_dir)
        with pytest.raises(ConfigError, match="two hash chains"):
            import_legacy(url, data_dir)
        # Nothing of that file went in (one transaction); the other files did.
        assert len(_new_rows(url, "audit_log", "seq")) == 1
        assert len(_new_rows(url, "documents", "source")) == 4


def test_replicas_starting_together_migrate_once(url: str | None, tmp_path: Path) -> None:
    """Three processes upgrade one empty database at once: each waits its turn (advisory
    lock, SQLite's write lock) and all find the schema at head."""
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    target = _url(url, tmp_path)
    script = "import sys; from metadata.database import upgrade; upgrade(sys.argv[1])"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, target],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    assert database.current(target) == database.head()
    assert _tables(target) == TABLES
