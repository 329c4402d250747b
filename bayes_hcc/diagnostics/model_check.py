"""Model checking: patient-level LOO and comparison, power-scaling prior sensitivity,
censoring-aware posterior predictive Kaplan-Meier checks, prior predictive summaries."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import xarray as xr

from bayes_hcc.errors import (BayesHCCError, ModelError, as_names, bool_flags, one_number, one_prob,
                              whole_number)
from bayes_hcc.models.from_spec import illness_death_analysis, single_endpoint_model
from bayes_hcc.models.graph import prepare
from bayes_hcc.models.design import eta_numpy, patient_groups
from bayes_hcc.units import log_unit_in_months
from bayes_hcc.quantities import _core
from bayes_hcc.quantities.core import _is_illness_death, _loaded, as_fit, median_survival
from bayes_hcc.quantities.population import posterior_params
from bayes_hcc.spec.sampler import check_seed

__all__ = ["loo", "compare", "psense", "ppc_km", "prior_predictive"]


def _with_loglik(fit, what: str, *, joint_ok: bool = False):
    """The fit, with its pointwise log-likelihood; ``joint_ok``: an illness-death fit too
    (its own, ``IllnessDeathFit.log_likelihood``), else refused as ``as_fit`` does."""
    fit = _loaded(fit)
    if joint_ok and _is_illness_death(fit):
        return fit
    fit = as_fit(fit)
    if "log_likelihood" not in fit.datatree.children:
        raise BayesHCCError(f"{what} needs the pointwise log-likelihood, and this fit was made "
                            "with log_likelihood=False; refit with log_likelihood=True "
                            "(the default).")
    return fit


def _loglik_tree(fit):
    """The posterior and the patients' pointwise log-likelihood as one DataTree: the fit's
    own, or for an illness-death fit its joint progression-and-death log-likelihood per
    patient (``IllnessDeathFit.log_likelihood``)."""
    if not _is_illness_death(fit):
        return fit.datatree
    return xr.DataTree.from_dict({"posterior": fit.datatree["posterior"].to_dataset(),
                                  "log_likelihood": fit.log_likelihood().to_dataset()})


def loo(fit):
    """PSIS-LOO on the patient-level pointwise log-likelihood (Pareto-k in ``.pareto_k``;
    values above ``.good_k`` are flagged by arviz-stats).

    An illness-death fit's unit is the patient too: the joint probability of what was seen
    of their progression and death (so its ELPD compares with other illness-death fits of
    the same patients, never with a single-endpoint fit's).

    A patient whose log-likelihood is the same on every draw (TTP or PFS censored at time 0,
    before a first scan: S(0) = 1 whatever the parameters) has equal importance weights, so
    its leave-one-out predictive density is that value exactly; it is added as such (Pareto
    k ``-inf``: no tail to smooth) and PSIS runs on the other patients. (arviz-stats cannot
    smooth a constant tail and raised "All tail values are the same" for the whole fit.)
    """
    import arviz_stats as azs

    dt = _loglik_tree(_with_loglik(fit, "loo", joint_ok=True))
    fixed = _fixed_patients(dt)
    if not fixed.any():
        return azs.loo(dt, pointwise=True)
    if fixed.all():
        raise BayesHCCError("loo: every patient's log-likelihood is the same on every draw "
                            "(no patient is followed beyond time 0), so there is nothing to "
                            "cross-validate.")
    ll = dt["log_likelihood"].to_dataset()
    varying = xr.DataTree.from_dict({
        "posterior": dt["posterior"].to_dataset(),
        "log_likelihood": ll.isel(patient=np.flatnonzero(~fixed))})
    part = azs.loo(varying, pointwise=True)
    name = next(iter(ll.data_vars))
    n_samples = ll.sizes["chain"] * ll.sizes["draw"]
    # equal weights for the fixed patients, PSIS's smoothed weights for the others
    log_weights = xr.full_like(ll[name], -np.log(n_samples))
    log_weights.loc[{"patient": part.log_weights["patient"]}] = part.log_weights.transpose(
        *log_weights.dims)
    pareto_k = xr.full_like(ll[name].isel(chain=0, draw=0, drop=True), -np.inf)
    pareto_k.loc[{"patient": part.pareto_k["patient"]}] = part.pareto_k
    return azs.loo(dt, pointwise=True, log_weights=log_weights, pareto_k=pareto_k)


def _fixed_patients(dt) -> np.ndarray:
    """Patients whose pointwise log-likelihood takes one value on every draw."""
    ll = next(iter(dt["log_likelihood"].to_dataset().data_vars.values()))
    flat = ll.transpose("chain", "draw", "patient").values.reshape(-1, ll.sizes["patient"])
    return np.all(flat == flat[0], axis=0)


def _same_observations(a, b, endpoint: str) -> bool:
    """The two fits' likelihoods are of the same observations: times, events and scan
    bounds (an imputed progression time is another observation than its interval)."""
    for group, names in (("observed_data", (endpoint,)),
                         ("constant_data", (endpoint, "lower_bound", "upper_bound"))):
        ga, gb = a.datatree[group], b.datatree[group]
        for n in names:
            if (n in ga) != (n in gb) or (n in ga and not np.array_equal(
                    ga[n].values, gb[n].values)):
                return False
    return True


def compare(fits) -> pd.DataFrame:
    """ELPD differences and stacking weights across fits of the same patients.

    ``fits``: a dict name -> Fit, or a list (named ``model-endpoint-i``). Fits must share the
    data fingerprint, endpoint and patients: LOO on different units answers another question.
    Numbers are not rounded (round for display, e.g. ``.round(2)``).
    """
    import arviz_stats as azs

    if isinstance(fits, (str, bytes)) or not (isinstance(fits, dict)
                                              or hasattr(fits, "__iter__")):
        # one fit or one path: "'Fit' object is not iterable", or a path read letter by letter
        raise BayesHCCError(f"compare: takes two or more fits, as a dict name -> fit or a "
                            f"list, e.g. bh.compare({{'weibull': fit_w, 'pwe': fit_p}}); got "
                            f"{type(fits).__name__}.")
    if not isinstance(fits, dict):
        fits = {f"{_model_name(f)}-{i}": f for i, f in enumerate(fits)}
    fits = {k: _with_loglik(v, f"compare ({k!r})", joint_ok=True) for k, v in fits.items()}
    if len(fits) < 2:
        raise BayesHCCError("compare needs at least two fits.")
    joint = {k: _is_illness_death(f) for k, f in fits.items()}
    if len(set(joint.values())) > 1:
        verb = "is an illness-death fit" if sum(joint.values()) == 1 else \
            "are illness-death fits"
        raise BayesHCCError(
            f"compare: {', '.join(k for k, j in joint.items() if j)} {verb} and "
            f"{', '.join(k for k, j in joint.items() if not j)} not: an illness-death "
            "fit's likelihood is of each patient's progression and death together, a "
            "single-endpoint fit's of one endpoint, so their ELPDs are not comparable. "
            "Compare illness-death fits with each other (Markov or semi-Markov, Weibull or "
            "piecewise), single-endpoint fits with each other.")
    trees = {k: _loglik_tree(f) for k, f in fits.items()}
    ref_name, ref = next(iter(fits.items()))
    ref_ids = trees[ref_name]["log_likelihood"]["patient"].values
    for name, f in fits.items():
        if f.time_unit != ref.time_unit:
            raise BayesHCCError(
                f"compare: {name!r} was fitted in {f.time_unit} and {ref_name!r} in "
                f"{ref.time_unit}; a log density depends on the time unit, so their ELPDs "
                "differ by a constant per event. Fit both to the same data in one unit "
                "(trial.to_unit(...)).")
        if joint[name]:
            if (f.data_fingerprint != ref.data_fingerprint
                    or not np.array_equal(trees[name]["log_likelihood"]["patient"].values,
                                          ref_ids) or not _same_joint_data(f, ref)):
                raise BayesHCCError(f"compare: {name!r} was not fitted to the same patients' "
                                    f"progression and death as {ref_name!r}; LOO "
                                    "comparisons need the same units.")
            continue
        if (f.data_fingerprint != ref.data_fingerprint or f.endpoint != ref.endpoint
                or not np.array_equal(trees[name]["log_likelihood"]["patient"].values,
                                      ref_ids)):
            raise BayesHCCError(f"compare: {name!r} was not fitted to the same patients and "
                                f"endpoint as {ref_name!r} (data fingerprint or endpoint "
                                "differ); LOO comparisons need the same units.")
        if not _same_observations(f, ref, ref.endpoint):
            raise BayesHCCError(
                f"compare: {name!r} (censoring={f.spec.censoring!r}) and {ref_name!r} "
                f"(censoring={ref.spec.censoring!r}) are fitted to different observations "
                "of the same patients: an imputed progression time is a density at a chosen "
                "time, the interval likelihood a probability, so their ELPDs are not "
                "comparable. Compare fits that use the same censoring.")
    seen: dict = {}
    for name in fits:  # one fit twice: stacking splits its weight between copies
        key = hashlib.sha256(np.ascontiguousarray(
            trees[name]["log_likelihood"].to_dataset().to_array().to_numpy()).tobytes()
        ).hexdigest()
        if key in seen:
            raise BayesHCCError(f"compare: {seen[key]!r} and {name!r} are the same fit "
                                "(identical log-likelihood draws); give each model once.")
        seen[key] = name
    # Each fit's LOO as bh.loo computes it (patients whose likelihood is constant over the
    # draws included exactly); round_to="none": full-precision numbers (ArviZ's display
    # rounding gave -1700.0 for -1661.36); round when printing.
    return azs.compare({k: loo(f) for k, f in fits.items()}, round_to="none")


def _model_name(fit) -> str:
    fit = _loaded(fit)
    if _is_illness_death(fit):
        return f"illness_death_{fit.model.baseline}_{fit.model.time_scale}"
    return as_fit(fit).settings["model"]


def _same_joint_data(a, b) -> bool:
    """Two illness-death fits of the same observations: scan bounds, times and deaths."""
    return all(np.array_equal(np.asarray(getattr(a.data, k)), np.asarray(getattr(b.data, k)))
               for k in ("prog_lower", "prog_upper", "time", "death", "arm"))


def _top_level_priors(dt) -> list[str]:
    # Power-scale the top-level priors only, not the standard-normal deviations of the
    # hierarchical terms (Kallioinen et al. 2023, section on hierarchical models).
    return [v for v in dt["log_prior"].data_vars if not v.endswith("_z")]


#: psense's parameters unless told: those of them the model has
PSENSE_DEFAULT = ("log_hr", "log_tr", "site_sd")


@bool_flags
def psense(fit, var_names=PSENSE_DEFAULT, *, medians: bool = True,
           threshold: float = 0.05) -> pd.DataFrame:
    """Power-scaling prior and likelihood sensitivity (arviz-stats psense_summary).

    Adds the standardized medians per arm as posterior variables when ``medians``. Returns a
    DataFrame: prior and likelihood sensitivity (CJS distance gradients) and a diagnosis.

    An illness-death fit is power-scaled on its joint likelihood of progression and death
    (``fit.log_likelihood()``) and its prior (``fit.log_prior()``): the transition log HRs,
    the site SD, and with ``medians`` the typical site's median OS and PFS per arm.
    """
    import arviz_stats as azs

    threshold = one_number(threshold, "psense", "threshold", "0.05")
    if threshold <= 0:  # -1 flagged every row as a conflict
        raise BayesHCCError(f"psense: threshold={threshold:g} must be > 0 (the sensitivity "
                            "above which a row is flagged; 0.05 by default).")
    fit = _with_loglik(fit, "psense", joint_ok=True)
    joint = _is_illness_death(fit)
    dt = fit.datatree.copy()
    if joint:  # its log-likelihood and log prior are computed from the draws
        dt["log_likelihood"] = xr.DataTree(fit.log_likelihood().to_dataset())
        dt["log_prior"] = xr.DataTree(fit.log_prior())
    post = dt["posterior"].to_dataset()
    if var_names == PSENSE_DEFAULT:  # those of this model
        names = [v for v in var_names if v in post]
    else:
        names = list(as_names(var_names, "psense", "var_names", list(post.data_vars),
                              '["log_hr"]'))
    if medians and joint:
        med = fit.medians(thin=1)
        shape = (post.sizes["chain"], post.sizes["draw"])
        for ep in ("os", "pfs"):
            for a in fit.data.arms:
                post[f"median_{ep}_{a}"] = (("chain", "draw"),
                                            med[ep].sel(arm=a).values.reshape(shape))
                names.append(f"median_{ep}_{a}")
        dt["posterior"] = xr.DataTree(post)
    elif medians:
        med = median_survival(fit)
        for a in fit.arms:
            post[f"median_{a}"] = med.sel(arm=a, drop=True)
            names.append(f"median_{a}")
        dt["posterior"] = xr.DataTree(post)
    import contextlib
    import io

    # psense_summary prints a help note; the returned table says the same, so keep it quiet.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        out = azs.psense_summary(dt, var_names=names, threshold=threshold,
                                 prior_var_names=_top_level_priors(dt))
    return pd.DataFrame(out)


def _simulate_times(fit, params, rng):
    """Uncensored event times per draw and patient from the posterior, (S, n)."""
    arm, site, X = fit.design()
    eta = eta_numpy(params, arm, site, X, site_effect=fit.site_effect,
                    arm_by_site=fit.arm_by_site, arm_effect=fit.family.arm_effect)
    # by inversion: H(T | eta) = E, E ~ Exp(1)
    h = rng.exponential(size=eta.shape)
    out = np.empty_like(h)
    # each group with its own baseline: arm (time-varying HR) x stratum
    for m, p in patient_groups(fit.family, params, arm, fit.stratum(), len(fit.strata),
                               log_unit_in_months(fit.time_unit)):
        out[:, m] = fit.family.time_at_cumhaz(p, h[:, m], eta[:, m])
    return out


def ppc_km(fit, *, n_draws: int = 200, by: str = "arm", grid=None, prob: float = 0.95,
           random_seed=None, endpoint: str | None = None) -> pd.DataFrame:
    """Censoring-aware posterior predictive check of the Kaplan-Meier curve.

    Each replicated dataset keeps every patient's observed follow-up: a patient censored at
    c stays censored at c if the replicated event comes later; a patient who had an event
    is censored at the data cut (``admin_time``). So replicated KM curves are comparable
    with the observed one.

    With interval-censored events (progression seen at scans), the assessment process is
    replicated instead: each replicated event is seen at the patient's first scan at or
    after it (the recorded scans, continued every typical scan interval up to the data cut),
    and the curves compared are Turnbull NPMLEs (``attrs["estimator"]``).

    An illness-death fit is checked on ``endpoint`` ("os", the default, "pfs" or "ttp"):
    each replicate is a path through the model (``IllnessDeathFit.simulate_paths``: the
    progression and death of every patient, from randomization), observed as the data
    were: death exactly, within the patient's follow-up; a progression at the first scan
    at or after it, while the patient is alive and followed (the patient's progression
    scans, continued every typical scan interval). PFS and TTP are compared as Turnbull
    NPMLEs, OS as Kaplan-Meier curves.

    Returns a long DataFrame: group, time, observed KM, replicated median and the ``prob``
    band; ``attrs["coverage"]`` is the fraction of (group, time) points inside the band.
    """
    if by not in ("arm", "site"):
        raise BayesHCCError(f"ppc_km: by={by!r}; choose 'arm' or 'site'.")
    whole_number(n_draws, "ppc_km", "n_draws", 2, noun="an integer")
    prob = one_prob(prob, "ppc_km")
    rng = np.random.default_rng(check_seed(random_seed, "ppc_km"))
    fit = _loaded(fit)
    if _is_illness_death(fit):
        return _ppc_illness_death(fit, endpoint, n_draws=n_draws, by=by, grid=grid, prob=prob,
                                  rng=rng)
    fit = as_fit(fit)
    if endpoint is not None and str(endpoint).lower() != fit.endpoint:
        raise BayesHCCError(f"ppc_km: endpoint={endpoint!r}, but this fit is of "
                            f"{fit.endpoint.upper()}; check another endpoint with its own fit "
                            "(or an illness-death fit, which has all three).")
    params = posterior_params(fit)
    S = params[fit.family.arm_effect].shape[0]
    idx = rng.choice(S, size=min(n_draws, S), replace=False)
    sub = {k: v[idx] for k, v in params.items()}
    t_rep = _simulate_times(fit, sub, rng)
    c = fit.datatree["constant_data"]
    arm, site, _ = fit.design()
    groups, codes = (fit.arms, arm) if by == "arm" else (fit.sites, site)
    if "lower_bound" in c:
        lower, upper = c["lower_bound"].to_numpy(), c["upper_bound"].to_numpy()
        event = c[fit.endpoint].to_numpy()
        exact = (event == 1) & (lower == upper)
        # follow-up end: the data cut for a patient with an event, else the censoring time
        end = np.where(event == 1, np.maximum(c["admin_time"].to_numpy(), upper), lower)
        scans, _ = _scan_schedule(c, lower, upper, end)
        rep = [_seen_at_scans(t, scans, end, exact) for t in t_rep]
        out = _turnbull_bands(lower, upper, rep, groups, codes, grid, prob)
    else:
        t_obs = fit.datatree["observed_data"][fit.endpoint].to_numpy()
        d_obs = c[fit.endpoint].to_numpy()
        censor = np.where(d_obs == 1, c["admin_time"].to_numpy(), t_obs)
        out = _km_bands(t_obs, d_obs, t_rep, censor, groups, codes, grid, prob)
    out.attrs.update(by=by, endpoint=fit.endpoint, n_draws=len(idx))
    return out


def _ppc_illness_death(fit, endpoint, *, n_draws, by, grid, prob, rng) -> pd.DataFrame:
    """``ppc_km`` of an illness-death fit: replicated paths observed as the data were."""
    endpoint = "os" if endpoint is None else str(endpoint).lower()
    if endpoint not in ("os", "pfs", "ttp"):
        raise BayesHCCError(f"ppc_km: endpoint={endpoint!r}; an illness-death fit is checked "
                            "on 'os', 'pfs' or 'ttp'.")
    d = fit.data
    idx = np.sort(rng.choice(fit.n_draws, size=min(n_draws, fit.n_draws), replace=False))
    prog, death = fit.simulate_paths(idx, rng)
    dead = np.asarray(d.death).astype(bool)
    admin = (np.full(len(d), float(np.max(d.time))) if d.admin_time is None
             else np.asarray(d.admin_time, float))
    # how long each patient could be followed: to the data cut after a death, else as seen
    follow = np.where(dead, np.maximum(admin, d.time), d.time)
    groups, codes = (d.arms, d.arm) if by == "arm" else (d.sites, d.site)
    if endpoint == "os":
        out = _km_bands(np.asarray(d.time, float), dead.astype(int), death, follow, groups,
                        codes, grid, prob)
    else:
        _, _, (lower, upper) = d.endpoint(endpoint)
        # progression seen at scans (the patient's own progression scans, continued every
        # typical interval), or exactly when the data have no interval-censored one
        scans = (_scan_schedule({}, d.prog_lower, d.prog_upper, follow)[0]
                 if d.interval.any() else None)
        rep = []
        for p, t_death in zip(prog, death):
            alive = np.minimum(t_death, follow)  # seen only while alive and followed
            if scans is None:
                lo, up = np.where(p <= alive, p, alive), np.where(p <= alive, p, np.inf)
            else:
                lo, up = _seen_at_scans(p, scans, alive, np.zeros(len(d), bool))
            if endpoint == "pfs":  # a death before a progression is seen: an exact event
                died = ~np.isfinite(up) & (t_death <= follow)
                lo, up = np.where(died, t_death, lo), np.where(died, t_death, up)
            rep.append((lo, up))
        out = _turnbull_bands(lower, upper, rep, groups, codes, grid, prob)
    out.attrs.update(by=by, endpoint=endpoint, n_draws=len(idx),
                     model="illness-death (replicated paths)")
    return out


def _km_bands(t_obs, d_obs, t_rep, censor, groups, codes, grid, prob) -> pd.DataFrame:
    """Observed Kaplan-Meier curve and the band of the replicates' (event times ``t_rep``,
    (draws, patients), censored at ``censor``) per group."""
    from lifelines import KaplanMeierFitter

    d_rep = t_rep <= censor[None, :]
    t_rep = np.minimum(t_rep, censor[None, :])
    grid = np.linspace(0, float(np.max(t_obs)), 60) if grid is None else np.asarray(grid)

    def observed(m):
        return KaplanMeierFitter().fit(t_obs[m], d_obs[m]).survival_function_at_times(
            grid).to_numpy()

    def replicated(s, m):
        return KaplanMeierFitter().fit(t_rep[s, m], d_rep[s, m]).survival_function_at_times(
            grid).to_numpy()

    out = _bands(groups, codes, grid, prob, len(t_rep), observed, replicated)
    out.attrs["estimator"] = "kaplan-meier"
    return out


def _turnbull_bands(lower, upper, rep, groups, codes, grid, prob) -> pd.DataFrame:
    """Observed Turnbull NPMLE of (lower, upper] and the band of the replicates' bounds
    ``rep`` (one (lower, upper) pair per draw) per group."""
    from bayes_hcc.data.km import turnbull_at

    grid = np.linspace(0, float(np.max(np.where(np.isfinite(upper), upper, lower))), 60) \
        if grid is None else np.asarray(grid)
    out = _bands(groups, codes, grid, prob, len(rep),
                 lambda m: turnbull_at(lower[m], upper[m], grid),
                 lambda s, m: turnbull_at(rep[s][0][m], rep[s][1][m], grid))
    out.attrs["estimator"] = "turnbull"
    return out


def _bands(groups, codes, grid, prob, n_reps, observed, replicated) -> pd.DataFrame:
    """Per group: the observed curve at ``grid``, the replicates' median and ``prob`` band,
    whether the observed curve lies inside; ``attrs["coverage"]`` the share inside."""
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    rows = []
    for g, label in enumerate(groups):
        m = np.asarray(codes) == g
        if not m.any():
            continue
        reps = np.stack([replicated(s, m) for s in range(n_reps)])
        lo, mid, hi = np.quantile(reps, [lo_q, 0.5, hi_q], axis=0)
        rows.append(pd.DataFrame({"group": label, "time": grid, "observed": observed(m),
                                  "replicated_median": mid, "lower": lo, "upper": hi}))
    out = pd.concat(rows, ignore_index=True)
    out["inside"] = (out["observed"] >= out["lower"] - 1e-12) & \
        (out["observed"] <= out["upper"] + 1e-12)
    out.attrs.update(coverage=float(out["inside"].mean()), prob=prob)
    return out


def _scan_schedule(c, lower, upper, end):
    """Each patient's scan times up to ``end`` (NaN-padded rows): the recorded scans
    (``scan_time``) or, without them, the known bounds; continued after the last known scan
    every typical scan interval (the median gap between scans)."""
    if "scan_time" in c:
        known = c["scan_time"].to_numpy()
    else:
        known = np.column_stack([np.where(lower > 0, lower, np.nan),
                                 np.where(np.isfinite(upper), upper, np.nan)])
    gaps = np.diff(known, axis=1)
    gaps = gaps[np.isfinite(gaps) & (gaps > 0)]
    iv = np.isfinite(upper) & (lower > 0) & (upper > lower)
    first = upper[np.isfinite(upper) & (upper > 0)]  # scans that showed the event
    step = (float(np.median(gaps)) if gaps.size else float(np.median((upper - lower)[iv]))
            if iv.any() else float(np.median(first)) if first.size else 0.0)
    last = np.nanmax(np.where(np.isfinite(known), known, -np.inf), axis=1)
    last = np.where(np.isfinite(last), last, 0.0)
    n_more = int(np.ceil(np.max(np.maximum(end - last, 0.0)) / step)) if step > 0 else 0
    more = last[:, None] + step * np.arange(1, n_more + 1)[None, :]
    more = np.where(more <= end[:, None], more, np.nan)
    return np.concatenate([known, more], axis=1), step


def _seen_at_scans(t, scans, end, exact):
    """How replicated event times ``t`` are seen: at the first scan at or after the event
    among the scans up to each patient's ``end``, as (previous scan, that scan]; without
    such a scan censored at the last scan done, (last scan, inf). Patients ``exact``
    (observed exactly, e.g. a death for PFS) keep the time itself, censored at the end."""
    big = np.where(np.isfinite(scans) & (scans <= end[:, None]), scans, np.inf)  # (n, K)
    done = np.where(np.isfinite(big), big, 0.0)
    after = big >= t[:, None]
    seen = after.any(axis=1)
    first = np.where(seen, np.min(np.where(after, big, np.inf), axis=1), np.inf)
    prev = np.max(np.where(big < t[:, None], big, 0.0), axis=1)
    last_scan = np.max(done, axis=1)
    lo = np.where(seen, prev, last_scan)
    up = np.where(seen, first, np.inf)
    lo = np.where(exact, np.minimum(t, end), lo)
    up = np.where(exact, np.where(t <= end, t, np.inf), up)
    return lo, up


def prior_predictive(model, trial, endpoint: str | None = None, *, draws: int | None = None,
                     random_seed=None) -> pd.DataFrame:
    """What the priors imply for the HR and the typical-site median per arm.

    ``model``: a model (``bh.WeibullPH(...)``) or a pre-specified analysis (a spec or its
    path: its model, priors, population and, unless ``endpoint`` is given, endpoint;
    default endpoint "os"). Draws every parameter from its prior (scipy) and reports
    quantiles (2.5, 25, 50, 75, 97.5%) of the HR and of each arm's median survival. An
    illness-death model (or spec) gives its transition HRs and the median OS, PFS and time
    to progression per arm (``IllnessDeath.prior_predictive``). ``draws``: default 2000
    (1000 for an illness-death model, whose medians cost more).
    """

    from bayes_hcc.units import log_unit_in_months

    from bayes_hcc.data.trial import require_trial

    trial = require_trial(trial, "prior_predictive")
    if draws is not None:  # 0 was the default, 2.5 failed inside
        whole_number(draws, "prior_predictive", "draws", 2, noun="an integer", error=ModelError)
    check_seed(random_seed, "prior_predictive")
    joint = illness_death_analysis(model, trial)  # an illness-death model or spec: its own
    if joint is not None:
        model, trial, ends = joint
        return model.prior_predictive(trial, **ends, draws=1000 if draws is None else draws,
                                      random_seed=random_seed)
    model, trial, endpoint = single_endpoint_model(model, trial, endpoint, "prior_predictive")
    draws = 2000 if draws is None else int(draws)
    rng = np.random.default_rng(random_seed)
    ep, family, priors, *_ = prepare(model, trial, endpoint)
    arm_effect = family.arm_effect
    params = {arm_effect: priors[arm_effect].scipy().rvs(draws, random_state=rng),
              **family.draw_prior(priors, draws, rng)}
    # Time-scaled priors are declared in months: move the draws to the data's unit.
    shifts = family.unit_shift(params, log_unit_in_months(ep.time_unit))
    params = {k: v + shifts.get(k, 0.0) for k, v in params.items()}
    # a time-varying HR: its deviations by interval, which the treatment arm's median reads
    params.update(family.draw_effect_deviations(draws, rng))
    label = "HR" if family.effect.ratio == "HR" else "time ratio"
    rows = {label: np.exp(params[arm_effect])}
    for a, name in enumerate(trial.arms):
        eta = (params[arm_effect] * a)[:, None]
        rows[f"median {name}"] = _core.population_median(
            family, family.params_for_arm(params, a), eta, np.ones(1))
    q = [0.025, 0.25, 0.5, 0.75, 0.975]
    # a median never reached (a Gompertz hazard falling to 0) is +inf: its quantiles too
    out = pd.DataFrame({k: _core.quantiles(v, q) for k, v in rows.items()},
                       index=[f"q{int(x * 1000) / 10:g}" for x in q]).T
    out.attrs.update(endpoint=endpoint, time_unit=trial.time_unit, draws=draws)
    out.attrs["footnotes"] = [
        f"Prior predictive of {endpoint.upper()} under {model!r}: quantiles of {draws} draws "
        f"from the priors (no data), {label} = {trial.arms[1]} relative to "
        f"{trial.arms[0]}; medians in {trial.time_unit} at the typical site."]
    return out
