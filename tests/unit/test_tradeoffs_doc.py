"""docs/tradeoffs.md cites what exists, and its per-question prices are the catalog's."""

from __future__ import annotations

import re

import pytest

from gateway.catalog import load_catalog
from tests.conftest import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "tradeoffs.md"
#: A hosted model's row of the per-question cost table: name, then its price in USD.
_PRICE_ROW = re.compile(r"^\| `([\w.-]+)` \((?:cheap|strong)\) \|.*\| \$([\d.]+) \| arithmetic")


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_adr_cited_exists() -> None:
    cited = set(re.findall(r"ADR (\d{4})", _text()))
    assert len(cited) >= 15
    existing = {p.name[:4] for p in (PROJECT_ROOT / "docs" / "adr").glob("[0-9]*.md")}
    assert sorted(cited - existing) == []


def test_every_make_target_named_exists() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    named = set(re.findall(r"`make ([\w-]+)", _text()))
    assert len(named) >= 10
    assert sorted(t for t in named if not re.search(rf"^{t}:", makefile, re.M)) == []


def test_every_linked_or_named_file_exists() -> None:
    text = _text()
    linked = [(DOC.parent / target).resolve() for target in re.findall(r"\]\(([^)#:]+)\)", text)]
    named = [
        PROJECT_ROOT / path
        for path in re.findall(r"`((?:[\w.-]+/)+[\w.-]+\.(?:py|md|toml|yaml))`", text)
    ]
    assert linked
    assert named
    assert [str(p) for p in [*linked, *named] if not p.exists()] == []


def test_every_section_says_the_decision_it_drives() -> None:
    sections = re.split(r"^## ", _text(), flags=re.M)[1:]
    titles = [s.splitlines()[0] for s in sections]
    assert titles[1:6] == ["Quality", "Latency", "Cost", "Scale and capacity", "Risk"]
    for section in sections[1:6]:
        assert "**The decision it drives.**" in section, section.splitlines()[0]


@pytest.fixture(scope="module")
def prices() -> dict[str, float]:
    rows = [_PRICE_ROW.match(line) for line in _text().splitlines()]
    return {m.group(1): float(m.group(2)) for m in rows if m}


def test_hosted_prices_per_question_are_the_catalogs(prices: dict[str, float]) -> None:
    catalog = load_catalog(PROJECT_ROOT / "gateway" / "catalog.toml")
    hosted = {m.name for m in catalog.models if m.blended_price > 0}
    assert set(prices) == hosted  # every priced model has its row, and no other
    for name, usd in prices.items():
        assert usd == pytest.approx(catalog.get(name).blended_price, abs=5e-6), name
