"""`rag plan`: what a deployment needs and costs, from the benchmarks measured here.

Every estimate is a formula over the workload and measured constants, printed with both,
so an architect can check it and re-measure on their own hardware (`make bench-scale
OUT=f.json`, then `rag plan --scale f.json`). Where each constant comes from:

    benchmark JSON (docs/benchmarks/)   vector RAM, serving RSS and disk per chunk, upsert
        bench-scale.json                rate, HNSW build, store query p95: fitted across the
                                        measured sizes (linear; n log n for the build;
                                        p95 linear in log n), per quantization
        bench-ingest.json               chunks a second through the whole ingest pipeline
        bench-workers.json              chunks a second per Redis worker process
        bench-load.json                 /v1/ask requests a second one API replica serves
    the cost ledger                     tokens per LLM answer, share of cache hits
    gateway/catalog.toml                the generation model's price
    settings                            chunk size and overlap, prefetch, top-k

A constant a benchmark file does not carry is named as an assumption, never hidden.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import ConfigError
from core.types import CostLine
from gateway.catalog import ModelSpec

Quantization = Literal["none", "int8"]

BENCHMARKS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"  # measured here
SECONDS_A_MONTH = 30 * 24 * 3600
CHARS_PER_TOKEN = 4.0  # English text, the providers' rule of thumb (an assumption)
RAM_HEADROOM = 0.75  # plan a node's RAM to 75 %: page cache, segment merges, growth
API_UTILISATION = 0.7  # plan an API replica to 70 % of its measured saturation
# Qdrant's capacity-planning rule: vectors in RAM x 1.5 (indexes, point versions, the
# temporary segments of an optimization)
QDRANT_RAM_FACTOR = 1.5
MAX_REPORT_BYTES = 16 * 2**20
MIN_LEDGER_ANSWERS = 20  # fewer LLM answers than this: the prompt's shape instead
QUESTION_TOKENS = 15  # a question of ~60 characters (an assumption)
FENCE_CHARS = 120  # the <passage id source where> fence around each passage


@dataclass(frozen=True, slots=True)
class Workload:
    """What the deployment must hold and serve."""

    documents: int
    avg_chars: int
    qps: float
    concurrency: int
    llm: str = "gpt-4.1-mini"
    quantization: Quantization = "none"
    replication: int = 2
    node_ram_gb: float = 16.0
    ingest_hours: float = 8.0
    embedding_dims: int | None = None  # None: the benchmarked model's
    embedding_price_per_mtok: float = 0.0  # the local fastembed model costs CPU, not tokens
    cache_hit_rate: float | None = None  # None: the ledger's

    def __post_init__(self) -> None:
        for name in ("documents", "avg_chars", "concurrency", "replication"):
            if getattr(self, name) < 1:
                raise ConfigError(f"plan: {name} must be at least 1")
        for name in ("qps", "node_ram_gb", "ingest_hours"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"plan: {name} must be above 0")
        if self.cache_hit_rate is not None and not 0 <= self.cache_hit_rate < 1:
            raise ConfigError("plan: cache_hit_rate must be in [0, 1)")


@dataclass(frozen=True, slots=True)
class Estimate:
    """One figure of the plan with how it was reached."""

    name: str
    value: float
    unit: str
    formula: str
    constants: Mapping[str, str] = field(default_factory=dict)  # name -> "value (source)"


@dataclass(frozen=True, slots=True)
class Fit:
    """y = a + b * x with x either n or n ln n; or, for `power`, y = e^a * n^b (a straight
    line in log-log), fitted on measured sizes."""

    a: float
    b: float
    x: Shape
    sizes: tuple[int, ...]
    source: str

    def __call__(self, n: float) -> float:
        if self.x == "power":
            return math.exp(self.a + self.b * math.log(n))
        return self.a + self.b * _transform(self.x, n)

    def describe(self) -> str:
        measured = ", ".join(f"{s:,}" for s in self.sizes)
        shape = (
            f"{math.exp(self.a):.4g} * n^{self.b:.3f}"
            if self.x == "power"
            else f"{self.a:.4g} + {self.b:.4g} * {self.x}"
        )
        return f"{shape} (fitted on {measured}; {self.source})"


Shape = Literal["n", "n ln n", "power"]


def _transform(kind: Shape, n: float) -> float:
    if kind == "n":
        return n
    if kind == "n ln n":
        return n * math.log(n)
    return math.log(n)  # power: a line in log-log


def fit(
    points: Sequence[tuple[int, float]],
    x: Shape,
    source: str,
    *,
    through_origin: bool = False,
) -> Fit:
    """Least squares on the measured (size, value) points; through the origin when asked
    or when one size is all there is (a slope needs two; a power law then has exponent 1)."""
    if not points:
        raise ConfigError(f"plan: no measured sizes in {source}")
    sizes = tuple(n for n, _ in points)
    if x == "power" and (len(points) == 1 or any(y <= 0 for _, y in points)):
        return fit(points, "n", source, through_origin=True)
    xs = [_transform(x, n) for n, _ in points]
    ys = [math.log(y) if x == "power" else y for _, y in points]
    # Relative errors count, not absolute ones: plain least squares would let the largest
    # size decide alone, and one noisy run there would move every estimate below it.
    # (A power law is fitted on logs, where differences are already relative.)
    ws = [1.0 if x == "power" or y == 0 else 1 / y**2 for _, y in points]
    if through_origin or len(points) == 1:
        slope = sum(w * a * b for w, a, b in zip(ws, xs, ys, strict=True)) / sum(
            w * a * a for w, a in zip(ws, xs, strict=True)
        )
        return Fit(0.0, slope, x, sizes, source)
    total = sum(ws)
    mx = sum(w * a for w, a in zip(ws, xs, strict=True)) / total
    my = sum(w * c for w, c in zip(ws, ys, strict=True)) / total
    b = sum(w * (a - mx) * (c - my) for w, a, c in zip(ws, xs, ys, strict=True)) / sum(
        w * (a - mx) ** 2 for w, a in zip(ws, xs, strict=True)
    )
    return Fit(my - b * mx, b, x, sizes, source)


@dataclass(frozen=True, slots=True)
class Interpolation:
    """Straight lines in log-log between the measured sizes, the last one extended beyond
    them: for a figure no simple shape fits across sizes and runs (query p95 on a shared
    machine), the measurement itself."""

    points: tuple[tuple[int, float], ...]
    source: str

    def __call__(self, n: float) -> float:
        pts = self.points
        if len(pts) == 1:
            return pts[0][1]
        i = next((k for k in range(1, len(pts) - 1) if n <= pts[k][0]), len(pts) - 1)
        (n0, y0), (n1, y1) = pts[i - 1], pts[i]
        y0, y1 = max(y0, 1e-6), max(y1, 1e-6)  # a 0 ms reading has no logarithm
        slope = math.log(y1 / y0) / math.log(n1 / n0)
        return y0 * math.exp(slope * math.log(n / n0))

    def describe(self) -> str:
        measured = ", ".join(f"{n:,}: {y:g}" for n, y in self.points)
        return f"log-log between measured sizes ({measured}; {self.source})"


@dataclass(frozen=True, slots=True)
class StoreCurves:
    """The embedded engine's measured curves for one quantization."""

    vector_ram_mb: Fit
    serving_rss_mb: Fit
    disk_mb: Fit
    upsert_s: Fit
    index_build_s: Fit
    hybrid_p95_ms: Interpolation
    dims: int
    largest: int


