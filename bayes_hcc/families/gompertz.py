"""Gompertz proportional hazards: h0(t) = lambda exp(c t), a log hazard linear in time.

H0(t) = lambda (exp(c t) - 1) / c. With c > 0 the hazard rises (ageing, progressing
disease), with c < 0 it falls and survival levels off at exp(lambda / c): a plateau (a
"cured" fraction), so the median may be infinite. c = 0 is the exponential model.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt

from bayes_hcc.families.base import Family, centred_intercept, log_hr_prior, log_rate_prior
from bayes_hcc.spec.priors import Prior
from bayes_hcc.units import check_time_unit, log_unit_in_months

#: |c t| below this: (exp(c t) - 1) / (c t) by its series (1 + c t / 2), exact to 1e-16
_SERIES = 1e-6


def _exprel(xp, x):
    """(exp(x) - 1) / x, 1 at x = 0, without 0 / 0 (where() sees a safe value)."""
    small = xp.less(xp.abs(x), _SERIES)
    safe = xp.where(small, 1.0, x)
    return xp.where(small, 1.0 + 0.5 * x, xp.expm1(safe) / safe)


class GompertzFamily(Family):
    """Gompertz PH. Parameters ``log_lambda`` (log hazard at time 0, per unit of the data's
    time, declared per month) and ``gamma``, the change in the log hazard per month: the
    slope c on the data's time scale is gamma x (unit length in months), so gamma, its prior
    and its posterior do not depend on the unit."""

    key, name, label, cli_name = "gompertz_ph", "gompertz", "Gompertz PH", "gompertz"
    model_name = "GompertzPH"
    model_doc = """Gompertz proportional-hazards model: h(t) = lambda exp(c t) exp(eta), a
    log hazard changing linearly in time (``gamma``: change per month). A falling hazard
    (gamma < 0) makes survival level off (a plateau), so a median may be infinite.
    Arguments as for :class:`WeibullPH`."""
    options = {}
    headline = ("gamma",)
    params = ("log_lambda", "gamma")
    data_settings = ("time_unit",)  # in the graph the unit is data (log_unit): compiled once

    def __init__(self, time_unit: str = "months"):
        self.time_unit = check_time_unit(time_unit)
        #: length of the data's unit in months: c = gamma x this
        self.unit_months = float(np.exp(log_unit_in_months(self.time_unit)))

    @classmethod
    def for_data(cls, time, event, time_unit="months", **options):
        return cls(time_unit)

    @classmethod
    def default_priors(cls):
        # log_lambda: Normal(-2.5, 2) in months, as the other families' log rates. gamma:
        # Normal(0, 0.1) per month: the hazard changing by up to a factor exp(0.2 x 12) = 11
        # per year either way (95%): from a falling hazard after a risky start to a rising
        # one as disease progresses, with no direction favoured.
        return {"log_hr": log_hr_prior(),
                "log_lambda": log_rate_prior(),
                "gamma": Prior("Normal", mu=0.0, sigma=0.1)}

    def unit_shift(self, params, log_unit):
        return {"log_lambda": log_unit}  # a rate: per unit = per month x unit length

    def settings(self):
        return {"name": self.name, "time_unit": self.time_unit}

    @classmethod
    def from_settings(cls, s):
        return cls(s.get("time_unit", "months"))

    def describe(self):
        return f"{self.name} ({self.time_unit})"

    def example_params(self):
        return {"log_lambda": np.array([-2.3]), "gamma": np.array([0.05])}

    def time_features(self, t):
        return {"t": np.asarray(t, float)}

    def _slope(self, params):
        # the graph passes the unit's length as data ("unit_months"); numpy uses the family's
        return params["gamma"][..., None] * params.get("unit_months", self.unit_months)

    def log_hazard_x(self, xp, params, tf, eta):
        return params["log_lambda"][..., None] + self._slope(params) * tf["t"] + eta

    def cumhaz_x(self, xp, params, tf, eta):
        ct = self._slope(params) * tf["t"]
        return xp.exp(params["log_lambda"][..., None] + eta) * tf["t"] * _exprel(xp, ct)

    def time_at_cumhaz(self, params, h, eta):
        # lambda e^eta (e^(ct) - 1) / c = h  <=>  t = log1p(x) / c with x = c h / (lambda
        # e^eta) = (h / (lambda e^eta)) log1p(x) / x; no solution (inf) when x <= -1
        rate = np.exp(np.asarray(params["log_lambda"], float)[:, None] + eta)
        c = np.asarray(params["gamma"], float)[:, None] * self.unit_months
        h = np.asarray(h, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = c * h / rate
            small = np.abs(x) < _SERIES
            safe = np.where(small | (x <= -1), 1.0, x)
            ratio = np.where(small, 1.0 - 0.5 * x, np.log1p(safe) / safe)
            return np.where(x <= -1, np.inf, h / rate * ratio)

    def data_arrays(self, time, event, unit_index, n_units, upper=None):
        out = super().data_arrays(time, event, unit_index, n_units, upper)
        t, ev = out["tf__t"], out["event"]
        # Reference time for the intercept: the mean event time (see build_params).
        out["time_ref"] = np.asarray(float(t[ev > 0].mean() if ev.any() else
                                           (t.mean() if len(t) else 0.0)))
        return out

    def build_params(self, priors, data, dims, offset=0.0):
        gamma = priors["gamma"].pymc("gamma")
        # log h0(t_ref) = log lambda + c t_ref is what the data fix best: the intercept is
        # sampled there (exact change of coordinates: centred_intercept).
        log_lambda = centred_intercept(
            priors["log_lambda"], "log_lambda",
            offset + gamma * pt.exp(data["log_unit"]) * data["time_ref"],
            self.unit_shift({}, data["log_unit"])["log_lambda"])
        return {"log_lambda": log_lambda, "gamma": gamma, "unit_months": pt.exp(data["log_unit"])}
