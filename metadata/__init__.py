"""The metadata database: one SQLAlchemy schema, migrated by Alembic, for everything the
template records beside the vectors.

    models.py      the tables (manifest documents, API keys, cost ledger, audit log)
    database.py    engines (SQLite pragmas), `upgrade` / `downgrade` to an Alembic revision
    legacy.py      imports the per-feature SQLite files of the release before (once)
    migrations/    Alembic's environment and revisions

SQLite under `data_dir` by default, PostgreSQL in production: one `RAG_DATABASE_URL`
(docs/adr/0026-one-metadata-database.md). The stores that read and write these tables
live beside their features (`ingest/manifest.py`, `auth/keys.py`, `gateway/ledger.py`,
`governance/audit.py`); this package owns only the schema and its history.
"""
