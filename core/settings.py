"""The one root `Settings`: every knob of the template, read from env vars and `.env`.

Env vars use the `RAG_` prefix and `__` between sections, e.g. `RAG_STORE__BACKEND=qdrant`.
`.env.example` lists every knob. Nothing else in the code reads the environment.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.errors import ConfigError
from core.types import Fusion

log = logging.getLogger(__name__)


class StoreSettings(BaseModel):
    """Where chunks live: the embedded Qdrant Edge engine, or a Qdrant server/cluster."""

    backend: Literal["edge", "qdrant"] = "edge"
    path: Path = Path(".data/qdrant-edge")
    collection: str = "docs"
    url: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = 10.0
    min_free_mb: float = Field(
        default=64.0,
        ge=0,
        description="Writes (uploads, ingest into the embedded store) are refused with 503 "
        "while the data folder's or the store's volume has less free space (Qdrant Edge "
        "would crash the process on a full volume); 0 turns the check off",
    )
    # Index and cluster tuning (store/tuning.py; docs/adr/0025-production-topology.md).
    # Creation-time settings are recorded with the collection; a collection made with other
    # ones is reported at start-up (`on_drift`), never silently re-tuned.
    hnsw_m: int = Field(default=16, ge=4, le=128, description="HNSW edges per node")
    hnsw_ef_construct: int = Field(default=100, ge=4, description="HNSW build candidates")
    hnsw_ef: int | None = Field(
        default=128,
        ge=1,
        description="HNSW candidates at query time (recall vs latency); None = engine default",
    )
    hnsw_full_scan_threshold_kb: int = Field(
        default=10_000,
        ge=0,
        description="Below this many KB of vectors a filtered search scans instead of HNSW",
    )
    quantization: Literal["none", "int8", "binary"] = Field(
        default="none",
        description="Compress dense vectors in RAM: int8 (4x) or binary (32x, needs rescore)",
    )
    quantization_always_ram: bool = True
    quantization_rescore: bool = Field(
        default=True, description="Re-rank quantized candidates by their full vectors"
    )
    quantization_oversampling: float = Field(
        default=2.0, ge=1.0, description="Fetch limit x this from the quantized index, rescore"
    )
    on_disk_vectors: bool = Field(
        default=False, description="Keep full vectors on disk (mmap); pair with quantization"
    )
    on_disk_payload: bool = True
    tenant_index: bool = Field(
        default=True,
        description="Index `tenant` as Qdrant's tenant index (is_tenant): points stored by "
        "tenant, so one tenant's filtered search reads only its own",
    )
    on_drift: Literal["warn", "error"] = Field(
        default="warn",
        description="A collection built with other index settings: log a warning naming the "
        "differences and use it as built (warn), or refuse to start (error)",
    )
    # Cluster topology (backend=qdrant, applied when the collection is created).
    shard_number: int | None = Field(default=None, ge=1)
    replication_factor: int | None = Field(default=None, ge=1)
    write_consistency_factor: int | None = Field(default=None, ge=1)


class EmbeddingSettings(BaseModel):
    """The dense model: a local ONNX model assembled by `make setup`, or any fastembed model."""

    model: str = "all-MiniLM-L6-v2-int8"
    models_dir: Path = Path(".models")
    batch_size: int = Field(
        default=4,
        ge=1,
        description="Texts per model call: the call's working set grows with batch x tokens^2 "
        "(~200 MB at 4 x 256 tokens, ~750 MB at 32), and batches over 4 were no faster on "
        "CPU (docs/adr/0027)",
    )
    threads: int | None = None
    cpu_mem_arena: bool = Field(
        default=False,
        description="ONNX Runtime's CPU memory arena: it keeps the largest batch's buffers "
        "for ever (~450 MB at batch 32 x 256 tokens); off, they are freed after each batch "
        "(docs/adr/0027)",
    )
    allow_download: bool = False
    query_batching: bool = Field(
        default=True,
        description="Embed concurrent queries together in one model call (a server under "
        "load spends less CPU per query; a lone query waits for nothing)",
    )


class SparseSettings(BaseModel):
    """BM25 parameters of the sparse index (Qdrant's own BM25, IDF applied in the engine)."""

    k: float = 1.2
    b: float = 0.75
    avg_len: float = 180.0


class IngestSettings(BaseModel):
    """Chunking: sizes in characters of text; titles always start a new section."""

    chunk_size: int = Field(default=600, ge=100)
    chunk_overlap: int = Field(default=150, ge=0)
    batch_size: int = Field(default=64, ge=1)
    max_file_mb: float = Field(default=50.0, gt=0)
    parse_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="1: one parse thread in the ingest process, ahead of the embedder; more: "
        "that many parse processes, ~310 MB each (docs/adr/0027)",
    )
    # What one file may cost to parse (ingest/parse.py ParseLimits); beyond, it is refused
    # with a reason naming the knob, and the batch goes on.
    max_unpacked_mb: float = Field(default=200.0, gt=0, description="DOCX/PPTX/XLSX, PDF streams")
    max_archive_entries: int = Field(default=10_000, ge=1)
    max_elements: int = Field(default=100_000, ge=1)
    max_text_mb: float = Field(default=50.0, gt=0)
    max_pages: int = Field(default=2000, ge=1)
    max_cells: int = Field(default=1_000_000, ge=1, description="spreadsheet cells (XLSX)")

    @model_validator(mode="after")
    def _overlap_smaller_than_chunk(self) -> IngestSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"ingest.chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"ingest.chunk_size ({self.chunk_size}); set RAG_INGEST__CHUNK_OVERLAP lower"
            )
        return self


