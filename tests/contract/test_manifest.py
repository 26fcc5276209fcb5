"""The `Manifest` port's contract on every metadata database: SQLite and PostgreSQL.

A write is `begin` (pending) then `commit` (done); rows are scoped to one collection and
keyed by tenant + source; listings page in source order and show a non-admin only the
documents open to the whole tenant or to one of its groups (group names never act as
LIKE patterns); retention finds rows by age; `remove` erases one row.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from core.ports import Manifest
from ingest.manifest import SqlManifest

pytestmark = pytest.mark.integration


@pytest.fixture
def url(metadata_url: str) -> str:
    return metadata_url


@pytest.fixture
def manifest(url: str) -> Iterator[Manifest]:
    manifest = SqlManifest(url, "c")
    yield manifest
    manifest.close()


def test_a_write_is_pending_until_committed(manifest: Manifest) -> None:
    assert isinstance(manifest, Manifest)
    assert manifest.get("acme", "a.md") is None
    manifest.begin("acme", "a.md", "h1", ["x", "y"])
    pending = manifest.get("acme", "a.md")
    assert pending is not None
    assert (pending.state, pending.content_hash, pending.chunk_ids) == ("pending", "h1", ("x", "y"))
    manifest.commit("acme", "a.md", "h2", ["z"], "A", ["hr"])
    done = manifest.get("acme", "a.md")
    assert done is not None
    assert (done.state, done.content_hash, done.chunk_ids) == ("done", "h2", ("z",))


def test_rows_belong_to_a_tenant_and_a_collection(url: str, manifest: Manifest) -> None:
    manifest.commit("acme", "same.md", "h", ["a"])
    manifest.commit("globex", "same.md", "g", ["b"])
    other = SqlManifest(url, "other-collection")
    try:
        assert other.get("acme", "same.md") is None
        other.commit("acme", "only-here.md", "o", ["c"])
    finally:
        other.close()
    assert [r.source for r in manifest.sources("acme")] == ["same.md"]
    record = manifest.get("globex", "same.md")
    assert record is not None
    assert record.content_hash == "g"


def test_listing_pages_in_source_order_and_trims_by_readers(manifest: Manifest) -> None:
    manifest.commit("acme", "b.md", "h", ["1", "2"], "B", [])
    manifest.commit("acme", "a.md", "h", ["1"], "A", ["hr", "legal"])
    manifest.commit("acme", "c.md", "h", ["1"], None, ["eng"])
    manifest.commit("globex", "z.md", "h", ["1"])
    rows, total = manifest.page("acme", None, None, 2)
    assert total == 3
    assert [(r.source, r.title, r.chunks, r.state) for r in rows] == [
        ("a.md", "A", 1, "done"),
        ("b.md", "B", 2, "done"),
    ]
    assert rows[0].access_groups == ("hr", "legal")
    assert rows[1].access_groups == ()
    assert datetime.fromisoformat(rows[0].updated_at).tzinfo is not None
    rest, _ = manifest.page("acme", None, "b.md", 2)
    assert [r.source for r in rest] == ["c.md"]
    legal, legal_total = manifest.page("acme", ["legal"], None, 10)
    assert ([r.source for r in legal], legal_total) == (["a.md", "b.md"], 2)
    nobody, _ = manifest.page("acme", [], None, 10)
    assert [r.source for r in nobody] == ["b.md"]


@pytest.mark.parametrize("group", ["a_b", "a%", "x,y"])
def test_group_names_cannot_act_as_patterns(manifest: Manifest, group: str) -> None:
    """`_` and `%` are LIKE wildcards: a reader of `a_b` must not see group `axb`'s rows."""
    manifest.commit("acme", "secret.md", "h", ["x"], "Secret", ["axb", "abc", "y"])
    assert manifest.page("acme", [group], None, 10) == ([], 0)


def test_retention_finds_old_rows_and_remove_erases_one(manifest: Manifest) -> None:
    manifest.commit("acme", "a.md", "h", ["x"])
    manifest.commit("globex", "b.md", "h", ["y"])
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert manifest.older_than(later) == [("acme", "a.md"), ("globex", "b.md")]
    assert manifest.older_than(later - timedelta(hours=1)) == []
    manifest.remove("acme", "a.md")
    assert manifest.get("acme", "a.md") is None
    assert manifest.older_than(later) == [("globex", "b.md")]
