"""One source of truth: every deployment surface sets real settings, at their defaults
unless the override is listed here with its reason.

Surfaces: `.env.example` (its uncommented lines are the defaults), `infra/compose.yaml`
(each service's environment, interpolated as compose does with `infra/compose.env.example`:
`${X:-fallback}` at its fallback unless the file sets X), the Kubernetes config
maps (`infra/k8s/base/config.env`, each overlay's merged over it, and the Secret keys the
deployments read) and the Terraform module (`fixed_settings`, the variables whose
description starts with `RAG_X:`, the Secret keys). Values are compared through
`Settings` itself, so `1.0` equals `1` and `[]` equals an empty list.

The compose stack is also checked as a whole: each profile starts every service its
services wait for, mounts and images are real and pinned, credentials come only from the
env file, and the Grafana dashboard charts only metrics the API serves (and every one).

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
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from core import telemetry
from core.settings import Settings
from core.types import JobState, Rung
from tests.conftest import PROJECT_ROOT
from tests.unit.test_env_example import _knobs

INFRA = PROJECT_ROOT / "infra"
COMPOSE = INFRA / "compose.yaml"
COMPOSE_ENV = INFRA / "compose.env.example"
GRAFANA = INFRA / "compose" / "grafana"
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
    "RAG_STORE__API_KEY": (None, "compose's Qdrant key, from its env file (k8s: the Secret)"),
    "RAG_JOBS__BACKEND": ("redis", "uploads are queued in Redis and run by `rag worker`"),
    "RAG_JOBS__REDIS_URL": (None, "the Redis of each deployment"),
    "RAG_AUTH__MODE": ("keys", "beyond loopback the API needs authentication"),
    "RAG_API__HOST": ("0.0.0.0", "the container's network, not loopback"),
    "RAG_API__ALLOWED_HOSTS": (None, "the deployment's public names (and localhost for probes)"),
    "RAG_DATA_DIR": ("/app/.data", "the image's data volume (infra/docker/Dockerfile)"),
    "RAG_DATABASE_URL": (None, "PostgreSQL: manifest, API keys, cost ledger, audit trail"),
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


#: `$$`, or `${NAME}` with an optional `:-`/`-` fallback or `:?`/`?` error message.
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def _interpolate(text: str, env: dict[str, str]) -> str:
    """What compose makes of a value: `${X:?message}` fails without X, as `up` does."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match.groups()
        if name is None:
            return "$"
        present = name in env if op in ("-", "?") else bool(env.get(name))
        if present or op is None:
            return env.get(name, "")
        if op.endswith("?"):
            raise KeyError(f"{name}: {arg}")
        return arg

    return _VARIABLE.sub(value, text)


def _compose_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def _service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {
        name: str(value).lower() if isinstance(value, bool) else "" if value is None else str(value)
        for name, value in env.items()
    }


def _compose() -> dict[str, str]:
    """The RAG_* environment of every compose service, with the example env file."""
    example = _env_file(COMPOSE_ENV)
    found: dict[str, str] = {}
    for service in _compose_doc()["services"].values():
        for name, value in _service_env(service).items():
            if name.startswith("RAG_"):
                found[name] = _interpolate(value, example)
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


# --- the compose stack as a whole ------------------------------------------------------------


def _enabled(profile: str | None) -> dict[str, dict[str, Any]]:
    """The services `docker compose [--profile P] up` starts (no profiles: always)."""
    return {
        name: service
        for name, service in _compose_doc()["services"].items()
        if not service.get("profiles") or profile in service["profiles"]
    }


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's mounts: where in the container -> the volume or host path."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


@pytest.mark.parametrize("profile", [None, "cluster"])
def test_a_compose_profile_starts_what_its_services_wait_for(profile: str | None) -> None:
    """Compose v2 refuses to wait for a service the profile leaves out unless the wait
    says `required: false` (docker-compose 1.29, the validator here, does not check)."""
    services, enabled = _compose_doc()["services"], _enabled(profile)
    for name, service in enabled.items():
        for target, wait in (service.get("depends_on") or {}).items():
            assert target in services, f"{name} waits for {target}, which is no service"
            assert target in enabled or wait.get("required") is False, (
                f"{name} waits for {target}, which profile {profile} does not start"
            )
    qdrant = {name for name in enabled if enabled[name]["image"].startswith("qdrant/")}
    assert len(qdrant) == (3 if profile == "cluster" else 1)
    assert {"api", "worker", "redis", "postgres", "otel-collector", "prometheus", "grafana"} <= set(
        enabled
    )


