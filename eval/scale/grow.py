"""Pure helpers of the scale benchmark: split passages into chunks, grow a base set of real
chunks to any size, and score a search against exact search. No I/O, no engine."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32]
Ints = npt.NDArray[np.int64]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_passage(text: str, size: int = 600) -> list[str]:
    """Cut a passage into chunks of at most ~`size` characters on sentence ends (a sentence
    longer than `size` stays whole): close to what the ingest chunker makes of prose."""
    chunks: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text.strip()):
        if current and len(current) + 1 + len(sentence) > size:
            chunks.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        chunks.append(current)
    return chunks


def unit(vectors: Floats) -> Floats:
    """Rows scaled to length 1 (cosine = dot product)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    scaled: Floats = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return scaled


def grow_plan(base: int, size: int, seed: int = 0) -> tuple[Ints, Ints, npt.NDArray[np.float32]]:
    """For each of `size` points: the base chunk it copies, a second base chunk it borrows
    from, and how much (0 for the first `base` points: the real chunks as they are).

    A grown point is a real chunk recombined with a sliver of another one, so the grown
    set keeps the real one's clusters and density instead of filling space uniformly."""
    rng = np.random.default_rng(seed)
    first = np.arange(size, dtype=np.int64) % base
    second = rng.integers(0, base, size=size, dtype=np.int64)
    mix = rng.uniform(0.05, 0.25, size=size).astype(np.float32)
    mix[: min(base, size)] = 0.0
    return first, second, mix


def grow_vectors(
    base: Floats, first: Ints, second: Ints, mix: npt.NDArray[np.float32], noise: float, seed: int
) -> Floats:
    """unit(base[first] + mix * base[second] + noise): near its source chunk (cosine ~0.95
    at the defaults), never identical to it or to another grown point."""
    rng = np.random.default_rng(seed)
    grown = base[first] + mix[:, None] * base[second]
    scale = np.float32(noise / np.sqrt(base.shape[1]))
    jitter = rng.standard_normal(grown.shape, dtype=np.float32) * scale
    grown += np.where(mix[:, None] > 0, jitter, np.float32(0.0))
    return unit(grown)


def grow_text(texts: Sequence[str], first: int, second: int, mix: float) -> str:
    """The text of a grown point: its source chunk plus the last sentence of the borrowed
    one (the BM25 side of the recombination); a real chunk as it is."""
    if mix == 0.0:
        return texts[first]
    tail = _SENTENCE_END.split(texts[second].strip())[-1]
    return f"{texts[first]} {tail}"


def exact_top(vectors: Floats, queries: Floats, k: int, block: int = 8192) -> Ints:
    """Ids (row numbers) of the k most similar rows for each query, by brute force."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(vectors), block):
        scores = queries @ vectors[start : start + block].T
        ids = np.broadcast_to(np.arange(start, start + scores.shape[1]), scores.shape)
        all_scores = np.concatenate([best_scores, scores], axis=1)
        all_ids = np.concatenate([best_ids, ids], axis=1)
        keep = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(all_scores, keep, axis=1)
        best_ids = np.take_along_axis(all_ids, keep, axis=1)
    return best_ids


def recall_at_k(found: Sequence[Sequence[int]], exact: Sequence[Sequence[int]], k: int) -> float:
    """Mean share of the exact top k that the search returned in its top k."""
    if not exact:
        return 0.0
    shares = [
        len(set(list(f)[:k]) & set(list(e)[:k])) / min(k, len(e)) if len(e) else 1.0
        for f, e in zip(found, exact, strict=True)
    ]
    return float(np.mean(shares))
