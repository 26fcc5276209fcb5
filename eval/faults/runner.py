"""`make test-faults [OUT=f.json]`: the API as a real process, under load, while each
dependency fails and comes back; one row per fault, and a non-zero exit when a row
shows a server error, a lost document or job, or no recovery.

Two servers, each `rag serve` configured only through `RAG_*` variables:

- A (the default in-process job queue): API keys and the cost ledger in a scratch
  PostgreSQL database behind a TCP proxy the suite controls, a fake OpenAI-compatible
  model, rate limits in the suite's own Redis, the data folder and the store each on a
  small tmpfs. Rows: the model down, slow, 429 and garbage; the store's volume full;
  PostgreSQL unreachable; the data folder full; then the API stopped during a 1,000-file
  upload (SIGTERM, and on a second stop SIGKILL) and started again.
- B (`RAG_JOBS__BACKEND=redis`) with a `rag worker` process: Redis killed and restarted;
  the worker SIGKILLed mid-job and a new one started.

The vector store with Qdrant Edge: the engine is a library inside the API process, so
there is no connection to lose; the store cannot be down while the API is up. What does
fail under it is its volume. A full volume is the realistic outage, and the dangerous
one: Edge writes through memory maps, and a write to a full tmpfs killed the process
with SIGBUS (measured). So the store row fills the store's own tmpfs (the data folder
stays writable): queries must go on, uploads must be refused with 503 + Retry-After
(`RAG_STORE__MIN_FREE_MB`), readiness must say so, and writes must resume once space
is back, with no restart. A remount read-only was the other candidate; Linux refuses it
while the engine holds files open for writing (EBUSY), and there is no device mapper
here for I/O errors. The remote backend (`RAG_STORE__BACKEND=qdrant`) would make a
network outage possible, but no Qdrant server can be installed offline.

Two B details: Qdrant Edge lets one process open a shard, so the worker indexes into a
store of its own (uploads are read from the API's data folder by path, as a shared
volume would serve them); and `RAG_JOBS__HEARTBEAT_TIMEOUT_S=5` so a killed worker's
job is re-queued within seconds, not Dramatiq's minute.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from eval.faults.api import PROJECT, ApiProcess, server_env, upload, wait_jobs
from eval.faults.deps import FakeLlm, LlmMode, RedisServer, TcpProxy, Volume
from eval.faults.load import Load, Tally

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TENANT = "faults"
BULK_FILES, PER_REQUEST = 1000, 250
FAULT_S, BASELINE_S = 4.0, 1.0

_CATALOG = """
version = 1

[[models]]
name = "fault-llm"
provider = "openai-compatible"
model = "fake"
endpoint = "{endpoint}"
context_window = 4096
input_per_mtok = 0.0
output_per_mtok = 0.0
tags = ["private", "cheap", "strong"]
timeout_s = 1.5
max_output_tokens = 100

[routing]
strategy = "rules"
"""


@dataclass
class Row:
    fault: str
    tally: Tally
    lost: int = 0
    recovery_s: float | None = None
    readyz: str = ""
    expect_readyz: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        found = []
        if self.tally.server_errors:
            found.append(f"{self.tally.server_errors} server errors: {self.tally.examples}")
        if self.lost:
            found.append(f"{self.lost} lost")
        if self.recovery_s is None:
            found.append("no recovery")
        if self.expect_readyz and not self.readyz.startswith(self.expect_readyz):
            found.append(f"/readyz said {self.readyz!r}, expected {self.expect_readyz}")
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "fault": self.fault,
            "requests": self.tally.requests,
            "outcomes": dict(sorted(self.tally.outcomes.items())),
            "server_errors": self.tally.server_errors,
            "lost": self.lost,
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 2),
            "readyz": self.readyz,
            "ok": not self.problems,
            "problems": self.problems,
            "notes": self.notes,
        }


def _poll(check: Callable[[], bool], deadline_s: float, interval_s: float = 0.2) -> float | None:
    """Seconds until `check` holds, or None by the deadline."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        try:
            if check():
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(interval_s)
    return None


def _readyz(client: httpx.Client) -> str:
    """`status (failing checks)`, e.g. `degraded (model:fault-llm)`."""
    try:
        body = client.get("/readyz", timeout=10).json()
    except httpx.HTTPError as exc:
        return f"unreachable ({type(exc).__name__})"
    down = sorted(name for name, check in body["checks"].items() if not check["ok"])
    return f"{body['status']} ({', '.join(down)})" if down else body["status"]


