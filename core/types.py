"""Typed values that cross package boundaries. No vendor type ever leaves an adapter."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Literal, NewType, TypeAlias

from core.errors import InvalidRequestError, PermissionDeniedError


@dataclass(frozen=True, slots=True)
class Below:
    """A filter value: the numeric field is lower than `limit` (expiry by age). Internal
    only: a request's JSON filters cannot express it."""

    limit: float


#: Payload filters: field -> one value (match), several (match any), or `Below` (range).
Filters: TypeAlias = Mapping[str, str | int | bool | Below | Sequence[str]]


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


#: Tenant and access-group names: no `/` (document keys), no `*` (the store's "whole
#: tenant" marker), nothing a filter, a path or a log line could misread.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def check_name(kind: str, value: str) -> str:
    """`value` if it is a valid tenant or group name, else an `InvalidRequestError`."""
    if not re.fullmatch(NAME_PATTERN, value):
        raise InvalidRequestError(
            f"{kind} {value[:80]!r} is not a valid name: 1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or digit"
        )
    return value


#: The tenant of the local principal (auth mode `none`) and of CLI runs without --tenant.
DEFAULT_TENANT = "default"


def document_key(tenant: str, source: str) -> str:
    """A document's identity across tenants: two tenants may both own `report.md`.

    Tenant names cannot contain `/` (see `core.identity`), so the key is unambiguous.
    """
    return f"{tenant}/{source}"


@dataclass(frozen=True, slots=True)
class Chunk:
    """The unit we embed, store, retrieve and cite.

    `tenant` and `access_groups` are who may read it: every query is filtered on them inside
    the engine. No groups means the whole tenant may read it.
    """

    id: str
    source: str
    text: str
    title: str
    section: str
    page: int | None
    index: int
    content_hash: str
    #: element_types, ingested_at, pipeline_version, ... (payload `meta`)
    metadata: Mapping[str, str | int | float | bool | list[str]] = field(default_factory=dict)
    tenant: str = DEFAULT_TENANT
    access_groups: tuple[str, ...] = ()


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


@dataclass(frozen=True, slots=True)
class Scope:
    """What a caller may read: its tenant's chunks that have no groups or share one of its
    groups. Adapters turn it into engine filter conditions (never a post-filter)."""

    tenant: str
    access_groups: tuple[str, ...] = ()


class SearchMode(StrEnum):
    """Which index answers a query. HYBRID fuses dense and sparse inside the engine."""

    DENSE = "dense"
    SPARSE = "sparse"
    HYBRID = "hybrid"


class Fusion(StrEnum):
    """How a hybrid search merges its dense and BM25 candidates (ADR 0021).

    `rrf` uses ranks only (1 / (k + rank)); `dbsf` normalises each list's scores by its
    own mean and spread (mean +- 3 sigma) and sums them, so a clear winner in one list
    counts more than a near tie."""

    RRF = "rrf"
    DBSF = "dbsf"


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """Everything the store needs to run one query; built by retrieval, not by callers.

    `dense` may be None only in sparse mode (the store refuses it otherwise), so a
    keyword-only search never runs the embedder."""

    dense: Sequence[float] | None
    sparse: SparseVector
    limit: int
    mode: SearchMode = SearchMode.HYBRID
    prefetch_limit: int = 50
    fusion: Fusion = Fusion.RRF
    rrf_k: int = 60
    weights: tuple[float, float] | None = None
    mmr_lambda: float | None = None
    filters: Filters | None = None
    #: Who is asking; None only for collections that hold no tenant data (eval indexes).
    scope: Scope | None = None
    #: The exact identifiers the query names (command-line options), as BM25 terms: a
    #: hybrid search ranks by them alone in a third prefetch (ADR 0021).
    keywords: SparseVector | None = None


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

    @classmethod
    def of(cls, number: int, chunk: Chunk, quote_chars: int = 300) -> Citation:
        """The citation of passage `number`, quoting the start of its chunk."""
        return cls(
            number,
            chunk.source,
            chunk.title,
            chunk.section,
            chunk.page,
            chunk.id,
            chunk.text[:quote_chars],
        )


