"""`make bench-scale [OUT=f.json]`: how the embedded engine scales with the corpus.

Real chunks (SciFact abstracts and SQuAD paragraphs from `--data`, cut at ~600
characters, embedded once with the project's embedder and cached; eval/scale/corpus.py)
are grown to each size by recombining two real chunks with a little noise
(eval/scale/grow.py), so the vectors keep the real clusters. Every size is built twice,
with full vectors in RAM and with int8 quantization (full vectors on disk, rescored),
each in a fresh process so its memory is its own, and measured: upsert throughput,
index build (`optimize()`: Edge builds HNSW only then), dense and hybrid query p50/p95,
HNSW recall@10 against exact search (NumPy) on the same real queries, vector RAM by the
engine's files, process RSS while serving, and disk. At the largest size, queries scoped
to one of `--tenants` tenants run with and without Qdrant's tenant index (is_tenant).
After the sizes asked for (10k, 30k, 100k), 1M chunks run too when the largest size's runs,
scaled as n log n, fit 30 minutes (`--million auto|yes|no`; the JSON says which and why).
Writes JSON and a PNG plot beside it. docs/adr/0025-production-topology.md quotes it, and
`rag plan` fits its curves on it (docs/benchmarks/).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import RetrievalSettings, SparseSettings
from core.types import Chunk, IndexedChunk, Scope, SearchMode, SearchQuery, SparseVector
from eval.report import emit_json
from eval.scale.corpus import load_base
from eval.scale.grow import Floats, Ints, exact_top, grow_plan, grow_text, grow_vectors, recall_at_k
from eval.stats import percentiles
from ingest.chunk import chunk_id, content_hash
from ingest.embed import Bm25Encoder
from store.edge import EdgeStore
from store.tuning import IndexTuning

TOP = 10
BATCH = 256
NOISE = 0.35  # of the jitter added to a grown vector (cosine to its source ~0.95)
MILLION_BUDGET_S = 30 * 60


@dataclass(frozen=True, slots=True)
class Job:
    """One build-and-measure run, sent to a fresh process."""

    data: Path
    folder: Path
    size: int
    variant: str  # "float", "int8" or "float-no-tenant-index"
    tuning: IndexTuning
    queries: int
    tenants: int
    ef_sweep: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Points:
    """One size's points, kept as arrays: a point's vector becomes a Python list only in
    its upsert batch (a million lists of 384 floats would take ~12 GB)."""

    chunks: list[Chunk]
    vectors: Floats
    sparse: list[SparseVector]

    def __len__(self) -> int:
        return len(self.chunks)

    def batch(self, start: int, size: int) -> list[IndexedChunk]:
        end = min(start + size, len(self.chunks))
        return [
            IndexedChunk(self.chunks[i], self.vectors[i].tolist(), self.sparse[i])
            for i in range(start, end)
        ]


def _grown(job: Job) -> tuple[Points, list[str], Floats, float]:
    """The points of one size (with the grown vectors) and the real queries."""
    base = load_base(job.data)
    first, second, mix = grow_plan(len(base.texts), job.size)
    vectors = grow_vectors(base.vectors, first, second, mix, NOISE, seed=1)
    texts = [
        grow_text(base.texts, int(a), int(b), float(m))
        for a, b, m in zip(first, second, mix, strict=True)
    ]
    bm25 = Bm25Encoder(SparseSettings())
    start = time.perf_counter()
    sparse = bm25.encode_documents(texts)
    bm25_s = time.perf_counter() - start
    chunks = []
    for i, text in enumerate(texts):
        digest = content_hash(text)
        source = f"doc{int(first[i])}"
        chunk = Chunk(
            id=chunk_id(source, digest, i),
            source=source,
            text=text,
            title="",
            section="",
            page=None,
            index=i,  # the row: found ids map back to the exact search's
            content_hash=digest,
            tenant=f"t{i % job.tenants}",
        )
        chunks.append(chunk)
    picked = np.linspace(0, len(base.queries) - 1, job.queries).astype(int)
    queries = [base.queries[i] for i in picked]
    return Points(chunks, vectors, sparse), queries, base.query_vectors[picked], bm25_s


def _rss_mb() -> dict[str, float]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def _files_mb(folder: Path) -> dict[str, float]:
    """Vector bytes by the engine's files: full vectors, quantized ones, HNSW links."""
    full = quantized = links = total = 0
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        size = path.stat().st_size
        total += size
        parts = path.relative_to(folder).parts
        if any(p.startswith("vector_storage-dense") for p in parts):
            if path.name.startswith("quantized"):
                quantized += size
            elif "deleted" not in path.name and "deleted" not in parts:
                full += size
        elif any(p.startswith("vector_index-dense") for p in parts):
            links += size
    mb = 1024 * 1024
    return {
        "full_vectors_mb": round(full / mb, 1),
        "quantized_vectors_mb": round(quantized / mb, 1),
        "hnsw_links_mb": round(links / mb, 1),
        "disk_mb": round(total / mb, 1),
    }


