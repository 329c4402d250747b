"""summarize: the headline table of a fit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_hcc.errors import BayesHCCError, as_numbers, bool_flags, one_number, one_prob
from bayes_hcc.quantities._core import quantiles
from bayes_hcc.quantities.core import (_is_illness_death, _loaded, as_fit, effect_ratio,
                                       horizon_status, marginal_hazard_ratio,
                                       median_survival, prob_effect, rmst, rmst_horizon,
                                       survival)
from bayes_hcc.units import convert, time_label

__all__ = ["summarize", "frequentist", "covariate_effects", "conditional_statement",
           "default_landmarks", "default_tau", "horizon_status"]

#: Protocol landmarks and RMST horizon, in months (converted to the data's unit).
LANDMARKS_MONTHS = (12.0, 24.0)
TAU_MONTHS = 24.0


def _row(da, quantity, estimand, prob):
    import arviz_stats as azs

    x = da.to_numpy().ravel()
    lo, hi = quantiles(x, [(1 - prob) / 2, (1 + prob) / 2])  # +inf medians: +inf limits
    # draws of +inf (medians never reached) have no Monte Carlo error of their mean
    finite = bool(np.isfinite(x).all())
    return {"quantity": quantity, "estimand": estimand, "mean": float(x.mean()),
            "median": float(np.median(x)), "lower": float(lo), "upper": float(hi),
            "mcse": float(azs.mcse(da, method="mean")) if finite else np.nan,
            "ess_bulk": float(azs.ess(da, method="bulk")) if finite else np.nan, "note": ""}


def default_landmarks(fit) -> tuple[float, ...]:
    """Landmarks for S(t): 12 and 24 months, in the fit's time unit."""
    return tuple(float(convert(t, "months", fit.time_unit)) for t in LANDMARKS_MONTHS)


def default_tau(fit) -> float:
    """RMST horizon: 24 months when the follow-up of both arms reaches it, else the whole
    months covered by it, else (under a month) the follow-up itself; in the fit's time unit
    (``shortened_tau``)."""
    require_follow_up(fit)
    return shortened_tau(fit, convert(TAU_MONTHS, "months", fit.time_unit))


def require_follow_up(fit) -> None:
    """Refuse a table of a fit one of whose arms has no follow-up (every patient censored
    at time 0): no RMST horizon, nothing to compare."""
    arm, horizon = rmst_horizon(fit)
    if not horizon > 0:
        raise _no_follow_up(arm)


def require_data_follow_up(trial, endpoint: str) -> None:
    """:func:`require_follow_up` on the data, before a single-endpoint fit whose table
    would refuse (``bayes-hcc fit``: not after minutes of sampling)."""
    ep = trial.endpoint(endpoint)
    for i, arm in enumerate(ep.arms):
        t = ep.time[ep.arm == i]
        if not (t.size and t.max() > 0):
            raise _no_follow_up(arm)


def _no_follow_up(arm) -> BayesHCCError:
    return BayesHCCError(f"summarize: arm {arm!r} has no follow-up (every patient censored "
                         "at time 0): there is nothing to compare its survival with yet. "
                         "Cut the data later.")


def shortened_tau(fit, tau: float, endpoint: str | None = None) -> float:
    """An RMST horizon the data support: ``tau`` (in the fit's time unit) when the
    follow-up of both arms reaches it, else the whole months that follow-up covers (so the
    same horizon in any time unit, and a table label such as "RMST (23 months)", not
    "(23.2608 months)"); the follow-up itself when it is under a month. A single-endpoint
    or an illness-death fit (of its ``endpoint`` curve, default OS)."""
    horizon = rmst_horizon(fit, endpoint)[1]
    if tau <= horizon:
        return float(tau)
    unit = fit.data.time_unit if _is_illness_death(fit) else fit.time_unit
    months = float(np.floor(convert(horizon, unit, "months") + 1e-9))
    if months < 1:
        return float(horizon)
    return float(min(convert(months, "months", unit), horizon))


