"""The vector-store room: one `VectorStore` port, two Qdrant adapters, and aliases.

- `store.edge.EdgeStore`: the embedded default, Qdrant Edge in-process, persistent on disk.
- `store.remote.QdrantServerStore`: a Qdrant server or cluster through qdrant-client.
- `store.catalog`: aliases, so a re-index can switch collections atomically.
- `store.tuning`: HNSW, quantization and storage settings both adapters apply, and the
  start-up report of a collection built with other ones.
- `store.plan`: how a query becomes prefetches, fusion and MMR, written once; each adapter
  only translates it into its client's types.

Both adapters store the same points (named vectors `dense` + `bm25`, the same payload), so
moving from the laptop to production is a setting (`RAG_STORE__BACKEND=qdrant`) and a
re-ingest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.ports import VectorStore
from core.settings import StoreSettings
from store.tuning import IndexTuning

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from store.catalog import AliasCatalog


def _client(settings: StoreSettings) -> QdrantClient:
    from qdrant_client import QdrantClient

    return QdrantClient(
        url=settings.url,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        timeout=int(settings.timeout_s),
    )


def open_store(settings: StoreSettings, collection: str | None = None) -> VectorStore:
    """Build the configured adapter for `collection` (default: the configured name)."""
    name = collection or settings.collection
    if settings.backend == "edge":
        from store.edge import EdgeStore

        return EdgeStore(
            settings.path, name, settings.min_free_mb, IndexTuning.from_settings(settings)
        )
    from store.remote import ClusterTopology, QdrantServerStore

    return QdrantServerStore(
        _client(settings),
        name,
        IndexTuning.from_settings(settings),
        ClusterTopology.from_settings(settings),
    )


def open_catalog(settings: StoreSettings) -> AliasCatalog:
    """The alias catalog of the configured backend."""
    if settings.backend == "edge":
        from store.catalog import EdgeCatalog

        return EdgeCatalog(settings.path)
    from store.catalog import ServerCatalog

    return ServerCatalog(_client(settings))