def store_curves(
    report: Mapping[str, Any], quantization: Quantization, *, below: int | None = None
) -> StoreCurves:
    """Fit the curves of a bench-scale report; `below` keeps only the sizes under it
    (how the planner is tested: predict a measured size from the smaller ones)."""
    try:
        rows = {int(size): row for size, row in report["sizes"].items()}
        if quantization == "int8":
            rows = {size: row["int8"] for size, row in rows.items()}
        if below is not None:
            rows = {size: row for size, row in rows.items() if size < below}
        source = f"bench-scale {quantization}"

        def series(key: str) -> list[tuple[int, float]]:
            points = [(size, float(row[key])) for size, row in sorted(rows.items())]
            if any(size < 2 or not math.isfinite(y) or y < 0 for size, y in points):
                raise ValueError(f"{key}: sizes must be above 1 and values finite, >= 0")
            return points

        dims = report.get("dims") or _dims_from(rows)
        return StoreCurves(
            vector_ram_mb=fit(series("vector_ram_mb"), "n", source, through_origin=True),
            serving_rss_mb=fit(series("serving_rss_mb"), "power", source),
            disk_mb=fit(series("disk_mb"), "n", source),
            upsert_s=fit(series("upsert_s"), "n", source, through_origin=True),
            index_build_s=fit(series("index_build_s"), "n ln n", source, through_origin=True),
            hybrid_p95_ms=Interpolation(tuple(series("hybrid_p95_ms")), source),
            dims=int(dims),
            largest=max(rows),
        )
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise ConfigError(
            f"plan: the bench-scale report lacks what the planner reads ({exc!r}); "
            "write a new one with `make bench-scale OUT=f.json`"
        ) from exc


