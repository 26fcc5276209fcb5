"""The query plan: how a `SearchQuery` becomes prefetches, fusion and MMR, written once.

A plan is a small tree of stages. Each stage scores candidates one way and keeps the best
`limit`: a stage with sources re-scores its sources' candidates, a stage without finds its
own under the plan's filter. Adapters only translate the tree into their client's types
(Qdrant's prefetch + query), so every engine runs the same query:

    dense, sparse:  Nearest(limit)                        or Mmr(limit) when MMR is on
    hybrid:         Fuse(limit) <- [Nearest dense (prefetch), Nearest sparse (prefetch)
                                    (+ Nearest keywords (prefetch) when the query names some)]
    hybrid + MMR:   Mmr(limit) <- Fuse(prefetch) <- [Nearest dense, Nearest sparse]

where Fuse is `Rrf` (ranks) or `Dbsf` (normalised scores), as `SearchQuery.fusion` says.

MMR diversifies by the dense vectors; a sparse-only search ignores it, and needs no dense
query vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from core.errors import InvalidRequestError
from core.types import Fusion, SearchMode, SearchQuery, SparseVector
from store.schema import FilterTerm, filter_terms


@dataclass(frozen=True, slots=True)
class NearestDense:
    """Rank by similarity to the dense query vector."""

    vector: Sequence[float]


@dataclass(frozen=True, slots=True)
class NearestSparse:
    """Rank by BM25: the sparse vectors' dot product, IDF applied by the engine."""

    vector: SparseVector


@dataclass(frozen=True, slots=True)
class Rrf:
    """Reciprocal rank fusion of the sources' rankings; `weights` in source order."""

    k: int
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class Dbsf:
    """Distribution-based score fusion: each source's scores are normalised by their
    mean +- 3 standard deviations, then summed (the engine has no weights for it)."""


@dataclass(frozen=True, slots=True)
class Mmr:
    """Maximal marginal relevance over the dense vectors, among the best `candidates`.

    `relevance` is `RetrievalSettings.mmr_lambda`: 1.0 ranks by relevance alone, lower
    values push near-duplicates of already chosen points down."""

    vector: Sequence[float]
    relevance: float
    candidates: int

    @property
    def diversity(self) -> float:
        """The same knob the other way round, as Qdrant's server API takes it."""
        return 1.0 - self.relevance


Scoring: TypeAlias = NearestDense | NearestSparse | Rrf | Dbsf | Mmr


@dataclass(frozen=True, slots=True)
class Stage:
    """Score candidates with `scoring` and keep the best `limit`."""

    scoring: Scoring
    limit: int
    sources: tuple[Stage, ...] = ()

    @property
    def searches(self) -> bool:
        """Finds its own candidates (so the filter applies here) instead of re-scoring
        those of its sources."""
        return not self.sources


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """The stage tree of one query, and the filter its searching stages apply."""

    root: Stage
    filter: tuple[FilterTerm, ...] = ()


def plan_query(query: SearchQuery) -> QueryPlan:
    """The plan every adapter runs for `query`; refuses a query that lacks the dense
    vector its mode needs."""
    if query.mode is SearchMode.SPARSE:
        return QueryPlan(
            Stage(NearestSparse(query.sparse), query.limit),
            tuple(filter_terms(query.filters, query.scope)),
        )
    if query.dense is None:
        raise InvalidRequestError(
            f"a {query.mode.value} search needs a dense query vector (SearchQuery.dense is "
            "None); only a sparse search can do without one"
        )
    mmr = (
        None
        if query.mmr_lambda is None
        else Mmr(query.dense, query.mmr_lambda, query.prefetch_limit)
    )
    root: Stage
    if query.mode is SearchMode.HYBRID:
        weights: tuple[float, ...] | None = query.weights
        if weights is not None and query.keywords is not None and query.keywords.indices:
            weights = (*weights, weights[1])  # the keyword list weighs like BM25
        fusion: Rrf | Dbsf = Dbsf() if query.fusion == Fusion.DBSF else Rrf(query.rrf_k, weights)
        found: tuple[Stage, ...] = (
            Stage(NearestDense(query.dense), query.prefetch_limit),
            Stage(NearestSparse(query.sparse), query.prefetch_limit),
        )
        if query.keywords is not None and query.keywords.indices:
            found += (Stage(NearestSparse(query.keywords), query.prefetch_limit),)
        if mmr is None:
            root = Stage(fusion, query.limit, found)
        else:  # diversify the fused candidates by their dense vectors
            root = Stage(mmr, query.limit, (Stage(fusion, query.prefetch_limit, found),))
    else:
        root = Stage(mmr or NearestDense(query.dense), query.limit)
    return QueryPlan(root, tuple(filter_terms(query.filters, query.scope)))
