"""Estimands: which population a survival curve, median or RMST refers to.

* ``"standardized"`` (default): every trial patient under each arm, with their own site
  and covariates, averaged: what a Kaplan-Meier curve of the trial estimates.
* ``"typical_site"``: the trial patients' covariates, site effect 0 (the average site).
* ``"new_site"``: the trial patients' covariates, the site effect integrated over its
  random-effect distribution (Gauss-Hermite quadrature): a hospital not in the trial.
"""

from __future__ import annotations

import numpy as np

from bayes_hcc.errors import BayesHCCError
from bayes_hcc.models.fit import flat_posterior

ESTIMANDS = ("standardized", "typical_site", "new_site")
_GH_NODES = 20


def check_estimand(estimand: str) -> str:
    if estimand not in ESTIMANDS:
        raise BayesHCCError(f"estimand={estimand!r}; choose one of {', '.join(ESTIMANDS)}.")
    return estimand


def posterior_params(fit) -> dict:
    post = fit.datatree["posterior"].to_dataset()
    return flat_posterior(post, list(post.data_vars))


def arm_populations(fit, estimand: str, params: dict | None = None):
    """For each arm (control, treatment): (eta (S, G), weights (G,), baseline params)."""
    check_estimand(estimand)
    params = posterior_params(fit) if params is None else params
    arm, site, X = fit.design()
    arm_effect = fit.family.arm_effect
    S = params[arm_effect].shape[0]
    # Collapse patients with the same site and covariates into weighted groups.
    key = np.column_stack([site.astype(float), X]) if X.shape[1] else site[:, None].astype(float)
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    g_site, g_X = uniq[:, 0].astype(int), uniq[:, 1:]
    w = counts / counts.sum()
    xb = params["beta"] @ g_X.T if X.shape[1] else np.zeros((S, len(w)))
    site_mode, arm_by_site = fit.site_effect, fit.arm_by_site
    if estimand == "new_site" and site_mode == "fixed":
        raise BayesHCCError("estimand='new_site' needs random site effects (a distribution "
                            "of sites); this fit has site_effect='fixed'.")
    out = []
    for a in (0.0, 1.0):
        eta = params[arm_effect][:, None] * a + xb
        if estimand == "standardized":
            if site_mode != "none":
                eta = eta + params["site_effect"][:, g_site]
            if arm_by_site:
                eta = eta + a * params["arm_site_effect"][:, g_site]
            out.append((eta, w, fit.family.params_for_arm(params, int(a))))
        elif estimand == "typical_site" or site_mode == "none":
            out.append((eta, w, fit.family.params_for_arm(params, int(a))))
        else:
            x, wx = np.polynomial.hermite_e.hermegauss(_GH_NODES)
            wx = wx / wx.sum()
            dev = params["site_sd"][:, None] * x[None, :]  # (S, K)
            if arm_by_site and a:
                # Independent site and treatment-by-site deviations: 2-d quadrature.
                dev = (dev[:, :, None] + params["arm_site_sd"][:, None, None] * x[None, None, :]
                       ).reshape(S, -1)
                wx = np.outer(wx, wx).ravel()
            eta_full = (eta[:, :, None] + dev[:, None, :]).reshape(S, -1)
            out.append((eta_full, np.outer(w, wx).ravel(),
                        fit.family.params_for_arm(params, int(a))))
    return out
