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

The outcome is one draw of a trial's future, so most of the Brier difference's Monte
Carlo error is the outcomes' own. The truth's PPoS (``truth_ppos``: completions from the
simulation's true hazards and site effects, each patient continued from the state they are
in) is the probability that outcome is drawn with; measured against it
(``truth_comparison``) the same expected difference comes with less noise.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bayes_hcc.errors import BayesHCCError
from bayes_hcc.mcerror import wilson_interval

#: The two PPoS of a study table: (label, column).
METHODS = (("OS-only PPoS", "ppos_os"), ("illness-death PPoS", "ppos_illness_death"))
#: The truth's PPoS (``add_truth_ppos``), scored beside them when a table has it.
TRUTH = ("truth's PPoS", "ppos_truth")
#: The truth's PPoS from the OS data only (``add_truth_ppos(..., know_progression=False)``).
BLIND = ("truth's PPoS from OS data only", "ppos_truth_os_only")


def _methods(table: pd.DataFrame) -> tuple:
    return METHODS + ((TRUTH,) if TRUTH[1] in table.columns else ())

__all__ = ["ppos_calibration_study", "add_truth_ppos", "truth_ppos", "calibration_summary",
           "truth_comparison", "progression_information", "truth_ppos_study",
           "reliability_table"]


def _study_trial(plan, seed, rho, look, truth):
    """Simulated trial ``seed`` of a study: (the whole trial, its interim cut at ``look``,
    its actual final outcome under the plan's final rule)."""
    import bayes_hcc as bh
    from bayes_hcc.datasets import EXAMPLE_RECIPE
    from bayes_hcc.monitoring.predict import normal_final_probability

    recipe = {**EXAMPLE_RECIPE, **truth, "random_seed": seed, "cut_date": "2024-12-31",
              "post_progression_hr": rho, "id_prefix": "CAL"}
    trial = bh.simulate_trial(**recipe)
    final = trial.cut(pd.Timestamp(bh.look_date(trial, plan.look("final"), "os")),
                      warn=False)
    outcome = normal_final_probability(final, plan.spec) > plan.final.success
    interim = trial.cut(pd.Timestamp(bh.look_date(trial, plan.look(look), "os")), warn=False)
    return trial, interim, bool(outcome)


def _one_trial(payload) -> dict:
    import bayes_hcc as bh

    plan_path, seed, rho, look, n_sims, id_settings, truth = payload
    plan = bh.load_plan(plan_path)
    trial, interim, outcome = _study_trial(plan, seed, rho, look, truth)
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


def _os_plan(plan):
    """The plan, loaded; refused by name unless its final rule is on OS (the studies' looks
    count OS deaths and the truth's completions carry OS only)."""
    import bayes_hcc as bh

    plan = bh.load_plan(plan)
    if plan.spec.endpoint != "os":
        raise BayesHCCError(f"the plan's analysis is on {plan.spec.endpoint.upper()}: the "
                            "truth's PPoS and these studies are for a final rule on OS; give "
                            "a plan whose analysis spec has endpoint = \"os\".")
    return plan


def _check_design(plan, n_trials, post_progression_hr, look) -> None:
    """A study's design settings, checked before any trial is simulated (and before a
    store records them): a named error with the fix."""
    if not isinstance(n_trials, (int, np.integer)) or isinstance(n_trials, bool) \
            or n_trials < 1:
        raise BayesHCCError(f"n_trials={n_trials!r}: give a positive whole number (the "
                            "summaries' Monte Carlo intervals need at least 2 trials).")
    try:
        rho = float(post_progression_hr)
    except (TypeError, ValueError):
        rho = np.nan
    if not (np.isfinite(rho) and rho > 0):
        raise BayesHCCError(f"post_progression_hr={post_progression_hr!r}: give a positive "
                            "number (the death hazard after progression over the one "
                            "before; 1 = progression does not change it).")
    plan = _os_plan(plan)
    if plan.look(look) is plan.final:
        raise BayesHCCError(f"look={look!r} is the final analysis: give an interim look "
                            f"(1..{len(plan.looks)}).")


