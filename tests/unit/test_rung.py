"""The answering rung is a closed set: listed in the OpenAPI contract, the same strings on
the wire and in the ledger as before it was a type."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from api.schemas import AskResponse, ProvenanceOut
from core.types import LedgerEntry, Provenance, Rung
from gateway.ledger import SqlLedger


def test_the_rungs_and_which_of_them_the_cache_serves() -> None:
    assert [r.value for r in Rung] == ["llm", "extractive", "cache", "stale-cache"]
    assert {r for r in Rung if r.from_cache} == {Rung.CACHE, Rung.STALE_CACHE}


def test_the_api_lists_the_rungs_and_sends_their_strings() -> None:
    schema = AskResponse.model_json_schema()
    assert schema["$defs"]["Rung"]["enum"] == ["llm", "extractive", "cache", "stale-cache"]
    out = ProvenanceOut.of(Provenance(rung=Rung.STALE_CACHE, model="m", route="r"))
    assert json.loads(out.model_dump_json())["rung"] == "stale-cache"


def test_the_ledger_stores_the_rung_value_and_counts_both_cache_rungs(tmp_path: Path) -> None:
    ledger = SqlLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    at = datetime(2026, 11, 27, 9, tzinfo=UTC)
    for rung in Rung:
        ledger.record(LedgerEntry(at, "acme", "m", rung))
    (line,) = ledger.report()
    assert (line.requests, line.cache_hits) == (4, 2)
    with ledger._engine.connect() as connection:  # the column holds the plain strings
        stored = connection.exec_driver_sql("SELECT rung FROM llm_ledger ORDER BY id").all()
    assert [row[0] for row in stored] == ["llm", "extractive", "cache", "stale-cache"]
    ledger.close()
