"""The HTTP side of observability: request ids, one JSON log line per request, the
Prometheus `/metrics` route, and the OpenTelemetry configuration FastAPI traces with."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from fastapi.telemetry import TelemetryConfig

    from core.settings import Settings


def telemetry_config(settings: Settings) -> TelemetryConfig:
    """FastAPI's own OpenTelemetry: off unless tracing is configured."""
    return {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


def install(app: FastAPI, settings: Settings) -> None:
    """Add the request-id/logging/metrics middleware (outermost) and `/metrics`."""
