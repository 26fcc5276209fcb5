"""The FastAPI app. `create_app()` is the factory; adapters are built in the lifespan.

Handlers are thin: the principal comes from `api.security` (credentials only), the use
cases from `retrieval.service` (search, ask) and `ingest.service` (documents, jobs).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, File, Form, Query, Request, Response, UploadFile
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from api import docs, errors, health, mcp_server, observability, openai_compat, playground
from api.audit import AuditTrail
from api.deps import (
    Context,
    OpenAgentStream,
    OpenStream,
    agent_stream,
    answer_stream,
    count_tokens,
    generation,
)
from api.schemas import (
    AskRequest,
    AskResponse,
    DocumentList,
    Health,
    Hit,
    JobAccepted,
    JobOut,
    KeyCreate,
    KeyCreated,
    KeyOut,
    Name,
    Problem,
    SearchRequest,
    SearchResponse,
)
from api.security import Admin, Hardening, Ingestor, Reader, check_tenant, request_context
from api.wiring import AppContext, build_app_context
from core import telemetry
from core.errors import (
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
)
from core.settings import Settings, get_settings
from core.types import CostLine, IngestJob, Principal, RequestContext, Role
from ingest.jobs import new_job_id
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.service import discard_upload

if TYPE_CHECKING:
    from governance.retention import RetentionSchedule

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
#: Bytes of a file name (most file systems stop at 255; the source id is the name).
_MAX_NAME_BYTES = 200
_PROBLEMS: dict[int | str, dict[str, object]] = {
    code: {
        "description": "A problem (RFC 9457)",
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for code in (400, 401, 403, 404, 413, 422, 429, 503)
}


def _upload_name(raw: str | None) -> str:
    """The source id of an upload: its base name, if it is a sane file name."""
    name = unicodedata.normalize("NFC", Path((raw or "").replace("\\", "/")).name)
    if not name or name in (".", ".."):
        raise InvalidRequestError("a file without a name: send a filename with each file")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequestError("a file name holds invalid unicode") from None
    if len(encoded) > _MAX_NAME_BYTES:
        raise InvalidRequestError(
            f"a file name is {len(encoded)} bytes long; the limit is {_MAX_NAME_BYTES}"
        )
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in name):
        raise InvalidRequestError(f"{name[:60]!r}: control characters in a file name")
    if Path(name).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise InvalidRequestError(
            f"{name}: unsupported type; send one of " + ", ".join(SUPPORTED_SUFFIXES)
        )
    return name


def _ask_context(who: Principal, body: AskRequest) -> RequestContext:
    return request_context(who, body.tenant, body.access_groups, body.sensitivity)


async def _answer_stream(
    body: AskRequest, who: Reader, context: Context
) -> AsyncIterator[OpenStream | OpenAgentStream]:
    """The stream, opened before the response starts (`api.deps.answer_stream`, or
    `agent_stream` when the question goes to the agentic mode)."""
    scope = _ask_context(who, body)
    if context.agent.route(body.question, body.mode, scope).mode == "agentic":
        async with agent_stream(
            context, who, body.question, body.mode, body.top_k, body.filters, scope
        ) as agentic:
            yield agentic
        return
    service = context.service
    async with answer_stream(
        context, who, service, body.question, body.top_k, body.filters, scope
    ) as stream:
        yield stream


AnswerStream = Annotated[OpenStream | OpenAgentStream, Depends(_answer_stream)]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; tests pass their own settings, `rag serve` uses the environment."""
    settings = settings or get_settings()
    api = settings.api

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = build_app_context(settings)
        _ = context.database_url  # migrate the metadata database before anything reads it
        _ = context.service  # load models and open the store before the first request
        _ = context.authenticator
        _ = context.audit  # a bad RAG_DATABASE_URL fails the start, not the first request
        if settings.auth.mode == "keys":  # fail at start, not at the first request
            _ = context.keys
        elif settings.auth.mode == "oidc":
            _ = context.oidc
        app.state.context = context
        schedule = _retention_schedule(context)
        try:
            async with mcp_server.running(app):
                yield
        finally:
            if schedule is not None:
                schedule.stop()
            context.close()

    app = FastAPI(
        title="RAG reference template",
        version="0.1.0",
        summary="Hybrid retrieval with grounded, cited answers.",
        lifespan=lifespan,
        responses=_PROBLEMS,
        telemetry=observability.telemetry_config(settings),
        docs_url=None,  # served from packaged assets by `api.docs`, not from a CDN
        redoc_url=None,
    )
    errors.register(app)
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        Hardening,
        allowed_hosts=api.allowed_hosts,
        cors_origins=api.cors_origins,
        max_body_size=api.max_body_kb * 1024,
    )
    app.add_middleware(AuditTrail)  # inside the observer, whose request record it reads
    observability.install(app, settings)  # outermost: every request is logged and counted
    app.include_router(openai_compat.router)
    app.include_router(playground.router)
    docs.install(app)
    mcp_server.mount(app)

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["ops"],
        responses={503: {"model": Problem, "content": {"application/problem+json": {}}}},
    )
    async def healthz(context: Context) -> Health:
        """Liveness: the process serves and the store answers."""
        points = await run_in_threadpool(context.store.count)
        return Health(
            status="ok",
            store=context.settings.store.backend,
            collection=context.settings.store.collection,
            points=points,
            embedding_model=context.embedder.name,
        )

    @app.get(
        "/readyz",
        response_model=health.ReadyReport,
        tags=["ops"],
        responses={503: {"model": health.ReadyReport}},
    )
    async def readyz(context: Context) -> JSONResponse:
        """Readiness: store, queue, metadata databases and (with the LLM) its models, each
        under a short deadline. 503 when a required part is down; `degraded` when no model
        answers (answers are extractive until one does)."""
        report = await health.readiness(context)
        status = 503 if report.status is health.Readiness.NOT_READY else 200
        return JSONResponse(report.model_dump(mode="json"), status_code=status)

    @app.post("/v1/search", response_model=SearchResponse, tags=["query"])
    async def search(body: SearchRequest, who: Reader, context: Context) -> SearchResponse:
        """Ranked passages from the documents your credentials may read."""
        scope = request_context(who, groups=body.access_groups)
        hits = await run_in_threadpool(
            context.service.search, body.query, body.top_k, body.filters, body.mode, scope
        )
        return SearchResponse(hits=[Hit.of(h) for h in hits])

    @app.post("/v1/ask", response_model=AskResponse, tags=["query"])
    async def ask(body: AskRequest, who: Reader, context: Context) -> AskResponse:
        """A grounded answer with citations, from the documents you may read."""
        scope = _ask_context(who, body)
        agent = context.agent
        async with generation(context, who):
            result = await run_in_threadpool(
                agent.ask, body.question, body.mode, body.top_k, body.filters, scope
            )
        await count_tokens(context, who, result.answer)
        return AskResponse.of(result.answer, result)

    @app.post(
        "/v1/ask/stream",
        response_class=EventSourceResponse,
        tags=["query"],
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def ask_stream(
        body: AskRequest, stream: AnswerStream, who: Reader, context: Context
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events: `token` events (`{"text"}`) while the model writes, then
        one `answer` event (the AskResponse JSON), or an `error` event (problem JSON) when
        the stream dies after it started. Fallback happens before the first token. In the
        agentic mode, `step` events (route, plan, each sub-question, synthesis) come first.
        """
        from retrieval.agentic import AgentAnswer

        route = context.agent.route(body.question, body.mode, _ask_context(who, body))
        try:
            event = stream.first
            while event is not None:
                if isinstance(event, AgentAnswer):
                    await count_tokens(context, who, event.answer)
                    answer = AskResponse.of(event.answer, event).model_dump_json()
                    yield ServerSentEvent(event="answer", raw_data=answer)
                elif event.answer is not None:
                    await count_tokens(context, who, event.answer)
                    answer = AskResponse.of(event.answer, route=route).model_dump_json()
                    yield ServerSentEvent(event="answer", raw_data=answer)
                elif event.kind == "step":
                    yield ServerSentEvent(event="step", raw_data=event.text)
                else:
                    yield ServerSentEvent(event="token", data={"text": event.text})
                event = await run_in_threadpool(next, stream.events, None)
        except Exception as exc:  # noqa: BLE001 - the status is sent: say it in the stream
            yield ServerSentEvent(event="error", raw_data=errors.stream_error(exc))

    @app.post(
        "/v1/documents",
        response_model=JobAccepted,
        status_code=202,
        tags=["ingest"],
        max_body_size=int(api.max_upload_mb * 2**20) * api.max_upload_files + 2**20,
    )
    async def upload(
        who: Ingestor,
        context: Context,
        files: Annotated[list[UploadFile], File(description="Documents to ingest")],
        tenant: Annotated[Name | None, Form(description="Optional; must be yours")] = None,
        access_groups: Annotated[
            list[Name] | None, Form(description="Who may read them (your groups); none: all")
        ] = None,
    ) -> JobAccepted:
        """Store the uploads and enqueue an ingest job; poll `status_url` for the outcome.
        A file named like one of your documents replaces it."""
        check_tenant(who, tenant)
        groups = _upload_groups(who, access_groups or [])
        if len(files) > api.max_upload_files:
            raise PayloadTooLargeError(f"{len(files)} files; the limit is {api.max_upload_files}")
        names = [_upload_name(upload.filename) for upload in files]  # all, before any write
        if len(set(names)) != len(names):
            raise InvalidRequestError("two files share a name; each file's name is its id")
        await run_in_threadpool(context.documents.check_writable)
        readable = None if who.can(Role.ADMIN) else who.access_groups
        for name in names:
            if not await run_in_threadpool(context.documents.writable, who.tenant, name, readable):
                raise PermissionDeniedError(
                    f"{name}: a document of that name exists that your groups cannot write"
                )
        limit = int(api.max_upload_mb * 2**20)
        job_id = new_job_id()
        folder = context.settings.data_dir / "uploads" / who.tenant / job_id  # erasure finds it
        job = IngestJob(
            job_id,
            tuple((str(folder / name), name) for name in names),
            who.tenant,
            tuple(groups),
        )
        try:
            folder.mkdir(parents=True)
            for upload, name in zip(files, names, strict=True):
                data = await upload.read(limit + 1)
                if len(data) > limit:
                    raise PayloadTooLargeError(
                        f"{name} is over the {api.max_upload_mb:g} MiB upload limit"
                    )
                (folder / name).write_bytes(data)
            context.jobs.submit(job)
            telemetry.note(documents=names, job_id=job_id, access_groups=groups)
        except BaseException:  # nothing accepted: no files left behind without a job
            discard_upload(job)
            raise
        return JobAccepted(job_id=job_id, status_url=f"/v1/jobs/{job_id}", files=names)

    @app.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["ingest"])
    async def job(job_id: str, who: Ingestor, context: Context) -> JobOut:
        """An ingest job of your tenant (another tenant's job does not exist for you)."""
        telemetry.note(job_id=job_id[:64])
        status = context.jobs.status(job_id) if _JOB_ID.match(job_id) else None
        if status is None or status.tenant != who.tenant:
            raise NotFoundError(f"no job {job_id[:64]}")
        return JobOut.of(status)

    @app.get("/v1/documents", response_model=DocumentList, tags=["ingest"])
    async def list_documents(
        request: Request,
        who: Reader,
        context: Context,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        after: Annotated[
            str | None, Query(max_length=1024, description="`next_after` of the last page")
        ] = None,
        offset: Annotated[int, Query(ge=0, le=1_000_000, description="Or skip this many")] = 0,
    ) -> DocumentList:
        """Your tenant's documents that you may read, in source order, a page at a time."""
        unknown = sorted(set(request.query_params) - {"limit", "after", "offset"})
        if unknown:  # `tenant=` is not a way to list another tenant's documents
            raise InvalidRequestError(f"unknown query parameter(s): {', '.join(unknown)[:200]}")
        readers = None if who.can(Role.ADMIN) else who.access_groups
        page = await run_in_threadpool(
            context.documents.list_documents, who.tenant, readers, after, limit, offset
        )
        return DocumentList.of(page)

    @app.delete("/v1/documents/{source:path}", status_code=204, tags=["ingest"])
    async def delete(source: str, who: Ingestor, context: Context) -> Response:
        """Remove one of your tenant's documents (its chunks, manifest row, cached answers)."""
        groups = None if who.can(Role.ADMIN) else who.access_groups
        telemetry.note(documents=[source[:1024]])
        if not await run_in_threadpool(context.documents.delete, who.tenant, source, groups):
            raise NotFoundError(f"no document {source[:200]!r} in the index")
        return Response(status_code=204)

    @app.get("/v1/costs", response_model=list[CostLine], tags=["ops"])
    async def costs(
        request: Request,
        who: Reader,
        context: Context,
        days: Annotated[int, Query(ge=1, le=366)] = 30,
        tenant: Annotated[Name | None, Query(description="Admins: any tenant")] = None,
    ) -> list[CostLine]:
        """LLM spend by day and model: your tenant's, or (admin) any tenant's or all."""
        unknown = sorted(set(request.query_params) - {"days", "tenant"})
        if unknown:  # a misspelt `tenant` must not silently mean "my tenant"
            raise InvalidRequestError(f"unknown query parameter(s): {', '.join(unknown)[:200]}")
        if not who.can(Role.ADMIN):
            check_tenant(who, tenant)
            tenant = who.tenant
        since = datetime.now(UTC) - timedelta(days=days)
        telemetry.note(of_tenant=tenant or "*", days=days)
        return await run_in_threadpool(context.ledger.report, since, tenant)

    @app.post("/v1/keys", response_model=KeyCreated, status_code=201, tags=["admin"])
    async def create_key(body: KeyCreate, who: Admin, context: Context) -> KeyCreated:
        """A new API key; the token is in this response only."""
        record, token = await run_in_threadpool(
            context.keys.create, body.tenant, body.role, body.access_groups, body.expires_days
        )
        telemetry.note(key_id=record.key_id, key_tenant=body.tenant, key_role=body.role.value)
        return KeyCreated(**_key_out(record).model_dump(), key=token)

    @app.get("/v1/keys", response_model=list[KeyOut], tags=["admin"])
    async def list_keys(who: Admin, context: Context) -> list[KeyOut]:
        return [_key_out(k) for k in await run_in_threadpool(context.keys.list)]

    @app.delete("/v1/keys/{key_id}", status_code=204, tags=["admin"])
    async def revoke_key(key_id: str, who: Admin, context: Context) -> Response:
        telemetry.note(key_id=key_id[:64])
        if not await run_in_threadpool(context.keys.revoke, key_id[:64]):
            raise NotFoundError(f"no key {key_id[:64]}")
        return Response(status_code=204)

    return app


def _retention_schedule(context: AppContext) -> RetentionSchedule | None:
    """Retention every `retention.interval_h` hours in this process, when set."""
    interval = context.settings.retention.interval_h
    if interval is None:
        return None
    from governance.retention import RetentionSchedule

    schedule = RetentionSchedule(context.run_retention, interval)
    schedule.start()
    return schedule


def _upload_groups(who: Principal, groups: Sequence[str]) -> list[str]:
    """Groups to label uploads with: the uploader's own (an admin may name any)."""
    extra = sorted(set(groups) - set(who.access_groups))
    if extra and not who.can(Role.ADMIN):
        raise PermissionDeniedError(f"not a member of access group(s): {', '.join(extra)}")
    return sorted(set(groups))


def _key_out(record: object) -> KeyOut:
    from auth.keys import ApiKey

    assert isinstance(record, ApiKey)
    return KeyOut(
        key_id=record.key_id,
        tenant=record.tenant,
        role=record.role,
        access_groups=list(record.access_groups),
        created_at=record.created_at.isoformat(),
        expires_at=record.expires_at.isoformat() if record.expires_at else None,
        revoked=record.revoked_at is not None,
    )
