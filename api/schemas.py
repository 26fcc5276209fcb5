"""Request and response models of the HTTP API (they are the OpenAPI contract)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from core.types import (
    NAME_PATTERN,
    Answer,
    Citation,
    DocumentInfo,
    DocumentPage,
    IngestProgress,
    JobState,
    JobStatus,
    Provenance,
    Role,
    Rung,
    ScoredChunk,
    SearchMode,
    Sensitivity,
)
from store.schema import FILTERABLE_FIELDS

if TYPE_CHECKING:  # the agentic mode (LangGraph) is imported when first used
    from retrieval.agentic import AgentAnswer, Route


def _encodable(value: str) -> str:
    """Refuse text no engine can take: lone surrogates (JSON `\\ud800`) and NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("the text holds an unpaired surrogate (invalid unicode)") from None
    if "\x00" in value:
        raise ValueError("the text holds a NUL character")
    return value


#: A question or a query: bounded, valid unicode, no NUL.
QueryText = Annotated[
    str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_encodable)
]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
FilterKey = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_encodable)
]
FilterText = Annotated[str, StringConstraints(max_length=1024), AfterValidator(_encodable)]
FilterValue = (
    FilterText
    | Annotated[int, Field(strict=True, ge=-(2**31), le=2**31 - 1)]
    | Annotated[bool, Field(strict=True)]
    | Annotated[list[FilterText], Field(min_length=1, max_length=100)]
)
Filters = Annotated[
    dict[FilterKey, FilterValue],
    Field(
        max_length=16,
        json_schema_extra={"propertyNames": {"enum": sorted(FILTERABLE_FIELDS)}},
        description='Narrow the results: {"source": "architecture.md"}; fields: source, '
        "title, section, page. Tenant and access groups come from the credentials.",
    ),
]


class SearchRequest(BaseModel):
    query: QueryText = Field(examples=["How are chunk ids made?"])
    top_k: int = Field(default=5, ge=1, le=100)
    mode: SearchMode = SearchMode.HYBRID
    filters: Filters | None = None
    access_groups: list[Name] | None = Field(
        default=None,
        max_length=50,
        description="Narrow to these of your access groups (never widens your access)",
    )


class AskRequest(BaseModel):
    question: QueryText
    top_k: int = Field(default=5, ge=1, le=50)
    filters: Filters | None = None
    tenant: Name | None = Field(
        default=None,
        description="Optional; must be your own tenant (it comes from your credentials)",
    )
    access_groups: list[Name] | None = Field(
        default=None,
        max_length=50,
        description="Narrow to these of your access groups (never widens your access)",
    )
    sensitivity: Sensitivity = Field(
        default=Sensitivity.INTERNAL,
        description="`confidential` is answered only by models tagged private (on-prem)",
    )
    mode: Literal["auto", "single", "agentic"] = Field(
        default="auto",
        description="`auto`: the router picks (comparisons and questions in several parts "
        "go to the agents); `single`: one retrieval; `agentic`: plan, research each "
        "sub-question, synthesise (bounded by RAG_AGENT__*)",
    )


class Hit(BaseModel):
    chunk_id: str
    score: float
    source: str
    title: str
    section: str
    page: int | None
    text: str

    @classmethod
    def of(cls, hit: ScoredChunk) -> Hit:
        c = hit.chunk
        return cls(
            chunk_id=c.id,
            score=hit.score,
            source=c.source,
            title=c.title,
            section=c.section,
            page=c.page,
            text=c.text,
        )


class SearchResponse(BaseModel):
    hits: list[Hit]


class CitationOut(BaseModel):
    number: int
    source: str
    title: str
    section: str
    page: int | None
    chunk_id: str
    quote: str

    @classmethod
    def of(cls, citation: Citation) -> CitationOut:
        return cls(**{k: getattr(citation, k) for k in cls.model_fields})


class ProvenanceOut(BaseModel):
    """How the answer was made: which rung of the ladder, which model and why, at what cost."""

    rung: Rung = Field(
        description="The rung of the degradation ladder that answered: a model (`llm`), "
        "cited sentences without one (`extractive`), the answer cache (`cache`), or an "
        "expired cache entry when retrieval failed (`stale-cache`)"
    )
    model: str
    route: str = Field(description="Why this model: the routing rules that fired")
    attempts: list[str]
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost_usd: float
    saved_usd: float
    prompt: str
    grounded: bool | None = Field(
        description="Every sentence cites a passage it was given, and the passages it cites "
        "support it (the groundedness guard)"
    )
    invalid_citations: list[int]
    uncited_sentences: list[str]
    unsupported_sentences: list[str] = Field(
        default=[], description="Sentences their cited passages do not support"
    )

    @classmethod
    def of(cls, p: Provenance) -> ProvenanceOut:
        return cls(
            rung=p.rung,
            model=p.model,
            route=p.route,
            attempts=list(p.attempts),
            input_tokens=p.usage.input_tokens,
            output_tokens=p.usage.output_tokens,
            tokens_estimated=p.usage.estimated,
            cost_usd=p.cost_usd,
            saved_usd=p.saved_usd,
            prompt=p.prompt,
            grounded=p.grounded,
            invalid_citations=list(p.invalid_citations),
            uncited_sentences=list(p.uncited_sentences),
            unsupported_sentences=list(p.unsupported_sentences),
        )


