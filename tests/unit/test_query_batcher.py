"""Concurrent queries share one model call; a lone query waits for nothing."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from ingest.embed import QueryBatcher


class GatedModel:
    """Records each call's batch; the first call waits until the test opens the gate."""

    name, dim = "gated", 2

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.entered, self.gate = threading.Event(), threading.Event()

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [[0.0, 0.0] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        raise AssertionError("the batcher embeds queries in batches")

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        self.batches.append(list(texts))
        self.entered.set()
        self.gate.wait(10)
        if "boom" in texts:
            raise RuntimeError("model failed")
        return [[float(len(t)), float(i)] for i, t in enumerate(texts)]


def test_queries_that_arrive_while_the_model_works_form_one_batch() -> None:
    model = GatedModel()
    batcher = QueryBatcher(model)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(batcher.embed_query, "a")
        assert model.entered.wait(10)
        rest = [pool.submit(batcher.embed_query, "x" * n) for n in range(2, 7)]
        deadline = threading.Event()
        while batcher._waiting.qsize() < 5 and not deadline.wait(0.01):
            pass
        model.gate.set()
        vectors = [first.result(10), *(f.result(10) for f in rest)]
    batcher.close()
    assert model.batches[0] == ["a"]  # the lone first query did not wait
    assert sorted(model.batches[1]) == ["x" * n for n in range(2, 7)]
    assert [v[0] for v in vectors] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # each its own vector


def test_a_model_error_reaches_every_caller_of_the_batch_and_the_worker_lives() -> None:
    model = GatedModel()
    model.gate.set()
    batcher = QueryBatcher(model)
    with pytest.raises(RuntimeError, match="model failed"):
        batcher.embed_query("boom")
    assert batcher.embed_query("fine") == [4.0, 0.0]
    worker = batcher._worker
    batcher.close()
    assert worker is not None
    assert not worker.is_alive()


def test_an_idle_batcher_lets_its_thread_and_model_go(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batcher nobody closed must not pin its model in memory for ever: its thread ends
    after `IDLE_S` without work, and the next query starts a new one."""
    import time
    import weakref

    from ingest import embed

    monkeypatch.setattr(embed, "IDLE_S", 0.05)
    model = GatedModel()
    model.gate.set()
    batcher = QueryBatcher(model)
    assert batcher.embed_query("one") == [3.0, 0.0]
    first = batcher._worker
    assert first is not None
    first.join(timeout=5)
    assert not first.is_alive()
    assert batcher._worker is None
    assert batcher.embed_query("again") == [5.0, 0.0]  # a new thread serves it
    second = batcher._worker
    del batcher
    if second is not None:
        second.join(timeout=5)
    gone = weakref.ref(model)
    del model
    deadline = time.monotonic() + 5
    while gone() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gone() is None
