"""summarize: the headline table of a fit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_hcc.errors import BayesHCCError

from bayes_hcc.quantities.core import (as_fit, hazard_ratio, median_survival, prob_superiority,
                                       prob_time_ratio, rmst, survival, time_ratio)


def _row(da, quantity, estimand, prob):
    import arviz_stats as azs

    x = da.to_numpy().ravel()
    lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2])
    return {"quantity": quantity, "estimand": estimand, "mean": float(x.mean()),
            "median": float(np.median(x)), "lower": float(lo), "upper": float(hi),
            "mcse": float(azs.mcse(da, method="mean")),
            "ess_bulk": float(azs.ess(da, method="bulk"))}


def default_tau(fit) -> float:
    """RMST horizon: 24 months when the follow-up reaches it, else the whole months
    covered by the follow-up."""
    return 24.0 if fit.max_follow_up >= 24 else float(np.floor(fit.max_follow_up))


def summarize(fit, *, prob: float = 0.95, estimand: str = "standardized",
              times=(12.0, 24.0), tau: float | None = None) -> pd.DataFrame:
    """Headline quantities with mean, median, equal-tailed ``prob`` interval, MCSE and ESS.

    Rows: HR; median per arm and difference; S(t) per arm at ``times``; RMST difference at
    ``tau`` (default :func:`default_tau`); P(HR < 1) and P(HR < 0.8) (mean = probability).
    """
    if not 0 < prob < 1:
        raise BayesHCCError(f"summarize: prob={prob!r} must be strictly between 0 and 1 "
                            "(0.95 for 95% credible intervals).")
    fit = as_fit(fit)
    tau = default_tau(fit) if tau is None else tau
    ctrl, trt = fit.arms
    ph = fit.family.proportional_hazards
    rows = [_row(hazard_ratio(fit), "HR", None, prob)] if ph else \
        [_row(time_ratio(fit), "time ratio (no single HR: not PH)", None, prob)]
    med = median_survival(fit, estimand=estimand)
    for a in (ctrl, trt):
        rows.append(_row(med.sel(arm=a), f"median {a}", estimand, prob))
    rows.append(_row(med.sel(arm="difference"), "median difference", estimand, prob))
    s = survival(fit, list(times), estimand=estimand)
    for t in times:
        for a in (ctrl, trt):
            rows.append(_row(s.sel(arm=a, time=t), f"S({t:g}) {a}", estimand, prob))
    r = rmst(fit, tau, estimand=estimand, extrapolate=False)
    rows.append(_row(r.sel(arm="difference"), f"RMST({tau:g}) difference", estimand, prob))
    probs = [prob_superiority(fit, d) for d in (1.0, 0.8)] if ph else [prob_time_ratio(fit)]
    for p in probs:
        rows.append({"quantity": f"P({p.statement})", "estimand": None, "mean": p.probability,
                     "median": np.nan, "lower": np.nan, "upper": np.nan, "mcse": p.mcse,
                     "ess_bulk": np.nan})
    out = pd.DataFrame(rows).set_index("quantity")
    out.attrs.update(endpoint=fit.endpoint, model=fit.settings["model"], prob=prob,
                     estimand=estimand, time_unit=fit.time_unit,
                     data_fingerprint=fit.data_fingerprint)
    return out
