"""What the pipeline reports about itself: Prometheus metrics and OpenTelemetry spans.

Room-neutral, so retrieval, the gateway and the API record into one place without knowing
each other: `stage(Stage.SEARCH)` times a stage into a histogram and, when tracing is on,
opens a span under whatever span is current (the HTTP request's, from FastAPI). The
counters helpers (`record_usage`, `count_cache`, `count_answer`, ...) keep label values
bounded: closed sets are enums, models are catalog names, tenants appear only when the
operator turned `observability.tenant_labels` on.

The metrics live in one `CollectorRegistry` per process, of our own (not
prometheus_client's global one), built on first use. Several apps in one process (tests)
share it; a server process serves one app. `api.observability` configures it (tracer,
tenant labels) and serves it at `/metrics`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.errors import QueueError
from core.types import JobState, Rung, Usage

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from prometheus_client.metrics_core import Metric

    from core.ports import JobQueue

#: The route label of requests no route matched (404s, refused hosts): one value however
#: many distinct paths are probed.
UNMATCHED_ROUTE = "unmatched"
#: The tenant label when `tenant_labels` is off.
ANY_TENANT = "-"

#: Seconds; from a cached hit (~1 ms) to a slow local model (tens of seconds).
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

AttributeValue = str | int | float | bool


class Stage(StrEnum):
    """A timed step of the query path (the `stage` label, and span `rag.<stage>`)."""

    EMBED = "embed"  # the dense query embedding
    SPARSE = "sparse"  # the BM25 query vector
    SEARCH = "search"  # the store query (prefetch + fusion in the engine)
    RERANK = "rerank"
    CACHE = "cache"  # the semantic answer cache lookup
    GENERATE = "generate"  # the answer, whichever rung gives it
    MODEL = "model"  # one model call of the gateway's chain, retries included
    PLAN = "plan"  # the agentic mode's decomposition of a question
    AGENT = "agent"  # one sub-question of the agentic mode, answered


class CacheResult(StrEnum):
    HIT = "hit"
    MISS = "miss"
    STALE = "stale"  # an expired answer served because retrieval failed
    ERROR = "error"  # the lookup failed; the request went on without the cache


class Degradation(StrEnum):
    """Why an answer came from a lower rung than the one routed to."""

    MODELS_FAILED = "models-failed"  # every model of the chain failed: extractive
    UNGROUNDED = "ungrounded"  # a model answer failed the citation check: replaced
    RETRIEVAL_FAILED = "retrieval-failed"  # the store failed: a stale cached answer


@dataclass(slots=True)
class RequestRecord:
    """What one HTTP request learns on its way (its id, the rung that answered), shared
    with the code it calls through a context variable (threads of `run_in_threadpool`
    copy the context, so they write to the same record)."""

    request_id: str
    rung: Rung | None = None
    # What the audit trail records of the request (api/audit.py): what it touched, the
    # model and route that answered, what it cost; the text only if configured.
    documents: tuple[str, ...] = ()
    model: str = ""
    route: str = ""
    cost_usd: float = 0.0
    text: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


_request: ContextVar[RequestRecord | None] = ContextVar("rag_request", default=None)


def begin_request(record: RequestRecord) -> Token[RequestRecord | None]:
    return _request.set(record)


def end_request(token: Token[RequestRecord | None]) -> None:
    _request.reset(token)


def current_request() -> RequestRecord | None:
    """The HTTP request being served, if any (None in the CLI, jobs and MCP over stdio)."""
    return _request.get()


class Telemetry:
    """The process's metrics and tracer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.tenant_labels = False
        self.tracer: Tracer | None = None
        r = self.registry
        self.http_seconds = Histogram(
            "rag_http_request_duration_seconds",
            "HTTP requests: seconds to the end of the response body (streams included)",
            ["method", "route", "status_class", "tenant"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge(
            "rag_http_requests_in_flight", "HTTP requests being served", registry=r
        )
        stage_seconds = Histogram(
            "rag_stage_duration_seconds",
            "Query pipeline stages (embed, sparse, search, rerank, cache, generate, model)",
            ["stage"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.stage_seconds = {s: stage_seconds.labels(s.value) for s in Stage}
        self.tokens = Counter(
            "rag_llm_tokens", "LLM tokens by catalog model", ["model", "kind", "tenant"], registry=r
        )
        self.cost = Counter(
            "rag_llm_cost_usd", "LLM spend in USD by catalog model", ["model", "tenant"], registry=r
        )
        cache = Counter(
            "rag_cache_lookups", "Semantic answer cache lookups", ["result"], registry=r
        )
        self.cache = {c: cache.labels(c.value) for c in CacheResult}
        answers = Counter("rag_answers", "Answers given, by ladder rung", ["rung"], registry=r)
        self.answers = {rung: answers.labels(rung.value) for rung in Rung}
        self.degraded = Counter(
            "rag_degraded_answers",
            "Answers from a lower rung than routed, by rung and reason",
            ["rung", "reason"],
            registry=r,
        )
        self.fallbacks = Counter(
            "rag_llm_fallbacks",
            "Model calls that failed, so the chain moved on (or down to extractive)",
            ["model"],
            registry=r,
        )

    def tenant(self, tenant: str) -> str:
        """The tenant label value: the tenant only when the operator asked for it."""
        return tenant if self.tenant_labels else ANY_TENANT


_lock = threading.Lock()
_telemetry: Telemetry | None = None


def telemetry() -> Telemetry:
    """The process's telemetry, built on first use."""
    global _telemetry
    if _telemetry is None:
        with _lock:
            if _telemetry is None:
                _telemetry = Telemetry()
    return _telemetry


def configure(*, tenant_labels: bool, tracer_provider: TracerProvider | None) -> Telemetry:
    """Set what the settings decide (the app factory calls this); no provider, no spans."""
    t = telemetry()
    t.tenant_labels = tenant_labels
    t.tracer = None if tracer_provider is None else tracer_provider.get_tracer("rag")
    return t


# -- stages ----------------------------------------------------------------------------


class StageTimer:
    """A stage that outlives one call (a streamed answer): `end()` it when done. Its span
    is started under the current one but never made current, since a stream resumes in
    other threads and contexts."""

    __slots__ = ("_done", "_span", "_stage", "_start", "_telemetry")

    def __init__(self, stage: Stage, attributes: Mapping[str, AttributeValue]) -> None:
        self._telemetry = telemetry()
        self._stage = stage
        tracer = self._telemetry.tracer
        self._span: Span | None = (
            None if tracer is None else tracer.start_span(f"rag.{stage}", attributes=attributes)
        )
        self._start = time.perf_counter()
        self._done = False

    @property
    def span(self) -> Span | None:
        return self._span

    def end(self, error: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        self._telemetry.stage_seconds[self._stage].observe(time.perf_counter() - self._start)
        if self._span is not None:
            if error is not None:
                _record_error(self._span, error)
            self._span.end()


def open_stage(stage: Stage, **attributes: AttributeValue) -> StageTimer:
    return StageTimer(stage, attributes)


@contextmanager
def stage(stage: Stage, **attributes: AttributeValue) -> Iterator[None]:
    """Time `stage` into its histogram; with tracing, a span `rag.<stage>` around it
    (current inside, so nested stages and model calls become its children). Attributes
    must be bounded values (a model name, a mode, a count), never the question."""
    timer = StageTimer(stage, attributes)
    current: AbstractContextManager[object] = nullcontext()
    if timer.span is not None:
        from opentelemetry import trace

        current = trace.use_span(timer.span, end_on_exit=False, record_exception=False)
    with current:
        try:
            yield
        except BaseException as exc:
            timer.end(exc)
            raise
    timer.end()


def _record_error(span: Span, error: BaseException) -> None:
    from opentelemetry.trace import StatusCode

    kind = type(error).__qualname__
    span.set_attribute("error.type", kind)
    span.set_status(StatusCode.ERROR, kind)  # the type only: messages can quote input


# -- counters --------------------------------------------------------------------------


def record_usage(model: str, usage: Usage, cost_usd: float, tenant: str) -> None:
    """Tokens and spend of one model answer (`model` is a catalog name: bounded)."""
    t = telemetry()
    who = t.tenant(tenant)
    if usage.input_tokens:
        t.tokens.labels(model, "input", who).inc(usage.input_tokens)
    if usage.output_tokens:
        t.tokens.labels(model, "output", who).inc(usage.output_tokens)
    if cost_usd:
        t.cost.labels(model, who).inc(cost_usd)


def count_cache(result: CacheResult) -> None:
    telemetry().cache[result].inc()


def count_answer(rung: Rung) -> None:
    """An answer was given; the HTTP request serving it (if any) logs its rung."""
    telemetry().answers[rung].inc()
    record = _request.get()
    if record is not None:
        record.rung = rung


def note(
    *,
    documents: Iterable[str] | None = None,
    text: str | None = None,
    model: str | None = None,
    route: str | None = None,
    cost_usd: float | None = None,
    **detail: object,
) -> None:
    """Tell the HTTP request being served (if any) what it touched, for the audit trail."""
    record = _request.get()
    if record is None:
        return
    if documents is not None:
        record.documents = tuple(dict.fromkeys(documents))  # unique, in order
    if text is not None:
        record.text = text
    if model is not None:
        record.model = model
    if route is not None:
        record.route = route
    if cost_usd is not None:
        record.cost_usd = cost_usd
    record.detail.update(detail)


def count_degraded(rung: Rung, reason: Degradation) -> None:
    telemetry().degraded.labels(rung.value, reason.value).inc()


def count_fallback(model: str) -> None:
    telemetry().fallbacks.labels(model).inc()


# -- the ingest queue, read at scrape time ---------------------------------------------


class JobQueueCollector(Collector):
    """Ingest jobs by state and the queue depth, read from the queue when scraped (so a
    Redis queue shared with workers elsewhere is reported as it is). `queue` returns None
    while the app has not started."""

    def __init__(self, queue: Callable[[], JobQueue | None]) -> None:
        self._queue = queue

    def describe(self) -> list[Metric]:
        return []  # names are only known at collect time: no duplicate check to do

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("rag_ingest_queue_up", "1 when the job queue answered the scrape")
        queue = self._queue()
        try:
            counts = queue.counts() if queue is not None else None
        except QueueError:
            counts = None
        up.add_metric([], 0 if counts is None else 1)
        yield up
        if counts is None:
            return
        jobs = GaugeMetricFamily(
            "rag_ingest_jobs",
            "Ingest jobs by state (queued and running now; terminal ones since counting began)",
            labels=["state"],
        )
        for state in JobState:
            jobs.add_metric([state.value], counts.get(state, 0))
        yield jobs
        yield GaugeMetricFamily(
            "rag_ingest_queue_depth", "Ingest jobs waiting", value=counts.get(JobState.QUEUED, 0)
        )
