"""Governance controls through the real API and CLI: the audit trail records every action
with its principal and nothing secret; an erased document is gone from every API path
(search, ask, stream, chat completions, the answer cache, listings, uploads); retention
expires what is old and leaves an intact audit chain.

Keys mode on the embedded stack; the "LLM" is `GroundedLlm`, which quotes the first
passage it is given (as a real model would), so an answer shows what it was built from.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.wiring import AppContext
from core.settings import LlmSettings, RetentionSettings, Settings
from core.types import Role
from retrieval.service import RagService
from tests.fakes import GroundedLlm
from tests.services import cli_settings, keys_settings

pytestmark = pytest.mark.integration

SECRET = "ZEBRA-7731"
LAUNCH = f"# Launch\n\nThe launch code for the orbital platform is {SECRET}, keep it safe.\n"
OTHER = "# Garden\n\nThe garden gate code is changed every spring by the caretaker.\n"


@dataclasses.dataclass
class Api:
    client: TestClient
    context: AppContext
    keys: dict[str, str]
    settings: Settings

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    settings = keys_settings(tmp_path, "gov", requests_per_minute=10_000).model_copy(
        update={
            "llm": LlmSettings(enabled=True, endpoints={"local-smollm2": "http://127.0.0.1:9/v1"})
        }
    )
    with TestClient(create_app(settings)) as client:
        context: AppContext = client.app.state.context  # type: ignore[attr-defined]
        # The model answers by quoting its first passage, grounded: the cache keeps it.
        context.__dict__["service"] = RagService(
            context.retriever(context.store),
            GroundedLlm(),
            context.answer_cache,
            corpus=context.query_collection,
        )
        keys = {}
        for who, role in (
            ("admin", Role.ADMIN),
            ("ingestor", Role.INGESTOR),
            ("reader", Role.READER),
        ):
            _, keys[who] = context.keys.create("acme", role)
        _, keys["globex"] = context.keys.create("globex", Role.READER)
        yield Api(client, context, keys, settings)


def _upload(api: Api, files: dict[str, str]) -> None:
    sent = [("files", (name, text.encode(), "text/markdown")) for name, text in files.items()]
    response = api.client.post("/v1/documents", files=sent, headers=api.auth("ingestor"))
    assert response.status_code == 202, response.text
    status_url = response.json()["status_url"]
    for _ in range(600):
        state = api.client.get(status_url, headers=api.auth("ingestor")).json()["state"]
        if state not in ("queued", "running"):
            assert state == "succeeded"
            return
        time.sleep(0.05)
    raise AssertionError("the upload job did not finish")


def _everything_a_reader_can_get(api: Api) -> str:
    """Every API path that can return document content, as one string."""
    reader = api.auth("reader")
    question = "What is the launch code for the orbital platform?"
    bodies = [
        api.client.post("/v1/search", json={"query": question}, headers=reader).text,
        api.client.post(
            "/v1/search", json={"query": SECRET, "mode": "sparse"}, headers=reader
        ).text,
        api.client.post("/v1/ask", json={"question": question}, headers=reader).text,
        api.client.post("/v1/ask/stream", json={"question": question}, headers=reader).text,
        api.client.post(
            "/v1/chat/completions",
            json={"model": "rag-llm", "messages": [{"role": "user", "content": question}]},
            headers=reader,
        ).text,
        api.client.post(
            "/v1/chat/completions",
            json={
                "model": "rag-llm",
                "stream": True,
                "messages": [{"role": "user", "content": question}],
            },
            headers=reader,
        ).text,
        api.client.get("/v1/documents", headers=reader).text,
    ]
    return "\n".join(bodies)


def test_after_erasure_no_api_path_returns_the_content(api: Api) -> None:
    _upload(api, {"launch.md": LAUNCH, "garden.md": OTHER})
    before = _everything_a_reader_can_get(api)
    assert SECRET in before  # the paths do reach it while it exists...
    cache = api.context.answer_cache
    assert cache is not None
    assert cache.count() >= 1

    erased = api.client.delete("/v1/documents/launch.md", headers=api.auth("ingestor"))
    assert erased.status_code == 204
    assert cache.count() == 0

    assert SECRET not in _everything_a_reader_can_get(api)
    assert api.context.store.count({"tenant": "acme", "source": "launch.md"}) == 0
    assert api.context.manifest.get("acme", "launch.md") is None
    uploads = api.settings.data_dir / "uploads"
    assert not [p for p in uploads.rglob("launch.md")]
    # The audit trail says who erased what, by name, never the text.
    assert api.context.audit is not None
    records = list(api.context.audit.records())
    deletes = [r for r in records if r.action == "delete"]
    assert [(r.documents, r.tenant, r.outcome) for r in deletes] == [(("launch.md",), "acme", "ok")]
    assert SECRET not in json.dumps([r.as_json() for r in records])


def test_every_action_is_audited_with_its_principal_and_no_secret(api: Api) -> None:
    _upload(api, {"launch.md": LAUNCH})
    c, auth = api.client, api.auth
    assert c.post("/v1/search", json={"query": "launch"}, headers=auth("reader")).status_code == 200
    assert (
        c.post("/v1/ask", json={"question": "launch code?"}, headers=auth("reader")).status_code
        == 200
    )
    denied = c.post("/v1/keys", json={"tenant": "acme", "role": "admin"}, headers=auth("reader"))
    assert denied.status_code == 403
    created = c.post("/v1/keys", json={"tenant": "acme", "role": "reader"}, headers=auth("admin"))
    assert created.status_code == 201
    new_id, token = created.json()["key_id"], created.json()["key"]
    assert c.delete(f"/v1/keys/{new_id}", headers=auth("admin")).status_code == 204
    assert c.delete("/v1/documents/nothing.md", headers=auth("ingestor")).status_code == 404
    assert c.get("/v1/costs", headers=auth("globex")).status_code == 200
    assert c.get("/v1/documents", headers={"Authorization": "Bearer rag_nope"}).status_code == 401

    assert api.context.audit is not None
    records = list(api.context.audit.records())
    key_of = {token.split("_")[1]: who for who, token in api.keys.items()}
    seen = [(r.action, key_of.get(r.principal, r.principal), r.tenant, r.outcome) for r in records]
    assert ("ingest", "ingestor", "acme", "ok") in seen
    assert ("ingest.job", f"job:{records[0].detail['job_id']}", "acme", "succeeded") in seen
    assert ("search", "reader", "acme", "ok") in seen
    assert ("ask", "reader", "acme", "ok") in seen
    assert ("key.create", "reader", "acme", "denied") in seen
    assert ("key.create", "admin", "acme", "ok") in seen
    assert ("key.revoke", "admin", "acme", "ok") in seen
    assert ("delete", "ingestor", "acme", "not_found") in seen
    assert ("costs.read", "globex", "globex", "ok") in seen
    assert all(r.outcome != "unauthenticated" for r in records)  # 401s name nobody
    ask = next(r for r in records if r.action == "ask")
    assert ask.documents == ("launch.md",)
    assert ask.model == "fake-llm"
    search = next(r for r in records if r.action == "search")
    assert search.documents == ("launch.md",)
    dump = json.dumps([r.as_json() for r in records])
    assert token not in dump
    assert all(t not in dump for t in api.keys.values())
    assert "launch code?" not in dump  # questions only with RAG_AUDIT__STORE_TEXT=true
    assert api.context.audit.verify().ok


def test_rag_audit_verify_and_export(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    c = api.client
    for _ in range(3):
        c.post("/v1/search", json={"query": "garden"}, headers=api.auth("reader"))
    runner = CliRunner()
    out = tmp_path / "audit.jsonl"
    with cli_settings(monkeypatch, api.settings):
        intact = runner.invoke(cli, ["audit", "verify"])
        assert intact.exit_code == 0, intact.output
        assert "intact" in intact.output
        exported = runner.invoke(cli, ["audit", "export", "--since", "1d", "--out", str(out)])
        assert exported.exit_code == 0, exported.output
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [line["action"] for line in lines] == ["search"] * 3
        assert lines[1]["prev_hash"] == lines[0]["hash"]

        db = sqlite3.connect(api.settings.data_dir / "metadata.sqlite3")
        db.execute("UPDATE audit_log SET tenant = 'globex' WHERE seq = 2")
        db.commit()
        db.close()
        broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "record 2" in broken.output


def test_retention_expires_old_documents_uploads_cache_and_records(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upload(api, {"launch.md": LAUNCH, "garden.md": OTHER})
    c, reader = api.client, api.auth("reader")
    c.post("/v1/ask", json={"question": "When is the garden gate code changed?"}, headers=reader)
    cache = api.context.answer_cache
    assert cache is not None
    assert cache.count() == 1
    # Age things: launch.md was ingested 40 days ago, an upload left behind 10 days ago.
    # Naive UTC as SQLAlchemy stores a DateTime in SQLite (the manifest's table).
    old = (datetime.now(UTC) - timedelta(days=40)).replace(tzinfo=None)
    manifest = sqlite3.connect(api.settings.data_dir / "metadata.sqlite3")
    manifest.execute(
        "UPDATE documents SET updated_at = ? WHERE source = 'launch.md'",
        (old.isoformat(sep=" ", timespec="microseconds"),),
    )
    manifest.commit()
    manifest.close()
    stale = api.settings.data_dir / "uploads" / "acme" / "deadjob" / "left.md"
    stale.parent.mkdir(parents=True)
    stale.write_text("left behind")
    ten_days = time.time() - 10 * 86_400
    os.utime(stale, (ten_days, ten_days))

    policy = RetentionSettings(documents_days=30, uploads_days=7, cache_days=30)
    api.context.settings = api.settings.model_copy(update={"retention": policy})
    report = api.context.run_retention("test")
    assert report.documents == [("acme", "launch.md")]
    assert report.uploads == 1
    assert not stale.exists()
    assert not stale.parent.exists()
    assert report.cache_entries == 0  # the cached answer is new
    assert api.context.store.count({"source": "launch.md"}) == 0
    assert api.context.store.count({"source": "garden.md"}) > 0

    later = RetentionSettings(cache_days=1e-9, audit_days=1e-9)  # everything is old now
    api.context.settings = api.settings.model_copy(update={"retention": later})
    report = api.context.run_retention("test")
    assert report.cache_entries == 1
    assert cache.count() == 0
    assert report.audit_records > 0
    assert api.context.audit is not None
    assert api.context.audit.verify().ok


def test_rag_erase_and_rag_retention_run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The operator's commands: erase one document; expire documents by age."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "launch.md").write_text(LAUNCH)
    (folder / "garden.md").write_text(OTHER)
    runner = CliRunner()
    with cli_settings(monkeypatch, settings):
        assert runner.invoke(cli, ["ingest", str(folder)]).exit_code == 0
        erased = runner.invoke(cli, ["erase", "launch.md"])
        assert erased.exit_code == 0, erased.output
        assert runner.invoke(cli, ["erase", "launch.md"]).exit_code == 1  # gone already
        kept = runner.invoke(cli, ["retention", "run"])  # nothing old enough
        assert kept.exit_code == 0
        assert "0 documents erased" in kept.output
        monkeypatch.setenv("RAG_RETENTION__DOCUMENTS_DAYS", "0.000000001")
        from core.settings import get_settings

        get_settings.cache_clear()
        expired = runner.invoke(cli, ["retention", "run"])
        assert expired.exit_code == 0
        assert "1 documents erased" in expired.output
        found = runner.invoke(cli, ["search", "garden gate"])
        assert "garden.md" not in found.output
        verified = runner.invoke(cli, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    from api.wiring import build_app_context

    ctx = build_app_context(settings)
    try:
        assert ctx.audit is not None
        actions = [(r.action, r.documents) for r in ctx.audit.records()]
    finally:
        ctx.close()
    assert ("delete", ("launch.md",)) in actions
    assert ("retention.run", ("default/garden.md",)) in actions
