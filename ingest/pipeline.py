"""The ingest data path: parse -> chunk -> embed -> upsert, one stage per call.

Re-ingesting a source upserts its chunks under deterministic ids, then deletes the
source's points that the new version no longer has: no duplicates, no orphans, and the
old version stays searchable until the new one is in.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TypeVar

from core.errors import IngestError
from core.hashing import file_sha256
from core.ports import Embedder, Manifest, Parser, SparseEncoder, VectorStore
from core.types import (
    DEFAULT_TENANT,
    Chunk,
    IndexedChunk,
    IngestFailure,
    IngestProgress,
    ParsedDocument,
)
from ingest.chunk import StructureChunker, embedding_text
from ingest.pii import PiiRedactor

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestReport:
    """What one run did, per source; failures carry the reason and never stop the batch."""

    documents: int = 0
    chunks: int = 0
    skipped: int = 0
    indexed: list[str] = field(default_factory=list)  # sources new or changed in this run
    pruned: list[str] = field(default_factory=list)
    failed: list[IngestFailure] = field(default_factory=list)
    published: str | None = None  # the collection the alias was switched to, if any
    flagged: dict[str, int] = field(default_factory=dict)  # source -> chunks read as injection

    @property
    def ok(self) -> bool:
        return not self.failed


class Indexer:
    """Embeds chunks (dense + sparse) in batches and writes them to the store."""

    def __init__(
        self,
        embedder: Embedder,
        sparse: SparseEncoder,
        store: VectorStore,
        batch_size: int = 64,
    ) -> None:
        self._embedder = embedder
        self._sparse = sparse
        self._store = store
        self._batch_size = batch_size
        store.ensure_collection(embedder.dim)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def embed(
        self, chunks: Sequence[Chunk], dense: Sequence[Sequence[float]] | None = None
    ) -> list[IndexedChunk]:
        """Dense + sparse vectors for one batch; `dense` (one per chunk) skips the model."""
        texts = [embedding_text(chunk) for chunk in chunks]
        vectors = self._embedder.embed_documents(texts) if dense is None else dense
        sparse = self._sparse.encode_documents(texts)
        return [IndexedChunk(c, d, s) for c, d, s in zip(chunks, vectors, sparse, strict=True)]

    def write(self, points: Sequence[IndexedChunk]) -> None:
        self._store.upsert(points)

    def index(
        self, chunks: Sequence[Chunk], dense_vectors: Sequence[Sequence[float]] | None = None
    ) -> None:
        """Embed and upsert in batches; `dense_vectors` (one per chunk) skips the dense model."""
        for start in range(0, len(chunks), self._batch_size):
            end = start + self._batch_size
            self.write(
                self.embed(
                    chunks[start:end], None if dense_vectors is None else dense_vectors[start:end]
                )
            )

    def finish_source(self, tenant: str, source: str, keep_ids: Sequence[str]) -> None:
        """Drop the document's points that its new version no longer has."""
        self._store.delete_by_source(tenant, source, keep_ids=keep_ids)

    def delete_source(self, tenant: str, source: str) -> None:
        self._store.delete_by_source(tenant, source)


#: How many batches of chunks are buffered and sorted by length before embedding.
SORT_WINDOW_BATCHES = 8


