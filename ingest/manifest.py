"""The ingest manifest: what each source looked like when it was last indexed.

One row per source: its content hash, its chunk ids, and a state. A source is written
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    collection   TEXT NOT NULL,
    source       TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    chunk_ids    TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'done')),
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (collection, source)
)
"""


@dataclass(frozen=True, slots=True)
class SourceRecord:
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
        self._db.execute(_SCHEMA)
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

    def get(self, source: str) -> SourceRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT source, content_hash, chunk_ids, state FROM sources "
                "WHERE collection = ? AND source = ?",
                (self._collection, source),
            ).fetchone()
        return (
            None if row is None else SourceRecord(row[0], row[1], tuple(json.loads(row[2])), row[3])
        )

    def sources(self) -> list[SourceRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT source, content_hash, chunk_ids, state FROM sources WHERE collection = ? "
                "ORDER BY source",
                (self._collection,),
            ).fetchall()
        return [SourceRecord(r[0], r[1], tuple(json.loads(r[2])), r[3]) for r in rows]

    def _write(self, source: str, content_hash: str, chunk_ids: list[str], state: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (collection, source) DO UPDATE SET content_hash = excluded."
                "content_hash, chunk_ids = excluded.chunk_ids, state = excluded.state, "
                "updated_at = excluded.updated_at",
                (
                    self._collection,
                    source,
                    content_hash,
                    json.dumps(chunk_ids),
                    state,
                    datetime.now(UTC).isoformat(),
                ),
            )

    def begin(self, source: str, content_hash: str, chunk_ids: list[str]) -> None:
        """Record the intent before touching the store."""
        self._write(source, content_hash, chunk_ids, "pending")

    def commit(self, source: str, content_hash: str, chunk_ids: list[str]) -> None:
        self._write(source, content_hash, chunk_ids, "done")

    def remove(self, source: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM sources WHERE collection = ? AND source = ?",
                (self._collection, source),
            )

    def close(self) -> None:
        self._db.close()
