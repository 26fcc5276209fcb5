"""The metadata schema: manifest documents, API keys, cost ledger, audit log and chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

The release before Alembic made `api_keys`, `llm_ledger`, `audit_log` and `audit_chain`
with SQLAlchemy's `create_all`, with these very columns: a table that exists is adopted
as it is, so a database of that release upgrades in place (the manifest's rows, which
lived in their own SQLite file, are copied by `metadata.legacy`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _absent(table: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(table)


def upgrade() -> None:
    if _absent("documents"):
        op.create_table(
            "documents",
            sa.Column("collection", sa.String(255), primary_key=True),
            sa.Column("tenant", sa.String(128), primary_key=True),
            sa.Column("source", sa.String(1024), primary_key=True),
            sa.Column("content_hash", sa.String(128), nullable=False),
            sa.Column("chunk_ids", sa.Text(), nullable=False),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("updated_at", sa.DateTime(), nullable=False),
            sa.Column("title", sa.Text(), nullable=True),
            sa.Column("access_groups", sa.Text(), nullable=True),
            sa.CheckConstraint("state IN ('pending', 'done')", name="ck_documents_state"),
        )
        op.create_index("ix_documents_updated_at", "documents", ["updated_at"])
    if _absent("api_keys"):
        op.create_table(
            "api_keys",
            sa.Column("key_id", sa.String(12), primary_key=True),
            sa.Column("tenant", sa.String(64), nullable=False),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("access_groups", sa.Text(), nullable=False),
            sa.Column("secret_hash", sa.String(64), nullable=False),
            sa.Column("last4", sa.String(4), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            sa.Column("expires_at", sa.DateTime(), nullable=True),
            sa.Column("revoked_at", sa.DateTime(), nullable=True),
        )
        op.create_index("ix_api_keys_tenant", "api_keys", ["tenant"])
    if _absent("llm_ledger"):
        op.create_table(
            "llm_ledger",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("tenant", sa.String(128), nullable=False),
            sa.Column("model", sa.String(128), nullable=False),
            sa.Column("rung", sa.String(32), nullable=False),
            sa.Column("input_tokens", sa.Integer(), nullable=False),
            sa.Column("output_tokens", sa.Integer(), nullable=False),
            sa.Column("cost_usd", sa.Float(), nullable=False),
            sa.Column("saved_usd", sa.Float(), nullable=False),
            sa.Column("saved_tokens", sa.Integer(), nullable=False),
            sa.Column("latency_ms", sa.Float(), nullable=False),
            sa.Column("route", sa.Text(), nullable=False),
        )
        op.create_index("ix_llm_ledger_at", "llm_ledger", ["at"])
        op.create_index("ix_llm_ledger_tenant", "llm_ledger", ["tenant"])
    if _absent("audit_log"):
        op.create_table(
            "audit_log",
            sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
            sa.Column("at", sa.DateTime(), nullable=False),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("principal", sa.String(128), nullable=False),
            sa.Column("tenant", sa.String(128), nullable=True),
            sa.Column("documents", sa.Text(), nullable=False),
            sa.Column("model", sa.String(128), nullable=False),
            sa.Column("route", sa.Text(), nullable=False),
            sa.Column("cost_usd", sa.Float(), nullable=False),
            sa.Column("outcome", sa.String(32), nullable=False),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.Column("prev_hash", sa.String(64), nullable=False),
            sa.Column("hash", sa.String(64), nullable=False),
        )
        op.create_index("ix_audit_log_at", "audit_log", ["at"])
        op.create_index("ix_audit_log_action", "audit_log", ["action"])
        op.create_index("ix_audit_log_tenant", "audit_log", ["tenant"])
    if _absent("audit_chain"):
        op.create_table(
            "audit_chain",
            sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("first_seq", sa.BigInteger(), nullable=False),
            sa.Column("first_prev", sa.String(64), nullable=False),
            sa.Column("head_seq", sa.BigInteger(), nullable=False),
            sa.Column("head_hash", sa.String(64), nullable=False),
        )
    op.create_table(
        "legacy_imports",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in ("legacy_imports", "audit_chain", "audit_log", "llm_ledger", "api_keys"):
        op.drop_table(table)
    op.drop_table("documents")  # its indexes go with it
