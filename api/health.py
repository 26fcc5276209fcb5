"""Liveness and readiness: what a load balancer or a kubelet asks before sending traffic.

`/healthz` (liveness) only says the process serves. `/readyz` checks each dependency a
request needs, each in a worker thread under a short deadline, so one hung dependency
cannot hang the probe:

- required: the vector store (a count), the job queue (its counts: Redis answers), the
  metadata databases in use (the key store in `keys` mode, the cost ledger with the LLM);
  any failure makes the service *not ready* (503), and the body names it;
- optional: the LLM models. With the LLM on, at least one model must answer (a model
  listing, no tokens spent); when none does the service still answers extractively, so it
  stays ready and reports itself *degraded*;
- optional: disk, the free space of the volumes writes land on (`RAG_STORE__MIN_FREE_MB`).
  Below it uploads are refused but queries are served: *degraded*.

The body names parts and error kinds, never URLs or credentials: probes are anonymous.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING

import anyio
from anyio import to_thread
from pydantic import BaseModel

from core.diskspace import require_free
from core.errors import RagError

if TYPE_CHECKING:
    from api.wiring import AppContext

#: Per check; a kubelet's default probe timeout is 1 s, so probes should set theirs above.
CHECK_TIMEOUT_S = 2.0


class Readiness(StrEnum):
    READY = "ready"
    DEGRADED = "degraded"  # serving, with a part down (e.g. extractive answers only)
    NOT_READY = "not_ready"


class Check(BaseModel):
    ok: bool
    latency_ms: float
    required: bool
    error: str | None = None


class ReadyReport(BaseModel):
    status: Readiness
    checks: dict[str, Check]


async def readiness(context: AppContext, timeout_s: float | None = None) -> ReadyReport:
    """Run every check concurrently (each under `timeout_s`, default `CHECK_TIMEOUT_S`);
    the report says which parts are down."""
    timeout_s = CHECK_TIMEOUT_S if timeout_s is None else timeout_s
    probes: dict[str, tuple[Callable[[], object], bool]] = {
        "store": (context.store.count, True),
        "queue": (context.jobs.counts, True),
        "disk": (lambda: require_free(context.volumes, context.settings.store.min_free_mb), False),
    }
    if context.settings.auth.mode == "keys":
        probes["database"] = (context.keys.ping, True)
    if context.settings.llm.enabled:
        probes["ledger"] = (context.ledger.ping, True)
        for name, model in context.chat_models.items():
            probes[f"model:{name}"] = (_bind(model.ping, timeout_s), False)
    checks: dict[str, Check] = {}

    async def run(name: str, probe: Callable[[], object], required: bool) -> None:
        guarded = _single_flight((id(context), name), probe)
        if guarded is None:
            checks[name] = Check(
                ok=False, latency_ms=0.0, required=required, error="the last probe still runs"
            )
        else:
            checks[name] = await _check(guarded, required, timeout_s)

    async with anyio.create_task_group() as group:
        for name, (probe, required) in probes.items():
            group.start_soon(run, name, probe, required)
    checks = dict(sorted(checks.items()))
    if not all(c.ok for c in checks.values() if c.required):
        status = Readiness.NOT_READY
    elif _models_down(checks) or _optional_down(checks):
        status = Readiness.DEGRADED
    else:
        status = Readiness.READY
    return ReadyReport(status=status, checks=checks)


#: Probes still running, by (context, check): a dependency that hangs keeps one thread.
_IN_FLIGHT: set[tuple[int, str]] = set()
_IN_FLIGHT_LOCK = threading.Lock()


def _single_flight(
    key: tuple[int, str], probe: Callable[[], object]
) -> Callable[[], object] | None:
    """The probe, marked in flight until it returns; None while an earlier one still runs.
    A hung call cannot be interrupted, so its thread is abandoned at the deadline: without
    this, a flood of `/readyz` calls against a hung dependency would pile up threads."""
    with _IN_FLIGHT_LOCK:
        if key in _IN_FLIGHT:
            return None
        _IN_FLIGHT.add(key)

    def guarded() -> object:
        try:
            return probe()
        finally:
            with _IN_FLIGHT_LOCK:
                _IN_FLIGHT.discard(key)

    return guarded


def _models_down(checks: dict[str, Check]) -> bool:
    models = [c for name, c in checks.items() if name.startswith("model:")]
    return bool(models) and not any(c.ok for c in models)


def _optional_down(checks: dict[str, Check]) -> bool:
    """An optional part other than the models is down (the models count only together)."""
    return any(not c.ok and not c.required for n, c in checks.items() if ":" not in n)


def _bind(ping: Callable[[float], object], timeout_s: float) -> Callable[[], object]:
    return lambda: ping(timeout_s)


async def _check(probe: Callable[[], object], required: bool, timeout_s: float) -> Check:
    start = time.perf_counter()
    error: str | None = None
    try:
        with anyio.fail_after(timeout_s):
            # A hung driver call cannot be interrupted: its thread is left to finish.
            await to_thread.run_sync(probe, abandon_on_cancel=True)
    except TimeoutError:
        error = f"no answer within {timeout_s:g} s"
    except RagError as exc:
        error = type(exc).__name__  # the kind only: the message may hold a URL
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "down"
        error = type(exc).__name__
    latency = round((time.perf_counter() - start) * 1000, 2)
    return Check(ok=error is None, latency_ms=latency, required=required, error=error)
