"""Baseline hazards for simulation: Weibull and piecewise-constant, in months."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_hcc.errors import BayesHCCError

LOG2 = float(np.log(2.0))


@dataclass(frozen=True)
class WeibullHazard:
    """Weibull baseline H(t) = rate * t**shape, parametrised by its median (months)."""

    median: float
    shape: float = 1.0

    def __post_init__(self):
        if not (self.median > 0 and self.shape > 0):
            raise BayesHCCError(f"WeibullHazard needs median > 0 and shape > 0, got {self}.")

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
            raise BayesHCCError("PiecewiseHazard needs increasing positive cuts and "
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


class FamilyHazard:
    """The baseline hazard of any registered family at fixed parameter values, in months:
    ``simulate_trial(os_hazard=FamilyHazard("gompertz_ph", log_lambda=-2.0, gamma=-0.05))``.

    Cumulative hazard, hazard and inversion come from the family's own functions
    (``Family.cumhaz_at``, ``log_hazard_at``, ``time_at_cumhaz``), so the simulator draws
    from exactly the model that is fitted. ``family`` is a registry key (the family with its
    default layout) or a family object (e.g. a piecewise family with its cut points).
    """

    def __init__(self, family, **params):
        if isinstance(family, str):
            from bayes_hcc.families.registry import family_class

            family = family_class(family).example()
        unknown = set(params) - set(family.params)
        if unknown:
            raise BayesHCCError(f"FamilyHazard({family.name}): unknown parameter(s) "
                             f"{', '.join(sorted(unknown))}; it takes {', '.join(family.params)}.")
        bad = [k for k, v in params.items() if not np.all(np.isfinite(np.asarray(v, float)))]
        if bad:
            raise BayesHCCError(f"FamilyHazard({family.name}): parameter(s) {', '.join(bad)} must "
                             "be finite numbers.")
        missing = set(family.params) - set(params)
        if missing:
            raise BayesHCCError(f"FamilyHazard({family.name}) needs parameter(s) "
                             f"{', '.join(sorted(missing))}; it takes {', '.join(family.params)}.")
        # a vector parameter sized for another layout (6 piecewise rates for the registry
        # key's 4 intervals) failed inside numpy's matmul at the first hazard evaluation
        coords = family.coords()
        for k, v in params.items():
            dims = family.param_dims.get(k, ())
            want = tuple(len(coords[d]) for d in dims)
            if np.shape(v) == want:
                continue
            head = f"FamilyHazard({family.name}): {k} has shape {np.shape(v)}"
            if not dims:
                raise BayesHCCError(f"{head}; give a single number.")
            per = (f": one per {dims[0]}, {', '.join(map(str, coords[dims[0]]))}"
                   if len(dims) == 1 else "")
            raise BayesHCCError(
                f"{head}; this layout takes shape {want}{per}. Give that, or pass a family "
                "object with the layout you want, e.g. bh.FamilyHazard(family_class("
                "'piecewise_exponential')(cuts=[2.0, 6.0]), log_baseline_hazard=[a, b, c]) "
                "with family_class from bayes_hcc.families.registry.")
        self.family = family
        self.params = {k: np.asarray(v, float)[None, ...] for k, v in params.items()}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={np.round(v[0], 4).tolist()}" for k, v in self.params.items())
        return f"FamilyHazard({self.family.name}, {shown})"

    def _flat(self, fn, t):
        t = np.asarray(t, float)
        return fn(self.params, t.ravel())[0, 0].reshape(t.shape)

    def cumhaz(self, t):
        return self._flat(self.family.cumhaz_at, t)

    def hazard(self, t):
        return np.exp(self._flat(self.family.log_hazard_at, t))

    def inverse_cumhaz(self, h):
        h = np.asarray(h, float)
        flat = h.ravel()[None, :]
        return self.family.time_at_cumhaz(self.params, flat, np.zeros_like(flat))[0] \
            .reshape(h.shape)
