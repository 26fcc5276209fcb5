"""Copies the per-feature SQLite files of the release before into the metadata database.

That release kept the manifest in `manifest.sqlite3`, the cost ledger in `ledger.sqlite3`
and keys plus the audit trail in `metadata.sqlite3` (all under `data_dir`). Start-up calls
`import_legacy` after `upgrade`: each file found is copied in one transaction that also
records its name in `legacy_imports`, so a file is copied once, a crash half-way copies
nothing, and the old files are left as they were (delete them once satisfied).

`metadata.sqlite3` is the default database itself: its tables are adopted in place by the
first revision, and only copied when RAG_DATABASE_URL names another database. Audit
records are copied verbatim (sequence numbers, times to the microsecond, hashes) with the
chain's head, so `rag audit verify` holds across the move; they are refused into a
database whose own chain already has records (two chains cannot be spliced).

In-process jobs (`jobs.sqlite3`) are not metadata of the deployment but the queue of the
one process that owns the folder; they stay where they are (ADR 0026).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core.errors import ConfigError
from metadata.database import SQLITE_FILE, create_engine
from metadata.models import ApiKeyRow, AuditRow, ChainRow, DocumentRow, LedgerRow, LegacyImportRow

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.sqlite3"
LEDGER_FILE = "ledger.sqlite3"


def _time(value: Any) -> datetime | None:
    """A time as the old files stored it (ISO text, aware or naive) as naive UTC."""
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


@contextmanager
def _read(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        db.row_factory = sqlite3.Row
        yield db


#: What is read of each old table, in a stable order (constants: no SQL is built).
_SELECT = {
    "documents": "SELECT * FROM documents ORDER BY collection, tenant, source",
    "llm_ledger": "SELECT * FROM llm_ledger ORDER BY id",
    "api_keys": "SELECT * FROM api_keys ORDER BY key_id",
    "audit_log": "SELECT * FROM audit_log ORDER BY seq",
    "audit_chain": "SELECT * FROM audit_chain ORDER BY id",
}


def _rows(db: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    exists = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (table,))
    if exists.fetchone() is None:
        return []
    return [dict(row) for row in db.execute(_SELECT[table])]


def _documents(db: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    rows = _rows(db, "documents")
    return {
        "documents": [
            {
                "collection": r["collection"],
                "tenant": r["tenant"],
                "source": r["source"],
                "content_hash": r["content_hash"],
                "chunk_ids": r["chunk_ids"],
                "state": r["state"],
                "updated_at": _time(r["updated_at"]),
                "title": r.get("title"),
                "access_groups": r.get("access_groups"),
            }
            for r in rows
        ]
    }


def _ledger(db: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    # Without their ids: the target numbers them after its own rows (and its sequence).
    rows = _rows(db, "llm_ledger")
    unnumbered = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    return {"llm_ledger": [{**r, "at": _time(r["at"])} for r in unnumbered]}


def _keys_and_audit(db: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    keys = [
        {**r, **{k: _time(r[k]) for k in ("created_at", "expires_at", "revoked_at")}}
        for r in _rows(db, "api_keys")
    ]
    audit = [{**r, "at": _time(r["at"])} for r in _rows(db, "audit_log")]
    return {"api_keys": keys, "audit_log": audit, "audit_chain": _rows(db, "audit_chain")}


_TABLES: dict[str, type[Any]] = {
    "documents": DocumentRow,
    "llm_ledger": LedgerRow,
    "api_keys": ApiKeyRow,
    "audit_log": AuditRow,
    "audit_chain": ChainRow,
}


def _same_file(engine: sa.Engine, path: Path) -> bool:
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    return bool(database) and Path(str(database)).resolve() == path.resolve()


def import_legacy(url: str, data_dir: Path) -> dict[str, int]:
    """Copy the old per-feature files of `data_dir` into `url` (at head); rows per file."""
    readers: dict[str, Callable[[sqlite3.Connection], dict[str, list[dict[str, Any]]]]] = {
        MANIFEST_FILE: _documents,
        LEDGER_FILE: _ledger,
        SQLITE_FILE: _keys_and_audit,
    }
    engine = create_engine(url)
    copied: dict[str, int] = {}
    try:
        for name, reader in readers.items():
            path = data_dir / name
            if not path.is_file() or _same_file(engine, path):
                continue
            with engine.begin() as db:
                done = sa.select(LegacyImportRow.name).where(LegacyImportRow.name == name)
                if db.execute(done).first() is not None:
                    continue
                with _read(path) as old:
                    tables = reader(old)
                if "audit_log" in tables:
                    _check_chain_is_empty(db, tables)
                rows = 0
                for table, values in tables.items():
                    if not values:
                        continue
                    columns = _TABLES[table].__table__
                    if table == "audit_chain":  # the target's empty head gives way
                        db.execute(sa.delete(columns))
                    db.execute(sa.insert(columns), values)
                    rows += len(values)
                db.execute(
                    sa.insert(LegacyImportRow).values(
                        name=name, imported_at=datetime.now(UTC).replace(tzinfo=None), rows=rows
                    )
                )
            log.warning(
                "copied %d rows of %s into the metadata database; the file is no longer read "
                "and can be deleted",
                rows,
                path,
            )
            copied[name] = rows
    except sa.exc.SQLAlchemyError as exc:
        raise ConfigError(f"cannot copy the old metadata files of {data_dir}: {exc}") from exc
    finally:
        engine.dispose()
    return copied


def _check_chain_is_empty(db: sa.Connection, tables: dict[str, list[dict[str, Any]]]) -> None:
    if not tables["audit_log"]:
        return
    present = db.execute(sa.select(sa.func.count()).select_from(AuditRow)).scalar_one()
    if present:
        raise ConfigError(
            f"both {SQLITE_FILE} in the data folder and RAG_DATABASE_URL hold audit records; "
            "two hash chains cannot be merged: export the old one (`rag audit export` with "
            "RAG_DATABASE_URL unset), then move the file away"
        )
