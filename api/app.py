"""The FastAPI app. `create_app()` is the factory; adapters are built in the lifespan."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api import errors
from api.schemas import (
    AskRequest,
    AskResponse,
    Health,
    Hit,
    JobAccepted,
    JobOut,
    SearchRequest,
    SearchResponse,
)
from api.wiring import AppContext, build_app_context
from core.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from core.settings import Settings, get_settings
from core.types import IngestJob
from ingest.jobs import new_job_id
from ingest.parse import SUPPORTED_SUFFIXES


def _context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(_context)]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings, `rag serve` uses the environment."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = build_app_context(settings or get_settings())
        _ = context.service  # load models and open the store before the first request
        app.state.context = context
        try:
            yield
        finally:
            context.close()

    app = FastAPI(
        title="RAG reference template",
        version="0.1.0",
        summary="Hybrid retrieval with grounded, cited answers.",
        lifespan=lifespan,
    )
    errors.register(app)

    @app.get("/healthz", response_model=Health, tags=["ops"])
    async def healthz(context: Context) -> Health:
        settings = context.settings
        points = await run_in_threadpool(context.store.count)
        return Health(
            status="ok",
            store=settings.store.backend,
            collection=settings.store.collection,
            points=points,
            embedding_model=context.embedder.name,
        )

    @app.post("/v1/search", response_model=SearchResponse, tags=["query"])
    async def search(body: SearchRequest, context: Context) -> SearchResponse:
        hits = await run_in_threadpool(
            context.service.search, body.query, body.top_k, body.filters, body.mode
        )
        return SearchResponse(hits=[Hit.of(h) for h in hits])

    @app.post("/v1/ask", response_model=AskResponse, tags=["query"])
    async def ask(body: AskRequest, context: Context) -> AskResponse:
        answer = await run_in_threadpool(
            context.service.ask, body.question, body.top_k, body.filters, body.context()
        )
        return AskResponse.of(answer)

    @app.post(
        "/v1/ask/stream",
        tags=["query"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def ask_stream(body: AskRequest, context: Context) -> StreamingResponse:
        """Server-sent events: `token` events while the model writes, then one `answer`
        event (the AskResponse JSON). Fallback happens before the first token."""
        events = context.service.ask_stream(body.question, body.top_k, body.filters, body.context())
        # Retrieval runs before the response starts, so its errors still get a status code.
        first = await run_in_threadpool(next, events, None)

        def sse() -> Iterator[str]:
            event = first
            while event is not None:
                if event.answer is not None:
                    payload = AskResponse.of(event.answer).model_dump_json()
                    yield f"event: answer\ndata: {payload}\n\n"
                else:
                    yield f"event: token\ndata: {json.dumps({'text': event.text})}\n\n"
                event = next(events, None)

        return StreamingResponse(sse(), media_type="text/event-stream")

    @app.post("/v1/documents", response_model=JobAccepted, status_code=202, tags=["ingest"])
    async def upload(
        context: Context,
        files: Annotated[list[UploadFile], File(description="Documents to ingest")],
        tenant: Annotated[str | None, Form()] = None,
        access_groups: Annotated[list[str] | None, Form()] = None,
    ) -> JobAccepted:
        """Store the uploads and enqueue an ingest job; poll `status_url` for the outcome."""
        limit = int(context.settings.api.max_upload_mb * 2**20)
        job_id = new_job_id()
        folder = context.settings.data_dir / "uploads" / job_id
        saved: list[tuple[str, str]] = []
        for upload in files:
            name = Path(upload.filename or "").name
            if not name or Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
                raise InvalidRequestError(
                    f"{name or 'a file without a name'}: unsupported type; send one of "
                    + ", ".join(SUPPORTED_SUFFIXES)
                )
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLargeError(
                    f"{name} is over the {context.settings.api.max_upload_mb:g} MiB upload limit"
                )
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
            saved.append((str(folder / name), name))
        context.jobs.submit(IngestJob(job_id, tuple(saved), tenant, tuple(access_groups or ())))
        return JobAccepted(
            job_id=job_id, status_url=f"/v1/jobs/{job_id}", files=[name for _, name in saved]
        )

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["ingest"])
    async def job(job_id: str, context: Context) -> JobOut:
        status = context.jobs.status(job_id)
        if status is None:
            raise NotFoundError(f"no job {job_id}")
        return JobOut.of(status)

    @app.delete("/v1/documents/{source:path}", status_code=204, tags=["ingest"])
    async def delete(source: str, context: Context) -> Response:
        """Remove a document's chunks from the index and the manifest."""
        if not await run_in_threadpool(context.delete_document, source):
            raise NotFoundError(f"no document {source!r} in the index")
        return Response(status_code=204)

    return app
