"""Cached answers die with the documents they cite: re-ingest, prune and delete."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.wiring import build_app_context
from core.settings import LlmSettings, Settings
from core.types import Answer, Citation, Provenance, RequestContext, Rung

pytestmark = pytest.mark.integration


def _answer(question: str, source: str) -> Answer:
    return Answer(
        question,
        "cached [1]",
        (Citation(1, source, source, "", None, "id", "quote"),),
        found=True,
        generator="m",
        provenance=Provenance(rung=Rung.LLM, model="m", route="r", grounded=True),
    )


def test_reingest_prune_and_delete_invalidate_cached_answers(
    tmp_path: Path, settings: Settings
) -> None:
    # The LLM is "enabled" at a closed port: no model is needed to exercise the cache.
    configured = settings.model_copy(
        update={
            "llm": LlmSettings(enabled=True, endpoints={"local-smollm2": "http://127.0.0.1:9/v1"})
        }
    )
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.md", "b.md", "c.md"):
        (corpus / name).write_text(f"# {name}\n\nThe text of {name} is about topic {name[0]}.\n")
    context = build_app_context(configured)
    try:
        context.documents.ingest(sorted(corpus.iterdir()), corpus)
        cache = context.answer_cache
        assert cache is not None
        corpus_version = context.query_collection
        for source in ("a.md", "b.md", "c.md"):
            cache.put(
                f"what is {source} about", RequestContext(), corpus_version, _answer("q", source)
            )
        assert cache.count() == 3

        (corpus / "a.md").write_text("# a.md\n\nNew text: topic a changed.\n")
        context.documents.ingest(
            sorted(corpus.iterdir()), corpus
        )  # a.md re-ingested, b and c skipped
        assert cache.lookup("what is a.md about", RequestContext(), corpus_version) is None
        assert cache.count() == 2

        (corpus / "b.md").unlink()
        context.documents.ingest(sorted(corpus.iterdir()), corpus, prune=True)
        assert cache.count() == 1

        assert context.documents.delete("default", "c.md")
        assert cache.count() == 0
    finally:
        context.close()
