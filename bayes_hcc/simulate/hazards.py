"""Baseline hazards for simulation: Weibull and piecewise-constant, in months."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG2 = float(np.log(2.0))


@dataclass(frozen=True)
class WeibullHazard:
    """Weibull baseline H(t) = rate * t**shape, parametrised by its median (months)."""

    median: float
    shape: float = 1.0

    def __post_init__(self):
        if not (self.median > 0 and self.shape > 0):
            raise ValueError(f"WeibullHazard needs median > 0 and shape > 0, got {self}.")

    @property
    def rate(self) -> float:
        return LOG2 / self.median ** self.shape

    def cumhaz(self, t):
        return self.rate * np.asarray(t, float) ** self.shape

    def hazard(self, t):
        t = np.asarray(t, float)
        return self.rate * self.shape * t ** (self.shape - 1)

    def inverse_cumhaz(self, h):
        return (np.asarray(h, float) / self.rate) ** (1.0 / self.shape)


@dataclass(frozen=True)
class PiecewiseHazard:
    """Piecewise-constant hazard: ``rates[j]`` on [cuts[j-1], cuts[j]), last rate beyond."""

    cuts: tuple[float, ...]
    rates: tuple[float, ...]

    def __post_init__(self):
        cuts, rates = np.asarray(self.cuts, float), np.asarray(self.rates, float)
        if len(rates) != len(cuts) + 1 or np.any(rates <= 0) or np.any(np.diff(cuts) <= 0) \
                or (len(cuts) and cuts[0] <= 0):
            raise ValueError("PiecewiseHazard needs increasing positive cuts and "
                             "len(cuts) + 1 positive rates.")

    @property
    def _edges(self):
        return np.concatenate([[0.0], np.asarray(self.cuts, float), [np.inf]])

    def cumhaz(self, t):
        t = np.asarray(t, float)
        e = self._edges
        expo = np.clip(t[..., None] - e[:-1], 0, np.diff(e))
        return expo @ np.asarray(self.rates, float)

    def hazard(self, t):
        idx = np.searchsorted(np.asarray(self.cuts, float), np.asarray(t, float), side="right")
        return np.asarray(self.rates, float)[idx]

    def inverse_cumhaz(self, h):
        h = np.asarray(h, float)
        e = self._edges
        rates = np.asarray(self.rates, float)
        cum = np.concatenate([[0.0], np.cumsum(rates[:-1] * np.diff(e)[:-1])])
        j = np.searchsorted(cum, h, side="right") - 1
        return e[j] + (h - cum[j]) / rates[j]
