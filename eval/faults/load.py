"""Bounded concurrent load on the API: one thread asks, one searches, one uploads.

The uploader is closed-loop: it sends its next file once the job of the last one ended
(or `JOB_WAIT_S` passed). An open-loop uploader outran the single job worker whenever a
fault slowed it, and the suite then measured its own backlog instead of the fault.

Every response is tallied under the fault row that was running when it was sent: its
status class (`2xx`, `4xx`, `503`, `5xx`, or `conn` when no HTTP answer came back, as
while the API restarts), and for answers the rung that made them. A 5xx other than 503,
and a 503 without `Retry-After`, are server errors: the defined behaviour is a degraded
answer or "come back later", never an unexplained failure.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from eval.faults.api import upload, wait_jobs

#: Pause between two calls of a client: bounded load that leaves the 2 cores to ingest.
THINK_S = 0.25
#: The longest the uploader waits for its last job before it sends the next file.
JOB_WAIT_S = 30.0

QUESTIONS = (
    "What does hybrid retrieval combine?",
    "How are chunk ids made deterministic?",
    "Which store is embedded by default?",
    "How does the answer cache decide a hit?",
    "What happens when the language model is down?",
    "How are API keys checked?",
)


def status_class(response: httpx.Response) -> str:
    code = response.status_code
    if code == 503:
        return "503"
    return f"{code // 100}xx"


def is_server_error(response: httpx.Response) -> bool:
    code = response.status_code
    return code >= 500 and (code != 503 or "Retry-After" not in response.headers)


@dataclass
class Tally:
    """What one fault row's traffic got back."""

    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    server_errors: int = 0
    examples: list[str] = field(default_factory=list)  # the first few server errors
    accepted: dict[str, list[str]] = field(default_factory=dict)  # job id -> file names

    def add(self, kind: str, response: httpx.Response | None) -> None:
        self.requests += 1
        if response is None:
            self.outcomes["conn"] += 1
            return
        self.outcomes[status_class(response)] += 1
        if kind == "ask" and response.status_code == 200:
            rung = (response.json().get("provenance") or {}).get("rung", "none")
            self.outcomes[f"rung:{rung}"] += 1
        if is_server_error(response):
            self.server_errors += 1
            if len(self.examples) < 3:
                self.examples.append(f"{kind} {response.status_code} {response.text[:200]}")


class Load:
    """Three client threads against `url`; `row` names the tally their responses go to."""

    def __init__(self, url: str, headers: dict[str, str], upload_every_s: float = 1.5) -> None:
        self.url = url
        self.headers = headers
        self.row: str | None = None
        self.tallies: dict[str, Tally] = {}
        self._upload_every_s = upload_every_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._names = itertools.count()
        self._threads = [
            threading.Thread(target=self._loop, args=(work,), name=f"load-{work.__name__}")
            for work in (self._ask, self._search, self._upload)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=150)

    def tally(self, row: str) -> Tally:
        with self._lock:
            return self.tallies.setdefault(row, Tally())

    def _loop(self, work: Callable[[httpx.Client, str], None]) -> None:
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=60) as client:
            while not self._stop.is_set():
                row = self.row
                if row is None:
                    time.sleep(0.1)
                    continue
                work(client, row)

    def _call(self, row: str, kind: str, send: Callable[[], httpx.Response]) -> None:
        try:
            response: httpx.Response | None = send()
        except httpx.HTTPError:
            response = None
            time.sleep(0.2)  # the server is away: do not spin
        with self._lock:
            self.tallies.setdefault(row, Tally()).add(kind, response)
        if response is not None and response.status_code >= 400:
            time.sleep(0.1)

    def _ask(self, client: httpx.Client, row: str) -> None:
        question = QUESTIONS[next(self._names) % len(QUESTIONS)]
        self._call(row, "ask", lambda: client.post("/v1/ask", json={"question": question}))
        self._stop.wait(THINK_S)

    def _search(self, client: httpx.Client, row: str) -> None:
        query = QUESTIONS[next(self._names) % len(QUESTIONS)]
        self._call(row, "search", lambda: client.post("/v1/search", json={"query": query}))
        self._stop.wait(THINK_S)

    def _upload(self, client: httpx.Client, row: str) -> None:
        name = f"load-{next(self._names):05d}.txt"
        body = f"Load note {name}: the buoy logged a calm sea at dawn.\n".encode()
        holder: list[httpx.Response] = []

        def send() -> httpx.Response:
            holder.append(upload(client, [(name, body)]))
            return holder[0]

        self._call(row, "upload", send)
        if holder and holder[0].status_code == 202:
            job_id = holder[0].json()["job_id"]
            with self._lock:
                self.tallies[row].accepted[job_id] = [name]
            wait_jobs(client, [job_id], deadline_s=JOB_WAIT_S)  # untallied: not the load
        self._stop.wait(self._upload_every_s)