class StreamingWriter:
    """Batches chunks across sources and overlaps each upsert with the next embedding.

    Small documents fill a model batch together, so the embedder always runs full
    batches; the store write of batch N runs in a background thread while batch N+1 is
    embedded. A source is finished (stale points deleted, `on_complete` called) only
    once every one of its chunks is stored, which keeps the manifest protocol safe.
    """

    def __init__(
        self,
        indexer: Indexer,
        on_complete: Callable[[str, list[str]], None] | None = None,
        tenant: str = DEFAULT_TENANT,
        on_embedded: Callable[[int], None] | None = None,
    ) -> None:
        self._indexer = indexer
        self._tenant = tenant
        self._on_complete = on_complete
        self._on_embedded = on_embedded
        self._buffer: list[Chunk] = []
        self._remaining: dict[str, int] = {}
        self._ids: dict[str, list[str]] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upsert")
        self._inflight: tuple[Future[None], Counter[str]] | None = None

    def add(self, source: str, chunks: Sequence[Chunk]) -> None:
        self._ids[source] = [c.id for c in chunks]
        self._remaining[source] = len(chunks)
        if not chunks:
            self._complete(source)
            return
        self._buffer.extend(chunks)
        if len(self._buffer) >= self._indexer.batch_size * SORT_WINDOW_BATCHES:
            self._drain(keep_partial=True)

    def _drain(self, keep_partial: bool) -> None:
        """Embed the buffer in batches of similar length: a batch is padded to its longest
        text, so sorting a window of chunks by length saves the padding's compute."""
        self._buffer.sort(key=lambda chunk: len(embedding_text(chunk)))
        size = self._indexer.batch_size
        while self._buffer and (len(self._buffer) >= size or not keep_partial):
            batch, self._buffer = self._buffer[:size], self._buffer[size:]
            self._submit(batch)

    def _submit(self, batch: list[Chunk]) -> None:
        points = self._indexer.embed(batch)  # runs while the previous batch is written
        if self._on_embedded is not None:
            self._on_embedded(len(batch))
        self._settle()
        future = self._pool.submit(self._indexer.write, points)
        self._inflight = (future, Counter(c.source for c in batch))

    def _settle(self) -> None:
        if self._inflight is None:
            return
        future, counts = self._inflight
        self._inflight = None
        future.result()  # re-raises a failed write here, in the caller's thread
        for source, written in counts.items():
            self._remaining[source] -= written
            if self._remaining[source] == 0:
                self._complete(source)

    def _complete(self, source: str) -> None:
        ids = self._ids.pop(source)
        del self._remaining[source]
        self._indexer.finish_source(self._tenant, source, ids)
        if self._on_complete is not None:
            self._on_complete(source, ids)

    def close(self) -> None:
        """Write what is buffered and finish every source; call once, at the end."""
        try:
            self._drain(keep_partial=False)
            self._settle()
        finally:
            self._pool.shutdown(wait=True)


class _Progress:
    """Counts an ingest run's files and chunks and tells `sink` after every change."""

    def __init__(self, sink: Callable[[IngestProgress], None] | None, files_total: int) -> None:
        self._sink = sink
        self._state = IngestProgress(files_total=files_total)

    def _move(self, **changes: int) -> None:
        state = self._state
        self._state = replace(state, **{k: getattr(state, k) + v for k, v in changes.items()})
        if self._sink is not None:
            self._sink(self._state)

    def parsed(self, chunks: int) -> None:
        self._move(chunks_total=chunks)

    def embedded(self, chunks: int) -> None:
        self._move(chunks_embedded=chunks)

    def file_done(self) -> None:
        self._move(files_done=1)


def discover(root: Path, suffixes: Iterable[str]) -> list[Path]:
    """Regular files under `root` (or `root` itself) with a supported suffix, in a stable order.

    Symbolic links below `root` are never followed, to files or to folders: one link in an
    ingested folder would otherwise index, and serve, any file the server can read. Each
    skipped link is logged; so is a name no later stage could store (not valid UTF-8).
    """
    allowed = {s.lower() for s in suffixes}
    if root.is_file():
        return [root]
    inside = root.resolve()
    found: list[Path] = []
    pending = [root]
    while pending:
        folder = pending.pop()
        try:
            entries = list(folder.iterdir())
        except OSError as exc:
            log.warning("skipping the folder %r: %s", str(folder), exc.strerror or exc)
            continue
        for entry in entries:
            if entry.is_symlink():
                log.warning("skipping %r: symbolic links are not followed", str(entry))
            elif not entry.resolve().is_relative_to(inside):  # a folder swapped for a link
                log.warning("skipping %r: it resolves outside %r", str(entry), str(root))
            elif entry.is_dir():
                pending.append(entry)
            elif entry.is_file() and entry.suffix.lower() in allowed:
                try:
                    str(entry).encode()  # undecodable name bytes come back as surrogates
                except UnicodeEncodeError:
                    log.warning("skipping %r: its name is not valid UTF-8", str(entry))
                    continue
                found.append(entry)
    return sorted(found)


@dataclass(frozen=True, slots=True)
class _Job:
    """One file to parse, and whose chunks it makes."""

    path: Path
    source: str
    digest: str
    tenant: str
    access_groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Parsed:
    source: str
    digest: str
    document: ParsedDocument
    chunks: list[Chunk]


def _failed(job: _Job, reason: str) -> IngestFailure:
    """The parser's errors name their file first (`<path>: reason`); the failure keeps
    the path and the reason apart."""
    return IngestFailure(str(job.path), job.source, reason.removeprefix(f"{job.path}: "))


