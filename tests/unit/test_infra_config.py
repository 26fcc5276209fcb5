"""One source of truth: every deployment surface sets real settings, at their defaults
unless the override is listed here with its reason.

Surfaces: `.env.example` (its uncommented lines are the defaults), `infra/compose.yaml`
(each service's environment, `${X:-fallback}` read at its fallback), the Kubernetes config
maps (`infra/k8s/base/config.env`, each overlay's merged over it, and the Secret keys the
deployments read) and the Terraform module (`fixed_settings`, the variables whose
description starts with `RAG_X:`, the Secret keys). Values are compared through
`Settings` itself, so `1.0` equals `1` and `[]` equals an empty list.

Terraform is parsed with python-hcl2, imported here or run from `.venv-infra` (`make
infra-check` builds it); without either, the Terraform tests skip with the reason, except
under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from pydantic import SecretStr

from core.settings import Settings
from tests.conftest import PROJECT_ROOT
from tests.unit.test_env_example import _knobs

INFRA = PROJECT_ROOT / "infra"
K8S = INFRA / "k8s"
MODULE = INFRA / "terraform" / "modules" / "rag-stack"

#: Deliberate departures from the defaults, with the reason. A value given here must be
#: the one every surface that sets the name uses; None lets it differ per surface.
OVERRIDES: dict[str, tuple[str | None, str]] = {
    "RAG_ENVIRONMENT": (None, "deployments run as production (no embedded store, no auth none)"),
    "RAG_STORE__BACKEND": (
        "qdrant",
        "API replicas and workers cannot share an embedded Qdrant Edge shard",
    ),
    "RAG_STORE__URL": (None, "the Qdrant server of each deployment"),
    "RAG_JOBS__BACKEND": ("redis", "uploads are queued in Redis and run by `rag worker`"),
    "RAG_JOBS__REDIS_URL": (None, "the Redis of each deployment"),
    "RAG_AUTH__MODE": ("keys", "beyond loopback the API needs authentication"),
    "RAG_API__HOST": ("0.0.0.0", "the container's network, not loopback"),
    "RAG_API__ALLOWED_HOSTS": (None, "the deployment's public names (and localhost for probes)"),
    "RAG_DATA_DIR": ("/app/.data", "the image's data volume (infra/docker/Dockerfile)"),
    "RAG_DATABASE_URL": (None, "PostgreSQL for API keys and the audit trail"),
    "RAG_LLM__LEDGER_URL": (None, "PostgreSQL for the cost ledger"),
    "RAG_LIMITS__STORAGE_URL": (None, "rate limits shared by every replica, in Redis"),
    "RAG_OBSERVABILITY__TRACING": (None, "traces to the cluster's OpenTelemetry collector"),
    "RAG_OBSERVABILITY__OTLP_ENDPOINT": (None, "the collector's address in the cluster"),
    "RAG_LLM__MODELS": (
        None,
        "compose has no local llama.cpp server: its fallback names a hosted model",
    ),
}

#: What each Secret key stands for when a surface's settings are built whole.
PLACEHOLDERS = {
    "RAG_DATABASE_URL": "postgresql+psycopg://rag:x@postgres:5432/rag",
    "RAG_LLM__LEDGER_URL": "postgresql+psycopg://rag:x@postgres:5432/rag",
    "RAG_JOBS__REDIS_URL": "redis://redis:6379/0",
    "RAG_LIMITS__STORAGE_URL": "redis://redis:6379/1",
}


# --- reading the surfaces ----------------------------------------------------------------


def _env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as kustomize reads an `envs` file (comments and blanks skipped)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value
    return pairs


def _env_example() -> dict[str, str]:
    return {k: v for k, v in _env_file(PROJECT_ROOT / ".env.example").items() if k[:4] == "RAG_"}


def _compose() -> dict[str, str]:
    """The RAG_* environment of every compose service, `${X:-fallback}` at its fallback."""
    doc = yaml.safe_load((INFRA / "compose.yaml").read_text())
    found: dict[str, str] = {}
    for service in doc["services"].values():
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.partition("=")[::2] for item in env)
        for name, value in env.items():
            if name.startswith("RAG_"):
                text = "" if value is None else str(value)
                if isinstance(value, bool):
                    text = str(value).lower()
                found[name] = re.sub(r"\$\{[A-Z0-9_]+(?::?-([^}]*))?\}", r"\1", text)
    return found


def _k8s_overlay(name: str) -> dict[str, str]:
    return {
        **_env_file(K8S / "base" / "config.env"),
        **_env_file(K8S / "overlays" / name / "config.env"),
    }


def _k8s_secret_keys(component: str) -> set[str]:
    doc = yaml.safe_load((K8S / "base" / f"{component}.yaml").read_text().split("\n---")[0])
    keys = set()
    for container in doc["spec"]["template"]["spec"]["containers"]:
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] == env["name"], "the Secret's keys are the variables' names"
                keys.add(ref["key"])
    return keys


_HCL_IN_VENV = """
import json, sys
import hcl2
print(json.dumps({p: hcl2.load(open(p)) for p in sys.argv[1:]}))
"""


@cache
def _terraform_files() -> dict[str, Any]:
    """The module's files parsed by python-hcl2 (here, or run from .venv-infra)."""
    paths = sorted(str(p) for p in MODULE.glob("*.tf"))
    try:
        import hcl2  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        python = PROJECT_ROOT / ".venv-infra" / "bin" / "python"
        if not python.exists():
            return {}
        out = subprocess.run(
            [str(python), "-c", _HCL_IN_VENV, *paths], capture_output=True, text=True, check=True
        )
        parsed: dict[str, Any] = json.loads(out.stdout)
        return {Path(p).name: doc for p, doc in parsed.items()}
    files = {}
    for path in paths:
        with open(path) as f:
            files[Path(path).name] = hcl2.load(f)
    return files