def _query(
    dense: Sequence[float], sparse: SparseVector, mode: SearchMode, scope: Scope | None
) -> SearchQuery:
    retrieval = RetrievalSettings()
    return SearchQuery(
        dense=list(dense),
        sparse=sparse,
        limit=TOP,
        mode=mode,
        prefetch_limit=retrieval.prefetch_k,
        fusion=retrieval.fusion,
        rrf_k=retrieval.rrf_k,
        scope=scope,
    )


def _run_queries(
    store: EdgeStore, queries: list[SearchQuery]
) -> tuple[dict[str, float], list[list[int]]]:
    for query in queries[:10]:  # warm the caches
        store.search(query)
    latencies, found = [], []
    for query in queries:
        start = time.perf_counter()
        hits = store.search(query)
        latencies.append((time.perf_counter() - start) * 1000)
        found.append([hit.chunk.index for hit in hits])
    return percentiles(latencies), found


def _tenant_exact(vectors: Floats, qvec: Floats, tenants: int, owners: Ints) -> list[list[int]]:
    result = []
    for q, owner in enumerate(owners):
        rows = np.arange(int(owner), len(vectors), tenants)
        top = exact_top(vectors[rows], qvec[q : q + 1], TOP)[0]
        result.append([int(rows[i]) for i in top])
    return result


