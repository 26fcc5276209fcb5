"""`python -m eval.bench_load`: the API under real load, and what the HTTP layer costs.

One run, one machine, one baseline: the sample corpus is ingested into a temporary
embedded store; the in-process `RagService.search` is timed on the golden questions (and
the query embedding alone, the usual bound); then the real server (`uvicorn`, API keys on,
one key per simulated client so no client shares a rate limit) is started on that store and
driven by locust, headless, with closed-loop clients (no think time: the worst case for a
given number of clients) at 1, 5 and 20 concurrent clients, for `/v1/search` and for
`/v1/ask` with the extractive generator. A sequential keep-alive client measures the API's
own overhead at p50 precisely (locust rounds to whole milliseconds).

Locust runs in its own process (gevent patches that one only) and shares the 2 cores with
the server: its CPU is part of what the figures include, and the report says so.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eval.report import emit_json
from eval.stats import percentiles

PROJECT = Path(__file__).resolve().parent.parent
LEVELS = (1, 5, 20)
ENDPOINTS = ("search", "ask")
WARMUP = 20


def _questions() -> list[str]:
    import json

    path = PROJECT / "eval" / "golden" / "sample_corpus.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


#: `--set KEY=VALUE` settings for the server under test (e.g. RAG_EMBEDDING__THREADS=1).
_OVERRIDES: dict[str, str] = {}


def _env(folder: Path) -> dict[str, str]:
    """The server's settings: its own data folder and store, API keys, limits that
    do not throttle a benchmark (one principal per client; 1M requests a minute)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return {
        **keep,
        "PYTHONPATH": str(PROJECT),
        "RAG_DATA_DIR": str(folder / "data"),
        "RAG_STORE__PATH": str(folder / "qdrant"),
        "RAG_STORE__COLLECTION": "load",
        "RAG_EMBEDDING__MODELS_DIR": str(PROJECT / ".models"),
        "RAG_AUTH__MODE": "keys",
        "RAG_LIMITS__REQUESTS_PER_MINUTE": "1000000",
        **_OVERRIDES,
    }


