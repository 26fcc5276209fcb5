"""The vector-store room: one `VectorStore` port, two Qdrant adapters.

- `store.edge.EdgeStore`: the embedded default, Qdrant Edge in-process, persistent on disk.
- `store.remote.QdrantServerStore`: a Qdrant server or cluster through qdrant-client.

Both store the same points (named vectors `dense` + `bm25`, the same payload), so moving
from the laptop to production is a setting (`RAG_STORE__BACKEND=qdrant`) and a re-ingest.
"""

from __future__ import annotations

from core.ports import VectorStore
from core.settings import StoreSettings


def open_store(settings: StoreSettings) -> VectorStore:
    """Build the configured adapter; nothing is opened until this is called."""
    if settings.backend == "edge":
        from store.edge import EdgeStore

        return EdgeStore(settings.path, settings.collection)
    from qdrant_client import QdrantClient

    from store.remote import QdrantServerStore

    client = QdrantClient(
        url=settings.url,
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        timeout=int(settings.timeout_s),
    )
    return QdrantServerStore(client, settings.collection)