def _blank(row, keep_lower=False):
    for k in ("mean", "median", "upper", "mcse", "ess_bulk", "P(> 0)") + (
            () if keep_lower else ("lower",)):
        if k in row:
            row[k] = np.nan


def mark_median(row: dict, status: str, limit: float, unit: str, extrapolate: bool) -> None:
    """One arm's median row against that arm's longest follow-up ``limit``: a median beyond
    it is the model's extrapolation, blanked ("not reached"; the lower limit kept when it
    lies within follow-up) unless ``extrapolate``, and an upper limit beyond it likewise;
    ``row["note"]`` says which. ``status``: :func:`horizon_status`."""
    where = f"longest follow-up in this arm {limit:.3g} {unit}"
    if status == "beyond":
        if extrapolate:
            row["note"] = f"extrapolated: beyond follow-up ({where})"
        else:
            _blank(row, keep_lower=row["lower"] <= limit)
            row["note"] = (f"not reached: median beyond follow-up ({where}); "
                           "extrapolate=True shows the model's extrapolation")
    elif status == "upper":
        if extrapolate:
            row["note"] = f"upper limit extrapolated ({where})"
        else:
            row["upper"] = np.nan
            row["note"] = f"upper limit beyond follow-up ({where})"


def mark_median_difference(row: dict, statuses, extrapolate: bool) -> None:
    """The median difference's row: not estimable (blanked) when a median is not reached,
    unless ``extrapolate``; noted when it uses an extrapolated median or limit."""
    statuses = set(statuses)
    if "beyond" in statuses and not extrapolate:
        _blank(row)
        row["note"] = "not estimable: a median is not reached"
    elif statuses - {"reached"}:
        row["note"] = "uses medians extrapolated beyond follow-up"


def frequentist(fit, *, prob: float = 0.95) -> pd.DataFrame:
    """The frequentist companion of a fit, on the data it was fitted to: log-rank test, Cox
    HR with its ``prob`` Wald CI and KM medians with CIs, computed by statsmodels and
    lifelines (``data.km.classical_comparison``), stratified as the fit is, the Cox HR
    adjusted for the fit's covariates as the fit is (its design matrix: the same
    conditional HR; the log-rank test and the medians stay unadjusted and say so).

    An interval-censored endpoint is analysed as trials conventionally report it: the event
    at the scan that showed it (the upper bound); the ``note`` column says so.
    """
    from bayes_hcc.data.km import classical_comparison

    prob = one_prob(prob, "frequentist")
    fit = as_fit(fit)
    c = fit.datatree["constant_data"]
    t = fit.datatree["observed_data"][fit.endpoint].to_numpy()
    note = ("event at the scan that showed it (the conventional analysis; the Bayesian "
            "model uses the interval)" if "upper_bound" in c else "")
    strata = fit.strata_labels()
    names = list(fit.settings.get("covariates") or ())
    X = c["X"].to_numpy() if names and "X" in c else None
    return classical_comparison(t, c[fit.endpoint].to_numpy(), c["arm"].to_numpy(),
                                fit.arms, strata=strata, covariates=X,
                                covariate_names=names, alpha=1 - prob,
                                time_unit=fit.time_unit, note=note)


def _frequentist_rows(fit, prob) -> list[dict]:
    """``frequentist`` as rows of the headline table (estimand "frequentist"; the estimate
    in ``median``, the CI in ``lower``/``upper``, the log-rank p-value in ``mean``)."""
    table = frequentist(fit, prob=prob)
    rows = []
    for q, r in table.iterrows():
        is_test = q == "log-rank test"
        extra = [r["method"]]
        if not is_test and np.isfinite(r["p_value"]):
            extra.append(f"p = {r['p_value']:.3g}")
        if is_test and np.isfinite(r["estimate"]):
            extra.append(f"chi-square {r['estimate']:.3g}")
        if r["note"]:
            extra.append(r["note"])
        rows.append({"quantity": "log-rank p" if is_test else q, "estimand": "frequentist",
                     "mean": r["p_value"] if is_test else np.nan,
                     "median": np.nan if is_test else r["estimate"],
                     "lower": r["lower"], "upper": r["upper"], "mcse": np.nan,
                     "ess_bulk": np.nan, "note": "; ".join(extra)})
    return rows


