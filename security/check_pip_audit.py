"""Read pip-audit's JSON report: fail on a vulnerability that is not ignored, and fail when
nothing could be audited at all (the vulnerability service was unreachable, which
pip-audit reports as "skipped" dependencies and exit code 0).

    python security/check_pip_audit.py reports/pip-audit.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str) -> int:
    report = json.loads(Path(path).read_text(encoding="utf-8"))
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if "skip_reason" in d]
    vulns = [(d["name"], d["version"], v["id"]) for d in deps for v in d.get("vulns", [])]
    audited = len(deps) - len(skipped)
    print(
        f"pip-audit: {len(deps)} packages in the lock, {audited} audited, {len(vulns)} known "
        f"vulnerabilities, {len(skipped)} skipped"
    )
    for name, version, vuln in vulns:
        print(f"  {name} {version}: {vuln}")
    if deps and not audited:
        print(
            "pip-audit could not reach its vulnerability service (PyPI's JSON API, or OSV with "
            "PIP_AUDIT_SERVICE=osv) from this machine: nothing was audited. Run `make audit` "
            "where it is reachable.",
            file=sys.stderr,
        )
        return 2
    return 1 if vulns else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
