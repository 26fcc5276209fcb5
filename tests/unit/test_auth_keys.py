"""API keys on SQLite: created once, checked, listed without secrets, revoked, expired."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from auth.keys import REJECTED, KeyStore
from core.errors import AuthenticationError, InvalidRequestError, LedgerError
from core.types import Principal, Role


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'metadata.sqlite3'}"


@pytest.fixture
def store(url: str, clock: Clock) -> Iterator[KeyStore]:
    keys = KeyStore(url, clock=clock)
    yield keys
    keys.close()


def test_a_created_key_authenticates_as_its_principal(store: KeyStore) -> None:
    key, token = store.create("acme", Role.INGESTOR, ["legal", "hr", "legal"])
    assert token.startswith(f"rag_{key.key_id}_")
    assert len(key.key_id) == 12
    assert int(key.key_id, 16) >= 0
    assert (key.tenant, key.role, key.access_groups) == ("acme", Role.INGESTOR, ("hr", "legal"))
    assert key.active
    assert key.created_at.tzinfo is not None
    assert store.authenticate(token) == Principal(
        "acme", Role.INGESTOR, ("hr", "legal"), key.key_id
    )


def test_every_key_gets_its_own_id_and_secret(store: KeyStore) -> None:
    tokens = [store.create("acme", Role.READER)[1] for _ in range(5)]
    assert len(set(tokens)) == 5
    assert len({t.split("_")[1] for t in tokens}) == 5


def test_list_shows_every_key_without_its_secret(store: KeyStore) -> None:
    made = [store.create(t, Role.READER) for t in ("acme", "globex")]
    listed = store.list()
    assert {k.key_id for k in listed} == {k.key_id for k, _ in made}
    text = repr(listed)
    for _, token in made:
        secret = token.split("_", 2)[2]
        assert secret not in text
        assert hashlib.sha256(secret.encode()).hexdigest() not in text
        assert any(k.last4 == secret[-4:] for k in listed)


def test_the_stored_row_holds_a_hash_never_the_secret(store: KeyStore, url: str) -> None:
    key, token = store.create("acme", Role.ADMIN)
    secret = token.split("_", 2)[2]
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        row = connection.execute(sa.text("SELECT * FROM api_keys")).mappings().one()
    engine.dispose()
    assert token not in str(dict(row))
    assert secret not in str(dict(row))
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert row["key_id"] == key.key_id


def test_a_revoked_key_is_refused_and_revoking_twice_is_harmless(
    store: KeyStore, clock: Clock
) -> None:
    key, token = store.create("acme", Role.READER)
    assert store.revoke(key.key_id)
    first = store.list()[0].revoked_at
    clock.now += timedelta(hours=1)
    assert store.revoke(key.key_id)
    assert store.list()[0].revoked_at == first == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    assert not store.list()[0].active
    with pytest.raises(AuthenticationError, match=REJECTED):
        store.authenticate(token)
    assert not store.revoke("0123456789ab")


def test_a_key_expires_after_its_days(store: KeyStore, clock: Clock) -> None:
    key, token = store.create("acme", Role.READER, expires_days=30)
    assert key.expires_at == clock.now + timedelta(days=30)
    clock.now += timedelta(days=29, hours=23)
    assert store.authenticate(token).key_id == key.key_id
    clock.now += timedelta(hours=1)
    with pytest.raises(AuthenticationError, match=REJECTED):
        store.authenticate(token)
    assert not store.list()[0].active_at(clock.now)


def test_a_wrong_secret_for_a_real_key_id_is_refused_like_any_other(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    key, token = store.create("acme", Role.ADMIN)
    forged = f"rag_{key.key_id}_{'A' * 43}"
    unknown = f"rag_{'f' * 12}_{token[-43:]}"
    caplog.set_level(logging.INFO, logger="auth.keys")
    messages = []
    for bad in (forged, unknown):
        with pytest.raises(AuthenticationError) as refused:
            store.authenticate(bad)
        messages.append(str(refused.value))
    assert messages == [REJECTED, REJECTED]
    assert "wrong secret" in caplog.text
    assert "unknown key id" in caplog.text
    assert token[-43:] not in caplog.text
    assert "A" * 43 not in caplog.text


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-key",
        "Bearer rag_0123456789ab_" + "a" * 43,
        "0123456789ab_" + "a" * 43,
        "rag_0123456789AB_" + "a" * 43,  # upper-case hex
        "rag_0123456789ab_" + "a" * 42,  # one character short
        "rag_0123456789ab_" + "a" * 42 + "é",
        "rag_0123456789ab_" + "a" * 42 + "\x00",
        "rag_0123456789ab\x00" + "a" * 43,
        "rag_" + "x" * 100_000,
        "rag_\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662_" + "a" * 43,
    ],
    ids=["empty", "no-prefix", "scheme", "bare", "upper", "short", "unicode", "nul", "nul-sep",
         "huge", "arabic-digits"],
)  # fmt: skip
def test_malformed_tokens_are_refused_with_the_same_message(store: KeyStore, token: str) -> None:
    with pytest.raises(AuthenticationError) as refused:
        store.authenticate(token)
    assert str(refused.value) == REJECTED


def test_names_are_checked_when_a_key_is_created(store: KeyStore) -> None:
    with pytest.raises(InvalidRequestError):
        store.create("acme/evil", Role.READER)
    with pytest.raises(InvalidRequestError):
        store.create("acme", Role.READER, ["*"])
    with pytest.raises(InvalidRequestError):
        store.create("acme", Role.READER, expires_days=0)
    assert store.list() == []


def test_database_failures_become_ledger_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gone.sqlite3'}"
    store = KeyStore(url)
    _, token = store.create("acme", Role.READER)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE api_keys"))
    engine.dispose()
    try:
        with pytest.raises(LedgerError):
            store.authenticate(token)
        with pytest.raises(LedgerError):
            store.list()
        with pytest.raises(LedgerError):
            store.revoke("0123456789ab")
        with pytest.raises(LedgerError):
            store.create("acme", Role.READER)
    finally:
        store.close()
