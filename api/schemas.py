"""Request and response models of the HTTP API (they are the OpenAPI contract)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from core.types import (
    Answer,
    JobState,
    JobStatus,
    Provenance,
    RequestContext,
    ScoredChunk,
    SearchMode,
    Sensitivity,
)

FilterValue = str | int | bool | list[str]


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000, examples=["How are chunk ids made?"])
    top_k: int = Field(default=5, ge=1, le=100)
    mode: SearchMode = SearchMode.HYBRID
    filters: dict[str, FilterValue] | None = Field(
        default=None, description='Payload filters, e.g. {"source": "architecture.md"}'
    )


class AskRequest(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    top_k: int = Field(default=5, ge=1, le=50)
    filters: dict[str, FilterValue] | None = None
    tenant: str = Field(
        default="default",
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Scopes retrieval, the answer cache, budgets and the cost ledger",
    )
    access_groups: list[str] = Field(default=[], max_length=50)
    sensitivity: Sensitivity = Field(
        default=Sensitivity.INTERNAL,
        description="`confidential` is answered only by models tagged private (on-prem)",
    )

    def context(self) -> RequestContext:
        return RequestContext(self.tenant, tuple(self.access_groups), self.sensitivity)


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


class ProvenanceOut(BaseModel):
    """How the answer was made: which rung of the ladder, which model and why, at what cost."""

    rung: str = Field(description="llm | extractive | cache | stale-cache")
    model: str
    route: str = Field(description="Why this model: the routing rules that fired")
    attempts: list[str]
    input_tokens: int
    output_tokens: int
    tokens_estimated: bool
    cost_usd: float
    saved_usd: float
    prompt: str
    grounded: bool | None = Field(description="Every sentence cites a passage it was given")
    invalid_citations: list[int]
    uncited_sentences: list[str]

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
        )


class AskResponse(BaseModel):
    question: str
    answer: str
    found: bool
    generator: str
    citations: list[CitationOut]
    provenance: ProvenanceOut | None = None
    timings_ms: dict[str, float] = {}

    @classmethod
    def of(cls, answer: Answer) -> AskResponse:
        return cls(
            question=answer.question,
            answer=answer.text,
            found=answer.found,
            generator=answer.generator,
            citations=[
                CitationOut(**{k: getattr(c, k) for k in CitationOut.model_fields})
                for c in answer.citations
            ],
            provenance=ProvenanceOut.of(answer.provenance) if answer.provenance else None,
            timings_ms=dict(answer.timings_ms),
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


class JobOut(BaseModel):
    job_id: str
    state: JobState
    attempts: int
    documents: int
    chunks: int
    errors: dict[str, str]
    updated_at: str

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
        )
