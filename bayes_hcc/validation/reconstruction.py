"""How well reconstruction from a published figure works, measured on a trial whose patients
are known: draw its Kaplan-Meier curves, digitise them as a person would, take the numbers at
risk a journal would print, reconstruct (``bh.reconstruct_trial``) and compare with the truth.

The comparisons (acceptance of #25): Kaplan-Meier curves (mean absolute difference over
follow-up), medians (the reconstructed one inside the true KM median's 95% CI), the Cox log
HR (lifelines, on both) and the package's posterior median log HR (one model, compiled once,
fitted to both data sets; the difference in units of the true posterior SD).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["digitise_km", "published_at_risk", "reconstruction_round_trip", "TOLERANCES"]

#: What a round trip must achieve (the acceptance of #25).
TOLERANCES = {"km_mean_abs_diff": 0.02, "cox_log_hr": 0.1, "posterior_log_hr_sd": 0.25}


def digitise_km(time, event, *, n_points: int = 40, time_jitter: float = 0.002,
                survival_jitter: float = 0.004, seed=0) -> pd.DataFrame:
    """What a person reads off a Kaplan-Meier figure of (time, event): up to ``n_points``
    step corners (the value after each drop, spread evenly over the drops) plus the start
    and the end of the curve, with a digitiser's imprecision: times moved by a normal error
    of ``time_jitter`` times the axis length (their order kept: a person does not put a
    lower step before a higher one), survival by one of ``survival_jitter``."""
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(seed)
    sf = KaplanMeierFitter().fit(time, event).survival_function_.iloc[:, 0]
    times, surv = sf.index.to_numpy(float), sf.to_numpy(float)
    drops = np.flatnonzero(np.diff(surv) < 0) + 1
    if len(drops) == 0:
        return pd.DataFrame({"time": [0.0, times[-1]], "survival": [1.0, 1.0]})
    pick = np.unique(np.round(np.linspace(0, len(drops) - 1, min(n_points, len(drops))))
                     .astype(int))
    idx = drops[pick]
    pt = np.sort(np.abs(times[idx] + rng.normal(0, time_jitter * times.max(), len(idx))))
    ps = np.clip(surv[idx] + rng.normal(0, survival_jitter, len(idx)), 0, 1)
    end_t = max(times[-1], pt[-1])
    return pd.DataFrame({"time": np.r_[0.0, pt, end_t],
                         "survival": np.r_[1.0, ps, min(surv[-1], ps[-1])]})


def published_at_risk(time, *, n_columns: int = 8) -> pd.DataFrame:
    """The numbers at risk a journal prints under the figure: about ``n_columns`` columns
    at a round step (whole units) from 0 to the last time."""
    time = np.asarray(time, float)
    step = max(1.0, float(np.round(time.max() / n_columns)))
    grid = np.arange(0.0, time.max(), step)
    return pd.DataFrame({"time": grid, "n_at_risk": [int((time >= g).sum()) for g in grid]})


def _km_grid(time, event, grid):
    from lifelines import KaplanMeierFitter

    return KaplanMeierFitter().fit(time, event).survival_function_at_times(grid).to_numpy()


def _cox_log_hr(trial, endpoint):
    from lifelines import CoxPHFitter

    ep = trial.endpoint(endpoint)
    frame = pd.DataFrame({"time": ep.time, "event": ep.event, "arm": ep.arm.astype(float)})
    return float(CoxPHFitter().fit(frame, "time", "event").params_["arm"])


def reconstruction_round_trip(trial, endpoint: str | None = None, *, model=None,
                              n_points: int = 40, seed=0, bayes: bool = True,
                              random_seed: int = 1) -> pd.DataFrame:
    """Reconstruct ``trial`` from its own digitised curves and compare with the truth.

    Returns one row per check (``check``, ``arm``, ``true``, ``reconstructed``,
    ``difference``, ``tolerance``, ``passed``); ``attrs["trial"]`` holds the reconstructed
    TrialData. ``model`` (default ``PiecewiseExponential(site_effect="none")``: a
    reconstruction has no sites, so the truth is fitted without them too) is compiled once
    and fitted to both; ``bayes=False`` leaves the posterior comparison out.
    """
    from bayes_hcc.data.km import km_medians
    from bayes_hcc.data.reconstruct import reconstruct_trial
    from bayes_hcc.data.trial import require_trial

    endpoint = endpoint or require_trial(trial, "reconstruction_round_trip").endpoints[0]
    ep = trial.endpoint(endpoint)
    rng_seeds = np.random.SeedSequence(seed).spawn(2)
    arms = {}
    for i, label in enumerate(trial.arms):
        m = ep.arm == i
        curve = digitise_km(ep.time[m], ep.event[m], n_points=n_points,
                            seed=rng_seeds[i])
        arms[label] = (curve, published_at_risk(ep.time[m]), int(ep.event[m].sum()))
    rec = reconstruct_trial(arms, control=trial.control, treatment=trial.treatment,
                            endpoint=endpoint, time_unit=trial.time_unit,
                            source=f"{trial.source} (round trip)")
    rep = rec.endpoint(endpoint)
    rows = []
    true_med, rec_med = km_medians(trial, endpoint), km_medians(rec, endpoint)
    for i, label in enumerate(trial.arms):
        m, mr = ep.arm == i, rep.arm == i
        grid = np.linspace(0, 0.95 * ep.time[m].max(), 200)
        mad = float(np.mean(np.abs(_km_grid(ep.time[m], ep.event[m], grid)
                                   - _km_grid(rep.time[mr], rep.event[mr], grid))))
        rows.append({"check": "KM mean |difference|", "arm": label, "true": 0.0,
                     "reconstructed": mad, "difference": mad,
                     "tolerance": TOLERANCES["km_mean_abs_diff"],
                     "passed": mad < TOLERANCES["km_mean_abs_diff"]})
        t_row, r_row = true_med.loc[label], rec_med.loc[label]
        lo, hi = t_row.filter(like="lower").iloc[0], t_row.filter(like="upper").iloc[0]
        med_t, med_r = float(t_row["median"]), float(r_row["median"])
        inside = (np.isfinite(med_r) and (not np.isfinite(lo) or med_r >= lo)
                  and (not np.isfinite(hi) or med_r <= hi)) or \
            (not np.isfinite(med_t) and not np.isfinite(med_r))
        rows.append({"check": "median inside the true 95% CI", "arm": label, "true": med_t,
                     "reconstructed": med_r, "difference": med_r - med_t,
                     "tolerance": f"[{lo:.3g}, {hi:.3g}]", "passed": bool(inside)})
        rows.append({"check": "events", "arm": label, "true": int(ep.event[m].sum()),
                     "reconstructed": int(rep.event[mr].sum()),
                     "difference": int(rep.event[mr].sum()) - int(ep.event[m].sum()),
                     "tolerance": "reported", "passed": True})
    b_t, b_r = _cox_log_hr(trial, endpoint), _cox_log_hr(rec, endpoint)
    rows.append({"check": "Cox log HR", "arm": "both", "true": b_t, "reconstructed": b_r,
                 "difference": b_r - b_t, "tolerance": TOLERANCES["cox_log_hr"],
                 "passed": abs(b_r - b_t) < TOLERANCES["cox_log_hr"]})
    if bayes:
        from bayes_hcc.models import MODELS
        from bayes_hcc.quantities.core import hazard_ratio

        model = model or MODELS["PiecewiseExponential"](site_effect="none")
        fits = [model.fit(d, endpoint, random_seed=random_seed) for d in (trial, rec)]
        draws = [np.log(hazard_ratio(f)).to_numpy().ravel() for f in fits]
        sd = float(np.std(draws[0]))
        z = (float(np.median(draws[1])) - float(np.median(draws[0]))) / sd
        rows.append({"check": "posterior median log HR (in true posterior SDs)",
                     "arm": "both", "true": float(np.median(draws[0])),
                     "reconstructed": float(np.median(draws[1])), "difference": z,
                     "tolerance": TOLERANCES["posterior_log_hr_sd"],
                     "passed": abs(z) < TOLERANCES["posterior_log_hr_sd"]})
    table = pd.DataFrame(rows)
    table.attrs.update(trial=rec, data=trial.source, endpoint=endpoint, n_points=n_points,
                       seed=str(seed))
    return table