@bool_flags
def summarize(fit, *, prob: float = 0.95, estimand: str = "standardized",
              times=None, tau: float | None = None, extrapolate: bool = False,
              frequentist: bool = True, thresholds=None) -> pd.DataFrame:
    """Headline quantities with mean, median, equal-tailed ``prob`` interval, MCSE and ESS.

    Rows: HR; median per arm and difference; S(t) per arm at ``times``; RMST difference at
    ``tau``; P(HR < 1) and P(HR < 0.8) (mean = probability); then, with ``frequentist``
    (default), the frequentist companion (estimand "frequentist", :func:`frequentist`):
    log-rank p (in ``mean``), Cox HR and KM medians (estimate in ``median``, CI in
    ``lower``/``upper``).

    Parameters
    ----------
    times : sequence of float, optional
        Landmarks in the fit's time unit; default 12 and 24 months converted to it.
    tau : float, optional
        RMST horizon in the fit's time unit; default :func:`default_tau`.
    extrapolate : bool, default False
        A median beyond the longest follow-up in its arm is the model's extrapolation, not
        an estimate from the data: by default its row says "not reached" (values blank,
        the lower credible limit kept when it lies within follow-up), an upper limit
        beyond follow-up is blanked, and S(t) for t beyond follow-up is blanked; the
        ``note`` column says so. ``True`` shows the extrapolated values, marked in
        ``note``. RMST beyond the follow-up raises HorizonError unless ``True``.
    thresholds : sequence of float, optional
        The ratios whose posterior probabilities are rows (P(HR < d), or P(TR > d) for an
        accelerated-failure-time family); default the arm effect's (HR: 1 and 0.8).

    :func:`as_specified` gives these options as a pre-specified analysis's spec
    (``[report]``) sets them; ``bh.report`` uses it.
    """
    prob = one_prob(prob, "summarize")
    fit = as_fit(fit)
    unit = fit.time_unit
    times = default_landmarks(fit) if times is None else _landmarks(times)
    tau = default_tau(fit) if tau is None else one_number(tau, "summarize", "tau", "18")
    follow_up = fit.follow_up_by_arm()
    ctrl, trt = fit.arms
    effect = fit.family.effect
    rows = [_row(effect_ratio(fit), "HR" if effect.ratio == "HR" else
                 "time ratio (no single HR: not PH)", None, prob)]
    rows[0]["note"] = conditional_statement(fit)
    varying = "log_hr_dev" in fit.datatree["posterior"]
    if varying:
        rows[0]["note"] += ("; geometric mean over intervals (each interval counts once, "
                            "whatever its length); per-interval HRs below")
        if not _conditioned_on(fit):  # else conditional_statement points to the row
            rows[0]["note"] += "; averaged over time: row 'marginal HR'"
        rows += _interval_hr_rows(fit, prob)
    med = median_survival(fit, estimand=estimand)
    status = {}
    for a in (ctrl, trt):
        row = _row(med.sel(arm=a), f"median {a} ({unit})", estimand, prob)
        limit = follow_up[a]
        status[a] = horizon_status(row["median"], row["upper"], limit)
        mark_median(row, status[a], limit, unit, extrapolate)
        rows.append(row)
    row = _row(med.sel(arm="difference"), f"median difference ({unit})", estimand, prob)
    mark_median_difference(row, status.values(), extrapolate)
    rows.append(row)
    s = survival(fit, list(times), estimand=estimand)
    labels = _landmark_labels(times, unit)
    for t in times:
        for a in (ctrl, trt):
            row = _row(s.sel(arm=a, time=t), f"S({labels[t]}) {a}", estimand, prob)
            if t > follow_up[a]:
                if extrapolate:
                    row["note"] = f"extrapolated: beyond follow-up ({follow_up[a]:.3g} {unit})"
                else:
                    _blank(row)
                    row["note"] = (f"beyond follow-up in this arm ({follow_up[a]:.3g} {unit}); "
                                   "extrapolate=True shows the model's extrapolation")
            rows.append(row)
    r = rmst(fit, tau, estimand=estimand, extrapolate=extrapolate)
    row = _row(r.sel(arm="difference"), f"RMST({time_label(tau, unit)}) difference", estimand,
               prob)
    if tau > rmst_horizon(fit)[1]:
        row["note"] = f"extrapolated: tau beyond follow-up ({rmst_horizon(fit)[1]:.3g} {unit})"
    rows.append(row)
    if effect.ratio == "HR" and (_conditioned_on(fit) or varying):
        # the marginal HR beside the conditional one (or beside a time-varying HR's
        # geometric mean over intervals), to the RMST horizon
        m = marginal_hazard_ratio(fit, [tau], estimand=estimand).isel(time=0)
        row = _row(m, f"marginal HR to {time_label(tau, unit)}", estimand, prob)
        row["note"] = "; ".join(x for x in (
            "log S(t) ratio of the standardised survival curves",
            "population-averaged; not conditional" if _conditioned_on(fit) else "",
            "the ratio of the arms' cumulative hazards: the per-interval HRs averaged over "
            "time with the control arm's hazard as weights" if varying else "") if x)
        if tau > rmst_horizon(fit)[1]:  # as the RMST row: beyond follow-up is extrapolated
            row["note"] += (f"; extrapolated: tau beyond follow-up "
                            f"({rmst_horizon(fit)[1]:.3g} {unit})")
        rows.append(row)
    thresholds = (effect.thresholds if thresholds is None else tuple(dict.fromkeys(
        as_numbers(thresholds, "summarize", "thresholds", "[1.0, 0.8]"))))  # one row each
    probs = [prob_effect(fit, d) for d in thresholds]
    for p in probs:
        rows.append({"quantity": f"P({p.statement})", "estimand": None, "mean": p.probability,
                     "median": np.nan, "lower": np.nan, "upper": np.nan, "mcse": p.mcse,
                     "ess_bulk": np.nan,
                     "note": "; ".join(x for x in (
                         "HR: the geometric mean over intervals" if varying else "",
                         "every draw agrees: MCSE below 1 / draws" if p.mcse_is_bound
                         else "") if x)})
    if frequentist:
        rows += _frequentist_rows(fit, prob)
    out = pd.DataFrame(rows).set_index("quantity")
    out["ess_bulk"] = out["ess_bulk"].round().astype("Int64")
    verdict = note_diagnostics(out, fit)
    out.attrs.update(endpoint=fit.endpoint, model=fit.settings["model"], prob=prob,
                     estimand=estimand, time_unit=unit, extrapolate=extrapolate,
                     follow_up_by_arm=follow_up, data_fingerprint=fit.data_fingerprint,
                     diagnostics=verdict, analysis_mode=fit.analysis_mode)
    return out


