"""The OpenAI-compatible surface, driven by the official `openai` client and LangChain's
`ChatOpenAI` against the real server (the openai SDK speaks httpx2: no TestClient)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletionMessageParam
from pydantic import SecretStr

from api.wiring import build_app_context
from core.settings import Settings
from core.types import Role
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import discover
from tests.services import keys_settings, live_server

pytestmark = pytest.mark.integration

QUESTION = "Which vector store is the default?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sample_corpus: Path) -> Iterator[str]:
    from core.settings import ApiSettings, EmbeddingSettings, StoreSettings
    from tests.conftest import PROJECT_ROOT

    tmp = tmp_path_factory.mktemp("chat")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp / "data",
        store=StoreSettings(backend="edge", path=tmp / "qdrant", collection="chat"),
        embedding=EmbeddingSettings(models_dir=PROJECT_ROOT / ".models"),
        api=ApiSettings(allowed_hosts=["127.0.0.1"]),
    )
    with live_server(settings, ingest=sample_corpus) as url:
        yield url


def _rag(reply: Any) -> dict[str, Any]:
    """The `rag` extension object of a completion or chunk."""
    extra: dict[str, Any] | None = reply.model_extra
    assert extra is not None
    rag: dict[str, Any] = extra["rag"]
    return rag


def _client(url: str, key: str = "unused-in-mode-none") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


def test_the_models_are_the_answer_pipelines(server: str) -> None:
    models = [m.id for m in _client(server).models.list()]
    assert models == ["rag-extractive"]  # rag-llm appears with the LLM on


def test_the_openai_client_gets_a_cited_answer(server: str) -> None:
    reply = _client(server).chat.completions.create(
        model="rag-extractive", messages=[{"role": "user", "content": QUESTION}]
    )
    assert reply.object == "chat.completion"
    text = reply.choices[0].message.content
    assert text is not None
    assert "[1]" in text
    assert reply.choices[0].finish_reason == "stop"
    rag: dict[str, Any] = reply.model_extra["rag"]  # type: ignore[index]
    assert rag["found"] is True
    assert rag["citations"][0]["source"] == "0001-embedded-vector-store.html"
    assert rag["provenance"]["rung"] == "extractive"
    assert rag["standalone_query"] == QUESTION
    assert reply.usage is not None
    assert reply.usage.total_tokens > 0
    assert rag["usage_estimated"] is True


def test_the_openai_client_streams_the_answer(server: str) -> None:
    stream = _client(server).chat.completions.create(
        model="rag-extractive",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert "[1]" in text
    assert len(finals) == 1
    assert finals[0].model_extra["rag"]["citations"]  # type: ignore[index]
    assert chunks[-1].usage is not None  # the usage chunk, last


def test_a_follow_up_is_condensed_before_retrieval(server: str) -> None:
    reply = _client(server).chat.completions.create(
        model="rag-extractive",
        messages=[
            {"role": "system", "content": "Answer from the documents."},
            {"role": "user", "content": "How are chunk ids made deterministic?"},
            {"role": "assistant", "content": "They are UUIDv5 values. [1]"},
            {"role": "user", "content": [{"type": "text", "text": "And why is that useful?"}]},
        ],
    )
    rag: dict[str, Any] = reply.model_extra["rag"]  # type: ignore[index]
    assert rag["standalone_query"].startswith("And why is that useful? (")
    assert "chunk" in rag["standalone_query"]
    assert rag["citations"][0]["source"] == "0003-chunking.pdf"


def test_langchain_chat_openai_invokes_and_streams(server: str) -> None:
    chat = ChatOpenAI(
        base_url=f"{server}/v1",
        api_key=SecretStr("unused"),
        model="rag-extractive",
        max_retries=0,
    )
    message = chat.invoke(QUESTION)
    streamed = "".join(str(chunk.content) for chunk in chat.stream(QUESTION))
    assert "[1]" in str(message.content)
    assert "[1]" in streamed


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": "rag-extractive", "messages": []}, 422, "messages"),
        (
            {"model": "rag-extractive", "messages": [{"role": "assistant", "content": "hi"}]},
            422,
            "last message must be the user",
        ),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
        (
            {"model": "rag-extractive", "n": 2, "messages": [{"role": "user", "content": "hi"}]},
            422,
            "n=1",
        ),
        ({"model": "rag-extractive", "messages": [{"role": "wizard", "content": "x"}]}, 422, ""),
        (
            {"model": "rag-extractive", "messages": [{"role": "user", "content": "   "}]},
            422,
            "empty",
        ),
        (
            {"model": "rag-extractive", "messages": [{"role": "user", "content": "x" * 40_000}]},
            422,
            "limit",
        ),
        (
            {"model": "rag-extractive", "messages": [{"role": "user", "content": "q"}] * 10_000},
            413,  # over the request body limit before it is parsed
            "",
        ),
        (
            {
                "model": "rag-extractive",
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}
                ],
            },
            422,
            "",
        ),
    ],
)
def test_bad_requests_get_a_clear_4xx(
    server: str, body: dict[str, Any], status: int, says: str
) -> None:
    import httpx

    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert says in response.text


def test_the_sdk_raises_its_own_exception_classes(server: str) -> None:
    client = _client(server)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(
            model="rag-extractive", messages=[{"role": "assistant", "content": "x"}]
        )


def test_keys_scope_the_chat_to_the_callers_tenant(tmp_path: Path) -> None:
    settings = keys_settings(tmp_path, "chatkeys", requests_per_minute=10_000)
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"allowed_hosts": ["127.0.0.1"]})}
    )
    context = build_app_context(settings)
    for tenant, text in (
        ("acme", "The acme harbour master keeps the tide ledger in the lighthouse."),
        ("globex", "The globex volcano lair keeps the tide ledger under the lava lake."),
    ):
        folder = tmp_path / tenant
        folder.mkdir()
        (folder / "ledger.md").write_text(f"# Ledger\n\n{text}\n")
        context.documents.ingest(discover(folder, SUPPORTED_SUFFIXES), folder, tenant)
    _, acme = context.keys.create("acme", Role.READER)
    context.close()
    question: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Who keeps the tide ledger?"}
    ]
    with live_server(settings) as url:
        with pytest.raises(openai.AuthenticationError):
            _client(url, "rag_not_a_real_key").chat.completions.create(
                model="rag-extractive",
                messages=question,
            )
        reply = _client(url, acme).chat.completions.create(
            model="rag-extractive",
            messages=question,
            user="globex",  # never a scope
            extra_body={"tenant": "globex"},
        )
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in _client(url, acme).chat.completions.create(
                model="rag-extractive",
                messages=question,
                stream=True,
            )
            if c.choices
        )
    text = reply.choices[0].message.content or ""
    assert "lighthouse" in text
    assert "volcano" not in text
    assert "volcano" not in streamed


@pytest.mark.llm
def test_with_the_llm_on_both_pipelines_are_offered_and_keep_their_rungs(
    llm_server: Any, settings: Settings, sample_corpus: Path
) -> None:
    """`rag-llm` answers through the gateway (the real local model); `rag-extractive`
    still answers without a model when one is configured."""
    from core.settings import ApiSettings, LlmSettings

    configured = settings.model_copy(
        update={
            "llm": LlmSettings(enabled=True, endpoints={"local-smollm2": llm_server.url}),
            "api": ApiSettings(allowed_hosts=["127.0.0.1"]),
        }
    )
    question: list[ChatCompletionMessageParam] = [{"role": "user", "content": QUESTION}]
    with live_server(configured, ingest=sample_corpus) as url:
        client = _client(url)
        models = [m.id for m in client.models.list()]
        llm = client.chat.completions.create(model="rag-llm", messages=question)
        extractive = client.chat.completions.create(
            model="rag-extractive",
            messages=question,
        )
    assert models == ["rag-extractive", "rag-llm"]
    routed, plain = _rag(llm)["provenance"], _rag(extractive)["provenance"]
    assert routed["rung"] == "llm" or routed["attempts"]  # the model, or why not
    assert plain["rung"] == "extractive"
    assert plain["attempts"] == []
