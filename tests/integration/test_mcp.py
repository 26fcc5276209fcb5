"""The MCP server through the SDK's own client: streamable HTTP against the real app
under uvicorn, and stdio against a `rag mcp` subprocess. In keys mode a missing or bad
key is refused, and each tenant's key sees its own documents only."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from api.wiring import build_app_context
from core.settings import ApiSettings, Settings
from core.types import Role
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import discover
from tests.conftest import PROJECT_ROOT
from tests.services import keys_settings, live_server, subprocess_env

pytestmark = pytest.mark.integration

ACME = {"widgets.md": "# Widgets\n\nAcme's widget line grew revenue by nine percent.\n"}
GLOBEX = {"lair.md": "# Lair\n\nGlobex will acquire the volcano lair in the spring.\n"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


async def _over_http(
    url: str, calls: list[tuple[str, dict[str, Any]]], key: str | None = None
) -> list[Any]:
    """`_session` over streamable HTTP, with `key` as the bearer token."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        return await _session(Client(streamable_http_client(f"{url}/mcp", http_client=http)), calls)


async def _session(client: Client, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Open the session, list the tools, make the calls; [tools, *results]."""
    async with client:
        tools = await client.list_tools()
        results = [await client.call_tool(name, arguments) for name, arguments in calls]
    return [tools, *results]


def _sources(result: Any) -> set[str]:
    assert not result.is_error, result.content
    return {hit["source"] for hit in result.structured_content["hits"]}


def test_http_tools_search_and_ask_on_the_sample_corpus(
    settings: Settings, sample_corpus: Path
) -> None:
    with live_server(settings, ingest=sample_corpus) as url:
        tools, found, answer, widened, narrow = asyncio.run(
            _over_http(
                url,
                [
                    ("search", {"query": "How are chunk ids made deterministic?", "top_k": 3}),
                    ("ask", {"question": "How are chunk ids made deterministic?"}),
                    ("search", {"query": "chunk ids", "access_groups": ["hr"]}),
                    ("search", {"query": "chunk ids", "filters": {"tenant": "other"}}),
                ],
            )
        )
        cross_site = httpx.post(
            f"{url}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Origin": "http://evil.test"}
        )
        wrong_host = httpx.post(
            f"{url}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Host": "evil.test"}
        )
    by_name = {tool.name: tool for tool in tools.tools}
    assert set(by_name) == {"search", "ask"}
    for tool in by_name.values():  # nothing on a tool can name another tenant
        assert "tenant" not in tool.input_schema["properties"]
        assert tool.output_schema is not None
    hits = found.structured_content["hits"]
    assert len(hits) == 3
    assert set(hits[0]) >= {"source", "title", "section", "page", "score", "text", "chunk_id"}
    assert any("chunk" in hit["text"].lower() for hit in hits)
    assert not answer.is_error
    body = answer.structured_content
    assert body["found"] is True
    assert body["rung"] == "extractive"
    assert body["citations"]
    assert "[1]" in body["answer"]
    assert widened.is_error
    assert "not a member of access group(s): hr" in str(widened.content)
    assert narrow.is_error
    assert "cannot filter on 'tenant'" in str(narrow.content)
    # The app's hardening still stands in front of the mount.
    assert cross_site.status_code == 403
    assert wrong_host.status_code == 400


@dataclass
class Tenants:
    settings: Settings
    keys: dict[str, str]


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Tenants:
    """Two tenants with a document each, and a reader key for each (keys mode)."""
    tmp = tmp_path_factory.mktemp("mcp-keys")
    settings = keys_settings(tmp, "mcp", requests_per_minute=10_000).model_copy(
        update={"api": ApiSettings(allowed_hosts=["127.0.0.1"])}
    )
    context = build_app_context(settings)
    keys: dict[str, str] = {}
    for tenant, files in (("acme", ACME), ("globex", GLOBEX)):
        folder = tmp / tenant
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)
        context.documents.ingest(discover(folder, SUPPORTED_SUFFIXES), folder, tenant)
        _, keys[tenant] = context.keys.create(tenant, Role.READER, [], None)
    context.close()  # the server (or `rag mcp`) opens the store itself
    return Tenants(settings, keys)


def test_http_refuses_missing_and_bad_keys_and_scopes_by_key(tenants: Tenants) -> None:
    query = {"query": "volcano lair widget revenue", "top_k": 10}
    with live_server(tenants.settings) as url:
        missing = httpx.post(f"{url}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        bad = httpx.post(
            f"{url}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Authorization": "Bearer nope"}
        )
        with pytest.raises(BaseExceptionGroup) as refused:
            asyncio.run(_over_http(url, [], "nope"))
        _, acme = asyncio.run(_over_http(url, [("search", query)], tenants.keys["acme"]))
        _, globex = asyncio.run(_over_http(url, [("search", query)], tenants.keys["globex"]))
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert bad.status_code == 401
    assert [type(e) for e in _leaves(refused.value)] == [MCPError]
    assert _sources(acme) == {"widgets.md"}
    assert _sources(globex) == {"lair.md"}


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _stdio(settings: Settings, key: str | None, errlog: TextIO = sys.stderr) -> Client:
    env = subprocess_env(settings, RAG_AUTH__MODE=settings.auth.mode)
    if key is not None:
        env["RAG_API_KEY"] = key
    command = StdioServerParameters(
        command=sys.executable,
        args=["-m", "api.cli", "mcp"],
        env=env,
        cwd=PROJECT_ROOT,
    )
    return Client(stdio_client(command, errlog=errlog))


def test_stdio_serves_the_tools_in_the_scope_of_its_key(tenants: Tenants) -> None:
    query = {"query": "volcano lair widget revenue", "top_k": 10}
    tools, found, answer = asyncio.run(
        _session(
            _stdio(tenants.settings, tenants.keys["globex"]),
            [("search", query), ("ask", {"question": "What will Globex acquire?"})],
        )
    )
    assert {tool.name for tool in tools.tools} == {"search", "ask"}
    assert _sources(found) == {"lair.md"}
    assert not answer.is_error
    assert answer.structured_content["found"] is True
    assert {c["source"] for c in answer.structured_content["citations"]} == {"lair.md"}
    assert "volcano lair" in answer.structured_content["answer"]


def test_stdio_refuses_a_bad_key_at_start(tenants: Tenants, tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    with log.open("w") as errlog, pytest.raises(BaseExceptionGroup) as refused:
        asyncio.run(_session(_stdio(tenants.settings, "nope", errlog), []))
    assert [type(e) for e in _leaves(refused.value)] == [MCPError]
    assert "invalid, revoked or expired API key" in log.read_text()


def test_no_open_ended_streams_can_be_opened(settings: Settings) -> None:
    """Stateless: a GET (a server-push stream) or DELETE (a session end) is 405 at once,
    instead of a connection held open for ever per request."""
    import httpx

    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"allowed_hosts": ["127.0.0.1"]})}
    )
    with live_server(settings) as url:
        for method in ("GET", "DELETE"):
            response = httpx.request(
                method, f"{url}/mcp", headers={"Accept": "text/event-stream"}, timeout=5
            )
            assert response.status_code == 405
            assert response.headers["allow"] == "POST"
