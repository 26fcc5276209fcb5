"""One contract for the cost ledger on every database it runs on: SQLite and PostgreSQL.

The same SQLAlchemy models serve both. PostgreSQL is the real server at 127.0.0.1:5432
(trust auth); without one its cases skip with the reason, and under CI (CI=true) they fail
instead. The databases are `metadata_url`'s (tests/contract/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from core.types import LedgerEntry, Rung
from gateway.ledger import SqlLedger

pytestmark = pytest.mark.integration


@pytest.fixture
def ledger(metadata_url: str) -> Iterator[SqlLedger]:
    ledger = SqlLedger(metadata_url)
    yield ledger
    ledger.close()


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def test_spend_sums_per_tenant_since_a_moment(ledger: SqlLedger) -> None:
    for at, tenant, cost in [
        (_at(26, 23), "acme", 5.0),
        (_at(27, 1), "acme", 0.25),
        (_at(27, 9), "acme", 0.5),
        (_at(27, 9), "globex", 9.0),
    ]:
        ledger.record(LedgerEntry(at, tenant, "gpt-4.1", Rung.LLM, 1000, 100, cost_usd=cost))
    assert ledger.spent("acme", _at(27, 0)) == pytest.approx(0.75)
    assert ledger.spent("acme", _at(1, 0)) == pytest.approx(5.75)
    assert ledger.spent("nobody", _at(1, 0)) == 0.0


def test_the_report_groups_by_day_tenant_and_model_with_cache_savings(
    ledger: SqlLedger,
) -> None:
    llm, cache = Rung.LLM, Rung.CACHE
    ledger.record(LedgerEntry(_at(27, 9), "acme", "gpt-4.1", llm, 1000, 100, cost_usd=0.01))
    ledger.record(LedgerEntry(_at(27, 10), "acme", "gpt-4.1", llm, 2000, 300, cost_usd=0.02))
    ledger.record(
        LedgerEntry(_at(27, 11), "acme", "gpt-4.1", cache, saved_usd=0.02, saved_tokens=2300)
    )
    ledger.record(LedgerEntry(_at(26, 8), "acme", "extractive", Rung.EXTRACTIVE))
    lines = ledger.report()
    assert [(x.day, x.model) for x in lines] == [
        (date(2026, 11, 27), "gpt-4.1"),
        (date(2026, 11, 26), "extractive"),
    ]
    today = lines[0]
    assert (today.requests, today.input_tokens, today.output_tokens) == (3, 3000, 400)
    assert today.cost_usd == pytest.approx(0.03)
    assert (today.cache_hits, today.saved_tokens) == (1, 2300)
    assert today.saved_usd == pytest.approx(0.02)
    assert ledger.report(since=_at(27, 0), tenant="globex") == []
