"""Request and response models of the HTTP API (they are the OpenAPI contract)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from core.types import Answer, JobState, JobStatus, ScoredChunk, SearchMode

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


class AskResponse(BaseModel):
    question: str
    answer: str
    found: bool
    generator: str
    citations: list[CitationOut]

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
