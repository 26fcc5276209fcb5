"""Embedding adapters: fastembed for dense vectors, Qdrant's BM25 for sparse ones.

Both implement the ports in `core.ports`; ingest and retrieval receive them from
`api/wiring.py` and never import fastembed or qdrant_edge themselves.
"""

from __future__ import annotations

import ctypes
import functools
import queue
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from threading import Lock
from typing import Any, Protocol

import qdrant_edge as qe

from core.errors import ModelUnavailableError
from core.ports import Embedder
from core.settings import EmbeddingSettings, SparseSettings
from core.text import with_options
from core.types import SparseVector
from ingest.models import LOCAL_MODELS, MODEL_FILE, is_assembled, model_dir

_REGISTER_LOCK = Lock()
_REGISTERED: set[str] = set()


def _register_local(name: str) -> None:
    """Teach fastembed about a local model once per process (its registry is global)."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    with _REGISTER_LOCK:
        if name in _REGISTERED:
            return
        spec = LOCAL_MODELS[name]
        TextEmbedding.add_custom_model(
            model=name,
            pooling=PoolingType.MEAN,
            normalization=True,
            sources=ModelSource(hf=f"local/{name}"),
            dim=spec.dim,
            model_file=MODEL_FILE,
            description=spec.description,
            license=spec.license,
            output_name=spec.output_name,
        )
        _REGISTERED.add(name)


@functools.lru_cache(maxsize=4)
def _load(model: str, options: tuple[tuple[str, Any], ...]) -> Any:
    """One ONNX session per model and options in a process, shared by every embedder built
    from the same settings (an API, the eval suite and the tests build several contexts):
    a session holds ~350 MB after a few batches, and ONNX Runtime sessions serve
    concurrent calls."""
    from fastembed import TextEmbedding

    return TextEmbedding(model_name=model, **dict(options))


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None (another OS, or a libc without it such as musl)."""
    if sys.platform != "linux":
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_freed_memory() -> None:
    """Give the heap that a batch freed back to the OS. Without ONNX Runtime's arena its
    buffers go back to glibc, which keeps them in per-thread arenas: after a few batches
    an ingest's main process held ~500 MB of freed memory (docs/adr/0027)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def model_vocabulary(settings: EmbeddingSettings) -> frozenset[str] | None:
    """A local model's WordPiece vocabulary, word pieces ("##ing") included (None when
    it has none): the extractive generator tells names from words by how the model
    splits them (ADR 0021)."""
    if settings.model not in LOCAL_MODELS:
        return None
    path = model_dir(settings.models_dir, settings.model) / "vocab.txt"
    if not path.is_file():
        return None
    return frozenset(path.read_text(encoding="utf-8").split())


class FastEmbedder:
    """Dense embeddings with fastembed (ONNX Runtime), from a local folder by default."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self._batch_size = settings.batch_size
        self._trim = not settings.cpu_mem_arena  # with the arena, ONNX keeps what it freed
        kwargs: dict[str, Any] = {
            "threads": settings.threads,
            "enable_cpu_mem_arena": settings.cpu_mem_arena,
        }
        if settings.model in LOCAL_MODELS:
            if not is_assembled(settings.models_dir, settings.model):
                raise ModelUnavailableError(
                    f"embedding model {settings.model!r} is not in {settings.models_dir}/; "
                    f"run `make setup` (or `python -m ingest.models {settings.models_dir}`)"
                )
            _register_local(settings.model)
            kwargs["specific_model_path"] = str(model_dir(settings.models_dir, settings.model))
        elif not settings.allow_download:
            raise ModelUnavailableError(
                f"{settings.model!r} is not a local model ({sorted(LOCAL_MODELS)}); "
                "fastembed would download it: set RAG_EMBEDDING__ALLOW_DOWNLOAD=true and "
                "HF_HUB_OFFLINE=0 to allow that"
            )
        else:
            kwargs["cache_dir"] = str(Path(settings.models_dir) / "fastembed")
        self._model = _load(settings.model, tuple(sorted(kwargs.items())))
        self._name = settings.model
        self._dim = int(self._model.embedding_size)

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = [v.tolist() for v in self._model.embed(list(texts), batch_size=self._batch_size)]
        if self._trim:
            release_freed_memory()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in next(iter(self._model.query_embed(text)))]

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Several queries in one model call (`QueryBatcher` groups concurrent ones)."""
        return [vector.tolist() for vector in self._model.query_embed(list(texts))]


#: Seconds without a query after which the batching thread ends (the next query starts one).
IDLE_S = 5.0


class QueryModel(Embedder, Protocol):
    """An embedder that can encode several queries in one call (`FastEmbedder`)."""

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]: ...


class QueryBatcher:
    """An `Embedder` whose queries, when several requests ask at once, are embedded in one
    model call: a batch of 8-20 short queries costs 35-40 % less CPU per query than one
    call each (docs/adr/0019-api-load-and-overhead.md). One thread runs the model; it takes
    whatever queries are waiting when it is free, so a lone query never waits for company,
    and queries that arrive while it works form the next batch. Documents pass through.
    """

    def __init__(self, embedder: QueryModel, max_batch: int = 32) -> None:
        self._embedder = embedder
        self._max_batch = max_batch
        self._waiting: queue.SimpleQueue[tuple[str, Future[list[float]]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self._embedder.name

    @property
    def dim(self) -> int:
        return self._embedder.dim

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self._embedder.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        future: Future[list[float]] = Future()
        with self._lock:
            if self._worker is None:  # started on first use: no thread at import or build
                self._worker = threading.Thread(
                    target=self._run, name="query-embedding", daemon=True
                )
                self._worker.start()
            self._waiting.put((text, future))
        return future.result()

    def _next(self) -> tuple[str, Future[list[float]]] | None:
        """The next waiting query; None to stop: on `close`, or after `IDLE_S` without
        work (the thread ends, so a batcher nobody closed does not keep its model alive)."""
        while True:
            try:
                return self._waiting.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:  # `embed_query` enqueues under this lock: nothing is lost
                    if self._waiting.empty():
                        self._worker = None
                        return None

    def _run(self) -> None:
        while (first := self._next()) is not None:
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if item is None:  # closing: answer what was taken, then stop
                    self._waiting.put(None)
                    break
                batch.append(item)
            try:
                vectors = self._embedder.embed_queries([text for text, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every caller gets the model's error
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                future.set_result(vector)

    def close(self) -> None:
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self._waiting.put(None)
            worker.join(timeout=10)


class Bm25Encoder:
    """BM25 term weights with Qdrant's own tokenizer (stemming, English stopwords).

    Document vectors carry the BM25 term-frequency part; the collection's IDF modifier
    makes the engine multiply in IDF at query time, so adding documents never
    re-weights stored vectors. Same config JSON as Qdrant server-side BM25.
    """

    def __init__(self, settings: SparseSettings) -> None:
        self._bm25 = qe.Bm25(
            qe.Bm25Config(k=settings.k, b=settings.b, avg_len=settings.avg_len, language="english")
        )
        # k, b and avg_len shape the stored document vectors: they are part of the identity,
        # and so are the option terms (`+options`, ADR 0021).
        self._name = (
            f"qdrant-bm25(k={settings.k},b={settings.b},avg_len={settings.avg_len})+options"
        )

    @property
    def name(self) -> str:
        return self._name

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        return [_convert(self._bm25.embed_document(with_options(text))) for text in texts]

    def encode_query(self, text: str) -> SparseVector:
        return _convert(self._bm25.embed_query(with_options(text)))


def _convert(vector: qe.SparseVector) -> SparseVector:
    return SparseVector(indices=tuple(vector.indices), values=tuple(vector.values))
