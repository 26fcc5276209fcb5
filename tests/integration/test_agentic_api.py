"""The agentic mode through the API and the CLI, on the real embedded stack (sample
corpus, extractive answers): routing in the response, forced modes, streamed steps, the
caller's tenant kept in every sub-question, and `rag batch`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli
from api.wiring import build_app_context
from core.settings import Settings
from core.types import RequestContext
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import discover
from tests.services import cli_settings

pytestmark = pytest.mark.integration

TWO_PARTS = "Which library parses the documents, and how many times is the query embedded?"


@pytest.fixture
def client(settings: Settings, sample_corpus: Path) -> Iterator[TestClient]:
    context = build_app_context(settings)
    context.documents.ingest(discover(sample_corpus, SUPPORTED_SUFFIXES), sample_corpus)
    context.close()
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_two_part_question_is_routed_to_the_agents_and_cites_both_parts(
    client: TestClient,
) -> None:
    body = client.post("/v1/ask", json={"question": TWO_PARTS}).json()
    agent = body["agent"]
    assert agent["mode"] == "agentic"
    assert agent["reason"] == "a question in several parts"
    assert agent["planned_by"] == "rules"  # the LLM is off: no model planner
    assert agent["sub_questions"] == [
        "Which library parses the documents?",
        "How many times is the query embedded?",
    ]
    assert [s["kind"] for s in agent["steps"]][:2] == ["route", "plan"]
    assert body["found"] is True
    assert len(body["citations"]) >= 2
    assert [c["number"] for c in body["citations"]] == list(range(1, len(body["citations"]) + 1))


def test_one_question_stays_single_shot_and_the_caller_can_force_either(
    client: TestClient,
) -> None:
    single = client.post("/v1/ask", json={"question": "Which library parses the documents?"})
    assert single.json()["agent"] == {
        "mode": "single",
        "reason": "one question: one retrieval",
        "forced": False,
        "sub_questions": [],
        "planned_by": None,
        "steps": [],
        "stopped_by": None,
    }
    forced = client.post("/v1/ask", json={"question": TWO_PARTS, "mode": "single"}).json()
    assert (forced["agent"]["mode"], forced["agent"]["forced"]) == ("single", True)
    bad = client.post("/v1/ask", json={"question": TWO_PARTS, "mode": "swarm"})
    assert bad.status_code == 422


def test_the_stream_sends_the_steps_then_the_answer(client: TestClient) -> None:
    response = client.post("/v1/ask/stream", json={"question": TWO_PARTS})
    assert response.status_code == 200
    events = [
        line.removeprefix("event: ")
        for line in response.text.splitlines()
        if line.startswith("event: ")
    ]
    assert events[0] == "step"
    assert events[-1] == "answer"
    assert events.count("step") >= 4  # route, plan, a research per part, synthesis
    last = response.text.strip().split("data: ")[-1]
    assert json.loads(last)["agent"]["mode"] == "agentic"


def test_sub_questions_read_only_the_caller_s_tenant(
    settings: Settings, sample_corpus: Path
) -> None:
    """Only the tenant `rival` has documents: the agents, asked by another tenant, find
    nothing (every sub-question is a RagService.ask under the caller's scope); asked by
    `rival`, they answer from its passages alone."""
    context = build_app_context(settings)
    try:
        context.documents.ingest(
            discover(sample_corpus, SUPPORTED_SUFFIXES), sample_corpus, tenant="rival"
        )
        stranger = context.agent.ask(TWO_PARTS, "agentic", context=RequestContext("acme"))
        assert (stranger.answer.found, stranger.answer.passages) == (False, ())
        owner = context.agent.ask(TWO_PARTS, "agentic", context=RequestContext("rival"))
        assert owner.answer.found
        assert {hit.chunk.tenant for hit in owner.answer.passages} == {"rival"}
    finally:
        context.close()


def test_rag_batch_answers_a_file_of_questions(
    settings: Settings, sample_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = build_app_context(settings)
    context.documents.ingest(discover(sample_corpus, SUPPORTED_SUFFIXES), sample_corpus)
    context.close()
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"id": "q1", "question": TWO_PARTS}) + "\nWhich library parses the documents?\n",
        encoding="utf-8",
    )
    out = tmp_path / "results.jsonl"
    with cli_settings(monkeypatch, settings):
        result = CliRunner().invoke(cli, ["batch", str(questions), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["mode"]) for r in rows] == [("q1", "agentic"), ("2", "single")]
    assert all(r["found"] and r["passages"] and r["citations"] for r in rows)