def note_diagnostics(table: pd.DataFrame, fit) -> str:
    """A fit that failed its convergence checks (or a fast-mode fit) says so in its table,
    not only in the warning given when it was fitted (the table may be printed or exported
    much later): the verdict is added to the first row's note. Returns the verdict."""
    verdict = diagnostics_verdict(fit)
    if verdict != "ok":
        first = table.index[0]
        table.loc[first, "note"] = "; ".join(x for x in (table.loc[first, "note"], verdict)
                                             if x)
    return verdict


def diagnostics_verdict(fit) -> str:
    """"ok", or what failed, in a few words: "MCMC diagnostics FAILED (r_hat, ess_bulk):
    see bh.check(fit)" (at the thresholds of the fit's mode), with "exploratory (fast)
    fit" for a fit made in fast mode."""
    failed = [p.split(" ")[0] for p in fit.convergence_problems()]
    parts = (["exploratory (fast) fit: not for inference"]
             if fit.analysis_mode == "exploratory" else [])
    if failed:
        parts.append(f"MCMC diagnostics FAILED ({', '.join(dict.fromkeys(failed))}): see "
                     "bh.check(fit)")
    return "; ".join(parts) or "ok"


def spec_tau(spec, unit: str) -> float | None:
    """The RMST horizon a spec's ``[report]`` table pre-specifies (in the spec's time unit),
    in ``unit``; None when it sets none."""
    tau = dict(spec.report).get("tau")
    return float(convert(tau, spec.time_unit, unit)) if tau else None


