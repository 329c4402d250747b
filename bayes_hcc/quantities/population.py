"""Estimands: which population a survival curve, median or RMST refers to.

* ``"standardized"`` (default): every trial patient under each arm, with their own site
  and covariates, averaged: what a Kaplan-Meier curve of the trial estimates.
* ``"typical_site"``: the trial patients' covariates, site effect 0 (the average site).
* ``"new_site"``: the trial patients' covariates, the site effect integrated over its
  random-effect distribution (Gauss-Hermite quadrature): a hospital not in the trial.

With a stratified baseline (``strata=``) the same three read: every patient with their own
stratum's baseline (standardised over the trial's strata); the typical stratum's baseline
(the strata's deviations at 0); a new stratum's, its deviations integrated over their
hierarchical distribution (Monte Carlo, ``_NEW_STRATUM_DRAWS`` fixed standard-normal draws
per posterior draw; partial pooling only: separate baselines have no distribution of strata).
"""

from __future__ import annotations

import numpy as np

from bayes_hcc.errors import BayesHCCError
from bayes_hcc.models.fit import flat_posterior

ESTIMANDS = ("standardized", "typical_site", "new_site")
_GH_NODES = 20
_NEW_STRATUM_DRAWS = 24


def check_estimand(estimand: str) -> str:
    if estimand not in ESTIMANDS:
        raise BayesHCCError(f"estimand={estimand!r}; choose one of {', '.join(ESTIMANDS)}.")
    return estimand


def posterior_params(fit) -> dict:
    post = fit.datatree["posterior"].to_dataset()
    return flat_posterior(post, list(post.data_vars))


def arm_populations(fit, estimand: str, params: dict | None = None):
    """For each arm (control, treatment): (eta (S, G), weights (G,), baseline params); with
    a stratified baseline (None, None, components): one component (params, eta, w) per
    stratum (``quantities._core.mixture``)."""
    check_estimand(estimand)
    params = posterior_params(fit) if params is None else params
    stratum = fit.stratum()
    if stratum is not None:
        return _stratified_populations(fit, estimand, params, stratum)
    return _populations(fit, estimand, params, np.ones(len(fit.design()[0]), bool))


def _stratified_populations(fit, estimand, params, stratum):
    from bayes_hcc.models.design import stratum_params_numpy
    from bayes_hcc.units import log_unit_in_months

    family, n_strata = fit.family, len(fit.strata)
    log_unit = log_unit_in_months(fit.time_unit)
    everyone = np.ones(len(stratum), bool)
    if estimand == "typical_site":  # the typical stratum: deviations 0
        return _populations(fit, estimand, params, everyone)
    if estimand == "new_site":
        if fit.pooling != "partial":
            raise BayesHCCError("estimand='new_site' (a new stratum) needs partially pooled "
                                "strata (a distribution of strata); this fit has "
                                f"pooling={fit.pooling!r}.")
        # a new stratum: its deviations sd_p * z, z standard normal, fixed draws
        rng = np.random.default_rng(20200228)
        S = params[family.arm_effect].shape[0]
        comps = [[], []]
        for _ in range(_NEW_STRATUM_DRAWS):
            devs = {}
            for p in family.params:
                shape = np.shape(params[f"stratum_dev_{p}"])[1:-1]
                devs[p] = params[f"stratum_sd_{p}"].reshape((S,) + (1,) * len(shape)) \
                    * rng.standard_normal(shape)[None]
            new = {**params, **family.stratum_params(np, params, devs, log_unit)}
            for a, (eta, w, p) in enumerate(_populations(fit, estimand, new, everyone)):
                comps[a].append((p, eta, w / _NEW_STRATUM_DRAWS))
        return [(None, None, c) for c in comps]
    per = stratum_params_numpy(family, params, n_strata, log_unit)
    comps = [[], []]
    n = len(stratum)
    for s in range(n_strata):
        rows = stratum == s
        if not rows.any():
            continue
        for a, (eta, w, p) in enumerate(_populations(fit, estimand, {**params, **per[s]},
                                                     rows)):
            comps[a].append((p, eta, w * rows.sum() / n))
    return [(None, None, c) for c in comps]


def _populations(fit, estimand, params, rows):
    """Per arm (eta, w, params) for the patients ``rows`` (weights sum to 1 over them)."""
    arm, site, X = fit.design()
    site, X = site[rows], X[rows]
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
        else:
            # a new site's deviations from the typical one: its site effect (random sites)
            # and, in the treatment arm, its treatment-by-site effect; none is typical_site
            sds = [params[k] for k, on in (("site_sd", site_mode == "random"),
                                           ("arm_site_sd", bool(arm_by_site and a))) if on]
            if estimand == "typical_site" or not sds:
                out.append((eta, w, fit.family.params_for_arm(params, int(a))))
                continue
            # independent normal deviations: Gauss-Hermite nodes for each (2-d for both)
            x, wx = np.polynomial.hermite_e.hermegauss(_GH_NODES)
            wx = wx / wx.sum()
            dev, wdev = np.zeros((S, 1)), np.ones(1)
            for sd in sds:
                dev = (dev[:, :, None] + sd[:, None, None] * x[None, None, :]).reshape(S, -1)
                wdev = np.outer(wdev, wx).ravel()
            eta_full = (eta[:, :, None] + dev[:, None, :]).reshape(S, -1)
            out.append((eta_full, np.outer(w, wdev).ravel(),
                        fit.family.params_for_arm(params, int(a))))
    return out
