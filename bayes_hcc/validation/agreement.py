"""Agreement with established software: lifelines (Kaplan-Meier, Weibull, Cox, stratified
Cox) and statsmodels (Poisson GLM for the piecewise model).

With vague priors the posterior mean of the log HR and the maximum-likelihood estimate differ
by O(1/n); each check states its tolerance in units of the reference standard error (SE), so
a pass means "the same answer as the established tool, up to a small part of the sampling
uncertainty".
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bayes_hcc.data.km import cox_log_hr
from bayes_hcc.errors import as_names, data_notes
from bayes_hcc.models.base import PiecewiseExponential, WeibullPH
from bayes_hcc.families.piecewise import exposure_matrix, interval_index
from bayes_hcc.quantities.core import median_survival
from bayes_hcc.spec.priors import Prior

__all__ = ["agreement", "lifelines_weibull_log_hr", "poisson_glm_log_hr", "cox_log_hr",
           "CHECKS", "TOLERANCE_SE"]

#: Vague priors for the comparisons: log HR ~ Normal(0, 10) (flat over any plausible HR),
#: fixed site effects ~ Normal(0, 10), and for the Cox comparisons each interval's log
#: baseline hazard ~ Normal(-2.5, 10).
VAGUE = {"log_hr": Prior("Normal", mu=0.0, sigma=10.0)}
VAGUE_SITES = {"site_effect": Prior("Normal", mu=0.0, sigma=10.0)}  # (fixed site effects)
VAGUE_BASELINE = {"log_baseline_hazard": Prior("Normal", mu=-2.5, sigma=10.0)}

#: Tolerances, in reference SEs. Where the likelihoods are the same (Weibull vs lifelines'
#: Weibull AFT; piecewise vs the Poisson GLM on the same cuts; piecewise with a cut at every
#: event time vs Cox, whose partial-likelihood estimate it reproduces, Breslow ties vs
#: lifelines' Efron ties) posterior mean and MLE differ only by O(1/n) and MCSE (~0.02 SE):
#: 0.25 SE. Proportional site effects (ours) against a free baseline per site (stratified
#: Cox) are different models that agree only as far as site effects are proportional: 0.5 SE.
TOLERANCE_SE = {"weibull": 0.25, "poisson_glm": 0.25, "cox": 0.25, "cox_site": 0.25,
                "stratified_cox": 0.5}
CHECKS = ("km_median", "weibull", "poisson_glm", "cox", "cox_site", "stratified_cox")


def lifelines_weibull_log_hr(time, event, arm, covariate=None, *,
                             upper=None) -> tuple[float, float]:
    """Log HR and SE from lifelines' Weibull AFT (PH view: log HR = -rho * beta, SE by the
    delta method). With ``upper``, ``time`` holds lower bounds and the fit is lifelines'
    interval-censored one ((time, upper], upper = inf when censored)."""
    from lifelines import WeibullAFTFitter

    if upper is not None:
        df = pd.DataFrame({"L": time, "U": upper, "arm": arm})
        if covariate is not None:
            df["cov"] = covariate
        # censored at 0 (randomized on a cut's day): S(0) = 1, no likelihood, so left out
        df = df[(df["L"] > 0) | np.isfinite(df["U"])]
        aft = WeibullAFTFitter().fit_interval_censoring(df, "L", "U")
        return _ph_view(aft)
    df = pd.DataFrame({"T": time, "E": event, "arm": arm})
    if covariate is not None:
        df["cov"] = covariate
    # lifelines refuses durations of 0 (ValueError); a patient censored at 0 (randomized on
    # a cut's day) contributes S(0) = 1 to the likelihood, nothing, so is left out exactly
    df = df[(df["T"] > 0) | (df["E"] > 0)]
    aft = WeibullAFTFitter().fit(df, "T", "E")
    return _ph_view(aft)


def _ph_view(aft) -> tuple[float, float]:
    """(log HR, SE) of the arm in a lifelines Weibull AFT fit, by the delta method."""
    beta = aft.params_.loc[("lambda_", "arm")]
    rho = np.exp(aft.params_.loc[("rho_", "Intercept")])
    keys = [("lambda_", "arm"), ("rho_", "Intercept")]
    V = aft.variance_matrix_.loc[keys, keys].to_numpy()
    grad = np.array([-rho, -rho * beta])
    return float(-rho * beta), float(np.sqrt(grad @ V @ grad))


def poisson_glm_log_hr(time, event, arm, cuts, covariate=None) -> tuple[float, float]:
    """Log HR and SE from a statsmodels Poisson GLM on person-period data (one row per
    patient and interval at risk, log exposure offset, one intercept per interval)."""
    import statsmodels.api as sm

    time, event, arm = (np.asarray(x, float) for x in (time, event, arm))
    edges = np.concatenate([[0.0], np.asarray(cuts, float), [np.inf]])
    expo = exposure_matrix(time, edges)
    j = interval_index(time, np.asarray(cuts, float))
    pid, k = np.nonzero(expo > 0)
    X = pd.get_dummies(pd.Series(k), prefix="int", dtype=float)
    X["arm"] = arm[pid]
    if covariate is not None:
        X["cov"] = np.asarray(covariate, float)[pid]
    d = ((event[pid] == 1) & (j[pid] == k)).astype(float)
    res = sm.GLM(d, X, family=sm.families.Poisson(), offset=np.log(expo[pid, k])).fit()
    return float(res.params["arm"]), float(res.bse["arm"])


def event_time_cuts(time, event) -> np.ndarray:
    """A cut at every distinct event time but the last: interval (t_(j-1), t_(j)] holds the
    j-th event time, the piecewise construction that reproduces Cox's estimate."""
    t = np.unique(np.asarray(time, float)[np.asarray(event) == 1])
    return t[:-1]