def test_qdrant_nodes_form_one_cluster_with_two_replicas() -> None:
    nodes = {
        n: s for n, s in _compose_doc()["services"].items() if s["image"].startswith("qdrant/")
    }
    for name, node in nodes.items():
        env = _service_env(node)
        assert env["QDRANT__CLUSTER__ENABLED"] == "true"
        assert env["QDRANT__STORAGE__COLLECTION__REPLICATION_FACTOR"] == "2"
        assert node["command"][-2:] == ["--uri", f"http://{name}:6335"]
        if name != "qdrant":
            assert node["command"][1:3] == ["--bootstrap", "http://qdrant:6335"]
    assert _compose()["RAG_STORE__URL"] == "http://qdrant:6333"


def test_compose_mounts_exist_and_images_are_pinned() -> None:
    doc = _compose_doc()
    for name, service in doc["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert re.match(r"v?\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"
        for source in _mounts(service).values():
            if source.startswith("."):
                assert (INFRA / source).exists(), f"{name} mounts {source}, which is missing"
            else:
                assert source in doc["volumes"], f"{name} mounts undeclared volume {source}"


def test_app_containers_are_hardened_as_in_k8s() -> None:
    for name in ("api", "worker", "metrics-key"):
        service = _compose_doc()["services"][name]
        assert service["user"] == "10001:10001"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        writable = set(_mounts(service)) | {t.split(":")[0] for t in service["tmpfs"]}
        assert writable == {"/app/.data", "/tmp"}, name


#: Where a credential can hide in a compose value: a URL's password, or a whole value.
_URL_PASSWORD = re.compile(r"://[^/@\s]*:([^@\s]+)@")
_SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|_AUTH)$")


def _strings(node: object) -> list[tuple[str, str]]:
    """(key, value) for every string in the document, the key of its mapping or ''."""
    if isinstance(node, dict):
        found = []
        for key, value in node.items():
            if isinstance(value, str):
                found.append((str(key), value))
            else:
                found.extend(_strings(value))
        return found
    if isinstance(node, list):
        return [pair for item in node for pair in _strings(item)]
    return []


def test_compose_credentials_come_only_from_the_env_file() -> None:
    """No default password: each credential is `${VAR:?...}` (compose refuses to start
    without it), the example env file lists exactly those, and an empty env fails."""
    doc, required = _compose_doc(), set()
    for key, value in _strings(doc["services"]):
        secrets = _URL_PASSWORD.findall(value)
        if _SECRET_NAME.search(key):
            secrets.append(value)
        for secret in secrets:
            match = re.fullmatch(r"\$\{([A-Z_]+):(\?[^}]+|-)\}", secret)
            assert match, f"{key}: {secret!r} is a hard-coded credential or a default one"
            if match.group(2) != "-":  # `${X:-}`: optional, and empty unless set
                required.add(match.group(1))
    command = doc["services"]["redis"]["command"]
    password = command[command.index("--requirepass") + 1]
    assert re.fullmatch(r"\$\{REDIS_PASSWORD:\?[^}]+\}", password)
    assert required == {
        "POSTGRES_PASSWORD",
        "REDIS_PASSWORD",
        "QDRANT_API_KEY",
        "GRAFANA_ADMIN_PASSWORD",
    }
    assert set(_env_file(COMPOSE_ENV)) == required
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        _interpolate(_service_env(doc["services"]["postgres"])["POSTGRES_PASSWORD"], {})


def test_observability_wiring_matches_the_compose_services() -> None:
    """The API's OTLP endpoint is the collector's HTTP receiver; Prometheus scrapes
    compose services, reading the key the metrics-key service writes; Grafana's
    dashboards use the provisioned datasource, which is the stack's Prometheus."""
    services = _compose_doc()["services"]
    endpoint = urlsplit(_compose()["RAG_OBSERVABILITY__OTLP_ENDPOINT"])
    collector = yaml.safe_load((INFRA / "compose" / "otel-collector.yaml").read_text())
    http = collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert (endpoint.hostname, endpoint.port) == ("otel-collector", int(http.rpartition(":")[2]))
    assert _compose()["RAG_OBSERVABILITY__TRACING"] == "otlp"

    scrape = yaml.safe_load((INFRA / "compose" / "prometheus.yml").read_text())
    for job in scrape["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host = target.partition(":")[0]
            assert host == "localhost" or host in services, f"{job['job_name']}: {target}"
    api_job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "rag-api")
    token = PurePosixPath(api_job["authorization"]["credentials_file"])
    volume = _mounts(services["prometheus"])[str(token.parent)]
    written_at = {v: t for t, v in _mounts(services["metrics-key"]).items()}[volume]
    assert f"{written_at}/{token.name}" in " ".join(services["metrics-key"]["command"])
    assert "api" in json.loads(_compose()["RAG_API__ALLOWED_HOSTS"])  # the scrape's Host

    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text()
    )["datasources"]
    assert [urlsplit(d["url"]).hostname for d in datasources] == ["prometheus"]
    uids = {d["uid"] for d in datasources}
    for _, panel in _dashboard_queries():
        assert panel["datasource"]["uid"] in uids, panel["title"]