#: What every generator answers when the passages do not hold the answer.
NOT_FOUND = "I could not find an answer to this question in the indexed documents."

#: A question's dense embedding from `Embedder.embed_query` (not `embed_documents`: some
#: models encode the two differently). Computed once per request: the answer cache matches
#: on it and retrieval searches with it.
QueryVector = NewType("QueryVector", list[float])


class Sensitivity(StrEnum):
    """How sensitive a request's data is; `confidential` may only reach `private` models."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"


class Role(StrEnum):
    """What a principal may do; each role includes the ones before it."""

    READER = "reader"  # search, ask
    INGESTOR = "ingestor"  # also upload, delete, its own tenant's jobs
    ADMIN = "admin"  # also keys, reindex, costs of every tenant

    def includes(self, other: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(other)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, as established from credentials (an API key, an OIDC token, or the
    local operator). Every scope (tenant, groups, budgets, cache, ledger) derives from it."""

    tenant: str
    role: Role
    access_groups: tuple[str, ...] = ()
    key_id: str = "local"

    def can(self, role: Role) -> bool:
        return self.role.includes(role)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asks, under which rules: scopes retrieval, the answer cache, routing and budgets.

    Built from a `Principal` (`for_principal`), never from a request body.
    """

    tenant: str = DEFAULT_TENANT
    access_groups: tuple[str, ...] = ()
    sensitivity: Sensitivity = Sensitivity.INTERNAL
    key_id: str = "local"

    @classmethod
    def for_principal(
        cls,
        principal: Principal,
        sensitivity: Sensitivity = Sensitivity.INTERNAL,
        narrow_to: Sequence[str] | None = None,
    ) -> RequestContext:
        """The principal's scope, optionally narrowed to a subset of its groups.

        Raises `PermissionDeniedError` when `narrow_to` names a group the principal is not in:
        a request may narrow its access, never widen it.
        """
        groups = principal.access_groups
        if narrow_to is not None:
            extra = sorted(set(narrow_to) - set(groups))
            if extra:
                raise PermissionDeniedError(f"not a member of access group(s): {', '.join(extra)}")
            groups = tuple(sorted(set(narrow_to)))
        return cls(principal.tenant, groups, sensitivity, principal.key_id)

    @property
    def scope(self) -> Scope:
        return Scope(self.tenant, self.access_groups)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one LLM call; `estimated` when the provider did not report them."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    usage: Usage
    model_id: str = ""


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """A piece of a streamed completion; the last one carries the usage, if reported."""

    text: str = ""
    usage: Usage | None = None


class Rung(StrEnum):
    """Which rung of the degradation ladder answered (docs/adr/0012). The values are what
    the API, the ledger and eval reports show."""

    LLM = "llm"  # a model of the routed chain
    EXTRACTIVE = "extractive"  # cited sentences of the passages, no model
    CACHE = "cache"  # a fresh hit of the semantic answer cache
    STALE_CACHE = "stale-cache"  # an expired hit: the last resort when retrieval failed

    @property
    def from_cache(self) -> bool:
        """Served by the answer cache: no model ran, the original answer's cost was saved."""
        return self in (Rung.CACHE, Rung.STALE_CACHE)