def _checked_truth(truth: dict | None) -> dict:
    """A study's ``truth``: arguments of the example trial's recipe, except those the study
    sets itself."""
    from bayes_hcc.datasets import EXAMPLE_RECIPE

    truth = dict(truth or {})
    fixed = {"random_seed", "cut_date", "post_progression_hr", "id_prefix"} & set(truth)
    unknown = set(truth) - set(EXAMPLE_RECIPE)
    if fixed or unknown:
        raise BayesHCCError(f"truth={truth!r}: {sorted(fixed | unknown)} cannot be set here "
                            "(the study sets the seed, the cut and post_progression_hr; the "
                            f"others must be arguments of the recipe: "
                            f"{sorted(EXAMPLE_RECIPE)}).")
    return truth


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
    from bayes_hcc.runner import run_tasks

    settings = {"baseline": "weibull_ph", "time_scale": "markov", "site_effect": "shared",
                **(illness_death or {})}
    truth = _checked_truth(truth)
    _check_design(plan, n_trials, post_progression_hr, look)
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


# -- the truth's own PPoS ----------------------------------------------------------------------
class _TruthModel:
    covariates = ()
    time_scale = "markov"

    def __repr__(self) -> str:
        return "the simulation's truth"


class _TruthFit:
    """The truth of a simulated trial (``simulate_trial`` with Weibull hazards: the Markov
    illness-death model with a01 = TTP hazard, a02 = OS hazard, a12 = post_progression_hr x
    OS hazard, each times its arm's HR and the site's frailty, shared by the three) in the
    shape of an illness-death fit with one draw, so that the illness-death completions
    continue each patient from the state they are in with the true hazards. ``sites``: the
    interim data's sites, then any site still to come."""

    model = _TruthModel()
    n_draws = 1

    def __init__(self, interim, truth):
        from bayes_hcc.families.registry import family_class
        from bayes_hcc.multistate.data import IllnessDeathData
        from bayes_hcc.simulate.hazards import WeibullHazard

        p = truth.params
        hazards = (p["ttp_hazard"], p["os_hazard"])
        if not all(isinstance(h, WeibullHazard) for h in hazards):
            raise BayesHCCError(f"the truth's PPoS needs Weibull hazards, not {hazards}.")
        self.data = IllnessDeathData.from_trial(interim, "ttp", "os")
        if self.data.time_unit != "months":
            raise BayesHCCError("the truth's PPoS needs the simulated trial in months.")
        self.data_fingerprint = interim.fingerprint
        fam = family_class("weibull_ph")()
        self.families = (fam, fam, fam)
        ttp_h, os_h = hazards
        rho = float(p["post_progression_hr"])
        self._params = [{"log_lambda": np.array([np.log(rate)]),
                         "log_shape": np.array([np.log(h.shape)])}
                        for rate, h in ((ttp_h.rate, ttp_h), (os_h.rate, os_h),
                                        (rho * os_h.rate, os_h))]
        hr = truth.transition_hr
        self._log_hr = np.log([hr["progression"], hr["death_without_progression"],
                               hr["death_after_progression"]])
        self.sites = list(self.data.sites) + [s for s in truth.site_effects
                                              if s not in set(self.data.sites)]
        b = np.array([truth.site_effects[s] for s in self.sites])
        self._site = np.vstack([b, b, b])

    def draw_params(self, s: int):
        return self._params, self._log_hr, self._site

    def draw_betas(self, s: int):
        return np.zeros((3, 0))  # the simulated truth has no covariates


