"""`core.telemetry` and the pure parts of `api.observability`: stage timing and spans,
counters recorded by the gateway and the cache (with fakes), the queue collector, the
access log's JSON and the request id rules."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from api.observability import JsonFormatter, request_id, route_template
from core.errors import ProviderError, QueueError
from core.settings import LlmSettings
from core.telemetry import (
    UNMATCHED_ROUTE,
    JobQueueCollector,
    Stage,
    configure,
    stage,
    telemetry,
)
from core.types import Answer, JobState, Provenance, RequestContext, Rung, Usage
from gateway.cache import SemanticCache
from gateway.catalog import Budgets, Catalog, RoutingPolicy
from gateway.gateway import LlmGateway
from gateway.ledger import SqlLedger
from retrieval.extractive import ExtractiveGenerator
from tests.fakes import HashEmbedder, MemoryStore, ScriptedChatModel, model_spec
from tests.unit.test_gateway import PASSAGES, QUESTION


def _value(name: str, **labels: str) -> float:
    return telemetry().registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    configure(tenant_labels=False, tracer_provider=provider)
    yield exporter
    configure(tenant_labels=False, tracer_provider=None)


def test_a_stage_is_timed_into_its_histogram() -> None:
    before = _value("rag_stage_duration_seconds_count", stage="rerank")
    with stage(Stage.RERANK):
        pass
    assert _value("rag_stage_duration_seconds_count", stage="rerank") == before + 1


def test_stage_spans_nest_and_a_failure_marks_the_span(spans: InMemorySpanExporter) -> None:
    before = _value("rag_stage_duration_seconds_count", stage="model")
    with (
        stage(Stage.GENERATE),
        pytest.raises(ProviderError),
        stage(Stage.MODEL, **{"rag.model": "cheap"}),
    ):
        raise ProviderError("cheap: 503 upstream: secret question text", transient=True)
    finished = {s.name: s for s in spans.get_finished_spans()}
    model, generate = finished["rag.model"], finished["rag.generate"]
    assert model.parent is not None
    assert model.parent.span_id == generate.context.span_id
    assert model.status.status_code is StatusCode.ERROR
    assert model.status.description == "ProviderError"  # the type, never the message
    assert model.attributes is not None
    assert model.attributes["rag.model"] == "cheap"
    assert generate.status.status_code is StatusCode.UNSET
    assert _value("rag_stage_duration_seconds_count", stage="model") == before + 1


def test_without_tracing_no_span_is_made() -> None:
    configure(tenant_labels=False, tracer_provider=None)
    assert telemetry().tracer is None
    with stage(Stage.SEARCH):
        from opentelemetry import trace

        assert not trace.get_current_span().is_recording()


# -- the gateway and the cache record their counters ------------------------------------


CATALOG = Catalog(
    version=1,
    models=(model_spec("strong", 10.0, "strong"), model_spec("cheap", 1.0, "cheap")),
    routing=RoutingPolicy(complex_markers=("compare",)),
    budgets=Budgets(),
)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    ledger = SqlLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield ledger
    ledger.close()


def _gateway(ledger: SqlLedger, *models: ScriptedChatModel) -> LlmGateway:
    return LlmGateway(
        CATALOG,
        LlmSettings(backoff_base_s=0, max_retries=0),
        {m.name: m for m in models},
        ledger,
        ExtractiveGenerator(),
        clock=lambda: datetime(2026, 11, 27, 15, 0, tzinfo=UTC),
        sleep=lambda _: None,
    )


def _fallback_state(model: str) -> tuple[float, float, float]:
    return (
        _value("rag_llm_fallbacks_total", model=model),
        _value("rag_llm_tokens_total", model="cheap", kind="input", tenant="-"),
        _value("rag_llm_cost_usd_total", model="cheap", tenant="-"),
    )


def test_a_failed_model_counts_a_fallback_and_the_next_one_its_tokens(ledger: SqlLedger) -> None:
    fails = ScriptedChatModel("strong", [ProviderError("strong: 503", transient=True)])
    answers = ScriptedChatModel("cheap", ["Chunk ids are uuid5 hashes [1]."], usage=(1000, 100))
    fallbacks, tokens, cost = _fallback_state("strong")
    answer = _gateway(ledger, fails, answers).generate(
        "compare " + QUESTION, PASSAGES, RequestContext(tenant="acme")
    )
    assert answer.provenance is not None
    assert answer.provenance.model == "cheap"
    after = _fallback_state("strong")
    assert after[0] == fallbacks + 1
    assert after[1] == tokens + 1000
    assert after[2] == pytest.approx(cost + 1000 / 1e6 + 100 / 1e6)
    assert _value("rag_llm_tokens_total", model="cheap", kind="input", tenant="acme") == 0


def test_every_model_failing_counts_a_degraded_extractive_answer(ledger: SqlLedger) -> None:
    down = [ProviderError("down", transient=True)]
    before = _value("rag_degraded_answers_total", rung="extractive", reason="models-failed")
    answer = _gateway(
        ledger, ScriptedChatModel("strong", down), ScriptedChatModel("cheap", down)
    ).generate(QUESTION, PASSAGES)
    assert answer.provenance is not None
    assert answer.provenance.rung is Rung.EXTRACTIVE
    after = _value("rag_degraded_answers_total", rung="extractive", reason="models-failed")
    assert after == before + 1


def test_cache_hits_and_misses_are_counted() -> None:
    cache = SemanticCache(MemoryStore(), HashEmbedder(64), threshold=0.9, ttl_s=60)
    answer = Answer(
        QUESTION,
        "uuid5 [1]",
        (),
        found=True,
        generator="cheap",
        provenance=Provenance(Rung.LLM, "cheap", "r", usage=Usage(10, 5), grounded=True),
    )
    hits, misses = (
        _value("rag_cache_lookups_total", result="hit"),
        _value("rag_cache_lookups_total", result="miss"),
    )
    context = RequestContext()
    assert cache.lookup(QUESTION, context, "v1") is None
    cache.put(QUESTION, context, "v1", answer)
    assert cache.lookup(QUESTION, context, "v1") is not None
    assert _value("rag_cache_lookups_total", result="miss") == misses + 1
    assert _value("rag_cache_lookups_total", result="hit") == hits + 1


# -- the queue collector ----------------------------------------------------------------


class _Queue:
    def __init__(self, counts: dict[JobState, int] | None) -> None:
        self._counts = counts

    def counts(self) -> dict[JobState, int]:
        if self._counts is None:
            raise QueueError("redis is down")
        return self._counts


def _collected(collector: JobQueueCollector) -> dict[tuple[str, tuple[str, ...]], float]:
    return {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in collector.collect()
        for sample in family.samples
    }


def test_the_queue_collector_reads_counts_at_scrape_time() -> None:
    queue = _Queue({JobState.QUEUED: 3, JobState.RUNNING: 1, JobState.FAILED: 2})
    found = _collected(JobQueueCollector(lambda: queue))  # type: ignore[arg-type,return-value]
    assert found[("rag_ingest_queue_up", ())] == 1
    assert found[("rag_ingest_queue_depth", ())] == 3
    assert found[("rag_ingest_jobs", ("running",))] == 1
    assert found[("rag_ingest_jobs", ("succeeded",))] == 0
    queue._counts = {JobState.QUEUED: 0}
    assert _collected(JobQueueCollector(lambda: queue))[("rag_ingest_queue_depth", ())] == 0  # type: ignore[arg-type,return-value]


def test_a_queue_that_is_down_reports_up_zero_and_no_counts() -> None:
    found = _collected(JobQueueCollector(lambda: _Queue(None)))  # type: ignore[arg-type,return-value]
    assert found == {("rag_ingest_queue_up", ()): 0}
    assert _collected(JobQueueCollector(lambda: None)) == {("rag_ingest_queue_up", ()): 0}


# -- access log and request ids ---------------------------------------------------------


def test_the_access_log_is_one_json_line_with_its_fields() -> None:
    record = logging.LogRecord(
        "rag.access", logging.INFO, __file__, 1, "POST %s", ("/v1/ask",), None
    )
    record.fields = {"request_id": "abc", "status": 200, "latency_ms": 1.5, "rung": "llm"}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    body = json.loads(line)
    assert body["msg"] == "POST /v1/ask"
    assert (body["request_id"], body["status"], body["rung"]) == ("abc", 200, "llm")
    assert body["ts"].endswith("+00:00")


def _scope(*headers: tuple[bytes, bytes]) -> dict[str, object]:
    return {"type": "http", "headers": list(headers)}


@pytest.mark.parametrize(
    "hostile",
    [b"x" * 65, b"a b", b"id\r\nset-cookie: 1", b"<script>", b"", "é".encode(), b"id\x00"],
)
def test_a_hostile_request_id_is_replaced(hostile: bytes) -> None:
    rid = request_id(_scope((b"x-request-id", hostile)))
    assert rid != hostile.decode("latin-1")
    assert len(rid) == 32
    assert int(rid, 16) >= 0


def test_a_sane_request_id_is_kept_and_a_missing_one_made() -> None:
    assert request_id(_scope((b"x-request-id", b"lb-7f3a.2:9_x"))) == "lb-7f3a.2:9_x"
    first, second = request_id(_scope()), request_id(_scope())
    assert first != second


def test_an_unmatched_request_has_one_route_label() -> None:
    assert route_template({"path": "/random/abc"}, "") == UNMATCHED_ROUTE
