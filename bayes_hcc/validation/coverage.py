"""Frequentist coverage of credible intervals on trials from the trial simulator.

Unlike SBC, the truth here is fixed (a plausible scenario for this trial, not a prior draw)
and the data come from ``simulate_trial`` (joint progression/death, day-rounded dates,
dropout, accrual, a data cut), so the check covers the analysis as it will be used.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_hcc.errors import (BayesHCCError, ModelError, as_numbers, bool_flags, did_you_mean,
                              recorded_data_warnings)
from bayes_hcc.mcerror import wilson_interval
from bayes_hcc.models.base import PiecewiseExponential, SurvivalModel, WeibullPH
from bayes_hcc.quantities.core import median_survival
from bayes_hcc.runner import default_workers, run_tasks
from bayes_hcc.simulate.trial import simulate_trial
from bayes_hcc.spec.sampler import check_seed
from bayes_hcc.validation.sbc import TRIAL_SITE_SIZES, resolve_model

__all__ = ["coverage_study", "CoverageResult", "DEFAULT_SCENARIO", "COVERAGE_MODELS",
           "interval_bias_study", "BIAS_SCHEDULES"]

#: The trial as planned: 130 patients at the example trial's 6 site sizes, OS Weibull with
#: median 6.5 months (shape 1.2) on sorafenib, HR 0.70, site frailty SD 0.2, 5% dropout per
#: year, accrual 2017-06 to 2019-05, cut 2020-02-28.
DEFAULT_SCENARIO = dict(n_patients=130, sites=6, site_sizes=list(TRIAL_SITE_SIZES),
                        hr_os=0.70, site_sd=0.2, dropout_per_year=0.05)

COVERAGE_MODELS = {
    "weibull_ph": lambda: WeibullPH(site_effect="random"),
    "piecewise_exponential": lambda: PiecewiseExponential(site_effect="random"),
}

QUANTITIES = ("log_hr", "median_difference", "median_control")


def _trial_intervals(payload) -> dict:
    spec_toml, scenario, seed, fit_kw, probs, endpoint = payload
    from bayes_hcc.models.base import model_from_spec

    model = model_from_spec(spec_toml)
    # what the data warn of (a site without events under fixed site effects, say) is
    # recorded per trial, not printed by every worker nor lost; convergence is recorded
    # below
    with recorded_data_warnings() as notes:
        trial = simulate_trial(**scenario, random_seed=seed)
        fit = model.fit(trial, endpoint, random_seed=seed, check=False,
                        **{"log_likelihood": False, **fit_kw})
    truth = trial.truth
    c, t = trial.arms
    true = {"log_hr": float(np.log(truth.hr[endpoint])),
            "median_difference": truth.median[endpoint][t] - truth.median[endpoint][c],
            "median_control": truth.median[endpoint][c]}
    # typical site: the simulator's truth is for a site with frailty 0
    med = median_survival(fit, estimand="typical_site")
    draws = {"log_hr": fit.posterior["log_hr"].to_numpy().ravel(),
             "median_difference": med.sel(arm="difference").to_numpy().ravel(),
             "median_control": med.sel(arm=c).to_numpy().ravel()}
    out = {"seed": int(seed), "n_events": int(trial.endpoint(endpoint).n_events),
           "divergences": int(fit.datatree["sample_stats"]["diverging"].sum()),
           "converged": True, "failed_checks": ", ".join(fit.failed_checks()),
           "data_warnings": "; ".join(notes)}
    out["converged"] = not out["failed_checks"]
    for q in QUANTITIES:
        d = draws[q]
        out[f"{q}_true"] = true[q]
        out[f"{q}_mean"] = float(np.mean(d))
        for p in probs:
            lo, hi = np.quantile(d, [(1 - p) / 2, (1 + p) / 2])
            out[f"{q}_{p:g}"] = [float(lo), float(hi)]
    return out


@dataclass
class CoverageResult:
    """Per-trial intervals and truths; ``table()`` gives coverage with Monte Carlo error."""

    name: str
    records: pd.DataFrame
    probs: tuple
    scenario: dict

    def table(self) -> pd.DataFrame:
        """Coverage of each central interval: proportion of trials whose interval holds the
        truth, its Monte Carlo SE sqrt(p (1 - p) / n) and 95% Wilson interval; and the mean
        bias of the posterior mean; ``unconverged``: the trials whose fit failed its
        convergence checks (counted in, not dropped: dropping them would bias coverage);
        ``data_warned``: the trials whose data warned (``data_warnings()`` says of what;
        NaN for a store written before they were recorded)."""
        rows = []
        n = len(self.records)
        unconverged = (int((~self.records["converged"].astype(bool)).sum())
                       if "converged" in self.records else np.nan)
        warned = (int((self.records["data_warnings"].fillna("") != "").sum())
                  if "data_warnings" in self.records else np.nan)
        for q in QUANTITIES:
            true = self.records[f"{q}_true"].to_numpy()
            bias = float(np.mean(self.records[f"{q}_mean"] - true))
            for p in self.probs:
                iv = np.array(self.records[f"{q}_{p:g}"].tolist())
                k = int(np.sum((iv[:, 0] <= true) & (true <= iv[:, 1])))
                lo, hi = wilson_interval(k, n)
                rows.append({"quantity": q, "nominal": p, "coverage": k / n,
                             "mc_se": float(np.sqrt(k / n * (1 - k / n) / n)),
                             "mc_lower": lo, "mc_upper": hi, "trials": n,
                             "mean_width": float(np.mean(iv[:, 1] - iv[:, 0])),
                             "bias_of_mean": bias, "unconverged": unconverged,
                             "data_warned": warned})
        return pd.DataFrame(rows).set_index(["quantity", "nominal"])

    def data_warnings(self) -> pd.Series:
        """What the data of each trial that warned said (``bh.DataWarning`` texts, joined
        by "; "), by the trial's seed; empty when no trial's data warned."""
        if "data_warnings" not in self.records:
            return pd.Series(dtype=object, name="data_warnings")
        given = self.records["data_warnings"].fillna("")
        return pd.Series(given[given != ""].to_numpy(),
                         index=self.records.loc[given != "", "seed"].to_numpy(),
                         name="data_warnings", dtype=object).rename_axis("seed")

    def failed_checks(self) -> pd.Series:
        """How many trials failed each convergence check (a trial may fail several; a
        store written before the checks were recorded counts as ``not recorded``)."""
        if "failed_checks" not in self.records:
            bad = (int((~self.records["converged"].astype(bool)).sum())
                   if "converged" in self.records else 0)
            return pd.Series({"not recorded": bad} if bad else {}, name="trials", dtype=int)
        names = [n for given in self.records["failed_checks"].fillna("") if given
                 for n in given.split(", ")]
        return pd.Series(names, dtype=object).value_counts().rename("trials")

    def plot(self):
        """Nominal vs observed coverage with Monte Carlo 95% intervals."""
        import matplotlib.pyplot as plt

        tab = self.table().reset_index()
        fig, ax = plt.subplots(figsize=(5, 4))
        for i, (q, g) in enumerate(tab.groupby("quantity")):
            x = g["nominal"] + (i - 0.5) * 0.008
            ax.errorbar(x, g["coverage"], yerr=[g["coverage"] - g["mc_lower"],
                                                g["mc_upper"] - g["coverage"]],
                        fmt="o", capsize=3, label=q)
        ax.plot([0.4, 1], [0.4, 1], color="grey", lw=1, ls="--")
        ax.set(xlabel="nominal probability", ylabel="observed coverage",
               title=f"Coverage: {self.name} ({len(self.records)} trials)")
        ax.legend()
        fig.tight_layout()
        return fig


def _checked_scenario(scenario) -> tuple:
    """``simulate_trial``'s arguments, checked now by simulating one trial (returned with
    them, for ``_check_model``): a misspelt or impossible setting is a named error before
    the study starts, not a traceback from its first worker."""
    import inspect

    if not isinstance(scenario, dict):
        raise BayesHCCError(f"coverage_study: scenario must be a dict of simulate_trial "
                            f"settings such as {{'hr_os': 0.7}}, got {scenario!r}.")
    known = [k for k in inspect.signature(simulate_trial).parameters if k != "random_seed"]
    bad = [k for k in scenario if k not in known]
    if bad:
        raise BayesHCCError(f"coverage_study: scenario has unknown setting(s) "
                            f"{did_you_mean(bad, known)}; simulate_trial takes "
                            f"{', '.join(known)}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = simulate_trial(**scenario, random_seed=0)
    except (ValueError, TypeError) as err:
        raise BayesHCCError(f"coverage_study: scenario {scenario}: {err}") from None
    return dict(scenario), trial


def _check_model(model, trial, endpoint: str) -> None:
    """The model can be fitted to the simulated trials and has the quantity whose truth the
    simulator knows (a log HR): refused now, not from the study's first worker."""
    from bayes_hcc.families.registry import family_class
    from bayes_hcc.models.graph import prepare

    effect = family_class(model.family_key).effect.name
    if effect != "log_hr":
        raise BayesHCCError(f"coverage_study: {model!r} has no hazard ratio (its arm effect "
                            f"is {effect}), and the simulator's truth is a proportional-"
                            "hazards one: study a proportional-hazards family.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepare(model, trial, endpoint)
    except ModelError as err:
        raise BayesHCCError(f"coverage_study: the simulated trials (simulate_trial: patient_id, "
                            f"site, arm and the endpoints, no covariates) cannot be fitted by "
                            f"{model!r}: {err}") from None


@bool_flags
def coverage_study(model: SurvivalModel | str = "weibull_ph", n_trials: int = 200, *,
                   scenario: dict | None = None, probs=(0.5, 0.9, 0.95), draws: int = 1000,
                   tune: int = 1000, chains: int = 2, random_seed: int = 2020,
                   workers: int | None = None, progress: bool = True,
                   store=None, endpoint: str = "os") -> CoverageResult:
    """Coverage of credible intervals for log HR, the median difference and the control
    arm's median (typical site) over ``n_trials`` trials from ``simulate_trial(**scenario)``.

    Parameters
    ----------
    model : SurvivalModel or {"weibull_ph", "piecewise_exponential"}
    n_trials : int, default 200
    scenario : dict, optional
        Keyword arguments of :func:`bayes_hcc.simulate_trial` (default ``DEFAULT_SCENARIO``).
    probs : sequence of float
        Central interval probabilities (default 50%, 90%, 95%).
    random_seed : int
        Trial r uses seed ``SeedSequence(random_seed).spawn`` r (same results on any
        number of workers).
    workers : int, optional
        Processes (default: all cores).
    store : path, optional
        JSON Lines file of finished trials (resume after an interruption).
    endpoint : {"os", "ttp"}
        The endpoint analysed; TTP (scanned on the scenario's schedule: interval-censored,
        or imputed by the model's ``censoring``) has a proportional-hazards truth.
    """
    name, model = resolve_model(model, COVERAGE_MODELS)
    if endpoint not in ("os", "ttp"):
        raise BayesHCCError(f"endpoint={endpoint!r}: the simulator's proportional-hazards "
                            "truth is for 'os' and 'ttp'.")
    if n_trials < 2:
        raise BayesHCCError("n_trials must be at least 2.")
    probs = as_numbers(probs, "coverage_study", "probs", "(0.5, 0.9, 0.95)")
    if not all(0 < p < 1 for p in probs):
        raise BayesHCCError(f"probs must be in (0, 1), got {probs}.")
    check_seed(random_seed, "coverage_study", BayesHCCError)
    scenario, example = _checked_scenario(DEFAULT_SCENARIO if scenario is None else scenario)
    _check_model(model, example, endpoint)
    seeds = [int(s.generate_state(1)[0]) for s in
             np.random.SeedSequence(random_seed).spawn(n_trials)]
    fit_kw = dict(draws=draws, tune=tune, chains=chains, cores=1)
    settings = model.settings()
    from bayes_hcc.spec.model_spec import dump_spec

    tasks = [(f"trial{r:05d}", (dump_spec(model.spec), scenario, seeds[r], fit_kw, probs,
                                endpoint))
             for r in range(n_trials)]
    meta = {"kind": "coverage", "model": settings, "scenario": scenario, "fit": fit_kw,
            "probs": list(probs), "random_seed": random_seed,
            **({"endpoint": endpoint} if endpoint != "os" else {})}
    res = run_tasks(_trial_intervals, tasks, workers=workers or default_workers(),
                    progress=progress, desc=f"coverage {name}", store=store, meta=meta)
    records = pd.DataFrame([res[k] for k, _ in tasks])
    return CoverageResult(name, records, probs, scenario)


#: The two assessment schedules of the bias study: both arms scanned every 2 months from
#: randomization, and the TACE-sorafenib arm's scans 1 month later (TACE sessions first).
BIAS_SCHEDULES = {"same schedule": 0.0,
                  "TACE-sorafenib scans 1 month later": {"sorafenib": 0.0,
                                                         "tace_sorafenib": 1.0}}


def interval_bias_study(n_trials: int = 200, *, random_seed: int = 2022, draws: int = 1000,
                        tune: int = 1000, chains: int = 2, workers: int | None = None,
                        progress: bool = True) -> pd.DataFrame:
    """Bias of the exact-visit analysis of TTP and of the interval-censored one (docs:
    methods, interval censoring): ``n_trials`` trials of 130 patients (median TTP 3 months on
    sorafenib, HR 0.67, scans every 2 months; :data:`BIAS_SCHEDULES`), each analysed by the
    Weibull PH model with ``censoring="upper"`` (the visit date as the event time) and
    ``"interval"``, and, as the reference, on the exact (latent) progression times of the
    same patients (the same seeds without scans: what no trial observes).

    One row per schedule and analysis: mean bias of the posterior mean of log HR and of the
    sorafenib arm's median TTP (typical site) with Monte Carlo SEs, the median's bias in
    excess of the exact-time analysis of the same trials (paired, with its MC SE: at 130
    patients the posterior mean of a median is itself biased upward a little, with exact
    times too), and the coverage of the 90% interval of log HR with its MC SE."""
    def run(scenario, censoring):
        return coverage_study(WeibullPH(site_effect="random", censoring=censoring),
                              n_trials, scenario=scenario, probs=(0.9,), draws=draws,
                              tune=tune, chains=chains, random_seed=random_seed,
                              workers=workers, progress=progress, endpoint="ttp")

    oracle = run({**DEFAULT_SCENARIO, "assessment_interval": None}, "interval")
    results = [("exact progression times (reference)", "exact progression times", oracle)]
    for schedule, offset in BIAS_SCHEDULES.items():
        scenario = {**DEFAULT_SCENARIO, "assessment_offset": offset}
        for censoring, label in (("upper", "exact visit date"),
                                 ("interval", "interval-censored")):
            results.append((schedule, label, run(scenario, censoring)))
    base = oracle.records.set_index("seed")
    rows = []
    for schedule, label, res in results:
        rec, tab = res.records, res.table()
        row = {"schedule": schedule, "analysis": label, "trials": len(rec)}
        for q in ("log_hr", "median_control"):
            err = rec[f"{q}_mean"] - rec[f"{q}_true"]
            row[f"{q}_bias"] = float(err.mean())
            row[f"{q}_bias_mc_se"] = float(err.std(ddof=1) / np.sqrt(len(err)))
        paired = rec.set_index("seed")["median_control_mean"] - base["median_control_mean"]
        row["median_control_excess_bias"] = float(paired.mean())
        row["median_control_excess_bias_mc_se"] = float(paired.std(ddof=1)
                                                        / np.sqrt(len(paired)))
        row["log_hr_90_coverage"] = float(tab.loc[("log_hr", 0.9), "coverage"])
        row["log_hr_90_coverage_mc_se"] = float(tab.loc[("log_hr", 0.9), "mc_se"])
        rows.append(row)
    return pd.DataFrame(rows).set_index(["schedule", "analysis"])
