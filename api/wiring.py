"""Composition root of the service surfaces: settings in, adapters and services out.

The API lifespan and the CLI both call `build_app_context()`. The pipeline's parts come
from `components.Components`; this adds the stores and aliases, the retrieval and
ingest services, the job queue and identity (keys, OIDC, limits). It only builds:
what the system does lives in `retrieval/service.py` and `ingest/service.py`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from components import Components
from core.offline import apply_offline_defaults
from core.ports import JobQueue, Manifest, ProgressSink, VectorStore
from core.settings import Settings
from core.types import Answer, Filters, IngestJob, JobStatus, RequestContext, document_key
from governance.grounding import GroundednessGuard
from governance.screening import PassageScreen
from ingest.jobs import InProcessJobQueue, RedisJobQueue
from ingest.manifest import SqlManifest
from ingest.pii import PiiRedactor
from ingest.pipeline import Indexer
from ingest.service import Collections, IngestService
from retrieval.service import RagService
from store import open_catalog, open_store
from store.catalog import AliasCatalog

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the gateway (LLM SDKs, SQLAlchemy) is imported only when enabled
    from auth.authenticator import Authenticator
    from auth.keys import KeyStore
    from auth.limits import GenerationGate, RateLimiter
    from auth.oidc import OidcVerifier
    from gateway.cache import SemanticCache
    from governance.audit import AuditLog
    from governance.retention import RetentionReport
    from retrieval.agentic import Orchestrator


@dataclass
class AppContext(Components):
    """Everything a surface needs, built lazily from one `Settings`: the pipeline's
    components, plus the stores, the services, the job queue and identity."""

    @cached_property
    def aliases(self) -> AliasCatalog:
        return open_catalog(self.settings.store)

    @cached_property
    def build_collection(self) -> str:
        """The collection this pipeline (model, BM25, chunking) writes to."""
        digest = hashlib.sha256(self.pipeline_version.encode()).hexdigest()[:8]
        return f"{self.settings.store.collection}-{digest}"

    @cached_property
    def query_collection(self) -> str:
        """What the alias (RAG_STORE__COLLECTION) points to; the build one before any."""
        return self.aliases.resolve(self.settings.store.collection) or self.build_collection

    @property
    def rebuilding(self) -> bool:
        """True when the pipeline changed since the published index was built."""
        return self.query_collection != self.build_collection

    @cached_property
    def store(self) -> VectorStore:
        """The store queries read: the collection the alias points to."""
        store = open_store(self.settings.store, self.query_collection)
        store.ensure_collection(self.embedder.dim)
        return store

    @cached_property
    def build_store(self) -> VectorStore:
        """The store ingest writes: the published one, or a new one during a re-index."""
        if not self.rebuilding:
            return self.store
        store = open_store(self.settings.store, self.build_collection)
        store.ensure_collection(self.embedder.dim)
        return store

    @cached_property
    def answer_cache(self) -> SemanticCache | None:
        """Semantic cache of LLM answers; off with the LLM (nothing costly to save)."""
        if not (self.settings.llm.enabled and self.settings.cache.enabled):
            return None
        from gateway.cache import SemanticCache

        cache = self.settings.cache
        return SemanticCache(
            open_store(self.settings.store, cache.collection),
            self.embedder,
            cache.threshold,
            cache.ttl_s,
            self.ledger,
        )

    @cached_property
    def screen(self) -> PassageScreen:
        """Prompt-injection screening of passages, at ingest and at retrieval."""
        from governance import injection

        governance = self.settings.governance
        detector = injection.InjectionDetector(threshold=governance.injection_threshold)
        rules = hashlib.sha256(Path(injection.__file__).read_bytes()).hexdigest()[:10]
        version = f"{rules}@{governance.injection_threshold:g}"
        return PassageScreen(detector, governance.injection, version)

    @cached_property
    def guard(self) -> GroundednessGuard:
        governance = self.settings.governance
        return GroundednessGuard(governance.groundedness, governance.min_sentence_support)

    @cached_property
    def service(self) -> RagService:
        return RagService(
            self.retriever(self.store),
            self.generator,
            self.answer_cache,
            corpus=self.query_collection,
            guard=self.guard.apply,
            screen=self.screen.hits,
        )

    @cached_property
    def agent(self) -> Orchestrator:
        """The agentic mode over `service`: each sub-question is a `service.ask` (the
        caller's scope, the gateway, the guard), each step an audit record. With the LLM
        on, the gateway also writes the plan and settles routes no rule decides."""
        from retrieval.agentic import LlmPlanner, Orchestrator, Router

        def audit(action: str, context: RequestContext, detail: dict[str, object]) -> None:
            self.audit_event(action, context.key_id, context.tenant, "ok", (), **detail)

        def ask(
            question: str, top_k: int | None, filters: Filters | None, context: RequestContext
        ) -> Answer:  # the context's service at call time, as every surface uses it
            return self.service.ask(question, top_k, filters, context)

        if self.settings.llm.enabled:
            from gateway.gateway import LlmGateway

            agent = self.settings.agent
            if isinstance(gateway := self.generator, LlmGateway):
                planner = LlmPlanner(gateway) if agent.model_planner else None
                router = Router(gateway if agent.model_router else None)
                return Orchestrator(ask, agent, planner, router, audit)
        return Orchestrator(ask, self.settings.agent, audit=audit)

    @cached_property
    def extractive_service(self) -> RagService:
        """The same retrieval answered by the extractive generator only (no model, no
        cache): the `rag-extractive` pipeline when the LLM is on."""
        if not self.settings.llm.enabled:
            return self.service
        return RagService(
            self.retriever(self.store),
            self.extractive,
            None,
            guard=self.guard.apply,
            screen=self.screen.hits,
        )

    @cached_property
    def redactor(self) -> PiiRedactor | None:
        pii = self.settings.pii
        if not pii.enabled:
            return None
        return PiiRedactor(pii.entities, pii.min_score, pii.sources)

    @cached_property
    def manifest(self) -> Manifest:
        return SqlManifest(self.database_url, self.build_collection)

    @cached_property
    def indexer(self) -> Indexer:
        return Indexer(
            self.embedder, self.sparse, self.build_store, self.settings.ingest.batch_size
        )

    def live_stores(self) -> list[VectorStore]:
        """The collections a delete must reach: during a re-index, the old and the new."""
        return [self.store] if not self.rebuilding else [self.store, self.build_store]

    @cached_property
    def documents(self) -> IngestService:
        """The document use cases (ingest, jobs, delete, publish) every surface calls."""
        return IngestService(
            parser=self.parser,
            chunker=self.chunker,
            indexer=lambda: self.indexer,
            manifest=self.manifest,
            stores=self.live_stores,
            collections=Collections(
                self.aliases, self.settings.store.collection, self.build_collection
            ),
            pipeline_version=self.pipeline_version,
            redactor=self.redactor,
            answer_cache=self.answer_cache,
            uploads=self.settings.data_dir / "uploads",
            screen=self.screen.mark,
            volumes=self.volumes,
            min_free_mb=self.settings.store.min_free_mb,
        )

    @property
    def volumes(self) -> list[Path]:
        """Where writes land: the data folder, and the embedded store's folder."""
        store = self.settings.store
        return [self.settings.data_dir, *([store.path] if store.backend == "edge" else [])]

    @cached_property
    def jobs(self) -> JobQueue:
        """The configured queue; with Redis, jobs run in `rag worker` processes."""
        jobs = self.settings.jobs
        handler = self.audited_job
        if jobs.backend == "redis":
            return RedisJobQueue(
                jobs.redis_url,
                handler,
                jobs.namespace,
                jobs.max_attempts,
                jobs.backoff_s,
                heartbeat_timeout_s=jobs.heartbeat_timeout_s,
                retry_window_s=jobs.retry_window_s,
            )
        return InProcessJobQueue(  # durable: a restart resumes unfinished jobs
            handler,
            jobs.max_attempts,
            jobs.backoff_s,
            self.settings.data_dir / "jobs.sqlite3",
            retry_window_s=jobs.retry_window_s,
        )

    def audited_job(self, job: IngestJob, progress: ProgressSink | None = None) -> JobStatus:
        """Run an upload job and record its outcome in the audit trail (the upload's own
        record names who sent it; this one, what became of each file)."""
        try:
            status = self.documents.run_job(job, progress)
        except Exception as exc:
            self.audit_event(
                "ingest.job",
                f"job:{job.id}",
                job.tenant,
                f"error:{type(exc).__name__}",
                [source for _, source in job.files],
            )
            raise
        self.audit_event(
            "ingest.job",
            f"job:{job.id}",
            job.tenant,
            status.state.value,
            [source for _, source in job.files],
            chunks=status.chunks,
            failed=sorted(status.errors),
        )
        return status

    def audit_event(
        self,
        action: str,
        principal: str,
        tenant: str | None,
        outcome: str,
        documents: Sequence[str] = (),
        **detail: object,
    ) -> None:
        """Record an action that did not come through the HTTP middleware (jobs, the CLI,
        retention). A failure to record is logged, never raised into the action."""
        if self.audit is None:
            return
        from governance.audit import AuditEvent

        try:
            self.audit.record(
                AuditEvent(action, principal, tenant, outcome, tuple(documents), detail=detail)
            )
        except Exception:
            log.exception("could not write the audit record of %s", action)

    def run_retention(self, principal: str = "retention") -> RetentionReport:
        """Apply the retention settings once, and record what went in the audit trail."""
        from governance.retention import Retention

        retention = Retention(
            self.settings.retention,
            documents=self.documents,
            uploads=self.settings.data_dir / "uploads",
            cache=self.answer_cache,
            audit=self.audit,
            ledger=self.ledger,
        )
        report = retention.run()
        self.audit_event(
            "retention.run",
            principal,
            None,
            "ok",
            [document_key(tenant, source) for tenant, source in report.documents],
            **report.counts(),
        )
        return report

    @cached_property
    def audit(self) -> AuditLog | None:
        """The hash-chained audit trail in the metadata database (None when turned off)."""
        if not self.settings.audit.enabled:
            return None
        from governance.audit import AuditLog

        spool = self.settings.data_dir / "audit-spool.jsonl"
        return AuditLog(self.database_url, spool, store_text=self.settings.audit.store_text)

    @cached_property
    def keys(self) -> KeyStore:
        from auth.keys import KeyStore

        return KeyStore(self.database_url)

    @cached_property
    def oidc(self) -> OidcVerifier:
        from auth.oidc import OidcVerifier

        return OidcVerifier(self.settings.auth)

    @cached_property
    def authenticator(self) -> Authenticator:
        from auth.authenticator import Authenticator

        return Authenticator(self.settings.auth, lambda: self.keys, lambda: self.oidc)

    @cached_property
    def limiter(self) -> RateLimiter:
        from auth.limits import RateLimiter

        return RateLimiter(self.settings.limits)

    @cached_property
    def gate(self) -> GenerationGate:
        from auth.limits import GenerationGate

        limits = self.settings.limits
        return GenerationGate(
            limits.max_concurrent_generations, limits.max_queued_generations, limits.queue_timeout_s
        )

    @property
    def pipeline_version(self) -> str:
        """What produced a chunk: stamped on every chunk, so a re-index can be audited."""
        ingest = self.settings.ingest
        # `tenancy=2`: chunk ids and payloads carry the tenant (a re-index moves old data).
        # `parse=2`: boilerplate-free parsing and definition items (ADR 0021).
        return (
            f"embed={self.embedder.name};sparse={self.sparse.name};"
            f"chunk=structure/{ingest.chunk_size}/{ingest.chunk_overlap};tenancy=2;parse=2"
        )

    def close(self) -> None:
        if "jobs" in self.__dict__:
            self.jobs.close()
        if self.__dict__.get("answer_cache") is not None:
            self.answer_cache.close()  # type: ignore[union-attr]
        super().close()  # the ledger
        if "keys" in self.__dict__:
            self.keys.close()
        if self.__dict__.get("audit") is not None:
            self.audit.close()  # type: ignore[union-attr]
        if "limiter" in self.__dict__:
            self.limiter.close()
        if "build_store" in self.__dict__ and self.build_store is not self.__dict__.get("store"):
            self.build_store.close()
        if "store" in self.__dict__:
            self.store.close()
        if "manifest" in self.__dict__:
            self.manifest.close()


def build_app_context(settings: Settings) -> AppContext:
    apply_offline_defaults()
    return AppContext(settings)
