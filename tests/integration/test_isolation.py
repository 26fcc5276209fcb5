"""The isolation suite: every endpoint attacked in every way the API allows. It must find
nothing. Real stack: API keys in SQLite, the embedded store, the real embedder.

Two tenants, `acme` and `globex`, each own a `report.md` with the SAME bytes, plus
`acme` has an HR-only document and a tenant-wide one. Attackers hold real keys of the
other tenant, of a group they are not in, of a lower role; or no, bad, revoked or
expired keys. `ATTACKS` counts the cases for the closing note.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.wiring import build_app_context
from core.settings import Settings
from core.types import (
    RequestContext,
    Role,
)
from ingest.parse import SUPPORTED_SUFFIXES
from ingest.pipeline import discover
from tests.fakes import GroundedLlm
from tests.services import keys_settings

pytestmark = pytest.mark.integration

REPORT = "# Quarterly report\n\nRevenue grew by nine percent thanks to the new widget line.\n"
HR = "# Salaries\n\nThe confidential salary band for engineers is ninety to one hundred.\n"
HANDBOOK = "# Handbook\n\nEmployees may work from home on Fridays with manager approval.\n"
GLOBEX = "# Globex plans\n\nGlobex will acquire the volcano lair in the spring.\n"


@dataclasses.dataclass
class World:
    client: TestClient
    keys: dict[str, str]  # who -> bearer token
    settings: Settings

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


def _folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("isolation")
    settings = keys_settings(tmp, "iso", requests_per_minute=10_000)
    ctx = build_app_context(settings)
    docs = ctx.documents
    acme = _folder(tmp / "acme", {"report.md": REPORT, "handbook.md": HANDBOOK})
    hr = _folder(tmp / "acme-hr", {"salaries.md": HR})
    globex = _folder(tmp / "globex", {"report.md": REPORT, "plans.md": GLOBEX})
    assert docs.ingest(discover(acme, SUPPORTED_SUFFIXES), acme, "acme").documents == 2
    assert docs.ingest(discover(hr, SUPPORTED_SUFFIXES), hr, "acme", ["hr"]).documents == 1
    # The same file name and bytes as acme's report.md: indexed for globex, not "unchanged".
    assert docs.ingest(discover(globex, SUPPORTED_SUFFIXES), globex, "globex").documents == 2
    keys: dict[str, str] = {}
    for who, tenant, role, groups in (
        ("acme-reader", "acme", Role.READER, ()),
        ("acme-hr", "acme", Role.READER, ("hr",)),
        ("acme-ingestor", "acme", Role.INGESTOR, ()),
        ("acme-admin", "acme", Role.ADMIN, ()),
        ("globex-reader", "globex", Role.READER, ()),
        ("globex-ingestor", "globex", Role.INGESTOR, ()),
        ("revoked", "acme", Role.ADMIN, ("hr",)),
    ):
        record, keys[who] = ctx.keys.create(tenant, role, groups)
        if who == "revoked":
            assert ctx.keys.revoke(record.key_id)
    expired_at = datetime.now(UTC) - timedelta(days=2)
    with_clock = type(ctx.keys)(ctx.database_url, clock=lambda: expired_at)
    _, keys["expired"] = with_clock.create("acme", Role.ADMIN, ("hr",), expires_days=1)
    with_clock.close()
    ctx.close()
    with TestClient(create_app(settings)) as client:
        yield World(client, keys, settings)


ATTACKS: list[str] = []


def _attack(name: str) -> None:
    ATTACKS.append(name)


def _sources(body: dict[str, Any]) -> set[str]:
    if "hits" in body:
        return {h["source"] for h in body["hits"]}
    return {c["source"] for c in body["citations"]}


def _texts(body: dict[str, Any]) -> str:
    if "hits" in body:
        return " ".join(h["text"] for h in body["hits"])
    return body["answer"] + " ".join(c["quote"] for c in body["citations"])


READS = [
    ("POST", "/v1/search", {"query": "salary band for engineers"}),
    ("POST", "/v1/ask", {"question": "What is the salary band for engineers?"}),
    ("POST", "/v1/ask/stream", {"question": "What is the salary band for engineers?"}),
    ("GET", "/v1/documents", None),
]
WRITES = [
    ("GET", "/v1/jobs/" + "0" * 32, None),
    ("DELETE", "/v1/documents/report.md", None),
    ("GET", "/v1/keys", None),
    ("POST", "/v1/keys", {"tenant": "acme", "role": "admin"}),
    ("DELETE", "/v1/keys/abc", None),
]
ENDPOINTS = [*READS, *WRITES, ("POST", "/v1/documents", "upload")]


def _call(world: World, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    if body == "upload":
        files = [("files", ("note.md", b"# Note\n\nA note.\n", "text/markdown"))]
        return world.client.post(path, files=files, headers=headers)
    return world.client.request(method, path, json=body, headers=headers)


BAD_CREDENTIALS = {
    "none": {},
    "empty bearer": {"Authorization": "Bearer "},
    "basic scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    "random key": {"Authorization": f"Bearer rag_{uuid.uuid4().hex[:12]}_{'x' * 43}"},
    "garbage": {"Authorization": "Bearer ' OR 1=1 --"},
    "huge token": {"Authorization": "Bearer " + "a" * 20_000},
    "jwt alg none": {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJ0ZW5hbnQiOiJhY21lIn0."},
}


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("credential", [*BAD_CREDENTIALS, "revoked", "expired"])
def test_no_bad_or_dead_credential_gets_in(
    world: World, method: str, path: str, body: Any, credential: str
) -> None:
    _attack(f"{credential} -> {method} {path}")
    headers = world.auth(credential) if credential in world.keys else BAD_CREDENTIALS[credential]
    response = _call(world, method, path, body, headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    assert "salary" not in response.text
    assert "rag_" not in response.text


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    [
        *[("acme-reader", m, p, b) for m, p, b in [*WRITES, ("POST", "/v1/documents", "upload")]],
        *[("acme-ingestor", m, p, b) for m, p, b in WRITES if "keys" in p],
    ],
)
def test_roles_are_enforced(world: World, who: str, method: str, path: str, body: Any) -> None:
    _attack(f"role {who} -> {method} {path}")
    response = _call(world, method, path, body, world.auth(who))
    assert response.status_code == 403, response.text


@pytest.mark.parametrize(("method", "path", "body"), READS)
@pytest.mark.parametrize("who", ["acme-reader", "globex-reader", "acme-ingestor"])
def test_reads_never_leave_the_tenant_and_groups(
    world: World, method: str, path: str, body: dict[str, Any] | None, who: str
) -> None:
    _attack(f"group/tenant read {who} -> {path}")
    response = world.client.request(method, path, json=body, headers=world.auth(who))
    assert response.status_code == 200
    assert "ninety" not in response.text  # the HR-only passage never leaves the engine
    assert "salaries.md" not in response.text
    if who.startswith("globex"):  # acme's tenant-wide handbook is still acme's
        assert "Fridays" not in response.text
        assert "handbook.md" not in response.text
    else:
        assert "volcano" not in response.text
        assert "plans.md" not in response.text


def test_members_of_the_group_do_read_it(world: World) -> None:
    _attack("control: hr member reads hr")
    body = world.client.post(
        "/v1/search", json={"query": "salary band for engineers"}, headers=world.auth("acme-hr")
    ).json()
    assert "salaries.md" in _sources(body)


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("acme-reader", ["handbook.md", "report.md"]),
        ("acme-hr", ["handbook.md", "report.md", "salaries.md"]),
        ("acme-admin", ["handbook.md", "report.md", "salaries.md"]),
        ("globex-reader", ["plans.md", "report.md"]),
    ],
)
def test_the_document_list_shows_only_what_the_caller_may_read(
    world: World, who: str, expected: list[str]
) -> None:
    _attack(f"document list {who}")
    body = world.client.get("/v1/documents", headers=world.auth(who)).json()
    assert [d["source"] for d in body["documents"]] == expected
    assert body["total"] == len(expected)
    assert body["next_after"] is None
    for smuggled in ("?tenant=acme", "?access_groups=hr", "?groups=hr"):
        _attack(f"document list {who} {smuggled}")
        refused = world.client.get(f"/v1/documents{smuggled}", headers=world.auth(who))
        assert refused.status_code == 422
        assert "unknown query parameter" in refused.json()["detail"]
        assert "salaries" not in refused.text


def test_the_document_list_pages_in_source_order(world: World) -> None:
    first = world.client.get("/v1/documents?limit=2", headers=world.auth("acme-hr")).json()
    assert [d["source"] for d in first["documents"]] == ["handbook.md", "report.md"]
    assert first["next_after"] == "report.md"
    rest = world.client.get(
        "/v1/documents", params={"limit": 2, "after": "report.md"}, headers=world.auth("acme-hr")
    ).json()
    assert [d["source"] for d in rest["documents"]] == ["salaries.md"]
    assert rest["next_after"] is None
    by_offset = world.client.get(
        "/v1/documents", params={"limit": 2, "offset": 1}, headers=world.auth("acme-hr")
    ).json()
    assert [d["source"] for d in by_offset["documents"]] == ["report.md", "salaries.md"]
    assert by_offset["total"] == 3
    row = rest["documents"][0]
    assert row["access_groups"] == ["hr"]
    assert row["chunks"] >= 1
    assert row["state"] == "done"
    assert row["title"]
    assert row["ingested_at"].startswith("20")
    assert "embed=" in row["pipeline_version"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/search", {"query": "volcano lair", "filters": {"source": "plans.md"}}),
        ("/v1/ask", {"question": "What will Globex acquire?", "filters": {"source": "plans.md"}}),
        ("/v1/search", {"query": "acquire the volcano lair", "top_k": 100}),
    ],
)
def test_another_tenants_documents_cannot_be_reached_by_name(
    world: World, path: str, body: dict[str, Any]
) -> None:
    _attack(f"cross-tenant by name -> {path}")
    response = world.client.post(path, json=body, headers=world.auth("acme-reader"))
    assert response.status_code == 200
    assert "volcano" not in response.text
    assert "plans.md" not in _sources(response.json())


@pytest.mark.parametrize(
    "filters",
    [
        {"tenant": "globex"},
        {"access_groups": ["hr"]},
        {"meta.tenant": "globex"},
        {"meta.access_groups": ["hr"]},
        {"chunk_id": "x"},
        {"": "x"},
        {"source": 10**30},
        {"page": -(10**40)},
        {"meta": "x"},
        {"tenant ": "globex"},
    ],
)
@pytest.mark.parametrize("path", ["/v1/search", "/v1/ask", "/v1/ask/stream"])
def test_filters_cannot_widen_the_scope(world: World, path: str, filters: dict[str, Any]) -> None:
    _attack(f"filter {list(filters)} -> {path}")
    key = "query" if path == "/v1/search" else "question"
    response = world.client.post(
        path, json={key: "salary band", "filters": filters}, headers=world.auth("acme-reader")
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "ninety" not in response.text


@pytest.mark.parametrize("path", ["/v1/search", "/v1/ask", "/v1/ask/stream"])
def test_the_body_may_narrow_but_never_widen(world: World, path: str) -> None:
    key = "query" if path == "/v1/search" else "question"
    for body, status in (
        ({"tenant": "globex"}, 403),
        ({"access_groups": ["hr"]}, 403),  # acme-reader is not in hr
        ({"access_groups": ["*"]}, 422),  # the store's "whole tenant" marker is no name
    ):
        if "tenant" in body and path == "/v1/search":
            continue  # search has no tenant field: extra fields are ignored, scope unchanged
        _attack(f"body {body} -> {path}")
        response = world.client.post(
            path, json={key: "salary band", **body}, headers=world.auth("acme-reader")
        )
        assert response.status_code == status, response.text
    _attack(f"narrow hr member to no group -> {path}")
    narrowed = world.client.post(
        path, json={key: "salary band", "access_groups": []}, headers=world.auth("acme-hr")
    )
    assert narrowed.status_code == 200
    assert "ninety" not in narrowed.text


def test_search_ignores_a_tenant_in_the_body(world: World) -> None:
    _attack("search body tenant")
    response = world.client.post(
        "/v1/search",
        json={"query": "volcano lair acquire", "tenant": "globex"},
        headers=world.auth("acme-reader"),
    )
    assert response.status_code == 200
    assert "volcano" not in response.text


def _wait(world: World, who: str, url: str) -> dict[str, Any]:
    import time

    end = time.monotonic() + 60
    while time.monotonic() < end:
        body: dict[str, Any] = world.client.get(url, headers=world.auth(who)).json()
        if body.get("state") not in ("queued", "running"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"job {url} did not finish")


def test_uploads_jobs_and_deletes_stay_in_the_tenant(world: World) -> None:
    client = world.client
    _attack("upload with another tenant in the form")
    forged = client.post(
        "/v1/documents",
        files=[("files", ("report.md", b"# Forged\n\nGlobex was here.\n", "text/markdown"))],
        data={"tenant": "acme"},
        headers=world.auth("globex-ingestor"),
    )
    assert forged.status_code == 403

    _attack("upload into a group the uploader is not in")
    grouped = client.post(
        "/v1/documents",
        files=[("files", ("x.md", b"# X\n\nx marks the spot.\n", "text/markdown"))],
        data={"access_groups": ["hr"]},
        headers=world.auth("acme-ingestor"),
    )
    assert grouped.status_code == 403

    _attack("overwrite a group-restricted document by name")
    overwrite = client.post(
        "/v1/documents",
        files=[("files", ("salaries.md", b"# Salaries\n\nEveryone earns one.\n", "text/md"))],
        headers=world.auth("acme-ingestor"),
    )
    assert overwrite.status_code == 403

    _attack("same file name in two tenants: globex replaces its own report.md")
    accepted = client.post(
        "/v1/documents",
        files=[("files", ("report.md", b"# Report\n\nGlobex revenue fell by two percent.\n", "t"))],
        headers=world.auth("globex-ingestor"),
    )
    assert accepted.status_code == 202, accepted.text
    job_url = accepted.json()["status_url"]
    assert _wait(world, "globex-ingestor", job_url)["state"] == "succeeded"
    globex = client.post(
        "/v1/search", json={"query": "revenue"}, headers=world.auth("globex-reader")
    ).text
    acme = client.post(
        "/v1/search", json={"query": "revenue"}, headers=world.auth("acme-reader")
    ).text
    assert "fell by two percent" in globex
    assert "widget" not in globex
    assert "widget" in acme
    assert "fell by two percent" not in acme

    _attack("another tenant's job id")
    assert client.get(job_url, headers=world.auth("acme-ingestor")).status_code == 404
    _attack("malformed job ids")
    for job_id in ("../../etc/passwd", "x" * 5000, "%00", "0" * 32):
        assert (
            client.get(f"/v1/jobs/{job_id}", headers=world.auth("globex-ingestor")).status_code
            == 404
        )

    _attack("delete another tenant's document by name")
    assert (
        client.delete(
            "/v1/documents/handbook.md", headers=world.auth("globex-ingestor")
        ).status_code
        == 404
    )
    _attack("delete a group-restricted document without the group")
    assert (
        client.delete("/v1/documents/salaries.md", headers=world.auth("acme-ingestor")).status_code
        == 404
    )
    still = client.post(
        "/v1/search", json={"query": "work from home Fridays"}, headers=world.auth("acme-reader")
    )
    assert "handbook.md" in _sources(still.json())
    _attack("delete the shared name: only the caller's copy goes")
    assert (
        client.delete("/v1/documents/report.md", headers=world.auth("globex-ingestor")).status_code
        == 204
    )
    acme_after = client.post(
        "/v1/search", json={"query": "revenue widget"}, headers=world.auth("acme-reader")
    )
    assert "report.md" in _sources(acme_after.json())
    assert not list((world.settings.data_dir / "uploads").glob("*/*"))  # no copies left


def test_keys_are_shown_once_and_never_listed(world: World) -> None:
    _attack("key listing leaks no secret")
    listed = world.client.get("/v1/keys", headers=world.auth("acme-admin"))
    assert listed.status_code == 200
    for token in world.keys.values():
        assert token not in listed.text
        assert token[len("rag_") + 13 :] not in listed.text  # the secret part


def test_the_answer_cache_never_crosses_tenants_or_groups(world: World, tmp_path: Path) -> None:
    """The same question from another tenant or group is a miss, answered from its own
    documents; re-ingesting one tenant's report.md leaves the other's cached answers."""
    from gateway.cache import SemanticCache
    from retrieval.service import RagService
    from store.edge import EdgeStore

    ctx: Any = world.client.app.state.context  # type: ignore[attr-defined]
    cache = SemanticCache(EdgeStore(tmp_path, "cache"), ctx.embedder, 0.9, 3600)
    service = RagService(ctx.retriever(ctx.store), GroundedLlm(), cache, corpus="c")
    question = "What does the report say about revenue?"
    for who in ("acme", "globex", "acme|hr"):
        tenant, _, group = who.partition("|")
        _attack(f"cache collision {who}")
        context = RequestContext(tenant, (group,) if group else ())
        first = service.ask(question, context=context)
        assert first.provenance is not None
        assert first.provenance.rung == "llm", who
        again = service.ask(question, context=context)
        assert again.provenance is not None
        assert again.provenance.rung == "cache", who
    cache.invalidate(["globex/report.md"])
    acme = service.ask(question, context=RequestContext("acme"))
    assert acme.provenance is not None
    assert acme.provenance.rung == "cache"
    cache.close()


def test_zz_attack_count(world: World) -> None:
    """Runs last in this module: the number of attack cases, for the closing note."""
    print(f"\nisolation attacks: {len(ATTACKS)} cases, all refused or scoped")
    assert len(ATTACKS) >= 100
