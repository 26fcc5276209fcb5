"""Typed values that cross package boundaries. No vendor type ever leaves an adapter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

#: Payload filters: field -> one value (match) or several (match any).
Filters: TypeAlias = Mapping[str, str | int | bool | Sequence[str]]


@dataclass(frozen=True, slots=True)
class Element:
    """One structural piece of a parsed document (a title, a paragraph, a table...)."""

    text: str
    kind: str
    page: int | None = None
    depth: int = 0


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A source file turned into an ordered list of elements."""

    source: str
    title: str
    elements: tuple[Element, ...]
    content_hash: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """The unit we embed, store, retrieve and cite."""

    id: str
    source: str
    text: str
    title: str
    section: str
    page: int | None
    index: int
    content_hash: str
    #: element_types, tenant, access_groups, ingested_at, pipeline_version, ... (payload `meta`)
    metadata: Mapping[str, str | int | float | bool | list[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SparseVector:
    """Sparse term weights: BM25 token id -> term-frequency weight (the engine applies IDF)."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    """A chunk with the vectors the store keeps beside it."""

    chunk: Chunk
    dense: Sequence[float]
    sparse: SparseVector


class SearchMode(StrEnum):
    """Which index answers a query. HYBRID fuses dense and sparse inside the engine."""

    DENSE = "dense"
    SPARSE = "sparse"
    HYBRID = "hybrid"


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Everything the store needs to run one query; built by retrieval, not by callers."""

    dense: Sequence[float]
    sparse: SparseVector
    limit: int
    mode: SearchMode = SearchMode.HYBRID
    prefetch_limit: int = 50
    rrf_k: int = 60
    weights: tuple[float, float] | None = None
    mmr_lambda: float | None = None
    filters: Filters | None = None


@dataclass(frozen=True, slots=True)
class ScoredChunk:
    """A retrieved chunk and the engine's score for it (fusion score in hybrid mode)."""

    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True)
class Citation:
    """Where a statement in an answer comes from, precise enough to open the source."""

    number: int
    source: str
    title: str
    section: str
    page: int | None
    chunk_id: str
    quote: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A grounded answer: text with [n] markers, the citations they point to, and provenance."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    found: bool
    generator: str
    passages: tuple[ScoredChunk, ...] = ()
    timings_ms: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Retrieval:
    """Ranked chunks plus the time each query stage took (embed, search, rerank)."""

    hits: list[ScoredChunk]
    timings_ms: dict[str, float]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # some files failed, the rest is indexed
    FAILED = "failed"  # gave up after retries: the job is in the dead-letter list


@dataclass(frozen=True, slots=True)
class IngestJob:
    """Files to ingest (path on disk, source id), with who may read them."""

    id: str
    files: tuple[tuple[str, str], ...]
    tenant: str | None = None
    access_groups: tuple[str, ...] = ()


@dataclass(slots=True)
class JobStatus:
    id: str
    state: JobState
    attempts: int = 0
    documents: int = 0
    chunks: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    updated_at: str = ""