def as_specified(fit) -> dict:
    """:func:`summarize`'s options as the fit's spec pre-specifies them (its ``[report]``
    table: estimand, prob, landmark times, RMST tau, HR thresholds), in the fit's time
    unit. A tau beyond the follow-up of either arm is shortened to the whole months it
    covers (``shortened_tau``: the RMST beyond would be the model's extrapolation; the row's
    label shows the tau used). HR thresholds apply to hazard-ratio families only."""
    fit = as_fit(fit)
    spec = fit.spec
    rep = dict(spec.report)
    out = {"estimand": rep["estimand"], "prob": float(rep["prob"]),
           "times": tuple(float(convert(t, spec.time_unit, fit.time_unit))
                          for t in rep["times"])}
    tau = spec_tau(spec, fit.time_unit)
    if tau is not None:
        require_follow_up(fit)  # the spec's tau shortened to 0 reached rmst's own check
        out["tau"] = shortened_tau(fit, tau)
    if fit.family.effect.ratio == "HR":
        out["thresholds"] = tuple(float(d) for d in rep["hr_thresholds"])
    return out


def _landmark_labels(times, unit) -> dict:
    """Each landmark's "12 months" / "52.18 weeks" for its rows' names (``time_label``);
    landmarks closer than its four digits tell apart get twelve."""
    labels = {t: time_label(t, unit) for t in times}
    if len(set(labels.values())) < len(labels):
        labels = {t: time_label(t, unit, exact=True) for t in times}
    return labels


def _landmarks(times) -> tuple:
    """Landmark times as floats: one number or a sequence of numbers (``as_numbers``:
    ``times="12"`` was read as the landmarks 1 and 2). A time given twice is one landmark
    (its rows are asked for twice: ``times=[12, 12]`` raised TypeError from inside xarray)."""
    out = as_numbers(times, "summarize", "times")
    if not all(t >= 0 for t in out):
        raise BayesHCCError(f"summarize: times={list(out)} must be finite and >= 0.")
    return tuple(dict.fromkeys(out))


def headline_table(fit, *, extrapolate: bool = False) -> pd.DataFrame:
    """The table a report and ``bayes-hcc fit`` show, as the fit's spec pre-specifies it:
    :func:`summarize` with :func:`as_specified`; for an illness-death fit its OS / PFS /
    TTP table (``endpoint_table``: medians, and the RMST to the spec's tau, else to 24
    months as ``summarize``, shortened to the follow-up in whole months: ``shortened_tau``;
    the typical site without a spec). A pre-specified tau so shortened is noted on its
    row."""
    if not _is_illness_death(fit):
        opts = as_specified(fit)
        table = summarize(fit, extrapolate=extrapolate, **opts)
        given = spec_tau(as_fit(fit).spec, fit.time_unit)
        if "tau" in opts:
            _note_shortened(table, f"RMST({time_label(opts['tau'], fit.time_unit)}) difference",
                            given, opts["tau"], fit, fit.time_unit)
        return table
    spec = fit.spec
    rep = dict(spec.report) if spec is not None else {"prob": 0.95,
                                                      "estimand": "typical_site"}
    given = spec_tau(spec, fit.data.time_unit) if spec is not None else None
    tau = shortened_tau(fit, convert(TAU_MONTHS, "months", fit.data.time_unit)
                        if given is None else given)
    table = fit.endpoint_table(tau=tau, prob=rep["prob"], estimand=rep["estimand"],
                               extrapolate=extrapolate)
    unit = fit.data.time_unit
    _note_shortened(table, ("OS", f"RMST difference ({time_label(tau, unit)})"), given, tau,
                    fit, unit)
    return table


