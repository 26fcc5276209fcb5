"""The audit trail: an append-only, hash-chained log of who did what, in the metadata DB
(`metadata.models.AuditRow` and `ChainRow`, migrated by Alembic; RAG_DATABASE_URL).

Each record holds the action (ask, search, ingest, delete, key, admin...), the principal
(its key id, never a secret), the tenant, the documents touched, the model and route, the
cost and the outcome. Record n stores `hash_n = sha256(hash_{n-1} + canonical(record_n))`
with its sequence number inside, so `verify()` finds the first record that was edited,
removed or moved: an edit breaks that record's hash, a removal leaves a gap in the
sequence, a reordering breaks both. One `audit_chain` row holds the head (the last sequence
number and hash): appends lock it (`SELECT ... FOR UPDATE` on PostgreSQL, `BEGIN IMMEDIATE`
on SQLite), which serialises writers across replicas and exposes a truncated tail.

What this cannot do: someone with write access to the database can rewrite the whole
chain and its head consistently. The defence is to ship records out as they come
(`rag audit export --since ...` into a SIEM, or the head hash to a write-once store),
where a rewritten chain no longer matches what was exported. See docs/governance.md.

Document text and secrets are not stored: a record names documents by source id; the
question is stored only with `store_text` (RAG_AUDIT__STORE_TEXT=true).

When the database is unreachable, records go to a spool file (one JSON line each, flushed
and fsynced) and are appended, in order, by the next write that reaches the database: an
outage delays the log, it never loses a record or fails the request it describes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core.errors import ConfigError, LedgerError
from metadata.database import create_engine, sqlite_immediate, upgrade
from metadata.models import AuditRow, ChainRow

log = logging.getLogger(__name__)

#: The "previous hash" of the first record of a chain.
GENESIS = "0" * 64
_CHAIN_ID = 1


_LOG = AuditRow.__table__
_CHAIN = ChainRow.__table__


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """What happened, before it has a place in the chain."""

    action: str
    principal: str
    tenant: str | None
    outcome: str
    documents: tuple[str, ...] = ()
    model: str = ""
    route: str = ""
    cost_usd: float = 0.0
    detail: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """A record as stored: the event, its sequence number and its link in the chain."""

    seq: int
    at: datetime  # aware UTC
    action: str
    principal: str
    tenant: str | None
    outcome: str
    documents: tuple[str, ...]
    model: str
    route: str
    cost_usd: float
    detail: Mapping[str, Any]
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["documents"] = list(self.documents)
        data["detail"] = dict(self.detail)
        return data


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of `verify`: `first_bad` names the first record that does not hold."""

    ok: bool
    records: int
    first_seq: int
    head_seq: int
    first_bad: int | None = None
    reason: str = ""


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _canonical(seq: int, at: datetime, event: AuditEvent | AuditRecord) -> str:
    """The bytes a record's hash covers: every field, its sequence number included."""
    return json.dumps(
        {
            "seq": seq,
            "at": _naive_utc(at).isoformat(timespec="microseconds"),
            "action": event.action,
            "principal": event.principal,
            "tenant": event.tenant,
            "outcome": event.outcome,
            "documents": list(event.documents),
            "model": event.model,
            "route": event.route,
            "cost_usd": repr(float(event.cost_usd)),
            "detail": dict(event.detail),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        default=str,
    )


def chain_hash(prev_hash: str, seq: int, at: datetime, event: AuditEvent | AuditRecord) -> str:
    payload = f"{prev_hash}\n{_canonical(seq, at, event)}"
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


class AuditLog:
    """The audit trail on any SQLAlchemy database (the metadata DB: SQLite or PostgreSQL)."""

    #: After a failed write, records go straight to the spool for this long: an outage must
    #: not make every request's thread wait for a connection timeout in turn.
    RETRY_AFTER_S = 5.0

    def __init__(self, url: str, spool: Path, *, store_text: bool = False) -> None:
        self.store_text = store_text
        self._spool = spool
        self._lock = threading.Lock()  # this process's writers: one append at a time
        self._down_until = 0.0
        upgrade(url)
        try:
            connect_args = {"connect_timeout": 3} if url.startswith("postgresql") else {}
            self._engine = create_engine(url, connect_args=connect_args)
            if self._engine.dialect.name == "sqlite":
                sqlite_immediate(self._engine)
            self._ensure_chain()
        except (SQLAlchemyError, ImportError) as exc:
            raise ConfigError(f"cannot open the audit log at {url}: {exc}") from exc

    def _ensure_chain(self) -> None:
        """The head row, made once (two replicas starting together: one insert wins)."""
        try:
            with self._engine.begin() as db:
                found = db.execute(sa.select(ChainRow.id).where(ChainRow.id == _CHAIN_ID))
                if found.first() is None:
                    db.execute(
                        sa.insert(ChainRow).values(
                            id=_CHAIN_ID,
                            first_seq=1,
                            first_prev=GENESIS,
                            head_seq=0,
                            head_hash=GENESIS,
                        )
                    )
        except IntegrityError:
            pass  # another process made it first

    # -- writing ---------------------------------------------------------------------

    def record(self, event: AuditEvent) -> None:
        """Append `event` (after any spooled ones); spool it when the database is down."""
        with self._lock:
            if time.monotonic() < self._down_until:
                self._write_spool(event)
                return
            pending = [*self._read_spool(), event]
            try:
                self._append(pending)
            except SQLAlchemyError as exc:
                log.warning("audit log unreachable (%s): record spooled to %s", exc, self._spool)
                self._down_until = time.monotonic() + self.RETRY_AFTER_S
                self._write_spool(event)
                return
            if len(pending) > 1:
                self._spool.unlink(missing_ok=True)

    def _append(self, events: Sequence[AuditEvent]) -> None:
        with self._engine.begin() as db:
            head = db.execute(
                sa.select(ChainRow.head_seq, ChainRow.head_hash)
                .where(ChainRow.id == _CHAIN_ID)
                .with_for_update()
            ).one()
            seq, prev = int(head.head_seq), str(head.head_hash)
            rows = []
            for event in events:
                seq += 1
                at = _naive_utc(event.at)
                digest = chain_hash(prev, seq, at, event)
                rows.append(
                    {
                        "seq": seq,
                        "at": at,
                        "action": event.action,
                        "principal": event.principal,
                        "tenant": event.tenant,
                        "documents": json.dumps(list(event.documents)),
                        "model": event.model,
                        "route": event.route,
                        "cost_usd": float(event.cost_usd),
                        "outcome": event.outcome,
                        "detail": json.dumps(dict(event.detail), default=str),
                        "prev_hash": prev,
                        "hash": digest,
                    }
                )
                prev = digest
            db.execute(sa.insert(AuditRow), rows)
            db.execute(
                sa.update(ChainRow)
                .where(ChainRow.id == _CHAIN_ID)
                .values(head_seq=seq, head_hash=prev)
            )

    def _write_spool(self, event: AuditEvent) -> None:
        line = json.dumps({**asdict(event), "at": event.at.isoformat()}, default=str)
        self._spool.parent.mkdir(parents=True, exist_ok=True)
        with self._spool.open("a", encoding="utf-8") as spool:
            spool.write(line + "\n")
            spool.flush()
            os.fsync(spool.fileno())

    def _read_spool(self) -> list[AuditEvent]:
        if not self._spool.exists():
            return []
        events = []
        for line in self._spool.read_text(encoding="utf-8").splitlines():
            try:
                data = json.loads(line)
                data["at"] = datetime.fromisoformat(data["at"])
                data["documents"] = tuple(data["documents"])
                events.append(AuditEvent(**data))
            except (ValueError, KeyError, TypeError):  # a torn last line of a crash
                log.warning("audit spool: skipped an unreadable line")
        return events

    def spooled(self) -> int:
        """Records waiting for the database (readiness reports them)."""
        return len(self._read_spool())

    # -- reading ---------------------------------------------------------------------

    def records(self, since: datetime | None = None) -> Generator[AuditRecord]:
        """Records in chain order, from `since` (aware or naive UTC) when given."""
        query = sa.select(_LOG).order_by(_LOG.c.seq)
        if since is not None:
            query = query.where(_LOG.c.at >= _naive_utc(since))
        with self._engine.connect() as db:
            result = db.execute(query.execution_options(yield_per=500))
            try:
                for row in result:
                    yield _record(row)
            finally:  # a reader that stops early must not leave a server-side cursor open
                result.close()

    def export(self, out: IO[str], since: datetime | None = None) -> int:
        """JSONL for a SIEM, hashes included (so the receiver can check the chain)."""
        count = 0
        for record in self.records(since):
            out.write(json.dumps(record.as_json(), ensure_ascii=False) + "\n")
            count += 1
        return count

    def verify(self) -> Verification:
        """Walk the chain from its first kept record to its head; stop at the first
        record that is not where, or what, it was written."""
        with self._engine.connect() as db:
            chain = db.execute(sa.select(_CHAIN).where(_CHAIN.c.id == _CHAIN_ID)).one()
            first, prev, head = int(chain.first_seq), str(chain.first_prev), int(chain.head_seq)
        with closing(self.records()) as records:  # an early return closes the cursor
            return self._walk(records, first, prev, head, str(chain.head_hash))

    @staticmethod
    def _walk(
        records: Iterator[AuditRecord], first: int, prev: str, head: int, head_hash: str
    ) -> Verification:
        expected, count = first, 0

        def broken(seq: int, reason: str) -> Verification:
            return Verification(False, count, first, head, seq, reason)

        for record in records:
            if record.seq < first:
                return broken(record.seq, "a record before the chain's start (reinserted?)")
            if record.seq != expected:
                return broken(expected, f"record {expected} is missing (next is {record.seq})")
            if record.prev_hash != prev:
                return broken(record.seq, "its link to the previous record does not match")
            if chain_hash(prev, record.seq, record.at, record) != record.hash:
                return broken(record.seq, "its content does not match its hash (edited)")
            prev, expected, count = record.hash, expected + 1, count + 1
        if expected - 1 != head:
            return broken(expected, f"records {expected}..{head} are missing at the end")
        if prev != head_hash and head >= first:
            return broken(head, "the head hash does not match the last record")
        return Verification(True, count, first, head)

    # -- retention -------------------------------------------------------------------

    def purge_before(self, cutoff: datetime) -> int:
        """Remove the oldest records written before `cutoff`, keeping the chain checkable:
        the chain's start moves to the first record kept, with the hash it links to."""
        cutoff = _naive_utc(cutoff)
        with self._lock, self._engine.begin() as db:
            chain = db.execute(
                sa.select(_CHAIN).where(_CHAIN.c.id == _CHAIN_ID).with_for_update()
            ).one()
            # Only a prefix may go: the first record at or after the cutoff ends it.
            stop = db.execute(
                sa.select(sa.func.min(AuditRow.seq)).where(AuditRow.at >= cutoff)
            ).scalar()
            last = (int(stop) - 1) if stop is not None else int(chain.head_seq)
            if last < int(chain.first_seq):
                return 0
            link = db.execute(sa.select(AuditRow.hash).where(AuditRow.seq == last)).scalar_one()
            removed = db.execute(sa.delete(AuditRow).where(AuditRow.seq <= last)).rowcount
            db.execute(
                sa.update(ChainRow)
                .where(ChainRow.id == _CHAIN_ID)
                .values(first_seq=last + 1, first_prev=link)
            )
        return int(removed or 0)

    def ping(self) -> None:
        try:
            with self._engine.connect() as db:
                db.execute(sa.text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise LedgerError(f"the audit log's database is unreachable: {exc}") from exc

    def close(self) -> None:
        self._engine.dispose()


def _record(row: sa.Row[Any]) -> AuditRecord:
    return AuditRecord(
        seq=int(row.seq),
        at=row.at.replace(tzinfo=UTC),
        action=row.action,
        principal=row.principal,
        tenant=row.tenant,
        outcome=row.outcome,
        documents=tuple(json.loads(row.documents or "[]")),
        model=row.model or "",
        route=row.route or "",
        cost_usd=float(row.cost_usd or 0.0),
        detail=json.loads(row.detail or "{}"),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
