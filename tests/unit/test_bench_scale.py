"""The scale benchmark's pure helpers (eval/scale/grow.py) on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest

from eval.scale.grow import (
    exact_top,
    grow_plan,
    grow_text,
    grow_vectors,
    recall_at_k,
    split_passage,
    unit,
)


def test_recall_counts_the_exact_top_k_found() -> None:
    exact = [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert recall_at_k([[1, 2, 3, 4], [5, 6, 7, 8]], exact, 4) == 1.0
    assert recall_at_k([[4, 3, 9, 9], [8, 0, 0, 0]], exact, 4) == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert recall_at_k([[1, 2, 3, 4]], [[9, 8, 7, 6]], 4) == 0.0
    assert recall_at_k([[3, 1]], [[1, 2, 3]], 2) == 0.5  # only the top 2 of each count


def test_exact_top_matches_a_full_sort_across_blocks() -> None:
    rng = np.random.default_rng(3)
    vectors = unit(rng.standard_normal((50, 6)).astype(np.float32))
    queries = unit(rng.standard_normal((4, 6)).astype(np.float32))
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    assert exact_top(vectors, queries, 5, block=7).tolist() == expected.tolist()


def test_growing_keeps_the_real_chunks_and_perturbs_only_the_copies() -> None:
    rng = np.random.default_rng(0)
    base = unit(rng.standard_normal((10, 16)).astype(np.float32))
    first, second, mix = grow_plan(10, 35, seed=1)
    assert first.tolist()[:12] == [*range(10), 0, 1]
    assert (mix[:10] == 0).all()
    assert ((mix[10:] >= 0.05) & (mix[10:] <= 0.25)).all()
    grown = grow_vectors(base, first, second, mix, noise=0.35, seed=2)
    assert np.allclose(np.linalg.norm(grown, axis=1), 1.0, atol=1e-5)
    assert np.allclose(grown[:10], base)  # the real chunks, as they are
    similarity = (grown[10:] * base[first[10:]]).sum(axis=1)
    assert (similarity > 0.8).all()
    assert (similarity < 0.999).all()
    assert len({tuple(np.round(v, 5)) for v in grown}) == 35


def test_grown_text_borrows_the_last_sentence_of_another_chunk() -> None:
    texts = ["Cats purr. Dogs bark.", "Rain falls. Snow melts."]
    assert grow_text(texts, 0, 1, 0.0) == texts[0]
    assert grow_text(texts, 0, 1, 0.1) == "Cats purr. Dogs bark. Snow melts."


def test_split_passage_cuts_on_sentence_ends_near_the_size() -> None:
    text = "One two three. " * 10 + "A very long sentence " * 10 + "ends."
    chunks = split_passage(text, size=50)
    assert all(c.endswith(".") for c in chunks)
    assert " ".join(chunks).split() == text.split()  # nothing lost
    assert max(len(c) for c in chunks[:-1]) <= 50
    assert split_passage("", size=50) == []