def _note_shortened(table, row, given, used, fit, unit) -> None:
    """Say on the RMST row that the spec's tau was shortened to the follow-up (the label
    alone showed the shorter tau, as if it were the one pre-specified)."""
    if given is None or not used < given or row not in table.index:
        return
    horizon = rmst_horizon(fit)[1]
    note = (f"pre-specified tau {time_label(given, unit)} is past the follow-up ({horizon:.3g} "
            f"{unit}): shortened to " + ("it" if used == horizon else "the whole months "
                                         "it covers"))
    old = table.loc[row, "note"]
    table.loc[row, "note"] = "; ".join(x for x in (old if isinstance(old, str) else "", note)
                                       if x)


def _conditioned_on(fit) -> list:
    """What the model's arm effect is conditional on (``Fit.conditioned_on``)."""
    return fit.conditioned_on()


def conditional_statement(fit) -> str:
    """Whether the model's effect ratio is conditional or marginal, in words."""
    on = _conditioned_on(fit)
    if not on:
        return "marginal (no covariates or site terms: conditional = marginal)"
    text = "conditional on " + " and ".join(on)
    return text + ("; marginal HR: row 'marginal HR'" if fit.family.effect.ratio == "HR"
                   else "")


def covariate_effects(fit, *, prob: float = 0.95) -> pd.DataFrame:
    """The covariates' effects as ratios (HR for PH families, time ratio for AFT ones):
    numeric covariates per unit of the column, categorical ones each level against its
    reference level; median, equal-tailed ``prob`` interval and the probability that the
    ratio is below 1. Conditional on the arm, the other covariates and the site terms.
    An illness-death fit: its ``covariate_effects`` (one HR per transition and term)."""
    prob = one_prob(prob, "covariate_effects")
    fit = _loaded(fit)  # a saved fit of either kind
    if _is_illness_death(fit):
        return fit.covariate_effects(prob=prob)
    fit = as_fit(fit)
    post = fit.datatree["posterior"]
    if "covariate_effect" not in post:
        raise BayesHCCError("covariate_effects: this fit has no covariates.")
    eff = post["covariate_effect"]
    ratio = fit.family.effect.ratio
    rows = []
    for term in eff["term"].to_numpy():
        x = np.exp(eff.sel(term=term).to_numpy().ravel())
        lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2])
        rows.append({"term": str(term), ratio: float(np.median(x)), "lower": float(lo),
                     "upper": float(hi), f"P({ratio} < 1)": float(np.mean(x < 1)),
                     "note": "conditional on arm, other covariates and site terms"})
    out = pd.DataFrame(rows).set_index("term")
    out.attrs.update(prob=prob, ratio=ratio, endpoint=fit.endpoint)
    return out


def _interval_hr_rows(fit, prob) -> list[dict]:
    """One row per interval of a time-varying-HR model: HR = exp(log_hr_interval)."""
    lhi = fit.datatree["posterior"]["log_hr_interval"]
    rows = []
    for label in lhi["interval"].values:
        rows.append(_row(np.exp(lhi.sel(interval=label)), f"HR in {label} {fit.time_unit}",
                         None, prob))
    return rows
