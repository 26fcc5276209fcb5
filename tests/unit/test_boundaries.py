"""The rooms stay apart: the query side never imports the ingest side (nor the other way
round), and the store and the core import neither, so a fork can replace one alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imported_packages(package: str) -> set[tuple[str, str]]:
    """(file, top-level package) for every import in `package`, lazy ones included."""
    found: set[tuple[str, str]] = set()
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update((path.relative_to(ROOT).as_posix(), n.split(".")[0]) for n in names)
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("retrieval", {"ingest"}),
        ("ingest", {"retrieval"}),
        ("store", {"ingest", "retrieval"}),
        ("core", {"ingest", "retrieval", "store"}),
        ("governance", {"api", "ingest", "retrieval"}),
    ],
)
def test_a_room_does_not_reach_into_its_neighbours(package: str, forbidden: set[str]) -> None:
    offenders = sorted(f"{f} imports {p}" for f, p in _imported_packages(package) if p in forbidden)
    assert offenders == []