class StepOut(BaseModel):
    kind: Literal["route", "plan", "research", "synthesize", "stop"]
    detail: str
    ms: float
    passages: int


class AgentOut(BaseModel):
    """Which mode answered and why; for the agentic mode, its plan and steps."""

    mode: Literal["single", "agentic"]
    reason: str = Field(description="Why this mode: the router's rule, or the caller's choice")
    forced: bool
    sub_questions: list[str] = []
    planned_by: str | None = Field(
        default=None,
        description="Who wrote the sub-questions: rules, a model, or the rules and why the "
        "model's plan was not used",
    )
    steps: list[StepOut] = []
    stopped_by: str | None = Field(
        default=None,
        description="The bound that stopped the run early (max_steps, max_tokens, "
        "max_wall_s, max_cost_usd): the answer is partial",
    )

    @classmethod
    def of(cls, route: Route, result: AgentAnswer | None = None) -> AgentOut:
        if result is None or route.mode == "single":
            return cls(mode=route.mode, reason=route.reason, forced=route.forced)
        return cls(
            mode=route.mode,
            reason=route.reason,
            forced=route.forced,
            sub_questions=list(result.sub_questions),
            planned_by=result.planned_by,
            steps=[StepOut(**asdict(step)) for step in result.steps],
            stopped_by=result.stopped_by,
        )


class AskResponse(BaseModel):
    question: str
    answer: str
    found: bool
    generator: str
    citations: list[CitationOut]
    provenance: ProvenanceOut | None = None
    timings_ms: dict[str, float] = {}
    agent: AgentOut | None = Field(
        default=None, description="The mode that answered (single-shot or agentic) and why"
    )

    @classmethod
    def of(
        cls, answer: Answer, result: AgentAnswer | None = None, route: Route | None = None
    ) -> AskResponse:
        route = route or (result.route if result else None)
        return cls(
            question=answer.question,
            answer=answer.text,
            found=answer.found,
            generator=answer.generator,
            citations=[CitationOut.of(c) for c in answer.citations],
            provenance=ProvenanceOut.of(answer.provenance) if answer.provenance else None,
            timings_ms=dict(answer.timings_ms),
            agent=AgentOut.of(route, result) if route else None,
        )


class Health(BaseModel):
    status: str
    store: str
    collection: str
    points: int
    embedding_model: str


class JobAccepted(BaseModel):
    job_id: str
    status_url: str
    files: list[str]


class Problem(BaseModel):
    """RFC 9457 problem details: every error the API returns has this shape."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


class KeyCreate(BaseModel):
    tenant: Name
    role: Role
    access_groups: list[Name] = Field(default=[], max_length=50)
    expires_days: int | None = Field(default=None, ge=1, le=3650)


class KeyOut(BaseModel):
    key_id: str
    tenant: str
    role: Role
    access_groups: list[str]
    created_at: str
    expires_at: str | None
    revoked: bool


class KeyCreated(KeyOut):
    key: str = Field(description="The bearer token; shown once, stored only as a hash")


class JobOut(BaseModel):
    job_id: str
    state: JobState
    attempts: int
    documents: int
    chunks: int
    errors: dict[str, str]
    updated_at: str
    progress: IngestProgress = Field(
        description="Files and chunks so far, updated as chunks are embedded"
    )

    @classmethod
    def of(cls, status: JobStatus) -> JobOut:
        return cls(
            job_id=status.id,
            state=status.state,
            attempts=status.attempts,
            documents=status.documents,
            chunks=status.chunks,
            errors=status.errors,
            updated_at=status.updated_at,
            progress=status.progress,
        )


class DocumentOut(BaseModel):
    source: str
    title: str
    chunks: int
    ingested_at: str
    state: str = Field(description="`done`, or `pending` while it is being (re)written")
    access_groups: list[str] | None = Field(
        description="Who may read it (empty: the whole tenant; null: not recorded)"
    )
    pipeline_version: str

    @classmethod
    def of(cls, info: DocumentInfo) -> DocumentOut:
        groups = None if info.access_groups is None else list(info.access_groups)
        return cls(**{**asdict(info), "access_groups": groups})


class DocumentList(BaseModel):
    documents: list[DocumentOut]
    total: int = Field(description="Your documents in all (that you may read)")
    next_after: str | None = Field(description="Pass as `after` for the next page; null: end")

    @classmethod
    def of(cls, page: DocumentPage) -> DocumentList:
        return cls(
            documents=[DocumentOut.of(d) for d in page.documents],
            total=page.total,
            next_after=page.next_after,
        )
