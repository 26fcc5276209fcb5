"""Routing decisions: sensitivity, tenant rules, budgets, complexity, cost and latency."""

from __future__ import annotations

import pytest

from core.types import RequestContext, Sensitivity
from gateway.catalog import Catalog, ModelSpec, RoutingPolicy
from gateway.routing import BudgetState, LatencyTracker, RouteDecision, Router
from tests.fakes import model_spec


def spec(name: str, price: float, *tags: str) -> ModelSpec:
    return model_spec(name, price, *tags, output_ratio=4.0)


MODELS = (
    spec("local", 0.0, "private", "cheap"),
    spec("mini", 0.4, "cheap"),
    spec("big", 2.0, "strong"),
    spec("huge", 3.0, "strong"),
)


def _router(strategy: str = "rules", **policy: object) -> Router:
    catalog = Catalog(
        version=1,
        models=MODELS,
        routing=RoutingPolicy(
            strategy=strategy,  # type: ignore[arg-type]
            complex_min_words=12,
            complex_markers=("compare", "why"),
            **policy,  # type: ignore[arg-type]
        ),
    )
    return Router(catalog, [m.name for m in MODELS])


def _names(decision: RouteDecision) -> list[str]:
    return [m.name for m in decision.chain]


def test_a_simple_question_tries_cheap_models_first_cheapest_first() -> None:
    decision = _router().decide("What is the chunk size?", RequestContext())
    assert _names(decision) == ["local", "mini", "big", "huge"]
    assert "simple question" in decision.reason


@pytest.mark.parametrize(
    "question",
    [
        "Why does hybrid search beat dense search here?",
        "Compare blue/green re-indexing with in-place updates.",
        "What happens to the chunks of a document when its file changes and it is re-ingested?",
    ],
)
def test_a_complex_question_tries_strong_models_first(question: str) -> None:
    decision = _router().decide(question, RequestContext())
    assert _names(decision) == ["huge", "big", "local", "mini"]
    assert "complex question" in decision.reason


def test_confidential_data_only_reaches_private_models() -> None:
    context = RequestContext(sensitivity=Sensitivity.CONFIDENTIAL)
    decision = _router().decide("Why?", context)
    assert _names(decision) == ["local"]
    assert "confidential" in decision.reason


def test_a_private_tenant_is_always_confidential() -> None:
    router = _router(private_tenants=frozenset({"bank"}))
    assert _names(router.decide("What is it?", RequestContext(tenant="bank"))) == ["local"]
    assert len(router.decide("What is it?", RequestContext(tenant="shop")).chain) == 4


def test_over_the_soft_budget_only_cheap_models_serve() -> None:
    decision = _router().decide("Why is that?", RequestContext(tenant="t"), BudgetState.SOFT)
    assert _names(decision) == ["local", "mini"]
    assert "soft budget" in decision.reason


def test_over_the_hard_budget_no_model_serves() -> None:
    decision = _router().decide("What?", RequestContext(tenant="t"), BudgetState.HARD)
    assert decision.chain == ()
    assert "hard budget" in decision.reason


def test_confidential_over_soft_budget_with_no_cheap_private_model_gets_no_model() -> None:
    catalog = Catalog(version=1, models=(spec("onprem-big", 0.0, "private", "strong"),))
    router = Router(catalog, ["onprem-big"])
    context = RequestContext(sensitivity=Sensitivity.CONFIDENTIAL)
    decision = router.decide("What?", context, BudgetState.SOFT)
    assert decision.chain == ()
    assert "no eligible model" in decision.reason


def test_cost_strategy_orders_by_the_price_of_a_typical_request() -> None:
    decision = _router("cost").decide("Why compare?", RequestContext())
    assert _names(decision) == ["local", "mini", "big", "huge"]


def test_latency_strategy_tries_unmeasured_models_then_the_fastest() -> None:
    router = _router("latency")
    for name, ms in [("local", 900.0), ("mini", 300.0), ("big", 500.0)]:
        router.latency.observe(name, ms)
    assert _names(router.decide("q", RequestContext())) == ["huge", "mini", "big", "local"]


def test_latency_tracker_is_an_exponential_moving_average() -> None:
    tracker = LatencyTracker(alpha=0.5)
    tracker.observe("m", 100.0)
    tracker.observe("m", 300.0)
    assert tracker.estimate("m") == pytest.approx(200.0)
    assert tracker.estimate("other") is None


def test_data_residency_routes_to_private_models_only_whatever_is_active() -> None:
    catalog = Catalog(version=1, models=MODELS)
    router = Router(catalog, [m.name for m in MODELS], private_only=True)
    decision = router.decide("Why compare these two?", RequestContext())
    assert _names(decision) == ["local"]
    assert "data residency" in decision.reason
    hosted_only = Router(catalog, ["mini", "big"], private_only=True)
    assert hosted_only.decide("What?", RequestContext()).chain == ()