def _lost(client: httpx.Client, accepted: dict[str, list[str]], deadline_s: float = 120) -> int:
    """Files of accepted jobs that are not indexed once their jobs have ended."""
    jobs = wait_jobs(client, list(accepted), deadline_s=deadline_s)
    lost = 0
    for job_id, names in accepted.items():
        job = jobs.get(job_id)
        if job is None or job["state"] != "succeeded":
            lost += len(names)
        else:
            lost += max(0, len(names) - int(job["documents"]))
    return lost


class Suite:
    """Owns every process, proxy and mount of one run; `close()` undoes them all."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.closing = ExitStack()
        self.rows: list[Row] = []
        self.probes = 0  # files the recovery probes got accepted
        self.llm = FakeLlm()
        self.closing.callback(self.llm.stop)
        self.redis = RedisServer(folder / "redis")
        self.redis.start()
        self.closing.callback(self.redis.stop)
        self.pg_proxy = TcpProxy("127.0.0.1", 5432)
        self.closing.callback(self.pg_proxy.stop)
        self.database = f"rag_faults_{uuid.uuid4().hex[:8]}"
        self._create_database()
        self.data = Volume(folder / "data-volume", 256)
        self.store = Volume(folder / "store-volume", 384)
        self.volumes_note = ""
        for volume in (self.data, self.store):
            try:
                volume.mount()
                self.closing.callback(volume.unmount)
            except OSError as exc:
                self.volumes_note = str(exc)
                volume.path.mkdir(parents=True, exist_ok=True)

    # --- setup -------------------------------------------------------------------

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{self.database}"')

        def drop() -> None:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as db:
                db.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

        self.closing.callback(drop)

    def pg_url(self, port: int) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{self.database}"

    def env_a(self) -> dict[str, object]:
        catalog = self.folder / "catalog.toml"
        catalog.write_text(_CATALOG.format(endpoint=self.llm.url))
        return {
            "RAG_DATA_DIR": self.data.path / "data",
            "RAG_STORE__PATH": self.store.path / "qdrant",
            "RAG_STORE__COLLECTION": "faults",
            "RAG_EMBEDDING__MODELS_DIR": PROJECT / ".models",
            "RAG_AUTH__MODE": "keys",
            "RAG_DATABASE_URL": self.pg_url(self.pg_proxy.port),
            "RAG_LLM__ENABLED": "true",
            "RAG_LLM__CATALOG": catalog,
            "RAG_LLM__MODELS": '["fault-llm"]',
            "RAG_LLM__LEDGER_URL": self.pg_url(self.pg_proxy.port),
            "RAG_LLM__MAX_RETRIES": 1,
            "RAG_LLM__BACKOFF_BASE_S": 0.1,
            "RAG_LLM__BREAKER_RESET_S": 2,
            "RAG_CACHE__ENABLED": "false",  # every ask reaches the model: its faults show
            "RAG_LIMITS__STORAGE_URL": self.redis.url.replace("/0", "/1"),
            "RAG_LIMITS__REQUESTS_PER_MINUTE": 100_000,
            "RAG_API__MAX_UPLOAD_FILES": PER_REQUEST,
            "RAG_JOBS__BACKOFF_S": 0.5,
        }

    def env_b(self, store: str, data: str) -> dict[str, object]:
        return {
            "RAG_DATA_DIR": self.folder / data,
            "RAG_STORE__PATH": self.folder / store,
            "RAG_STORE__COLLECTION": "faults",
            "RAG_EMBEDDING__MODELS_DIR": PROJECT / ".models",
            "RAG_JOBS__BACKEND": "redis",
            "RAG_JOBS__REDIS_URL": self.redis.url,
            "RAG_JOBS__NAMESPACE": "faults",
            "RAG_JOBS__HEARTBEAT_TIMEOUT_S": 5,
            "RAG_LIMITS__STORAGE_URL": self.redis.url.replace("/0", "/1"),
            "RAG_LIMITS__REQUESTS_PER_MINUTE": 100_000,
            "RAG_API__MAX_UPLOAD_FILES": 100,
        }

    def api_key(self) -> str:
        from auth.keys import KeyStore
        from core.types import Role

        keys = KeyStore(self.pg_url(5432))
        try:
            return keys.create(TENANT, Role.ADMIN)[1]
        finally:
            keys.close()

    # --- one row -----------------------------------------------------------------

    def row(
        self,
        load: Load,
        client: httpx.Client,
        fault: str,
        inject: Callable[[], None],
        restore: Callable[[], None],
        recovered: Callable[[], bool],
        expect_readyz: tuple[str, ...] = (),
        deadline_s: float = 60,
    ) -> Row:
        """Baseline, the fault under load (readiness asked meanwhile), the dependency back,
        the time until `recovered` holds, then the row's accepted uploads are checked."""
        tally = load.tally(fault)
        load.row = fault
        time.sleep(BASELINE_S)
        inject()
        time.sleep(FAULT_S / 2)
        readyz = _readyz(client)
        time.sleep(FAULT_S / 2)
        restore()
        recovery = _poll(recovered, deadline_s=deadline_s)
        time.sleep(0.5)
        load.row = None
        row = Row(fault, tally, recovery_s=recovery, readyz=readyz, expect_readyz=expect_readyz)
        row.lost = _lost(client, dict(tally.accepted))
        self.rows.append(row)
        print(f"  {fault}: {row.as_dict()['outcomes']} recovery {recovery}", file=sys.stderr)
        return row

    # --- server A ----------------------------------------------------------------

    def run_a(self) -> None:
        key = self.api_key()
        headers = {"Authorization": f"Bearer {key}"}
        api = ApiProcess(self.env_a(), self.folder / "api-a.log")
        self.closing.callback(api.stop, signal.SIGKILL)
        api.start()
        client = httpx.Client(base_url=api.url, headers=headers, timeout=60)
        self.closing.callback(client.close)
        self._seed(client)
        load = Load(api.url, headers)
        load.start()
        try:
            self._llm_rows(load, client)
            self._volume_row(load, client, "store volume full", self.store, leave_mb=32)
            self._postgres_row(load, client)
            self._volume_row(load, client, "data dir full", self.data, leave_mb=0)
            self._restart_rows(load, client, api)
        finally:
            load.row = None
            load.stop()
        api.stop()

    def _seed(self, client: httpx.Client) -> None:
        from ingest import sample_corpus

        corpus = self.folder / "corpus"
        sample_corpus.build(PROJECT / "docs", corpus)
        files = [(p.name, p.read_bytes()) for p in sorted(corpus.iterdir()) if p.is_file()]
        response = upload(client, files[:PER_REQUEST])
        response.raise_for_status()
        wait_jobs(client, [response.json()["job_id"]], deadline_s=180)

    def _ask_rung(self, client: httpx.Client) -> str:
        response = client.post("/v1/ask", json={"question": "Which store is embedded?"})
        return str((response.json().get("provenance") or {}).get("rung"))

    def _llm_rows(self, load: Load, client: httpx.Client) -> None:
        for fault, mode in (
            ("llm down", LlmMode.DOWN),
            ("llm slow", LlmMode.SLOW),
            ("llm 429", LlmMode.RATE_LIMITED),
            ("llm garbage", LlmMode.GARBAGE),
        ):
            self.row(
                load,
                client,
                fault,
                lambda mode=mode: self.llm.set(mode),  # type: ignore[misc]
                lambda: self.llm.set(LlmMode.UP),
                lambda: self._ask_rung(client) == "llm",
                expect_readyz=("degraded",),
            )

    def _upload_works(self, client: httpx.Client) -> bool:
        name = f"probe-{uuid.uuid4().hex[:8]}.txt"
        response = upload(client, [(name, b"A probe note about the harbour tide.\n")])
        if response.status_code != 202:
            return False
        self.probes += 1
        job_id = response.json()["job_id"]
        job = wait_jobs(client, [job_id], deadline_s=60).get(job_id, {})
        return bool(job.get("state") == "succeeded")

    def _volume_row(
        self, load: Load, client: httpx.Client, fault: str, volume: Volume, leave_mb: int
    ) -> None:
        if not volume.mounted:
            row = Row(fault, load.tally(fault), recovery_s=0.0)
            row.notes.append(f"not run: {self.volumes_note}")
            self.rows.append(row)
            return
        _lost(client, dict(load.tally("llm garbage").accepted))  # let running jobs end
        row = self.row(
            load,
            client,
            fault,
            lambda: volume.fill(leave_bytes=leave_mb * 2**20),
            volume.free,
            lambda: self._upload_works(client),
            expect_readyz=("degraded",),
        )
        row.notes.append(f"tmpfs filled to {leave_mb} MiB free (limit 64 MiB)")

    def _postgres_row(self, load: Load, client: httpx.Client) -> None:
        self.row(
            load,
            client,
            "postgres unreachable",
            self.pg_proxy.down,
            self.pg_proxy.up,
            lambda: client.post("/v1/search", json={"query": "tide"}).status_code == 200,
            expect_readyz=("not_ready",),
        )

    def _restart_rows(self, load: Load, client: httpx.Client, api: ApiProcess) -> None:
        """1,000 files in requests of `PER_REQUEST`; the API stopped with SIGTERM at about
        a fifth done, started, SIGKILLed at about half, started; every file indexed once."""
        points_before = client.get("/healthz").json()["points"]
        accepted: dict[str, list[str]] = {}
        for first in range(0, BULK_FILES, PER_REQUEST):
            files = [
                (f"bulk-{i:04d}.txt", f"Bulk note {i}: gauge {i} read {i % 97} cm.\n".encode())
                for i in range(first, first + PER_REQUEST)
            ]
            response = upload(client, files)
            response.raise_for_status()
            accepted[response.json()["job_id"]] = [name for name, _ in files]

        def done() -> int:
            jobs = wait_jobs(client, list(accepted), deadline_s=0)
            return sum(int(job["progress"]["files_done"]) for job in jobs.values())

        for fault, sig, at in (
            ("api SIGTERM mid-job", signal.SIGTERM, 0.2),
            ("api SIGKILL mid-job", signal.SIGKILL, 0.5),
        ):
            tally = load.tally(fault)
            load.row = fault
            _poll(lambda at=at: done() >= at * BULK_FILES, deadline_s=240)  # type: ignore[misc]
            before = done()
            stop_start = time.monotonic()
            code = api.stop(sig)
            stopped_s = time.monotonic() - stop_start
            start = time.monotonic()
            api.start()
            recovery = _poll(lambda before=before: done() > before, deadline_s=120)  # type: ignore[misc]
            load.row = None
            row = Row(fault, tally, recovery_s=None if recovery is None else recovery)
            if recovery is not None:
                row.recovery_s = time.monotonic() - start
            row.notes.append(
                f"stopped at {before}/{BULK_FILES} files in {stopped_s:.1f} s (exit {code}); "
                "recovery = restart until the jobs move again"
            )
            self.rows.append(row)
        row.lost = _lost(client, accepted, deadline_s=300)
        row.lost += sum(
            _lost(client, dict(t.accepted)) for name, t in load.tallies.items() if "api" in name
        )
        points_after = client.get("/healthz").json()["points"]  # once every job has ended
        load_files = sum(len(t.accepted) for name, t in load.tallies.items() if "api" in name)
        extra = points_after - points_before - BULK_FILES - load_files
        row.notes.append(
            f"points {points_before} -> {points_after}: {BULK_FILES} bulk + {load_files} load "
            f"files, {extra:+d} unexplained (duplicates if > 0)"
        )
        if extra != 0:
            row.lost += abs(extra)  # a duplicate or a missing point: each file indexed once

    # --- server B ----------------------------------------------------------------

    @contextmanager
    def _worker(self, log: Path) -> Iterator[subprocess.Popen[bytes]]:
        env = server_env(self.env_b("worker-store", "worker-data"))
        with log.open("ab") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "worker"],
                cwd=PROJECT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            yield worker
        finally:
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()

    def run_b(self) -> None:
        api = ApiProcess(self.env_b("api-b-store", "api-b-data"), self.folder / "api-b.log")
        self.closing.callback(api.stop, signal.SIGKILL)
        api.start()
        client = httpx.Client(base_url=api.url, timeout=60)
        self.closing.callback(client.close)
        self.probes = 0
        workers = ExitStack()
        self.closing.callback(workers.close)
        worker = workers.enter_context(self._worker(self.folder / "worker.log"))
        load = Load(api.url, {})
        load.start()
        try:
            self.row(
                load,
                client,
                "redis down",
                self.redis.kill,
                self.redis.start,
                lambda: self._upload_works(client),
                expect_readyz=("not_ready",),
                deadline_s=180,
            )
            self._worker_row(load, client, worker, workers)
        finally:
            load.row = None
            load.stop()
        workers.close()
        api.stop()
        indexed = self._worker_points()
        accepted = self.probes + 300
        accepted += sum(len(names) for t in load.tallies.values() for names in t.accepted.values())
        row = self.rows[-1]
        row.notes.append(f"worker store: {indexed} points for {accepted} accepted files")
        if indexed > accepted:
            row.lost += indexed - accepted  # a duplicate is a failure too

    def _worker_row(
        self,
        load: Load,
        client: httpx.Client,
        worker: subprocess.Popen[bytes],
        workers: ExitStack,
    ) -> None:
        fault = "worker killed mid-job"
        tally = load.tally(fault)
        load.row = fault
        accepted: dict[str, list[str]] = {}
        # Paused while the jobs are sent (well inside the heartbeat timeout), so the kill
        # lands mid-job: a running worker finished 100 small files before the next upload.
        worker.send_signal(signal.SIGSTOP)
        for first in range(0, 300, 100):
            files = [
                (f"queue-{i:04d}.txt", f"Queue note {i}: the tide rose {i % 13} cm.\n".encode())
                for i in range(first, first + 100)
            ]
            response = upload(client, files)
            response.raise_for_status()
            accepted[response.json()["job_id"]] = [name for name, _ in files]
        worker.send_signal(signal.SIGCONT)
        first_job = next(iter(accepted))

        seen: dict[str, Any] = {}

        def running() -> bool:  # taken by the worker and not finished: the kill lands mid-job
            seen.update(client.get(f"/v1/jobs/{first_job}").json())
            return bool(seen["state"] == "running")

        _poll(running, deadline_s=60, interval_s=0.05)
        killed_at = f"{seen['state']}, {seen['progress']['files_done']}"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        start = time.monotonic()
        workers.enter_context(self._worker(self.folder / "worker.log"))
        recovery = _poll(
            lambda: client.get(f"/v1/jobs/{first_job}").json()["state"] == "succeeded", 240
        )
        load.row = None
        row = Row(fault, tally, recovery_s=None if recovery is None else time.monotonic() - start)
        row.lost = _lost(client, accepted, deadline_s=180) + _lost(client, dict(tally.accepted))
        attempts = client.get(f"/v1/jobs/{first_job}").json()["attempts"]
        row.notes.append(
            f"killed with the first job {killed_at}/100 files done; it finished on "
            f"attempt {attempts} in the new worker"
        )
        self.rows.append(row)

    def _worker_points(self) -> int:
        """Points in the worker's store (read after it stopped), for the exactly-once note."""
        from store.edge import EdgeStore

        total = 0
        for shard in (self.folder / "worker-store").glob("*/schema.json"):
            store = EdgeStore(shard.parent.parent, shard.parent.name)
            store.ensure_collection(int(json.loads(shard.read_text())["size"]))
            total += store.count()
            store.close()
        return total

    def close(self) -> None:
        self.closing.close()


