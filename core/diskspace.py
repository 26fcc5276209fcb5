"""Free space on the volumes the service writes to, checked before it writes.

Qdrant Edge writes through memory-mapped files: on a full volume the kernel answers a
write to a mapped page with SIGBUS, which kills the whole process (measured on a full
tmpfs by the fault suite). An `OSError` would have been recoverable; a signal is not. So
writers check first and refuse with `StorageFullError` (503 + Retry-After; jobs retry)
while less than `RAG_STORE__MIN_FREE_MB` is free.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from core.errors import StorageFullError

MB = 2**20


def free_bytes(path: Path) -> int:
    """Free bytes on the volume that holds `path` (or would hold it: its first existing
    parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return shutil.disk_usage(Path.cwd()).free


def require_free(paths: Iterable[Path], min_free_mb: float) -> None:
    """Raise `StorageFullError` when a volume holding one of `paths` is below the limit."""
    if min_free_mb <= 0:
        return
    for path in paths:
        free = free_bytes(path)
        if free < min_free_mb * MB:
            raise StorageFullError(
                f"a volume the server writes to has {free / MB:.0f} MiB free, under the "
                f"{min_free_mb:g} MiB it keeps free (RAG_STORE__MIN_FREE_MB); writes resume "
                "once space is freed"
            )
