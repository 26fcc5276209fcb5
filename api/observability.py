"""The HTTP side of observability: request ids, one JSON log line per request, the
Prometheus `/metrics` route, and the OpenTelemetry configuration FastAPI traces with.

- `telemetry_config` builds the tracer provider the settings ask for (none by default:
  FastAPI's native telemetry then stays out of the request path entirely) and hands the
  same provider to `core.telemetry`, so stage spans are children of FastAPI's HTTP span.
  FastAPI's own metrics and logs stay off (Prometheus and `rag.access` do those), and so
  does its environment auto-configuration: nothing is exported unless the settings say so.
- `RequestObserver` is a pure ASGI middleware (streams pass through untouched): request
  id, the request histogram by route *template*, the access log line.
- `/metrics` needs the admin role (in auth mode `none`, the local principal is an admin
  and only loopback connections are served); see docs/adr/0018.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from opentelemetry.context import Context as OtelContext
from opentelemetry.sdk.trace import Span, SpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.security import Admin
from core import telemetry
from core.telemetry import UNMATCHED_ROUTE, JobQueueCollector, RequestRecord, Telemetry

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig
    from opentelemetry.sdk.trace import TracerProvider

    from core.ports import JobQueue
    from core.settings import ObservabilitySettings, Settings

ACCESS_LOG = "rag.access"
REQUEST_ID_HEADER = "x-request-id"
#: An incoming request id is kept when it looks like one (a proxy's or a client's):
#: bounded, and only characters that are safe in a log line and a header.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REDACTED = "REDACTED"


# -- traces ----------------------------------------------------------------------------


def span_processor(settings: ObservabilitySettings) -> SpanProcessor | None:
    """Where spans go: the exporter of `observability.tracing` (None when off). Tests
    replace this function to collect spans in memory."""
    if settings.tracing == "off":
        return None
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    if settings.tracing == "console":
        return BatchSpanProcessor(ConsoleSpanExporter())
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint))


class _RedactPaths(SpanProcessor):
    """Keeps raw paths and query strings (document names, cursors) out of server spans:
    `http.route`, set when the route is known, names the endpoint."""

    def on_start(self, span: Span, parent_context: OtelContext | None = None) -> None:
        attributes = span.attributes or {}
        for key in ("url.path", "url.query"):
            if key in attributes:
                span.set_attribute(key, _REDACTED)


def tracer_provider(settings: ObservabilitySettings) -> TracerProvider | None:
    processor = span_processor(settings)
    if processor is None:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )
    provider.add_span_processor(_RedactPaths())
    provider.add_span_processor(processor)
    return provider


def telemetry_config(settings: Settings) -> TelemetryConfig:
    """FastAPI's own OpenTelemetry: HTTP and operation spans when tracing is configured,
    into our provider (never the global one); its metrics and logs off."""
    provider = tracer_provider(settings.observability)
    telemetry.configure(
        tenant_labels=settings.observability.tenant_labels, tracer_provider=provider
    )
    tracing = provider is not None
    return {
        "tracer_provider": provider,
        "tracing": tracing,
        "operation_spans": tracing,
        "metrics": False,
        "logs": False,
        "auto_configure": False,
    }


# -- access log ------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class _JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler `install` adds, so a second app in the process adds no other."""


def _configure_access_log(json_lines: bool) -> logging.Logger:
    """`rag.access` at INFO. JSON lines on stderr with their own handler (not propagated,
    so a root handler does not print them twice); otherwise records propagate to the
    handlers the operator configured. uvicorn's own loggers are left alone."""
    logger = logging.getLogger(ACCESS_LOG)
    logger.setLevel(logging.INFO)
    ours = [h for h in logger.handlers if isinstance(h, _JsonHandler)]
    if json_lines and not ours:
        handler = _JsonHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.propagate = False
    elif not json_lines:
        for handler in ours:
            logger.removeHandler(handler)
        logger.propagate = True
    return logger


# -- the middleware --------------------------------------------------------------------


