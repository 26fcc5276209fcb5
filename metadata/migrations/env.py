"""Alembic's environment: always online, on the connection `metadata.database` hands over
(there is no alembic.ini: the URL comes from the settings, never from a file)."""

from __future__ import annotations

from alembic import context

from metadata.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters a table by copying it: Alembic's batch mode
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
