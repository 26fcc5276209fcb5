"""Question drafting with the real local model: every call is answered and costed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.settings import LlmSettings, Settings
from eval.questions import generate_questions
from gateway.ledger import SqlLedger
from metadata.database import sqlite_url
from tests.llm_server import LocalLlmServer

pytestmark = [pytest.mark.integration, pytest.mark.llm]


def test_the_local_model_drafts_checked_questions(
    llm_server: LocalLlmServer, settings: Settings, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "packer.md").write_text(
        "# Packer\n\nThe default block size of the packer is 900k. Smaller blocks use less "
        "memory but compress worse; the block size is chosen with the flags -1 to -9, and "
        "the packer prints its version with --version.\n"
    )
    configured = settings.model_copy(
        update={
            "llm": LlmSettings(
                enabled=True, models=["local-smollm2"], endpoints={"local-smollm2": llm_server.url}
            )
        }
    )
    out = tmp_path / "q.jsonl"
    result = generate_questions(configured, docs, out, count=1)
    assert result.written + result.rejected == 1  # answered or rejected with a reason
    for line in out.read_text().splitlines():  # whatever was kept passed the checks
        row = json.loads(line)
        assert row["question"].endswith("?")
        assert row["source"] == "packer.md"
    ledger = SqlLedger(sqlite_url(configured.data_dir))  # the metadata database
    try:
        lines = ledger.report(tenant="eval")
        assert [(line.tenant, line.model) for line in lines] == [("eval", "local-smollm2")]
    finally:
        ledger.close()