def _parse_one(
    parser: Parser, chunker: StructureChunker, redactor: PiiRedactor | None, job: _Job
) -> _Parsed | IngestFailure:
    path, source = job.path, job.source
    try:
        document = parser.parse(str(path), source)
        if redactor is not None and redactor.applies_to(source):
            elements = tuple(replace(e, text=redactor.redact(e.text)) for e in document.elements)
            document = replace(document, elements=elements)
        chunks = chunker.chunk(document, job.tenant, job.access_groups)
        return _Parsed(source, job.digest, document, chunks)
    except IngestError as exc:
        return _failed(job, str(exc))
    except Exception as exc:  # a parser bug on one file must not stop the batch
        log.exception("parsing %s failed unexpectedly", path)
        return _failed(job, f"unexpected {type(exc).__name__}")


_WORKER: tuple[Parser, StructureChunker, PiiRedactor | None] | None = None

#: prctl(2) option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def _init_worker(parser: Parser, chunker: StructureChunker, redactor: PiiRedactor | None) -> None:
    global _WORKER  # one parser per worker process, built once
    from core.offline import apply_offline_defaults

    _exit_with_parent()
    apply_offline_defaults()
    _WORKER = (parser, chunker, redactor)


def _exit_with_parent() -> None:
    """End this worker when the process that owns the pool dies, even by SIGKILL.

    An orphaned worker never sees end-of-file on its task queue (it holds both ends of
    the queue's pipe): it would wait for work forever, holding its parser's memory.
    """
    parent = multiprocessing.parent_process()
    if parent is None:  # not a pool worker
        return
    if not _parent_death_signal():
        _watch_parent(parent)
    if os.getppid() != parent.pid:  # the parent died before the watch was set up
        os._exit(1)


def _parent_death_signal() -> bool:
    """Linux: the kernel sends SIGTERM when the parent dies. Strictly, when the parent's
    thread that started this worker ends: `ingest_paths` starts and shuts the pool down
    in one call, so that thread outlives every worker it starts."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None)
        return int(libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(signal.SIGTERM))) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: BaseProcess) -> None:
    """Anywhere else: a daemon thread waits for the parent to end (multiprocessing's
    parent sentinel, no polling), then ends this process."""

    def exit_after_parent() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=exit_after_parent, name="parent-watch", daemon=True).start()


def _parse_in_worker(job: _Job) -> _Parsed | IngestFailure:
    assert _WORKER is not None
    parser, chunker, redactor = _WORKER
    return _parse_one(parser, chunker, redactor, job)


#: Files parsed ahead of the embedder, per parse worker.
PARSE_AHEAD_PER_WORKER = 2

_T = TypeVar("_T")
_R = TypeVar("_R")


def bounded_map(
    pool: Executor, call: Callable[[_T], _R], items: Iterable[_T], ahead: int
) -> Iterator[_R]:
    """`pool.map` that keeps at most `ahead` calls submitted beyond the result consumed.
    `pool.map` submits every file of a run at once: when parsing outruns embedding, the
    whole run's documents and chunks would wait in this process."""
    waiting: deque[Future[_R]] = deque()
    todo = iter(items)
    for item in todo:
        waiting.append(pool.submit(call, item))
        if len(waiting) >= ahead:
            break
    while waiting:
        result = waiting.popleft().result()
        for item in itertools.islice(todo, 1):
            waiting.append(pool.submit(call, item))
        yield result


def _parse_pool(
    workers: int, parser: Parser, chunker: StructureChunker, redactor: PiiRedactor | None
) -> Executor:
    """Where files are parsed while this process embeds: one thread of this process for
    `workers` == 1, else that many spawn-started processes.

    One thread parses while the embedder runs (ONNX Runtime releases the GIL) and loads the
    parsers once, in this process: each parse worker process costs ~310 MB of its own
    (unstructured, spaCy, lxml, an interpreter), which kept the process tree of an ingest of
    real documents over 1 GB (docs/adr/0027). Processes parse in parallel where cores spare.
    """
    if workers == 1:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse")
    # "spawn": forked workers would inherit this process's open store files and locks,
    # and keep them after a crash of the parent, blocking the next run.
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker,
        initargs=(parser, chunker, redactor),
    )


