"""The linear predictor: arm, site and covariate terms, in PyTensor and in numpy.

eta = log_hr * arm + site_effect[site] + arm * arm_site_effect[site] + X @ beta

The sampler moves the family's intercept together with the parts of eta common to every
unit (``build_eta``'s offset): an exact change of the sampler's coordinates, same posterior,
fewer gradient evaluations (``families.base.centred_intercept``).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_hcc.families.base import centred_intercept

SITE_EFFECTS = ("random", "fixed", "none")
SITE_PARAMETRIZATIONS = ("auto", "noncentered", "centered")
# "auto": centred when every site has at least this many events, non-centred otherwise.
# A site with d events pins its log-hazard offset to about 1/sqrt(d); the centred form wins
# when that is well inside the between-site SD tau (tau^2 * d >~ 3; at tau = 0.2, d >= 75).
# Measured on simulated trials (6 sites, site SD 0.2; bulk ESS of site_sd, 3-4 seeds):
# smallest site 95-101 events (1,300 patients): centred 2-2.5x the ESS in less time, both
# families, no divergences; smallest site 30-48 events (400-650 patients): mixed, with a
# few divergences in the centred form; 7-13 events (130 patients): non-centred as good or
# better. Choose explicitly to override.
AUTO_CENTERED_MIN_EVENTS = 75
ARM_BY_SITE = (None, "random")
#: How the strata's baselines are tied together: "partial" (a hierarchical prior on each
#: baseline parameter's stratum deviations) or "none" (separate baselines).
POOLING = ("partial", "none")


def centring_weights(arm, site, event, n_sites: int) -> dict:
    """Shares of the events (data for ``build_eta``): in the treatment arm, at each site,
    and at each site among the treatment arm's events.

    The event-weighted average is the best-determined level of the log hazard, so an
    intercept (or arm effect) at that level is nearly uncorrelated with the site terms.
    Any fixed weights are exact; without events they are equal."""
    event, site = np.asarray(event, float), np.asarray(site)
    treated = np.asarray(arm) == 1

    def share(weights, where):
        counts = np.bincount(site[where], weights=weights[where], minlength=n_sites)
        return counts / counts.sum() if counts.sum() > 0 else np.full(n_sites, 1.0 / n_sites)

    total = event.sum()
    arm_share = float(event[treated].sum() / total) if total > 0 else 0.5
    everyone = np.ones(len(site), bool)
    return {"arm_centre": np.asarray(arm_share), "site_weight": share(event, everyone),
            "arm_site_weight": share(event, treated)}


def build_eta(priors: dict, data: dict, *, site_effect: str, arm_by_site, n_cov: int,
              site_parametrization: str = "noncentered", arm_effect: str = "log_hr"):
    """Create the arm/site/covariate variables; return ``(eta, offset)`` (PyTensor).

    eta is the linear predictor of each unit. ``offset`` is the part of it that moves every
    unit's log hazard together: the arm effect times the treatment arm's share of events
    (``data["arm_centre"]``) plus the event-weighted mean of the random site effects
    (``data["site_weight"]``). The family samples its intercept shifted by ``offset``
    (``families.base.centred_intercept``); without the two data values ``offset`` is 0.
    Likewise, with treatment-by-site deviations the arm effect is sampled shifted by their
    mean weighted by the treatment arm's events per site (``data["arm_site_weight"]``).

    ``site_parametrization`` is "noncentered" or "centered" here ("auto" is resolved from the
    data before the graph is built: ``resolve_site_parametrization``)."""
    if site_parametrization not in ("noncentered", "centered"):
        raise ValueError(f"site_parametrization={site_parametrization!r} must be resolved "
                         "first (resolve_site_parametrization)")
    dev = None
    if arm_by_site == "random":
        sd = priors["arm_site_sd"].pymc("arm_site_sd")
        z = pm.Normal("arm_site_z", 0.0, 1.0, dims="site")
        dev = pm.Deterministic("arm_site_effect", sd * z, dims="site")
    if dev is not None and data.get("arm_site_weight") is not None:
        # The treatment arm's event-weighted mean deviation moves every treated unit's log
        # hazard alike, as the arm effect does: the two are sampled together.
        effect_arm = centred_intercept(priors[arm_effect], arm_effect,
                                       (data["arm_site_weight"] * dev).sum())
    else:
        effect_arm = priors[arm_effect].pymc(arm_effect)
    eta = effect_arm * data["arm"]
    arm_centre = data.get("arm_centre")
    offset = 0.0 if arm_centre is None else effect_arm * arm_centre
    site = data.get("site_idx")
    if site_effect == "random":
        site_sd = priors["site_sd"].pymc("site_sd")
        if site_parametrization == "centered":
            # Better when sites are large (many events per site): non-centred effects mix
            # worse as patients per site grow (measured: AUTO_CENTERED_MIN_EVENTS).
            effect = pm.Normal("site_effect", 0.0, site_sd, dims="site")
        else:
            z = pm.Normal("site_z", 0.0, 1.0, dims="site")  # non-centred: small sites
            effect = pm.Deterministic("site_effect", site_sd * z, dims="site")
        if data.get("site_weight") is not None:
            # The weighted mean of the site effects moves every unit's log hazard alike,
            # as the intercept does: sampled separately, the two are strongly correlated.
            offset = offset + (data["site_weight"] * effect).sum()
        eta = eta + effect[site]
    elif site_effect == "fixed":
        # Sum-to-zero: site effects are deviations from the average site.
        effect = pm.ZeroSumNormal("site_effect", sigma=priors["site_effect"].params["sigma"],
                                  dims="site")
        eta = eta + effect[site]
    if dev is not None:
        eta = eta + data["arm"] * dev[site]
    if n_cov:
        beta = priors["beta"].pymc("beta", dims="covariate")
        eta = eta + pt.dot(data["X"], beta)
    return eta, offset


def resolve_site_parametrization(requested: str, site_effect: str, site, event,
                                 n_sites: int) -> str:
    """The parametrization a fit uses: "auto" picks centred when every site has at least
    ``AUTO_CENTERED_MIN_EVENTS`` events (data-rich sites), non-centred otherwise."""
    if requested != "auto":
        return requested
    if site_effect != "random":
        return "noncentered"  # no random site effect: the choice has no effect on the graph
    events = np.bincount(np.asarray(site)[np.asarray(event) > 0], minlength=n_sites)
    return "centered" if events.min() >= AUTO_CENTERED_MIN_EVENTS else "noncentered"


def eta_numpy(post: dict, arm, site, X, *, site_effect: str, arm_by_site,
              arm_effect: str = "log_hr") -> np.ndarray:
    """The same linear predictor from flattened posterior draws (S, ...): shape (S, n)."""
    arm = np.asarray(arm, float)[None, :]
    eta = post[arm_effect][:, None] * arm
    if site_effect in ("random", "fixed"):
        eta = eta + post["site_effect"][:, site]
    if arm_by_site == "random":
        eta = eta + arm * post["arm_site_effect"][:, site]
    if X is not None and X.shape[1]:
        eta = eta + post["beta"] @ np.asarray(X, float).T
    return eta


def active_priors(priors: dict, family, site_effect, arm_by_site, has_cov,
                  pooling: str | None = None) -> list:
    """The priors a model with these settings uses: the family's and the site, treatment-by-site
    and covariate terms' (the prior summary, the log prior); with strata pooled partially,
    the stratum SD's."""
    keys = list(family.default_priors())
    if pooling == "partial":
        keys.append("stratum_sd")
    if site_effect == "random":
        keys.append("site_sd")
    elif site_effect == "fixed":
        keys.append("site_effect")
    if arm_by_site == "random":
        keys.append("arm_site_sd")
    if has_cov:
        keys.append("beta")
    return keys


