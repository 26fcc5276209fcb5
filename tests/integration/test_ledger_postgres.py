"""The cost ledger on the real PostgreSQL (127.0.0.1:5432, trust auth), and on SQLite.

The same SQLAlchemy models serve both; this runs the ledger contract on each. PostgreSQL
skips with a reason where none runs; under CI (CI=true) it must run, never skip.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.types import LedgerEntry, RequestContext
from gateway.ledger import SqlLedger

pytestmark = pytest.mark.integration
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _postgres_schema() -> Iterator[str]:
    """A throwaway schema on the real server, dropped afterwards."""
    engine = sa.create_engine(PG_URL)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        if os.environ.get("CI") == "true":
            raise AssertionError(f"CI needs PostgreSQL at {PG_URL}: {exc}") from exc
        pytest.skip(f"no PostgreSQL at {PG_URL}; start one to run this test")
    schema = f"ledger_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlLedger]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
        ledger = SqlLedger(url)
        yield ledger
        ledger.close()
        return
    schemas = _postgres_schema()
    url = next(schemas)
    ledger = SqlLedger(url)
    yield ledger
    ledger.close()
    next(schemas, None)


def _at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def test_spend_sums_per_tenant_since_a_moment(ledger: SqlLedger) -> None:
    for at, tenant, cost in [
        (_at(26, 23), "acme", 5.0),
        (_at(27, 1), "acme", 0.25),
        (_at(27, 9), "acme", 0.5),
        (_at(27, 9), "globex", 9.0),
    ]:
        ledger.record(LedgerEntry(at, tenant, "gpt-4.1", "llm", 1000, 100, cost_usd=cost))
    assert ledger.spent("acme", _at(27, 0)) == pytest.approx(0.75)
    assert ledger.spent("acme", _at(1, 0)) == pytest.approx(5.75)
    assert ledger.spent("nobody", _at(1, 0)) == 0.0


def test_the_report_groups_by_day_tenant_and_model_with_cache_savings(
    ledger: SqlLedger,
) -> None:
    ledger.record(LedgerEntry(_at(27, 9), "acme", "gpt-4.1", "llm", 1000, 100, cost_usd=0.01))
    ledger.record(LedgerEntry(_at(27, 10), "acme", "gpt-4.1", "llm", 2000, 300, cost_usd=0.02))
    ledger.record(
        LedgerEntry(_at(27, 11), "acme", "gpt-4.1", "cache", saved_usd=0.02, saved_tokens=2300)
    )
    ledger.record(LedgerEntry(_at(26, 8), "acme", "extractive", "extractive"))
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


def test_the_costs_command_reports_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from core.settings import get_settings

    ledger = SqlLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    now = datetime.now(UTC)
    ledger.record(LedgerEntry(now, "acme", "gpt-4.1", "llm", 1200, 300, cost_usd=0.0048))
    ledger.record(LedgerEntry(now, "acme", "gpt-4.1", "cache", saved_usd=0.0048))
    ledger.record(LedgerEntry(now, "globex", "claude-haiku", "llm", 800, 100, cost_usd=0.0013))
    ledger.close()
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "160")  # rich would cut the table at 80 columns
    get_settings.cache_clear()
    try:
        table = CliRunner().invoke(app, ["costs", "--days", "2"])
        lines = CliRunner().invoke(app, ["costs", "--json", "--tenant", "acme"])
    finally:
        get_settings.cache_clear()
    assert table.exit_code == 0, table.output
    assert "globex" in table.output
    assert "0.0061" in table.output  # the total spend
    rows = [json.loads(line) for line in lines.output.splitlines()]
    assert [(r["tenant"], r["model"], r["requests"], r["cache_hits"]) for r in rows] == [
        ("acme", "gpt-4.1", 2, 1)
    ]


def test_a_database_outage_never_fails_an_answer(tmp_path: Path) -> None:
    """PostgreSQL (or the SQLite file) gone after start: the answer is served on a cheap
    rung, the lost ledger row is logged, and the ledger's own errors are LedgerErrors."""
    from core.errors import LedgerError
    from core.settings import LlmSettings
    from gateway.catalog import Catalog, RoutingPolicy
    from gateway.gateway import LlmGateway
    from retrieval.extractive import ExtractiveGenerator
    from tests.fakes import ScriptedChatModel, model_spec
    from tests.unit.test_gateway import PASSAGES, QUESTION

    ledger = SqlLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger._engine.dispose()
    ledger._engine = sa.create_engine(  # the server went away: nothing listens there
        "postgresql+psycopg://postgres@127.0.0.1:1/test", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(LedgerError):
        ledger.spent("acme", _at(1, 0))
    catalog = Catalog(
        version=1,
        models=(model_spec("strong", 10.0, "strong"), model_spec("cheap", 1.0, "cheap")),
        routing=RoutingPolicy(),
    )
    cheap = ScriptedChatModel("cheap", ["Ids are uuid5 hashes of source and content [1]."])
    strong = ScriptedChatModel("strong", ["Strong answer [1]."])
    gateway = LlmGateway(
        catalog,
        LlmSettings(backoff_base_s=0),
        {"cheap": cheap, "strong": strong},
        ledger,
        ExtractiveGenerator(),
        sleep=lambda _: None,
    )
    answer = gateway.generate(QUESTION, PASSAGES, RequestContext("acme"))
    assert answer.found
    assert answer.provenance is not None
    assert answer.provenance.rung == "llm"
    assert answer.provenance.model == "cheap"  # spend unknown: the soft-budget route
    ledger.close()
