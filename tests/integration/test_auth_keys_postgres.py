"""API keys on the real PostgreSQL (127.0.0.1:5432, trust auth), in a throwaway schema.

Skips with a reason where no PostgreSQL runs; under CI (CI=true) it must run, never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from auth.keys import REJECTED, KeyStore
from core.errors import AuthenticationError
from core.types import Principal, Role
from tests.services import postgres_schema

pytestmark = pytest.mark.integration


@pytest.fixture
def schema_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards."""
    with postgres_schema("keys") as url:
        yield url


def test_the_key_lifecycle_on_postgresql(schema_url: str) -> None:
    now = [datetime(2026, 11, 27, 9, 0, tzinfo=UTC)]
    store = KeyStore(schema_url, clock=lambda: now[0])
    try:
        key, token = store.create("acme", Role.INGESTOR, ["legal"], expires_days=7)
        other, other_token = store.create("globex", Role.READER)
        assert store.authenticate(token) == Principal("acme", Role.INGESTOR, ("legal",), key.key_id)
        assert store.authenticate(other_token).tenant == "globex"
        listed = {k.key_id: k for k in store.list()}
        assert listed[key.key_id].expires_at == now[0] + timedelta(days=7)
        assert listed[key.key_id].created_at == now[0]
        assert token.split("_", 2)[2] not in repr(listed)

        with pytest.raises(AuthenticationError, match=REJECTED):
            store.authenticate(f"rag_{key.key_id}_{'B' * 43}")
        assert store.revoke(other.key_id)
        assert store.revoke(other.key_id)
        assert not store.revoke("0123456789ab")
        with pytest.raises(AuthenticationError, match=REJECTED):
            store.authenticate(other_token)
        now[0] += timedelta(days=7)
        with pytest.raises(AuthenticationError, match=REJECTED):
            store.authenticate(token)
        assert [k.active_at(now[0]) for k in store.list()] == [False, False]
    finally:
        store.close()


def test_the_row_holds_no_secret_on_postgresql(schema_url: str) -> None:
    store = KeyStore(schema_url)
    try:
        _, token = store.create("acme", Role.ADMIN)
    finally:
        store.close()
    engine = sa.create_engine(schema_url)
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT * FROM api_keys")).mappings().one()
    engine.dispose()
    assert token.split("_", 2)[2] not in str(dict(row))
