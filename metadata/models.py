"""The metadata tables, as SQLAlchemy 2.0 models on one declarative base.

The models describe the schema at the head revision; the revisions in `migrations/`
are what builds it (a test compares the two). Times are naive UTC: the one convention
SQLite and PostgreSQL read the same way. Lists (chunk ids, groups, documents) are JSON
text, so one column type serves both databases.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class DocumentRow(Base):
    """The ingest manifest: one row per document (tenant + source) of a collection."""

    __tablename__ = "documents"
    __table_args__ = (
        sa.CheckConstraint("state IN ('pending', 'done')", name="ck_documents_state"),
    )

    collection: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(1024), primary_key=True)
    content_hash: Mapped[str] = mapped_column(sa.String(128))
    chunk_ids: Mapped[str] = mapped_column(sa.Text())  # a JSON list
    state: Mapped[str] = mapped_column(sa.String(16))
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(), index=True)
    title: Mapped[str | None] = mapped_column(sa.Text(), nullable=True)
    # `,a,b,` (sorted), '' for the whole tenant, NULL when unknown (rows of an old release).
    access_groups: Mapped[str | None] = mapped_column(sa.Text(), nullable=True)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(sa.String(12), primary_key=True)
    tenant: Mapped[str] = mapped_column(sa.String(64), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    access_groups: Mapped[str] = mapped_column(sa.Text(), default="[]")  # a JSON list
    secret_hash: Mapped[str] = mapped_column(sa.String(64))  # hex SHA-256 of the secret
    last4: Mapped[str] = mapped_column(sa.String(4))  # lets a person match a key they hold
    created_at: Mapped[datetime] = mapped_column(sa.DateTime())
    expires_at: Mapped[datetime | None] = mapped_column(sa.DateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(), nullable=True)


class LedgerRow(Base):
    """The cost ledger: one row per answered request."""

    __tablename__ = "llm_ledger"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(sa.DateTime(), index=True)
    tenant: Mapped[str] = mapped_column(sa.String(128), index=True)
    model: Mapped[str] = mapped_column(sa.String(128))
    rung: Mapped[str] = mapped_column(sa.String(32))
    input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    cost_usd: Mapped[float] = mapped_column(sa.Float(), default=0.0)
    saved_usd: Mapped[float] = mapped_column(sa.Float(), default=0.0)
    saved_tokens: Mapped[int] = mapped_column(default=0)
    latency_ms: Mapped[float] = mapped_column(sa.Float(), default=0.0)
    route: Mapped[str] = mapped_column(sa.Text(), default="")


class AuditRow(Base):
    """One hash-chained audit record (governance/audit.py)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(sa.BigInteger(), primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(sa.DateTime(), index=True)
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    principal: Mapped[str] = mapped_column(sa.String(128))
    tenant: Mapped[str | None] = mapped_column(sa.String(128), index=True, nullable=True)
    documents: Mapped[str] = mapped_column(sa.Text(), default="[]")  # a JSON list
    model: Mapped[str] = mapped_column(sa.String(128), default="")
    route: Mapped[str] = mapped_column(sa.Text(), default="")
    cost_usd: Mapped[float] = mapped_column(sa.Float(), default=0.0)
    outcome: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[str] = mapped_column(sa.Text(), default="{}")  # a JSON object
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class ChainRow(Base):
    """The audit chain's two ends: where it starts (after retention cut its oldest
    records) and its head. Appends lock this row."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    first_seq: Mapped[int] = mapped_column(sa.BigInteger())
    first_prev: Mapped[str] = mapped_column(sa.String(64))
    head_seq: Mapped[int] = mapped_column(sa.BigInteger())
    head_hash: Mapped[str] = mapped_column(sa.String(64))


class LegacyImportRow(Base):
    """A SQLite file of the release before that was copied in (legacy.py): once each."""

    __tablename__ = "legacy_imports"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    imported_at: Mapped[datetime] = mapped_column(sa.DateTime())
    rows: Mapped[int] = mapped_column(default=0)
