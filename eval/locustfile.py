"""Locust users for `make bench-load`: closed-loop clients (no think time) that POST the
golden-set questions to one endpoint, chosen by `RAG_LOAD_ENDPOINT` (search | ask).

Run by `eval.bench_load` in a locust subprocess: gevent patches that process only.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from locust import FastHttpUser, constant, task

_QUESTIONS = [
    json.loads(line)["question"]
    for line in (Path(__file__).parent / "golden" / "sample_corpus.jsonl").read_text().splitlines()
    if line.strip()
]
_ENDPOINT = os.environ.get("RAG_LOAD_ENDPOINT", "search")
_KEYS = [k for k in os.environ.get("RAG_LOAD_API_KEYS", "").split(",") if k]
_NEXT_KEY = itertools.count()


class RagClient(FastHttpUser):
    """One client: the next request as soon as the last answer arrived."""

    wait_time = constant(0)

    def on_start(self) -> None:
        self._questions = itertools.cycle(_QUESTIONS)
        key = _KEYS[next(_NEXT_KEY) % len(_KEYS)] if _KEYS else None  # one per client
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}

    @task
    def query(self) -> None:
        question = next(self._questions)
        if _ENDPOINT == "ask":
            body = {"question": question, "top_k": 5}
            self.client.post("/v1/ask", json=body, headers=self._headers, name="/v1/ask")
        else:
            body = {"query": question, "top_k": 10}
            self.client.post("/v1/search", json=body, headers=self._headers, name="/v1/search")