def _prepare(folder: Path, clients: int) -> tuple[dict[str, float], list[str]]:
    """Ingest the sample corpus, time search in-process, and make one key per client."""
    from api.wiring import build_app_context
    from core.settings import Settings
    from core.types import RequestContext, Role, SearchMode
    from ingest import sample_corpus
    from ingest.parse import SUPPORTED_SUFFIXES
    from ingest.pipeline import discover

    corpus = folder / "corpus"
    sample_corpus.build(PROJECT / "docs", corpus)
    saved = dict(os.environ)
    os.environ.update(_env(folder))
    try:
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    ctx = build_app_context(settings)
    try:
        ctx.documents.ingest(discover(corpus, SUPPORTED_SUFFIXES), corpus, "load")
        scope = RequestContext("load")
        questions = _questions()
        for question in questions[:WARMUP]:
            ctx.service.search(question, 10, None, SearchMode.HYBRID, scope)
        search, embed = [], []
        for question in questions * 5:
            start = time.perf_counter()
            ctx.service.search(question, 10, None, SearchMode.HYBRID, scope)
            search.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            ctx.embedder.embed_query(question)
            embed.append((time.perf_counter() - start) * 1000)
        keys = [ctx.keys.create("load", Role.READER)[1] for _ in range(clients)]
    finally:
        ctx.close()
    s, e = percentiles(search), percentiles(embed)
    baseline = {
        "search_p50_ms": s["p50"],
        "search_p95_ms": s["p95"],
        "embed_query_p50_ms": e["p50"],
        "calls": len(search),
    }
    return baseline, keys


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(folder: Path) -> Iterator[str]:
    """`uvicorn` serving the app factory on the prepared store; stopped on every path."""
    import httpx

    port = _free_port()
    log = (folder / "server.log").open("w")
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    server = subprocess.Popen(command, env=_env(folder), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited; see {folder / 'server.log'}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready within 120 s")
            time.sleep(0.2)
        yield url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _overhead(url: str, key: str) -> dict[str, float]:
    """Sequential keep-alive calls to `/v1/search`: the 1-client latency, precisely."""
    import httpx

    questions = _questions()
    headers = {"Authorization": f"Bearer {key}"}
    samples = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for question in questions[:WARMUP]:
            client.post("/v1/search", json={"query": question, "top_k": 10})
        for question in questions * 5:
            start = time.perf_counter()
            response = client.post("/v1/search", json={"query": question, "top_k": 10})
            samples.append((time.perf_counter() - start) * 1000)
            response.raise_for_status()
    p = percentiles(samples)
    return {"search_p50_ms": p["p50"], "search_p95_ms": p["p95"], "calls": len(samples)}


def _locust(
    url: str, endpoint: str, clients: int, seconds: int, keys: Sequence[str], folder: Path
) -> dict[str, float]:
    """One locust run; its CSV summary as numbers (locust rounds latencies to ms)."""
    prefix = folder / f"locust-{endpoint}-c{clients}"
    command = [sys.executable, "-m", "locust", "-f", str(PROJECT / "eval" / "locustfile.py")]
    command += ["--headless", "-u", str(clients), "-r", str(clients), "-t", f"{seconds}s"]
    command += ["--host", url, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]
    env = {**os.environ, "RAG_LOAD_ENDPOINT": endpoint, "RAG_LOAD_API_KEYS": ",".join(keys)}
    with (folder / f"locust-{endpoint}-c{clients}.log").open("w") as log:
        subprocess.run(
            command,
            env=env,
            check=False,  # locust exits 1 when any request failed: the errors are reported
            stdout=subprocess.DEVNULL,
            stderr=log,
            timeout=seconds + 60,
        )
    with (prefix.parent / f"{prefix.name}_stats.csv").open(newline="") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    row = rows[f"/v1/{endpoint}"]
    return {
        "requests": int(row["Request Count"]),
        "errors": int(row["Failure Count"]),
        "rps": round(float(row["Requests/s"]), 1),
        "p50_ms": float(row["50%"]),
        "p95_ms": float(row["95%"]),
        "p99_ms": float(row["99%"]),
    }


def run(seconds: int, levels: Sequence[int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        folder = Path(tmp)
        baseline, keys = _prepare(folder, max(levels))
        results: dict[str, Any] = {endpoint: {} for endpoint in ENDPOINTS}
        with _server(folder) as url:
            direct = _overhead(url, keys[0])
            for endpoint in ENDPOINTS:
                for clients in levels:
                    load = _locust(url, endpoint, clients, seconds, keys[:clients], folder)
                    results[endpoint][f"c{clients}"] = load
                    print(f"{endpoint} c{clients}: {load}", file=sys.stderr)
    overhead = round(direct["search_p50_ms"] - baseline["search_p50_ms"], 2)
    return {
        "machine": f"{os.cpu_count()} CPU cores; locust and the server share them",
        "seconds_per_level": seconds,
        "clients": "closed loop, no think time, one API key each",
        "settings": dict(_OVERRIDES),
        "in_process": baseline,
        "http_sequential": direct,
        "overhead_ms": {"p50": overhead},
        **results,
        "targets": {
            "errors": 0,
            "search_c20_p95_ms": 50,
            "overhead_p50_ms": 5,
        },
    }


def _table(report: dict[str, Any]) -> str:
    lines = ["endpoint  clients  rps      p50    p95    p99    errors"]
    for endpoint in ENDPOINTS:
        for level, row in report[endpoint].items():
            lines.append(
                f"{endpoint:<9} {level[1:]:>7}  {row['rps']:>7.1f}  {row['p50_ms']:>5.0f}  "
                f"{row['p95_ms']:>5.0f}  {row['p99_ms']:>5.0f}  {row['errors']:>6}"
            )
    base = report["in_process"]
    lines.append(
        f"in-process search p50 {base['search_p50_ms']} ms (query embedding "
        f"{base['embed_query_p50_ms']} ms); over HTTP {report['http_sequential']['search_p50_ms']}"
        f" ms; API overhead p50 {report['overhead_ms']['p50']} ms"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eval.bench_load", description=__doc__)
    parser.add_argument("--seconds", type=int, default=20, help="per level and endpoint")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a server setting"
    )
    args = parser.parse_args(argv)
    _OVERRIDES.update(item.split("=", 1) for item in args.set)
    levels = [int(level) for level in args.levels.split(",")]
    report = run(args.seconds, levels)
    print(_table(report), file=sys.stderr)
    emit_json(report, args.out)


if __name__ == "__main__":
    main()
