"""The ingest manifest: what each source looked like when it was last indexed.

One row per document (tenant + source: two tenants may own the same file name): its
content hash, its chunk ids, and a state. A source is written
`pending` (with its new chunk ids) before any point is touched and `done` after its
stale points are deleted, so a run that dies anywhere in between is finished by the
next run: unchanged `done` sources are skipped, `pending` ones are redone (chunk ids
are deterministic, so redoing never duplicates). SQLite by default; the same schema
runs on PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

# `documents` replaced `sources` (keyed without the tenant) when tenancy became part of a
# document's identity; that change is also a pipeline change, so old rows belong to the
# old collection and a `rag reindex` rebuilds them here.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection   TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    source       TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    chunk_ids    TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    updated_at   TEXT NOT NULL,
    title        TEXT,
    access_groups TEXT,
    PRIMARY KEY (collection, tenant, source)
)
"""
#: Columns added after the first release, created on files that lack them (the listing's
#: title and readers). NULL in old rows: unknown until the document is next written.
_ADDED_COLUMNS = {"title": "TEXT", "access_groups": "TEXT"}


@dataclass(frozen=True, slots=True)
class SourceRecord:
    tenant: str
    source: str
    content_hash: str
    chunk_ids: tuple[str, ...]
    state: str


class SqliteManifest:
    """Manifest rows in a SQLite file; each write is its own committed transaction."""

    def __init__(self, path: Path, collection: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA secure_delete=ON")  # an erased row's bytes are overwritten
        self._db.execute(_SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(documents)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE documents ADD COLUMN {column} {kind}")
        self._collection = collection
        # One connection, shared by the job workers' threads: one statement at a time.
        self._lock = threading.RLock()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def get(self, tenant: str, source: str) -> SourceRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT tenant, source, content_hash, chunk_ids, state FROM documents "
                "WHERE collection = ? AND tenant = ? AND source = ?",
                (self._collection, tenant, source),
            ).fetchone()
        return None if row is None else _record(row)

    def sources(self, tenant: str) -> list[SourceRecord]:
        """The tenant's documents, by source id."""
        with self._lock:
            rows = self._db.execute(
                "SELECT tenant, source, content_hash, chunk_ids, state FROM documents "
                "WHERE collection = ? AND tenant = ? ORDER BY source",
                (self._collection, tenant),
            ).fetchall()
        return [_record(r) for r in rows]

    def _write(
        self,
        tenant: str,
        source: str,
        content_hash: str,
        chunk_ids: list[str],
        state: str,
        title: str | None,
        access_groups: Sequence[str],
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO documents (collection, tenant, source, content_hash, chunk_ids, "
                "state, updated_at, title, access_groups) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (collection, tenant, source) DO UPDATE SET content_hash = excluded."
                "content_hash, chunk_ids = excluded.chunk_ids, state = excluded.state, "
                "updated_at = excluded.updated_at, title = excluded.title, "
                "access_groups = excluded.access_groups",
                (
                    self._collection,
                    tenant,
                    source,
                    content_hash,
                    json.dumps(chunk_ids),
                    state,
                    datetime.now(UTC).isoformat(timespec="seconds"),
                    title,
                    _encode_groups(access_groups),
                ),
            )

    def begin(
        self,
        tenant: str,
        source: str,
        content_hash: str,
        chunk_ids: list[str],
        title: str | None = None,
        access_groups: Sequence[str] = (),
    ) -> None:
        """Record the intent before touching the store."""
        self._write(tenant, source, content_hash, chunk_ids, "pending", title, access_groups)

    def commit(
        self,
        tenant: str,
        source: str,
        content_hash: str,
        chunk_ids: list[str],
        title: str | None = None,
        access_groups: Sequence[str] = (),
    ) -> None:
        self._write(tenant, source, content_hash, chunk_ids, "done", title, access_groups)

    def page(
        self,
        tenant: str,
        readers: Sequence[str] | None,
        after: str | None,
        limit: int,
        offset: int = 0,
    ) -> tuple[list[ListedRow], int]:
        """The tenant's documents after source `after`, in source order, and how many
        there are in all. With `readers` (a non-admin's groups), only documents open to
        the whole tenant or to one of those groups; rows of unknown groups are left out."""
        where = "collection = ? AND tenant = ?"
        args: list[object] = [self._collection, tenant]
        if readers is not None:
            clauses = ["access_groups = ''"]
            for group in readers:
                if "," in group:  # not a group name (they are checked); never a pattern
                    continue
                clauses.append("access_groups LIKE ? ESCAPE '\\'")
                args.append(f"%,{_like_escape(group)},%")
            where += f" AND ({' OR '.join(clauses)})"
        with self._lock:
            # `where` is built from fixed clauses above; every value is a bound parameter.
            total = self._db.execute(f"SELECT COUNT(*) FROM documents WHERE {where}", args)  # noqa: S608
            count = int(total.fetchone()[0])
            query = (
                "SELECT source, title, chunk_ids, updated_at, state, access_groups "  # noqa: S608
                f"FROM documents WHERE {where} AND source > ? ORDER BY source LIMIT ? OFFSET ?"
            )
            rows = self._db.execute(
                query,
                [*args, after or "", limit, offset],
            ).fetchall()
        listed = [
            ListedRow(r[0], r[1], len(json.loads(r[2])), r[3], r[4], _decode_groups(r[5]))
            for r in rows
        ]
        return listed, count

    def older_than(self, before: datetime) -> list[tuple[str, str]]:
        """(tenant, source) of the rows last written before `before` (retention)."""
        cutoff = before.astimezone(UTC).isoformat(timespec="seconds")
        with self._lock:
            rows = self._db.execute(
                "SELECT tenant, source FROM documents WHERE collection = ? AND updated_at < ? "
                "ORDER BY tenant, source",
                (self._collection, cutoff),
            ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def remove(self, tenant: str, source: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM documents WHERE collection = ? AND tenant = ? AND source = ?",
                (self._collection, tenant, source),
            )

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True, slots=True)
class ListedRow:
    source: str
    title: str | None
    chunks: int
    updated_at: str
    state: str
    access_groups: tuple[str, ...] | None


def _encode_groups(groups: Sequence[str]) -> str:
    """`,a,b,` (sorted), or '' for the whole tenant: one LIKE finds a member group."""
    return f",{','.join(sorted(set(groups)))}," if groups else ""


def _decode_groups(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(g for g in value.split(",") if g)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _record(row: tuple[str, str, str, str, str]) -> SourceRecord:
    return SourceRecord(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4])