def _dims_from(rows: Mapping[int, Mapping[str, Any]]) -> int:
    """Dimensions from full float32 vectors' bytes, for reports that did not record them."""
    size = max(rows)
    return round(float(rows[size]["full_vectors_mb"]) * 2**20 / size / 4)


@dataclass(frozen=True, slots=True)
class Measured:
    """Everything the planner reads, each with where it came from."""

    curves: StoreCurves
    ingest_chunks_per_s: tuple[float, str]  # one worker process, with its source
    api_ask_rps: tuple[float, str]  # one API replica at saturation
    api_clients: tuple[int, str]  # concurrent clients one replica was measured under
    tokens_in: tuple[float, str]
    tokens_out: tuple[float, str]
    cache_hit_rate: tuple[float, str]
    price_in: tuple[float, str]  # USD per 1M tokens
    price_out: tuple[float, str]
    chunk_size: int
    chunk_overlap: int


def load_report(path: Path) -> dict[str, Any]:
    """A benchmark's JSON, or a `ConfigError` that says how to make one (a report is a
    few kB: a device, a folder or a file past `MAX_REPORT_BYTES` is refused unread)."""
    try:
        if not path.is_file():
            raise FileNotFoundError(path)
        if path.stat().st_size > MAX_REPORT_BYTES:
            raise ConfigError(f"plan: {path} is over {MAX_REPORT_BYTES // 2**20} MB: not a report")
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"plan: no benchmark at {path}; run the make target that writes it"
        ) from exc
    except (OSError, UnicodeDecodeError, RecursionError, json.JSONDecodeError) as exc:
        raise ConfigError(f"plan: {path} is not a benchmark JSON: {exc!r}") from exc
    if not isinstance(report, dict):
        raise ConfigError(f"plan: {path} is not a benchmark JSON object")
    return report