def _truth_simulator(trial, interim, plan, know_progression: bool = True):
    """Completes ``interim`` (a cut of the simulated ``trial``) from the truth: the true
    hazards and site effects (``_TruthFit``), the truth's loss to follow-up (its rate, and
    patients lost before the cut stay lost), and the patients still to come are the
    trial's own (entry day, site, arm): their outcomes are drawn afresh. Everything else
    as ``predictive_probability(..., completion=)``. ``know_progression=False`` forgets
    what the scans showed of the patients still followed: each is known progression-free
    at randomisation only, so their state at the cut is drawn from the truth given that
    they are alive (``_unseen_progression`` from time 0)."""
    from bayes_hcc.monitoring.illness_death import IllnessDeathFutureSimulator
    from bayes_hcc.monitoring.plan import Prediction

    class TruthSimulator(IllnessDeathFutureSimulator):
        def __init__(self):
            truth = trial.truth
            pred = Prediction.from_dict({**plan.prediction.__dict__,
                                         "dropout_per_year": truth.params["dropout_per_year"],
                                         "sample_size": truth.params["n_patients"]})
            fit = _TruthFit(interim, truth)
            super().__init__(interim, fit, pred, "os")
            # still followed: alive with follow-up to the cut. The plan's window (a contact
            # within followup_window_days) would also continue patients lost shortly before
            # the cut, whom the truth never follows again.
            self.at_risk = ~self.event & (self.entry + self.obs >= self.cut_day - 0.5)
            if not know_progression:
                self.prog_lower = np.where(self.at_risk, 0.0, self.prog_lower)
                self.prog_upper = np.where(self.at_risk, np.inf, self.prog_upper)
            frame = trial.to_frame()
            rand = pd.to_datetime(frame["randomization_date"])
            later = (rand > self.cut_date).to_numpy()
            if int(later.sum()) != self.n_new:
                raise BayesHCCError(f"{int(later.sum())} patients randomized after the cut, "
                                    f"but {self.n_new} still to come: give the whole "
                                    "simulated trial.")
            self.coming = (
                ((rand[later] - self.origin) / np.timedelta64(1, "D")).to_numpy(float),
                np.array([fit.sites.index(s) for s in frame.loc[later, "site"]], np.int64),
                (frame.loc[later, "arm"].to_numpy() == trial.treatment).astype(np.int64))

        def _accrue(self, rng):
            return self.coming

    return TruthSimulator()


def _check_is_cut(trial, interim) -> None:
    """``interim`` must hold exactly ``trial``'s patients randomized by its cut, with the
    same site, arm and randomization date: the completion takes the patients still to come
    from ``trial``, so another trial's cut (even with the same number of patients, and
    simulated trials share their patient ids) would be completed with the wrong patients."""
    keys = ["patient_id", "site", "arm", "randomization_date"]
    whole, cut = trial.to_frame()[keys], interim.to_frame()[keys]
    for f in (whole, cut):
        f["randomization_date"] = pd.to_datetime(f["randomization_date"])
    by_cut = whole[whole["randomization_date"] <= pd.Timestamp(interim.cut_date)]
    a = by_cut.astype(str).sort_values("patient_id").reset_index(drop=True)
    b = cut.astype(str).sort_values("patient_id").reset_index(drop=True)
    if not a.equals(b):
        merged = a.merge(b, how="outer", indicator=True)
        bad = merged.loc[merged["_merge"] != "both", "patient_id"].unique().tolist()
        raise BayesHCCError(f"interim is not a cut of trial: patients {bad[:5]} differ in "
                            "site, arm or randomization date or are missing from one of "
                            "them. Give the whole simulated trial and one of its own cuts "
                            "(trial.cut(date)).")


