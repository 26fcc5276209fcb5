"""LangChain retrievers over this service, so a LangChain or LangGraph app can use its
search (hybrid retrieval, tenant and group scope) as a `BaseRetriever`.

Two transports, one result shape (`Document(page_content=text, metadata={source, title,
section, page, score, chunk_id})`):

- `RagRetriever` wraps a `RagService` and a `RequestContext` in the same process (a
  notebook, a batch job, an eval); the context is the caller's scope, built by whoever
  holds the credentials (`RequestContext.for_principal`).
- `RagHttpRetriever` calls `POST /v1/search` of a running server with an API key; the
  server derives the scope from the key, so nothing here can widen it.

`k` (how many documents) is a field and may be given per call: `invoke(query, k=3)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, SecretStr

from core.errors import (
    AuthenticationError,
    InvalidRequestError,
    PermissionDeniedError,
    RagError,
    RateLimitedError,
    RejectedError,
)
from core.types import RequestContext, ScoredChunk, SearchMode
from retrieval.service import RagService

#: The metadata keys every document carries (both transports).
METADATA_KEYS = ("source", "title", "section", "page", "score", "chunk_id")


def to_document(hit: ScoredChunk) -> Document:
    """A hit as LangChain's `Document` (the same fields as the API's `Hit`)."""
    c = hit.chunk
    return Document(
        page_content=c.text,
        id=c.id,
        metadata={
            "source": c.source,
            "title": c.title,
            "section": c.section,
            "page": c.page,
            "score": hit.score,
            "chunk_id": c.id,
        },
    )


class RagRetriever(BaseRetriever):
    """Search of a `RagService` in this process, in the scope of `context`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    service: RagService
    context: RequestContext = Field(
        default_factory=RequestContext,
        description="Whose view: build it from a Principal; the default is the local operator",
    )
    k: int = Field(default=4, ge=1, le=100)
    mode: SearchMode | None = None
    filters: dict[str, Any] | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        hits = self.service.search(query, k or self.k, self.filters, self.mode, self.context)
        return [to_document(h) for h in hits]


class RagHttpRetriever(BaseRetriever):
    """Search of a running server (`POST {base_url}/v1/search`) with an API key."""

    base_url: str = Field(description="The server, e.g. http://127.0.0.1:8000")
    api_key: SecretStr | None = Field(default=None, description="None in auth mode `none`")
    k: int = Field(default=4, ge=1, le=100)
    mode: SearchMode = SearchMode.HYBRID
    filters: dict[str, Any] | None = None
    access_groups: list[str] | None = Field(
        default=None, description="Narrow to these of the key's groups (never widens)"
    )
    timeout_s: float = 30.0

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        with httpx.Client(timeout=self.timeout_s) as client:
            try:
                response = client.post(**self._request(query, k))
            except httpx.HTTPError as exc:
                raise RagError(f"cannot reach {self.base_url}: {exc}") from exc
        return _documents(response)

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            try:
                response = await client.post(**self._request(query, k))
            except httpx.HTTPError as exc:
                raise RagError(f"cannot reach {self.base_url}: {exc}") from exc
        return _documents(response)

    def _request(self, query: str, k: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "top_k": k or self.k, "mode": self.mode.value}
        if self.filters:
            body["filters"] = self.filters
        if self.access_groups is not None:
            body["access_groups"] = self.access_groups
        headers = {}
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return {"url": self.base_url.rstrip("/") + "/v1/search", "json": body, "headers": headers}


def _documents(response: httpx.Response) -> list[Document]:
    """The hits of a `/v1/search` response, or its problem as the template's error."""
    if response.status_code != 200:
        raise _error(response)
    hits: list[Mapping[str, Any]] = response.json()["hits"]
    return [
        Document(
            page_content=hit["text"],
            id=hit["chunk_id"],
            metadata={key: hit[key] for key in METADATA_KEYS},
        )
        for hit in hits
    ]


def _error(response: httpx.Response) -> RagError:
    """A problem+json response as the error the server raised (by status)."""
    try:
        detail = str(response.json().get("detail", ""))
    except ValueError:
        detail = response.text[:200]
    message = f"{response.status_code} from {response.request.url}: {detail}"
    retry = float(response.headers.get("retry-after", "1") or 1)
    status = response.status_code
    if status == 401:
        return AuthenticationError(message)
    if status == 403:
        return PermissionDeniedError(message)
    if status == 429:
        return RateLimitedError(message, retry)
    if status == 503 and "retry-after" in response.headers:
        return RejectedError(message, retry)
    if 400 <= status < 500:
        return InvalidRequestError(message)
    return RagError(message)