def _row(check, ours, ref, se, tol, note=""):
    diff = (ours - ref) / se
    return {"check": check, "ours": ours, "reference": ref, "reference_se": se,
            "difference_in_se": diff, "tolerance_in_se": tol, "ok": bool(abs(diff) <= tol),
            "note": note}


def _fitted(model, trial, endpoint, **kw) -> tuple:
    """(fit, notes): ``model`` fitted with its warnings recorded, not shown (the table is
    the verdict); ``notes``: what the data warned of (``errors.data_notes``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = model.fit(trial, endpoint, **kw)
    return fit, data_notes(caught)


def _with_fit(row: dict, fitted: tuple) -> dict:
    """``row`` of a check made on ``fitted`` (``_fitted``), with the fit's convergence and
    the data's warnings: a fit that failed its checks makes the row not ok, whatever the
    numbers say (they could agree by chance), and the note names the failures."""
    fit, notes = fitted
    problems = fit.convergence_problems()
    row["converged"] = not problems
    if problems:
        row["ok"] = False
    failed = ["the fit failed its convergence checks: " + "; ".join(problems)] if problems \
        else []
    row["note"] = "; ".join(filter(None, [row.get("note", ""), *failed, *notes]))
    return row


def agreement(trial, endpoint: str | None = None, *, checks=CHECKS, draws: int = 1000,
              tune: int = 1000, chains: int = 4, random_seed: int = 1) -> pd.DataFrame:
    """Compare our posteriors with lifelines and statsmodels on ``trial``.

    Each row made on a fit says whether the fit passed its convergence checks
    (``converged``); a row whose fit failed them is not ``ok``, and its note says why.

    Checks (vague priors, no site effect unless stated):

    * ``km_median``: per arm, the posterior median of the median survival from a
      piecewise model with a cut at every event time lies within the Kaplan-Meier
      median's 95% CI.
    * ``weibull``: WeibullPH log HR vs lifelines' Weibull AFT.
    * ``poisson_glm``: piecewise (4 quantile intervals, independent baseline) vs a
      statsmodels Poisson GLM with the same cuts.
    * ``cox``: piecewise with a cut at every event time (independent vague baseline) vs
      lifelines' Cox model: the construction reproduces Cox's estimate.
    * ``cox_site``: the same with fixed (sum-to-zero) site effects vs Cox with site
      indicators (skipped when a site has no events: no finite MLE).
    * ``stratified_cox``: that fit vs a site-stratified Cox model (different models, looser
      tolerance). Site checks need at least 2 sites.

    Returns
    -------
    pandas.DataFrame
        One row per check: ours (posterior mean), reference, reference SE, difference in SEs,
        tolerance (``TOLERANCE_SE``) and ok.
    """
    checks = as_names(checks, "agreement", "checks", CHECKS, '["cox", "weibull"]')
    from bayes_hcc.data.trial import require_trial

    endpoint = endpoint or require_trial(trial, "agreement").endpoints[0]
    if trial.endpoint(endpoint).has_bounds:
        return _interval_agreement(trial, endpoint, checks, draws=draws, tune=tune,
                                   chains=chains, random_seed=random_seed)
    ep = trial.endpoint(endpoint)
    kw = dict(draws=draws, tune=tune, chains=chains, random_seed=random_seed, check=False)
    rows = []

    def fit(model):
        return _fitted(model, trial, endpoint, **kw)

    def mean_log_hr(fitted):
        return float(fitted[0].posterior["log_hr"].mean())

    fine = site_fit = None
    cuts = event_time_cuts(ep.time, ep.event)
    if {"km_median", "cox"} & set(checks):
        fine = fit(PiecewiseExponential(cuts=cuts, baseline_prior="independent",
                                        site_effect="none", priors={**VAGUE, **VAGUE_BASELINE}))
    if "km_median" in checks:
        med = median_survival(fine[0], estimand="standardized")
        km = trial.kaplan_meier(endpoint)
        for a in ep.arms:
            ours = float(med.sel(arm=a).median())
            lo, hi = km.loc[a, "lower_95"], km.loc[a, "upper_95"]
            ref = km.loc[a, "median"]
            if not np.isfinite(ref):
                rows.append(_with_fit({"check": f"km_median {a}", "ours": ours,
                                       "reference": ref, "ok": True,
                                       "note": "KM median not reached: nothing to compare"},
                                      fine))
                continue
            inside = bool(lo <= ours and (np.isnan(hi) or ours <= hi))
            rows.append(_with_fit({"check": f"km_median {a}", "ours": ours, "reference": ref,
                                   "ok": inside,
                                   "note": f"inside the KM 95% CI [{lo:.2f}, {hi:.2f}]"}, fine))
    if "weibull" in checks:
        f = fit(WeibullPH(site_effect="none", priors=VAGUE))
        ref, se = lifelines_weibull_log_hr(ep.time, ep.event, ep.arm)
        rows.append(_with_fit(_row("weibull log HR vs lifelines WeibullAFTFitter",
                                   mean_log_hr(f), ref, se, TOLERANCE_SE["weibull"]), f))
    if "poisson_glm" in checks:
        f = fit(PiecewiseExponential(n_intervals=4, baseline_prior="independent",
                                     site_effect="none", priors=VAGUE))
        ref, se = poisson_glm_log_hr(ep.time, ep.event, ep.arm, f[0].family.cuts)
        rows.append(_with_fit(_row("piecewise log HR vs statsmodels Poisson GLM",
                                   mean_log_hr(f), ref, se, TOLERANCE_SE["poisson_glm"]), f))
    if "cox" in checks:
        ref, se = cox_log_hr(ep.time, ep.event, ep.arm)
        rows.append(_with_fit(_row("piecewise (cut at each event time) vs lifelines "
                                   "CoxPHFitter", mean_log_hr(fine), ref, se,
                                   TOLERANCE_SE["cox"]), fine))
    site_checks = {"cox_site", "stratified_cox"} & set(checks)
    if site_checks and len(ep.sites) >= 2:
        site_fit = fit(PiecewiseExponential(cuts=cuts, baseline_prior="independent",
                                            site_effect="fixed",
                                            priors={**VAGUE, **VAGUE_SITES,
                                                    **VAGUE_BASELINE}))
        ours = mean_log_hr(site_fit)
        no_events = [s for i, s in enumerate(ep.sites) if ep.event[ep.site == i].sum() == 0]
        if "cox_site" in checks and not no_events:
            ref, se = cox_log_hr(ep.time, ep.event, ep.arm, sites=ep.site)
            rows.append(_with_fit(_row("piecewise + fixed site effects vs Cox with site "
                                       "indicators", ours, ref, se, TOLERANCE_SE["cox_site"]),
                                  site_fit))
        elif "cox_site" in checks:
            rows.append({"check": "piecewise + fixed site effects vs Cox with site indicators",
                         "ours": ours, "ok": True,
                         "note": f"skipped: {len(no_events)} site(s) without events, where the "
                                 "fixed-effect MLE does not exist"})
        if "stratified_cox" in checks:
            ref, se = cox_log_hr(ep.time, ep.event, ep.arm, strata=ep.site)
            rows.append(_with_fit(_row("piecewise + fixed site effects vs site-stratified "
                                       "Cox", ours, ref, se, TOLERANCE_SE["stratified_cox"]),
                                  site_fit))
    table = pd.DataFrame(rows).set_index("check")
    table.attrs.update(data=trial.source, endpoint=endpoint, fingerprint=trial.fingerprint)
    return table


def _interval_agreement(trial, endpoint, checks, **kw) -> pd.DataFrame:
    """Agreement for an endpoint with interval-censored events: the Weibull check against
    lifelines' interval-censored Weibull MLE; the other references (Kaplan-Meier CI, Poisson
    GLM, Cox) are for exact event times and are listed as not applicable."""
    ep = trial.endpoint(endpoint)
    rows = []
    if "weibull" in checks:
        f = _fitted(WeibullPH(site_effect="none", priors=VAGUE), trial, endpoint,
                    check=False, **kw)
        ref, se = lifelines_weibull_log_hr(ep.lower, None, ep.arm, upper=ep.upper)
        rows.append(_with_fit(_row("weibull log HR vs lifelines' interval-censored "
                                   "WeibullAFTFitter", float(f[0].posterior["log_hr"].mean()),
                                   ref, se, TOLERANCE_SE["weibull"]), f))
    for c in checks:
        if c != "weibull":
            rows.append({"check": c, "ok": True, "note": "not applicable: the reference is "
                         "for exact event times; these events are interval-censored"})
    table = pd.DataFrame(rows).set_index("check")
    table.attrs.update(data=trial.source, endpoint=endpoint, fingerprint=trial.fingerprint)
    return table