def truth_ppos(trial, interim, plan, *, n_sims: int = 1000, random_seed=None,
               know_progression: bool = True) -> float:
    """The probability that the plan's final rule (its normal approximation) succeeds,
    given the interim data ``interim`` and the truth that simulated ``trial`` (a
    ``simulate_trial`` result with Weibull hazards; ``interim`` one of its cuts): the best
    PPoS any method could give, estimated from ``n_sims`` completions. Being the trial's
    success probability given the interim data (and more), it is what the actual outcome
    is a noisy draw of: mean (PPoS - outcome)^2 = mean (PPoS - truth's PPoS)^2 + a term the
    same for every PPoS, so comparing methods against it measures the same Brier
    difference without the outcome's own noise.

    ``know_progression=False``: the same from the interim's OS data only, forgetting who
    of the patients still followed has progressed (each one's state at the cut is drawn
    from the truth given that they are alive): q0, the best PPoS a method that does not
    know who has progressed could give. q0 is q averaged over what it does not know, so
    q0's expected Brier score exceeds q's by mean (q - q0)^2: what knowing who has
    progressed is worth when the parameters are known (:func:`progression_information`)."""
    from bayes_hcc.monitoring.predict import _check_n_sims, normal_final_probability

    n_sims = _check_n_sims(n_sims)
    if getattr(trial, "truth", None) is None or not hasattr(trial.truth, "transition_hr"):
        raise BayesHCCError("trial has no simulation truth: give the whole trial "
                            "bh.simulate_trial returned (and one of its cuts as interim).")
    _check_is_cut(trial, interim)
    plan = _os_plan(plan)
    sim = _truth_simulator(trial, interim, plan, know_progression=bool(know_progression))
    rng = np.random.default_rng(random_seed)
    wins = 0
    for _ in range(n_sims):
        completed = sim.simulate(0, rng)
        day, _ = sim.final_day(completed, plan.final)
        data = sim.completed_trial(completed, day)
        wins += bool(normal_final_probability(data, plan.spec) > plan.final.success)
    return wins / n_sims


def _truth_one(payload) -> dict:
    import bayes_hcc as bh

    plan_path, seed, rho, look, n_sims, truth, know = payload
    plan = bh.load_plan(plan_path)
    trial, interim, outcome = _study_trial(plan, seed, rho, look, truth)
    return {"seed": int(seed), "outcome": outcome,
            _truth_column(know): _study_truth_ppos(trial, interim, plan, seed, n_sims, know)}


def _study_truth_ppos(trial, interim, plan, seed, n_sims, know: bool) -> float:
    """q (``know``) or q0 of a study trial. q0 has its own random numbers, independent of
    q's: ``progression_information``'s correction for Monte Carlo error assumes it."""
    return truth_ppos(trial, interim, plan, n_sims=n_sims,
                      random_seed=seed if know else [seed, 1], know_progression=know)


def _truth_column(know_progression: bool) -> str:
    return TRUTH[1] if know_progression else BLIND[1]


def add_truth_ppos(table: pd.DataFrame, plan, *, n_sims: int = 1000,
                   post_progression_hr: float | None = None, look: int | None = None,
                   truth: dict | None = None, workers: int | None = 1,
                   progress: bool = True, store=None,
                   know_progression: bool = True) -> pd.DataFrame:
    """``table`` (a ``ppos_calibration_study`` table) with a column ``ppos_truth``: each
    trial's :func:`truth_ppos` at the study's look, from ``n_sims`` completions, for the
    same simulated trials (re-simulated from their seeds; each trial's re-computed actual
    outcome must equal the table's, else a named error). The study's settings
    (``post_progression_hr``, ``look``, ``truth``) are read from ``table.attrs`` when the
    table has them (a table read back from CSV does not: give them). ``store``: a JSON
    Lines file that makes it resumable, refused when written with other settings.
    ``know_progression=False`` adds ``ppos_truth_os_only`` instead: the truth's PPoS from
    the OS data only (:func:`truth_ppos`), with random numbers independent of
    ``ppos_truth``'s."""
    from pathlib import Path

    import bayes_hcc as bh
    from bayes_hcc.runner import run_tasks

    y = _outcomes(table)
    if "seed" not in table.columns:
        raise BayesHCCError("the table has no column 'seed': give the table "
                            "ppos_calibration_study returns.")
    given = {"post_progression_hr": post_progression_hr, "look": look, "truth": truth}
    settings = {}
    for key, value in given.items():
        known = table.attrs.get(key)
        if value is None and known is None and key != "truth":
            raise BayesHCCError(f"{key} is not in the table's attrs (a table read back from "
                                "CSV): give the study's value.")
        if value is not None and known is not None and value != known:
            raise BayesHCCError(f"{key}={value!r}, but the table was made with {known!r}.")
        settings[key] = value if value is not None else known
    truth = dict(settings["truth"] or {})
    meta = {"kind": "truth_ppos", "plan_hash": bh.load_plan(plan).hash,
            "post_progression_hr": float(settings["post_progression_hr"]),
            "look": settings["look"], "truth": truth, "n_sims": int(n_sims)}
    know = bool(know_progression)
    if not know:
        meta["know_progression"] = False  # stores of the known-state PPoS stay readable
    column = _truth_column(know)
    tasks = [(f"seed{int(s)}", (str(Path(plan).resolve()), int(s),
                                 float(settings["post_progression_hr"]), settings["look"],
                                 int(n_sims), truth, know)) for s in table["seed"]]
    out = run_tasks(_truth_one, tasks, workers=workers, progress=progress,
                    desc="truth's PPoS", store=store, meta=meta)
    again = np.array([out[k]["outcome"] for k, _ in tasks], float)
    differ = np.flatnonzero(again != y)
    if len(differ):
        raise BayesHCCError(f"rows {table.index[differ][:5].tolist()}: the re-simulated "
                            "trial's outcome differs from the table's; the settings given "
                            "are not the study's.")
    res = table.copy()
    res[column] = [out[k][column] for k, _ in tasks]
    res.attrs.update({**table.attrs, ("truth_ppos" if know else "truth_ppos_os_only"): meta})
    return res


