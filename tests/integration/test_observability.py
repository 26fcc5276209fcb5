"""Metrics, traces and access logs of the real app (TestClient over the embedded stack)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

import api.observability
from api.app import create_app
from api.wiring import build_app_context
from core.settings import ObservabilitySettings, Settings
from core.telemetry import UNMATCHED_ROUTE, configure, telemetry
from core.types import Role
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import discover
from tests.services import keys_settings

pytestmark = pytest.mark.integration

QUESTION = "Which vector store is the default?"


def _ingest(settings: Settings, corpus: Path) -> None:
    context = build_app_context(settings)
    context.documents.ingest(discover(corpus, SUPPORTED_SUFFIXES), corpus)
    context.close()  # the app opens the shard itself


@pytest.fixture
def client(settings: Settings, sample_corpus: Path) -> Iterator[TestClient]:
    _ingest(settings, sample_corpus)
    with TestClient(create_app(settings)) as client:
        yield client


def _scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _value(name: str, **labels: str) -> float:
    return telemetry().registry.get_sample_value(name, labels) or 0.0


def _requests(route: str, status_class: str, method: str = "GET") -> float:
    labels = {"method": method, "route": route, "status_class": status_class, "tenant": "-"}
    return _value("rag_http_request_duration_seconds_count", **labels)


def test_requests_are_counted_by_route_template_and_status_class(client: TestClient) -> None:
    health, missing = (
        _requests("/healthz", "2xx"),
        _requests("/v1/documents/{source}", "4xx", "DELETE"),
    )
    assert client.get("/healthz").status_code == 200
    assert client.delete("/v1/documents/notes/secret-plan.md").status_code == 404
    metrics = _scrape(client)
    labels = {"method": "DELETE", "route": "/v1/documents/{source}", "status_class": "4xx"}
    key = ("rag_http_request_duration_seconds_count", frozenset({**labels, "tenant": "-"}.items()))
    assert metrics[key] == missing + 1
    assert _requests("/healthz", "2xx") == health + 1
    assert not any("secret-plan" in value for _, labels_ in metrics for _, value in labels_)
    assert metrics[("rag_ingest_queue_up", frozenset())] == 1
    assert ("rag_ingest_queue_depth", frozenset()) in metrics


def test_a_thousand_random_paths_share_one_route_label(client: TestClient) -> None:
    before = _requests(UNMATCHED_ROUTE, "4xx")
    probes = [f"/{secrets.token_hex(6)}/{secrets.token_hex(4)}" for _ in range(1000)]
    for path in probes:
        assert client.get(path).status_code == 404
    assert _requests(UNMATCHED_ROUTE, "4xx") == before + 1000
    routes = {
        labels["route"]
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for sample in family.samples
        for labels in [sample.labels]
        if "route" in labels
    }
    assert not any(path.split("/")[1] in route for path in probes for route in routes)
    assert len(routes) < 20


def test_search_and_ask_count_their_stages_and_rung(client: TestClient) -> None:
    stages = ("embed", "sparse", "search", "generate")
    before = {s: _value("rag_stage_duration_seconds_count", stage=s) for s in stages}
    answers = _value("rag_answers_total", rung="extractive")
    assert client.post("/v1/search", json={"query": "fusion"}).status_code == 200
    assert client.post("/v1/ask", json={"question": QUESTION}).status_code == 200
    after = {s: _value("rag_stage_duration_seconds_count", stage=s) for s in stages}
    assert after["embed"] == before["embed"] + 2
    assert after["sparse"] == before["sparse"] + 2
    assert after["search"] == before["search"] + 2
    assert after["generate"] == before["generate"] + 1
    assert _value("rag_answers_total", rung="extractive") == answers + 1


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.fields for r in caplog.records if r.name == "rag.access"]  # type: ignore[attr-defined]


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The JSON handler stops propagation: hand caplog's handler to the logger itself."""
    logger = logging.getLogger("rag.access")
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)


def test_one_access_line_per_request_with_the_rung(
    client: TestClient, access_log: pytest.LogCaptureFixture
) -> None:
    response = client.post("/v1/ask", json={"question": QUESTION})
    (line,) = _access_lines(access_log)
    assert line["request_id"] == response.headers["x-request-id"]
    assert (line["method"], line["route"], line["status"]) == ("POST", "/v1/ask", 200)
    assert (line["tenant"], line["rung"]) == ("default", "extractive")
    assert isinstance(line["latency_ms"], float)
    assert line["latency_ms"] > 0
    assert QUESTION not in str(line)
    access_log.clear()
    client.get("/nope")
    (line,) = _access_lines(access_log)
    assert (line["route"], line["status"], line["tenant"], line["rung"]) == (
        UNMATCHED_ROUTE,
        404,
        None,
        None,
    )


