"""`make audit`'s inputs hold together: the baseline parses and each of its findings is
justified for its file, the ignore list carries reasons and reaches pip-audit, the audit
reads the lock, the report checker fails when nothing was audited. Running the tools needs
their venv and pip-audit a reachable vulnerability service: the last test, opt-in."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import PROJECT_ROOT

SECURITY = PROJECT_ROOT / "security"
ROW = re.compile(r"^\| (B\d{3}) \| (low|medium|high) \| ([^|]+) \| (\S.{20,})\|$", flags=re.M)


def _justified() -> dict[str, tuple[str, list[str]]]:
    """Test id -> (severity, the files and folders its row in security/README.md names)."""
    table = (SECURITY / "README.md").read_text(encoding="utf-8")
    return {
        test_id: (severity, re.findall(r"`([^`]+)`", where))
        for test_id, severity, where, _ in ROW.findall(table)
    }


def _checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "check_pip_audit", SECURITY / "check_pip_audit.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _make_dry_run(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("GNU make is not installed")
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(PROJECT_ROOT), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_every_baseline_finding_is_justified_for_its_file() -> None:
    baseline = json.loads((SECURITY / "bandit-baseline.json").read_text(encoding="utf-8"))
    justified = _justified()
    unjustified = []
    for finding in baseline["results"]:
        severity, places = justified.get(finding["test_id"], ("", []))
        name = finding["filename"]
        covered = any(
            name == place or (place.endswith("/") and name.startswith(place)) for place in places
        )
        if severity != finding["issue_severity"].lower() or not covered:
            unjustified.append(f"{finding['test_id']} {finding['issue_severity']} {name}")
    assert baseline["results"]
    assert unjustified == []


def test_every_ignored_vulnerability_says_why() -> None:
    for line in (SECURITY / "pip-audit-ignore.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"--ignore-vuln [A-Za-z0-9-]+\s+#\s*\S.{10,}", line), line


def test_the_audit_reads_the_lock_and_passes_the_ignores_without_their_reasons(
    tmp_path: Path,
) -> None:
    ignores = tmp_path / "ignore.txt"
    ignores.write_text("# header\n--ignore-vuln PYSEC-2099-1  # a reason, with words\n\n")
    plan = _make_dry_run("audit", f"PIP_AUDIT_IGNORE={ignores}")
    assert "requirements.lock > reports/lock-audit.txt" in plan
    audits = [line for line in plan.splitlines() if "bin/pip-audit " in line]
    assert len(audits) == 2
    assert "-r reports/lock-audit.txt" in audits[0]
    assert all("--ignore-vuln PYSEC-2099-1 " in line for line in audits)
    assert not any("#" in line or "reason" in line for line in audits)
    assert "check_pip_audit.py reports/pip-audit.json reports/pip-audit-tools.json" in plan


def test_the_audit_tools_are_pinned() -> None:
    pins = (SECURITY / "requirements-audit.txt").read_text(encoding="utf-8").splitlines()
    tools = {line.split("==")[0].lower() for line in pins if "==" in line}
    assert {"pip-audit", "bandit", "cyclonedx-bom"} <= tools
    assert all("==" in line for line in pins if line and not line.startswith("#"))


@pytest.mark.parametrize(
    ("dependencies", "code"),
    [
        ([{"name": "a", "version": "1", "skip_reason": "not found"}], 2),
        ([{"name": "a", "version": "1", "vulns": [{"id": "X-1"}]}], 1),
        ([{"name": "a", "version": "1", "vulns": []}], 0),
        ([{"name": "a", "version": "1", "vulns": []}, {"name": "b", "skip_reason": "gone"}], 0),
    ],
    ids=["nothing-audited", "vulnerable", "clean", "clean-around-a-skip"],
)
def test_the_checker_reads_a_report(tmp_path: Path, dependencies: list, code: int) -> None:
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"dependencies": dependencies}))
    assert _checker().main([str(report)]) == code


def test_a_report_pip_audit_did_not_write_fails_the_audit(tmp_path: Path) -> None:
    clean = tmp_path / "clean.json"
    clean.write_text(json.dumps({"dependencies": [{"name": "a", "version": "1", "vulns": []}]}))
    assert _checker().main([str(clean), str(tmp_path / "missing.json")]) == 2


@pytest.mark.skipif(
    os.environ.get("RAG_NETWORK_TESTS") != "1",
    reason="needs the network (PyPI's per-version JSON API or OSV) and .venv-audit: "
    "set RAG_NETWORK_TESTS=1 to run `make audit` for real",
)
@pytest.mark.timeout(900)
def test_make_audit_passes_where_the_vulnerability_service_answers() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(PROJECT_ROOT), "audit"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sbom = json.loads((PROJECT_ROOT / "reports" / "sbom.cdx.json").read_text(encoding="utf-8"))
    assert sbom["components"]