def ingest_rate(
    workers: Mapping[str, Any] | None, ingest: Mapping[str, Any] | None, scale: Mapping[str, Any]
) -> tuple[float, str]:
    """Chunks a second one worker process ingests, from the most end-to-end measurement."""
    try:
        if workers:
            one = workers["workers"]["1"]
            return float(one["chunks_per_s"]), "bench-workers.json workers.1.chunks_per_s"
        if ingest:
            return float(ingest["chunks_per_s"]), "bench-ingest.json chunks_per_s"
        rate = float(scale["base_chunks"]) / float(scale["base_embed_s"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise ConfigError(f"plan: an ingest benchmark lacks its throughput ({exc!r})") from exc
    return rate, "bench-scale.json base_chunks / base_embed_s (embedding only: optimistic)"


def api_capacity(load: Mapping[str, Any] | None) -> tuple[tuple[float, str], tuple[int, str]]:
    """/v1/ask requests a second one replica sustains (its busiest measured level)."""
    if not load:
        return (5.0, "assumption: no bench-load.json"), (20, "assumption")
    try:
        levels = {int(str(level).lstrip("c")): row for level, row in load["ask"].items()}
        clients = max(levels)
        rps = max(float(row["rps"]) for row in levels.values())
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"plan: bench-load.json lacks ask levels ({exc!r})") from exc
    return (rps, "bench-load.json max ask rps"), (clients, f"bench-load.json ask at {clients}")


def ledger_profile(
    lines: Sequence[CostLine], prompt_tokens: float, max_output: int
) -> tuple[tuple[float, str], tuple[float, str], tuple[float, str]]:
    """Tokens in and out per LLM answer and the cache-hit share, from the ledger when it
    holds enough LLM answers, else from the prompt's shape."""
    answered = [line for line in lines if line.input_tokens > 0]
    answers = sum(line.requests - line.cache_hits for line in answered)
    requests = sum(line.requests for line in lines)
    hits = sum(line.cache_hits for line in lines)
    hit_rate = (
        (hits / requests, f"ledger: {hits:,} cache hits of {requests:,} requests")
        if requests
        else (0.0, "assumption: an empty ledger, no cache hits")
    )
    if answers >= MIN_LEDGER_ANSWERS:
        source = f"ledger: {answers:,} LLM answers"
        return (
            (sum(line.input_tokens for line in answered) / answers, source),
            (sum(line.output_tokens for line in answered) / answers, source),
            hit_rate,
        )
    shape = (
        f"prompt shape (the ledger holds {answers} LLM answers, fewer than {MIN_LEDGER_ANSWERS})"
    )
    return (prompt_tokens, shape), (float(max_output), f"{shape}: the model's output cap"), hit_rate


def estimate(workload: Workload, measured: Measured) -> list[Estimate]:
    """The plan: each estimate with its formula and constants."""
    c = measured.curves
    size, overlap = measured.chunk_size, measured.chunk_overlap
    per_doc = max(1, math.ceil(max(workload.avg_chars - overlap, 1) / (size - overlap)))
    n = workload.documents * per_doc
    dims = workload.embedding_dims or c.dims
    scale = dims / c.dims
    out = [
        Estimate(
            "vectors",
            n,
            "chunks",
            "documents * ceil((avg_chars - overlap) / (chunk_size - overlap))",
            {"chunk_size": f"{size} (settings)", "overlap": f"{overlap} (settings)"},
        )
    ]
    vector_ram = c.vector_ram_mb(n) * scale
    touched = c.serving_rss_mb(n) + vector_ram - c.vector_ram_mb(n)
    rss = max(touched, QDRANT_RAM_FACTOR * vector_ram)
    disk = c.disk_mb(n) + (scale - 1) * _full_vectors_mb(n, c.dims)
    out += [
        Estimate(
            "vector_ram_mb",
            vector_ram,
            "MB a replica",
            "vector_ram(n) * dims / measured_dims",
            {"vector_ram(n)": c.vector_ram_mb.describe(), "dims": f"{dims} / {c.dims}"},
        ),
        Estimate(
            "qdrant_ram_mb",
            rss,
            "MB a replica",
            "max(serving_rss(n) + vector RAM's change for other dims, factor * vector_ram): "
            "what a serving process mapped (vectors, HNSW links, payload and sparse "
            "indexes), never under Qdrant's own sizing rule",
            {
                "serving_rss(n)": c.serving_rss_mb.describe(),
                "factor": f"{QDRANT_RAM_FACTOR} (Qdrant's sizing rule: vectors in RAM x 1.5)",
            },
        ),
        Estimate(
            "qdrant_disk_mb",
            disk,
            "MB a replica",
            "disk(n) + full vectors' change for other dims",
            {"disk(n)": c.disk_mb.describe()},
        ),
    ]
    nodes = max(
        3 if workload.replication > 1 else 1,
        math.ceil(rss * workload.replication / (workload.node_ram_gb * 1024 * RAM_HEADROOM)),
    )
    out += [
        Estimate(
            "qdrant_nodes",
            nodes,
            "nodes",
            "max(3 when replicated, ceil(qdrant_ram * replication / (node_ram * headroom)))",
            {
                "replication": f"{workload.replication} (input)",
                "node_ram": f"{workload.node_ram_gb} GB (input)",
                "headroom": f"{RAM_HEADROOM} (assumption: page cache, merges, growth)",
            },
        ),
        Estimate(
            "qdrant_shards",
            2 * nodes,
            "shards",
            "2 * nodes: the cluster can double by moving shards, without re-indexing (ADR 0025)",
        ),
        Estimate(
            "qdrant_ram_mb_per_node",
            rss * workload.replication / nodes,
            "MB",
            "qdrant_ram * replication / nodes",
        ),
    ]
    p95 = max(c.hybrid_p95_ms(n), 0.0)
    extrapolated = n > c.largest
    out.append(
        Estimate(
            "store_hybrid_p95_ms",
            p95,
            "ms",
            "hybrid_p95(n): the embedded engine, one process, on the benchmark's machine"
            + (" (extrapolated: measure at this size)" if extrapolated else ""),
            {"hybrid_p95(n)": c.hybrid_p95_ms.describe()},
        )
    )
    rps, rps_source = measured.api_ask_rps
    clients, clients_source = measured.api_clients
    api = max(
        2,
        math.ceil(workload.qps / (rps * API_UTILISATION)),
        math.ceil(workload.concurrency / clients),
    )
    out.append(
        Estimate(
            "api_replicas",
            api,
            "replicas",
            "max(2, ceil(qps / (ask_rps * utilisation)), ceil(concurrency / clients))",
            {
                "ask_rps": f"{rps:g} ({rps_source})",
                "clients": f"{clients} ({clients_source})",
                "utilisation": f"{API_UTILISATION} (assumption)",
            },
        )
    )
    rate, rate_source = measured.ingest_chunks_per_s
    build_s = c.index_build_s(n)
    workers = max(1, math.ceil(n / (rate * workload.ingest_hours * 3600)))
    store_s = c.upsert_s(n)
    out += [
        Estimate(
            "ingest_workers",
            workers,
            "worker processes",
            "ceil(vectors / (chunks_per_s * ingest_hours * 3600))",
            {
                "chunks_per_s": f"{rate:.1f} a worker ({rate_source})",
                "ingest_hours": f"{workload.ingest_hours} (input)",
            },
        ),
        Estimate(
            "ingest_hours",
            (n / (rate * workers) + build_s) / 3600,
            "hours",
            "(vectors / (chunks_per_s * workers) + index_build(n)) / 3600",
            {"index_build(n)": c.index_build_s.describe()},
        ),
        Estimate(
            "store_build_s",
            store_s + build_s,
            "s",
            "upsert(n) + index_build(n): the store's share of an ingest",
            {"upsert(n)": c.upsert_s.describe(), "index_build(n)": c.index_build_s.describe()},
        ),
    ]
    hit, hit_source = (
        (workload.cache_hit_rate, "input")
        if workload.cache_hit_rate is not None
        else measured.cache_hit_rate
    )
    tin, tin_source = measured.tokens_in
    tout, tout_source = measured.tokens_out
    pin, pin_source = measured.price_in
    pout, pout_source = measured.price_out
    answers = workload.qps * SECONDS_A_MONTH * (1 - hit)
    out.append(
        Estimate(
            "llm_usd_a_month",
            answers * (tin * pin + tout * pout) / 1e6,
            "USD",
            "qps * 30 days * (1 - cache_hit_rate) * (tokens_in * price_in + tokens_out * "
            "price_out) / 1e6",
            {
                "tokens_in": f"{tin:.0f} ({tin_source})",
                "tokens_out": f"{tout:.0f} ({tout_source})",
                "cache_hit_rate": f"{hit:.3f} ({hit_source})",
                "price_in": f"{pin:g} USD/Mtok ({pin_source})",
                "price_out": f"{pout:g} USD/Mtok ({pout_source})",
            },
        )
    )
    price = workload.embedding_price_per_mtok
    query_tokens = workload.qps * SECONDS_A_MONTH * QUESTION_TOKENS
    corpus_tokens = workload.documents * workload.avg_chars / CHARS_PER_TOKEN
    out += [
        Estimate(
            "embedding_usd_a_month",
            query_tokens * price / 1e6,
            "USD",
            "qps * 30 days * question_tokens * price / 1e6 (cache hits embed too)",
            {
                "question_tokens": f"{QUESTION_TOKENS} (assumption: ~60 characters)",
                "price": f"{price:g} USD/Mtok (input; 0 = the local model)",
            },
        ),
        Estimate(
            "embedding_usd_corpus_once",
            corpus_tokens * price / 1e6,
            "USD",
            "documents * avg_chars / chars_per_token * price / 1e6 (each re-index again)",
            {"chars_per_token": f"{CHARS_PER_TOKEN} (assumption: English)"},
        ),
    ]
    return out


def _full_vectors_mb(n: float, dims: int) -> float:
    return n * dims * 4 / 2**20


def prompt_shape_tokens(system: str, user: str, top_k: int, chunk_size: int) -> float:
    """Prompt tokens of one answer: the template, top-k fenced passages and a question."""
    chars = len(system) + len(user) + top_k * (chunk_size + FENCE_CHARS)
    return chars / CHARS_PER_TOKEN + QUESTION_TOKENS


def from_files(
    folder: Path,
    *,
    scale: Path | None,
    quantization: Quantization,
    lines: Sequence[CostLine],
    prompt_tokens: float,
    model: ModelSpec | None,
    chunk_size: int,
    chunk_overlap: int,
) -> Measured:
    """The measured constants from the benchmark files in `folder` (bench-scale.json is
    required; the others refine what they measure), the ledger's lines and the catalog's
    generation `model` (None: the extractive answer, no LLM)."""
    scale_report = load_report(scale or folder / "bench-scale.json")

    def optional(name: str) -> dict[str, Any] | None:
        path = folder / name
        return load_report(path) if path.exists() else None

    rps, clients = api_capacity(optional("bench-load.json"))
    max_output = model.max_output_tokens if model else 0
    tin, tout, hits = ledger_profile(lines, prompt_tokens, max_output)
    pin, pout = (model.input_per_mtok, model.output_per_mtok) if model else (0.0, 0.0)
    source = f"catalog {model.name}" if model else "extractive: no LLM"
    return Measured(
        curves=store_curves(scale_report, quantization),
        ingest_chunks_per_s=ingest_rate(
            optional("bench-workers.json"), optional("bench-ingest.json"), scale_report
        ),
        api_ask_rps=rps,
        api_clients=clients,
        tokens_in=tin,
        tokens_out=tout,
        cache_hit_rate=hits,
        price_in=(pin, source),
        price_out=(pout, source),
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
    )
