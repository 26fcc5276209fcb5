"""What the contract suites share: the metadata databases every port on SQLAlchemy runs on.

PostgreSQL is the real server at 127.0.0.1:5432 (a throwaway schema per test); without one
its cases skip with the reason, and under CI (CI=true) they fail instead. A fork that adds
a database adds one param here, and every metadata contract runs on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.sqlite3'}"
        return
    with postgres_schema("contract") as url:
        yield url