#: The PII kinds redacted by default (presidio entity names); `ingest.pii` uses the same.
PII_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN")


class PiiSettings(BaseModel):
    """Optional PII redaction at ingest (presidio-analyzer pattern recognizers)."""

    enabled: bool = False
    entities: list[str] = list(PII_ENTITIES)
    sources: list[str] = Field(default=["*"], description="Globs of source ids to redact")
    min_score: float = Field(default=0.4, ge=0.0, le=1.0)


class RetrievalSettings(BaseModel):
    """Hybrid search: each index prefetches candidates, the engine fuses them (DBSF)."""

    mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    prefetch_k: int = Field(default=50, ge=1, le=1000)
    fusion: Fusion = Field(
        default=Fusion.DBSF, description="dbsf (normalised scores) or rrf (ranks); ADR 0021"
    )
    rrf_k: int = Field(default=60, ge=1)
    dense_weight: float = Field(default=1.0, gt=0)
    sparse_weight: float = Field(default=1.0, gt=0)
    mmr_lambda: float | None = Field(
        default=None, ge=0.0, le=1.0, description="MMR relevance weight; None = no MMR"
    )


class RerankSettings(BaseModel):
    """Optional cross-encoder reranking (fastembed TextCrossEncoder); off by default.

    No cross-encoder ships on PyPI, so the offline default has none: set `model` to a
    fastembed reranker (e.g. Xenova/ms-marco-MiniLM-L-6-v2) with `allow_download`, or
    `model_path` to a local folder holding its ONNX files.
    """

    model: str | None = None
    model_path: Path | None = None
    candidates: int = Field(default=30, ge=1, le=200)
    allow_download: bool = False


class AnswerSettings(BaseModel):
    """The extractive generator: where to look, how much to quote, when to say "not found".

    `min_support` is the bar on similarity + coverage / 2 of the best sentence (ADR 0021);
    `min_term_overlap` is the bar on coverage alone when no embedding model is wired in."""

    max_passages: int = Field(default=5, ge=1, le=50)
    max_words: int = Field(default=50, ge=5, le=1000)
    min_support: float = Field(default=0.67, ge=0.0, le=2.0)
    min_term_overlap: float = Field(default=0.34, ge=0.0, le=1.0)


