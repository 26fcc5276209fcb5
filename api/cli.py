"""The `rag` command line: ingest, search, ask, serve, demo.

A thin surface over `api.wiring.AppContext`; errors of the template print as one line
with the fix, and exit non-zero (2 = partial ingest, 1 = failure).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from core.errors import RagError
from core.settings import Settings, get_settings
from core.types import (
    DEFAULT_TENANT,
    Answer,
    IngestProgress,
    ParsedDocument,
    RequestContext,
    Role,
    Rung,
    ScoredChunk,
    SearchMode,
    Sensitivity,
    check_name,
)
from eval.cli import app as eval_app

if TYPE_CHECKING:
    from api.wiring import AppContext
    from governance.audit import AuditLog
    from retrieval.agentic import AgentAnswer, Step

app = typer.Typer(
    help="RAG reference template: ingest documents, search, ask.", no_args_is_help=True
)
app.add_typer(eval_app, name="eval")
console = Console()
EXIT_PARTIAL = 2

#: `rag demo` ingests the sample corpus here, apart from `RAG_STORE__COLLECTION` (docs).
DEMO_COLLECTION = "demo"
DEMO_QUESTIONS = (
    "Which vector store does the template use by default, and why?",
    "How are chunk ids made deterministic?",
)


def operator() -> str:
    """Who the audit trail says ran a CLI command: the local OS account."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli:unknown"


def _context(settings: Settings | None = None) -> AppContext:
    from api.wiring import build_app_context

    return build_app_context(settings or get_settings())


def _print_answer(answer: Answer) -> None:
    console.print(f"\n[bold]Q:[/bold] {answer.question}")
    console.print(f"[bold]A:[/bold] {answer.text}")
    for citation in answer.citations:
        where = citation.section or citation.title
        if citation.section and not citation.section.startswith(citation.title):
            where = f"{citation.title} > {citation.section}"
        page = f", page {citation.page}" if citation.page else ""
        console.print(
            f"  [{citation.number}] {citation.source}{page} — {where} "
            f"[dim](chunk {citation.chunk_id})[/dim]"
        )
    p = answer.provenance
    if p is not None and p.rung == Rung.EXTRACTIVE and not p.attempts:
        console.print(f"  [dim]extractive answer ({p.route})[/dim]")
    elif p is not None:
        cost = f"${p.cost_usd:.6f}" if not p.saved_usd else f"saved ${p.saved_usd:.6f}"
        flags = "" if p.grounded is not False else " [yellow]citations flagged[/yellow]"
        console.print(
            f"  [dim]{p.rung}: {p.model} ({p.route}); "
            f"{p.usage.input_tokens}+{p.usage.output_tokens} tokens, {cost}[/dim]{flags}"
        )


def _print_hits(hits: list[ScoredChunk]) -> None:
    table = Table("#", "score", "source", "section", "text")
    for rank, hit in enumerate(hits, 1):
        text = hit.chunk.text.replace("\n", " ")
        table.add_row(
            str(rank),
            f"{hit.score:.4f}",
            hit.chunk.source,
            hit.chunk.section,
            text[:90] + ("…" if len(text) > 90 else ""),
        )
    console.print(table)


def _fail(exc: RagError) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1) from exc