def test_a_stream_is_timed_to_its_end_and_left_intact(
    client: TestClient, access_log: pytest.LogCaptureFixture
) -> None:
    response = client.post("/v1/ask/stream", json={"question": "How are chunk ids made?"})
    assert response.status_code == 200
    assert response.text.startswith("event: token\n")
    assert "event: answer" in response.text
    (line,) = _access_lines(access_log)
    assert line["route"] == "/v1/ask/stream"
    assert line["rung"] == "extractive"
    assert isinstance(line["ttfb_ms"], float)
    assert isinstance(line["latency_ms"], float)
    assert line["latency_ms"] >= line["ttfb_ms"]


def test_the_request_id_is_echoed_and_a_hostile_one_replaced(client: TestClient) -> None:
    sane = client.get("/healthz", headers={"X-Request-ID": "edge-42.a"})
    assert sane.headers["x-request-id"] == "edge-42.a"
    for hostile in ("x" * 200, "<script>alert(1)</script>", "a b"):
        rid = client.get("/healthz", headers={"X-Request-ID": hostile}).headers["x-request-id"]
        assert rid != hostile
        assert len(rid) == 32
    refused = client.get("/healthz", headers={"Host": "evil.example"})
    assert refused.status_code == 400
    assert len(refused.headers["x-request-id"]) == 32


def test_metrics_need_the_admin_role(tmp_path: Path) -> None:
    settings = keys_settings(tmp_path, "metrics", 1000)
    context = build_app_context(settings)
    _, admin = context.keys.create("acme", Role.ADMIN, [], None)
    _, reader = context.keys.create("acme", Role.READER, [], None)
    context.close()
    with TestClient(create_app(settings)) as client:
        assert client.get("/metrics").status_code == 401
        denied = client.get("/metrics", headers={"Authorization": f"Bearer {reader}"})
        assert denied.status_code == 403
        allowed = client.get("/metrics", headers={"Authorization": f"Bearer {admin}"})
        assert allowed.status_code == 200
        assert "rag_http_request_duration_seconds_bucket" in allowed.text


def test_tenant_labels_only_when_asked(settings: Settings) -> None:
    labelled = settings.model_copy(
        update={"observability": ObservabilitySettings(tenant_labels=True, log_json=False)}
    )

    def scrapes(tenant: str) -> float:
        return _value(
            "rag_http_request_duration_seconds_count",
            method="GET",
            route="/metrics",
            status_class="2xx",
            tenant=tenant,
        )

    try:
        with TestClient(create_app(labelled)) as client:
            before, anonymous = scrapes("default"), scrapes("-")
            client.get("/metrics")
            client.get("/metrics")
            assert scrapes("default") == before + 2
            assert scrapes("-") == anonymous
    finally:
        configure(tenant_labels=False, tracer_provider=None)


# -- traces ----------------------------------------------------------------------------


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    monkeypatch.setattr(
        api.observability, "span_processor", lambda _: SimpleSpanProcessor(exporter)
    )
    yield exporter
    configure(tenant_labels=False, tracer_provider=None)


def _ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        above = by_id[parent.span_id]
        names.append(above.name)
        parent = above.parent
    return names


def test_an_ask_is_one_trace_from_the_http_span_down_to_the_stages(
    settings: Settings, sample_corpus: Path, spans: InMemorySpanExporter
) -> None:
    _ingest(settings, sample_corpus)
    with TestClient(create_app(settings)) as client:
        spans.clear()
        response = client.post("/v1/ask", json={"question": QUESTION})
        assert response.status_code == 200
    finished = spans.get_finished_spans()
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert server.name == "POST /v1/ask"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/ask"
    assert server.attributes["rag.request_id"] == response.headers["x-request-id"]
    assert server.attributes["url.path"] == "REDACTED"
    by_id = {s.context.span_id: s for s in finished}
    stages = {s.name: s for s in finished if s.name.startswith("rag.")}
    assert {"rag.embed", "rag.sparse", "rag.search", "rag.generate"} <= set(stages)
    for span in stages.values():
        assert span.context.trace_id == server.context.trace_id
        assert server.name in _ancestors(span, by_id)
    for span in finished:
        assert QUESTION not in str(dict(span.attributes or {}))
