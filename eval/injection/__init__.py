"""Scoring the prompt-injection detector on labelled passages (`make eval-injection`).

Any JSONL file whose lines are `{"text": ..., "label": 1 | 0}` (1 = injected) is scored;
other keys are ignored, except `kind` and `split`, which break the figures down. A bad
line is an `InvalidRequestError` naming its line number: nothing is scored from a file
that is not what it claims to be.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from core.errors import InvalidRequestError
from governance.injection import InjectionDetector

CORPUS = Path(__file__).resolve().parent / "corpus.jsonl"


def load(path: Path) -> list[dict[str, Any]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(f"{path}: cannot read it ({exc})") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise InvalidRequestError(f"{path}:{number}: expected an object")
        text, label = row.get("text"), row.get("label")
        if not isinstance(text, str):
            raise InvalidRequestError(f"{path}:{number}: `text` must be a string")
        if isinstance(label, bool) or label not in (0, 1):
            raise InvalidRequestError(f"{path}:{number}: `label` must be 1 (injected) or 0")
        rows.append(row)
    if not rows:
        raise InvalidRequestError(f"{path}: no labelled passages")
    return rows


def _metrics(pairs: list[tuple[int, bool]]) -> dict[str, Any]:
    tp = sum(1 for label, flagged in pairs if label and flagged)
    fp = sum(1 for label, flagged in pairs if not label and flagged)
    fn = sum(1 for label, flagged in pairs if label and not flagged)
    tn = len(pairs) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "n": len(pairs),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def score(path: Path, threshold: float = 0.5) -> dict[str, Any]:
    rows = load(path)
    detector = InjectionDetector(threshold)
    pairs, latencies = [], []
    by_split: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    by_kind: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    misses = []
    for row in rows:
        start = time.perf_counter()
        verdict = detector.check(row["text"])
        latencies.append((time.perf_counter() - start) * 1e6)
        pair = (int(row["label"]), verdict.flagged)
        pairs.append(pair)
        if isinstance(row.get("split"), str):
            by_split[row["split"]].append(pair)
        if isinstance(row.get("kind"), str):
            by_kind[row["kind"]].append(pair)
        if pair[0] != pair[1]:
            misses.append({"label": pair[0], "score": verdict.score, "text": row["text"][:160]})
    report: dict[str, Any] = {
        **_metrics(pairs),
        "threshold": threshold,
        "latency_us_p50": round(statistics.median(latencies), 1),
        "per_kind": {name: _per_kind(p) for name, p in sorted(by_kind.items())},
        "misses": misses,
    }
    if by_split:
        report["by_split"] = {name: _metrics(p) for name, p in sorted(by_split.items())}
    return report


def _per_kind(pairs: list[tuple[int, bool]]) -> dict[str, Any]:
    """Recall over a kind's injected lines; the false-positive rate over its clean ones."""
    injected = [flagged for label, flagged in pairs if label]
    clean = [flagged for label, flagged in pairs if not label]
    figures: dict[str, Any] = {"n": len(pairs)}
    if injected:
        figures["recall"] = round(sum(injected) / len(injected), 4)
    if clean:
        figures["false_positive_rate"] = round(sum(clean) / len(clean), 4)
    return figures
