"""`rag plan` end to end: the committed benchmark JSONs, the ledger of a fresh data folder
and the catalog's prices, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from core.settings import Settings, get_settings
from eval.capacity import BENCHMARKS, load_report
from tests.services import cli_env


def _plan(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    from api.cli import app

    for key, value in cli_env(settings, COLUMNS=300).items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(app, ["plan", *args])
    finally:
        get_settings.cache_clear()


def test_plan_json_for_100k_chunks_is_near_what_was_measured(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _plan(settings, monkeypatch, "--documents", "100000", "--avg-chars", "600", "--json")
    assert run.exit_code == 0, run.output
    plan = {e["name"]: e for e in json.loads(run.output)}
    measured = load_report(BENCHMARKS / "bench-scale.json")["sizes"]["100000"]
    assert plan["vectors"]["value"] == 100_000
    assert plan["qdrant_ram_mb"]["value"] == pytest.approx(measured["serving_rss_mb"], rel=0.2)
    assert plan["llm_usd_a_month"]["constants"]["price_in"].endswith("(catalog gpt-4.1-mini)")
    assert "prompt shape" in plan["llm_usd_a_month"]["constants"]["tokens_in"]  # empty ledger
    for estimate in plan.values():
        assert estimate["formula"]


def test_plan_prints_each_formula(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _plan(settings, monkeypatch, "--documents", "5000000", "--quantization", "int8")
    assert run.exit_code == 0, run.output
    assert "qdrant_nodes" in run.output
    assert "bench-scale int8" in run.output


def test_plan_names_an_unknown_model_and_a_missing_benchmark(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run = _plan(settings, monkeypatch, "--documents", "10", "--llm", "no-such-model")
    assert run.exit_code == 1
    assert "not in the catalog" in run.output
    run = _plan(settings, monkeypatch, "--documents", "10", "--benchmarks", str(tmp_path))
    assert run.exit_code == 1
    assert "no benchmark at" in run.output
