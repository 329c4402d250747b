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
    return out


def turnbull(lower, upper, *, label: str = "npmle"):
    """Turnbull's non-parametric maximum-likelihood estimate of S(t) from interval-censored
    data ((lower, upper], upper = inf for a censored patient, lower = upper for an exact
    event), through lifelines' interval-censored Kaplan-Meier. Returns a DataFrame indexed
    by time with ``survival`` (the estimate at the end of each Turnbull interval) and
    ``survival_start`` (its start): the NPMLE is known only up to where the mass lies inside
    each interval."""
    from lifelines import KaplanMeierFitter

    kmf = KaplanMeierFitter(label=label).fit_interval_censoring(np.asarray(lower, float),
                                                                np.asarray(upper, float))
    sf = kmf.survival_function_
    col = {c.rsplit("_", 1)[-1]: c for c in sf.columns}  # ..._lower, ..._upper
    out = pd.DataFrame({"survival": sf[col["lower"]].to_numpy(),
                        "survival_start": sf[col["upper"]].to_numpy()}, index=sf.index)
    return out[np.isfinite(out.index)]


def turnbull_median(lower, upper) -> tuple[float, float]:
    """The interval (a, b] holding the NPMLE median: a = last time the Turnbull estimate is
    above 0.5, b = first time it is at or below (inf when not reached)."""
    sf = turnbull(lower, upper)["survival"]
    below = sf.index[sf.to_numpy() <= 0.5]
    if len(below) == 0:
        return float("inf"), float("inf")
    b = float(below[0])
    above = sf.index[(sf.to_numpy() > 0.5) & (sf.index < b)]
    return (float(above[-1]) if len(above) else 0.0), b


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
