"""`make bench-workers [DATA=<BEIR dir>] [OUT=f.json]`: ingest across worker processes.

The same upload set (the first `--docs` documents of a BEIR corpus, one text file each,
split into `--jobs` jobs) goes through the Redis job queue (Dramatiq, ADR 0008) to 1, 2 and
4 `rag worker` processes, and the wall time from the first submit to the last job done
gives chunks a second per worker count. Each count runs on a fresh namespace of the local
Redis (`--redis`), with workers started and ready before the clock starts.

One difference from production, stated in the report: Qdrant Edge lets one process open
a shard, so each worker writes into a store of its own; with a Qdrant server they would
share one collection. The store's share of an ingest is small beside the embedding
(ADR 0009: the pipeline runs at ~0.9 of embed-only), so the throughput is what a worker
pool in front of a server would see. Embedding is CPU bound: the per-core ceiling is the
best chunks a second divided by the machine's cores. `rag plan` reads
`workers["1"].chunks_per_s` from this report (eval/capacity.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from core.types import DEFAULT_TENANT, IngestJob, JobState, JobStatus
from eval.datasets import load_corpus
from eval.faults.api import PROJECT, server_env
from eval.report import emit_json
from ingest.jobs import RedisJobQueue, new_job_id

DONE = {JobState.SUCCEEDED, JobState.PARTIAL, JobState.FAILED}


def _write_uploads(data: Path, folder: Path, limit: int) -> list[tuple[str, str]]:
    """One text file a document (title and text), as an upload would leave it."""
    files = []
    for doc in load_corpus(data)[:limit]:
        path = folder / f"{doc.id}.txt"
        path.write_text(f"{doc.title}\n\n{doc.text}\n", encoding="utf-8")
        files.append((str(path), f"{doc.id}.txt"))
    return files


def _never(job: IngestJob, progress: object = None) -> JobStatus:
    raise RuntimeError("the benchmark only submits; `rag worker` processes run the jobs")


def _start_workers(
    count: int, folder: Path, redis_url: str, namespace: str
) -> list[subprocess.Popen[bytes]]:
    folder.mkdir(parents=True)
    workers = []
    for i in range(count):
        env = server_env(
            {
                "RAG_DATA_DIR": folder / f"data-{i}",
                "RAG_STORE__PATH": folder / f"store-{i}",
                "RAG_STORE__COLLECTION": "bench",
                "RAG_EMBEDDING__MODELS_DIR": PROJECT / ".models",
                "RAG_JOBS__BACKEND": "redis",
                "RAG_JOBS__REDIS_URL": redis_url,
                "RAG_JOBS__NAMESPACE": namespace,
            }
        )
        with (folder / f"worker-{i}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "api.cli", "worker"],
                    cwd=PROJECT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    deadline = time.monotonic() + 120
    for i, worker in enumerate(workers):  # ready: the worker printed its queue
        while b"worker:" not in (folder / f"worker-{i}.log").read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker {i} did not start; see {folder}/worker-{i}.log")
            time.sleep(0.2)
    return workers


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()


def run(
    count: int, files: list[tuple[str, str]], jobs: int, folder: Path, redis_url: str
) -> dict[str, Any]:
    """Ingest `files` as `jobs` jobs through `count` workers; the row of the report."""
    namespace = f"bench-workers-{uuid.uuid4().hex[:8]}"
    workers = _start_workers(count, folder / f"w{count}", redis_url, namespace)
    queue = RedisJobQueue(redis_url, _never, namespace)
    try:
        per_job = -(-len(files) // jobs)
        start = time.perf_counter()
        ids = [
            queue.submit(IngestJob(new_job_id(), tuple(files[i : i + per_job]), DEFAULT_TENANT))
            for i in range(0, len(files), per_job)
        ]
        statuses: dict[str, JobStatus] = {}
        while len(statuses) < len(ids):
            for job_id in ids:
                status = queue.status(job_id)
                if job_id not in statuses and status is not None and status.state in DONE:
                    statuses[job_id] = status
            time.sleep(0.1)
        seconds = time.perf_counter() - start
    finally:
        queue.close()
        _stop(workers)
    chunks = sum(s.chunks for s in statuses.values())
    return {
        "workers": count,
        "jobs": len(ids),
        "documents": sum(s.documents for s in statuses.values()),
        "chunks": chunks,
        "failed_jobs": sum(s.state is JobState.FAILED for s in statuses.values()),
        "seconds": round(seconds, 2),
        "chunks_per_s": round(chunks / seconds, 2),
        "chunks_per_s_per_worker": round(chunks / seconds / count, 2),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data/scifact"))
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--jobs", type=int, default=24)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--out", type=Path, default=Path("reports/bench-workers.json"))
    args = parser.parse_args()
    counts = [int(c) for c in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        folder = Path(tmp)
        uploads = folder / "uploads"
        uploads.mkdir()
        files = _write_uploads(args.data, uploads, args.docs)
        rows = {str(c): run(c, files, args.jobs, folder, args.redis) for c in counts}
    best = max(rows.values(), key=lambda r: r["chunks_per_s"])
    cpus = os.cpu_count() or 1
    report = {
        "machine": {"cpus": cpus},
        "data": str(args.data),
        "store": "each worker writes into a Qdrant Edge shard of its own (one process a "
        "shard); with a Qdrant server they would share a collection",
        "workers": rows,
        "best_workers": best["workers"],
        "per_core_ceiling_chunks_per_s": round(best["chunks_per_s"] / cpus, 2),
        "scaling_vs_one": {
            k: round(r["chunks_per_s"] / rows[str(counts[0])]["chunks_per_s"], 2)
            for k, r in rows.items()
        },
    }
    emit_json(report, args.out)


if __name__ == "__main__":
    main()
