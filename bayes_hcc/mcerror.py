"""Monte Carlo uncertainty of simulation studies (coverage, operating characteristics,
predictive probabilities): intervals for a proportion and for a mean."""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["wilson_interval", "mean_interval"]


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n independent trials (sensible at 0 and n,
    where the Wald interval collapses)."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return float(lo), float(hi)


def mean_interval(x, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its t interval: (mean, lower, upper); NaN bounds for a single value."""
    x = np.asarray(x, float)
    m = float(x.mean())
    if len(x) < 2:
        return m, float("nan"), float("nan")
    h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return m, m - h, m + h
