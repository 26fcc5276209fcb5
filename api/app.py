"""The FastAPI app. `create_app()` is the factory; adapters are built in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from api import errors
from api.schemas import AskRequest, AskResponse, Health, Hit, SearchRequest, SearchResponse
from api.wiring import AppContext, build_app_context
from core.settings import Settings, get_settings


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
            context.service.ask, body.question, body.top_k, body.filters
        )
        return AskResponse.of(answer)

    return app
