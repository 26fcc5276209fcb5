"""Hostile requests, each a class closed for good: bad unicode, oversized bodies, odd
filters and file names, cross-site writes, foreign Host headers, a server left without
auth on a public address. Every refusal is problem+json; nothing is left on disk."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from core.settings import Settings
from tests.services import cli_settings

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _is_problem(response: object, status: int) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == PROBLEM  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)


RAW_BODIES = [
    b'{"query": "\\ud800"}',  # a lone surrogate
    b'{"query": "\\udfff\\ud800 x"}',
    b'{"query": "ok \\u0000 nul"}',
    b'{"query": "x", "filters": {"\\ud800": "x"}}',
    b'{"query": "x", "filters": {"source": "\\udcff"}}',
    b'{"query": "\xff\xfe invalid utf-8"}',
    b'{"query": "x", "filters": {"": "empty key"}}',
    b'{"query": "x", "filters": {"page": 1e400}}',
    b'{"query": "x", "filters": {"page": 123456789012345678901234567890}}',
    b'{"query": "x", "filters": {"page": -9223372036854775809}}',
    b'{"query": "x", "filters": {"source": ["a", 1, null]}}',
    b'{"query": "x", "top_k": 1e9}',
    b'{"query": "x", "top_k": -5}',
    b"[]",
    b"null",
    b'"just a string"',
    b"{" * 5000,
    b'{"query": ' + b'"' + "é".encode() * 5000 + b'"}',
]


@pytest.mark.parametrize("raw", RAW_BODIES, ids=range(len(RAW_BODIES)))
@pytest.mark.parametrize("path", ["/v1/search", "/v1/ask", "/v1/ask/stream"])
def test_hostile_json_is_a_client_error_never_a_500(
    client: TestClient, path: str, raw: bytes
) -> None:
    body = raw.replace(b'"query"', b'"question"') if "ask" in path else raw
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM
    assert len(response.content) < 8000  # no oversized input echoed back


def test_validation_errors_do_not_echo_the_input(client: TestClient) -> None:
    secret = "S3CRET-" + "x" * 3000
    response = client.post("/v1/search", json={"query": secret})
    _is_problem(response, 422)
    assert "S3CRET" not in response.text
    assert response.json()["errors"][0]["loc"] == "body.query"


def test_request_bodies_are_bounded(client: TestClient, settings: Settings) -> None:
    big = b'{"query": "' + b"a" * (settings.api.max_body_kb * 1024 + 10) + b'"}'
    _is_problem(
        client.post("/v1/search", content=big, headers={"content-type": "application/json"}),
        413,
    )

    def chunked() -> Iterator[bytes]:  # no Content-Length: counted while it streams
        yield b'{"query": "'
        for _ in range(settings.api.max_body_kb + 10):
            yield b"a" * 1024
        yield b'"}'

    response = client.post(
        "/v1/ask", content=chunked(), headers={"content-type": "application/json"}
    )
    _is_problem(response, 413)


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    _is_problem(client.get("/v1/nothing-here"), 404)
    _is_problem(client.put("/v1/search", json={}), 405)


def test_security_headers_on_every_response(client: TestClient) -> None:
    for response in (client.get("/healthz"), client.get("/v1/nothing")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in client.get("/healthz").headers  # CORS off


def test_foreign_host_headers_are_refused(client: TestClient) -> None:
    _is_problem(client.get("/healthz", headers={"host": "evil.example"}), 400)
    _is_problem(client.get("/healthz", headers={"host": "evil.example:8000"}), 400)
    assert client.get("/healthz", headers={"host": "localhost:8000"}).status_code == 200


def test_cross_site_writes_are_refused(client: TestClient) -> None:
    note = [("files", ("n.md", b"# N\n\nA note.\n", "text/markdown"))]
    for headers in (
        {"origin": "https://evil.example"},
        {"origin": "http://localhost:9999"},  # another port is another origin
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
    ):
        _is_problem(client.post("/v1/documents", files=note, headers=headers), 403)
        _is_problem(client.post("/v1/search", json={"query": "x"}, headers=headers), 403)
        _is_problem(client.delete("/v1/documents/n.md", headers=headers), 403)
    same = client.post("/v1/search", json={"query": "x"}, headers={"origin": "http://testserver"})
    assert same.status_code == 200


def test_allowed_cors_origins_can_call(settings: Settings) -> None:
    settings.api.cors_origins = ["https://app.example.com"]
    with TestClient(create_app(settings)) as client:
        preflight = client.options(
            "/v1/search",
            headers={
                "origin": "https://app.example.com",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type",
            },
        )
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        response = client.post(
            "/v1/search", json={"query": "x"}, headers={"origin": "https://app.example.com"}
        )
        assert response.status_code == 200
        evil = client.post(
            "/v1/search", json={"query": "x"}, headers={"origin": "https://evil.example"}
        )
        assert evil.status_code == 403


def _uploads(settings: Settings) -> list[Path]:
    return sorted(p for p in (settings.data_dir / "uploads").glob("**/*") if p.is_file())


@pytest.mark.parametrize(
    "name",
    [
        "a" * 300 + ".md",  # longer than any file system allows
        "é" * 150 + ".md",  # short in characters, long in bytes
        "../../etc/passwd.md",  # becomes passwd.md: accepted, but never a path
        "bad\x00name.md",
        "line\nbreak.md",
        "\u202eevil.md",  # right-to-left override
        "..",
        "",
        "noext",
        "archive.exe",
    ],
)
def test_upload_names_are_checked_and_nothing_is_left_behind(
    client: TestClient, settings: Settings, name: str
) -> None:
    files = [
        ("files", ("good.md", b"# Good\n\nA good note.\n", "text/markdown")),
        ("files", (name, b"# Bad\n\nA note with a hostile name.\n", "text/markdown")),
    ]
    response = client.post("/v1/documents", files=files)
    if name == "../../etc/passwd.md":
        assert response.status_code == 202
        assert response.json()["files"] == ["good.md", "passwd.md"]
        return
    if response.status_code == 202:  # the client escaped it (httpx sends NUL as %00)
        assert all(c.isprintable() for f in response.json()["files"] for c in f)
        return
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == PROBLEM
    assert _uploads(settings) == []  # the accepted file was not kept without a job


def test_uploads_limits_and_duplicates(client: TestClient, settings: Settings) -> None:
    note = ("files", ("n.md", b"# N\n\nA note.\n", "text/markdown"))
    _is_problem(client.post("/v1/documents", files=[note, note]), 422)
    many = [("files", (f"n{i}.md", b"# N\n\nA note.\n", "text/markdown")) for i in range(21)]
    _is_problem(client.post("/v1/documents", files=many), 413)
    assert _uploads(settings) == []


def test_upload_copies_are_removed_once_ingested(client: TestClient, settings: Settings) -> None:
    import time

    accepted = client.post(
        "/v1/documents", files=[("files", ("kept.md", b"# K\n\nKept text.\n", "text/md"))]
    )
    assert accepted.status_code == 202
    url = accepted.json()["status_url"]
    deadline = time.monotonic() + 60
    while client.get(url).json()["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.get(url).json()["state"] == "succeeded"
    assert _uploads(settings) == []
    assert client.delete("/v1/documents/kept.md").status_code == 204


def test_no_document_text_or_secrets_in_the_logs(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client.post(
        "/v1/documents",
        files=[("files", ("diary.md", b"# Diary\n\nMy PIN is 9931-SECRET.\n", "text/md"))],
    )
    client.post("/v1/ask", json={"question": "What is my PIN 9931-SECRET?"})
    client.post("/v1/search", json={"query": "x", "filters": {"tenant": "9931-SECRET"}})
    client.get("/v1/keys", headers={"Authorization": "Bearer rag_0123456789ab_TOPSECRETTOKEN"})
    assert "9931-SECRET" not in caplog.text.replace("'tenant'", "")
    assert "TOPSECRETTOKEN" not in caplog.text


def test_serve_refuses_a_public_address_without_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.cli import app
    from core.settings import get_settings

    monkeypatch.setenv("RAG_AUTH__MODE", "none")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert "rag keys create" in result.output


def test_cli_rejects_out_of_range_options() -> None:
    from api.cli import app

    result = CliRunner().invoke(app, ["ask", "x", "--top-k", "-5"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    bad = CliRunner().invoke(app, ["ask", "x", "--tenant", "a/b"])
    assert bad.exit_code == 2


def test_the_cli_says_when_the_server_holds_the_embedded_store(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli import app
    from api.wiring import build_app_context

    server = build_app_context(settings)
    _ = server.store  # what `rag serve` holds while it runs
    try:
        with cli_settings(monkeypatch, settings):
            result = CliRunner().invoke(app, ["search", "anything"])
    finally:
        server.close()
    assert result.exit_code == 1
    assert "in use by another process" in result.output
    assert "Traceback" not in result.output


def test_the_rate_limit_answers_429_with_retry_after(settings: Settings) -> None:
    settings.limits.requests_per_minute = 3
    with TestClient(create_app(settings)) as client:
        codes = [client.post("/v1/search", json={"query": "x"}).status_code for _ in range(4)]
        refused = client.post("/v1/search", json={"query": "x"})
    assert codes == [200, 200, 200, 429]
    _is_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_oidc_tokens_scope_the_api_end_to_end(settings: Settings, tmp_path: Path) -> None:
    """The app in OIDC mode: the tenant and groups come from the verified token only."""
    from core.settings import AuthSettings
    from tests.unit.test_oidc import AUDIENCE, ISSUER, Provider

    idp = Provider(tmp_path)
    settings.auth = AuthSettings(mode="oidc", jwks_file=idp.jwks, issuer=ISSUER, audience=AUDIENCE)
    with TestClient(create_app(settings)) as client:
        good = {"Authorization": f"Bearer {idp.token()}"}
        assert client.post("/v1/search", json={"query": "x"}, headers=good).status_code == 200
        forged = client.post("/v1/ask", json={"question": "x", "tenant": "globex"}, headers=good)
        _is_problem(forged, 403)
        stranger = {"Authorization": f"Bearer {idp.token(key=idp.stranger)}"}
        _is_problem(client.post("/v1/search", json={"query": "x"}, headers=stranger), 401)
        expired = {"Authorization": f"Bearer {idp.token(exp=1)}"}
        _is_problem(client.post("/v1/search", json={"query": "x"}, headers=expired), 401)
        reader = {"Authorization": f"Bearer {idp.token(roles=['reader'])}"}
        _is_problem(client.delete("/v1/documents/x.md", headers=reader), 403)


def test_a_stream_that_dies_ends_with_an_error_event(client: TestClient) -> None:
    from core.types import AnswerEvent

    class Dying:
        def ask_stream(self, *args: object, **kwargs: object) -> Iterator[AnswerEvent]:
            yield AnswerEvent("token", "Half an ans")
            raise RuntimeError("the model server went away")

    client.app.state.context.__dict__["service"] = Dying()  # type: ignore[attr-defined]
    response = client.post("/v1/ask/stream", json={"question": "x"})
    assert response.status_code == 200
    assert response.text.startswith("event: token\n")
    assert "event: error\ndata: " in response.text
    assert '"status": 500' in response.text
    assert "went away" not in response.text  # internals stay in the log


def test_costs_are_scoped_to_the_tenant_unless_admin(settings: Settings) -> None:
    from datetime import UTC, datetime

    from api.wiring import build_app_context
    from core.settings import AuthSettings
    from core.types import LedgerEntry, Role, Rung

    settings.auth = AuthSettings(mode="keys")
    ctx = build_app_context(settings)
    for tenant, cost in (("acme", 0.5), ("globex", 2.0)):
        ctx.ledger.record(LedgerEntry(datetime.now(UTC), tenant, "m", Rung.LLM, cost_usd=cost))
    _, reader = ctx.keys.create("acme", Role.READER)
    _, admin = ctx.keys.create("acme", Role.ADMIN)
    ctx.close()
    with TestClient(create_app(settings)) as client:
        own = client.get("/v1/costs", headers={"Authorization": f"Bearer {reader}"})
        assert [(c["tenant"], c["cost_usd"]) for c in own.json()] == [("acme", 0.5)]
        other = client.get("/v1/costs?tenant=globex", headers={"Authorization": f"Bearer {reader}"})
        _is_problem(other, 403)
        every = client.get("/v1/costs", headers={"Authorization": f"Bearer {admin}"})
        assert {c["tenant"] for c in every.json()} == {"acme", "globex"}


def test_rag_keys_create_list_revoke(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.cli import app

    runner = CliRunner()
    with cli_settings(monkeypatch, settings):
        created = runner.invoke(app, ["keys", "create", "--tenant", "acme", "--role", "ingestor"])
        assert created.exit_code == 0, created.output
        token = created.output.strip().splitlines()[-1]
        assert token.startswith("rag_")
        key_id = token.split("_")[1]
        listed = runner.invoke(app, ["keys", "list"])
        assert key_id in listed.output
        assert token[len("rag_") + 13 :] not in listed.output
        assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
        assert "revoked" in runner.invoke(app, ["keys", "list"]).output
        assert runner.invoke(app, ["keys", "revoke", "nope"]).exit_code == 1
        bad = runner.invoke(app, ["keys", "create", "--tenant", "a/b"])
        assert bad.exit_code == 2


def test_without_auth_only_loopback_connections_are_served(settings: Settings) -> None:
    """`uvicorn --host 0.0.0.0` around `rag serve` still cannot expose the `none` mode:
    a connection that arrived on a public address of the machine gets a 401."""
    settings.api.allowed_hosts = ["10.0.0.5", "127.0.0.1"]
    app = create_app(settings)
    with TestClient(app, base_url="http://10.0.0.5:8000") as public:
        refused = public.post("/v1/search", json={"query": "x"})
        _is_problem(refused, 401)
        assert "loopback" in refused.json()["detail"]
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        assert local.post("/v1/search", json={"query": "x"}).status_code == 200


def test_rag_worker_says_the_in_process_queue_needs_none(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli import app

    with cli_settings(monkeypatch, settings, RAG_JOBS__BACKEND="inprocess"):
        result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 1
    assert "RAG_JOBS__BACKEND=redis" in result.output
