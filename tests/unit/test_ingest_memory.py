"""What an ingest run holds in memory: parse results wait for the embedder a few at a time."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from core.settings import SparseSettings
from core.types import ParsedDocument
from ingest.chunk import StructureChunker
from ingest.embed import Bm25Encoder
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import Indexer, bounded_map, discover, ingest_paths
from tests.fakes import HashEmbedder, LineParser, MemoryStore


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


class _ThreadRecordingParser(LineParser):
    """Records the thread each file is parsed in."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    def parse(self, path: str, source: str | None = None) -> ParsedDocument:
        self.threads.append(threading.current_thread().name)
        return super().parse(path, source)


def test_one_parse_worker_is_a_thread_of_the_ingest_process(tmp_path: Path) -> None:
    """The default: files are parsed in one background thread (the parsers' ~310 MB are
    paid once, in this process), ahead of the embedder; no worker process is started."""
    for i in range(5):
        (tmp_path / f"note-{i}.md").write_text(f"Note {i}\n\nTide {i} is high.\n")
    (tmp_path / "empty.md").write_text("")
    parser = _ThreadRecordingParser()
    store = MemoryStore()
    before = set(multiprocessing.active_children())
    report = ingest_paths(
        discover(tmp_path, SUPPORTED_SUFFIXES),
        parser,
        StructureChunker(600, 150),
        Indexer(HashEmbedder(8), Bm25Encoder(SparseSettings()), store, batch_size=2),
        root=tmp_path,
        workers=1,
    )
    assert set(multiprocessing.active_children()) == before
    assert len(parser.threads) == 6
    assert all(name.startswith("parse") for name in parser.threads)
    assert threading.current_thread().name not in parser.threads
    assert report.documents == 5
    assert report.chunks == store.count() == 5
    assert [f.source for f in report.failed] == ["empty.md"]  # a failure still surfaces
    assert not [t for t in threading.enumerate() if t.name.startswith("parse")]  # joined


def test_a_man_page_is_parsed_without_loading_spacy(tmp_path: Path) -> None:
    """unstructured's title-or-prose heuristics load spaCy (~85 MB); a rendered man page has
    its own partitioner and must not pay for them. A fresh interpreter: others load spaCy."""
    from tests.unit.test_structure import MAN

    page = tmp_path / "sed.1.txt"
    page.write_text(MAN)
    probe = (
        "import sys; from ingest.parse import UnstructuredParser; "
        f"doc = UnstructuredParser().parse({str(page)!r}); "
        "print(len(doc.elements), 'spacy' in sys.modules, 'unstructured' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    elements, spacy, unstructured = run.stdout.split()
    assert int(elements) > 3
    assert (spacy, unstructured) == ("False", "False")
