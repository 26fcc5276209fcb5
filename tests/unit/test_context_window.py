"""Prompts fit the model's context window: the lowest-ranked passages go first, and a model
that cannot take even the best passage is skipped without a call."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import LlmSettings
from core.types import ChatMessage, Chunk, Completion, Rung, ScoredChunk, StreamChunk
from gateway.catalog import DEFAULT_CATALOG, Catalog, ModelSpec, load_catalog
from gateway.gateway import LlmGateway
from gateway.ledger import SqlLedger
from gateway.prompting import build_messages, fit_prompt, load_template
from gateway.wire import estimate_prompt_tokens
from retrieval.extractive import ExtractiveGenerator
from tests.fakes import ScriptedChatModel, model_spec

QUESTION = "How are chunk ids made?"
TEMPLATE = load_template()
PASSAGES = [
    ScoredChunk(
        Chunk(
            f"c{i}", f"doc{i}.md", f"{fact} " + "Filler words. " * 150, f"Doc {i}", "", None, 0, "h"
        ),
        1.0 - i / 10,
    )
    for i, fact in enumerate(
        [
            "Chunk ids are uuid5 hashes of the source and the content hash.",
            "Blue/green re-indexing switches an alias atomically.",
            "Budgets are summed per tenant from the ledger.",
        ],
        1,
    )
]


def tokens(passages: Sequence[ScoredChunk]) -> int:
    """The estimated prompt of the first passages, as the gateway counts it."""
    return estimate_prompt_tokens(build_messages(QUESTION, passages, TEMPLATE))


def spec(name: str, prompt_room: int, max_output_tokens: int = 100) -> ModelSpec:
    """A model whose window leaves exactly `prompt_room` tokens for the prompt."""
    return ModelSpec.model_validate(
        {
            **model_spec(name, 1.0, "cheap").model_dump(),
            "context_window": prompt_room + max_output_tokens,
            "max_output_tokens": max_output_tokens,
        }
    )


class RecordingChatModel(ScriptedChatModel):
    """Remembers the prompt of each call."""

    def __init__(self, name: str, script: Sequence[str | Exception]) -> None:
        super().__init__(name, script)
        self.prompts: list[list[ChatMessage]] = []

    def complete(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Completion:
        self.prompts.append(list(messages))
        return super().complete(messages, max_tokens, timeout_s)

    def stream(
        self, messages: Sequence[ChatMessage], max_tokens: int, timeout_s: float
    ) -> Iterator[StreamChunk]:
        self.prompts.append(list(messages))
        return super().stream(messages, max_tokens, timeout_s)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqlLedger]:
    ledger = SqlLedger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    yield ledger
    ledger.close()


def _gateway(
    ledger: SqlLedger, specs: Sequence[ModelSpec], *models: ScriptedChatModel
) -> LlmGateway:
    return LlmGateway(
        Catalog(version=1, models=tuple(specs)),
        LlmSettings(backoff_base_s=0, max_retries=0),
        {m.name: m for m in models},
        ledger,
        ExtractiveGenerator(),
        clock=lambda: datetime(2026, 11, 27, tzinfo=UTC),
        sleep=lambda _: None,
    )


def test_a_prompt_that_fits_keeps_every_passage() -> None:
    fitted = fit_prompt(QUESTION, PASSAGES, TEMPLATE, tokens(PASSAGES))
    assert fitted is not None
    kept, messages = fitted
    assert kept == PASSAGES
    assert messages == build_messages(QUESTION, PASSAGES, TEMPLATE)


def test_the_lowest_ranked_passages_are_dropped_first() -> None:
    room = tokens(PASSAGES) - 1  # one token short of all three
    fitted = fit_prompt(QUESTION, PASSAGES, TEMPLATE, room)
    assert fitted is not None
    kept, messages = fitted
    assert kept == PASSAGES[:2]
    assert estimate_prompt_tokens(messages) <= room
    assert tokens(PASSAGES[:1]) < tokens(PASSAGES[:2]) <= room


def test_nothing_fits_when_not_even_the_best_passage_does() -> None:
    assert fit_prompt(QUESTION, PASSAGES, TEMPLATE, tokens(PASSAGES[:1]) - 1) is None


def test_the_gateway_gives_a_small_model_only_what_fits_and_says_so(ledger: SqlLedger) -> None:
    room = tokens(PASSAGES[:1])
    small = RecordingChatModel("small", ["Ids are uuid5 hashes [1]."])
    answer = _gateway(ledger, [spec("small", room)], small).generate(QUESTION, PASSAGES)
    (prompt,) = small.prompts
    assert estimate_prompt_tokens(prompt) <= room  # with the reply's 100: the whole window
    assert "doc1.md" in prompt[1].content
    assert "doc2.md" not in prompt[1].content
    assert answer.provenance is not None
    assert answer.provenance.rung is Rung.LLM
    assert answer.provenance.grounded is True
    assert [c.source for c in answer.citations] == ["doc1.md"]
    assert answer.passages == tuple(PASSAGES)  # what retrieval found is still reported
    note = f"small: 2 of 3 passages left out to fit its {room + 100}-token context window"
    assert note in answer.provenance.attempts


def test_a_model_too_small_for_any_passage_is_skipped_without_a_call(ledger: SqlLedger) -> None:
    tiny = RecordingChatModel("tiny", ["never [1]."])
    roomy = RecordingChatModel("roomy", ["Ids are uuid5 hashes [1]."])
    specs = [spec("tiny", tokens(PASSAGES[:1]) - 1), spec("roomy", tokens(PASSAGES))]
    gateway = _gateway(ledger, specs, tiny, roomy)
    answer = gateway.generate(QUESTION, PASSAGES)
    assert tiny.calls == 0
    assert answer.provenance is not None
    assert answer.provenance.model == "roomy"
    assert any("tiny: the prompt does not fit" in a for a in answer.provenance.attempts)
    assert gateway.breakers["tiny"].state == "closed"  # not the model's failure


def test_with_no_model_that_fits_the_answer_is_extractive(ledger: SqlLedger) -> None:
    tiny = RecordingChatModel("tiny", ["never [1]."])
    gateway = _gateway(ledger, [spec("tiny", 10)], tiny)
    answer = gateway.generate(QUESTION, PASSAGES)
    events = list(gateway.stream(QUESTION, PASSAGES))
    assert tiny.calls == 0
    for served in (answer, events[-1].answer):
        assert served is not None
        assert served.provenance is not None
        assert served.provenance.rung is Rung.EXTRACTIVE


def test_streaming_fits_the_prompt_too(ledger: SqlLedger) -> None:
    small = RecordingChatModel("small", ["Ids are uuid5 hashes [1]."])
    gateway = _gateway(ledger, [spec("small", tokens(PASSAGES[:2]))], small)
    events = list(gateway.stream(QUESTION, PASSAGES))
    (prompt,) = small.prompts
    assert "doc2.md" in prompt[1].content
    assert "doc3.md" not in prompt[1].content
    final = events[-1].answer
    assert final is not None
    assert final.provenance is not None
    assert final.provenance.grounded is True


def test_a_catalog_entry_whose_reply_fills_its_window_fails_fast(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="leaves no room for a prompt"):
        spec("m", 0)
    path = tmp_path / "catalog.toml"
    path.write_text(
        DEFAULT_CATALOG.read_text().replace("max_output_tokens = 200", "max_output_tokens = 4096")
    )
    with pytest.raises(ConfigError, match="local-smollm2: max_output_tokens"):
        load_catalog(path)


def test_the_local_models_window_is_the_servers_not_the_models() -> None:
    """llama.cpp's server refuses prompts beyond its --n_ctx, whatever the model could take."""
    from gateway.local_model import server_command

    command = server_command(Path("m.gguf"), 8081)
    n_ctx = int(command[command.index("--n_ctx") + 1])
    assert load_catalog().get("local-smollm2").context_window == n_ctx
