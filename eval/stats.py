"""Small statistics helpers shared by the eval commands."""

from __future__ import annotations

from collections.abc import Sequence


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p95 by the nearest-rank method (no interpolation: every value was observed)."""
    if not samples:
        return {"p50": 0.0, "p95": 0.0}
    ordered = sorted(samples)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(-(-q * len(ordered) // 1)) - 1))]

    return {"p50": round(pick(0.5), 2), "p95": round(pick(0.95), 2)}