def render(rows: list[dict[str, Any]]) -> str:
    """The rows as a fixed-width table."""
    head = f"{'fault':<24} {'req':>5} {'server_err':>10} {'lost':>5} {'recovery_s':>10}  outcomes"
    lines = [head, "-" * len(head)]
    for r in rows:
        outcomes = " ".join(f"{k}={v}" for k, v in r["outcomes"].items())
        recovery = "-" if r["recovery_s"] is None else f"{r['recovery_s']:.2f}"
        mark = "" if r["ok"] else "  FAIL: " + "; ".join(r["problems"])
        lines.append(
            f"{r['fault']:<24} {r['requests']:>5} {r['server_errors']:>10} {r['lost']:>5} "
            f"{recovery:>10}  {outcomes}  readyz={r['readyz'] or '-'}{mark}"
        )
        lines.extend(f"{'':<24}   {note}" for note in r["notes"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.faults", description=__doc__)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    parser.add_argument(
        "--servers", default="ab", help="a: in-process queue rows, b: Redis rows (default ab)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rag-faults-") as folder:
        suite = Suite(Path(folder))
        try:
            if "a" in args.servers:
                suite.run_a()
            if "b" in args.servers:
                suite.run_b()
        finally:
            suite.close()
            logs = (args.out or Path("reports/faults.json")).with_suffix(".logs")
            logs.mkdir(parents=True, exist_ok=True)
            for log in Path(folder).glob("*.log"):  # the servers' logs, for a failed row
                log.replace(logs / log.name)
    rows = [row.as_dict() for row in suite.rows]
    report = {"faults": rows, "seconds": round(time.monotonic() - started, 1)}
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(render(rows))
    print(f"{len(rows)} faults in {report['seconds']} s")
    failed = [r["fault"] for r in rows if not r["ok"]]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
