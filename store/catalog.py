"""Collection aliases for blue/green re-indexing.

Queries read the collection an alias points to; a re-index with another embedding model
or chunking builds a new collection beside it and, once complete, moves the alias in
one atomic step, so no query ever sees a half-built index. Qdrant servers have aliases;
for the embedded engine an `aliases.json` beside the shards is replaced atomically
(write to a temp file, fsync, rename). See docs/adr/0007-blue-green-reindex.md.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Protocol

from qdrant_client import QdrantClient, models


class AliasCatalog(Protocol):
    """Where a backend keeps its aliases: `EdgeCatalog` (the embedded engine) or
    `ServerCatalog` (a Qdrant server)."""

    def resolve(self, alias: str) -> str | None:
        """The collection the alias points to, or None before the first switch."""
        ...

    def switch(self, alias: str, collection: str) -> None:
        """Point the alias at `collection`, atomically."""
        ...


class EdgeCatalog:
    """Aliases of the embedded engine, in `<root>/aliases.json`."""

    def __init__(self, root: Path) -> None:
        self._path = Path(root) / "aliases.json"

    def _read(self) -> dict[str, str]:
        if not self._path.exists():
            return {}
        data = json.loads(self._path.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.items()}

    def resolve(self, alias: str) -> str | None:
        return self._read().get(alias)

    def switch(self, alias: str, collection: str) -> None:
        aliases = {**self._read(), alias: collection}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".aliases-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(aliases, out, indent=2)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._path)  # atomic on POSIX: readers see the old or the new map


class ServerCatalog:
    """Qdrant's own aliases: delete + create in one atomic request."""

    def __init__(self, client: QdrantClient) -> None:
        self._client = client

    def resolve(self, alias: str) -> str | None:
        for description in self._client.get_aliases().aliases:
            if description.alias_name == alias:
                return description.collection_name
        return None

    def switch(self, alias: str, collection: str) -> None:
        operations: list[models.AliasOperations] = []
        if self.resolve(alias) is not None:
            operations.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        operations.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
            )
        )
        self._client.update_collection_aliases(change_aliases_operations=operations)