def _terraform() -> dict[str, Any]:
    files = _terraform_files()
    if not files:
        reason = "python-hcl2 is neither importable nor in .venv-infra (run `make infra-check`)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return files


def _terraform_locals(file: str) -> dict[str, Any]:
    """A file's locals; python-hcl2 wraps a map in a list of one."""
    merged: dict[str, Any] = {}
    for block in _terraform()[file].get("locals", []):
        merged.update(
            {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in block.items()}
        )
    return merged


def _terraform_settings() -> dict[str, str]:
    """`fixed_settings`, the defaults of the variables that set a RAG_* setting, and the
    Qdrant URL the module builds (at the variables' defaults)."""
    local = _terraform_locals("main.tf")
    settings = dict(local["fixed_settings"])
    defaults = {}
    for block in _terraform()["variables.tf"]["variable"]:
        for name, spec in block.items():
            default = spec.get("default", [None])[0]
            defaults[name] = default
            match = re.match(r"(RAG_[A-Z0-9_]+):", spec["description"][0])
            if match and default is not None:
                settings[match.group(1)] = str(default)
    settings["RAG_STORE__URL"] = re.sub(
        r"\$\{var\.(\w+)\}", lambda m: str(defaults[m.group(1)]), local["qdrant_url"]
    )
    return settings


def _terraform_names() -> set[str]:
    """Every RAG_* name the module's ConfigMap can carry (the merge expression included)."""
    expression = str(_terraform_locals("main.tf")["settings"])
    return set(re.findall(r"RAG_[A-Z0-9_]+", expression)) | set(_terraform_settings())


def _terraform_secret_keys() -> set[str]:
    return set(_terraform_locals("workloads.tf")["api_secret_keys"])


SURFACES = {
    "compose": _compose,
    "k8s-dev": lambda: _k8s_overlay("dev"),
    "k8s-prod": lambda: _k8s_overlay("prod"),
    "terraform": _terraform_settings,
}


# --- reading values through Settings ---------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No RAG_* variable of this process leaks into the Settings built here."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
    return monkeypatch


def _build(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    with monkeypatch.context() as m:
        for name, value in env.items():
            m.setenv(name, value)
        return Settings(_env_file=None)  # type: ignore[call-arg]


def _field(settings: Settings, name: str) -> object:
    value: object = settings
    for part in name.removeprefix("RAG_").lower().split("__"):
        value = getattr(value, part)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _departures(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, str]:
    """The names whose value is not the default (each read alone through Settings)."""
    default = _build(monkeypatch, {})
    return {
        name: value
        for name, value in env.items()
        if _field(_build(monkeypatch, {name: value}), name) != _field(default, name)
    }


# --- the tests --------------------------------------------------------------------------------


def test_env_example_shows_the_defaults(clean_env: pytest.MonkeyPatch) -> None:
    assert set(_env_example()) <= _knobs()
    assert _departures(clean_env, _env_example()) == {}


@pytest.mark.parametrize("surface", SURFACES)
def test_a_surface_sets_only_real_settings(surface: str) -> None:
    assert set(SURFACES[surface]()) - _knobs() == set()


def test_secret_keys_are_real_settings_and_the_same_in_k8s_and_terraform() -> None:
    api, worker = _k8s_secret_keys("api"), _k8s_secret_keys("worker")
    assert api - _knobs() == set()
    assert worker <= api
    assert _terraform_secret_keys() == api


@pytest.mark.parametrize("surface", SURFACES)
def test_a_surface_departs_from_the_defaults_only_by_known_overrides(
    surface: str, clean_env: pytest.MonkeyPatch
) -> None:
    env = SURFACES[surface]()
    departures = _departures(clean_env, {n: v for n, v in env.items() if n not in OVERRIDES})
    assert departures == {}, (
        "a default changed here: change core/settings.py, or list it in OVERRIDES with why"
    )
    disagreeing = {
        name: (env[name], agreed)
        for name, (agreed, _) in OVERRIDES.items()
        if agreed is not None and name in env and env[name] != agreed
    }
    assert disagreeing == {}


def test_every_override_is_used() -> None:
    used = set().union(*(SURFACES[s]() for s in ("compose", "k8s-dev", "k8s-prod")))
    assert set(OVERRIDES) - used == set()


@pytest.mark.parametrize("surface", SURFACES)
def test_a_surface_builds_valid_settings(surface: str, clean_env: pytest.MonkeyPatch) -> None:
    env = {**PLACEHOLDERS, **SURFACES[surface]()}
    settings = _build(clean_env, env)
    assert settings.jobs.backend == "redis"
    assert settings.store.backend == "qdrant"


def test_production_settings_are_the_same_in_k8s_and_terraform() -> None:
    prod, terraform = _k8s_overlay("prod"), _terraform_settings()
    assert set(prod) == _terraform_names()
    assert {n: v for n, v in prod.items() if n in terraform} == terraform
    assert prod["RAG_ENVIRONMENT"] == "production"
