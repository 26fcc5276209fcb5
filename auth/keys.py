"""API keys: created by an admin (`rag keys create`), shown once, stored as a hash.

A key reads `rag_<key_id>_<secret>`: `key_id` (12 hex characters) is public, names the row
and may appear in logs and listings; `secret` (32 random bytes, URL-safe base64) is never
stored, only its SHA-256. The table `api_keys` lives in the metadata database
(`metadata.models.ApiKeyRow`, migrated by Alembic): SQLite under `data_dir` by default,
PostgreSQL by `RAG_DATABASE_URL`. Times are stored as naive UTC, like the cost ledger.

Every rejection (malformed, unknown, wrong secret, revoked, expired) raises the same
`AuthenticationError`; the specific reason is logged at INFO, without the secret.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from core.errors import AuthenticationError, InvalidRequestError, LedgerError
from core.types import Principal, Role, check_name
from metadata.database import create_engine, upgrade
from metadata.models import ApiKeyRow

logger = logging.getLogger(__name__)

#: The one message a caller sees, whatever was wrong with the key.
REJECTED = "invalid, revoked or expired API key"
KEY_PREFIX = "rag_"
_TOKEN = re.compile(r"rag_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_TOKEN_CHARS = len(KEY_PREFIX) + 12 + 1 + 43
#: Compared against when the key id is unknown, so that path costs what a wrong secret costs.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as listed: everything but the secret. Times are aware UTC."""

    key_id: str
    tenant: str
    role: Role
    access_groups: tuple[str, ...]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    #: The secret's last 4 characters, to tell keys apart (24 of its 256 bits).
    last4: str = ""

    def active_at(self, moment: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or moment < self.expires_at)

    @property
    def active(self) -> bool:
        """Not revoked and not expired, now."""
        return self.active_at(datetime.now(UTC))


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _aware(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(tzinfo=UTC)


def _hash(secret: str) -> str:
    # A fast hash is right here: the secret is 256 random bits, so there is nothing for a
    # slow hash (bcrypt, argon2) to protect against a dictionary; it would only add tens of
    # milliseconds to every request. SHA-256 of a stolen table reveals no usable key.
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _rejected(reason: str, key_id: str | None) -> AuthenticationError:
    """The one error a caller sees; the reason goes to the log only."""
    logger.info("API key rejected (%s): key id %s", reason, key_id or "-")
    return AuthenticationError(REJECTED)


def _record(row: ApiKeyRow) -> ApiKey:
    created = _aware(row.created_at)
    assert created is not None
    return ApiKey(
        key_id=row.key_id,
        tenant=row.tenant,
        role=Role(row.role),
        access_groups=tuple(json.loads(row.access_groups)),
        created_at=created,
        expires_at=_aware(row.expires_at),
        revoked_at=_aware(row.revoked_at),
        last4=row.last4,
    )


class KeyStore:
    """API keys on the metadata database (brought to the schema's head on open).

    Database failures raise `LedgerError`. `clock` (aware UTC) is for tests of expiry.
    """

    def __init__(self, url: str, clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock
        upgrade(url)
        # synchronous=NORMAL, as the cost ledger: key checks read while a write runs.
        self._engine = create_engine(url, synchronous="NORMAL")

    def create(
        self,
        tenant: str,
        role: Role,
        access_groups: Sequence[str] = (),
        expires_days: int | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key and its token; the token is shown once and cannot be recovered."""
        check_name("tenant", tenant)
        groups = sorted({check_name("group", g) for g in access_groups})
        if expires_days is not None and expires_days < 1:
            raise InvalidRequestError("expires_days must be at least 1 (or none: no expiry)")
        now = _naive(self._clock())
        expires = now + timedelta(days=expires_days) if expires_days is not None else None
        # 48-bit ids: a clash is unlikely but possible in a large table; draw again.
        for attempt in range(3):
            key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
            row = ApiKeyRow(
                key_id=key_id,
                tenant=tenant,
                role=Role(role).value,
                access_groups=json.dumps(groups),
                secret_hash=_hash(secret),
                last4=secret[-4:],
                created_at=now,
                expires_at=expires,
                revoked_at=None,
            )
            try:
                with Session(self._engine, expire_on_commit=False) as session, session.begin():
                    session.add(row)
            except IntegrityError as exc:
                if attempt == 2:
                    raise LedgerError(f"cannot store a new API key: {exc}") from exc
                continue
            except SQLAlchemyError as exc:
                raise LedgerError(f"cannot store a new API key: {exc}") from exc
            return _record(row), f"{KEY_PREFIX}{key_id}_{secret}"
        raise AssertionError("unreachable")  # pragma: no cover

    def list(self) -> builtins.list[ApiKey]:
        """Every key, newest first, without secrets (or their hashes)."""
        query = sa.select(ApiKeyRow).order_by(ApiKeyRow.created_at.desc(), ApiKeyRow.key_id)
        try:
            with Session(self._engine) as session:
                return [_record(row) for row in session.scalars(query)]
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot list API keys: {exc}") from exc

    def revoke(self, key_id: str) -> bool:
        """Revoke a key for good; True if it exists (revoking twice keeps the first time)."""
        try:
            with Session(self._engine) as session, session.begin():
                row = session.get(ApiKeyRow, key_id)
                if row is None:
                    return False
                if row.revoked_at is None:
                    row.revoked_at = _naive(self._clock())
                    logger.info("API key %s of tenant %s revoked", key_id, row.tenant)
                return True
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot revoke API key {key_id}: {exc}") from exc

    def authenticate(self, token: str) -> Principal:
        """The principal a token stands for, or `AuthenticationError` (one message for all)."""
        match = _TOKEN.fullmatch(token) if len(token) == _TOKEN_CHARS else None
        if match is None:
            # Never log the token: it may be a real secret pasted with a typo.
            raise _rejected("malformed token", None)
        key_id, secret = match.groups()
        try:
            with Session(self._engine) as session:
                row = session.get(ApiKeyRow, key_id)
        except SQLAlchemyError as exc:
            raise LedgerError(f"cannot check API key {key_id}: {exc}") from exc
        # Compare in constant time, and compare even when the id is unknown: beyond the
        # lookup itself, an unknown id and a wrong secret take the same path.
        good = hmac.compare_digest(_hash(secret), row.secret_hash if row else _DUMMY_HASH)
        if row is None:
            raise _rejected("unknown key id", key_id)
        if not good:
            raise _rejected("wrong secret", key_id)
        if row.revoked_at is not None:
            raise _rejected("revoked", key_id)
        if row.expires_at is not None and _naive(self._clock()) >= row.expires_at:
            raise _rejected("expired", key_id)
        return Principal(
            tenant=row.tenant,
            role=Role(row.role),
            access_groups=tuple(json.loads(row.access_groups)),
            key_id=key_id,
        )

    def ping(self) -> None:
        """One round trip to the database (readiness); raises `LedgerError`."""
        try:
            with self._engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise LedgerError(f"the key store's database does not answer: {exc}") from exc

    def close(self) -> None:
        self._engine.dispose()
