"""The ingest manifest (the `Manifest` port) on the metadata database.

One row per document (tenant + source: two tenants may own the same file name): its
content hash, its chunk ids, and a state. A source is written `pending` (with its new
chunk ids) before any point is touched and `done` after its stale points are deleted, so
a run that dies anywhere in between is finished by the next run: unchanged `done`
sources are skipped, `pending` ones are redone (chunk ids are deterministic, so redoing
never duplicates). The table is `metadata.models.DocumentRow`: SQLite under `data_dir` by
default, PostgreSQL by `RAG_DATABASE_URL`; each write is its own committed transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.types import ListedRow, SourceRecord
from metadata.database import create_engine, upgrade
from metadata.models import DocumentRow

_DOCS = DocumentRow.__table__
_RECORD = (
    DocumentRow.tenant,
    DocumentRow.source,
    DocumentRow.content_hash,
    DocumentRow.chunk_ids,
    DocumentRow.state,
)


class SqlManifest:
    """`Manifest` rows of one collection, on any SQLAlchemy database."""

    def __init__(self, url: str, collection: str) -> None:
        upgrade(url)
        # synchronous=FULL: a `done` row must not outlive a power cut that lost its points.
        self._engine = create_engine(url)
        self._collection = collection
        self._upsert = (postgresql if self._engine.dialect.name == "postgresql" else sqlite).insert

    def _mine(self) -> sa.ColumnElement[bool]:
        return DocumentRow.collection == self._collection

    def get(self, tenant: str, source: str) -> SourceRecord | None:
        query = sa.select(*_RECORD).where(
            self._mine(), DocumentRow.tenant == tenant, DocumentRow.source == source
        )
        with self._engine.connect() as db:
            row = db.execute(query).first()
        return None if row is None else _record(row)

    def sources(self, tenant: str) -> list[SourceRecord]:
        """The tenant's documents, by source id."""
        query = (
            sa.select(*_RECORD)
            .where(self._mine(), DocumentRow.tenant == tenant)
            .order_by(DocumentRow.source)
        )
        with self._engine.connect() as db:
            return [_record(r) for r in db.execute(query)]

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
        values = {
            "content_hash": content_hash,
            "chunk_ids": json.dumps(chunk_ids),
            "state": state,
            "updated_at": datetime.now(UTC).replace(tzinfo=None, microsecond=0),
            "title": title,
            "access_groups": _encode_groups(access_groups),
        }
        keys = {"collection": self._collection, "tenant": tenant, "source": source}
        statement = self._upsert(_DOCS).values(**keys, **values)
        statement = statement.on_conflict_do_update(index_elements=list(keys), set_=values)
        with self._engine.begin() as db:
            db.execute(statement)

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
        where: list[sa.ColumnElement[bool]] = [self._mine(), DocumentRow.tenant == tenant]
        if readers is not None:
            open_to = [DocumentRow.access_groups == ""]
            for group in readers:
                if "," in group:  # not a group name (they are checked); never a pattern
                    continue
                pattern = f"%,{_like_escape(group)},%"
                open_to.append(DocumentRow.access_groups.like(pattern, escape="\\"))
            where.append(sa.or_(*open_to))
        count = sa.select(sa.func.count()).select_from(_DOCS).where(*where)
        query = (
            sa.select(
                DocumentRow.source,
                DocumentRow.title,
                DocumentRow.chunk_ids,
                DocumentRow.updated_at,
                DocumentRow.state,
                DocumentRow.access_groups,
            )
            .where(*where, DocumentRow.source > (after or ""))
            .order_by(DocumentRow.source)
            .limit(limit)
            .offset(offset)
        )
        with self._engine.connect() as db:
            total = int(db.execute(count).scalar_one())
            rows = db.execute(query).all()
        listed = [
            ListedRow(r[0], r[1], len(json.loads(r[2])), _iso(r[3]), r[4], _decode_groups(r[5]))
            for r in rows
        ]
        return listed, total

    def older_than(self, before: datetime) -> list[tuple[str, str]]:
        """(tenant, source) of the rows last written before `before` (retention)."""
        cutoff = before.astimezone(UTC).replace(tzinfo=None)
        query = (
            sa.select(DocumentRow.tenant, DocumentRow.source)
            .where(self._mine(), DocumentRow.updated_at < cutoff)
            .order_by(DocumentRow.tenant, DocumentRow.source)
        )
        with self._engine.connect() as db:
            return [(str(r[0]), str(r[1])) for r in db.execute(query)]

    def remove(self, tenant: str, source: str) -> None:
        with self._engine.begin() as db:
            db.execute(
                sa.delete(DocumentRow).where(
                    self._mine(), DocumentRow.tenant == tenant, DocumentRow.source == source
                )
            )

    def close(self) -> None:
        self._engine.dispose()


def _iso(moment: datetime) -> str:
    """Naive UTC as the listing has always shown it: `2026-01-02T03:04:05+00:00`."""
    return moment.replace(tzinfo=UTC).isoformat(timespec="seconds")


def _encode_groups(groups: Sequence[str]) -> str:
    """`,a,b,` (sorted), or '' for the whole tenant: one LIKE finds a member group."""
    return f",{','.join(sorted(set(groups)))}," if groups else ""


def _decode_groups(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(g for g in value.split(",") if g)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _record(row: sa.Row[str, str, str, str, str]) -> SourceRecord:
    return SourceRecord(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4])