def request_id(scope: Scope) -> str:
    """The caller's `X-Request-ID` when sane, else a new one (a hostile value never
    reaches a log line or a header)."""
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if _SANE_REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route's path template (`/v1/documents/{source:path}` is reported as
    `/v1/documents/{source}`), mount prefixes included; unmatched -> one fixed value."""
    route = scope.get("route")
    path = getattr(route, "path_format", None)
    if not isinstance(path, str):
        return UNMATCHED_ROUTE
    mounted = str(scope.get("root_path", ""))[len(root_path) :]
    return f"{mounted}{path}"


class RequestObserver:
    """Request id in and out, request histogram and in-flight gauge, one access log line.

    Latency is measured to the end of the response body, so a streamed answer counts its
    whole stream; the log line also has `ttfb_ms` (to the response start)."""

    def __init__(self, app: ASGIApp, *, metrics: bool, log: logging.Logger) -> None:
        self.app = app
        self._metrics = metrics
        self._log = log
        self._telemetry: Telemetry = telemetry.telemetry()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = request_id(scope)
        header = (b"x-request-id", rid.encode("ascii"))
        root_path = str(scope.get("root_path", ""))
        record = RequestRecord(rid)
        status = 500  # unless a response starts
        first_byte: float | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status = message["status"]
                first_byte = time.perf_counter()
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        _tag_span(rid)
        token = telemetry.begin_request(record)
        t = self._telemetry
        if self._metrics:
            t.http_in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            telemetry.end_request(token)
            end = time.perf_counter()
            route = route_template(scope, root_path)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            tenant = _tenant(scope)
            if self._metrics:
                t.http_in_flight.dec()
                t.http_seconds.labels(
                    method, route, f"{status // 100}xx", t.tenant(tenant or "")
                ).observe(end - start)
            fields: dict[str, object] = {
                "request_id": rid,
                "method": method,
                "route": route,
                "status": status,
                "latency_ms": round((end - start) * 1000, 3),
                "ttfb_ms": None if first_byte is None else round((first_byte - start) * 1000, 3),
                "tenant": tenant,
                "rung": None if record.rung is None else record.rung.value,
            }
            self._log.info("%s %s %s", method, route, status, extra={"fields": fields})


def _tenant(scope: Scope) -> str | None:
    """The authenticated caller's tenant (`api.security.principal` keeps the principal on
    the request state); None when the request never authenticated."""
    state = scope.get("state")
    who = state.get("principal") if isinstance(state, dict) else None
    tenant = getattr(who, "tenant", None)
    return tenant if isinstance(tenant, str) else None


def _tag_span(rid: str) -> None:
    """Put the request id on FastAPI's server span (when tracing), to find a log line's
    trace and back."""
    from opentelemetry import trace

    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("rag.request_id", rid)


# -- /metrics --------------------------------------------------------------------------


def install(app: FastAPI, settings: Settings) -> None:
    """Add the request-id/logging/metrics middleware (outermost) and `/metrics`."""
    obs = settings.observability
    log = _configure_access_log(obs.log_json)
    app.add_middleware(RequestObserver, metrics=obs.metrics_enabled, log=log)
    if not obs.metrics_enabled:
        return
    # This app's queue, not the process's; read through a weak reference, and served by
    # a module-level endpoint: FastAPI caches endpoints by identity for the life of the
    # process, so a per-app closure here kept every app (and its models) alive.
    own = CollectorRegistry(auto_describe=False)
    ref = weakref.ref(app)
    own.register(JobQueueCollector(lambda: _queue(ref())))
    app.state.queue_metrics = own
    app.add_api_route(
        "/metrics",
        _metrics,
        methods=["GET"],
        tags=["ops"],
        response_class=Response,
        responses={200: {"description": "Prometheus text format", "content": {"text/plain": {}}}},
    )


async def _metrics(request: Request, who: Admin) -> Response:
    """Prometheus metrics of this process (admin role: they describe every tenant's
    traffic, and name tenants when `observability.tenant_labels` is on)."""
    shared = telemetry.telemetry().registry
    own: CollectorRegistry = request.app.state.queue_metrics

    def exposition() -> bytes:
        return generate_latest(shared) + generate_latest(own)

    body = await run_in_threadpool(exposition)  # the queue may be on Redis
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _queue(app: FastAPI | None) -> JobQueue | None:
    context = getattr(app.state, "context", None) if app is not None else None
    return None if context is None else context.jobs
