"""Classical estimators through lifelines (a well-kept implementation, not our own):
Kaplan-Meier summaries and the Cox model used as a reference and for fast approximations."""

from __future__ import annotations

import numpy as np
import pandas as pd

# lifelines is imported where it is used: it costs ~0.2 s of every process start and a fit
# does not need it.


def _median_follow_up(time, event) -> float:
    """Median follow-up by the reverse Kaplan-Meier method (censoring treated as the event)."""
    from lifelines import KaplanMeierFitter

    if len(time) == 0:
        return float("nan")
    kmf = KaplanMeierFitter().fit(time, 1 - np.asarray(event))
    med = float(kmf.median_survival_time_)
    # With (almost) no censoring the reverse KM never reaches 0.5: not estimable, not infinite.
    return med if np.isfinite(med) else float("nan")


def follow_up_summary(trial, endpoint: str) -> pd.DataFrame:
    ep = trial.endpoint(endpoint)
    groups = [("overall", "all", np.ones(len(ep), bool))]
    groups += [("arm", a, ep.arm == i) for i, a in enumerate(ep.arms)]
    groups += [("site", s, ep.site == i) for i, s in enumerate(ep.sites)]
    rows = []
    for by, label, m in groups:
        rows.append({
            "by": by, "group": label, "patients": int(m.sum()),
            "events": int(ep.event[m].sum()), "censored": int((1 - ep.event[m]).sum()),
            f"median_follow_up_{ep.time_unit}": _median_follow_up(ep.time[m], ep.event[m]),
        })
    out = pd.DataFrame(rows).set_index(["by", "group"])
    out.attrs["endpoint"] = ep.name
    column = f"median_follow_up_{ep.time_unit}"
    missing = out[out[column].isna() & (out["patients"] > 0)]
    if len(missing):
        names = ["overall" if by == "overall" else g for by, g in missing.index]
        none = [n for n, c in zip(names, missing["censored"]) if c == 0]
        few = [n for n, c in zip(names, missing["censored"]) if c > 0]
        parts = ([f"{', '.join(map(str, none))}: no patient censored"] if none else []) + \
            ([f"{', '.join(map(str, few))}: too few censored for the reverse Kaplan-Meier "
              "to reach 0.5"] if few else [])
        out.attrs["footnotes"] = [f"{column} not estimable (NaN) for {'; '.join(parts)}."]
    return out


def turnbull(lower, upper, *, label: str = "npmle"):
    """Turnbull's non-parametric maximum-likelihood estimate of S(t) from interval-censored
    data ((lower, upper], upper = inf for a censored patient, lower = upper for an exact
    event), through lifelines' interval-censored Kaplan-Meier.

    Returns a right-continuous step function as a DataFrame indexed by time t (S holds from
    t to the next index; S = 1 before the first): ``survival`` places the mass of each
    Turnbull interval at its right end (the latest it can be), ``survival_earliest`` at its
    left end; the NPMLE is unique only up to that placement. With exact data both are the
    Kaplan-Meier estimate (tested)."""
    from lifelines import KaplanMeierFitter

    kmf = KaplanMeierFitter(label=label).fit_interval_censoring(np.asarray(lower, float),
                                                                np.asarray(upper, float))
    sf = kmf.survival_function_
    col = {c.rsplit("_", 1)[-1]: c for c in sf.columns}  # ..._lower, ..._upper
    # lifelines lists at each endpoint tau the left limit S(tau-): the value that holds
    # from one endpoint to the next is the one listed at the next
    t = sf.index.to_numpy(float)
    out = pd.DataFrame({"survival": sf[col["upper"]].to_numpy()[1:],
                        "survival_earliest": sf[col["lower"]].to_numpy()[1:]}, index=t[:-1])
    return out[np.isfinite(out.index)]


def turnbull_at(lower, upper, times) -> np.ndarray:
    """The Turnbull NPMLE (``survival``: mass at the right end of each interval) at
    ``times``."""
    sf = turnbull(lower, upper)["survival"]
    pos = np.searchsorted(sf.index.to_numpy(), np.asarray(times, float), side="right") - 1
    return np.where(pos >= 0, sf.to_numpy()[np.clip(pos, 0, None)], 1.0)


