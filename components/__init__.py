"""The pipeline's parts, built lazily from one `Settings`: embedders, parser, chunker,
retriever, generator (extractive, or the LLM gateway with its catalog and ledger).

Everything that runs the pipeline builds it here: the service surfaces (`api.wiring`,
which adds stores, services, jobs and identity on top) and the eval suite (`eval/`, which
indexes benchmarks into its own stores and never needs the API). Nothing is built at
import time; heavy libraries load on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from core.errors import ConfigError
from core.offline import apply_offline_defaults
from core.ports import ChatModel, Embedder, Generator, Reranker, SparseEncoder, VectorStore
from core.settings import Settings
from ingest.chunk import StructureChunker
from ingest.embed import Bm25Encoder, FastEmbedder, QueryBatcher
from ingest.parse import UnstructuredParser
from retrieval.extractive import ExtractiveGenerator
from retrieval.search import Retriever

if TYPE_CHECKING:  # the gateway (LLM SDKs, SQLAlchemy) is imported only when enabled
    from gateway.catalog import Catalog
    from gateway.ledger import SqlLedger


@dataclass
class Components:
    """The adapters of the ingest and query paths for one `Settings`."""

    settings: Settings

    @cached_property
    def embedder(self) -> Embedder:
        """The dense model; concurrent queries share a model call unless turned off."""
        model = FastEmbedder(self.settings.embedding)
        return QueryBatcher(model) if self.settings.embedding.query_batching else model

    @cached_property
    def sparse(self) -> SparseEncoder:
        return Bm25Encoder(self.settings.sparse)

    @cached_property
    def extractive(self) -> ExtractiveGenerator:
        from ingest.embed import model_vocabulary

        vocabulary = model_vocabulary(self.settings.embedding)
        return ExtractiveGenerator(self.embedder, self.settings.answer, vocabulary)

    @cached_property
    def catalog(self) -> Catalog:
        from gateway.catalog import load_catalog

        return load_catalog(self.settings.llm.catalog)

    @cached_property
    def database_url(self) -> str:
        """The metadata database (manifest, keys, ledger, audit), at the schema's head.

        RAG_DATABASE_URL, else SQLite in data_dir. The first use migrates it (Alembic) and
        copies in the per-feature SQLite files of the release before: a fresh or an old
        data folder starts with no manual step (docs/adr/0026-one-metadata-database.md).
        """
        from metadata.database import sqlite_url, upgrade
        from metadata.legacy import import_legacy

        url = self.settings.database_url or sqlite_url(self.settings.data_dir)
        upgrade(url)
        import_legacy(url, self.settings.data_dir)
        return url

    @cached_property
    def ledger(self) -> SqlLedger:
        from gateway.ledger import SqlLedger

        return SqlLedger(self.database_url)

    @cached_property
    def chat_models(self) -> dict[str, ChatModel]:
        """The catalog models this deployment may route to (none with the LLM off)."""
        llm = self.settings.llm
        if not llm.enabled:
            return {}
        from gateway.providers import build_chat_model

        if llm.residency == "private":
            hosted = [n for n in llm.models if "private" not in self.catalog.get(n).tags]
            if hosted:
                raise ConfigError(
                    f"RAG_LLM__RESIDENCY=private refuses hosted models: {', '.join(hosted)}; "
                    "remove them from RAG_LLM__MODELS or tag them private in the catalog "
                    "(only for models you run yourself)"
                )
        return {name: build_chat_model(self.catalog.get(name), llm) for name in llm.models}

    @cached_property
    def generator(self) -> Generator:
        """The LLM gateway when enabled (extractive is its last rung); else extractive."""
        llm = self.settings.llm
        if not llm.enabled:
            return self.extractive
        from gateway.gateway import LlmGateway

        return LlmGateway(self.catalog, llm, self.chat_models, self.ledger, self.extractive)

    @cached_property
    def reranker(self) -> Reranker | None:
        """A cross-encoder when one is configured; none ships offline, so off by default."""
        if self.settings.rerank.model is None:
            return None
        from retrieval.rerank import CrossEncoderReranker

        cache = str(self.settings.embedding.models_dir / "fastembed")
        return CrossEncoderReranker(self.settings.rerank, cache)

    def retriever(self, store: VectorStore) -> Retriever:
        """The configured retriever over `store` (the app's collection, or an eval index)."""
        return Retriever(
            self.embedder,
            self.sparse,
            store,
            self.settings.retrieval,
            self.reranker,
            self.settings.rerank.candidates,
        )

    @cached_property
    def parser(self) -> UnstructuredParser:
        limits = self.settings.ingest
        mib = 2**20
        return UnstructuredParser(
            int(limits.max_file_mb * mib),
            max_unpacked_bytes=int(limits.max_unpacked_mb * mib),
            max_archive_entries=limits.max_archive_entries,
            max_elements=limits.max_elements,
            max_text_chars=int(limits.max_text_mb * mib),
            max_pages=limits.max_pages,
            max_cells=limits.max_cells,
        )

    @cached_property
    def chunker(self) -> StructureChunker:
        return StructureChunker(self.settings.ingest.chunk_size, self.settings.ingest.chunk_overlap)

    def close(self) -> None:
        if "ledger" in self.__dict__:
            self.ledger.close()
        if isinstance(self.__dict__.get("embedder"), QueryBatcher):
            self.embedder.close()  # type: ignore[attr-defined]


def build_components(settings: Settings) -> Components:
    """The pipeline's parts, with the offline defaults applied before any model loads."""
    apply_offline_defaults()
    return Components(settings)