def measure(job: Job) -> dict[str, Any]:
    """Build one collection and measure it (runs in its own process)."""
    points, texts, qvec, bm25_s = _grown(job)
    vectors = points.vectors
    bm25 = Bm25Encoder(SparseSettings())
    qsparse = [bm25.encode_query(t) for t in texts]
    exact = exact_top(vectors, qvec, TOP).tolist()
    owners = np.arange(len(texts)) % job.tenants
    scopes = [Scope(tenant=f"t{o}") for o in owners]
    tenant_exact = _tenant_exact(vectors, qvec, job.tenants, owners)
    result: dict[str, Any] = {"points": job.size, "bm25_encode_s": round(bm25_s, 1)}

    store = EdgeStore(job.folder, "bench", tuning=job.tuning)
    store.ensure_collection(vectors.shape[1])
    del vectors  # the points keep the array until they are upserted
    start = time.perf_counter()
    for i in range(0, len(points), BATCH):
        store.upsert(points.batch(i, BATCH))
    upsert_s = time.perf_counter() - start
    start = time.perf_counter()
    store.optimize()
    index_s = time.perf_counter() - start
    store.flush()
    info = store.shard.info()
    result |= {
        "upsert_s": round(upsert_s, 1),
        "upsert_points_per_s": round(len(points) / upsert_s),
        "index_build_s": round(index_s, 1),
        "segments": info.segments_count,
        "indexed_vectors": info.indexed_vectors_count,
    }
    store.close()
    del points

    # Serving: a reopened shard, as an API process finds it.
    before = _rss_mb()
    store = EdgeStore(job.folder, "bench", tuning=job.tuning)
    store.ensure_collection(len(qvec[0]))
    modes = {"dense": SearchMode.DENSE, "hybrid": SearchMode.HYBRID}
    for name, mode in modes.items():
        lat, found = _run_queries(
            store, [_query(v, s, mode, None) for v, s in zip(qvec, qsparse, strict=True)]
        )
        result[f"{name}_p50_ms"], result[f"{name}_p95_ms"] = lat["p50"], lat["p95"]
        if mode is SearchMode.DENSE:
            result["recall_at_10"] = round(recall_at_k(found, exact, TOP), 4)
        lat, found = _run_queries(
            store, [_query(v, s, mode, sc) for v, s, sc in zip(qvec, qsparse, scopes, strict=True)]
        )
        result[f"tenant_{name}_p50_ms"], result[f"tenant_{name}_p95_ms"] = lat["p50"], lat["p95"]
        if mode is SearchMode.DENSE:
            result["tenant_recall_at_10"] = round(recall_at_k(found, tenant_exact, TOP), 4)
    after = _rss_mb()
    result["serving_rss_mb"] = round(after["VmRSS"] - before["VmRSS"], 1)
    result["serving_rss_anon_mb"] = round(after["RssAnon"] - before["RssAnon"], 1)
    result["serving_rss_file_mb"] = round(after["RssFile"] - before["RssFile"], 1)
    store.close()

    sweep = {}
    for ef in job.ef_sweep:
        tuned = EdgeStore(job.folder, "bench", tuning=replace(job.tuning, hnsw_ef=ef))
        tuned.ensure_collection(len(qvec[0]))
        dense_lat, found = _run_queries(
            tuned,
            [_query(v, s, SearchMode.DENSE, None) for v, s in zip(qvec, qsparse, strict=True)],
        )
        hybrid_lat, _ = _run_queries(
            tuned,
            [_query(v, s, SearchMode.HYBRID, None) for v, s in zip(qvec, qsparse, strict=True)],
        )
        sweep[str(ef)] = {
            "recall_at_10": round(recall_at_k(found, exact, TOP), 4),
            "dense_p95_ms": dense_lat["p95"],
            "hybrid_p95_ms": hybrid_lat["p95"],
        }
        tuned.close()
    if sweep:
        result["ef_sweep"] = sweep
    result |= _files_mb(job.folder / "bench")
    result["vector_ram_mb"] = (
        result["quantized_vectors_mb"]
        if job.tuning.quantization != "none" and job.tuning.on_disk_vectors
        else result["full_vectors_mb"] + result["quantized_vectors_mb"]
    )
    shutil.rmtree(job.folder / "bench")
    return result