@dataclass(frozen=True, slots=True)
class Provenance:
    """How an answer was made: the ladder rung, the model and why, tokens, cost, grounding.

    `attempts` lists every model tried and how it went.
    """

    rung: Rung
    model: str
    route: str
    attempts: tuple[str, ...] = ()
    usage: Usage = Usage()
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    prompt: str = ""
    grounded: bool | None = None
    invalid_citations: tuple[int, ...] = ()
    uncited_sentences: tuple[str, ...] = ()
    #: Sentences their cited passages do not back (the groundedness guard).
    unsupported_sentences: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One answered request in the cost ledger (what it cost, or what the cache saved)."""

    at: datetime
    tenant: str
    model: str
    rung: Rung
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    saved_usd: float = 0.0
    saved_tokens: int = 0
    latency_ms: float = 0.0
    route: str = ""


@dataclass(frozen=True, slots=True)
class CostLine:
    """One line of a cost report: a tenant's spend on a model on a day."""

    day: date
    tenant: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    saved_usd: float
    saved_tokens: int
    cache_hits: int


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
    provenance: Provenance | None = None

    @classmethod
    def not_found(
        cls,
        question: str,
        generator: str,
        passages: Sequence[ScoredChunk] = (),
        provenance: Provenance | None = None,
    ) -> Answer:
        """The abstention when the passages do not hold the answer: the same words
        (`NOT_FOUND`) from every generator, and nothing cited."""
        return cls(
            question,
            NOT_FOUND,
            (),
            found=False,
            generator=generator,
            passages=tuple(passages),
            provenance=provenance,
        )


#: What a streamed answer is made of: `token` pieces of text, then one whole `answer`.
#: Failures are not events: they are raised, and each surface reports them its own way
#: (the API as an SSE `error` event).
AnswerEventKind: TypeAlias = Literal["token", "answer", "step"]  # step: the agentic mode


@dataclass(frozen=True, slots=True)
class AnswerEvent:
    """One event of a streamed answer; `answer` is set on the last one only.

    `kind` is a `Literal` rather than an enum: two cases, written where events are made
    (`AnswerEvent("token", text)`) and checked by mypy there, with nothing to import.
    """

    kind: AnswerEventKind
    text: str = ""
    answer: Answer | None = None


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
    """Files to ingest (path on disk, source id), owned by a tenant, with who may read them."""

    id: str
    files: tuple[tuple[str, str], ...]
    tenant: str = DEFAULT_TENANT
    access_groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """How far an ingest run is, counted as chunks are embedded (not only as files end).

    `files_done` counts indexed, unchanged and failed files; `chunks_total` grows as files
    are parsed (a file's chunks are known once it is parsed), so `chunks_embedded` never
    exceeds it and neither count goes backwards.
    """

    files_total: int = 0
    files_done: int = 0
    chunks_total: int = 0
    chunks_embedded: int = 0


@dataclass(slots=True)
class JobStatus:
    id: str
    state: JobState
    tenant: str = DEFAULT_TENANT
    attempts: int = 0
    documents: int = 0
    chunks: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    updated_at: str = ""
    progress: IngestProgress = field(default_factory=IngestProgress)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """A document's manifest row: what it looked like when last indexed, and whether that
    write finished (`done`) or was cut short (`pending`: the next run redoes it)."""

    tenant: str
    source: str
    content_hash: str
    chunk_ids: tuple[str, ...]
    state: str


@dataclass(frozen=True, slots=True)
class ListedRow:
    """A manifest row as a listing shows it (`ingested_at` is `updated_at`, ISO UTC)."""

    source: str
    title: str | None
    chunks: int
    updated_at: str
    state: str
    access_groups: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """One indexed document as its owner sees it (`GET /v1/documents`, `rag documents`)."""

    source: str
    title: str
    chunks: int
    ingested_at: str
    state: str  # "done", or "pending" while it is being (re)written
    access_groups: tuple[str, ...] | None  # None: unknown (indexed before groups were kept)
    pipeline_version: str


@dataclass(frozen=True, slots=True)
class DocumentPage:
    """A page of documents in source order; `next_after` continues it (None: the end)."""

    documents: tuple[DocumentInfo, ...]
    total: int
    next_after: str | None


@dataclass(frozen=True, slots=True)
class IngestFailure:
    """Why one file was not ingested: where it is, its source id, and the reason alone
    (never the path again). `str()` is the one-line `path: reason` that reports print."""

    path: str
    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"