def _outcomes(table: pd.DataFrame, methods: bool = True) -> np.ndarray:
    """The actual outcomes (0/1) of a study table, after checking the columns the
    summaries read (the two methods' PPoS unless ``methods=False``, and the truth's PPoS
    columns the table has): a named error with the rows and the fix, never a silent NaN
    or a PPoS binned outside [0, 1]."""
    if not isinstance(table, pd.DataFrame):
        raise BayesHCCError("give the table ppos_calibration_study returns (a DataFrame).")
    need = ["outcome"] + ([col for _, col in METHODS] if methods else [])
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
    checked = (METHODS if methods else ()) + tuple(m for m in (TRUTH, BLIND)
                                                   if m[1] in table.columns)
    for _, col in checked:
        f = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        bad = ~((f >= 0) & (f <= 1))
        if bad.any():
            raise BayesHCCError(f"column {col!r}: not a probability in [0, 1] in rows "
                                f"{table.index[bad][:5].tolist()}; drop or recompute those "
                                "trials.")
    return y


def calibration_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Brier score of each PPoS and the paired difference (OS-only - illness-death: > 0
    favours the illness-death PPoS), each with a Monte Carlo 95% interval; with a
    ``ppos_truth`` column (``add_truth_ppos``) also the truth's PPoS's Brier score, the
    best any PPoS can expect."""
    y = _outcomes(table)
    rows = {name: (table[col].to_numpy(float) - y) ** 2 for name, col in _methods(table)}
    rows["difference (OS-only - illness-death)"] = rows["OS-only PPoS"] - \
        rows["illness-death PPoS"]
    res = pd.DataFrame([_mean_interval(name, e) for name, e in rows.items()])
    res = res.set_index("measure").rename(columns={"estimate": "Brier score"})
    res.attrs.update({"n_trials": len(y), "success_rate": float(y.mean())})
    return res


def _mean_interval(name: str, e: np.ndarray) -> dict:
    m, se = float(np.mean(e)), float(np.std(e, ddof=1) / np.sqrt(len(e)))
    return {"measure": name, "estimate": m, "MC lower 95%": m - 1.96 * se,
            "MC upper 95%": m + 1.96 * se}


def truth_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Each PPoS against the truth's PPoS q (``add_truth_ppos``): mean (PPoS - q)^2 per
    method and the paired difference (OS-only - illness-death: > 0 favours the
    illness-death PPoS), each with a Monte Carlo 95% interval. Since q is the trial's
    success probability given (at least) the interim data, mean (PPoS - outcome)^2 =
    mean (PPoS - q)^2 + mean q (1 - q) in expectation: the difference estimates the same
    Brier difference as :func:`calibration_summary`'s, without the outcomes' own noise.
    The last row checks q itself: mean (outcome - q), whose interval should hold 0.
    ``attrs["sd_ratio"]``: the SD of the per-trial Brier difference over that of this
    difference (how many times fewer trials the same precision needs)."""
    if TRUTH[1] not in getattr(table, "columns", ()):
        raise BayesHCCError("the table has no column 'ppos_truth': add it with "
                            "add_truth_ppos(table, plan, ...).")
    y = _outcomes(table)
    q = table[TRUTH[1]].to_numpy(float)
    errs = {name: (table[col].to_numpy(float) - q) ** 2 for name, col in METHODS}
    diff = errs["OS-only PPoS"] - errs["illness-death PPoS"]
    rows = [_mean_interval(f"{name}: mean (PPoS - truth's PPoS)^2", e)
            for name, e in errs.items()]
    rows.append(_mean_interval("difference (OS-only - illness-death)", diff))
    rows.append(_mean_interval("truth's PPoS: mean (outcome - PPoS)", y - q))
    res = pd.DataFrame(rows).set_index("measure")
    brier = [(table[col].to_numpy(float) - y) ** 2 for _, col in METHODS]
    res.attrs.update({"n_trials": len(y), "success_rate": float(y.mean()),
                      "sd_ratio": float(np.std(brier[0] - brier[1], ddof=1)
                                        / np.std(diff, ddof=1))})
    return res


