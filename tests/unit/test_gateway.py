"""The gateway's ladder, budgets and grounding checks, with scripted chat models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import ProviderError
from core.settings import LlmSettings
from core.types import (
    NOT_FOUND,
    Chunk,
    LedgerEntry,
    RequestContext,
    Rung,
    ScoredChunk,
    Sensitivity,
)
from gateway.catalog import Catalog, RoutingPolicy
from gateway.gateway import LlmGateway
from gateway.ledger import SqlLedger
from retrieval.extractive import ExtractiveGenerator
from tests.fakes import ScriptedChatModel, model_spec

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
PASSAGES = [
    ScoredChunk(
        Chunk(
            id=f"c{i}",
            source=f"doc{i}.md",
            text=text,
            title=f"Doc {i}",
            section="Intro",
            page=None,
            index=0,
            content_hash=f"h{i}",
        ),
        1.0 - i / 10,
    )
    for i, text in enumerate(
        [
            "Chunk ids are uuid5 hashes of the source and the content hash.",
            "Blue/green re-indexing switches an alias atomically.",
        ],
        1,
    )
]
QUESTION = "How are chunk ids made?"


CATALOG = Catalog(
    version=1,
    models=(model_spec("strong", 10.0, "strong"), model_spec("cheap", 1.0, "cheap")),
    routing=RoutingPolicy(complex_markers=("compare",)),
    budgets={"default": {"daily_soft_usd": 1.0, "daily_hard_usd": 2.0}},  # type: ignore[arg-type]
)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    ledger = SqlLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield ledger
    ledger.close()


def _gateway(ledger: SqlLedger, *models: ScriptedChatModel, **settings: object) -> LlmGateway:
    return LlmGateway(
        CATALOG,
        LlmSettings(backoff_base_s=0, **settings),  # type: ignore[arg-type]
        {m.name: m for m in models},
        ledger,
        ExtractiveGenerator(),
        clock=lambda: NOW,
        sleep=lambda _: None,
    )


def test_a_grounded_answer_records_model_route_cost_and_citations(ledger: SqlLedger) -> None:
    cheap = ScriptedChatModel("cheap", ["Ids are uuid5 hashes of source and content [1]."])
    answer = _gateway(ledger, cheap).generate(QUESTION, PASSAGES)
    p = answer.provenance
    assert p is not None
    assert (p.rung, p.model, p.grounded) == ("llm", "cheap", True)
    assert "simple question" in p.route
    assert p.cost_usd == pytest.approx(1100 / 1e6)
    assert [c.source for c in answer.citations] == ["doc1.md"]
    assert ledger.spent("default", NOW.replace(hour=0)) == pytest.approx(p.cost_usd)


def test_wrong_and_missing_citations_are_flagged(ledger: SqlLedger) -> None:
    reply = "Ids are hashes [1]. Aliases switch atomically [7]. Nothing else matters."
    answer = _gateway(ledger, ScriptedChatModel("cheap", [reply])).generate(QUESTION, PASSAGES)
    p = answer.provenance
    assert p is not None
    assert p.grounded is False
    assert p.invalid_citations == (7,)
    assert p.uncited_sentences == ("Nothing else matters.",)
    assert [c.number for c in answer.citations] == [1]


def test_not_found_from_the_model_is_an_abstention(ledger: SqlLedger) -> None:
    answer = _gateway(ledger, ScriptedChatModel("cheap", ["NOT_FOUND"])).generate(
        QUESTION, PASSAGES
    )
    assert not answer.found
    assert answer.text == NOT_FOUND
    assert answer.citations == ()
    assert answer.provenance is not None
    assert (answer.provenance.rung, answer.provenance.model) == (Rung.LLM, "cheap")


def test_transient_errors_are_retried_on_the_same_model(ledger: SqlLedger) -> None:
    busy = ProviderError("cheap: HTTP 429", transient=True, status=429)
    cheap = ScriptedChatModel("cheap", [busy, "Hashes [1]."])
    answer = _gateway(ledger, cheap).generate(QUESTION, PASSAGES)
    assert answer.provenance is not None
    assert answer.provenance.model == "cheap"
    assert cheap.calls == 2
    assert any("retry 1" in a for a in answer.provenance.attempts)


def test_a_4xx_falls_back_to_the_next_model_without_retrying(ledger: SqlLedger) -> None:
    bad = ProviderError("cheap: HTTP 400", transient=False, status=400)
    cheap = ScriptedChatModel("cheap", [bad])
    strong = ScriptedChatModel("strong", ["Hashes [1]."])
    answer = _gateway(ledger, cheap, strong).generate(QUESTION, PASSAGES)
    assert answer.provenance is not None
    assert answer.provenance.model == "strong"
    assert cheap.calls == 1
    assert answer.provenance.attempts[0] == "cheap: HTTP 400"


def test_every_model_down_degrades_to_the_extractive_answer(ledger: SqlLedger) -> None:
    down = ProviderError("cannot connect", transient=True)
    models = [ScriptedChatModel("strong", [down]), ScriptedChatModel("cheap", [down])]
    answer = _gateway(ledger, *models, max_retries=1).generate(
        "Compare how chunk ids are made", PASSAGES
    )
    p = answer.provenance
    assert p is not None
    assert p.rung == "extractive"
    assert "every model failed" in p.route
    assert answer.found
    assert answer.citations
    assert [m.calls for m in models] == [2, 2]
    assert ledger.report()[0].model == "extractive"


def test_the_breaker_skips_a_dead_model_after_repeated_failures(ledger: SqlLedger) -> None:
    down = ProviderError("cannot connect", transient=True)
    cheap = ScriptedChatModel("cheap", [down])
    gateway = _gateway(ledger, cheap, max_retries=0, breaker_failures=2)
    for _ in range(4):
        gateway.generate(QUESTION, PASSAGES)
    assert cheap.calls == 2  # the last two requests did not even try it
    assert gateway.breakers["cheap"].state == "open"


def test_confidential_requests_without_a_private_model_never_reach_a_model(
    ledger: SqlLedger,
) -> None:
    cheap = ScriptedChatModel("cheap", ["leaked [1]."])
    context = RequestContext(sensitivity=Sensitivity.CONFIDENTIAL)
    answer = _gateway(ledger, cheap).generate(QUESTION, PASSAGES, context)
    assert cheap.calls == 0
    assert answer.provenance is not None
    assert answer.provenance.rung == "extractive"
    assert "private models only" in answer.provenance.route


@pytest.mark.parametrize(
    ("spent", "served_by"),
    [(0.5, "strong"), (1.2, "cheap"), (2.5, "extractive")],
)
def test_budgets_soft_routes_cheaper_and_hard_goes_extractive(
    ledger: SqlLedger, spent: float, served_by: str
) -> None:
    ledger.record(LedgerEntry(NOW.replace(hour=9), "acme", "strong", Rung.LLM, cost_usd=spent))
    ledger.record(  # yesterday's spend does not count against today
        LedgerEntry(NOW.replace(day=26), "acme", "strong", Rung.LLM, cost_usd=100.0)
    )
    models = [ScriptedChatModel("strong", ["A [1]."]), ScriptedChatModel("cheap", ["B [1]."])]
    answer = _gateway(ledger, *models).generate(
        "Compare chunk ids", PASSAGES, RequestContext(tenant="acme")
    )
    assert answer.provenance is not None
    assert answer.provenance.model == served_by


def test_no_passages_means_no_model_call(ledger: SqlLedger) -> None:
    cheap = ScriptedChatModel("cheap", ["x"])
    answer = _gateway(ledger, cheap).generate(QUESTION, [])
    assert cheap.calls == 0
    assert not answer.found


def test_streaming_falls_back_before_the_first_token(ledger: SqlLedger) -> None:
    broken = ScriptedChatModel("cheap", ["never sent [1]."], break_after=0)
    strong = ScriptedChatModel("strong", ["Ids are uuid5 hashes [1]."])
    events = list(_gateway(ledger, broken, strong, max_retries=0).stream(QUESTION, PASSAGES))
    tokens = "".join(e.text for e in events if e.kind == "token")
    assert tokens == "Ids are uuid5 hashes [1]."
    final = events[-1].answer
    assert final is not None
    assert final.provenance is not None
    assert final.provenance.model == "strong"
    assert final.provenance.grounded is True


def test_a_stream_cut_after_the_first_token_keeps_that_models_partial_answer(
    ledger: SqlLedger,
) -> None:
    flaky = ScriptedChatModel("cheap", ["Ids are uuid5 hashes [1]."], break_after=2)
    strong = ScriptedChatModel("strong", ["other [1]."])
    events = list(_gateway(ledger, flaky, strong, max_retries=0).stream(QUESTION, PASSAGES))
    final = events[-1].answer
    assert final is not None
    assert final.provenance is not None
    assert final.provenance.model == "cheap"
    assert "cut short" in final.provenance.attempts[-1]
    assert strong.calls == 0


def test_streaming_with_every_model_down_streams_the_extractive_answer(
    ledger: SqlLedger,
) -> None:
    broken = ScriptedChatModel("cheap", ["x"], break_after=0)
    events = list(_gateway(ledger, broken, max_retries=0).stream(QUESTION, PASSAGES))
    assert [e.kind for e in events] == ["token", "answer"]
    assert events[-1].answer is not None
    assert events[-1].answer.provenance is not None
    assert events[-1].answer.provenance.rung == "extractive"


def test_require_grounding_replaces_an_uncited_answer_and_keeps_its_cost(
    ledger: SqlLedger,
) -> None:
    cheap = ScriptedChatModel("cheap", ["Ids are made somehow."])
    answer = _gateway(ledger, cheap, require_grounding=True).generate(QUESTION, PASSAGES)
    p = answer.provenance
    assert p is not None
    assert p.rung == "extractive"
    assert "ungrounded LLM answer replaced" in p.route
    assert "answer not grounded" in p.attempts[-1]
    assert p.cost_usd == pytest.approx(1100 / 1e6)
    assert answer.citations
    assert ledger.spent("default", NOW.replace(hour=0)) == pytest.approx(p.cost_usd)


def test_with_private_residency_a_hosted_model_never_answers(ledger: SqlLedger) -> None:
    catalog = Catalog(
        version=1, models=(model_spec("onprem", 0.0, "private", "cheap"), *CATALOG.models)
    )
    hosted = ScriptedChatModel("cheap", ["Ids are uuid5 hashes of source and content [1]."])
    onprem = ScriptedChatModel("onprem", ["Ids are uuid5 hashes of source and content [1]."])
    gateway = LlmGateway(
        catalog,
        LlmSettings(backoff_base_s=0, residency="private"),
        {m.name: m for m in (hosted, onprem)},
        ledger,
        ExtractiveGenerator(),
        clock=lambda: NOW,
        sleep=lambda _: None,
    )
    answer = gateway.generate(QUESTION, PASSAGES)
    assert answer.provenance is not None
    assert answer.provenance.model == "onprem"
    assert "data residency" in answer.provenance.route
    assert hosted.calls == 0


def test_with_private_residency_a_hosted_model_is_refused_at_start(tmp_path: Path) -> None:
    from components import build_components
    from core.errors import ConfigError
    from core.settings import Settings

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        data_dir=tmp_path,
        llm=LlmSettings(
            enabled=True, models=["local-smollm2", "gpt-4.1-mini"], residency="private"
        ),
    )
    with pytest.raises(ConfigError, match=r"refuses hosted models: gpt-4\.1-mini"):
        _ = build_components(settings).chat_models
