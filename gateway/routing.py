"""Routing: which catalog models may answer a request, in which order, and why.

The policy comes from the catalog's `[routing]` table. Rules apply in this order, and
each one that fires is written into the decision's reason (returned with the answer and
logged), so "why did this tenant get that model" has an answer:

1. Sensitivity: a confidential request (or a tenant in `private_tenants`) may only reach
   models tagged `private` (on-prem or self-hosted). No private model: extractive answer.
2. Budget: over the tenant's hard limit, no model at all (extractive, zero LLM cost);
   over the soft limit, only `cheap` models.
3. Order, by `strategy`:
   - `rules`: a complex question (long, or with a marker such as "compare", "why") tries
     `strong` models first (priciest first), then the rest; a simple one tries `cheap`
     models first (cheapest first), then the rest.
   - `cost`: cheapest first, by the price of a typical request (2k tokens in, 250 out).
   - `latency`: fastest observed first (an EWMA of successful calls); a model never
     observed goes first, so every model gets measured.
The chain is the fallback order; the gateway walks it, then the extractive generator.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from core.types import RequestContext, Sensitivity
from gateway.catalog import Catalog, ModelSpec


class BudgetState(StrEnum):
    OK = "ok"
    SOFT = "soft"  # over the soft limit: cheap models only
    HARD = "hard"  # over the hard limit: extractive only


@dataclass(frozen=True, slots=True)
class RouteDecision:
    chain: tuple[ModelSpec, ...]
    reason: str
    budget: BudgetState = BudgetState.OK


class LatencyTracker:
    """Exponentially weighted mean latency per model, from successful calls."""

    def __init__(self, alpha: float = 0.3) -> None:
        self._alpha = alpha
        self._mean: dict[str, float] = {}
        self._lock = threading.Lock()

    def observe(self, model: str, ms: float) -> None:
        with self._lock:
            previous = self._mean.get(model)
            self._mean[model] = (
                ms if previous is None else (self._alpha * ms + (1 - self._alpha) * previous)
            )

    def estimate(self, model: str) -> float | None:
        with self._lock:
            return self._mean.get(model)


class Router:
    def __init__(
        self,
        catalog: Catalog,
        active: Sequence[str],
        latency: LatencyTracker | None = None,
        private_only: bool = False,
    ) -> None:
        self._policy = catalog.routing
        self._models = tuple(catalog.get(name) for name in active)
        self._latency = latency or LatencyTracker()
        self._private_only = private_only

    @property
    def latency(self) -> LatencyTracker:
        return self._latency

    def is_complex(self, question: str) -> bool:
        lowered = question.lower()
        return len(question.split()) >= self._policy.complex_min_words or any(
            marker in lowered for marker in self._policy.complex_markers
        )

    def decide(
        self, question: str, context: RequestContext, budget: BudgetState = BudgetState.OK
    ) -> RouteDecision:
        models = list(self._models)
        reasons: list[str] = []
        if self._private_only:  # data residency: checked at start too, enforced per request
            models = [m for m in models if "private" in m.tags]
            reasons.append("data residency: private models only")
        if (
            context.sensitivity is Sensitivity.CONFIDENTIAL
            or context.tenant in self._policy.private_tenants
        ):
            models = [m for m in models if "private" in m.tags]
            reasons.append("confidential data: private models only")
        if budget is BudgetState.HARD:
            reasons.append(f"tenant {context.tenant} over its hard budget: no LLM")
            return RouteDecision((), "; ".join(reasons), budget)
        if budget is BudgetState.SOFT:
            models = [m for m in models if "cheap" in m.tags]
            reasons.append(f"tenant {context.tenant} over its soft budget: cheap models only")
        if not models:
            reasons.append("no eligible model")
            return RouteDecision((), "; ".join(reasons), budget)
        chain, why = self._order(question, models)
        reasons.append(why)
        return RouteDecision(tuple(chain), "; ".join(reasons), budget)

    def _order(self, question: str, models: list[ModelSpec]) -> tuple[list[ModelSpec], str]:
        strategy = self._policy.strategy
        if strategy == "cost":
            return sorted(models, key=lambda m: m.blended_price), "cheapest first"
        if strategy == "latency":

            def observed(m: ModelSpec) -> float:
                return self._latency.estimate(m.name) or 0.0

            return sorted(models, key=observed), "fastest observed first"
        by_price = sorted(models, key=lambda m: m.blended_price)
        if self.is_complex(question):
            strong = sorted(
                (m for m in models if "strong" in m.tags), key=lambda m: -m.blended_price
            )
            rest = [m for m in by_price if m not in strong]
            return strong + rest, "complex question: strong models first"
        cheap = [m for m in by_price if "cheap" in m.tags]
        rest = [m for m in by_price if m not in cheap]
        return cheap + rest, "simple question: cheap models first"
