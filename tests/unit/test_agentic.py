"""The agentic mode's parts: routing, the rule planner, the LangGraph run's bounds,
parallel research, and citations that trace back to each sub-answer's passages. The
`ask` here is a stand-in for RagService.ask (its own tests cover retrieval and answers)."""

from __future__ import annotations

import threading
import time

import pytest

from core.settings import AgentSettings
from core.types import (
    Answer,
    Chunk,
    Citation,
    Filters,
    Provenance,
    RequestContext,
    Rung,
    ScoredChunk,
    Usage,
)
from retrieval.agentic import AgentAnswer, Orchestrator, Router, RulePlanner, Step, synthesize


def _chunk(source: str, text: str) -> ScoredChunk:
    chunk = Chunk(f"id-{source}", source, text, source, "", None, 0, f"h-{source}")
    return ScoredChunk(chunk, 1.0)


class FakeAsk:
    """Answers "X?" from the passage `X.txt`, citing it as [1]; records who asked."""

    def __init__(
        self,
        delay_s: float = 0.0,
        cost_usd: float = 0.0,
        tokens: int = 0,
        together: threading.Barrier | None = None,
    ) -> None:
        self.delay_s, self.cost_usd, self.tokens = delay_s, cost_usd, tokens
        self.together = together  # every call waits here for the others: proof of parallelism
        self.calls: list[tuple[str, int | None, RequestContext]] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(
        self, question: str, top_k: int | None, filters: Filters | None, context: RequestContext
    ) -> Answer:
        with self.lock:
            self.calls.append((question, top_k, context))
            self.threads.add(threading.current_thread().name)
        if self.together is not None:
            self.together.wait()  # raises BrokenBarrierError when run one at a time
        time.sleep(self.delay_s)
        hit = _chunk(question.rstrip("?") + ".txt", f"The answer to {question}")
        provenance = Provenance(
            Rung.EXTRACTIVE, "", "", usage=Usage(self.tokens, 0), cost_usd=self.cost_usd
        )
        if "unknown" in question.lower():
            return Answer.not_found(question, "extractive", [hit], provenance)
        citation = Citation.of(1, hit.chunk)
        return Answer(
            question,
            f"{hit.chunk.text}. [1]",
            (citation,),
            found=True,
            generator="extractive",
            passages=(hit,),
            provenance=provenance,
        )


@pytest.mark.parametrize(
    ("question", "mode"),
    [
        ("How do Qdrant Edge and a Qdrant server differ?", "agentic"),
        ("What is the difference between RRF and DBSF?", "agentic"),
        ("What changed between version 1 and 2?", "agentic"),
        ("Which library parses PDFs, and how many times is the query embedded?", "agentic"),
        ("Who wrote it? When was it published?", "agentic"),
        ("Which library parses the documents?", "single"),
        ("What are the stages of the ingest path?", "single"),
    ],
)
def test_the_router_sends_comparisons_and_multi_part_questions_to_the_agents(
    question: str, mode: str
) -> None:
    route = Router().route(question)
    assert route.mode == mode
    assert route.reason
    assert not route.forced


def test_the_caller_can_force_either_mode() -> None:
    assert Router().route("How do A and B differ?", "single").mode == "single"
    forced = Router().route("Which library parses PDFs?", "agentic")
    assert (forced.mode, forced.forced) == ("agentic", True)


@pytest.mark.parametrize(
    ("question", "subs"),
    [
        (
            "Which library parses PDFs, and how many times is the query embedded?",
            ["Which library parses PDFs?", "How many times is the query embedded?"],
        ),
        ("Who wrote it? When was it published?", ["Who wrote it?", "When was it published?"]),
        (
            "How do Qdrant Edge and a Qdrant server differ?",
            [
                "What is Qdrant Edge?",
                "What is a Qdrant server?",
                "How do Qdrant Edge and a Qdrant server differ?",
            ],
        ),
        (
            "What is the difference between RRF and DBSF?",
            ["What is RRF?", "What is DBSF?", "What is the difference between RRF and DBSF?"],
        ),
        ("Which library parses PDFs?", ["Which library parses PDFs?"]),
    ],
)
def test_the_rule_planner_decomposes_on_the_question_s_structure(
    question: str, subs: list[str]
) -> None:
    assert RulePlanner().plan(question, limit=4) == subs


def test_the_planner_keeps_to_its_limit() -> None:
    assert len(RulePlanner().plan("A one? B two? C three? D four? E five?", limit=3)) == 3


