"""Provider adapters at the HTTP boundary: the real SDKs, replies in the real wire formats.

`httpx2.MockTransport` stands where the provider's server would be; the adapters, the
SDKs' parsing and our error translation all run for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from pydantic import SecretStr

from core.errors import ProviderError
from core.ports import ChatModel
from core.settings import LlmSettings
from core.types import ChatMessage, StreamChunk, Usage
from gateway.catalog import load_catalog
from gateway.providers import build_chat_model

WIRE = Path(__file__).parent.parent / "fixtures" / "wire"
MESSAGES = [ChatMessage("system", "Cite passages."), ChatMessage("user", "How are ids made?")]
SETTINGS = LlmSettings(
    openai_api_key=SecretStr("sk-test"), anthropic_api_key=SecretStr("sk-ant-test")
)

Handler = Callable[[httpx2.Request], httpx2.Response]


def _model(name: str, handler: Handler) -> ChatModel:
    client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return build_chat_model(load_catalog().get(name), SETTINGS, http_client=client)


def _reply(file: str, status: int = 200) -> Handler:
    body = (WIRE / file).read_bytes()
    kind = "text/event-stream" if file.endswith(".sse") else "application/json"
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(status, content=body, headers={"content-type": kind})

    handler.seen = seen  # type: ignore[attr-defined]
    return handler


def test_openai_completion_parses_text_and_usage_and_sends_our_request() -> None:
    handler = _reply("openai_chat_completion.json")
    completion = _model("gpt-4.1-mini", handler).complete(MESSAGES, 300, 5.0)
    assert completion.text.endswith("[1].")
    assert completion.usage == Usage(412, 19)
    request = handler.seen[0]  # type: ignore[attr-defined]
    assert request.url.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test"
    body = json.loads(request.content)
    assert body["model"] == "gpt-4.1-mini"
    assert body["max_tokens"] == 300
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_openai_stream_yields_tokens_then_the_reported_usage() -> None:
    handler = _reply("openai_stream.sse")
    chunks = list(_model("gpt-4.1-mini", handler).stream(MESSAGES, 300, 5.0))
    assert "".join(c.text for c in chunks) == "Chunk ids are uuid5 hashes [1]."
    assert chunks[-1] == StreamChunk(usage=Usage(412, 9))
    body = json.loads(handler.seen[0].content)  # type: ignore[attr-defined]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_an_openai_compatible_server_without_usage_gets_an_estimate() -> None:
    lines = [
        line
        for line in (WIRE / "openai_stream.sse").read_text().split("\n\n")
        if '"usage":{' not in line
    ]
    body = "\n\n".join(lines).encode()

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    chunks = list(_model("local-smollm2", handler).stream(MESSAGES, 50, 5.0))
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.estimated
    assert usage.output_tokens > 0


@pytest.mark.parametrize(
    ("model", "file", "status", "transient"),
    [
        ("gpt-4.1-mini", "openai_error_429.json", 429, True),
        ("gpt-4.1-mini", "openai_error_400.json", 400, False),
        ("gpt-4.1-mini", "openai_error_429.json", 503, True),
        ("claude-haiku", "anthropic_error_529.json", 529, True),
        ("claude-haiku", "anthropic_error_401.json", 401, False),
    ],
)
def test_http_errors_are_translated_transient_or_not(
    model: str, file: str, status: int, transient: bool
) -> None:
    with pytest.raises(ProviderError) as raised:
        _model(model, _reply(file, status)).complete(MESSAGES, 10, 5.0)
    assert raised.value.status == status
    assert raised.value.transient is transient


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "claude-haiku"])
@pytest.mark.parametrize(
    ("error", "message"),
    [(httpx2.ReadTimeout("slow"), "timed out"), (httpx2.ConnectError("refused"), "connect")],
)
def test_timeouts_and_refused_connections_are_transient(
    model: str, error: Exception, message: str
) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        raise error

    with pytest.raises(ProviderError, match=message) as raised:
        _model(model, handler).complete(MESSAGES, 10, 5.0)
    assert raised.value.transient


def test_a_malformed_reply_is_a_permanent_provider_error() -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"id": "x", "object": "chat.completion", "choices": []})

    with pytest.raises(ProviderError, match="malformed") as raised:
        _model("gpt-4.1-mini", handler).complete(MESSAGES, 10, 5.0)
    assert not raised.value.transient


@pytest.mark.parametrize("name", ["gpt-4.1-mini", "claude-haiku"])
def test_a_reply_that_is_not_json_is_a_malformed_reply_not_a_crash(name: str) -> None:
    """A proxy's HTML error page with status 200 (the fault suite's `llm garbage`) was a
    JSONDecodeError out of the SDK, and a 500 from the API."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = b"<html>502 bad gateway</html>"
        return httpx2.Response(200, content=body, headers={"content-type": "application/json"})

    with pytest.raises(ProviderError, match="malformed") as raised:
        _model(name, handler).complete(MESSAGES, 10, 5.0)
    assert not raised.value.transient


def test_anthropic_completion_moves_the_system_prompt_out_of_the_messages() -> None:
    handler = _reply("anthropic_message.json")
    completion = _model("claude-haiku", handler).complete(MESSAGES, 300, 5.0)
    assert completion.text.endswith("[1].")
    assert completion.usage == Usage(431, 21)
    request = handler.seen[0]  # type: ignore[attr-defined]
    assert request.url.path == "/v1/messages"
    auth = request.headers.get("x-api-key") or request.headers["authorization"]
    assert auth.endswith("sk-ant-test")  # the 2.x SDK sends it as a bearer token
    assert "anthropic-version" in request.headers
    body = json.loads(request.content)
    assert body["system"] == "Cite passages."
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert body["model"] == "claude-haiku-4-5"


def test_anthropic_stream_yields_text_deltas_and_usage() -> None:
    chunks = list(_model("claude-haiku", _reply("anthropic_stream.sse")).stream(MESSAGES, 50, 5.0))
    assert "".join(c.text for c in chunks) == "Chunk ids are uuid5 hashes [1]."
    assert chunks[-1].usage == Usage(431, 12)


def test_a_hosted_model_without_its_key_fails_fast() -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="RAG_LLM__OPENAI_API_KEY"):
        build_chat_model(load_catalog().get("gpt-4.1"), LlmSettings())
