"""Weibull proportional hazards: h0(t) = lambda * k * t**(k - 1), H0(t) = lambda * t**k."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_hcc.families.base import Family, centred_intercept, log_hr_prior, log_rate_prior
from bayes_hcc.spec.priors import Prior


class WeibullFamily(Family):
    """Weibull PH. Parameters ``log_lambda`` (log scale of the baseline cumulative hazard)
    and ``log_shape`` (log k); ``shape`` = k is stored too. The AFT view: a hazard ratio HR
    is a time ratio HR**(-1/k)."""

    key, name, label, cli_name = "weibull_ph", "weibull", "Weibull PH", "weibull"
    model_name = "WeibullPH"
    model_doc = """Weibull proportional-hazards model with arm, site and covariate effects.

    h(t) = lambda k t^(k-1) exp(eta); the hazard ratio is exp(log_hr) and the AFT time
    ratio exp(-log_hr / k) is derived on every draw.

    Parameters
    ----------
    site_effect : {"random", "fixed", "none"}, default "random"
    arm_by_site : {None, "random"}
        A treatment-by-site random effect on the log HR.
    covariates : sequence of str
        Numeric patient-level columns (centred and scaled).
    priors : dict
        Prior overrides by name (``bh.Prior`` or its dict form).
    site_parametrization : {"auto", "noncentered", "centered"}
    prior_reference_time : float, optional
        Put the ``log_lambda`` prior on the log of the average baseline hazard over
        [0, prior_reference_time] (per month), log(H0(t_ref) / t_ref), instead of on
        log lambda = log H0(1 month). With t_ref at a known median the prior of the control
        median no longer depends on the shape: how a MAP prior of a control hazard
        (``bh.map_prior``) is used, with the shape from the data.

    Examples
    --------
    >>> import bayes_hcc as bh
    >>> model = bh.WeibullPH(site_effect="random")
    >>> model
    WeibullPH(site_effect='random', arm_by_site=None, covariates=())
    """
    headline = ("log_shape",)
    params = ("log_lambda", "log_shape")
    options = {"prior_reference_time": "time"}

    def __init__(self, prior_reference_time: float | None = None):
        # stored in months (the scale the priors are declared on)
        self.prior_reference_months = (None if prior_reference_time is None
                                       else float(prior_reference_time))

    @classmethod
    def for_data(cls, time, event, time_unit="months", prior_reference_time=None):
        from bayes_hcc.units import convert

        if prior_reference_time is None:
            return cls()
        return cls(float(convert(float(prior_reference_time), time_unit, "months")))

    def settings(self):
        out = {"name": self.name}
        if self.prior_reference_months is not None:
            out["prior_reference_months"] = self.prior_reference_months
        return out

    @classmethod
    def from_settings(cls, settings):
        return cls(settings.get("prior_reference_months"))

    def describe(self):
        return self.name + ("" if self.prior_reference_months is None else
                            f" (log_lambda prior on the average hazard to "
                            f"{self.prior_reference_months:g} months)")

    @classmethod
    def default_priors(cls):
        # log_lambda: Normal(-2.5, 2) in months: a monthly hazard of 0.08 (median ~8 months
        # at k = 1), +-2 SD covering medians from days to decades. log_shape: Normal(0, 0.5):
        # k within 0.37-2.7 (95%), from steeply falling to steeply rising hazards.
        return {"log_hr": log_hr_prior(),
                "log_lambda": log_rate_prior(),
                "log_shape": Prior("Normal", mu=0.0, sigma=0.5)}

    def unit_shift(self, params, log_unit):
        # H0 = lambda_m t_m^k with t_m = t_u x (unit length in months): lambda_u =
        # lambda_m x length^k, so log lambda moves by k log(length), not by log(length).
        # the shape from log_shape when given (a stratum's own shape: Family.stratum_params)
        if "log_shape" in params:
            log_k = params["log_shape"]
            k = np.exp(log_k) if isinstance(log_k, (np.ndarray, np.generic, float, int)) \
                else pt.exp(log_k)
        else:
            k = params["shape"]
        if self.prior_reference_months is None:
            return {"log_lambda": k * log_unit}
        # the prior is on phi = log(H0_m(t_ref) / t_ref) = log lambda_m + (k - 1) log t_ref,
        # so log lambda_m = phi + (1 - k) log t_ref, then k log(unit) to the data's unit
        return {"log_lambda": k * log_unit + (1 - k) * np.log(self.prior_reference_months)}

    def example_params(self):
        return {"log_lambda": np.array([-2.3]), "log_shape": np.array([np.log(1.3)])}

    def time_features(self, t):
        with np.errstate(divide="ignore"):
            return {"log_t": np.log(np.asarray(t, float))}

    def log_hazard_x(self, xp, params, tf, eta):
        log_k = params["log_shape"][..., None]
        return params["log_lambda"][..., None] + log_k + (xp.exp(log_k) - 1) * tf["log_t"] + eta

    def cumhaz_x(self, xp, params, tf, eta):
        # lambda t^k e^eta, written as exp(.) so that t = 0 gives exp(-inf) = 0
        return xp.exp(params["log_lambda"][..., None] + eta
                      + xp.exp(params["log_shape"][..., None]) * tf["log_t"])

    def time_at_cumhaz(self, params, h, eta):
        # lambda t^k e^eta = h  <=>  t = (h e^-eta / lambda)^(1/k)
        log_lam = np.asarray(params["log_lambda"], float)[:, None]
        k = np.exp(np.asarray(params["log_shape"], float))[:, None]
        with np.errstate(divide="ignore"):
            return np.exp((np.log(h) - eta - log_lam) / k)

    def time_ratio(self, post):
        # S(t | arm) = exp(-lambda t^k HR^arm) = S0(t HR^(1/k)): time scaled by HR^(-1/k)
        return np.exp(-post["log_hr"] / np.exp(post["log_shape"]))

    def data_arrays(self, time, event, unit_index, n_units, upper=None):
        out = super().data_arrays(time, event, unit_index, n_units, upper)
        log_t, event = out["tf__log_t"], out["event"]
        # Reference time t0 for the intercept: the mean log time of the events.
        ref = log_t[event > 0].mean() if event.any() else (log_t.mean() if len(log_t) else 0.0)
        out["log_time_ref"] = np.asarray(float(ref))
        return out

    def build_params(self, priors, data, dims, offset=0.0):
        log_shape = priors["log_shape"].pymc("log_shape")
        shape = pm.Deterministic("shape", pt.exp(log_shape))
        # H0(t) = lambda t^k = (lambda t0^k) (t / t0)^k: log lambda is sampled at the
        # reference time t0, as log lambda + k log t0 (+ offset), where it is nearly
        # uncorrelated with the shape (exact change of coordinates: centred_intercept).
        log_lambda = centred_intercept(
            priors["log_lambda"], "log_lambda", offset + shape * data["log_time_ref"],
            self.unit_shift({"shape": shape}, data["log_unit"])["log_lambda"])
        return {"log_lambda": log_lambda, "log_shape": log_shape}