def ingest_paths(
    paths: Sequence[Path],
    parser: Parser,
    chunker: StructureChunker,
    indexer: Indexer,
    root: Path | None = None,
    manifest: Manifest | None = None,
    prune: bool = False,
    on_document: Callable[[ParsedDocument, int], None] | None = None,
    workers: int = 1,
    metadata: Mapping[str, str | list[str]] | None = None,
    redactor: PiiRedactor | None = None,
    tenant: str = DEFAULT_TENANT,
    access_groups: Sequence[str] = (),
    on_progress: Callable[[IngestProgress], None] | None = None,
    screen: Callable[[Chunk], Chunk] | None = None,
) -> IngestReport:
    """Parse, chunk and index each file; one bad file is recorded and skipped.

    A document's source id is its path relative to `root`, so ids stay stable wherever
    the folder is checked out. With a manifest, unchanged files are skipped without
    parsing, an interrupted run is completed by the next one, and `prune` removes the
    chunks of the tenant's sources that are no longer among `paths`. Files are parsed ahead
    of the embedder, in a thread (`workers` == 1) or a pool of `workers` processes, while
    this process embeds and writes (a single file: in line). Every chunk belongs to
    `tenant` and is readable by `access_groups` (none: the whole tenant); `metadata`
    (pipeline version...) is stamped on every chunk with the ingest time. `on_progress`
    hears files and chunks as they move (after each parse, embedding batch and file).
    """
    groups = tuple(sorted(set(access_groups)))
    stamp = {**(metadata or {}), "ingested_at": datetime.now(UTC).isoformat(timespec="seconds")}
    report = IngestReport()
    progress = _Progress(on_progress, files_total=len(paths))
    seen: set[str] = set()
    jobs: list[_Job] = []
    for path in paths:
        source = path.relative_to(root).as_posix() if root else path.name
        seen.add(source)
        try:
            digest = file_sha256(path)
        except OSError as exc:
            report.failed.append(
                IngestFailure(str(path), source, f"cannot read ({exc.strerror or exc})")
            )
            progress.file_done()
            continue
        previous = manifest.get(tenant, source) if manifest else None
        if previous and previous.state == "done" and previous.content_hash == digest:
            report.skipped += 1
            progress.file_done()
            continue
        jobs.append(_Job(path, source, digest, tenant, groups))

    documents: dict[str, tuple[ParsedDocument, str]] = {}

    def completed(source: str, ids: list[str]) -> None:
        document, digest = documents.pop(source)
        if manifest:
            manifest.commit(tenant, source, digest, ids, document.title, groups)
        progress.file_done()
        report.documents += 1
        report.chunks += len(ids)
        report.indexed.append(source)
        if on_document is not None:
            on_document(document, len(ids))

    writer = StreamingWriter(indexer, completed, tenant, progress.embedded)
    pool = _parse_pool(workers, parser, chunker, redactor) if len(jobs) > 1 else None
    with ExitStack() as closing:  # on every path: the writer flushes, the pool ends
        closing.callback(writer.close)
        if pool is not None:  # closed first: a failed run stops parsing, then flushes
            closing.callback(pool.shutdown, wait=True, cancel_futures=True)
        results: Iterable[_Parsed | IngestFailure] = (
            bounded_map(
                pool,
                _parse_in_worker if workers > 1 else partial(_parse_one, parser, chunker, redactor),
                jobs,
                ahead=workers * PARSE_AHEAD_PER_WORKER,
            )
            if pool
            else (_parse_one(parser, chunker, redactor, job) for job in jobs)
        )
        for parsed in results:
            if isinstance(parsed, IngestFailure):
                log.warning("skipped %s", parsed)
                report.failed.append(parsed)
                progress.file_done()
                continue
            documents[parsed.source] = (parsed.document, parsed.digest)
            if manifest:
                ids = [c.id for c in parsed.chunks]
                manifest.begin(
                    tenant, parsed.source, parsed.digest, ids, parsed.document.title, groups
                )
            progress.parsed(len(parsed.chunks))
            chunks = [replace(c, metadata={**c.metadata, **stamp}) for c in parsed.chunks]
            if screen is not None:  # prompt-injection marks (governance.screening)
                chunks = [screen(c) for c in chunks]
                flagged = sum(1 for c in chunks if "injection" in c.metadata)
                if flagged:
                    report.flagged[parsed.source] = flagged
            writer.add(parsed.source, chunks)
    if prune and manifest:
        for record in manifest.sources(tenant):
            if record.source not in seen:
                indexer.delete_source(tenant, record.source)
                manifest.remove(tenant, record.source)
                report.pruned.append(record.source)
    return report