def prior_sigma(priors, name, default=1.0):
    """The scale of a baseline parameter's prior (its ``sigma``), else ``default``."""
    p = priors.get(name)
    return p.params["sigma"] if p is not None and "sigma" in p.params else default


def build_strata(family, priors: dict, n_strata: int, pooling: str, log_unit):
    """The stratified baseline (PyTensor): a function from the typical stratum's
    parameters to each stratum's, for ``Family.build``.

    Every baseline parameter p of the family (``family.params``; vectors keep their dims,
    ``family.param_dims``) deviates by stratum, on the months scale of its prior:

    * ``pooling="partial"``: dev_p = stratum_sd_p * z, z ~ N(0, 1), stratum_sd_p ~ the
      ``stratum_sd`` prior (HalfNormal(1)): the typical stratum is the family's baseline,
      strata with few events are pulled towards it.
    * ``pooling="none"``: dev_p ~ ZeroSumNormal(sigma_p) over the strata, sigma_p the
      scale of p's own prior: deviations from the average stratum as wide as the prior,
      so each stratum's baseline is its own (the stratified Cox model's analogue).
    """
    def per_stratum(params):
        devs = {}
        for p in family.params:
            dims = (*family.param_dims.get(p, ()), "stratum")
            if pooling == "partial":
                sd = priors["stratum_sd"].pymc(f"stratum_sd_{p}")
                z = pm.Normal(f"stratum_z_{p}", 0.0, 1.0, dims=dims)
                devs[p] = pm.Deterministic(f"stratum_dev_{p}", sd * z, dims=dims)
            else:
                devs[p] = pm.ZeroSumNormal(f"stratum_dev_{p}", sigma=prior_sigma(priors, p),
                                           dims=dims)
        return [family.stratum_params(pt, params, {p: d[..., s] for p, d in devs.items()},
                                      log_unit)
                for s in range(n_strata)]
    return per_stratum


def stratum_params_numpy(family, post: dict, n_strata: int, log_unit) -> list:
    """Each stratum's baseline parameters from flattened draws (S, ...): one dict per
    stratum (the numpy mirror of ``build_strata``)."""
    base = {k: v for k, v in post.items()}
    return [family.stratum_params(np, base, {p: post[f"stratum_dev_{p}"][..., s]
                                             for p in family.params}, log_unit)
            for s in range(n_strata)]


def patient_groups(family, post: dict, arm, stratum=None, n_strata: int = 1,
                   log_unit=0.0):
    """(mask, params) for each group of patients sharing their baseline parameters: the arm
    (a time-varying HR gives each arm its own) and, when the baseline is stratified
    (``stratum``: each patient's index), the stratum. numpy draws (S, ...)."""
    arm = np.asarray(arm)
    per = [post] if stratum is None else stratum_params_numpy(family, post, n_strata, log_unit)
    st = np.zeros(len(arm), np.int64) if stratum is None else np.asarray(stratum)
    for s, params in enumerate(per):
        for a in (0, 1):
            m = (arm == a) & (st == s)
            if m.any():
                yield m, family.params_for_arm(params, a)
