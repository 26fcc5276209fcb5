"""`make audit`'s inputs hold together: the baseline parses and each of its findings is
justified, the ignore list carries reasons, the Makefile audits the lock. (Running the
tools needs their venv, and pip-audit a reachable vulnerability service: `make audit`.)"""

from __future__ import annotations

import json
import re

from tests.conftest import PROJECT_ROOT

SECURITY = PROJECT_ROOT / "security"


def _justified() -> set[str]:
    table = (SECURITY / "README.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| (B\d{3}) \|[^|]+\|[^|]+\| \S.{20,}\|$", table, flags=re.M))


def test_every_baseline_finding_is_justified() -> None:
    baseline = json.loads((SECURITY / "bandit-baseline.json").read_text(encoding="utf-8"))
    found = {result["test_id"] for result in baseline["results"]}
    assert found
    assert sorted(found - _justified()) == []


def test_every_ignored_vulnerability_says_why() -> None:
    for line in (SECURITY / "pip-audit-ignore.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            assert re.fullmatch(r"--ignore-vuln [A-Za-z0-9-]+\s+#\s*\S.{10,}", line), line


def test_the_audit_reads_the_lock_and_pins_its_tools() -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^audit: sbom", makefile, flags=re.M)
    assert "requirements.lock" in makefile.split("\nsbom:", 1)[1].split("\n\n", 1)[0]
    pins = (SECURITY / "requirements-audit.txt").read_text(encoding="utf-8").splitlines()
    tools = {line.split("==")[0].lower() for line in pins if "==" in line}
    assert {"pip-audit", "bandit", "cyclonedx-bom"} <= tools
    assert all("==" in line for line in pins if line and not line.startswith("#"))


def test_a_service_that_audits_nothing_fails(tmp_path: object) -> None:
    import subprocess
    import sys
    from pathlib import Path

    folder = Path(str(tmp_path))
    report = folder / "r.json"
    skipped = {"dependencies": [{"name": "a", "version": "1", "skip_reason": "not found"}]}
    report.write_text(json.dumps(skipped))
    script = str(SECURITY / "check_pip_audit.py")
    assert subprocess.run([sys.executable, script, str(report)], check=False).returncode == 2
    vulnerable = {"dependencies": [{"name": "a", "version": "1", "vulns": [{"id": "X-1"}]}]}
    report.write_text(json.dumps(vulnerable))
    assert subprocess.run([sys.executable, script, str(report)], check=False).returncode == 1
    report.write_text(json.dumps({"dependencies": [{"name": "a", "version": "1", "vulns": []}]}))
    assert subprocess.run([sys.executable, script, str(report)], check=False).returncode == 0
