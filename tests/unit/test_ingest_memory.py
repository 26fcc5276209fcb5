"""What an ingest run holds in memory: parse results wait for the embedder a few at a time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from ingest.pipeline import bounded_map


def test_parsing_runs_only_a_few_files_ahead_of_the_consumer() -> None:
    submitted: list[int] = []
    lock = threading.Lock()

    def parse(n: int) -> int:
        with lock:
            submitted.append(n)
        return n * 10

    with ThreadPoolExecutor(2) as pool:
        results = bounded_map(pool, parse, range(100), ahead=4)
        assert next(results) == 0
        pool.submit(lambda: None).result()  # a later task ran: the first ones have too
        assert len(submitted) <= 5  # the one consumed and 4 ahead, never the whole run
        assert list(results) == [n * 10 for n in range(1, 100)]  # in order, all of them
    assert sorted(submitted) == list(range(100))


def test_nothing_to_parse_yields_nothing() -> None:
    with ThreadPoolExecutor(1) as pool:
        assert list(bounded_map(pool, str, [], ahead=2)) == []


def test_releasing_freed_memory_is_safe_anywhere() -> None:
    """glibc's malloc_trim where there is one; a no-op elsewhere (macOS, musl)."""
    from ingest.embed import release_freed_memory

    release_freed_memory()
    release_freed_memory()
