"""Read pip-audit's JSON reports: fail on a vulnerability that is not ignored, on a report
pip-audit did not write (it crashed or refused its input), and when nothing could be
audited at all (the vulnerability service was unreachable, which pip-audit reports as
"skipped" dependencies and exit code 0).

    python security/check_pip_audit.py reports/pip-audit.json [more.json ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

UNREACHABLE = (
    "pip-audit could not reach its vulnerability service (PyPI's per-version JSON API, or OSV "
    "with PIP_AUDIT_SERVICE=osv) from this machine: nothing was audited. Run `make audit` "
    "where it is reachable."
)


def check(path: Path) -> int:
    """0: audited clean, 1: a vulnerability, 2: no report, 3: nothing audited."""
    if not path.is_file():
        print(f"{path}: pip-audit wrote no report; see reports/pip-audit.log", file=sys.stderr)
        return 2
    report = json.loads(path.read_text(encoding="utf-8"))
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if "skip_reason" in d]
    vulns = [(d["name"], d["version"], v["id"]) for d in deps for v in d.get("vulns", [])]
    audited = len(deps) - len(skipped)
    print(
        f"{path}: {len(deps)} packages, {audited} audited, {len(vulns)} known "
        f"vulnerabilities (not ignored), {len(skipped)} skipped"
    )
    for name, version, vuln in vulns:
        print(f"  {name} {version}: {vuln}")
    if deps and not audited:
        return 3
    for dep in skipped:  # audited around them: name them, they were not looked at
        print(f"  skipped {dep['name']}: {dep['skip_reason']}")
    return 1 if vulns else 0


def main(paths: list[str]) -> int:
    """The worst outcome of the reports; an unreachable service is said once, as exit 2."""
    worst = max(check(Path(path)) for path in paths)
    if worst == 3:
        print(UNREACHABLE, file=sys.stderr)
    return min(worst, 2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
