"""Agentic answers for questions one retrieval cannot answer (docs/adr/0028-agentic-mode.md).

A comparison ("how do A and B differ"), a question in two parts, or "what changed between
1 and 2" needs passages that one query rarely ranks together. The agentic mode plans
sub-questions, answers each with the same `RagService.ask` the single-shot path uses
(retrieval scoped to the caller's tenant and groups, the gateway's routing, fallback,
budgets and ledger, the groundedness guard), in parallel, and synthesises one answer whose
citations point at the passages each sub-answer used.

- `Router`: per question, single-shot or agentic, with the reason (rules; when no rule
  fires and a model is configured, the cheapest model's one-word verdict; the caller can
  force either mode).
- `RulePlanner`: the offline decomposer (splits on the question's own structure).
- `LlmPlanner`: sub-questions written by a model through the gateway (`TaskModel`), its
  reply checked as external input; any failure leaves the rule planner's plan, and says so.
- `Orchestrator`: the LangGraph graph plan -> research (waves of parallel sub-questions)
  -> synthesise, bounded by `AgentSettings`: steps, tokens, wall time and cost per
  question. A bound that stops it leaves the best grounded partial answer, and says which.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import queue
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypedDict

from core.settings import AgentSettings
from core.telemetry import Stage, stage
from core.types import (
    Answer,
    AnswerEvent,
    Citation,
    Filters,
    Provenance,
    RequestContext,
    ScoredChunk,
    Usage,
)

if TYPE_CHECKING:  # the gateway is a port here: the app hands it over when the LLM is on
    from gateway.gateway import Task, TaskReply

Mode = Literal["auto", "single", "agentic"]
Bound = Literal["max_steps", "max_tokens", "max_wall_s", "max_cost_usd"]


class TaskModel(Protocol):
    """A model for the short tasks beside answering (`LlmGateway.complete`): the gateway's
    routing, breakers, retries, budgets and ledger; None when no model replied."""

    def complete(
        self,
        task: Task,
        text: str,
        context: RequestContext | None = None,
        *,
        limit: int = 0,
        cheapest: bool = False,
    ) -> TaskReply | None: ...


# --- routing ---------------------------------------------------------------------------

_COMPARISON = re.compile(
    r"\b(compare|comparison|differ|difference|differences|versus|vs\.?|contrast|"
    r"what changed|changes? between|both|similarit(?:y|ies))\b",
    re.IGNORECASE,
)
#: "A, and B?" / "A; B" / two question marks: a question in parts.
_PARTS = re.compile(r"\?\s+\S|;\s*\S|,\s+and\s+(?:also\s+)?(?=\w+\b)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Route:
    """Which mode answers a question, and why (the response's provenance carries it)."""

    mode: Literal["single", "agentic"]
    reason: str
    forced: bool = False
    model: str = ""  # the model asked for this route, when one replied (its call is a step)
    usage: Usage = dataclasses.field(default_factory=Usage)
    cost_usd: float = 0.0


_ONE_QUESTION = "one question: one retrieval"


class Router:
    """Rules: a comparison, or a question in several parts, goes to the agentic mode;
    everything else is single-shot, which is cheaper and as good for one-hop questions.

    With a `model`, a question no rule sends to the agents is put to the cheapest eligible
    model for a one-word verdict (single or agentic); any other reply keeps the rules'.
    Verdicts are remembered per tenant and question (the API routes a streamed question
    before it runs it: one model call, not two); a remembered one cost nothing this time."""

    def __init__(self, model: TaskModel | None = None, remember: int = 256) -> None:
        self._model = model
        self._remember = remember
        self._verdicts: OrderedDict[tuple[str, str], Route] = OrderedDict()
        self._lock = threading.Lock()

    def route(
        self, question: str, requested: Mode = "auto", context: RequestContext | None = None
    ) -> Route:
        if requested != "auto":
            return Route(requested, f"mode={requested} requested by the caller", forced=True)
        if match := _COMPARISON.search(question):
            return Route("agentic", f"comparison ({match.group(0).lower()!r})")
        if _PARTS.search(question.strip().rstrip("?")):
            return Route("agentic", "a question in several parts")
        if self._model is None:
            return Route("single", _ONE_QUESTION)
        return self._ask_model(self._model, question, context or RequestContext())

    def _ask_model(self, model: TaskModel, question: str, context: RequestContext) -> Route:
        key = (context.tenant, question)
        with self._lock:
            if (known := self._verdicts.get(key)) is not None:
                self._verdicts.move_to_end(key)
                return dataclasses.replace(known, model="", usage=Usage(), cost_usd=0.0)
        reply = model.complete("route_question", question, context, cheapest=True)
        if reply is None:
            return Route("single", f"{_ONE_QUESTION}; no model replied, rules kept")
        verdict = re.findall(r"[a-z]+", reply.text[:200].lower())  # one word, nothing else
        mode: Literal["single", "agentic"] = "single"
        reason = f"{_ONE_QUESTION}; model reply invalid, rules kept"
        if verdict in (["single"], ["agentic"]):
            mode = "agentic" if verdict == ["agentic"] else "single"
            reason = f"model {reply.model}: {mode}"
        route = Route(mode, reason, False, reply.model, reply.usage, reply.cost_usd)
        with self._lock:
            self._verdicts[key] = route
            while len(self._verdicts) > self._remember:
                self._verdicts.popitem(last=False)
        return route


# --- planning --------------------------------------------------------------------------

_SPLIT = re.compile(r"\?\s+|;\s*|,\s+and\s+(?:also\s+)?|\s+and\s+also\s+", re.IGNORECASE)
_BETWEEN = re.compile(
    r"^(?P<head>.*?)\b(?:between|of)\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)(?P<tail>\s*\??)$",
    re.IGNORECASE,
)
_HOW_DIFFER = re.compile(
    r"^(?:how|in what ways?)\s+(?:do|does|did|are|is)\s+(?P<a>.+?)\s+and\s+(?P<b>.+?)\s+"
    r"(?P<verb>differ|compare|contrast)\b.*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Plan:
    """Sub-questions, who wrote them (the plan step and the response say it), and what
    writing them cost (the run's bounds count it)."""

    questions: tuple[str, ...]
    by: str
    usage: Usage = dataclasses.field(default_factory=Usage)
    cost_usd: float = 0.0


class Planner(Protocol):
    def draft(self, question: str, limit: int, context: RequestContext) -> Plan: ...


class RulePlanner:
    """Sub-questions from the question's own structure, offline:

    - parts: "Who founded X? When did Y open" / "A; B" / "A, and B" -> each part;
    - a comparison: "How do A and B differ?" / "the difference between A and B" ->
      "What is A?" and "What is B?" (each retrieved on its own), plus the question itself;
    - otherwise the question alone (the orchestrator then answers it single-shot)."""

    def plan(self, question: str, limit: int) -> list[str]:
        text = " ".join(question.split())
        parts = [p.strip(" ,;?") for p in _SPLIT.split(text)]
        parts = [_as_question(p) for p in parts if len(p.split()) >= 2]
        if len(parts) >= 2:
            return _unique(parts)[:limit]
        if match := _HOW_DIFFER.match(text):
            subs = [f"What is {match['a']}?", f"What is {match['b']}?", text]
            return _unique(subs)[:limit]
        if _COMPARISON.search(text) and (match := _BETWEEN.match(text)):
            subs = [f"What is {match['a']}?", f"What is {match['b'].rstrip('?')}?", text]
            return _unique(subs)[:limit]
        return [text]

    def draft(self, question: str, limit: int, context: RequestContext) -> Plan:
        return Plan(tuple(self.plan(question, limit)), "rules")


class LlmPlanner:
    """Sub-questions written by a model through the gateway (`plan_questions` prompt).

    The reply is external input: `parse_plan` keeps at most `limit` lines that read as
    questions on the question's subject. Fewer than two such lines (one when the limit is
    one), or no reply at all, and the rule planner's plan is used; the plan's `by` says
    which, and why."""

    def __init__(self, model: TaskModel, rules: RulePlanner | None = None) -> None:
        self._model = model
        self._rules = rules or RulePlanner()

    def draft(self, question: str, limit: int, context: RequestContext) -> Plan:
        reply = self._model.complete("plan_questions", question, context, limit=limit)
        if reply is None:
            return Plan(tuple(self._rules.plan(question, limit)), "rules (no model replied)")
        subs = parse_plan(reply.text, question, limit)
        if len(subs) >= min(2, limit):
            return Plan(tuple(subs), f"model {reply.model}", reply.usage, reply.cost_usd)
        why = f"rules (model {reply.model} reply invalid: {len(subs)} usable sub-questions)"
        return Plan(tuple(self._rules.plan(question, limit)), why, reply.usage, reply.cost_usd)


#: A list marker or label before a sub-question: "1.", "2)", "-", "*", "Q1:", "Sub-question:".
_MARKER = re.compile(
    r"^(?:[-*\u2022>#]+\s*|\(?\d{1,2}[.):]\s*|(?:sub-?\s*)?(?:question|q)\s*\d*\s*[:.)-]\s*)+",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9]{3,}")
#: Question words that say nothing of a question's subject.
_FILLER = frozenset(
    {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "does", "did"}
    | {"the", "and", "are", "was", "were", "has", "have", "had", "that", "this", "with"}
    | {"from", "between", "differ", "difference", "compare", "both", "each", "than"}
)
MAX_SUB_QUESTION_CHARS = 200


def parse_plan(reply: str, question: str, limit: int) -> list[str]:
    """The sub-questions a model's reply holds: one a line, list markers and quotes
    stripped, each a question (ends with "?") of at most `MAX_SUB_QUESTION_CHARS` that
    shares a word with `question` (an answer, a heading or a drift is not a plan),
    repeats dropped, at most `limit`."""
    subject = set(_WORD.findall(question.lower())) - _FILLER
    found: list[str] = []
    for line in reply[:4000].splitlines():
        text = " ".join("".join(ch for ch in line if ch.isprintable()).split())
        text = _MARKER.sub("", text).strip(" \"'`*")
        if (
            not (text.endswith("?") and len(text.split()) >= 2)
            or len(text) > MAX_SUB_QUESTION_CHARS
        ):
            continue
        if subject and not subject & set(_WORD.findall(text.lower())):
            continue
        found.append(text[0].upper() + text[1:])
    return _unique(found)[:limit]


def _as_question(part: str) -> str:
    part = part[0].upper() + part[1:] if part else part
    return part if part.endswith("?") else part + "?"


def _unique(items: Sequence[str]) -> list[str]:
    """The items in order, without case-insensitive repeats."""
    first: dict[str, str] = {}
    for item in items:
        first.setdefault(item.lower(), item)
    return list(first.values())


# --- the graph -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a run, streamed as an event and kept in the result."""

    kind: Literal["route", "plan", "research", "synthesize", "stop"]
    detail: str
    ms: float = 0.0
    passages: int = 0


@dataclass(frozen=True, slots=True)
class SubAnswer:
    question: str
    answer: Answer


@dataclass(frozen=True, slots=True)
class AgentAnswer:
    """The final answer, how it was routed, the plan and steps, and the bound that
    stopped the run early (None: it finished)."""

    answer: Answer
    route: Route
    sub_questions: tuple[str, ...] = ()
    steps: tuple[Step, ...] = ()
    stopped_by: Bound | None = None
    planned_by: str = ""  # "rules", "model <name>", or the rules and why the model's failed


class _State(TypedDict, total=False):
    question: str
    subs: list[str]
    planned_by: str
    next: int  # the index of the next sub-question to research
    done: Annotated[list[tuple[int, SubAnswer]], operator.add]
    steps: Annotated[list[Step], operator.add]
    stopped_by: Bound | None


Ask = Callable[[str, int | None, Filters | None, RequestContext], Answer]
#: (action, whose request, detail): one audit record per step (AppContext.audit_event).
Audit = Callable[[str, RequestContext, dict[str, object]], None]


class Orchestrator:
    """Single-shot or agentic answers through one `ask` (RagService.ask in the app)."""

    def __init__(
        self,
        ask: Ask,
        settings: AgentSettings,
        planner: Planner | None = None,
        router: Router | None = None,
        audit: Audit | None = None,
    ) -> None:
        self._ask = ask
        self._settings = settings
        self._planner: Planner = planner or RulePlanner()
        self._router = router or Router()
        self._audit = audit or (lambda action, context, detail: None)
        self._compiled: Any = None  # LangGraph (~2 s to import) loads on the first agentic run

    def route(
        self, question: str, mode: Mode = "auto", context: RequestContext | None = None
    ) -> Route:
        return self._router.route(question, mode, context)

    def ask(
        self,
        question: str,
        mode: Mode = "auto",
        top_k: int | None = None,
        filters: Filters | None = None,
        context: RequestContext | None = None,
        on_step: Callable[[Step], None] | None = None,
    ) -> AgentAnswer:
        context = context or RequestContext()
        route = self._router.route(question, mode, context)
        routed = Step("route", f"{route.mode}: {route.reason}")
        emit = on_step or (lambda step: None)
        emit(routed)
        if route.mode == "single":
            answer = _charged(self._ask(question, top_k, filters, context), [route])
            return AgentAnswer(answer, route, (question,), (routed,))
        run = _Run(self._settings, question, filters, context, emit)
        run.charge(route.usage, route.cost_usd, calls=1 if route.model else 0)
        state = self._graph().invoke(
            {"question": question, "next": 0, "done": [], "steps": [], "stopped_by": None},
            config={"configurable": {"run": run}, "recursion_limit": 4 * self._settings.max_steps},
        )
        subs: list[str] = state["subs"]
        found = [sub for _, sub in sorted(state["done"], key=lambda pair: pair[0])]
        answer = _charged(synthesize(question, found), [route, *run.plans])
        stopped: Bound | None = state["stopped_by"]
        steps = (routed, *state["steps"], Step("synthesize", f"{len(found)} sub-answers"))
        if stopped is not None:
            steps = (*steps, Step("stop", f"{stopped} reached: a partial answer"))
        emit(steps[-1])
        return AgentAnswer(answer, route, tuple(subs), steps, stopped, state["planned_by"])

    def stream(
        self,
        question: str,
        mode: Mode = "auto",
        top_k: int | None = None,
        filters: Filters | None = None,
        context: RequestContext | None = None,
    ) -> Iterator[AnswerEvent | AgentAnswer]:
        """`ask` as it happens: each `Step` as a `step` event (text: the step as JSON),
        then the `AgentAnswer`. The run is a thread of its own; its error is raised here."""
        events: queue.Queue[Step | AgentAnswer | BaseException] = queue.Queue()

        def run() -> None:
            try:
                events.put(self.ask(question, mode, top_k, filters, context, events.put))
            except BaseException as exc:  # noqa: BLE001 - handed to the reader, raised there
                events.put(exc)

        threading.Thread(target=run, name="agent-run", daemon=True).start()
        while True:
            item = events.get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, Step):
                yield AnswerEvent("step", json.dumps(dataclasses.asdict(item)))
                continue
            yield item
            return

    # --- nodes ---------------------------------------------------------------------------

    def _graph(self) -> Any:
        """The compiled graph, built once. Nodes find their question's `_Run` in the run's
        config (`get_config`), so the graph itself is shared by concurrent questions."""
        if self._compiled is None:
            self._compiled = self._build()
        return self._compiled

    def _build(self) -> Any:
        from langgraph.config import get_config
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Send

        def current() -> _Run:
            run: _Run = get_config()["configurable"]["run"]
            return run

        def plan(state: _State) -> dict[str, Any]:
            run = current()
            with stage(Stage.PLAN):
                start = time.perf_counter()
                limit = min(
                    self._settings.max_sub_questions, self._settings.max_steps - 2 - run.calls
                )
                plan = self._planner.draft(state["question"], max(limit, 1), run.context)
            run.charge(plan.usage, plan.cost_usd)
            run.plans.append(plan)
            step = Step("plan", f"{plan.by}: {' | '.join(plan.questions)}", _ms(start))
            run.emit(step)
            self._audit(
                "agent.plan",
                run.context,
                {"sub_questions": len(plan.questions), "planned_by": plan.by},
            )
            return {"subs": list(plan.questions), "planned_by": plan.by, "steps": [step]}

        def dispatch(state: _State) -> dict[str, Any]:
            """Between waves: a bound reached stops the run before the next wave."""
            run = current()
            stopped = state.get("stopped_by") or run.bound_reached(len(state["steps"]))
            return {"stopped_by": stopped}

        def wave(state: _State) -> list[Any] | str:
            if state.get("stopped_by") or state["next"] >= len(state["subs"]):
                return "done"
            first = state["next"]
            last = min(first + self._settings.parallel, len(state["subs"]))
            return [
                Send("research", {"index": i, "sub": state["subs"][i]}) for i in range(first, last)
            ]

        def research(job: dict[str, Any]) -> dict[str, Any]:
            run = current()
            start = time.perf_counter()
            with stage(Stage.AGENT, **{"rag.sub_question": job["index"]}):
                answer = self._ask(job["sub"], self._settings.sub_top_k, run.filters, run.context)
            run.spend(answer)
            step = Step("research", job["sub"], _ms(start), len(answer.passages))
            run.emit(step)
            self._audit(
                "agent.research",
                run.context,
                {
                    "sub_question": job["index"],
                    "found": answer.found,
                    "passages": len(answer.passages),
                },
            )
            return {"done": [(job["index"], SubAnswer(job["sub"], answer))], "steps": [step]}

        def advance(state: _State) -> dict[str, Any]:
            return {"next": min(state["next"] + self._settings.parallel, len(state["subs"]))}

        graph = StateGraph(_State)
        graph.add_node("plan", plan)
        graph.add_node("dispatch", dispatch)
        graph.add_node("research", research)  # type: ignore[arg-type]  # takes a Send payload
        graph.add_node("advance", advance)
        graph.add_edge(START, "plan")
        graph.add_edge("plan", "dispatch")
        graph.add_conditional_edges("dispatch", wave, ["research", "done"])
        graph.add_node("done", lambda state: {})
        graph.add_edge("research", "advance")
        graph.add_edge("advance", "dispatch")
        graph.add_edge("done", END)
        return graph.compile()


class _Run:
    """One question's budget: steps, tokens, wall time and cost, as spent so far (the
    router's and the planner's model calls included)."""

    def __init__(
        self,
        settings: AgentSettings,
        question: str,
        filters: Filters | None,
        context: RequestContext,
        emit: Callable[[Step], None],
    ) -> None:
        self.question = question
        self.filters = filters
        self.context = context
        self.emit = emit
        self._settings = settings
        self._started = time.monotonic()
        self.tokens = 0
        self.cost_usd = 0.0
        self.calls = 0  # model calls that are no step of the graph (the router's)
        self.plans: list[Plan] = []
        self._lock = threading.Lock()  # research nodes of one wave spend at once

    def charge(self, usage: Usage, cost_usd: float, calls: int = 0) -> None:
        with self._lock:
            self.tokens += usage.input_tokens + usage.output_tokens
            self.cost_usd += cost_usd
            self.calls += calls

    def spend(self, answer: Answer) -> None:
        if answer.provenance is not None:
            self.charge(answer.provenance.usage, answer.provenance.cost_usd)

    def bound_reached(self, steps: int) -> Bound | None:
        settings = self._settings
        if steps + self.calls + 2 > settings.max_steps:  # room for a research and synthesis
            return "max_steps"
        if self.tokens >= settings.max_tokens:
            return "max_tokens"
        if self.cost_usd >= settings.max_cost_usd:
            return "max_cost_usd"
        if time.monotonic() - self._started >= settings.max_wall_s:
            return "max_wall_s"
        return None


def synthesize(question: str, subs: Sequence[SubAnswer]) -> Answer:
    """One answer from the sub-answers: each found sub-answer's text in plan order, its
    [n] markers renumbered onto one citation list, so every citation still names the
    passage that sub-answer used. No sub-answer found: "I don't know"."""
    found = [sub for sub in subs if sub.answer.found]
    passages = _passages(sub.answer.passages for sub in subs)
    provenance = _provenance([sub.answer for sub in subs])
    if not found:
        generator = subs[0].answer.generator if subs else "agentic"
        return Answer.not_found(question, generator, passages, provenance)
    texts: list[str] = []
    citations: list[Citation] = []
    for sub in found:
        offset = len(citations)
        mapping = {c.number: c.number + offset for c in sub.answer.citations}
        texts.append(_renumber(sub.answer.text, mapping))
        citations += [
            dataclasses.replace(c, number=mapping[c.number]) for c in sub.answer.citations
        ]
    return Answer(
        question,
        "\n\n".join(texts),
        tuple(citations),
        found=True,
        generator=found[0].answer.generator,
        passages=passages,
        provenance=provenance,
    )


def _charged(answer: Answer, overheads: Sequence[Route | Plan]) -> Answer:
    """The answer with the router's and planner's model tokens and cost added to its
    provenance: what the question cost, as token limits and reports count it."""
    spent = [o for o in overheads if o.usage != Usage() or o.cost_usd]
    if answer.provenance is None or not spent:
        return answer
    p = answer.provenance
    usage = Usage(
        p.usage.input_tokens + sum(o.usage.input_tokens for o in spent),
        p.usage.output_tokens + sum(o.usage.output_tokens for o in spent),
        p.usage.estimated or any(o.usage.estimated for o in spent),
    )
    cost = p.cost_usd + sum(o.cost_usd for o in spent)
    return dataclasses.replace(
        answer, provenance=dataclasses.replace(p, usage=usage, cost_usd=cost)
    )


def _renumber(text: str, mapping: dict[int, int]) -> str:
    return re.sub(r"\[(\d+)\]", lambda m: f"[{mapping.get(int(m[1]), int(m[1]))}]", text)


def _passages(groups: Any) -> tuple[ScoredChunk, ...]:
    seen: set[str] = set()
    out: list[ScoredChunk] = []
    for group in groups:
        for hit in group:
            if hit.chunk.id not in seen:
                seen.add(hit.chunk.id)
                out.append(hit)
    return tuple(out)


def _provenance(answers: Sequence[Answer]) -> Provenance | None:
    made = [a.provenance for a in answers if a.provenance is not None]
    if not made:
        return None
    usage = Usage(sum(p.usage.input_tokens for p in made), sum(p.usage.output_tokens for p in made))
    return dataclasses.replace(
        made[0],
        usage=usage,
        cost_usd=sum(p.cost_usd for p in made),
        saved_usd=sum(p.saved_usd for p in made),
        attempts=tuple(a for p in made for a in p.attempts),
    )


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)
