"""docs/adr/README.md indexes every ADR, as each file states its number, title and status."""

from __future__ import annotations

import re

from tests.conftest import PROJECT_ROOT

ADR_DIR = PROJECT_ROOT / "docs" / "adr"
INDEX = ADR_DIR / "README.md"
_ROW = re.compile(r"^\| \[(\d{4})\]\(([^)]+)\) \| (.+?) \| (.+?) \| (.+?) \|$")


def _rows() -> dict[str, tuple[str, str, str, str]]:
    """File name -> (number, title, status, decision), from the index table."""
    rows: dict[str, tuple[str, str, str, str]] = {}
    for line in INDEX.read_text(encoding="utf-8").splitlines():
        row = _ROW.match(line)
        if row:
            number, target, title, status, decision = row.groups()
            assert target not in rows, f"{target} is listed twice"
            rows[target] = (number, title, status, decision)
    return rows


def _records() -> list[str]:
    return sorted(p.name for p in ADR_DIR.glob("*.md") if p.name != "README.md")


def test_every_adr_file_is_listed_and_every_listed_one_exists() -> None:
    rows = _rows()
    assert len(_records()) >= 24
    assert sorted(rows) == _records()


def test_each_row_says_what_its_file_says() -> None:
    for name, (number, title, status, decision) in _rows().items():
        text = (ADR_DIR / name).read_text(encoding="utf-8")
        heading = re.match(r"# ADR (\d{4}): (.+)", text)
        assert heading, f"{name} does not open with '# ADR NNNN: title'"
        assert name.startswith(f"{number}-"), name
        assert heading.groups() == (number, title), name
        stated = re.search(r"^- Status: (.+)$", text, re.M)
        assert stated, f"{name} has no '- Status:' line"
        assert stated.group(1).strip() == status, name
        assert len(decision.split()) >= 8, f"{name}: say the decision, not just its topic"


def test_numbers_are_unique_and_in_order() -> None:
    numbers = [name[:4] for name in _records()]
    assert numbers == sorted(set(numbers))
    assert [row[0] for row in _rows().values()] == numbers  # the table in number order


def test_the_readme_points_at_the_index_and_its_adr_links_resolve() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/adr/README.md)" in readme
    linked = re.findall(r"\]\((docs/adr/[^)#]+)", readme)
    assert [path for path in linked if not (PROJECT_ROOT / path).is_file()] == []
