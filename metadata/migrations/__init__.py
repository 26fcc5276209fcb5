"""Alembic's environment and the schema's revisions (run by `metadata.database.upgrade`)."""
