"""The exception tree of the template. Adapters translate vendor errors into it.

    RagError
    ├── ConfigError            settings are missing or inconsistent (fix the env / .env)
    ├── ModelUnavailableError  a model's files are missing locally (run `make setup`)
    ├── StoreError             the vector store failed
    │   └── SchemaMismatchError  collection vectors do not match the embedder
    ├── ProviderError          an LLM provider failed (`transient`: worth a retry)
    │   └── CircuitOpenError     the provider's breaker is open: not even tried
    ├── IngestError            one source could not be parsed or chunked
    │   └── UnsupportedFormatError
    └── InvalidRequestError    a caller sent something we cannot serve
        ├── NotFoundError        it names something that does not exist
        └── PayloadTooLargeError it is over a size limit

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
