"""The cost ledger's surroundings: the `rag costs` report, and its database going away.

What the ledger itself does, on SQLite and on the real PostgreSQL, is the contract suite's
(tests/contract/test_ledger.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.types import LedgerEntry, RequestContext, Rung
from gateway.ledger import SqlLedger

pytestmark = pytest.mark.integration


def test_the_costs_command_reports_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from api.cli import app
    from core.settings import get_settings

    ledger = SqlLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    now = datetime.now(UTC)
    ledger.record(LedgerEntry(now, "acme", "gpt-4.1", Rung.LLM, 1200, 300, cost_usd=0.0048))
    ledger.record(LedgerEntry(now, "acme", "gpt-4.1", Rung.CACHE, saved_usd=0.0048))
    ledger.record(LedgerEntry(now, "globex", "claude-haiku", Rung.LLM, 800, 100, cost_usd=0.0013))
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
        ledger.spent("acme", datetime(2026, 11, 1, tzinfo=UTC))
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
    assert answer.provenance.rung is Rung.LLM
    assert answer.provenance.model == "cheap"  # spend unknown: the soft-budget route
    ledger.close()
