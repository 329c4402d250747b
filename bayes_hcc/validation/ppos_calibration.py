"""Is the illness-death PPoS better calibrated than the OS-only PPoS when progression
raises the death hazard? A simulation study with a known truth.

Each simulated trial is the example trial's design (``EXAMPLE_RECIPE``: 130 patients, 6
sites, scans every 2 months) with a death hazard ``post_progression_hr`` times higher after
progression (a Markov illness-death truth, ``simulate_trial``), followed until the
monitoring plan's final event count is reached. At the plan's interim look the PPoS is
computed twice, with the same final rule (the plan's normal approximation) and the same
number of completed trials: completing each trial with the plan's OS model, and with an
illness-death model that knows who has progressed (``completion=``). The trial's actual
final outcome is that rule applied to its own data at the final event count. The Brier
score, mean (PPoS - outcome)^2, of each method, and their paired difference, come with
Monte Carlo 95% intervals (normal, from the per-trial values).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bayes_hcc.errors import BayesHCCError
from bayes_hcc.mcerror import wilson_interval

#: The two PPoS of a study table: (label, column).
METHODS = (("OS-only PPoS", "ppos_os"), ("illness-death PPoS", "ppos_illness_death"))

__all__ = ["ppos_calibration_study", "calibration_summary", "reliability_table"]


def _one_trial(payload) -> dict:
    import bayes_hcc as bh
    from bayes_hcc.datasets import EXAMPLE_RECIPE
    from bayes_hcc.monitoring.predict import normal_final_probability

    plan_path, seed, rho, look, n_sims, id_settings, truth = payload
    plan = bh.load_plan(plan_path)
    recipe = {**EXAMPLE_RECIPE, **truth, "random_seed": seed, "cut_date": "2024-12-31",
              "post_progression_hr": rho, "id_prefix": "CAL"}
    trial = bh.simulate_trial(**recipe)
    final = trial.cut(pd.Timestamp(bh.look_date(trial, plan.look("final"), "os")),
                      warn=False)
    outcome = normal_final_probability(final, plan.spec) > plan.final.success
    interim = trial.cut(pd.Timestamp(bh.look_date(trial, plan.look(look), "os")), warn=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os_fit = bh.fit_spec(plan.spec, interim, check=False, random_seed=seed)
        id_fit = bh.IllnessDeath(**id_settings).fit(interim, random_seed=seed, check=False,
                                                    draws=500, tune=500)
        pp_os = bh.predictive_probability(interim, plan, fit=os_fit, n_sims=n_sims,
                                          method="normal", random_seed=seed)
        pp_id = bh.predictive_probability(interim, plan, completion=id_fit, n_sims=n_sims,
                                          method="normal", random_seed=seed)
    return {"seed": int(seed), "outcome": bool(outcome), "ppos_os": pp_os.ppos,
            "ppos_illness_death": pp_id.ppos, "interim_events": int(
                interim.endpoint("os").n_events),
            "id_converged": not id_fit.convergence_problems(),
            "os_converged": not os_fit.convergence_problems()}


def ppos_calibration_study(plan, *, n_trials: int = 60, post_progression_hr: float = 3.0,
                           look: int = 2, n_sims: int = 100, random_seed: int = 2024,
                           workers: int | None = 1, progress: bool = True,
                           illness_death: dict | None = None, truth: dict | None = None,
                           store=None) -> pd.DataFrame:
    """One row per simulated trial: its actual final outcome and the two PPoS at the
    interim ``look`` (module docstring). ``illness_death`` sets the completion model
    (default Weibull baselines, clock forward, one site effect shared by the
    transitions: the structure of the truth). ``truth`` overrides the example trial's
    recipe (``simulate_trial`` arguments), e.g. ``{"hr_os": 1.0, "hr_ttp": 0.5}``: a
    treatment that delays progression and acts on death only through it. ``store`` (a
    JSON Lines file) makes the study resumable; its first line records the plan and every
    setting but ``n_trials`` (trial i's seed does not depend on it, so a study can be
    extended), and a store written with other settings is refused."""
    from pathlib import Path

    import bayes_hcc as bh
    from bayes_hcc.datasets import EXAMPLE_RECIPE
    from bayes_hcc.runner import run_tasks

    settings = {"baseline": "weibull_ph", "time_scale": "markov", "site_effect": "shared",
                **(illness_death or {})}
    truth = dict(truth or {})
    fixed = {"random_seed", "cut_date", "post_progression_hr", "id_prefix"} & set(truth)
    unknown = set(truth) - set(EXAMPLE_RECIPE)
    if fixed or unknown:
        raise BayesHCCError(f"truth={truth!r}: {sorted(fixed | unknown)} cannot be set here "
                            "(the study sets the seed, the cut and post_progression_hr; the "
                            f"others must be arguments of the recipe: "
                            f"{sorted(EXAMPLE_RECIPE)}).")
    seeds = np.random.default_rng(random_seed).integers(2**31, size=n_trials)
    meta = {"kind": "ppos_calibration", "plan_hash": bh.load_plan(plan).hash,
            "post_progression_hr": float(post_progression_hr), "look": look,
            "n_sims": n_sims, "illness_death": settings, "truth": truth,
            "random_seed": random_seed}
    tasks = [(f"trial{i}", (str(Path(plan).resolve()), int(s), float(post_progression_hr),
                            look, n_sims, settings, truth)) for i, s in enumerate(seeds)]
    out = run_tasks(_one_trial, tasks, workers=workers, progress=progress,
                    desc="PPoS calibration", store=store, meta=meta)
    table = pd.DataFrame([out[k] for k, _ in tasks])
    table.attrs.update(meta)  # what produced it: the store's settings line
    return table


def _outcomes(table: pd.DataFrame) -> np.ndarray:
    """The actual outcomes (0/1) of a study table, after checking the columns the
    summaries read: a named error with the rows and the fix, never a silent NaN or a
    PPoS binned outside [0, 1]."""
    if not isinstance(table, pd.DataFrame):
        raise BayesHCCError("give the table ppos_calibration_study returns (a DataFrame).")
    need = ["outcome"] + [col for _, col in METHODS]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise BayesHCCError(f"the table has no column(s) {missing}; give the table "
                            f"ppos_calibration_study returns (columns {need}).")
    if len(table) < 2:
        raise BayesHCCError(f"{len(table)} trial(s): Monte Carlo intervals need at least 2.")
    y = pd.to_numeric(table["outcome"].astype("object"), errors="coerce").to_numpy(float)
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise BayesHCCError(f"column 'outcome': not True/False (or 1/0) in rows "
                            f"{table.index[bad][:5].tolist()}; it is each trial's actual "
                            "final decision.")
    for _, col in METHODS:
        f = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        bad = ~((f >= 0) & (f <= 1))
        if bad.any():
            raise BayesHCCError(f"column {col!r}: not a probability in [0, 1] in rows "
                                f"{table.index[bad][:5].tolist()}; drop or recompute those "
                                "trials.")
    return y


def calibration_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Brier score of each PPoS and the paired difference (OS-only - illness-death: > 0
    favours the illness-death PPoS), each with a Monte Carlo 95% interval."""
    y = _outcomes(table)
    rows = {name: (table[col].to_numpy(float) - y) ** 2 for name, col in METHODS}
    rows["difference (OS-only - illness-death)"] = rows["OS-only PPoS"] - \
        rows["illness-death PPoS"]
    n = len(y)
    out = []
    for name, e in rows.items():
        m, se = float(np.mean(e)), float(np.std(e, ddof=1) / np.sqrt(n))
        out.append({"measure": name, "Brier score": m, "MC lower 95%": m - 1.96 * se,
                    "MC upper 95%": m + 1.96 * se})
    res = pd.DataFrame(out).set_index("measure")
    res.attrs.update({"n_trials": n, "success_rate": float(y.mean())})
    return res


