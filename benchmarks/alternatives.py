"""The alternatives our fits are measured against, built as their users would build them.

* bambi: the Weibull model with a random site intercept, ``censored(time, status) ~ arm +
  (1|site)``, family "weibull" (an AFT parametrization with mean mu = exp(eta); log HR =
  -alpha * b_arm, site SD on the log hazard = alpha * sigma_site), bambi's default priors.
* long format: the person-period Poisson piecewise model of the PyMC example gallery (one
  row per patient and interval at risk, ``pm.Poisson`` on the event indicator with the
  exposure as offset), with the same priors and parametrization as our piecewise model so
  that only the data layout differs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from bayes_hcc.families.piecewise import exposure_matrix, interval_index


def bambi_weibull(time, event, arm, site) -> pm.Model:
    import bambi as bmb

    df = pd.DataFrame({"time": time, "status": np.where(event == 1, "none", "right"),
                       "arm": arm.astype(float), "site": pd.Categorical(site)})
    model = bmb.Model("censored(time, status) ~ arm + (1|site)", df, family="weibull")
    model.build()
    return model.backend.model


def bambi_derived(posterior):
    """log HR and site SD (log-hazard scale) from bambi's AFT draws."""
    alpha = posterior["alpha"]
    return {"log_hr": -alpha * posterior["arm"], "site_sd": alpha * posterior["1|site_sigma"]}


def longformat_pwe(time, event, arm, site, cuts, rw_sd: float = 0.3,
                   site_parametrization: str = "noncentered") -> pm.Model:
    """The person-period Poisson model (one row per patient and interval at risk), with our
    priors and the site parametrization our fit used, so only the data layout differs."""
    edges = np.concatenate([[0.0], cuts, [np.inf]])
    expo = exposure_matrix(time, edges)
    j = interval_index(time, np.asarray(cuts))
    pid, k = np.nonzero(expo > 0)
    d = ((event[pid] == 1) & (j[pid] == k)).astype(np.int64)
    n_int, n_sites = len(edges) - 1, int(site.max()) + 1
    with pm.Model(coords={"interval": np.arange(n_int), "site": np.arange(n_sites)}) as m:
        a1 = pm.Normal("log_baseline_hazard_1", -2.5, 2.0)
        steps = pm.Normal("rw_z", 0.0, 1.0, shape=n_int - 1)
        alpha = pt.concatenate([pt.atleast_1d(a1), a1 + pt.cumsum(rw_sd * steps)])
        log_hr = pm.Normal("log_hr", 0.0, 1.0)
        site_sd = pm.HalfNormal("site_sd", 1.0)
        if site_parametrization == "centered":
            effect = pm.Normal("site_effect", 0.0, site_sd, dims="site")
        else:
            effect = site_sd * pm.Normal("site_z", 0.0, 1.0, dims="site")
        eta = alpha[k] + log_hr * arm[pid] + effect[site[pid]]
        pm.Poisson("events", mu=expo[pid, k] * pt.exp(eta), observed=d)
    return m
