"""Prior: a small, serialisable description of a prior, usable in PyMC and in numpy.

The same object builds the PyMC variable and evaluates the log density in scipy, so the
``log_prior`` group of a fit (for power-scaling sensitivity) is computed independently of
the PyMC graph and a test checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pymc as pm
from scipy import stats

from bayes_hcc.errors import SpecError

__all__ = ["Prior", "DISTRIBUTIONS"]

# name -> (parameters, positive support?)
DISTRIBUTIONS = {
    "Normal": (("mu", "sigma"), False),
    "StudentT": (("nu", "mu", "sigma"), False),
    "HalfNormal": (("sigma",), True),
    "HalfStudentT": (("nu", "sigma"), True),
    "Exponential": (("lam",), True),
}


@dataclass(frozen=True)
class Prior:
    """A univariate prior, for example ``Prior("Normal", mu=0.0, sigma=1.0)``."""

    dist: str
    params: dict = field(default_factory=dict)

    def __init__(self, dist: str, **params):
        if dist not in DISTRIBUTIONS:
            raise SpecError(f"unknown prior distribution {dist!r}; choose one of "
                            f"{', '.join(DISTRIBUTIONS)}.")
        names, _ = DISTRIBUTIONS[dist]
        unknown = set(params) - set(names)
        missing = set(names) - set(params)
        if unknown or missing:
            raise SpecError(f"{dist} prior takes parameters {', '.join(names)}; got "
                            f"{', '.join(sorted(params)) or 'none'}.")
        clean = {}
        for k in names:
            v = params[k]
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not np.isfinite(v):
                raise SpecError(f"{dist} prior parameter {k}={v!r} must be a finite number.")
            if k in ("sigma", "nu", "lam") and v <= 0:
                raise SpecError(f"{dist} prior parameter {k}={v!r} must be > 0.")
            clean[k] = float(v)
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "params", clean)

    def __hash__(self):
        return hash((self.dist, tuple(sorted(self.params.items()))))

    @property
    def positive(self) -> bool:
        return DISTRIBUTIONS[self.dist][1]

    def to_dict(self) -> dict:
        return {"dist": self.dist, **self.params}

    @classmethod
    def from_dict(cls, d) -> Prior:
        if isinstance(d, Prior):
            return d
        d = dict(d)
        if "dist" not in d:
            raise SpecError(f"prior {d} needs a 'dist' key (one of {', '.join(DISTRIBUTIONS)}).")
        return cls(d.pop("dist"), **d)

    def pymc(self, name: str, shift=None, **kwargs):
        """Create the PyMC random variable (inside a model context); ``shift`` moves the
        location parameter ``mu`` (``families.base.centred_intercept``)."""
        return pymc_variable(self.dist, self.params, name, shift, **kwargs)

    def scipy(self):
        p = self.params
        if self.dist == "Normal":
            return stats.norm(p["mu"], p["sigma"])
        if self.dist == "StudentT":
            return stats.t(p["nu"], p["mu"], p["sigma"])
        if self.dist == "HalfNormal":
            return stats.halfnorm(0, p["sigma"])
        if self.dist == "HalfStudentT":
            return stats.halfcauchy(0, p["sigma"]) if p["nu"] == 1 else _HalfT(p["nu"], p["sigma"])
        return stats.expon(scale=1 / p["lam"])

    def logpdf(self, x):
        return self.scipy().logpdf(x)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.dist}({args})"


def pymc_variable(dist: str, params: dict, name: str, shift=None, **kwargs):
    """PyMC random variable ``name`` of distribution ``dist``; parameters may be numbers or
    PyTensor variables (data containers); ``shift`` is added to ``mu``."""
    params = dict(params)
    if shift is not None:
        params["mu"] = params["mu"] + shift
    return getattr(pm, dist)(name, **params, **kwargs)


class _HalfT:
    def __init__(self, nu, sigma):
        self._t = stats.t(nu, 0, sigma)

    def logpdf(self, x):
        x = np.asarray(x, float)
        return np.where(x >= 0, np.log(2) + self._t.logpdf(x), -np.inf)

    def ppf(self, q):
        return self._t.ppf(0.5 + np.asarray(q) / 2)