def test_sub_answers_are_researched_in_parallel_under_the_caller_s_scope() -> None:
    ask = FakeAsk(together=threading.Barrier(2, timeout=10))
    context = RequestContext(tenant="acme", access_groups=("legal",))
    agent = Orchestrator(ask, AgentSettings(parallel=2, sub_top_k=3))
    steps: list[Step] = []
    result = agent.ask("Alpha one? Beta two?", context=context, on_step=steps.append)
    assert result.route.mode == "agentic"
    assert result.sub_questions == ("Alpha one?", "Beta two?")
    assert len(ask.threads) == 2  # both waited at the barrier at once
    assert {(top_k, ctx) for _, top_k, ctx in ask.calls} == {(3, context)}
    assert [s.kind for s in steps] == ["route", "plan", "research", "research", "synthesize"]
    assert result.stopped_by is None


def test_citations_trace_back_to_the_passages_each_sub_answer_used() -> None:
    result = Orchestrator(FakeAsk(), AgentSettings()).ask("Alpha one? Beta two?")
    answer = result.answer
    assert answer.found
    assert [c.number for c in answer.citations] == [1, 2]
    assert [c.source for c in answer.citations] == ["Alpha one.txt", "Beta two.txt"]
    assert "[1]" in answer.text
    assert "[2]" in answer.text
    assert answer.text.index("[1]") < answer.text.index("Beta two")
    passage_ids = {hit.chunk.id for hit in answer.passages}
    assert {c.chunk_id for c in answer.citations} <= passage_ids


def test_a_sub_question_nobody_can_answer_leaves_the_others_and_none_is_i_dont_know() -> None:
    partial = Orchestrator(FakeAsk(), AgentSettings()).ask("Alpha one? Something unknown?")
    assert partial.answer.found
    assert [c.source for c in partial.answer.citations] == ["Alpha one.txt"]
    nothing = Orchestrator(FakeAsk(), AgentSettings()).ask("Unknown one? Unknown two?")
    assert not nothing.answer.found
    assert nothing.answer.citations == ()


def test_a_step_bound_stops_the_run_with_a_partial_answer_that_says_so() -> None:
    ask = FakeAsk()
    settings = AgentSettings(max_steps=4, parallel=1, max_sub_questions=4)
    result = Orchestrator(ask, settings).ask("A one? B two? C three? D four?")
    assert result.stopped_by == "max_steps"
    assert result.answer.found
    assert len(ask.calls) < 4
    assert result.steps[-1].kind == "stop"


def test_a_cost_bound_stops_further_waves() -> None:
    ask = FakeAsk(cost_usd=0.03)
    settings = AgentSettings(max_cost_usd=0.05, parallel=1)
    result = Orchestrator(ask, settings).ask("A one? B two? C three? D four?")
    assert result.stopped_by == "max_cost_usd"
    assert len(ask.calls) == 2  # 0.03, then 0.06 >= 0.05: no third wave
    assert result.answer.provenance is not None
    assert result.answer.provenance.cost_usd == pytest.approx(0.06)


def test_token_and_time_bounds_stop_it_too() -> None:
    tokens = Orchestrator(FakeAsk(tokens=600), AgentSettings(max_tokens=1000, parallel=1))
    assert tokens.ask("A one? B two? C three?").stopped_by == "max_tokens"
    slow = Orchestrator(FakeAsk(delay_s=0.2), AgentSettings(max_wall_s=0.1, parallel=1))
    assert slow.ask("A one? B two? C three?").stopped_by == "max_wall_s"


def test_single_shot_questions_make_one_call_and_every_step_is_audited() -> None:
    ask, audited = FakeAsk(), []
    agent = Orchestrator(ask, AgentSettings(), audit=lambda action, c, d: audited.append(action))
    single = agent.ask("Which library parses PDFs?")
    assert (single.route.mode, len(ask.calls)) == ("single", 1)
    agent.ask("Alpha one? Beta two?")
    assert audited == ["agent.plan", "agent.research", "agent.research"]


def test_synthesize_of_nothing_is_i_dont_know() -> None:
    assert not synthesize("Anything?", []).found


def test_the_stream_sends_each_step_then_the_answer() -> None:
    events = list(Orchestrator(FakeAsk(), AgentSettings()).stream("Alpha one? Beta two?"))
    kinds = [getattr(e, "kind", "answer") for e in events]
    assert kinds == ["step"] * 5 + ["answer"]
    assert isinstance(events[-1], AgentAnswer)
    assert events[-1].answer.found


def test_an_error_in_the_run_reaches_the_stream_s_reader() -> None:
    def broken(*args: object) -> Answer:
        raise RuntimeError("store down")

    with pytest.raises(RuntimeError, match="store down"):
        list(Orchestrator(broken, AgentSettings()).stream("Alpha one? Beta two?"))


def test_the_planner_drops_a_repeated_part_and_keeps_the_order() -> None:
    assert RulePlanner().plan("Alpha one? Beta two? alpha ONE?", limit=4) == [
        "Alpha one?",
        "Beta two?",
    ]
