"""The model catalog file is validated whole, with the file named in every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigError
from core.types import Usage
from gateway.catalog import DEFAULT_CATALOG, load_catalog


def test_the_shipped_catalog_loads_and_prices_requests() -> None:
    catalog = load_catalog()
    local = catalog.get("local-smollm2")
    assert {"private", "cheap"} <= local.tags
    assert local.cost(Usage(10_000, 1_000)) == 0.0
    gpt = catalog.get("gpt-4.1")
    assert gpt.cost(Usage(1_000_000, 1_000_000)) == pytest.approx(10.0)
    assert catalog.budgets.for_tenant("trial").daily_hard_usd == 0.5
    assert catalog.budgets.for_tenant("someone").daily_hard_usd == 20.0


def test_an_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="local-smollm2"):
        load_catalog().get("gpt-9")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.replace('provider = "anthropic"', 'provider = "antropic"', 1), "provider"),
        (lambda s: s.replace("input_per_mtok = 0.40", "input_per_mtok = -1", 1), "input_per_mtok"),
        (lambda s: s.replace('name = "gpt-4.1"', 'name = "gpt-4.1-mini"', 1), "repeated"),
        (lambda s: s.replace('endpoint = "http://127.0.0.1:8081/v1"\n', "", 1), "endpoint"),
        (lambda s: s + "\n[[models]\n", "invalid"),
    ],
)
def test_a_broken_catalog_fails_fast_naming_the_file(
    tmp_path: Path, edit: object, message: str
) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(edit(DEFAULT_CATALOG.read_text()))  # type: ignore[operator]
    with pytest.raises(ConfigError, match=message) as raised:
        load_catalog(path)
    assert str(path) in str(raised.value)


def test_a_missing_catalog_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_catalog(tmp_path / "nope.toml")