def reliability_table(table: pd.DataFrame,
                      bins=(0.0, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0)) -> pd.DataFrame:
    """Where each PPoS is calibrated: per method and bin of PPoS values (right-closed, the
    first bin includes 0), the trials in it, their mean PPoS and the share that actually
    succeeded (Wilson 95% interval). A calibrated PPoS has mean PPoS inside the interval.

    ``attrs["decomposition"]``: per method the Brier score and Murphy's terms on these
    bins, reliability (sum of n_k (mean PPoS_k - success_k)^2 / n: lower is better
    calibrated), resolution (sum of n_k (success_k - success)^2 / n: higher separates
    successes from failures better) and uncertainty (success (1 - success)). When every
    PPoS in a bin is equal, Brier = reliability - resolution + uncertainty exactly;
    otherwise the within-bin spread makes up the rest."""
    edges = np.asarray(bins, float)
    if edges[0] > 0 or edges[-1] < 1 or np.any(np.diff(edges) <= 0):
        raise BayesHCCError(f"bins={tuple(bins)}: give increasing edges from 0 to 1, "
                            "e.g. (0, 0.2, 0.5, 0.8, 1).")
    y = _outcomes(table)
    n, base = len(y), float(y.mean())
    rows, parts = [], {}
    for name, col in METHODS:
        f = table[col].to_numpy(float)
        k = np.clip(np.searchsorted(edges, f, side="left") - 1, 0, len(edges) - 2)
        rel = res = 0.0
        for b in range(len(edges) - 1):
            inside = k == b
            m = int(inside.sum())
            if m == 0:
                continue
            fbar, obar = float(f[inside].mean()), float(y[inside].mean())
            lo, hi = wilson_interval(int(y[inside].sum()), m)
            rows.append({"method": name, "PPoS bin": f"({edges[b]:g}, {edges[b + 1]:g}]"
                         if b else f"[{edges[b]:g}, {edges[b + 1]:g}]", "trials": m,
                         "mean PPoS": fbar, "succeeded": obar, "lower 95%": lo,
                         "upper 95%": hi})
            rel += m * (fbar - obar) ** 2 / n
            res += m * (obar - base) ** 2 / n
        parts[name] = {"brier": float(np.mean((f - y) ** 2)), "reliability": rel,
                       "resolution": res, "uncertainty": base * (1 - base)}
    out = pd.DataFrame(rows).set_index(["method", "PPoS bin"])
    out.attrs["decomposition"] = parts
    return out
