"""Percentiles and rates, the same way for every measurement."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples_ms: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation: the figure is a latency somebody saw)."""
    if not samples_ms:
        return None
    ordered = sorted(samples_ms)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return round(ordered[rank - 1], 3)


def per_s(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 and count > 0 else None


def ratio(value: float | None, ceiling: float | None) -> float | None:
    if value is None or not ceiling:
        return None
    return round(value / ceiling, 4)


def latency_summary(samples_ms: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "samples": len(samples_ms),
        "ms_p50": percentile(samples_ms, 50),
        "ms_p99": percentile(samples_ms, 99),
        "ms_max": round(max(samples_ms), 3) if samples_ms else None,
    }
