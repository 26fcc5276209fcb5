"""The audit trail's contract on every metadata database: SQLite and PostgreSQL.

An intact log verifies; any edit, deletion or reordering of records is found, and the
first bad record named; retention cuts the oldest records without breaking the chain; an
unreachable database spools records and the next write appends them in order.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from governance.audit import AuditEvent, AuditLog

pytestmark = pytest.mark.integration


@pytest.fixture
def url(metadata_url: str) -> str:
    return metadata_url


@pytest.fixture
def audit(url: str, tmp_path: Path) -> Iterator[AuditLog]:
    log = AuditLog(url, tmp_path / "audit-spool.jsonl")
    yield log
    log.close()


def _event(n: int, at: datetime | None = None) -> AuditEvent:
    return AuditEvent(
        action="ask",
        principal=f"key{n}",
        tenant="acme",
        outcome="ok",
        documents=(f"doc{n}.md",),
        model="local-smollm2",
        route="default",
        cost_usd=0.001 * n,
        detail={"status": 200},
        at=at or datetime.now(UTC),
    )


def _fill(audit: AuditLog, n: int = 5) -> None:
    for i in range(1, n + 1):
        audit.record(_event(i))


def _sql(url: str, statement: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as db:
        for part in statement.split(";"):
            db.execute(sa.text(part))
    engine.dispose()


def test_an_intact_log_verifies(audit: AuditLog) -> None:
    assert audit.verify().ok  # empty
    _fill(audit)
    result = audit.verify()
    assert (result.ok, result.records, result.head_seq) == (True, 5, 5)


@pytest.mark.parametrize(
    ("tamper", "first_bad"),
    [
        ("UPDATE audit_log SET outcome = 'denied' WHERE seq = 3", 3),
        ("UPDATE audit_log SET cost_usd = 0 WHERE seq = 2", 2),
        ("UPDATE audit_log SET documents = '[]' WHERE seq = 4", 4),
        ("DELETE FROM audit_log WHERE seq = 3", 3),
        ("DELETE FROM audit_log WHERE seq = 5", 5),  # the tail: the head still says 5
        # reorder: records 2 and 3 swap places (their sequence numbers)
        (
            "UPDATE audit_log SET seq = -2 WHERE seq = 2; UPDATE audit_log SET seq = 2 "
            "WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = -2",
            2,
        ),
    ],
)
def test_any_edit_deletion_or_reordering_names_the_first_bad_record(
    audit: AuditLog, url: str, tamper: str, first_bad: int
) -> None:
    _fill(audit)
    _sql(url, tamper)
    result = audit.verify()
    assert not result.ok
    assert result.first_bad == first_bad, result.reason


def test_a_rehashed_edit_still_breaks_the_next_link(audit: AuditLog, url: str) -> None:
    """Editing a record and recomputing its own hash is not enough: the next record
    links to the old hash."""
    from governance.audit import chain_hash

    _fill(audit)
    record = next(r for r in audit.records() if r.seq == 2)
    forged = AuditEvent(
        "ask",
        record.principal,
        record.tenant,
        "denied",
        record.documents,
        record.model,
        record.route,
        record.cost_usd,
        record.detail,
        record.at,
    )
    digest = chain_hash(record.prev_hash, 2, record.at, forged)
    _sql(url, f"UPDATE audit_log SET outcome = 'denied', hash = '{digest}' WHERE seq = 2")
    result = audit.verify()
    assert (result.ok, result.first_bad) == (False, 3)


def test_export_since_writes_jsonl_with_the_chain(audit: AuditLog) -> None:
    old = datetime.now(UTC) - timedelta(days=10)
    audit.record(_event(1, at=old))
    _fill(audit, 2)
    out = io.StringIO()
    assert audit.export(out, since=datetime.now(UTC) - timedelta(days=1)) == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == [2, 3]
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    assert set(lines[0]) >= {
        "at",
        "action",
        "principal",
        "tenant",
        "documents",
        "model",
        "route",
        "cost_usd",
        "outcome",
    }


def test_retention_cuts_the_oldest_records_and_the_chain_still_verifies(
    audit: AuditLog,
) -> None:
    now = datetime.now(UTC)
    for i in range(1, 4):
        audit.record(_event(i, at=now - timedelta(days=100 - i)))
    _fill(audit, 2)
    assert audit.purge_before(now - timedelta(days=30)) == 3
    assert [r.seq for r in audit.records()] == [4, 5]
    assert audit.verify().ok
    audit.record(_event(9))
    assert audit.verify().ok
    assert audit.purge_before(now + timedelta(days=1)) == 3  # everything
    assert audit.verify().ok


def test_concurrent_writers_keep_one_chain(audit: AuditLog, url: str, tmp_path: Path) -> None:
    """Two logs on one database (two replicas) and threads in each: no fork, no gap."""
    other = AuditLog(url, tmp_path / "other-spool.jsonl")

    def write(log: AuditLog) -> None:
        for i in range(10):
            log.record(_event(i))

    threads = [threading.Thread(target=write, args=(log,)) for log in (audit, other) * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    result = audit.verify()
    assert (result.ok, result.records) == (True, 40), result.reason


def test_an_unreachable_database_spools_and_the_next_write_catches_up(
    tmp_path: Path,
) -> None:
    path = tmp_path / "metadata.sqlite3"
    audit = AuditLog(f"sqlite:///{path}", tmp_path / "spool.jsonl")
    audit.RETRY_AFTER_S = 0.0  # retry the database at every record
    audit.record(_event(1))
    _sql(f"sqlite:///{path}", "ALTER TABLE audit_log RENAME TO audit_gone")  # an outage
    audit.record(_event(2))
    audit.record(_event(3))
    assert audit.spooled() == 2
    _sql(f"sqlite:///{path}", "ALTER TABLE audit_gone RENAME TO audit_log")
    audit.record(_event(4))
    assert audit.spooled() == 0
    assert [r.principal for r in audit.records()] == ["key1", "key2", "key3", "key4"]
    assert audit.verify().ok
    audit.close()