def _truth_pair(payload) -> dict:
    import bayes_hcc as bh

    plan_path, seed, rho, look, n_sims, truth = payload
    plan = bh.load_plan(plan_path)
    trial, interim, outcome = _study_trial(plan, seed, rho, look, truth)
    return {"seed": int(seed), "outcome": outcome,
            "interim_events": int(interim.endpoint("os").n_events),
            "followed": int(_truth_simulator(trial, interim, plan).at_risk.sum()),
            **{_truth_column(know): _study_truth_ppos(trial, interim, plan, seed, n_sims, know)
               for know in (True, False)}}


def truth_ppos_study(plan, *, n_trials: int = 100, post_progression_hr: float = 3.0,
                     look: int = 2, n_sims: int = 1000, random_seed: int = 2024,
                     truth: dict | None = None, workers: int | None = 1,
                     progress: bool = True, store=None) -> pd.DataFrame:
    """Where could knowing who has progressed improve a PPoS? Without fitting any model:
    one row per simulated trial of :func:`ppos_calibration_study`'s design (trial i is the
    same trial as there, for the same settings), with its actual final outcome, the
    truth's PPoS q and the truth's PPoS from the OS data only q0 (:func:`truth_ppos`), each
    from ``n_sims`` completions with independent random numbers, the interim's OS events
    and the patients still followed at the cut. :func:`progression_information` of it is
    what knowing who has progressed is worth in that design with the parameters known, so a
    design can be screened in minutes before an MCMC study is run on it. ``store``: a
    JSON Lines file that makes it resumable, refused when written with other settings."""
    from pathlib import Path

    import bayes_hcc as bh
    from bayes_hcc.monitoring.predict import _check_n_sims
    from bayes_hcc.runner import run_tasks

    n_sims = _check_n_sims(n_sims)
    truth = _checked_truth(truth)
    _check_design(plan, n_trials, post_progression_hr, look)
    seeds = np.random.default_rng(random_seed).integers(2**31, size=n_trials)
    meta = {"kind": "truth_ppos_study", "plan_hash": bh.load_plan(plan).hash,
            "post_progression_hr": float(post_progression_hr), "look": look,
            "n_sims": n_sims, "truth": truth, "random_seed": random_seed}
    tasks = [(f"trial{i}", (str(Path(plan).resolve()), int(s), float(post_progression_hr),
                            look, n_sims, truth)) for i, s in enumerate(seeds)]
    out = run_tasks(_truth_pair, tasks, workers=workers, progress=progress,
                    desc="truth's PPoS", store=store, meta=meta)
    table = pd.DataFrame([out[k] for k, _ in tasks])
    per_column = {"n_sims": n_sims}
    table.attrs.update({**meta, "truth_ppos": per_column, "truth_ppos_os_only": per_column})
    return table


