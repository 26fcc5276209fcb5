"""The document use cases: ingest, run an upload job, delete, and the publish policy.

Every surface (the CLI, the HTTP API, the job workers) calls this one service, so they all
apply the same rules: a document belongs to a tenant (its identity is tenant + source),
a pipeline change is never written into the published index except by an explicit
re-index (blue/green, docs/adr/0007), and answers citing a changed or deleted document
leave the answer cache. `api/wiring.py` builds it; it never sees a request.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.diskspace import require_free
from core.errors import ConfigError
from core.ports import AnswerCache, Manifest, Parser, ProgressSink, VectorStore
from core.types import (
    DEFAULT_TENANT,
    Chunk,
    DocumentInfo,
    DocumentPage,
    IngestJob,
    IngestProgress,
    JobState,
    JobStatus,
    ParsedDocument,
    document_key,
)
from ingest.chunk import StructureChunker
from ingest.pii import PiiRedactor
from ingest.pipeline import Indexer, IngestReport, ingest_paths
from store.catalog import AliasCatalog
from store.schema import WHOLE_TENANT

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Collections:
    """Where documents live: the alias queries read, and the collection this pipeline
    (model, BM25, chunking) builds. They differ while a re-index is pending."""

    aliases: AliasCatalog
    alias: str
    build: str

    def published(self) -> str | None:
        return self.aliases.resolve(self.alias)

    def rebuilding(self) -> bool:
        published = self.published()
        return published is not None and published != self.build


class IngestService:
    """Ingest, delete and publish documents for a tenant, the same way on every surface."""

    def __init__(
        self,
        *,
        parser: Parser,
        chunker: StructureChunker,
        indexer: Callable[[], Indexer],
        manifest: Manifest,
        stores: Callable[[], Sequence[VectorStore]],
        collections: Collections,
        pipeline_version: str,
        redactor: PiiRedactor | None = None,
        answer_cache: AnswerCache | None = None,
        uploads: Path | None = None,
        screen: Callable[[Chunk], Chunk] | None = None,
        volumes: Sequence[Path] = (),
        min_free_mb: float = 0.0,
    ) -> None:
        # `indexer` and `stores` are factories: they load models and open collections,
        # which a `rag keys` or `rag costs` run must not pay for.
        self._parser = parser
        self._chunker = chunker
        self._indexer = indexer
        self._manifest = manifest
        self._stores = stores
        self._collections = collections
        self._pipeline_version = pipeline_version
        self._redactor = redactor
        self._cache = answer_cache
        self._uploads = uploads
        self._screen = screen
        self._volumes = tuple(volumes)
        self._min_free_mb = min_free_mb

    def check_writable(self, reindex: bool = False) -> None:
        """Refuse to write a changed pipeline's chunks except through a re-index, and to
        write at all while a volume we write to is nearly full (`StorageFullError`: an
        upload is refused before it is accepted; a job retries)."""
        require_free(self._volumes, self._min_free_mb)
        published = self._collections.published()
        if self._collections.rebuilding() and not reindex:
            raise ConfigError(
                f"the pipeline changed since {published!r} was built (now: "
                f"{self._pipeline_version}); an operator must run `rag reindex <folder>` to "
                f"build {self._collections.build!r} and switch to it atomically"
            )

    def ingest(
        self,
        paths: Sequence[Path],
        root: Path,
        tenant: str = DEFAULT_TENANT,
        access_groups: Sequence[str] = (),
        *,
        prune: bool = False,
        reindex: bool = False,
        force: bool = False,
        on_document: Callable[[ParsedDocument, int], None] | None = None,
        workers: int = 1,
        on_progress: Callable[[IngestProgress], None] | None = None,
    ) -> IngestReport:
        """Index `paths` for `tenant`; publish the build collection when nothing was
        published yet, or after a complete re-index (or a forced one)."""
        self.check_writable(reindex)
        published_before = self._collections.published()
        report = ingest_paths(
            paths,
            self._parser,
            self._chunker,
            self._indexer(),
            root=root,
            manifest=self._manifest,
            prune=prune,
            on_document=on_document,
            workers=workers,
            metadata={"pipeline_version": self._pipeline_version},
            redactor=self._redactor,
            tenant=tenant,
            access_groups=access_groups,
            on_progress=on_progress,
            screen=self._screen,
        )
        if self._cache is not None:  # answers citing changed documents are stale
            self._cache.invalidate(
                document_key(tenant, s) for s in [*report.indexed, *report.pruned]
            )
        if published_before is None or (reindex and (report.ok or force)):
            aliases, alias = self._collections.aliases, self._collections.alias
            if published_before != self._collections.build:
                aliases.switch(alias, self._collections.build)
                report.published = self._collections.build
        return report

    def run_job(self, job: IngestJob, progress: ProgressSink | None = None) -> JobStatus:
        """An upload job: per-file problems make it partial, not failed. The uploaded
        copies are removed once the job has an outcome (the index is the record now).
        `progress` hears the files and chunks as they move (the queue shows them)."""
        paths = [Path(path) for path, _ in job.files]
        last = [IngestProgress(files_total=len(paths))]

        def moved(state: IngestProgress) -> None:
            last[0] = state
            if progress is not None:
                progress(state)

        report = self.ingest(
            paths,
            paths[0].parent if paths else Path(),
            job.tenant,
            job.access_groups,
            on_progress=moved,
        )
        state = JobState.PARTIAL if report.failed else JobState.SUCCEEDED
        errors = {Path(failure.path).name: failure.reason for failure in report.failed}
        discard_upload(job)
        return JobStatus(
            job.id,
            state,
            tenant=job.tenant,
            documents=report.documents + report.skipped,
            chunks=report.chunks,
            errors=errors,
            progress=last[0],
        )

    def list_documents(
        self,
        tenant: str,
        readers: Sequence[str] | None = None,
        after: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> DocumentPage:
        """The tenant's documents in source order, `limit` at a time after `after` (a
        cursor: stable while documents come and go) or from `offset` (a page number). With
        `readers` (a non-admin's groups), only those they may read: a document open to
        the whole tenant or to one of the groups (the same rule as search)."""
        rows, total = self._manifest.page(tenant, readers, after, limit + 1, offset)
        more, rows = len(rows) > limit, rows[:limit]
        documents = tuple(
            DocumentInfo(
                source=row.source,
                title=row.title or row.source,
                chunks=row.chunks,
                ingested_at=row.updated_at,
                state=row.state,
                access_groups=row.access_groups,
                pipeline_version=self._pipeline_version,
            )
            for row in rows
        )
        return DocumentPage(documents, total, rows[-1].source if more else None)

    def _count(self, tenant: str, source: str, groups: Sequence[str] | None = None) -> int:
        """Points of a document in every live collection; with `groups`, only those
        points a reader of those groups may see."""
        filters: dict[str, str | list[str]] = {"tenant": tenant, "source": source}
        if groups is not None:
            filters["access_groups"] = [*groups, WHOLE_TENANT]
        return sum(store.count(filters) for store in self._stores())

    def _accessible(self, tenant: str, source: str, groups: Sequence[str] | None) -> bool | None:
        """None: no such document; else whether `groups` (None: any) may see it."""
        if self._count(tenant, source) > 0:
            return groups is None or self._count(tenant, source, groups) > 0
        return True if self._manifest.get(tenant, source) is not None else None

    def writable(self, tenant: str, source: str, groups: Sequence[str] | None) -> bool:
        """May a writer with `groups` (None: an admin) replace this document? Not when
        it exists and is restricted to groups the writer is not in."""
        return self._accessible(tenant, source, groups) is not False

    def delete(self, tenant: str, source: str, groups: Sequence[str] | None = None) -> bool:
        """Erase a tenant's document: its chunks in every live collection, its manifest
        row, the cached answers that cite it and any uploaded copy still waiting for a job
        (which then reports the file missing instead of bringing it back). False when the
        tenant has no such document that `groups` (None: any) may see; another tenant's
        document of the same name is never touched. The audit record is the caller's."""
        if not self._accessible(tenant, source, groups):
            return False
        for store in self._stores():  # during a re-index, from the old and the new one
            store.delete_by_source(tenant, source)
        self._manifest.remove(tenant, source)
        if self._cache is not None:
            self._cache.invalidate([document_key(tenant, source)])
        self._erase_uploads(tenant, source)
        return True

    def _erase_uploads(self, tenant: str, source: str) -> int:
        """Uploaded copies of `source` in the tenant's job folders (`uploads/<tenant>/<job
        id>/<name>`). An upload's source id is a plain file name; any other id (a path
        from `rag ingest`) has no uploaded copy."""
        if self._uploads is None or not source or source in (".", "..") or "/" in source:
            return 0
        removed = 0
        for path in (self._uploads / tenant).glob(f"*/{glob.escape(source)}"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    def expired(self, before: datetime) -> list[tuple[str, str]]:
        """(tenant, source) of the documents last ingested before `before` (retention)."""
        return self._manifest.older_than(before)


def discard_upload(job: IngestJob) -> None:
    """Delete a job's uploaded copies: the listed files that sit in the job's own folder
    (`uploads/<tenant>/<job id>/`, where the API writes them), then that folder once empty. Files
    anywhere else (a job queued by hand over existing files) are never touched."""
    owned = [Path(path) for path, _ in job.files if Path(path).parent.name == job.id]
    for path in owned:
        path.unlink(missing_ok=True)
    for folder in {path.parent for path in owned}:
        try:
            folder.rmdir()
        except OSError:  # not empty: something else lives there, leave it
            log.warning("kept %s: not empty after the job's uploads were removed", folder)
