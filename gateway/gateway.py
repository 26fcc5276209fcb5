"""The LLM gateway: a `Generator` that routes, falls back, degrades, meters and checks.

    generate(question, passages, context)
      -> route (gateway.routing)            which models, in which order, and why
      -> for each model of the chain:       prompt fitted to its context window
                                            -> breaker -> retries with backoff -> call
      -> grounded?                          citations checked against the passages given
      -> ledger                             tokens, cost, rung, route: one row per request
    every model failed or none eligible
      -> the extractive generator           cited sentences, no LLM, never fails

    complete(task, text, context)           a short task that is not an answer (the agentic
                                            mode's plan and route): the same routing,
                                            breakers, retries, budgets and ledger; None
                                            when no model may or could reply

Streaming applies the same chain *before the first token*: a model that fails to start
streaming is skipped; once a token has been sent, the answer is that model's. The
answer cache (gateway.cache) sits in front, in `RagService`, so a hit skips retrieval.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

from core.errors import CircuitOpenError, LedgerError, ProviderError
from core.ports import ChatModel, Generator, Ledger
from core.settings import LlmSettings
from core.telemetry import Degradation, Stage, count_degraded, count_fallback, record_usage, stage
from core.types import (
    Answer,
    AnswerEvent,
    ChatMessage,
    Citation,
    Completion,
    LedgerEntry,
    Provenance,
    RequestContext,
    Rung,
    ScoredChunk,
    StreamChunk,
    Usage,
)
from gateway.catalog import Catalog, ModelSpec
from gateway.prompting import PromptTemplate, check_citations, fit_prompt, load_template
from gateway.resilience import CircuitBreaker, call_with_retries
from gateway.routing import BudgetState, RouteDecision, Router
from gateway.wire import estimate_prompt_tokens

log = logging.getLogger(__name__)
T = TypeVar("T")

NOT_FOUND_MARK = "NOT_FOUND"

#: The short tasks beside answering, each a template `prompts/<task>.v1.toml`.
Task = Literal["plan_questions", "route_question"]


@dataclass(frozen=True, slots=True)
class TaskReply:
    """A model's reply to a `Task`, unchecked (the caller validates it), with its cost."""

    text: str
    model: str
    usage: Usage
    cost_usd: float