class JobSettings(BaseModel):
    """Background ingest jobs: an in-process queue, or Redis shared by replicas + workers."""

    backend: Literal["inprocess", "redis"] = "inprocess"
    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = "rag"
    max_attempts: int = Field(default=3, ge=1)
    backoff_s: float = Field(default=0.5, gt=0)
    retry_window_s: float = Field(
        default=300.0,
        ge=0,
        description="A job that meets an outage (store, disk, model or Redis unavailable) "
        "keeps retrying, with backoff capped at 30 s, until it had max_attempts and this "
        "long has passed since its first failure; only then is it dead-lettered",
    )
    heartbeat_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A Redis worker silent this long is presumed dead (killed, its machine "
        "gone): the jobs it had taken go back to the queue for another worker",
    )


class ApiSettings(BaseModel):
    """The HTTP surface: where it binds, what it accepts, who may call it from a browser."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: float = Field(default=20.0, gt=0, description="Per uploaded file")
    max_upload_files: int = Field(default=20, ge=1, le=1000)
    max_body_kb: int = Field(
        default=256, ge=1, description="Limit of every non-upload request body (JSON)"
    )
    allowed_hosts: list[str] = Field(
        default=["localhost", "127.0.0.1", "::1"],
        description="Host headers served (DNS-rebinding defence); '*' accepts any",
    )
    cors_origins: list[str] = Field(
        default=[], description="Browser origins allowed to call the API; none by default"
    )


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (the `none` auth mode needs one)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AuthSettings(BaseModel):
    """Who may call the API. `none`: one local principal, loopback only; `keys`: API keys
    from `rag keys create`; `oidc`: bearer JWTs checked against an identity provider's JWKS.
    """

    mode: Literal["none", "keys", "oidc"] = "none"
    local_tenant: str = Field(default="default", description="The `none` mode's tenant")
    local_groups: list[str] = Field(default=[], description="The `none` mode's access groups")
    # OIDC: where the signing keys are, what the tokens must say, where the claims are.
    jwks_url: str | None = None
    jwks_file: Path | None = None
    issuer: str | None = None
    audience: str | None = None
    algorithms: list[str] = ["RS256", "ES256"]
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"
    groups_claim: str = "groups"
    leeway_s: int = Field(default=30, ge=0, le=300)

    @model_validator(mode="after")
    def _oidc_is_complete(self) -> AuthSettings:
        if self.mode == "oidc":
            if not (self.jwks_url or self.jwks_file):
                raise ValueError("auth.mode=oidc needs RAG_AUTH__JWKS_URL or RAG_AUTH__JWKS_FILE")
            if not (self.issuer and self.audience):
                raise ValueError("auth.mode=oidc needs RAG_AUTH__ISSUER and RAG_AUTH__AUDIENCE")
            if any(a.upper().startswith(("HS", "NONE")) for a in self.algorithms):
                raise ValueError("auth.algorithms: only asymmetric algorithms (RS*, ES*, PS*)")
        return self


class LimitSettings(BaseModel):
    """Per-principal limits: requests per minute and LLM tokens per day (`limits` library,
    in memory by default, on Redis with `storage_url` so every replica shares the counts),
    and a bound on generations in flight in this process."""

    enabled: bool = True
    storage_url: str = Field(
        default="memory://", description="memory:// or redis://host:6379/1 (shared by replicas)"
    )
    requests_per_minute: int = Field(default=120, ge=1)
    tokens_per_day: int = Field(default=2_000_000, ge=1)
    max_concurrent_generations: int = Field(default=4, ge=1)
    max_queued_generations: int = Field(default=8, ge=0)
    queue_timeout_s: float = Field(default=10.0, gt=0)


class LlmSettings(BaseModel):
    """The LLM gateway. Off by default: answers are extractive until a model is configured.

    Models, prices, routing rules and budgets live in the versioned catalog file; these
    knobs pick which catalog models may serve here and how hard to try each one.
    """

    enabled: bool = False
    catalog: Path | None = Field(default=None, description="Default: gateway/catalog.toml")
    models: list[str] = Field(default=["local-smollm2"], min_length=1)
    residency: Literal["any", "private"] = Field(
        default="any",
        description="private: only models tagged private (on-prem, self-hosted) may serve; "
        "a hosted one in `models` is refused at start and never routed to",
    )
    endpoints: dict[str, str] = Field(
        default={}, description="Per-model endpoint overrides, e.g. a local server's port"
    )
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    prompt_version: int = Field(default=1, ge=1)
    max_passages: int = Field(default=5, ge=1, le=20)
    require_grounding: bool = Field(
        default=False,
        description="Replace LLM answers that fail the citation check by the extractive one",
    )
    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_base_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=4.0, ge=0)
    breaker_failures: int = Field(default=3, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)
    ledger_url: str | None = Field(
        default=None,
        description="Deprecated (ADR 0026): the ledger is in RAG_DATABASE_URL; this one is "
        "read as RAG_DATABASE_URL when that is unset, and goes in the next release",
    )

    @field_validator("openai_api_key", "anthropic_api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        """`KEY=` (as compose passes an unset variable) means no key, not an empty one."""
        return None if value == "" else value


class CacheSettings(BaseModel):
    """The semantic answer cache (only LLM answers are cached: they are the costly ones)."""

    enabled: bool = True
    collection: str = "answer-cache"
    threshold: float = Field(default=0.96, gt=0, le=1)
    ttl_s: float = Field(default=86_400.0, gt=0)


class ObservabilitySettings(BaseModel):
    """Metrics, traces and access logs (docs/adr/0018). Nothing leaves the process unless
    `tracing=otlp` names a collector; `/metrics` needs the admin role."""

    metrics_enabled: bool = Field(default=True, description="Serve Prometheus `/metrics`")
    tenant_labels: bool = Field(
        default=False, description="Label request, token and cost metrics by tenant"
    )
    tracing: Literal["off", "otlp", "console"] = "off"
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    service_name: str = "rag-template"
    log_json: bool = Field(default=True, description="One JSON line per request (rag.access)")


class GovernanceSettings(BaseModel):
    """Controls on what documents say and what answers claim (docs/governance.md).

    `injection`: passages that read like instructions to a model (ingest and retrieval):
    `flag` marks them (the prompt says so, the response lists them), `quarantine` keeps
    them out of every answer and search result, `off` does neither. `groundedness`:
    answers whose sentences the cited passages do not support: `flag` marks them,
    `withhold` replaces them by the extractive answer (or "not found")."""

    injection: Literal["off", "flag", "quarantine"] = "flag"
    injection_threshold: float = Field(default=0.5, gt=0.0, le=1.0)
    groundedness: Literal["off", "flag", "withhold"] = "flag"
    min_sentence_support: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Share of a sentence's content words found in the passages it cites",
    )


class AuditSettings(BaseModel):
    """The tamper-evident audit trail in the metadata database (RAG_DATABASE_URL)."""

    enabled: bool = True
    store_text: bool = Field(
        default=False, description="Also record questions and queries (personal data!)"
    )


class RetentionSettings(BaseModel):
    """How long things are kept; None keeps them. `rag retention run` applies it, and
    `rag serve` / `rag worker` run it every `interval_h` hours when that is set."""

    documents_days: float | None = Field(default=None, gt=0)
    uploads_days: float | None = Field(
        default=7.0, gt=0, description="Uploaded files left behind by jobs that never ended"
    )
    cache_days: float | None = Field(default=30.0, gt=0)
    audit_days: float | None = Field(default=None, gt=0)
    ledger_days: float | None = Field(default=None, gt=0)
    interval_h: float | None = Field(
        default=None,
        gt=0,
        description="With the embedded store, each pass optimizes the cache collection and "
        "holds the GIL meanwhile: `rag serve` stalls for it (81 s at 100k entries)",
    )


class AgentSettings(BaseModel):
    """The agentic mode (retrieval/agentic.py): its bounds per question."""

    max_steps: int = Field(
        default=8, ge=3, description="Route, plan, research and synthesis steps per question"
    )
    max_sub_questions: int = Field(default=4, ge=1, le=16)
    max_tokens: int = Field(default=8000, ge=1, description="Model tokens per question")
    max_wall_s: float = Field(default=30.0, gt=0, description="Seconds per question")
    max_cost_usd: float = Field(default=0.05, ge=0, description="Model cost per question")
    sub_top_k: int = Field(default=5, ge=1, le=50, description="Passages per sub-question")
    parallel: int = Field(default=2, ge=1, le=16, description="Sub-questions researched at once")
    model_planner: bool = Field(
        default=True,
        description="With the LLM on, the model writes the plan (rules when its reply is "
        "unusable); SmolLM2-135M's plans were usable 5 % of the time (ADR 0028)",
    )
    model_router: bool = Field(
        default=False,
        description="With the LLM on, the cheapest model settles routes no rule decides: "
        "one more model call on nearly every `auto` question (~0.23 s with SmolLM2-135M, "
        "whose verdicts never parsed), so opt in with a model that does better (ADR 0028)",
    )


class Settings(BaseSettings):
    """Root settings; build it with `get_settings()`, never at import time."""

    model_config = SettingsConfigDict(
        env_prefix="RAG_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path(".data")
    store: StoreSettings = StoreSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    sparse: SparseSettings = SparseSettings()
    ingest: IngestSettings = IngestSettings()
    pii: PiiSettings = PiiSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    rerank: RerankSettings = RerankSettings()
    answer: AnswerSettings = AnswerSettings()
    jobs: JobSettings = JobSettings()
    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()
    database_url: str | None = Field(
        default=None,
        description="The metadata database (manifest, API keys, cost ledger, audit log) as a "
        "SQLAlchemy URL, migrated at start-up; default sqlite:///<data_dir>/metadata.sqlite3",
    )
    llm: LlmSettings = LlmSettings()
    cache: CacheSettings = CacheSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    governance: GovernanceSettings = GovernanceSettings()
    audit: AuditSettings = AuditSettings()
    retention: RetentionSettings = RetentionSettings()
    agent: AgentSettings = AgentSettings()

    @model_validator(mode="after")
    def _one_database(self) -> Settings:
        """RAG_LLM__LEDGER_URL, deprecated, stands for RAG_DATABASE_URL for one release."""
        legacy = self.llm.ledger_url
        if legacy is None:
            return self
        if self.database_url is not None and self.database_url != legacy:
            raise ConfigError(
                "RAG_LLM__LEDGER_URL and RAG_DATABASE_URL name two databases: the cost ledger "
                "now lives in the one metadata database (docs/adr/0026-one-metadata-database"
                ".md); unset RAG_LLM__LEDGER_URL (copy its llm_ledger rows across first)"
            )
        log.warning(
            "RAG_LLM__LEDGER_URL is deprecated and goes in the next release: set "
            "RAG_DATABASE_URL instead (the ledger, keys, audit and manifest share it)"
        )
        self.database_url = legacy
        return self

    @model_validator(mode="after")
    def _server_needs_url(self) -> Settings:
        if self.store.backend == "qdrant" and not self.store.url:
            raise ConfigError(
                "RAG_STORE__BACKEND=qdrant needs RAG_STORE__URL (e.g. http://localhost:6333); "
                "use RAG_STORE__BACKEND=edge for the embedded engine"
            )
        if self.environment == "production" and self.store.backend == "edge":
            raise ConfigError(
                "production runs against a Qdrant server: set RAG_STORE__BACKEND=qdrant and "
                "RAG_STORE__URL, or RAG_ENVIRONMENT=development for the embedded engine"
            )
        if self.environment == "production" and self.auth.mode == "none":
            raise ConfigError(
                "production needs authentication: set RAG_AUTH__MODE=keys (then `rag keys "
                "create`) or RAG_AUTH__MODE=oidc"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
