"""Accelerated-failure-time families (not proportional hazards): log-normal, log-logistic.

log T = log_scale + eta + sigma * Z, with Z standard normal (log-normal) or standard
logistic (log-logistic). The arm effect is ``log_tr``, the log time ratio: TR > 1 means
longer survival on the treatment arm. There is no single hazard ratio; quantities report the
time ratio, medians, RMST and survival differences instead.
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from scipy import stats

from bayes_hcc.families.base import TIME_RATIO, Family, centred_intercept
from bayes_hcc.spec.priors import Prior


class AFTFamily(Family):
    params = ("log_scale", "log_sigma")
    headline = ("log_sigma",)
    effect = TIME_RATIO

    # standardized log-time distribution: log survival, log density, inverse survival
    # (numpy), and the log survival and log density in PyTensor
    @abstractmethod
    def std_logsf(self, z): ...

    @abstractmethod
    def std_logpdf(self, z): ...

    @abstractmethod
    def std_isf(self, p): ...

    @abstractmethod
    def pt_logsf(self, z): ...

    @abstractmethod
    def pt_logpdf(self, z): ...

    @classmethod
    def default_priors(cls):
        # log_scale ~ Normal(log 8 months, 2): the median survival time at the typical site
        # (exp(log_scale)) from days to decades; log_sigma ~ Normal(0, 0.5): spread of log
        # times 0.37-2.7. log_tr ~ Normal(0, 1): time ratio within 0.14-7.1 (95%).
        return {"log_tr": Prior("Normal", mu=0.0, sigma=1.0),
                "log_scale": Prior("Normal", mu=float(np.log(8.0)), sigma=2.0),
                "log_sigma": Prior("Normal", mu=0.0, sigma=0.5)}

    def unit_shift(self, params, log_unit):
        # a log time in the data's unit = log time in months - log(unit length in months)
        return {"log_scale": -log_unit}

    def time_at_cumhaz(self, params, h, eta):
        # S(t | eta) = exp(-h)  <=>  log t = log_scale + eta + sigma * isf(exp(-h))
        mu = np.asarray(params["log_scale"], float)[:, None]
        sigma = np.exp(np.asarray(params["log_sigma"], float))[:, None]
        return np.exp(mu + eta + sigma * self.std_isf(np.exp(-np.asarray(h, float))))

    def time_ratio(self, post):
        return np.exp(post["log_tr"])

    def example_params(self):
        return {"log_scale": np.array([np.log(8.0)]), "log_sigma": np.array([-0.2])}

    def time_features(self, t):
        with np.errstate(divide="ignore"):
            return {"log_t": np.log(np.asarray(t, float))}

    def _z(self, xp, params, tf, eta):
        sigma = xp.exp(params["log_sigma"][..., None])
        return (tf["log_t"] - params["log_scale"][..., None] - eta) / sigma

    def log_hazard_x(self, xp, params, tf, eta):
        z = self._z(xp, params, tf, eta)
        logpdf, logsf = (self.std_logpdf, self.std_logsf) if xp is np else \
            (self.pt_logpdf, self.pt_logsf)
        return logpdf(z) - params["log_sigma"][..., None] - tf["log_t"] - logsf(z)

    def cumhaz_x(self, xp, params, tf, eta):
        logsf = self.std_logsf if xp is np else self.pt_logsf
        return -logsf(self._z(xp, params, tf, eta))

    def build_params(self, priors, data, dims, offset=0.0):
        log_scale = centred_intercept(priors["log_scale"], "log_scale", offset,
                                      self.unit_shift({}, data["log_unit"])["log_scale"])
        log_sigma = priors["log_sigma"].pymc("log_sigma")
        pm.Deterministic("sigma", pt.exp(log_sigma))
        return {"log_scale": log_scale, "log_sigma": log_sigma}


class LogNormalFamily(AFTFamily):
    key, name, label, cli_name = "lognormal_aft", "lognormal", "log-normal AFT", "lognormal"
    model_name = "LogNormalAFT"
    model_doc = """Log-normal accelerated failure time model (not proportional hazards).

    log T = log_scale + eta + sigma Z, Z ~ N(0, 1); the arm effect is ``log_tr`` (log time
    ratio, TR > 1 = longer survival on treatment). There is no single hazard ratio.
    Arguments as for :class:`WeibullPH`.
    """

    def std_logsf(self, z):
        return stats.norm.logsf(z)

    def std_logpdf(self, z):
        return stats.norm.logpdf(z)

    def std_isf(self, p):
        return stats.norm.isf(p)

    def pt_logsf(self, z):
        # log(1 - Phi(z)) = log(erfc(z / sqrt 2) / 2); for z >= 0 through erfcx, which keeps
        # precision far in the upper tail (erfc(x) = erfcx(x) exp(-x^2)).
        x = z / np.sqrt(2.0)
        safe_pos = pt.maximum(x, 0.0)
        safe_neg = pt.minimum(x, 0.0)
        return pt.switch(x >= 0, pt.log(0.5 * pt.erfcx(safe_pos)) - safe_pos ** 2,
                         pt.log(0.5 * pt.erfc(safe_neg)))

    def pt_logpdf(self, z):
        return -0.5 * z ** 2 - 0.5 * np.log(2 * np.pi)


class LogLogisticFamily(AFTFamily):
    key, name, label, cli_name = "loglogistic_aft", "loglogistic", "log-logistic AFT", "loglogistic"
    model_name = "LogLogisticAFT"
    model_doc = """Log-logistic accelerated failure time model (not proportional hazards);
    as :class:`LogNormalAFT` with a standard logistic Z."""

    def std_logsf(self, z):
        return -np.logaddexp(0.0, z)

    def std_logpdf(self, z):
        return z - 2.0 * np.logaddexp(0.0, z)

    def std_isf(self, p):
        p = np.asarray(p, float)
        with np.errstate(divide="ignore"):
            return np.log1p(-p) - np.log(p)  # logit(1 - p), exact for tiny p

    def pt_logsf(self, z):
        return -pt.softplus(z)

    def pt_logpdf(self, z):
        return z - 2.0 * pt.softplus(z)
