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
from scipy import special, stats

from bayes_hcc.families.base import Family, centred_intercept
from bayes_hcc.spec.priors import Prior


class AFTFamily(Family):
    params = ("log_scale", "log_sigma")
    headline = ("log_sigma",)
    proportional_hazards = False
    arm_effect = "log_tr"

    # standardized log-time distribution: log survival, log density, inverse survival,
    # sampling (numpy), and the log survival and log density in PyTensor
    @abstractmethod
    def std_logsf(self, z): ...

    @abstractmethod
    def std_logpdf(self, z): ...

    @abstractmethod
    def std_isf(self, p): ...

    @abstractmethod
    def std_sample(self, rng, size): ...

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

    @staticmethod
    def _ls(params, ndim):
        shape = (-1,) + (1,) * (ndim - 1)
        return (np.asarray(params["log_scale"]).reshape(shape),
                np.exp(np.asarray(params["log_sigma"])).reshape(shape))

    def log_survival(self, params, t, eta):
        """log S(t | eta); params (S,), t and eta broadcastable with a leading (S or 1) axis."""
        t, eta = np.asarray(t, float), np.asarray(eta, float)
        nd = max(t.ndim, eta.ndim)
        mu, sigma = self._ls(params, nd)
        with np.errstate(divide="ignore"):
            z = (np.log(t) - mu - eta) / sigma
        return self.std_logsf(z)

    def median(self, params, eta):
        mu, sigma = self._ls(params, np.ndim(eta))
        return np.exp(mu + eta + sigma * self.std_isf(0.5))

    def sample(self, params, eta, rng):
        mu, sigma = self._ls(params, np.ndim(eta))
        return np.exp(mu + eta + sigma * self.std_sample(rng, np.shape(eta)))

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

    # Baseline (eta = 0) versions of the Family interface, for generic code and tests.
    def cumhaz(self, params, t):
        return -self.log_survival(params, np.asarray(t, float)[None, :], 0.0)

    def cumhaz_each(self, params, t):
        return -self.log_survival(params, np.asarray(t, float), 0.0)

    def log_hazard(self, params, t):
        t = np.asarray(t, float)[None, :]
        mu, sigma = self._ls(params, 2)
        z = (np.log(t) - mu) / sigma
        return self.std_logpdf(z) - np.log(sigma) - np.log(t) - self.std_logsf(z)

    def inverse_cumhaz(self, params, h):
        mu, sigma = self._ls(params, np.ndim(h))
        return np.exp(mu + sigma * self.std_isf(np.exp(-np.asarray(h, float))))

    def build_params(self, priors, data, dims, offset=0.0):
        log_scale = centred_intercept(priors["log_scale"], "log_scale", offset,
                                      self.unit_shift({}, data["log_unit"])["log_scale"])
        log_sigma = priors["log_sigma"].pymc("log_sigma")
        pm.Deterministic("sigma", pt.exp(log_sigma))
        return {"log_scale": log_scale, "log_sigma": log_sigma}


class LogNormalFamily(AFTFamily):
    key, name, label, cli_name = "lognormal_aft", "lognormal", "log-normal AFT", "lognormal"

    def std_logsf(self, z):
        return stats.norm.logsf(z)

    def std_logpdf(self, z):
        return stats.norm.logpdf(z)

    def std_isf(self, p):
        return stats.norm.isf(p)

    def std_sample(self, rng, size):
        return rng.standard_normal(size)

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

    def std_logsf(self, z):
        return -np.logaddexp(0.0, z)

    def std_logpdf(self, z):
        return z - 2.0 * np.logaddexp(0.0, z)

    def std_isf(self, p):
        return special.logit(1.0 - np.asarray(p, float))

    def std_sample(self, rng, size):
        return rng.logistic(size=size)

    def pt_logsf(self, z):
        return -pt.softplus(z)

    def pt_logpdf(self, z):
        return z - 2.0 * pt.softplus(z)
