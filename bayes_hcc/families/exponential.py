"""Exponential proportional hazards: constant hazard lambda, H0(t) = lambda t."""

from __future__ import annotations

import numpy as np

from bayes_hcc.families.base import Family, centred_intercept, log_hr_prior, log_rate_prior


class ExponentialFamily(Family):
    key, name, label, cli_name = "exponential_ph", "exponential", "exponential PH", "exponential"
    model_name = "ExponentialPH"
    model_doc = """Exponential proportional-hazards model (constant hazard): a sensitivity
    analysis. Arguments as for :class:`WeibullPH`."""
    params = ("log_lambda",)
    constant_between_breakpoints = True  # no graded quadrature (illness-death)

    @classmethod
    def default_priors(cls):
        return {"log_hr": log_hr_prior(),
                "log_lambda": log_rate_prior()}

    def unit_shift(self, params, log_unit):
        return {"log_lambda": log_unit}  # a rate: per unit = per month x unit length

    def example_params(self):
        return {"log_lambda": np.array([-2.3])}

    def time_features(self, t):
        return {"t": np.asarray(t, float)}

    def log_hazard_x(self, xp, params, tf, eta):
        return params["log_lambda"][..., None] + eta

    def cumhaz_x(self, xp, params, tf, eta):
        return xp.exp(params["log_lambda"][..., None] + eta) * tf["t"]

    def time_at_cumhaz(self, params, h, eta):
        return np.asarray(h, float) * np.exp(-np.asarray(eta, float)
                                              - np.asarray(params["log_lambda"])[:, None])

    def time_ratio(self, post):
        return np.exp(-post["log_hr"])  # constant hazard: time ratio = 1 / HR

    def build_params(self, priors, data, dims, offset=0.0):
        log_lambda = centred_intercept(priors["log_lambda"], "log_lambda", offset,
                                       self.unit_shift({}, data["log_unit"])["log_lambda"])
        return {"log_lambda": log_lambda}