def _n_sims_of(table: pd.DataFrame, key: str, n_sims) -> int:
    known = (table.attrs.get(key) or {}).get("n_sims")
    if n_sims is None and known is None:
        raise BayesHCCError("the table does not say how many completions each truth's PPoS "
                            "came from (a table read back from CSV): give n_sims.")
    if n_sims is not None and known is not None and int(n_sims) != int(known):
        raise BayesHCCError(f"n_sims={n_sims}, but the table's truth's PPoS came from "
                            f"{known} completions.")
    n = int(n_sims if n_sims is not None else known)
    if n < 2:
        raise BayesHCCError(f"n_sims={n}: the correction for Monte Carlo error needs at "
                            "least 2 completions per trial.")
    return n


def progression_information(table: pd.DataFrame, n_sims: int | None = None) -> pd.DataFrame:
    """How much knowing who has progressed can improve a PPoS at all, next to what the
    illness-death PPoS gained. With q the truth's PPoS (``ppos_truth``) and q0 the truth's
    PPoS from the OS data only (``ppos_truth_os_only``; both from :func:`add_truth_ppos`),
    q0 is q averaged over what the OS data do not say, so the expected Brier score of q0
    exceeds q's by mean (q - q0)^2: what knowing who has progressed is worth when the
    parameters are known. (A PPoS from estimated parameters can also gain or lose by how
    well it estimates them: the illness-death model reads the progressions for that too,
    and spreads the arm effect over three transitions.) It is estimated without the bias of
    the completions' own Monte Carlo error (each q from ``n_sims`` completions, independent
    random numbers: minus q(1 - q) / (n_sims - 1) for each), with a Monte Carlo 95%
    interval over trials. The
    illness-death PPoS's measured gain (``truth_comparison``'s difference) is the second
    row; ``attrs["share"]``: the first row over the OS-only PPoS's mean (PPoS - q)^2, the
    share of its error that knowing who has progressed could remove;
    ``attrs["brier_q0"]``: q0's Brier score against the actual outcomes. A table of
    :func:`truth_ppos_study` (no PPoS of either method) gives the first row only.
    ``n_sims`` is read from the table's attrs when it has them (a table read back from
    CSV does not)."""
    need = [TRUTH[1], BLIND[1]]
    missing = [c for c in need if c not in getattr(table, "columns", ())]
    if missing:
        raise BayesHCCError(f"the table has no column(s) {missing}: add them with "
                            "add_truth_ppos(table, plan, ...) and add_truth_ppos(table, plan, "
                            "..., know_progression=False).")
    n1 = _n_sims_of(table, "truth_ppos", n_sims)
    n0 = _n_sims_of(table, "truth_ppos_os_only", n_sims)
    methods = all(col in table.columns for _, col in METHODS)
    y = _outcomes(table, methods=methods)
    q = table[TRUTH[1]].to_numpy(float)
    q0 = table[BLIND[1]].to_numpy(float)
    value = (q - q0) ** 2 - q * (1 - q) / (n1 - 1) - q0 * (1 - q0) / (n0 - 1)
    rows = [_mean_interval("knowing who has progressed, true parameters: mean (q - q0)^2",
                           value)]
    res_attrs = {"n_trials": len(y), "n_sims": (n1, n0),
                 "brier_q0": float(np.mean((q0 - y) ** 2))}
    if methods:
        cmp = truth_comparison(table)
        gained = cmp.loc["difference (OS-only - illness-death)"]
        rows.append({"measure": "illness-death PPoS's gain: difference (OS-only - "
                                "illness-death) of mean (PPoS - q)^2", **gained.to_dict()})
        os_err = cmp.loc["OS-only PPoS: mean (PPoS - truth's PPoS)^2", "estimate"]
        res_attrs["share"] = float(rows[0]["estimate"] / os_err)
    res = pd.DataFrame(rows).set_index("measure")
    res.attrs.update(res_attrs)
    return res


def reliability_table(table: pd.DataFrame,
                      bins=(0.0, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0)) -> pd.DataFrame:
    """Where each PPoS is calibrated: per method (the truth's PPoS too, when the table has
    it) and bin of PPoS values (right-closed, the first bin includes 0), the trials in it,
    their mean PPoS and the share that actually succeeded (Wilson 95% interval). A
    calibrated PPoS has mean PPoS inside the interval.

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
    for name, col in _methods(table):
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
