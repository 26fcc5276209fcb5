"""What every adapter agrees on: vector names, distance, filters and the chunk <-> payload
mapping. How a query runs is `store.plan`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

from core.errors import SchemaMismatchError
from core.types import Below, Chunk, Filters, Scope

DENSE = "dense"
SPARSE = "bm25"
DISTANCE = "Cosine"


# Payload fields that filters use, indexed as keywords on both adapters. Without an index
# a filtered query checks every point's payload: 60 ms at 10k answer-cache entries on
# Qdrant Edge, 1.5 ms with one (eval/bench_cache; docs/adr/0013-cache-threshold.md).
KEYWORD_FIELDS = (
    "tenant",
    "access_groups",
    "source",
    "meta.scope",
    "meta.corpus",
    "meta.cited_sources",
)


#: Stored in `access_groups` of a chunk that has none: readable by its whole tenant. Group
#: names cannot contain `*` (core.types.NAME_PATTERN), so no principal can claim it.
WHOLE_TENANT = "*"

#: Payload fields a caller's filters may name. Everything else (tenant, access_groups,
#: chunk_id, meta.*) is reserved: the server alone decides who reads what.
FILTERABLE_FIELDS = frozenset({"source", "title", "section", "page"})


#: One condition of a filter: the field, and the value it must hold (a list: any of them).
FilterTerm: TypeAlias = tuple[str, str | int | bool | Below | list[str]]


def filter_terms(filters: Filters | None, scope: Scope | None = None) -> list[FilterTerm]:
    """The one filter plan both adapters translate: (field, value) pairs that must all
    match; a list value matches any of its items. The scope adds the tenant and the
    caller's groups (chunks without groups are stored with `WHOLE_TENANT`)."""
    terms: list[FilterTerm] = []
    for key, value in (filters or {}).items():
        terms.append((key, value if isinstance(value, (str, int, bool, Below)) else list(value)))
    if scope is not None:
        terms.append(("tenant", scope.tenant))
        terms.append(("access_groups", [*scope.access_groups, WHOLE_TENANT]))
    return terms


def to_payload(chunk: Chunk) -> dict[str, Any]:
    """Flat, filterable payload; free-form metadata sits under `meta`."""
    return {
        "tenant": chunk.tenant,
        "access_groups": list(chunk.access_groups) or [WHOLE_TENANT],
        "chunk_id": chunk.id,
        "source": chunk.source,
        "text": chunk.text,
        "title": chunk.title,
        "section": chunk.section,
        "page": chunk.page,
        "index": chunk.index,
        "content_hash": chunk.content_hash,
        "meta": dict(chunk.metadata),
    }


def from_payload(payload: Mapping[str, Any]) -> Chunk:
    return Chunk(
        id=str(payload["chunk_id"]),
        source=str(payload["source"]),
        text=str(payload["text"]),
        title=str(payload.get("title", "")),
        section=str(payload.get("section", "")),
        page=payload.get("page"),
        index=int(payload.get("index", 0)),
        content_hash=str(payload.get("content_hash", "")),
        metadata=dict(payload.get("meta") or {}),
        tenant=str(payload.get("tenant", "")),
        access_groups=tuple(g for g in payload.get("access_groups") or () if g != WHOLE_TENANT),
    )


def check_dense(collection: str, found_size: int, found_distance: str, expected_size: int) -> None:
    """Refuse to mix vectors of two embedders in one collection, and say how to fix it."""
    if found_size != expected_size or found_distance.lower() != DISTANCE.lower():
        raise SchemaMismatchError(
            f"collection {collection!r} holds {found_size}-d {found_distance} vectors but the "
            f"embedder makes {expected_size}-d {DISTANCE} vectors. Either set "
            "RAG_EMBEDDING__MODEL back to the model it was built with, or point "
            "RAG_STORE__COLLECTION at a new collection and re-ingest (or delete the old one)."
        )
