"""The exception tree of the template. Adapters translate vendor errors into it.

    RagError
    ├── ConfigError            settings are missing or inconsistent (fix the env / .env)
    ├── ModelUnavailableError  a model's files are missing locally (run `make setup`)
    ├── StoreError             the vector store failed
    │   ├── SchemaMismatchError  collection vectors do not match the embedder
    │   └── StoreBusyError       another process holds the embedded store
    ├── StorageFullError       a volume we write to is (nearly) full: writes wait for space
    ├── LedgerError            the metadata database (ledger, keys) failed
    ├── QueueError             the job queue (Redis) failed
    ├── ProviderError          an LLM provider failed (`transient`: worth a retry)
    │   └── CircuitOpenError     the provider's breaker is open: not even tried
    ├── IngestError            one source could not be parsed or chunked
    │   └── UnsupportedFormatError
    ├── InvalidRequestError    a caller sent something we cannot serve
    │   ├── NotFoundError        it names something that does not exist
    │   ├── PayloadTooLargeError it is over a size limit
    │   └── InvalidFilterError   its filters name a reserved or unknown field
    ├── AuthenticationError    no credentials, or bad, revoked or expired ones (401)
    ├── PermissionDeniedError  the principal may not do this (403)
    └── RejectedError          refused for now, retry later (`retry_after_s`)
        ├── RateLimitedError     over the principal's rate or token quota (429)
        └── OverloadedError      too many generations in flight (503)

`api/errors.py` maps these to HTTP problem responses; nothing in the core imports FastAPI.
"""


class RagError(Exception):
    """Root of every error this template raises on purpose."""


class ConfigError(RagError):
    """Settings are missing or inconsistent; the message says which knob to change."""


class ModelUnavailableError(RagError):
    """A model's files are not where the settings say; `make setup` assembles them."""


class StoreError(RagError):
    """The vector store failed or refused an operation."""


class SchemaMismatchError(StoreError):
    """The collection was built for another embedder (vector size or distance differ)."""


class StoreBusyError(StoreError):
    """The embedded store is opened by another process (one process per shard)."""


class StorageFullError(RagError):
    """A volume the service writes to (the data folder, the embedded store) has less free
    space than `RAG_STORE__MIN_FREE_MB`: writes are refused until there is room again."""


class LedgerError(RagError):
    """The metadata database (cost ledger, API keys) failed; answers go on without it."""


class QueueError(RagError):
    """The job queue could not take or report a job (Redis unreachable)."""


class ProviderError(RagError):
    """An LLM call failed. Transient failures (429, 5xx, timeouts, refused connections)
    are retried with backoff; anything else (4xx, a malformed reply) moves to the next model.
    """

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


class CircuitOpenError(ProviderError):
    """The provider failed repeatedly; calls skip it until its breaker lets one through."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=False)


class IngestError(RagError):
    """One source could not be turned into chunks; the batch goes on without it."""


class UnsupportedFormatError(IngestError):
    """No parser handles this file type."""


class InvalidRequestError(RagError):
    """A caller's request cannot be served as asked."""


class NotFoundError(InvalidRequestError):
    """The request names a job or a document that does not exist."""


class PayloadTooLargeError(InvalidRequestError):
    """An upload is over its size limit."""


class InvalidFilterError(InvalidRequestError):
    """A filter names a reserved field (tenant, access groups...) or one we do not index."""


class AuthenticationError(RagError):
    """The request carries no credentials, or ones we do not accept (bad, revoked, expired)."""


class PermissionDeniedError(RagError):
    """The principal is known but may not do this (role, tenant or access group)."""


class RejectedError(RagError):
    """Refused for now; the caller may retry after `retry_after_s` seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RateLimitedError(RejectedError):
    """Over the principal's request rate or daily token quota."""


class OverloadedError(RejectedError):
    """Too many generations in flight and the short wait queue is full."""