class LlmGateway:
    """Answers through the routed chain of chat models, down to the extractive rung."""

    def __init__(
        self,
        catalog: Catalog,
        settings: LlmSettings,
        models: Mapping[str, ChatModel],
        ledger: Ledger,
        extractive: Generator,
        *,
        router: Router | None = None,
        template: PromptTemplate | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._catalog = catalog
        self._settings = settings
        self._models = dict(models)
        self._ledger = ledger
        self._extractive = extractive
        self._router = router or Router(
            catalog, list(self._models), private_only=settings.residency == "private"
        )
        self._template = template or load_template("grounded_answer", settings.prompt_version)
        self._clock = clock
        self._sleep = sleep
        self._breakers = {
            name: CircuitBreaker(name, settings.breaker_failures, settings.breaker_reset_s)
            for name in self._models
        }
        self._tasks: dict[Task, PromptTemplate] = {}

    @property
    def name(self) -> str:
        return "gateway"

    @property
    def breakers(self) -> Mapping[str, CircuitBreaker]:
        return self._breakers

    @property
    def prompt_id(self) -> str:
        return f"{self._template.name}.v{self._template.version}"

    # -- budgets -------------------------------------------------------------------------

    def budget_state(self, tenant: str) -> BudgetState:
        """Compare today's and this month's spend with the tenant's limits."""
        budget = self._catalog.budgets.for_tenant(tenant)
        now = self._clock()
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            spent_day = self._ledger.spent(tenant, day)
            spent_month = self._ledger.spent(tenant, day.replace(day=1))
        except LedgerError as exc:
            # Spend unknown: answer, but only on the cheap rungs (a soft-budget route),
            # so an outage of the ledger can neither fail answers nor run up costs.
            log.error("budget check skipped, the ledger is unavailable: %s", exc)
            return BudgetState.SOFT

        def over(spent: float, limit: float | None) -> bool:
            return limit is not None and spent >= limit

        if over(spent_day, budget.daily_hard_usd) or over(spent_month, budget.monthly_hard_usd):
            return BudgetState.HARD
        if over(spent_day, budget.daily_soft_usd) or over(spent_month, budget.monthly_soft_usd):
            return BudgetState.SOFT
        return BudgetState.OK

    # -- non-streaming ------------------------------------------------------------------

    def generate(
        self,
        question: str,
        passages: Sequence[ScoredChunk],
        context: RequestContext | None = None,
    ) -> Answer:
        context = context or RequestContext()
        start = time.perf_counter()
        decision, top = self._prepare(question, passages, context)
        attempts: list[str] = []
        for spec in decision.chain:
            prompt = self._prompt(question, top, spec, attempts)
            if prompt is None:
                continue
            given, messages = prompt
            completion = self._attempt(spec, messages, attempts, "an answer")
            if completion is None:
                continue
            attempts.append(f"{spec.name}: ok")
            answer = self._llm_answer(
                question, given, passages, completion, spec, decision, attempts
            )
            record_usage(spec.name, completion.usage, spec.cost(completion.usage), context.tenant)
            grounded = answer.provenance.grounded if answer.provenance else None
            if self._settings.require_grounding and grounded is False:
                count_degraded(Rung.EXTRACTIVE, Degradation.UNGROUNDED)
                return self._finish(
                    self._ungrounded(question, passages, decision, answer), context, start
                )
            return self._finish(answer, context, start)
        if decision.chain:
            count_degraded(Rung.EXTRACTIVE, Degradation.MODELS_FAILED)
        answer = self._extractive_answer(question, passages, decision, attempts)
        return self._finish(answer, context, start)

    def _ungrounded(
        self,
        question: str,
        passages: Sequence[ScoredChunk],
        decision: RouteDecision,
        rejected: Answer,
    ) -> Answer:
        """`require_grounding`: an answer that fails the citation check is replaced by the
        extractive one; the model's tokens were spent, so its cost stays on the ledger."""
        spent = rejected.provenance
        assert spent is not None
        note = (
            f"{spent.model}: answer not grounded ({len(spent.uncited_sentences)} uncited "
            f"sentences, invalid citations {list(spent.invalid_citations)}): replaced"
        )
        answer = self._extractive_answer(question, passages, decision, [*spent.attempts, note])
        assert answer.provenance is not None
        return dataclasses.replace(
            answer,
            provenance=dataclasses.replace(
                answer.provenance,
                route=f"{decision.reason}; ungrounded LLM answer replaced",
                usage=spent.usage,
                cost_usd=spent.cost_usd,
            ),
        )

    # -- short tasks (not answers) --------------------------------------------------------

    def complete(
        self,
        task: Task,
        text: str,
        context: RequestContext | None = None,
        *,
        limit: int = 0,
        cheapest: bool = False,
    ) -> TaskReply | None:
        """One short completion that is not a grounded answer: a plan, a route.

        The request's route (sensitivity, budget; `cheapest`: cheapest eligible model
        first), each model behind its breaker with retries, one ledger row under the
        caller's tenant when a model replied. None when no model may or could reply: the
        caller keeps its rules. `limit` fills the template's `{limit}`.
        """
        context = context or RequestContext()
        start = time.perf_counter()
        template = self._task_template(task)
        values = {"question": text, "limit": limit}
        messages = [
            ChatMessage("system", template.system.format(**values)),
            ChatMessage("user", template.user.format(**values)),
        ]
        decision = self._router.decide(text, context, self.budget_state(context.tenant))
        chain = decision.chain
        if cheapest:
            chain = tuple(sorted(chain, key=lambda m: m.blended_price))
        attempts: list[str] = []
        for spec in chain:
            cap = min(spec.max_output_tokens, template.max_output_tokens or spec.max_output_tokens)
            if estimate_prompt_tokens(messages) + cap > spec.context_window:
                attempts.append(f"{spec.name}: the prompt does not fit its context window")
                continue
            completion = self._attempt(spec, messages, attempts, task, cap)
            if completion is None:
                continue
            cost = spec.cost(completion.usage)
            record_usage(spec.name, completion.usage, cost, context.tenant)
            self._record(
                LedgerEntry(
                    at=self._clock(),
                    tenant=context.tenant,
                    model=spec.name,
                    rung=Rung.LLM,
                    input_tokens=completion.usage.input_tokens,
                    output_tokens=completion.usage.output_tokens,
                    cost_usd=cost,
                    latency_ms=(time.perf_counter() - start) * 1000,
                    route=f"{task}: {decision.reason}",
                )
            )
            return TaskReply(completion.text, spec.name, completion.usage, cost)
        log.info("%s: no model replied (%s; %s)", task, decision.reason, "; ".join(attempts))
        return None

    def _task_template(self, task: Task) -> PromptTemplate:
        if task not in self._tasks:
            self._tasks[task] = load_template(task, 1)
        return self._tasks[task]

    # -- streaming ----------------------------------------------------------------------

    def stream(
        self,
        question: str,
        passages: Sequence[ScoredChunk],
        context: RequestContext | None = None,
    ) -> Iterator[AnswerEvent]:
        """Tokens as the model writes them, then the checked answer; fallback before token 1."""
        context = context or RequestContext()
        start = time.perf_counter()
        decision, top = self._prepare(question, passages, context)
        attempts: list[str] = []
        for spec in decision.chain:
            prompt = self._prompt(question, top, spec, attempts)
            if prompt is None:
                continue
            given, messages = prompt
            breaker = self._breakers[spec.name]
            try:
                breaker.acquire()
            except CircuitOpenError as exc:
                count_fallback(spec.name)
                attempts.append(str(exc))
                continue
            try:
                first, rest = self._start_stream(spec, messages, attempts)
            except ProviderError as exc:
                count_fallback(spec.name)
                breaker.failure()
                attempts.append(str(exc))
                log.warning("model %s failed before its first token: %s", spec.name, exc)
                continue
            # Committed to this model: from here on, its tokens are the answer.
            text: list[str] = []
            usage: Usage | None = None
            try:
                for chunk in _chain(first, rest):
                    if chunk.text:
                        text.append(chunk.text)
                        yield AnswerEvent("token", chunk.text)
                    if chunk.usage is not None:
                        usage = chunk.usage
            except ProviderError as exc:
                breaker.failure()
                attempts.append(f"{exc} (after {len(text)} tokens: the answer is cut short)")
            else:
                breaker.success()
                attempts.append(f"{spec.name}: ok")
            joined = "".join(text)
            completion = Completion(joined, usage or Usage(0, len(text), estimated=True))
            answer = self._llm_answer(
                question, given, passages, completion, spec, decision, attempts
            )
            record_usage(spec.name, completion.usage, spec.cost(completion.usage), context.tenant)
            yield AnswerEvent("answer", answer=self._finish(answer, context, start))
            return
        if decision.chain:
            count_degraded(Rung.EXTRACTIVE, Degradation.MODELS_FAILED)
        answer = self._finish(
            self._extractive_answer(question, passages, decision, attempts), context, start
        )
        yield AnswerEvent("token", answer.text)
        yield AnswerEvent("answer", answer=answer)

    # -- shared steps -------------------------------------------------------------------

    def _attempt(
        self,
        spec: ModelSpec,
        messages: Sequence[ChatMessage],
        attempts: list[str],
        what: str,
        max_tokens: int | None = None,
    ) -> Completion | None:
        """One link of a fallback chain: the model's completion, or None with its failure
        counted and noted in `attempts` (the next model is tried); its latency is observed
        for routing. Answers and short tasks fall back the same way."""
        began = time.perf_counter()
        try:
            completion = self._complete(spec, messages, attempts, max_tokens)
        except ProviderError as exc:
            count_fallback(spec.name)
            attempts.append(str(exc))
            log.warning("model %s failed on %s: %s", spec.name, what, exc)
            return None
        self._router.latency.observe(spec.name, (time.perf_counter() - began) * 1000)
        return completion

    def _complete(
        self,
        spec: ModelSpec,
        messages: Sequence[ChatMessage],
        attempts: list[str],
        max_tokens: int | None = None,
    ) -> Completion:
        """One model's completion through its breaker, transient errors retried."""
        model = self._models[spec.name]
        cap = max_tokens or spec.max_output_tokens
        with stage(Stage.MODEL, **{"rag.model": spec.name}):
            return self._breakers[spec.name].call(
                lambda: self._retrying(
                    lambda: model.complete(messages, cap, spec.timeout_s), attempts
                )
            )

    def _start_stream(
        self, spec: ModelSpec, messages: Sequence[ChatMessage], attempts: list[str]
    ) -> tuple[StreamChunk, Iterator[StreamChunk]]:
        """One model's stream up to its first chunk, transient errors retried (the caller
        holds the breaker: the stream outlives this call)."""
        model = self._models[spec.name]
        with stage(Stage.MODEL, **{"rag.model": spec.name, "rag.stream": "true"}):
            return self._retrying(
                lambda: _first_chunk(
                    model.stream(messages, spec.max_output_tokens, spec.timeout_s)
                ),
                attempts,
            )

    def _retrying(self, call: Callable[[], T], attempts: list[str]) -> T:
        """`call` with the configured retries; each retry is noted in `attempts`."""
        return call_with_retries(
            call,
            self._settings.max_retries,
            self._settings.backoff_base_s,
            self._settings.backoff_max_s,
            sleep=self._sleep,
            on_retry=lambda n, exc: attempts.append(f"{exc} (retry {n + 1})"),
        )

    def _prepare(
        self, question: str, passages: Sequence[ScoredChunk], context: RequestContext
    ) -> tuple[RouteDecision, list[ScoredChunk]]:
        """The route, and the passages a model may be given (the best `max_passages`)."""
        if not passages:  # nothing retrieved: no model can ground an answer, skip the cost
            return RouteDecision((), "no passages retrieved"), []
        budget = self.budget_state(context.tenant)
        decision = self._router.decide(question, context, budget)
        log.info("route for tenant %s: %s", context.tenant, decision.reason)
        return decision, list(passages[: self._settings.max_passages])

    def _prompt(
        self, question: str, top: Sequence[ScoredChunk], spec: ModelSpec, attempts: list[str]
    ) -> tuple[list[ScoredChunk], list[ChatMessage]] | None:
        """The passages `spec` is given and its prompt, fitted to its context window with
        room for its reply; None when not even the best passage fits (the next model is
        tried). Passages left out are noted in `attempts`."""
        window = f"its {spec.context_window}-token context window"
        fitted = fit_prompt(question, top, self._template, spec.prompt_tokens)
        if fitted is None:
            attempts.append(f"{spec.name}: the prompt does not fit {window}")
            log.warning("model %s skipped: the prompt does not fit %s", spec.name, window)
            return None
        left_out = len(top) - len(fitted[0])
        if left_out:
            attempts.append(
                f"{spec.name}: {left_out} of {len(top)} passages left out to fit {window}"
            )
        return fitted

    def _llm_answer(
        self,
        question: str,
        top: Sequence[ScoredChunk],
        passages: Sequence[ScoredChunk],
        completion: Completion,
        spec: ModelSpec,
        decision: RouteDecision,
        attempts: Sequence[str],
    ) -> Answer:
        text = completion.text.strip()
        cost = spec.cost(completion.usage)
        provenance = Provenance(
            rung=Rung.LLM,
            model=spec.name,
            route=decision.reason,
            attempts=tuple(attempts),
            usage=completion.usage,
            cost_usd=cost,
            prompt=self.prompt_id,
        )
        if not text or text.startswith(NOT_FOUND_MARK):
            return Answer.not_found(question, spec.name, passages, provenance)
        check = check_citations(text, len(top))
        citations = tuple(Citation.of(n, top[n - 1].chunk) for n in sorted(check.cited))
        provenance = dataclasses.replace(
            provenance,
            grounded=check.grounded,
            invalid_citations=tuple(sorted(check.invalid)),
            uncited_sentences=check.uncited_sentences,
        )
        return Answer(
            question,
            text,
            citations,
            found=True,
            generator=spec.name,
            passages=tuple(passages),
            provenance=provenance,
        )

    def _extractive_answer(
        self,
        question: str,
        passages: Sequence[ScoredChunk],
        decision: RouteDecision,
        attempts: Sequence[str],
    ) -> Answer:
        answer = self._extractive.generate(question, passages)
        why = decision.reason
        if decision.chain:
            why += "; every model failed"
        provenance = Provenance(
            rung=Rung.EXTRACTIVE,
            model=self._extractive.name,
            route=why,
            attempts=tuple(attempts),
            grounded=True if answer.found else None,  # each quoted sentence is cited
        )
        return dataclasses.replace(answer, provenance=provenance)

    def _finish(self, answer: Answer, context: RequestContext, start: float) -> Answer:
        provenance = answer.provenance
        assert provenance is not None
        self._record(
            LedgerEntry(
                at=self._clock(),
                tenant=context.tenant,
                model=provenance.model,
                rung=provenance.rung,
                input_tokens=provenance.usage.input_tokens,
                output_tokens=provenance.usage.output_tokens,
                cost_usd=provenance.cost_usd,
                latency_ms=(time.perf_counter() - start) * 1000,
                route=provenance.route,
            )
        )
        return answer

    def _record(self, entry: LedgerEntry) -> None:
        """A ledger outage never fails an answer: the row is lost, the loss is logged."""
        try:
            self._ledger.record(entry)
        except LedgerError as exc:
            log.error(
                "cost not recorded (tenant %s, model %s, $%.6f): %s",
                entry.tenant,
                entry.model,
                entry.cost_usd,
                exc,
            )


def _first_chunk(stream: Iterator[StreamChunk]) -> tuple[StreamChunk, Iterator[StreamChunk]]:
    """Pull until the first text (or the end): connection errors surface here, retryable."""
    for chunk in stream:
        if chunk.text or chunk.usage is not None:
            return chunk, stream
    return StreamChunk(), stream


def _chain(first: StreamChunk, rest: Iterator[StreamChunk]) -> Iterator[StreamChunk]:
    yield first
    yield from rest