# --- the dashboard charts what the API serves --------------------------------------------------

#: PromQL's own words (functions, aggregations, keywords) the dashboard may use.
_PROMQL = frozenset(
    {
        *("sum", "avg", "min", "max", "count", "rate", "irate", "increase"),
        *("histogram_quantile", "clamp_min", "clamp_max", "abs"),
        *("by", "without", "on", "ignoring", "group_left", "group_right"),
        *("and", "or", "unless", "bool", "offset"),
    }
)


class _Queue:
    """A job queue that answers the scrape (what `JobQueueCollector` reads)."""

    def counts(self) -> dict[JobState, int]:
        return {JobState.QUEUED: 1}


def _served_metrics() -> dict[str, set[str]]:
    """Sample name -> label names, as `/metrics` serves them: a fresh registry of the
    code's metrics with one sample of each labelled one, and the queue collector."""
    t = telemetry.Telemetry()
    t.http_seconds.labels("GET", "/healthz", "2xx", telemetry.ANY_TENANT).observe(0.01)
    t.tokens.labels("model", "input", telemetry.ANY_TENANT).inc()
    t.cost.labels("model", telemetry.ANY_TENANT).inc(0.01)
    t.degraded.labels(Rung.EXTRACTIVE.value, telemetry.Degradation.MODELS_FAILED.value).inc()
    t.fallbacks.labels("model").inc()
    queue = CollectorRegistry()
    queue.register(telemetry.JobQueueCollector(_Queue))  # type: ignore[arg-type]
    text = (generate_latest(t.registry) + generate_latest(queue)).decode()
    served: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            served.setdefault(sample.name, set()).update(sample.labels)
    return served


def _dashboard_queries() -> list[tuple[str, dict[str, Any]]]:
    queries = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            queries += [(target["expr"], panel) for target in panel.get("targets", [])]
    return queries


def _promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) of a PromQL expression: label matchers and `by (...)`
    lists give labels; ranges, strings and numbers are dropped; the other words are
    metrics unless they are PromQL's own."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    labels = {
        m for body in re.findall(r"\{([^}]*)\}", text) for m in re.findall(r"(\w+)\s*[=!]", body)
    }
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    grouping = r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)"
    labels |= {w for body in re.findall(grouping, text) for w in re.findall(r"\w+", body)}
    text = re.sub(grouping, " ", text)
    text = re.sub(r"(?<![\w.])\d[\w.+-]*", " ", text)  # numbers: 0.95, 1e-9
    metrics = set(re.findall(r"[A-Za-z_:][\w:]*", text)) - _PROMQL
    return metrics, labels


def test_dashboard_queries_only_metrics_and_labels_the_api_serves() -> None:
    served = _served_metrics()
    queries = _dashboard_queries()
    assert queries
    for expr, panel in queries:
        metrics, labels = _promql_names(expr)
        assert metrics, f"{panel['title']}: no metric in {expr!r}"
        assert metrics <= set(served), f"{panel['title']}: not served: {metrics - set(served)}"
        known = set().union(*(served[m] for m in metrics))
        assert labels <= known, f"{panel['title']}: no such label: {labels - known}"


def test_every_metric_the_api_serves_is_on_the_dashboard() -> None:
    charted = set().union(*(_promql_names(expr)[0] for expr, _ in _dashboard_queries()))
    families = {
        re.sub(r"_(bucket|count|sum|total|created)$", "", name) for name in _served_metrics()
    }
    uncharted = {f for f in families if not any(m.startswith(f) for m in charted)}
    assert uncharted == set()


def test_the_dashboard_check_catches_a_made_up_metric() -> None:
    metrics, labels = _promql_names(
        'histogram_quantile(0.95, sum by (le, route) (rate(rag_made_up_bucket{x="1e3"}[5m])))'
    )
    assert (metrics, labels) == ({"rag_made_up_bucket"}, {"le", "route", "x"})
    assert "rag_made_up_bucket" not in _served_metrics()
