"""The two locks hold together: requirements-runtime.lock (what the image installs) is
`[project].dependencies` alone at the versions requirements.lock (what `make setup`
installs and every test runs) pins, and nothing reaches it only through an extra."""

from __future__ import annotations

import re
import tomllib
from functools import cache

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from core.errors import ConfigError
from eval import eval_extra_missing
from tests.conftest import PROJECT_ROOT

# `name==version`, or a local package by path (`packaging/en_core_web_sm`).
PIN = re.compile(r"^(?:([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)|packaging/([A-Za-z0-9_]+))$")
VIA = re.compile(r"^\s+#\s+(?:via\s+)?(\S.*)$")


@cache
def _lock(name: str) -> dict[str, tuple[str, set[str]]]:
    """Package -> (version, what the lock's `# via` lines say needs it)."""
    pins: dict[str, tuple[str, set[str]]] = {}
    current = None
    for line in (PROJECT_ROOT / name).read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match[1] or match[3])
            pins[current] = (match[2] or line, set())
        elif current and (via := VIA.match(line)) and via[1] != "via":
            pins[current][1].add(via[1].strip())
    return pins


def _project() -> dict[str, object]:
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def _names(requirements: object) -> set[str]:
    assert isinstance(requirements, list)
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_runtime_lock_pins_the_same_versions_as_the_full_lock() -> None:
    full, runtime = _lock("requirements.lock"), _lock("requirements-runtime.lock")
    assert set(runtime) <= set(full)
    assert {n: v for n, (v, _) in runtime.items() if full[n][0] != v} == {}


def test_the_runtime_lock_holds_every_runtime_dependency() -> None:
    assert _names(_project()["dependencies"]) - set(_lock("requirements-runtime.lock")) == set()


def test_nothing_reaches_the_runtime_lock_only_through_an_extra() -> None:
    """An extra's package may be there only because a runtime package needs it too
    (rapidfuzz: unstructured); the eval stack and the dev tools are not."""
    runtime = _lock("requirements-runtime.lock")
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    for group in ("eval", "dev"):
        for name in _names(extras[group]) & set(runtime):
            needed_by = {v for v in runtime[name][1] if not v.startswith("-c ")}
            assert needed_by, f"{name} ({group} extra) is in the runtime lock for no runtime reason"
    for tool in ("ragas", "ranx", "langchain-community", "pytest", "mypy", "ruff", "locust"):
        assert tool not in runtime


def test_the_image_installs_the_runtime_lock() -> None:
    dockerfile = (PROJECT_ROOT / "infra" / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG LOCK=requirements-runtime.lock" in dockerfile
    assert 'uv pip install --quiet --python /opt/venv/bin/python -r "${LOCK}"' in dockerfile


def test_an_eval_command_without_the_eval_extra_says_how_to_get_it() -> None:
    error = eval_extra_missing(ModuleNotFoundError("No module named 'ranx'", name="ranx"))
    assert isinstance(error, ConfigError)
    assert "ranx is not installed" in str(error)
    assert "rag-reference[eval]" in str(error)
