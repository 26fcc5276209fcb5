"""Accepted upload jobs survive the API process: `rag serve` SIGKILLed mid-job, started
again, finishes every job, and each accepted file is indexed exactly once.

The in-process queue keeps jobs in `data_dir/jobs.sqlite3` (ingest/jobs.py); ingest is
idempotent (deterministic chunk ids, the manifest), so the resumed job skips what was
done and rewrites what was half-done without duplicates. The fault suite
(`make test-faults`) does the same with 1,000 files and a SIGTERM too.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from eval.faults.api import PROJECT, ApiProcess, upload, wait_jobs

pytestmark = pytest.mark.integration

FILES, PER_REQUEST = 120, 40


def _manifest(data_dir: Path) -> dict[str, int]:
    """Manifest rows by state, read from the metadata database while no server runs."""
    with sqlite3.connect(data_dir / "metadata.sqlite3") as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM documents GROUP BY state").fetchall())


def _files_done(client: httpx.Client, job_id: str) -> int:
    """The job's progress; 0 while the server answers something else (busy, starting)."""
    response = client.get(f"/v1/jobs/{job_id}")
    return int(response.json()["progress"]["files_done"]) if response.status_code == 200 else 0


def test_a_killed_server_resumes_its_jobs_and_indexes_each_file_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {
        "RAG_DATA_DIR": data_dir,
        "RAG_STORE__PATH": tmp_path / "qdrant",
        "RAG_STORE__COLLECTION": "restart",
        "RAG_EMBEDDING__MODELS_DIR": PROJECT / ".models",
        "RAG_API__MAX_UPLOAD_FILES": PER_REQUEST,
        "RAG_LIMITS__REQUESTS_PER_MINUTE": 100_000,  # the polls below are not the subject
    }
    api = ApiProcess(env, tmp_path / "server.log")
    api.start()
    try:
        with httpx.Client(base_url=api.url) as client:
            job_ids = []
            for first in range(0, FILES, PER_REQUEST):
                files = [
                    (f"note-{i:04d}.txt", f"Note {i}: buoy {i} reads {i * 7} knots.\n".encode())
                    for i in range(first, first + PER_REQUEST)
                ]
                response = upload(client, files)
                assert response.status_code == 202, response.text
                job_ids.append(response.json()["job_id"])
            deadline = time.monotonic() + 120
            while _files_done(client, job_ids[0]) < 5:
                assert time.monotonic() < deadline, "the first job never made progress"
                time.sleep(0.05)
        assert api.stop(signal.SIGKILL) == -signal.SIGKILL
        before = _manifest(data_dir)
        with sqlite3.connect(data_dir / "jobs.sqlite3") as db:  # what the killed process ran
            killed = {row[0] for row in db.execute("SELECT id FROM jobs WHERE state = 'running'")}
        assert len(killed) == 1
        assert 0 < before.get("done", 0) < FILES  # killed mid-way
        assert (data_dir / "uploads" / "default" / job_ids[-1]).is_dir()  # not yet ingested

        api.start()
        with httpx.Client(base_url=api.url) as client:
            jobs = wait_jobs(client, job_ids, deadline_s=240)
            points = client.get("/healthz").json()["points"]
            listed = client.get("/v1/documents", params={"limit": 1}).json()["total"]
    finally:
        api.stop()
    assert {job_id: jobs[job_id]["state"] for job_id in job_ids} == dict.fromkeys(
        job_ids, "succeeded"
    )
    # The job the killed process was running spent an attempt; the others did not. (Not
    # always the first: on a fast machine it is done before the kill.)
    assert {j: jobs[j]["attempts"] for j in job_ids} == {
        j: 2 if j in killed else 1 for j in job_ids
    }
    assert (points, listed) == (FILES, FILES)  # one chunk per file: each indexed once
    assert _manifest(data_dir) == {"done": FILES}
    assert not (data_dir / "uploads" / "default").exists() or not any(
        (data_dir / "uploads" / "default").iterdir()
    )