def _in_fresh_process(job: Job) -> dict[str, Any]:
    """`measure` in a child process, with the machine's load around it (a shared machine's
    other work shows in the latencies: the load average says how much there was)."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result = dict(pool.apply(measure, (job,)))
    result["run_s"] = round(time.perf_counter() - started, 1)
    result["load_avg_1m"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    return result


def _save(report: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")


def _plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(s) for s in report["sizes"])
    rows = [report["sizes"][str(s)] for s in sizes]
    fig, (lat, mem) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (
        ("hybrid_p95_ms", "hybrid p95"),
        ("dense_p95_ms", "dense p95"),
        ("tenant_hybrid_p95_ms", "hybrid p95, one tenant"),
    ):
        lat.plot(sizes, [r[key] for r in rows], marker="o", label=label)
        lat.plot(
            sizes,
            [r["int8"][key] for r in rows],
            marker="x",
            linestyle="--",
            label=f"{label} (int8)",
        )
    lat.axhline(20, color="grey", linewidth=0.8, linestyle=":")
    lat.set(
        xscale="log", xlabel="chunks", ylabel="ms", title="Query latency (Qdrant Edge, 2 cores)"
    )
    lat.legend(fontsize=7)
    for key, label in (
        ("vector_ram_mb", "vector RAM"),
        ("serving_rss_mb", "serving RSS"),
        ("disk_mb", "disk"),
    ):
        mem.plot(sizes, [r[key] for r in rows], marker="o", label=label)
        mem.plot(
            sizes,
            [r["int8"][key] for r in rows],
            marker="x",
            linestyle="--",
            label=f"{label} (int8)",
        )
    mem.set(xscale="log", yscale="log", xlabel="chunks", ylabel="MB", title="Memory and disk")
    mem.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _million_note(report: dict[str, Any], largest: int) -> dict[str, Any]:
    """Whether 1M chunks fit the 30-minute budget, extrapolated from the largest size: each
    variant's whole run (data, BM25, upsert, build, queries) scaled as n log n."""
    row = report["sizes"][str(largest)]
    factor = 1_000_000 / largest * np.log(1e6) / np.log(largest)
    estimated = sum(r["run_s"] for r in (row, row["int8"])) * factor
    return {
        "measured": False,
        "estimated_s": round(float(estimated)),
        "budget_s": MILLION_BUDGET_S,
        "estimated_vector_ram_mb": round(row["vector_ram_mb"] * 1_000_000 / largest),
        "estimated_int8_vector_ram_mb": round(row["int8"]["vector_ram_mb"] * 1_000_000 / largest),
        "reason": f"the float and int8 runs are estimated at {round(float(estimated) / 60)} "
        f"min on this machine (the {largest:,} runs scaled as n log n), against a 30-minute "
        "budget",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sizes", default="10000,30000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--ef-sweep", default="32,64,128,256")
    parser.add_argument(
        "--million",
        choices=("auto", "yes", "no"),
        default="auto",
        help="1M chunks after the sizes: auto runs it when the estimate fits 30 minutes",
    )
    parser.add_argument("--out", type=Path, default=Path("reports/bench-scale.json"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    sweep = tuple(int(e) for e in args.ef_sweep.split(",") if e)
    base = load_base(args.data)  # embeds and caches once, before the children read it
    defaults = IndexTuning()
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "model": base.model,
        "base_chunks": len(base.texts),
        "base_embed_s": base.embed_s,
        "queries": args.queries,
        "tenants": args.tenants,
        "tuning": {
            "hnsw_m": defaults.hnsw_m,
            "hnsw_ef_construct": defaults.hnsw_ef_construct,
            "hnsw_ef": defaults.hnsw_ef,
            "oversampling": defaults.oversampling,
        },
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:

        def run_size(size: int, extras: bool) -> None:
            """Both variants of one size; the ef sweep and the no-tenant-index build too
            when `extras` (the largest size asked for)."""

            def job(variant: str, tuning: IndexTuning, ef: tuple[int, ...] = ()) -> Job:
                return Job(
                    args.data, Path(tmp), size, variant, tuning, args.queries, args.tenants, ef
                )

            started = time.perf_counter()
            row = _in_fresh_process(job("float", defaults, sweep if extras else ()))
            report["sizes"][str(size)] = row
            _save(report, args.out)
            int8 = replace(defaults, quantization="int8", on_disk_vectors=True)
            row["int8"] = _in_fresh_process(job("int8", int8, sweep if extras else ()))
            _save(report, args.out)
            quantized = row["int8"]["quantized_vectors_mb"]  # 0: too small to be indexed
            row["int8"]["vector_ram_ratio"] = (
                round(row["full_vectors_mb"] / quantized, 2) if quantized else None
            )
            if extras:
                plain = replace(defaults, tenant_index=False)
                row["no_tenant_index"] = _in_fresh_process(job("float-no-tenant-index", plain))
            row["wall_s"] = round(time.perf_counter() - started)
            _save(report, args.out)  # a long run keeps what it measured so far

        for size in sizes:
            run_size(size, extras=size == max(sizes))
        if 1_000_000 not in sizes:
            note = _million_note(report, max(sizes))
            fits = note["estimated_s"] <= MILLION_BUDGET_S
            if args.million == "yes" or (args.million == "auto" and fits):
                report["million"] = {k: v for k, v in note.items() if k != "measured"} | {
                    "reason": "run: " + note["reason"]
                }
                run_size(1_000_000, extras=False)
            else:
                report["sizes_not_run"] = {
                    "1000000": note | {"reason": "not run: " + note["reason"]}
                }
    png = args.out.with_suffix(".png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _plot(report, png)
    report["plot"] = str(png)
    emit_json(report, args.out)


if __name__ == "__main__":
    main()
