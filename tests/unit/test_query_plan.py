"""The shared query plan: one tree per `SearchQuery`, whatever adapter runs it."""

from __future__ import annotations

import dataclasses

import pytest

from core.errors import InvalidRequestError
from core.types import Filters, Fusion, Scope, SearchMode, SearchQuery, SparseVector
from store.plan import Dbsf, Mmr, NearestDense, NearestSparse, Rrf, Stage, plan_query

DENSE = [0.6, 0.8]
SPARSE = SparseVector((3,), (1.0,))


def _query(
    mode: SearchMode,
    *,
    weights: tuple[float, float] | None = None,
    mmr_lambda: float | None = None,
    filters: Filters | None = None,
    scope: Scope | None = None,
) -> SearchQuery:
    return SearchQuery(
        DENSE,
        SPARSE,
        5,
        mode,
        prefetch_limit=40,
        rrf_k=20,
        weights=weights,
        mmr_lambda=mmr_lambda,
        filters=filters,
        scope=scope,
    )


def test_hybrid_fuses_a_dense_and_a_sparse_search_with_rrf() -> None:
    plan = plan_query(_query(SearchMode.HYBRID, weights=(2.0, 1.0)))
    assert plan.root == Stage(
        Rrf(20, (2.0, 1.0)),
        5,
        (Stage(NearestDense(DENSE), 40), Stage(NearestSparse(SPARSE), 40)),
    )
    assert [s.searches for s in (plan.root, *plan.root.sources)] == [False, True, True]


def test_dbsf_replaces_rrf_and_ignores_rank_weights() -> None:
    query = dataclasses.replace(_query(SearchMode.HYBRID, weights=(2.0, 1.0)), fusion=Fusion.DBSF)
    root = plan_query(query).root
    assert root.scoring == Dbsf()
    assert [s.scoring for s in root.sources] == [NearestDense(DENSE), NearestSparse(SPARSE)]


def test_hybrid_mmr_diversifies_the_fused_candidates() -> None:
    root = plan_query(_query(SearchMode.HYBRID, mmr_lambda=0.7)).root
    assert root.scoring == Mmr(DENSE, 0.7, 40)
    assert root.limit == 5
    (fused,) = root.sources
    assert (fused.scoring, fused.limit, len(fused.sources)) == (Rrf(20), 40, 2)


@pytest.mark.parametrize("mmr_lambda", [None, 0.5])
def test_dense_mode_is_one_searching_stage(mmr_lambda: float | None) -> None:
    root = plan_query(_query(SearchMode.DENSE, mmr_lambda=mmr_lambda)).root
    expected = NearestDense(DENSE) if mmr_lambda is None else Mmr(DENSE, 0.5, 40)
    assert root == Stage(expected, 5)
    assert root.searches


def test_sparse_mode_ignores_mmr_and_needs_no_dense_vector() -> None:
    query = SearchQuery(None, SPARSE, 5, SearchMode.SPARSE, mmr_lambda=0.5)
    assert plan_query(query).root == Stage(NearestSparse(SPARSE), 5)


@pytest.mark.parametrize("mode", [SearchMode.DENSE, SearchMode.HYBRID])
def test_modes_that_use_the_dense_vector_require_it(mode: SearchMode) -> None:
    with pytest.raises(InvalidRequestError, match=f"a {mode.value} search needs"):
        plan_query(SearchQuery(None, SPARSE, 5, mode))


def test_the_filter_holds_the_callers_filters_and_the_scope() -> None:
    query = _query(SearchMode.HYBRID, filters={"source": "a.md"}, scope=Scope("acme", ("hr",)))
    assert plan_query(query).filter == (
        ("source", "a.md"),
        ("tenant", "acme"),
        ("access_groups", ["hr", "*"]),
    )


def test_mmr_diversity_is_the_complement_of_lambda() -> None:
    assert Mmr(DENSE, 0.8, 10).diversity == pytest.approx(0.2)
    assert Mmr(DENSE, 1.0, 10).diversity == 0.0


def test_named_options_add_a_keyword_prefetch_weighted_like_bm25() -> None:
    keywords = SparseVector((7,), (1.0,))
    query = dataclasses.replace(_query(SearchMode.HYBRID, weights=(2.0, 1.0)), keywords=keywords)
    root = plan_query(query).root
    assert root.scoring == Rrf(20, (2.0, 1.0, 1.0))
    assert [s.scoring for s in root.sources] == [
        NearestDense(DENSE),
        NearestSparse(SPARSE),
        NearestSparse(keywords),
    ]
    empty = dataclasses.replace(query, keywords=SparseVector((), ()))
    assert len(plan_query(empty).root.sources) == 2