def _run_ingest(
    path: Path,
    prune: bool,
    report: Path | None,
    tenant: str | None,
    group: list[str] | None,
    reindex: bool,
    force: bool = False,
    settings: Settings | None = None,
) -> None:
    import json

    from ingest.parse import SUPPORTED_SUFFIXES
    from ingest.pipeline import discover

    if not path.exists():
        console.print(f"[red]error:[/red] {path} does not exist")
        raise typer.Exit(1)
    ctx = _context(settings)
    started = time.perf_counter()
    try:
        documents = ctx.documents
        documents.check_writable(reindex)
        files = discover(path, SUPPORTED_SUFFIXES)
        root = path if path.is_dir() else path.parent
        with Progress(
            TextColumn("[bold]{task.description:>6}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            # Chunks move as they are embedded, so a large file shows progress before it ends;
            # their total grows as files are parsed.
            file_bar = progress.add_task("files", total=len(files), note="")
            chunk_bar = progress.add_task("chunks", total=None, note="embedded")

            def moved(state: IngestProgress) -> None:
                rate = state.chunks_embedded / max(time.perf_counter() - started, 1e-6)
                progress.update(file_bar, completed=state.files_done)
                progress.update(
                    chunk_bar,
                    completed=state.chunks_embedded,
                    total=state.chunks_total or None,
                    note=f"embedded · {rate:.1f} chunks/s",
                )

            def finished(document: ParsedDocument, chunks: int) -> None:
                progress.console.print(f"  {document.source}: {chunks} chunks")

            result = documents.ingest(
                files,
                root,
                tenant or DEFAULT_TENANT,
                [check_name("group", g) for g in group or ()],
                prune=prune,
                reindex=reindex,
                force=force,
                on_document=finished,
                workers=ctx.settings.ingest.parse_workers,
                on_progress=moved,
            )
            progress.update(file_bar, completed=len(files))
        published = result.published
        total = ctx.build_store.count()
        ctx.audit_event(
            "reindex" if reindex else "ingest",
            operator(),
            tenant or DEFAULT_TENANT,
            "partial" if result.failed else "ok",
            [*result.indexed, *result.pruned],
            chunks=result.chunks,
            failed=len(result.failed),
            injection_flagged=result.flagged,
        )
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()
    seconds = time.perf_counter() - started
    summary = Table(
        "ingested",
        "chunks",
        "unchanged",
        "pruned",
        "failed",
        "seconds",
        "chunks/s",
        "points in collection",
    )
    summary.add_row(
        str(result.documents),
        str(result.chunks),
        str(result.skipped),
        str(len(result.pruned)),
        str(len(result.failed)),
        f"{seconds:.1f}",
        f"{result.chunks / seconds:.1f}",
        str(total),
    )
    console.print(summary)
    console.print(
        f"ingested {result.documents} documents, {result.chunks} chunks in {seconds:.1f}s; "
        f"{result.skipped} unchanged, {len(result.pruned)} pruned, {len(result.failed)} failed; "
        f"the collection holds {total} chunks"
    )
    for failure in result.failed:
        console.print(f"[yellow]failed:[/yellow] {failure}")
    for source, count in sorted(result.flagged.items()):
        console.print(
            f"[yellow]flagged:[/yellow] {source}: {count} passage(s) read like instructions "
            f"to a model (RAG_GOVERNANCE__INJECTION={ctx.settings.governance.injection})"
        )
    if report is not None:
        report.write_text(
            json.dumps(
                {
                    "documents": result.documents,
                    "chunks": result.chunks,
                    "skipped": result.skipped,
                    "pruned": result.pruned,
                    "failed": {failure.path: str(failure) for failure in result.failed},
                    "points": total,
                    "seconds": round(seconds, 2),
                    "status": "partial" if result.failed else "ok",
                },
                indent=2,
            )
        )
    if published:
        console.print(f"queries now read {published!r} (alias {ctx.settings.store.collection!r})")
    elif reindex:
        console.print(
            "[yellow]not switched:[/yellow] some files failed; fix them and rerun, "
            "or pass --force to switch anyway"
        )
    if result.failed:
        raise typer.Exit(EXIT_PARTIAL)


_PATH = Annotated[Path, typer.Argument(help="A file or a folder to ingest.")]
_PRUNE = Annotated[bool, typer.Option(help="Delete the chunks of sources no longer under PATH.")]
_REPORT = Annotated[Path | None, typer.Option(help="Write the run's report as JSON.")]


def _name(kind: str) -> Callable[[str | None], str | None]:
    def check(value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return check_name(kind, value)
        except RagError as exc:
            raise typer.BadParameter(str(exc)) from exc

    return check


_TENANT = Annotated[
    str | None,
    typer.Option(help="Tenant that owns these documents.", callback=_name("tenant")),
]
_GROUP = Annotated[list[str] | None, typer.Option(help="Access group allowed to read them.")]


@app.command()
def ingest(
    path: _PATH,
    prune: _PRUNE = False,
    report: _REPORT = None,
    tenant: _TENANT = None,
    group: _GROUP = None,
) -> None:
    """Parse, chunk, embed and upsert documents; unchanged files are skipped.

    Exit code 0: every file ingested; 2: partial (some files failed, see the report);
    1: the run itself failed.
    """
    _run_ingest(path, prune, report, tenant, group, reindex=False)


@app.command()
def reindex(
    path: _PATH,
    report: _REPORT = None,
    tenant: _TENANT = None,
    group: _GROUP = None,
    force: Annotated[bool, typer.Option(help="Switch even if some files failed.")] = False,
) -> None:
    """Blue/green: build a new collection for the current pipeline from PATH, then move
    the alias to it atomically. Queries keep reading the old one until the switch."""
    _run_ingest(path, True, report, tenant, group, reindex=True, force=force)


_TOP_K = Annotated[int, typer.Option("--top-k", "-k", min=1, max=100)]
_AS_TENANT = Annotated[
    str, typer.Option("--tenant", help="Read as this tenant.", callback=_name("tenant"))
]
_AS_GROUP = Annotated[
    list[str] | None, typer.Option("--group", help="Read as a member of this access group.")
]


def _as(tenant: str, groups: list[str] | None, sensitivity: Sensitivity) -> RequestContext:
    """The CLI runs as the local operator, reading as the tenant and groups it names."""
    return RequestContext(
        tenant, tuple(sorted({check_name("group", g) for g in groups or ()})), sensitivity
    )


@app.command()
def search(
    query: str,
    top_k: _TOP_K = 5,
    mode: Annotated[SearchMode, typer.Option(help="hybrid, dense or sparse")] = SearchMode.HYBRID,
    source: Annotated[str | None, typer.Option(help="Only chunks of this source.")] = None,
    tenant: _AS_TENANT = DEFAULT_TENANT,
    group: _AS_GROUP = None,
) -> None:
    """Show the ranked chunks for a query."""
    ctx = _context()
    try:
        request = _as(tenant, group, Sensitivity.INTERNAL)
        filters = {"source": source} if source else None
        _print_hits(ctx.service.search(query, top_k, filters, mode, request))
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()


class AskMode(StrEnum):
    AUTO = "auto"
    SINGLE = "single"
    AGENTIC = "agentic"


_MODE = Annotated[
    AskMode,
    typer.Option(
        help="auto: the router picks; single: one retrieval; agentic: plan sub-questions, "
        "research each, synthesise (bounded by RAG_AGENT__*)."
    ),
]
_SENSITIVITY = Annotated[Sensitivity, typer.Option(help="confidential: private models only.")]


def _print_step(step: Step) -> None:
    if step.kind != "synthesize":
        timing = f" ({step.ms:.0f} ms, {step.passages} passages)" if step.kind == "research" else ""
        console.print(f"  [dim]{step.kind}: {step.detail}{timing}[/dim]")


@app.command()
def ask(
    question: str,
    top_k: _TOP_K = 5,
    tenant: _AS_TENANT = DEFAULT_TENANT,
    group: _AS_GROUP = None,
    sensitivity: _SENSITIVITY = Sensitivity.INTERNAL,
    mode: _MODE = AskMode.AUTO,
) -> None:
    """Answer a question from the indexed documents, with citations."""
    ctx = _context()
    try:
        request = _as(tenant, group, sensitivity)
        result = ctx.agent.ask(question, mode.value, top_k, context=request, on_step=_print_step)
        _print_answer(result.answer)
        if result.stopped_by:
            console.print(f"  [yellow]partial: {result.stopped_by} reached[/yellow]")
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()


def _batch_row(item: dict[str, str], result: AgentAnswer, seconds: float) -> dict[str, object]:
    answer, p = result.answer, result.answer.provenance
    return {
        "id": item["id"],
        "question": item["question"],
        "mode": result.route.mode,
        "reason": result.route.reason,
        "sub_questions": list(result.sub_questions),
        "stopped_by": result.stopped_by,
        "answer": answer.text,
        "found": answer.found,
        "citations": [
            {"number": c.number, "source": c.source, "chunk_id": c.chunk_id}
            for c in answer.citations
        ],
        "passages": [{"chunk_id": h.chunk.id, "source": h.chunk.source} for h in answer.passages],
        "latency_ms": round(seconds * 1000, 1),
        "cost_usd": p.cost_usd if p else 0.0,
    }


def _batch_items(path: Path) -> list[dict[str, str]]:
    """JSONL lines with "question" (and "id"), or one question per plain line."""
    import json

    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line) if line.lstrip().startswith("{") else {"question": line}
            question = str(data["question"]).strip()
        except (ValueError, KeyError, TypeError) as exc:
            raise typer.BadParameter(f"{path}:{number}: not a question ({exc})") from exc
        items.append({"id": str(data.get("id", number)), "question": question})
    return items


@app.command()
def batch(
    questions: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    out: Annotated[Path, typer.Option(help="Results, one JSON line per question.")] = Path(
        "reports/batch.jsonl"
    ),
    mode: _MODE = AskMode.AUTO,
    top_k: _TOP_K = 5,
    tenant: _AS_TENANT = DEFAULT_TENANT,
    group: _AS_GROUP = None,
    sensitivity: _SENSITIVITY = Sensitivity.INTERNAL,
) -> None:
    """Answer a file of questions (JSONL with "question", or plain lines) with a progress
    bar; one result line each (answer, citations, passages, mode, latency, cost) for the
    eval suite. A question that fails is written with its error; the rest go on."""
    import json

    items = _batch_items(questions)
    ctx = _context()
    request = _as(tenant, group, sensitivity)
    out.parent.mkdir(parents=True, exist_ok=True)
    failed = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        with out.open("w", encoding="utf-8") as sink, Progress(*columns, console=console) as bar:
            task = bar.add_task(f"answering ({mode.value})", total=len(items))
            for item in items:
                start = time.perf_counter()
                try:
                    result = ctx.agent.ask(item["question"], mode.value, top_k, context=request)
                    row = _batch_row(item, result, time.perf_counter() - start)
                except RagError as exc:
                    failed += 1
                    row = {**item, "error": str(exc)}
                sink.write(json.dumps(row) + "\n")
                bar.advance(task)
    finally:
        ctx.close()
    console.print(f"{len(items) - failed} answered, {failed} failed: {out}")
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
def costs(
    days: Annotated[int, typer.Option(help="Look back this many days.")] = 30,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """LLM spend from the cost ledger, by day, tenant and model (cache savings included)."""
    import dataclasses
    import json
    from datetime import UTC, datetime, timedelta

    ctx = _context()
    try:
        since = datetime.now(UTC) - timedelta(days=days)
        lines = ctx.ledger.report(since=since, tenant=tenant)
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()
    if as_json:
        for line in lines:
            print(json.dumps(dataclasses.asdict(line), default=str))
        return
    table = Table(title=f"LLM costs, last {days} days")
    for column in ("day", "tenant", "model", "requests", "tokens in", "tokens out"):
        table.add_column(column, justify="right" if column[0] in "rt" else "left")
    table.add_column("cost $", justify="right")
    table.add_column("cache hits", justify="right")
    table.add_column("saved $", justify="right")
    for line in lines:
        table.add_row(
            str(line.day),
            line.tenant,
            line.model,
            str(line.requests),
            f"{line.input_tokens:,}",
            f"{line.output_tokens:,}",
            f"{line.cost_usd:.4f}",
            str(line.cache_hits),
            f"{line.saved_usd:.4f}",
        )
    if lines:
        table.add_section()
        table.add_row(
            "total",
            "",
            "",
            str(sum(x.requests for x in lines)),
            f"{sum(x.input_tokens for x in lines):,}",
            f"{sum(x.output_tokens for x in lines):,}",
            f"{sum(x.cost_usd for x in lines):.4f}",
            str(sum(x.cache_hits for x in lines)),
            f"{sum(x.saved_usd for x in lines):.4f}",
        )
    console.print(table)


class PlanQuantization(StrEnum):
    NONE = "none"
    INT8 = "int8"


@app.command()
def plan(
    documents: Annotated[int, typer.Option(min=1, help="Documents in the corpus.")],
    avg_chars: Annotated[
        int, typer.Option(min=1, help="Average characters of text a document.")
    ] = 3000,
    qps: Annotated[float, typer.Option(min=0.001, help="Questions a second at peak.")] = 1.0,
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent clients at peak.")] = 10,
    llm: Annotated[
        str, typer.Option(help="Generation model: a catalog name, or 'extractive' (no LLM).")
    ] = "gpt-4.1-mini",
    quantization: Annotated[
        PlanQuantization, typer.Option(help="Vectors in RAM: none (float32) or int8.")
    ] = PlanQuantization.NONE,
    replication: Annotated[int, typer.Option(min=1, help="Copies of each shard.")] = 2,
    node_ram_gb: Annotated[float, typer.Option(help="RAM of one Qdrant node.")] = 16.0,
    ingest_hours: Annotated[float, typer.Option(help="Time to (re)ingest everything.")] = 8.0,
    embedding_dims: Annotated[
        int | None, typer.Option(min=1, help="Another embedding model's dimensions.")
    ] = None,
    embedding_price: Annotated[
        float, typer.Option(min=0, help="USD per 1M embedded tokens (0: the local model).")
    ] = 0.0,
    cache_hit_rate: Annotated[
        float | None, typer.Option(min=0, max=0.99, help="Share of answers from the cache.")
    ] = None,
    benchmarks: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the benchmark JSONs [default: the project's docs/benchmarks]."
        ),
    ] = None,
    scale: Annotated[
        Path | None, typer.Option(help="A bench-scale JSON other than the folder's.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Capacity and cost of a deployment: vectors, Qdrant RAM and disk, nodes and shards,
    API and worker replicas, ingest time, monthly LLM and embedding spend, each with its
    formula and the measured constants it used (docs/adr/0029-capacity-planner.md)."""
    import dataclasses
    import json
    from datetime import UTC, timedelta

    from eval.capacity import BENCHMARKS, Workload, estimate, from_files, prompt_shape_tokens
    from gateway.prompting import load_template

    ctx = _context()
    try:
        settings = ctx.settings
        workload = Workload(
            documents=documents,
            avg_chars=avg_chars,
            qps=qps,
            concurrency=concurrency,
            llm=llm,
            quantization="int8" if quantization is PlanQuantization.INT8 else "none",
            replication=replication,
            node_ram_gb=node_ram_gb,
            ingest_hours=ingest_hours,
            embedding_dims=embedding_dims,
            embedding_price_per_mtok=embedding_price,
            cache_hit_rate=cache_hit_rate,
        )
        template = load_template()
        model = None if llm == "extractive" else ctx.catalog.get(llm)
        measured = from_files(
            benchmarks or BENCHMARKS,
            scale=scale,
            quantization=workload.quantization,
            lines=ctx.ledger.report(since=datetime.now(UTC) - timedelta(days=90)),
            prompt_tokens=prompt_shape_tokens(
                template.system,
                template.user,
                settings.retrieval.top_k,
                settings.ingest.chunk_size,
            ),
            model=model,
            chunk_size=settings.ingest.chunk_size,
            chunk_overlap=settings.ingest.chunk_overlap,
        )
        estimates = estimate(workload, measured)
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()
    if as_json:
        print(json.dumps([dataclasses.asdict(e) for e in estimates], indent=2))
        return
    table = Table(title=f"Plan: {documents:,} documents, {qps:g} questions/s, {llm}")
    for column in ("estimate", "value", "unit", "formula and constants"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for e in estimates:
        constants = "\n".join(f"  {k} = {v}" for k, v in e.constants.items())
        value = f"{e.value:,.0f}" if abs(e.value) >= 100 else f"{e.value:,.2f}"
        table.add_row(e.name, value, e.unit, e.formula + ("\n" + constants if constants else ""))
    console.print(table)


@app.command()
def demo(
    docs: Annotated[Path, typer.Option(help="Notes to render as the sample corpus.")] = Path(
        "docs"
    ),
) -> None:
    """Render the sample corpus (md, html, docx, pdf, txt), ingest it, and ask about it."""
    from ingest import sample_corpus

    settings = get_settings()
    # The demo has a collection of its own: a user's `rag ingest` then starts clean, and
    # the template's ADRs never turn up in answers about the user's documents.
    demo_settings = settings.model_copy(
        update={"store": settings.store.model_copy(update={"collection": DEMO_COLLECTION})}
    )
    target = settings.data_dir / "sample-corpus"
    files = sample_corpus.build(docs, target)
    console.print(
        f"sample corpus: {len(files)} files in {target}, collection {DEMO_COLLECTION!r} "
        f"(your documents go to {settings.store.collection!r}; ask the demo's with "
        f"RAG_STORE__COLLECTION={DEMO_COLLECTION})"
    )
    # After an upgrade that changed the pipeline, the demo's own collection is rebuilt
    # (blue/green) rather than refused: no operator has to run `rag reindex` for it.
    probe = _context(demo_settings)
    try:
        rebuild = probe.rebuilding
    finally:
        probe.close()
    _run_ingest(target, rebuild, None, None, None, reindex=rebuild, settings=demo_settings)
    ctx = _context(demo_settings)
    try:
        for question in DEMO_QUESTIONS:
            _print_answer(ctx.service.ask(question))
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()


keys_app = typer.Typer(help="API keys (RAG_AUTH__MODE=keys): create, list, revoke.")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="The key's tenant.", callback=_name("tenant"))],
    role: Annotated[Role, typer.Option(help="reader, ingestor or admin.")] = Role.READER,
    group: _AS_GROUP = None,
    expires_days: Annotated[int | None, typer.Option(min=1, max=3650)] = None,
) -> None:
    """Create a key; the token is printed once, on the last line, and stored as a hash."""
    ctx = _context()
    try:
        record, token = ctx.keys.create(tenant, role, group or (), expires_days)
        ctx.audit_event("key.create", operator(), tenant, "ok", key_id=record.key_id, role=role)
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()
    expires = record.expires_at.isoformat() if record.expires_at else "never"
    groups = ",".join(record.access_groups) or "-"
    console.print(
        f"key {record.key_id}: tenant {record.tenant}, role {record.role}, groups {groups}, "
        f"expires {expires}. Send it as `Authorization: Bearer <key>`; it is not shown again:"
    )
    print(token)


@keys_app.command("list")
def keys_list() -> None:
    """Every key (never its secret): tenant, role, groups, expiry, revocation."""
    ctx = _context()
    try:
        records = ctx.keys.list()
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()
    table = Table("key id", "tenant", "role", "groups", "created", "expires", "state")
    for r in records:
        state = "revoked" if r.revoked_at else ("active" if r.active else "expired")
        table.add_row(
            r.key_id,
            r.tenant,
            str(r.role),
            ",".join(r.access_groups) or "-",
            r.created_at.isoformat(timespec="seconds"),
            r.expires_at.isoformat(timespec="seconds") if r.expires_at else "never",
            state,
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key at once; requests with it get 401 from then on."""
    ctx = _context()
    try:
        known = ctx.keys.revoke(key_id)
        ctx.audit_event(
            "key.revoke", operator(), None, "ok" if known else "not_found", key_id=key_id[:64]
        )
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()
    if not known:
        console.print(f"[red]error:[/red] no key {key_id}")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


@app.command()
def erase(
    source: Annotated[str, typer.Argument(help="The document's source id (see `rag ingest`).")],
    tenant: _AS_TENANT = DEFAULT_TENANT,
) -> None:
    """Erase a document: its chunks, manifest row, cached answers citing it and any
    uploaded copy; the audit trail records it (by source id, never its text)."""
    ctx = _context()
    try:
        found = ctx.documents.delete(tenant, source)
        ctx.audit_event("delete", operator(), tenant, "ok" if found else "not_found", [source])
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()
    if not found:
        console.print(f"[red]error:[/red] tenant {tenant} has no document {source!r}")
        raise typer.Exit(1)
    console.print(f"erased {source!r} of tenant {tenant}")


audit_app = typer.Typer(help="The audit trail: verify its hash chain, export it for a SIEM.")
app.add_typer(audit_app, name="audit")


def _audit_log(ctx: AppContext) -> AuditLog:
    if ctx.audit is None:  # the caller's `finally` closes the context
        console.print("[red]error:[/red] the audit trail is off (RAG_AUDIT__ENABLED=false)")
        raise typer.Exit(1)
    return ctx.audit


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every record against the chain: exit 0 when intact, 1 naming the first
    record edited, removed or moved."""
    ctx = _context()
    try:
        result = _audit_log(ctx).verify()
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()
    if not result.ok:
        console.print(
            f"[red]audit log broken at record {result.first_bad}:[/red] {result.reason} "
            f"({result.records} records checked before it)"
        )
        raise typer.Exit(1)
    console.print(
        f"audit log intact: {result.records} records (sequence {result.first_seq}.."
        f"{result.head_seq})"
    )


def _since(value: str) -> datetime:
    """An ISO date or time (UTC unless it says), or an age: 7d, 12h, 30m."""
    from datetime import UTC, datetime, timedelta

    units = {"d": "days", "h": "hours", "m": "minutes"}
    if len(value) > 1 and value[-1] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give an ISO date/time or an age like 7d") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@audit_app.command("export")
def audit_export(
    since: Annotated[str, typer.Option(help="ISO date/time (UTC), or an age: 7d, 12h.")],
    out: Annotated[Path | None, typer.Option(help="Write here (default: stdout).")] = None,
) -> None:
    """Records since a moment as JSON lines with their hashes (for a SIEM, which can
    check the chain on its side). The export is itself recorded."""
    moment = _since(since)
    ctx = _context()
    try:
        log = _audit_log(ctx)
        if out is None:
            count = log.export(sys.stdout, moment)
        else:
            with out.open("w", encoding="utf-8") as stream:
                count = log.export(stream, moment)
        ctx.audit_event(
            "audit.export", operator(), None, "ok", since=moment.isoformat(), records=count
        )
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()
    if out is not None:
        console.print(f"wrote {count} records to {out}")


db_app = typer.Typer(help="The metadata database: its schema revision, migrations.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the metadata database to the code's schema and copy in the old per-feature
    SQLite files of the data folder. `rag serve` and `rag worker` do it at start; this is
    for a deployment that migrates in a step of its own (a Kubernetes Job, a CI stage)."""
    from metadata.database import current

    ctx = _context()
    try:
        url = ctx.database_url
        console.print(f"metadata database at revision {current(url)}")
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()


@db_app.command("current")
def db_current() -> None:
    """The schema revision the metadata database is at, and the code's (exit 1 if behind)."""
    from metadata.database import current, head, sqlite_url

    settings = get_settings()
    try:
        found = current(settings.database_url or sqlite_url(settings.data_dir))
    except RagError as exc:
        _fail(exc)
    console.print(f"database: {found or 'none (empty)'}; code: {head()}")
    if found != head():
        raise typer.Exit(1)


retention_app = typer.Typer(help="Retention: expire documents, uploads, cache, logs by age.")
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
def retention_run() -> None:
    """Apply RAG_RETENTION__* once (`rag serve` and `rag worker` also run it every
    RAG_RETENTION__INTERVAL_H hours when set)."""
    ctx = _context()
    try:
        report = ctx.run_retention(operator())
    except RagError as exc:
        _fail(exc)
    finally:
        ctx.close()
    removed = ", ".join(
        f"{count} {name.replace('_', ' ')}" for name, count in report.counts().items()
    )
    console.print(f"retention: removed {removed}")


@app.command()
def worker(
    threads: Annotated[int, typer.Option(help="Jobs run at once in this process.")] = 1,
) -> None:
    """Run ingest jobs from the Redis queue (RAG_JOBS__BACKEND=redis) until stopped."""
    import signal
    import threading

    ctx = _context()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        _ = ctx.database_url  # migrate the metadata database before the first job
        ctx.jobs.start_worker(threads)
    except RagError as exc:
        ctx.close()
        _fail(exc)
    from urllib.parse import urlsplit

    queue = urlsplit(ctx.settings.jobs.redis_url)  # never print the password in the URL
    console.print(f"worker: {threads} thread(s) on {queue.hostname}:{queue.port or 6379}")
    schedule = None
    if ctx.settings.retention.interval_h is not None:
        from governance.retention import RetentionSchedule

        schedule = RetentionSchedule(ctx.run_retention, ctx.settings.retention.interval_h)
        schedule.start()
    stop.wait()
    if schedule is not None:
        schedule.stop()
    ctx.close()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from core.settings import is_loopback

    settings = get_settings()
    bind = host or settings.api.host
    if settings.auth.mode == "none" and not is_loopback(bind):
        console.print(
            f"[red]error:[/red] refusing to serve on {bind} without authentication. Either "
            "bind to 127.0.0.1, or set RAG_AUTH__MODE=keys and create a key with "
            "`rag keys create --tenant <tenant> --role reader` (or RAG_AUTH__MODE=oidc)"
        )
        raise typer.Exit(1)
    if not is_loopback(bind) and "*" not in settings.api.allowed_hosts:
        console.print(
            f"serving on {bind}: requests must name one of these hosts "
            f"(RAG_API__ALLOWED_HOSTS): {', '.join(settings.api.allowed_hosts)}"
        )
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=bind,
        port=port or settings.api.port,
        log_level="info",
    )


@app.command()
def mcp(
    key: Annotated[
        str | None,
        typer.Option(
            envvar="RAG_API_KEY",
            show_default=False,
            help="The API key (or OIDC token) whose scope the tools get; none in auth mode "
            "`none`. Prefer the environment: a command line is visible to other users.",
        ),
    ] = None,
) -> None:
    """Serve `search` and `ask` to an MCP client over stdio (stdout carries the protocol)."""
    from api import mcp_server

    errors = Console(stderr=True)
    ctx = _context()
    try:
        mcp_server.serve_stdio(ctx, key)
    except RagError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        ctx.close()


def main() -> None:
    try:
        app()
    except RagError as exc:  # settings errors surface before a command runs
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