def turnbull_median(lower, upper) -> tuple[float, float]:
    """The interval (a, b] holding the NPMLE median: the median with each interval's mass at
    its left end (a) and at its right end (b); (inf, inf) when not reached."""
    sf = turnbull(lower, upper)

    def first_below(col):
        below = sf.index[sf[col].to_numpy() <= 0.5]
        return float(below[0]) if len(below) else float("inf")

    return first_below("survival_earliest"), first_below("survival")


def km_medians(trial, endpoint: str, *, alpha: float = 0.05) -> pd.DataFrame:
    """Kaplan-Meier medians per arm with their confidence intervals; for an endpoint with
    interval-censored events, the Turnbull NPMLE median instead (``median`` is the end of the
    interval holding it, ``median_from`` its start; no closed-form confidence interval: the
    CI columns are NaN and ``attrs["estimator"]`` says which estimator was used)."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    ep = trial.endpoint(endpoint)
    level = int(round(100 * (1 - alpha)))
    if ep.has_bounds:
        rows = []
        for i, arm in enumerate(ep.arms):
            m = ep.arm == i
            a, b = turnbull_median(ep.lower[m], ep.upper[m])
            rows.append({"arm": arm, "patients": int(m.sum()),
                         "events": int(ep.event[m].sum()), "median": b, "median_from": a,
                         f"lower_{level}": np.nan, f"upper_{level}": np.nan})
        out = pd.DataFrame(rows).set_index("arm")
        out.attrs.update(endpoint=ep.name, time_unit=ep.time_unit, estimator="turnbull")
        return out
    rows = []
    for i, arm in enumerate(ep.arms):
        m = ep.arm == i
        kmf = KaplanMeierFitter(alpha=alpha).fit(ep.time[m], ep.event[m], label=arm)
        ci = median_survival_times(kmf.confidence_interval_)
        rows.append({"arm": arm, "patients": int(m.sum()), "events": int(ep.event[m].sum()),
                     "median": float(kmf.median_survival_time_),
                     f"lower_{level}": float(ci.iloc[0, 0]),
                     f"upper_{level}": float(ci.iloc[0, 1])})
    out = pd.DataFrame(rows).set_index("arm")
    out.attrs.update(endpoint=ep.name, time_unit=ep.time_unit, estimator="kaplan_meier")
    return out


def km_curve(time, event, *, alpha: float = 0.05, label=None) -> pd.DataFrame:
    """KM survival estimate with its confidence band, as a DataFrame indexed by time."""
    from lifelines import KaplanMeierFitter

    kmf = KaplanMeierFitter(alpha=alpha).fit(time, event, label=label or "km")
    out = pd.concat([kmf.survival_function_, kmf.confidence_interval_], axis=1)
    out.columns = ["survival", "lower", "upper"]
    return out


def cox_log_hr(time, event, arm, strata=None, sites=None) -> tuple[float, float]:
    """Log HR and SE from lifelines' Cox model (Efron ties), optionally stratified by
    ``strata`` or adjusted for ``sites`` as indicator covariates."""
    from lifelines import CoxPHFitter

    df = pd.DataFrame({"T": time, "E": event, "arm": arm})
    kw = {}
    if sites is not None:
        dummies = pd.get_dummies(pd.Series(np.asarray(sites)), prefix="site", drop_first=True,
                                 dtype=float)
        df = pd.concat([df, dummies], axis=1)
    if strata is not None:
        df["stratum"] = np.asarray(strata)
        kw["strata"] = ["stratum"]
    cph = CoxPHFitter().fit(df, "T", "E", **kw)
    return float(cph.params_["arm"]), float(cph.standard_errors_["arm"])


def classical_comparison(time, event, arm, arms, *, strata=None, entry=None,
                         covariates=None, covariate_names=(), alpha: float = 0.05,
                         time_unit: str = "months", note: str = "") -> pd.DataFrame:
    """The frequentist companion of a two-arm comparison, computed by lifelines and
    statsmodels (not by this package): the log-rank test (statsmodels ``survdiff``,
    stratified when ``strata`` is given, with delayed entry when ``entry`` is), the Cox
    hazard ratio with its Wald CI and p-value (lifelines ``CoxPHFitter``, Efron ties,
    ``strata=`` and ``entry_col=`` likewise; adjusted for ``covariates``, an (n, p) design
    matrix, when given, so that it estimates the conditional HR a covariate-adjusted model
    does) and the Kaplan-Meier median of each arm with its CI (lifelines, entry times
    honoured). The log-rank test and the medians are not covariate-adjusted (their
    ``note`` says so when covariates are given).

    Returns one row per quantity: ``estimate``, ``lower``, ``upper``, ``p_value``,
    ``method`` (what computed it) and ``note``. A log-rank test whose variance is 0 and a
    Cox estimate at HR 0 or infinity (a monotone partial likelihood:
    :func:`arms_with_informative_events`) are blank rows whose note says why.
    """
    from lifelines import CoxPHFitter, KaplanMeierFitter
    from lifelines.utils import median_survival_times
    from scipy import stats
    from statsmodels.duration.survfunc import survdiff

    time, event = np.asarray(time, float), np.asarray(event, float)
    arm = np.asarray(arm, int)
    level = int(round(100 * (1 - alpha)))
    stratified = strata is not None
    delayed = entry is not None and np.any(np.asarray(entry) > 0)
    how = (" stratified" if stratified else "") + (", delayed entry" if delayed else "")
    X = None if covariates is None else np.asarray(covariates, float).reshape(len(time), -1)
    adjusted = X is not None and X.shape[1] > 0
    names = list(covariate_names) or [f"x{j + 1}" for j in range(X.shape[1] if adjusted
                                                                   else 0)]
    unadjusted = (f"not adjusted for {', '.join(names)}" if adjusted else "")
    rows = []
    kw = {}
    if stratified:
        kw["strata"] = np.asarray(pd.Categorical(np.asarray(strata)).codes)
    if delayed:
        kw["entry"] = np.asarray(entry, float)
    events = [float(event[arm == i].sum()) for i in range(len(arms))]
    if sum(events) == 0:
        return _not_computable(arms, time_unit, "no events: no test or Cox estimate")
    try:
        chisq, _ = survdiff(time, event, arm, **kw)
        # survdiff's p is 1 - cdf, which is 1.1e-16 or 0 beyond a chi-square of about 68:
        # the upper tail itself keeps a small p exact (lifelines' Cox p-values are too)
        p, why_not = stats.chi2.sf(chisq, 1), ""
    except np.linalg.LinAlgError:  # solving with the statistic's variance, which is 0
        chisq = p = np.nan
        why_not = ("not computable: the statistic's variance is 0 (at every event time one "
                   "arm had no patient at risk or every patient at risk had the event)")
    rows.append({"quantity": "log-rank test", "estimate": float(chisq), "lower": np.nan,
                 "upper": np.nan, "p_value": float(p),
                 "method": f"log-rank{how} (statsmodels survdiff); estimate = chi-square, 1 df",
                 "note": "; ".join(x for x in (why_not, note, unadjusted) if x)})
    df = pd.DataFrame({"T": time, "E": event, "arm": arm.astype(float)})
    if adjusted:
        for j in range(X.shape[1]):
            df[f"_x{j}"] = X[:, j]
    cox_kw = {}
    if stratified:
        df["stratum"] = np.asarray(strata).astype(str)
        cox_kw["strata"] = ["stratum"]
    if delayed:
        df["entry"] = np.asarray(entry, float)
        cox_kw["entry_col"] = "entry"
    adjusted_for = f", adjusted for {', '.join(names)}" if adjusted else ""
    cox_row = {"quantity": f"Cox HR ({arms[1]} / {arms[0]})",
               "method": f"Cox{how}{adjusted_for} (lifelines CoxPHFitter, Efron ties), "
                         f"Wald {level}% CI"}
    informative = arms_with_informative_events(time, event, arm, kw.get("strata"),
                                               kw.get("entry"))
    if min(events) == 0 or len(informative) < 2:
        # the partial likelihood is monotone (or flat) in the arm effect: its maximum is at
        # HR 0 or infinity, where lifelines stops somewhere with a warning
        if min(events) == 0:
            why = f"no events in arm {arms[int(np.argmin(events))]}"
        elif not informative:
            why = ("no event time had patients of both arms at risk"
                   + (" in the same stratum" if stratified else ""))
        else:
            why = (f"monotone likelihood: at every event time with patients of both arms at "
                   f"risk{' (in its stratum)' if stratified else ''}, only arm "
                   f"{arms[informative.pop()]} had events, so the Cox estimate runs off to 0 "
                   "or infinity")
        cox_row.update(estimate=np.nan, lower=np.nan, upper=np.nan, p_value=np.nan,
                       note=f"not estimable: {why}")
    else:
        cph = CoxPHFitter(alpha=alpha).fit(df, "T", "E", **cox_kw)
        s = cph.summary.loc["arm"]
        cox_row.update(estimate=float(s["exp(coef)"]),
                       lower=float(s[f"exp(coef) lower {level}%"]),
                       upper=float(s[f"exp(coef) upper {level}%"]), p_value=float(s["p"]),
                       note=note)
    rows.append(cox_row)
    for i, a in enumerate(arms):
        m = arm == i
        kmf = KaplanMeierFitter(alpha=alpha).fit(
            time[m], event[m], entry=np.asarray(entry, float)[m] if delayed else None)
        ci = median_survival_times(kmf.confidence_interval_)
        reached = "" if np.isfinite(kmf.median_survival_time_) else "not reached"
        rows.append({"quantity": f"KM median {a} ({time_unit})",
                     "estimate": float(kmf.median_survival_time_),
                     "lower": float(ci.iloc[0, 0]), "upper": float(ci.iloc[0, 1]),
                     "p_value": np.nan,
                     "method": f"Kaplan-Meier (lifelines), {level}% CI (log-log)"
                               + (", delayed entry" if delayed else ""),
                     "note": "; ".join(x for x in (note or reached, unadjusted) if x)})
    out = pd.DataFrame(rows).set_index("quantity")
    out.attrs.update(alpha=alpha, stratified=stratified, delayed_entry=bool(delayed),
                     time_unit=time_unit)
    return out


def arms_with_informative_events(time, event, arm, strata=None, entry=None) -> set[int]:
    """The arms (0, 1) with an event at a time when both arms had patients at risk, in the
    event's stratum (with delayed entry: entered before that time).

    Only such events inform a Cox model's arm effect: an event with one arm alone at risk
    adds the same factor to the partial likelihood whatever the effect. When they all lie in
    one arm, every factor rises (or falls) with the effect (Efron's and Breslow's tie
    handling alike), so the likelihood is monotone and the estimate is at HR 0 or
    infinity; none at all, and it is flat. Either way there is no Cox estimate.
    """
    time = np.asarray(time, float)
    event = np.asarray(event, float) > 0
    arm = np.asarray(arm, int)
    groups = np.zeros(len(time), int) if strata is None else np.asarray(strata)
    entry = np.zeros(len(time)) if entry is None else np.asarray(entry, float)
    found: set[int] = set()
    for g in np.unique(groups):
        here = groups == g
        t = time[here & event]
        both = np.ones(len(t), bool)
        for a in (0, 1):
            ends = np.sort(time[here & (arm == a)])
            starts = np.sort(entry[here & (arm == a)])
            # at risk at t: still followed (time >= t) and entered before t (entry < t)
            at_risk = (len(ends) - np.searchsorted(ends, t, "left")) - (
                len(starts) - np.searchsorted(starts, t, "left"))
            both &= at_risk > 0
        found.update(int(a) for a in arm[here & event][both])
    return found


def _not_computable(arms, time_unit, why) -> pd.DataFrame:
    names = ["log-rank test", f"Cox HR ({arms[1]} / {arms[0]})",
             *(f"KM median {a} ({time_unit})" for a in arms)]
    out = pd.DataFrame({"quantity": names, "estimate": np.nan, "lower": np.nan,
                        "upper": np.nan, "p_value": np.nan, "method": "", "note": why})
    return out.set_index("quantity")
