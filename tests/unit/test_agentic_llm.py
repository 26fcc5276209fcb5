"""The agentic mode's model calls: the LLM planner and the model router, through the real
gateway and the real openai SDK, with the provider faked at the HTTP boundary
(`httpx2.MockTransport` serving replies in the wire format of
`fixtures/wire/openai_chat_completion.json`, as in test_provider_wire.py). The `ask` is
test_agentic.py's stand-in for RagService.ask."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from pydantic import SecretStr

from core.settings import AgentSettings, LlmSettings, Settings
from core.types import RequestContext
from gateway.catalog import load_catalog
from gateway.gateway import LlmGateway
from gateway.ledger import SqlLedger
from gateway.providers import build_chat_model
from retrieval.agentic import LlmPlanner, Orchestrator, Router, RulePlanner, parse_plan
from retrieval.extractive import ExtractiveGenerator
from tests.unit.test_agentic import FakeAsk

WIRE = Path(__file__).parent.parent / "fixtures" / "wire"
COMPARISON = "What is the difference between RRF and DBSF?"
NO_RULE = "Why did the index grow after the upgrade?"  # no routing rule fires


class Provider:
    """An OpenAI-compatible server: scripted replies in order (text, or an HTTP status
    for an error), each with `usage` tokens; records the body of every request."""

    def __init__(self, *replies: str | int, usage: tuple[int, int] = (60, 20)) -> None:
        self.replies = list(replies)
        self.usage = usage
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.bodies.append(json.loads(request.content))
        reply = self.replies.pop(0)
        if isinstance(reply, int):
            error = (WIRE / "openai_error_400.json").read_bytes()
            return httpx2.Response(
                reply, content=error, headers={"content-type": "application/json"}
            )
        body = json.loads((WIRE / "openai_chat_completion.json").read_text())
        body["choices"][0]["message"]["content"] = reply
        body["usage"].update(prompt_tokens=self.usage[0], completion_tokens=self.usage[1])
        return httpx2.Response(200, json=body)

    def messages(self, n: int = 0) -> dict[str, str]:
        sent = self.bodies[n]["messages"]
        assert isinstance(sent, list)
        return {m["role"]: m["content"] for m in sent}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    ledger = SqlLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield ledger
    ledger.close()


def _gateway(ledger: SqlLedger, **providers: Provider) -> LlmGateway:
    """The gateway over catalog models whose HTTP is served by `providers`."""
    catalog = load_catalog()
    settings = LlmSettings(
        enabled=True,
        models=list(providers),
        openai_api_key=SecretStr("sk-test"),
        backoff_base_s=0,
    )
    models = {
        name: build_chat_model(
            catalog.get(name),
            settings,
            http_client=httpx2.Client(transport=httpx2.MockTransport(p)),
        )
        for name, p in providers.items()
    }
    return LlmGateway(
        catalog, settings, models, ledger, ExtractiveGenerator(), sleep=lambda _: None
    )


def _agent(gateway: LlmGateway, ask: FakeAsk, **settings: object) -> Orchestrator:
    agent_settings = AgentSettings(**settings)  # type: ignore[arg-type]
    return Orchestrator(ask, agent_settings, LlmPlanner(gateway), Router(gateway))


# --- the planner ---------------------------------------------------------------------


def test_a_valid_plan_from_the_model_is_researched(ledger: SqlLedger) -> None:
    provider = Provider("1. What is RRF?\n2) What is DBSF?\n")
    ask = FakeAsk()
    result = _agent(_gateway(ledger, **{"local-smollm2": provider}), ask).ask(COMPARISON)
    assert result.route.reason == "comparison ('difference')"  # a rule: no router call
    assert result.sub_questions == ("What is RRF?", "What is DBSF?")
    assert result.planned_by == "model local-smollm2"
    assert sorted(q for q, _, _ in ask.calls) == ["What is DBSF?", "What is RRF?"]
    assert result.steps[1].detail == "model local-smollm2: What is RRF? | What is DBSF?"
    assert [c.source for c in result.answer.citations] == ["What is RRF.txt", "What is DBSF.txt"]
    sent = provider.messages()
    assert COMPARISON in sent["user"]
    assert "at most 4" in sent["system"]
    assert provider.bodies[0]["max_tokens"] == 120  # the plan prompt's cap, not the model's


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("RRF fuses ranks. DBSF normalises scores.", "reply invalid: 0 usable"),
        ("What is RRF?", "reply invalid: 1 usable"),
        ("", "reply invalid: 0 usable"),
        ("1. Who won the 1998 World Cup?\n2. What is the capital of Peru?", "reply invalid: 0"),
        (400, "no model replied"),
    ],
)
def test_a_reply_that_is_no_plan_leaves_the_rule_plan_and_says_so(
    ledger: SqlLedger, reply: str | int, why: str
) -> None:
    result = _agent(_gateway(ledger, **{"local-smollm2": Provider(reply)}), FakeAsk()).ask(
        COMPARISON
    )
    assert result.sub_questions == tuple(RulePlanner().plan(COMPARISON, 4))
    assert result.planned_by.startswith("rules (")
    assert why in result.planned_by
    assert result.steps[1].detail.startswith(result.planned_by)
    assert result.answer.found


def test_a_plan_longer_than_the_bounds_allow_is_cut(ledger: SqlLedger) -> None:
    reply = "\n".join(f"What is RRF, part {n}?" for n in range(1, 9))
    provider = Provider(reply)
    ask = FakeAsk()
    result = _agent(_gateway(ledger, **{"local-smollm2": provider}), ask, max_sub_questions=3)
    answered = result.ask(COMPARISON)
    assert answered.sub_questions == tuple(f"What is RRF, part {n}?" for n in (1, 2, 3))
    assert "at most 3" in provider.messages()["system"]
    assert len(ask.calls) == 3


def test_parse_plan_reads_the_reply_as_external_input() -> None:
    reply = (
        "Sub-questions:\n"
        "1. What is RRF?\n"
        "\n"
        "- what is rrf?\n"  # a repeat
        "* Q3: What is  DBSF?\x07\n"  # a marker, a label, doubled space, a control character
        f"What is {'very ' * 60}RRF?\n"  # too long
        "RRF is a fusion method.\n"  # an answer, not a question
        "Who won the 1998 World Cup?\n"  # nothing of the question's subject
        '"How are RRF and DBSF scored?"\n'
    )
    assert parse_plan(reply, COMPARISON, 4) == [
        "What is RRF?",
        "What is DBSF?",
        "How are RRF and DBSF scored?",
    ]
    assert parse_plan(reply, COMPARISON, 2) == ["What is RRF?", "What is DBSF?"]
    assert parse_plan("", COMPARISON, 4) == []


# --- the router ----------------------------------------------------------------------


def test_the_cheapest_model_settles_a_question_no_rule_decides(ledger: SqlLedger) -> None:
    cheap, strong = Provider("Agentic.", "single"), Provider()
    router = Router(_gateway(ledger, **{"gpt-4.1-mini": cheap, "gpt-4.1": strong}))
    acme = RequestContext(tenant="acme")
    route = router.route(NO_RULE, context=acme)  # "why": the answer route puts strong first
    assert (route.mode, route.reason, route.model) == (
        "agentic",
        "model gpt-4.1-mini: agentic",
        "gpt-4.1-mini",
    )
    assert route.usage.input_tokens == 60
    assert route.cost_usd > 0
    assert strong.bodies == []
    assert cheap.bodies[0]["max_tokens"] == 4
    again = router.route(NO_RULE, context=acme)  # remembered: one call, not two
    assert (again.mode, again.reason, again.model, again.cost_usd) == (
        "agentic",
        route.reason,
        "",  # no model was asked this time, and nothing was spent
        0.0,
    )
    assert len(cheap.bodies) == 1
    assert router.route(NO_RULE).model == "gpt-4.1-mini"  # another tenant: its own call


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("The answer is agentic", "one question: one retrieval; model reply invalid, rules kept"),
        ("single or agentic", "one question: one retrieval; model reply invalid, rules kept"),
        (400, "one question: one retrieval; no model replied, rules kept"),
    ],
)
def test_an_unusable_router_reply_keeps_the_rules(
    ledger: SqlLedger, reply: str | int, reason: str
) -> None:
    router = Router(_gateway(ledger, **{"local-smollm2": Provider(reply)}))
    route = router.route(NO_RULE)
    assert (route.mode, route.reason) == ("single", reason)


def test_rules_and_the_caller_decide_without_a_model_call(ledger: SqlLedger) -> None:
    provider = Provider()  # no reply scripted: a call would fail the test
    gateway = _gateway(ledger, **{"local-smollm2": provider})
    router = Router(gateway)
    assert router.route(COMPARISON).mode == "agentic"
    assert router.route("Who wrote it? When was it published?").mode == "agentic"
    forced = router.route(COMPARISON, "single")
    assert (forced.mode, forced.forced, forced.model) == ("single", True, "")
    ask = FakeAsk()
    single = Orchestrator(ask, AgentSettings(), LlmPlanner(gateway), router).ask(NO_RULE, "single")
    assert (single.route.forced, len(ask.calls)) == (True, 1)
    assert provider.bodies == []


def test_a_model_routed_single_question_is_answered_once(ledger: SqlLedger) -> None:
    provider = Provider("single")
    ask = FakeAsk()
    result = _agent(_gateway(ledger, **{"local-smollm2": provider}), ask).ask(NO_RULE)
    assert (result.route.mode, result.route.reason) == ("single", "model local-smollm2: single")
    assert [q for q, _, _ in ask.calls] == [NO_RULE]
    assert result.answer.provenance is not None
    assert result.answer.provenance.usage.input_tokens == 60  # the router's tokens counted


# --- bounds and the ledger -----------------------------------------------------------


def test_the_router_and_planner_calls_count_toward_the_token_bound(ledger: SqlLedger) -> None:
    plan = "What is alpha one?\nWhat is alpha two?\nWhat is alpha three?"
    provider = Provider("agentic", plan, usage=(400, 100))  # 500 tokens a call
    ask = FakeAsk(tokens=100)
    agent = _agent(
        _gateway(ledger, **{"local-smollm2": provider}), ask, max_tokens=1200, parallel=1
    )
    result = agent.ask("Tell me about alpha")
    assert result.planned_by == "model local-smollm2"
    assert result.stopped_by == "max_tokens"
    assert len(ask.calls) == 2  # 1000 before research, 1100 after one, 1200 after two
    assert result.answer.provenance is not None
    usage = result.answer.provenance.usage
    assert usage.input_tokens + usage.output_tokens == 1200


def test_the_router_call_counts_as_a_step(ledger: SqlLedger) -> None:
    plan = "What is alpha one?\nWhat is alpha two?\nWhat is alpha three?"
    provider = Provider("agentic", plan)
    agent = _agent(_gateway(ledger, **{"local-smollm2": provider}), FakeAsk(), max_steps=5)
    result = agent.ask("Tell me about alpha")
    assert "at most 2" in provider.messages(1)["system"]  # 5 - route call - plan - synthesis
    assert result.sub_questions == ("What is alpha one?", "What is alpha two?")


def test_the_plan_and_route_calls_are_on_the_caller_s_tenant_ledger(ledger: SqlLedger) -> None:
    provider = Provider("agentic", "What is alpha one?\nWhat is alpha two?")
    agent = _agent(_gateway(ledger, **{"gpt-4.1-mini": provider}), FakeAsk())
    acme = RequestContext(tenant="acme", access_groups=("legal",), key_id="key-1")
    result = agent.ask("Tell me about alpha", context=acme)
    assert result.planned_by == "model gpt-4.1-mini"
    (line,) = ledger.report(tenant="acme")
    assert (line.model, line.requests, line.input_tokens, line.output_tokens) == (
        "gpt-4.1-mini",
        2,
        120,
        40,
    )
    assert ledger.report(tenant="default") == []
    assert result.answer.provenance is not None
    assert result.answer.provenance.cost_usd == pytest.approx(line.cost_usd)


def test_the_model_planner_and_router_can_be_switched_off(settings: Settings) -> None:
    """RAG_AGENT__MODEL_ROUTER/MODEL_PLANNER=false: the app's agent asks no model for a
    route or a plan even with the LLM on (no provider here: a call would fail loudly)."""
    from api.wiring import AppContext

    configured = settings.model_copy(
        update={
            "llm": LlmSettings(
                enabled=True, models=["gpt-4.1-mini"], openai_api_key=SecretStr("sk-test")
            ),
            "agent": AgentSettings(model_planner=False, model_router=False),
        }
    )
    ctx = AppContext(configured)
    try:
        route = ctx.agent.route(NO_RULE, "auto", RequestContext())
    finally:
        ctx.close()
    assert route.model == ""
    assert "model" not in route.reason
