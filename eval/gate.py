"""The regression gate: metrics checked against the versioned thresholds file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THRESHOLDS_PATH = Path(__file__).parent / "thresholds.toml"


@dataclass(frozen=True, slots=True)
class Violation:
    metric: str
    value: float | None
    bound: float
    kind: str

    def __str__(self) -> str:
        shown = "missing" if self.value is None else f"{self.value:.4f}"
        relation = ">=" if self.kind == "min" else "<="
        return f"{self.metric} = {shown}, needs {relation} {self.bound}"


def _lookup(report: dict[str, Any], dotted: str) -> float | None:
    node: Any = report
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


def check(report: dict[str, Any], suite: str, path: Path = THRESHOLDS_PATH) -> list[Violation]:
    """Every `[suite.min]` metric must be at least, every `[suite.max]` at most, its bound."""
    table = tomllib.loads(path.read_text(encoding="utf-8")).get(suite, {})
    violations = []
    for kind in ("min", "max"):
        for metric, bound in table.get(kind, {}).items():
            value = _lookup(report, metric)
            if value is None or (value < bound if kind == "min" else value > bound):
                violations.append(Violation(metric, value, float(bound), kind))
    return violations
