"""Design operating characteristics: whole trials simulated under scenarios, the monitoring
plan applied with the real analysis model at every look.

Each simulated trial comes from :func:`bayes_hcc.simulate_trial` (accrual over two years,
unequal site sizes, site frailty, loss to follow-up, assessments every 2 months) with a seed
derived from (``random_seed``, scenario, trial), so results do not depend on the engine
(in-process, local process pool or Dask), the number of workers or the order in which
trials finish. Every trial is one task of :func:`bayes_hcc.runner.run_tasks`, which shows a
progress bar and appends finished trials to a resumable store.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_hcc.units import DAYS_PER_UNIT
from bayes_hcc.errors import (BayesHCCError, DataWarning, TrialDataError, bool_flags,
                              recorded_data_warnings, refuse_ignored, warn)
from bayes_hcc.mcerror import mean_interval, wilson_interval
from bayes_hcc.monitoring.interim import decide, look_date
from bayes_hcc.monitoring.plan import load_plan, too_few_events
from bayes_hcc.monitoring.screening import FAST_MODE_PILOT, FAST_MODE_TARGET
from bayes_hcc.spec.sampler import check_seed

__all__ = ["simulate_design", "DesignResult", "DEFAULT_SCENARIOS", "DESIGN_BASE",
           "parse_scenario"]

#: The trial as planned, for every scenario: 130 patients at 6 sites of unequal size,
#: accrual June 2017 - May 2019, control median OS 6.5 months (Weibull shape 1.2), site
#: frailty SD 0.2, 5% loss to follow-up per year, assessments every 2 months. Follow-up
#: runs long enough (to 2029) for the final event count to be reached.
DESIGN_BASE = {"n_patients": 130, "sites": 6, "site_sd": 0.2, "dropout_per_year": 0.05,
               "accrual_start": "2017-06-01", "accrual_end": "2019-05-31",
               "cut_date": "2029-12-31", "assessment_interval": 2.0}

#: The null and three alternatives (true OS hazard ratio TACE-sorafenib / sorafenib).
DEFAULT_SCENARIOS = {"HR 1.00": {"hr_os": 1.0}, "HR 0.85": {"hr_os": 0.85},
                     "HR 0.70": {"hr_os": 0.70}, "HR 0.60": {"hr_os": 0.60}}

#: Scenario settings a user may change (the arguments of simulate_trial that describe a
#: trial, not its identity or seed).
SCENARIO_KEYS = ("n_patients", "sites", "site_sizes", "site_sd", "dropout_per_year",
                 "accrual_start", "accrual_end", "cut_date", "assessment_interval", "hr_os",
                 "hr_ttp", "os_median", "os_shape", "ttp_median", "ttp_shape",
                 "assessment_offset", "assessment_jitter_days", "missed_visit_prob")

EFFICACY = ("stop for efficacy", "success")

#: Numeric scenario settings: (lowest, highest, what it is). Checked before anything is
#: simulated, so a typo is a named error, not a message from numpy or a root finder.
_NUMERIC = {"hr_os": (1e-3, 1e3, "a hazard ratio > 0"), "hr_ttp": (1e-3, 1e3, "a hazard ratio > 0"),
            "site_sd": (0.0, 5.0, "an SD on the log-hazard scale, >= 0"),
            "dropout_per_year": (0.0, 0.99, "a yearly probability in [0, 1)"),
            "os_median": (1e-3, 1e3, "a median in months > 0"),
            "os_shape": (0.05, 20.0, "a Weibull shape > 0"),
            "ttp_median": (1e-3, 1e3, "a median in months > 0"),
            "ttp_shape": (0.05, 20.0, "a Weibull shape > 0"),
            "assessment_jitter_days": (0.0, 60.0, "an SD in days, >= 0"),
            "missed_visit_prob": (0.0, 0.99, "a probability in [0, 1)"),
            "assessment_interval": (0.05, 120.0, "months between assessments > 0")}
_INTEGER = {"n_patients": (2, 1_000_000), "sites": (1, 10_000)}


def _check_scenario_values(scenario: dict, name: str) -> None:
    for key, value in scenario.items():
        if key in _NUMERIC:
            lo, hi, what = _NUMERIC[key]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
                np.isfinite(value) and lo <= value <= hi
            if not ok:
                raise BayesHCCError(f"scenario {name!r}: {key}={value!r} must be {what} "
                                    f"(between {lo:g} and {hi:g}).")
        elif key in _INTEGER:
            lo, hi = _INTEGER[key]
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise BayesHCCError(f"scenario {name!r}: {key}={value!r} must be a whole "
                                    f"number between {lo} and {hi:,}.")


def parse_scenario(text: str) -> tuple[str, dict]:
    """``"hr_os=0.7,site_sd=0.3"`` (optionally ``"name: ..."``) -> (name, settings)."""
    name, _, body = text.rpartition(":")
    out = {}
    parts = [p.strip() for p in body.split(",")]
    if parts and not parts[-1]:  # a trailing comma
        parts.pop()
    for part in parts:
        key, eq, value = part.partition("=")
        key = key.strip()
        if not part:
            raise BayesHCCError(f"scenario {text!r} has an empty item between commas; "
                                "give key=value pairs, e.g. 'hr_os=0.7,site_sd=0.3'.")
        if key in out:
            raise BayesHCCError(f"scenario {text!r} sets {key} twice; give it once.")
        if not eq or key not in SCENARIO_KEYS:
            raise BayesHCCError(f"scenario {text!r}: {part!r} is not key=value with a key "
                                f"among {', '.join(SCENARIO_KEYS)} (nor the name of a "
                                f"default scenario: {', '.join(DEFAULT_SCENARIOS)}).")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value.strip()
    if not out:
        raise BayesHCCError(f"scenario {text!r} sets nothing; e.g. 'hr_os=0.7'.")
    return (name.strip() or body.strip()), out


def _scenario_kwargs(base: dict, scenario: dict, name: str = "scenario") -> dict:
    """simulate_trial's arguments for a scenario, checked here (one trial is simulated) so
    that a bad value is a named error now, not a traceback from a worker later."""
    from bayes_hcc.simulate.hazards import WeibullHazard
    from bayes_hcc.simulate.trial import simulate_trial

    if not isinstance(scenario, dict):
        raise BayesHCCError(f"scenario {name!r} must be a dict of settings such as "
                            f"{{'hr_os': 0.7}}, got {scenario!r}.")
    bad = sorted(set(scenario) - set(SCENARIO_KEYS))
    if bad:
        raise BayesHCCError(f"scenario {name!r}: keys {', '.join(bad)} are not known; use "
                            f"{', '.join(SCENARIO_KEYS)}.")
    _check_scenario_values(scenario, name)
    kw = {**base, **scenario}
    try:
        median, shape = kw.pop("os_median", 6.5), kw.pop("os_shape", 1.2)
        kw["os_hazard"] = WeibullHazard(median=float(median), shape=float(shape))
        if "ttp_median" in kw or "ttp_shape" in kw:
            kw["ttp_hazard"] = WeibullHazard(median=float(kw.pop("ttp_median", 3.0)),
                                             shape=float(kw.pop("ttp_shape", 1.2)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            simulate_trial(**kw, random_seed=0)
    except (ValueError, TypeError) as err:
        raise BayesHCCError(f"scenario {name!r} ({scenario}): {err}") from None
    return kw


def _trial_seed(random_seed: int, scenario: str, i: int) -> int:
    """Seed of trial ``i`` of a scenario: from the study seed, the scenario's name and i, so
    the order in which scenarios are listed changes no trial (it used to: seeds followed the
    scenario's position)."""
    name_id = int.from_bytes(hashlib.sha256(str(scenario).encode()).digest()[:8], "little")
    return int(np.random.SeedSequence([int(random_seed), name_id, i]).generate_state(1)[0])


def _design_trial(payload) -> dict:
    """Simulate one trial and run the plan on it (runs in a worker)."""
    from bayes_hcc.simulate.trial import simulate_trial

    plan, kwargs, seed, refit, settle, *screen = payload
    t0 = time.perf_counter()
    # Small simulated sites are part of the scenario: what the data warn of at its looks (a
    # site without deaths under fixed site effects, say) is recorded with the trial, not
    # printed by every worker; convergence is recorded per look.
    with recorded_data_warnings() as notes:
        out = _run_plan(plan, simulate_trial(**kwargs, random_seed=seed), seed, refit,
                        *screen, settle=settle)
    out["data_warnings"] = "; ".join(notes)
    if screen:  # the whole trial's worker seconds, for the cost split (settings only)
        out["seconds_trial"] = time.perf_counter() - t0
    return out


def _run_plan(plan, trial, seed: int, refit: dict, screen: str = "exact",
              cal=None, settle: int | None = None) -> dict:
    """Run the plan's looks on one simulated trial. ``screen``: "exact" (MCMC at every
    look), "pilot" (MCMC at every look, and the Laplace approximation's probit of each rule
    recorded beside MCMC's: ``out["pilot"]``) or "fast" (the approximation decides a look
    whose every comparison is farther than its threshold's margin from it, on the probit
    scale after removing the pilot's bias: ``cal``, a ``MarginCalibration``; MCMC the
    others: ``monitoring.screening``). ``settle``: draws per chain of the refit of an MCMC
    look whose probabilities are within 2 MCSE of a threshold (``out["settled"]`` counts
    them)."""
    from scipy import stats

    from bayes_hcc.models.from_spec import SIMULATED_REFIT, fit_spec
    from bayes_hcc.monitoring.predict import predictive_probability, unsettled
    from bayes_hcc.monitoring.screening import approximate, look_rules

    endpoint = plan.spec.endpoint
    # PFS is proportional-hazards in the simulator only when OS and TTP share a hazard
    # shape; without a true HR, coverage is not defined (NaN), the rules still run
    true_hr = trial.truth.hr.get(endpoint)
    true_log_hr = float(np.log(true_hr)) if true_hr is not None else float("nan")
    origin = trial.to_frame()["randomization_date"].min()
    out = {"seed": seed, "true_log_hr": true_log_hr, "p_by_look": {}, "diag_failed": 0,
           "final_events_reached": True, "looks_skipped": [], "mcse_by_look": {},
           "mcse_by_rule": {},
           "near_threshold": 0, **({} if settle is None else {"settled": 0})}
    if screen != "exact":
        # wall seconds in the approximation and in MCMC (with PPoS), for the cost split
        out.update(n_looks=0, n_mcmc=0, n_approx_failed=0, pilot=[], seconds_approx=0.0,
                   seconds_mcmc=0.0)
    looks = (*plan.looks, plan.final)
    for i, look in enumerate(looks):
        try:
            date = look_date(trial, look, endpoint)
        except TrialDataError:  # too few events ever: the look cannot happen
            if not look.is_final:
                out["looks_skipped"].append(look.name)
                continue
            date, out["final_events_reached"] = trial.cut_date, False
        try:
            cut = trial.cut(date, warn=False)  # small simulated sites are the scenario
            n_events = int(cut.endpoint(endpoint).n_events)
        except TrialDataError:  # a date look so early that one arm has no patient yet
            if look.is_final:
                raise
            cut, n_events = None, 0
        # too few events for the analysis (none; fewer than quantile-cut intervals)
        problem = too_few_events(plan.spec, n_events)
        if problem and not look.is_final:
            out["looks_skipped"].append(look.name)  # nothing to analyse at this look
            continue
        if problem:
            raise BayesHCCError(f"simulate_design: a simulated trial (seed {seed}) has "
                                f"{n_events} {endpoint.upper()} events at its final "
                                f"analysis ({date.date()}), but {problem}. Follow the "
                                "trials longer (the scenario's cut_date) or enrol more "
                                "patients (n_patients).")
        cut.data_warnings([endpoint])  # as a look on real data (recorded: _design_trial)
        t0 = time.perf_counter()
        approx = approximate(plan.spec, cut) if screen != "exact" else None
        if screen != "exact":
            out["n_approx_failed"] += approx is None
            out["seconds_approx"] += time.perf_counter() - t0
        rules = look_rules(look)
        if screen == "fast" and approx is not None and cal.decides(approx, look):
            fit = None  # the approximation decides: no MCMC can change this decision
            # its probabilities with the pilot's probit bias removed (module screening)
            rule = cal.decision(approx, look)
            out["p_by_look"][look.name] = cal.probability(approx, 1.0)
        else:
            t0 = time.perf_counter()

            def mcmc(extra):
                fit = fit_spec(plan.spec, cut, check=False, random_seed=seed + i,
                               **{"log_likelihood": False, **SIMULATED_REFIT, **refit,
                                  **extra})  # no LOO
                ppos = (predictive_probability(cut, plan, fit=fit, random_seed=seed + i)
                        if look.futility_ppos is not None else None)
                # simulated trials' convergence is counted, not warned of per trial
                return (fit, *decide(fit, look, ppos, warn=False))

            def near(probs):  # a posterior comparison within 2 MCSE of its threshold
                return any(unsettled(probs[f"P(HR < {h:g})"], probs[f"MCSE P(HR < {h:g})"],
                                     c) for h, c in look_rules(look, ppos_looks=True))

            def near_ppos(probs):  # more draws cannot settle it: more completions would
                return "PPoS" in probs and unsettled(probs["PPoS"], probs["MCSE PPoS"],
                                                     look.futility_ppos)

            fit, rule, probs = mcmc({})
            if settle is not None and near(probs):  # more draws, same seed, decide again
                fit, rule, probs = mcmc({"draws": settle})
                out["settled"] += 1
            out["p_by_look"][look.name] = probs["P(HR < 1)"]
            # the Monte Carlo error of every probability a rule of the look compares
            # (P(HR < 1), P(HR < h) of a futility rule, PPoS of a PPoS futility rule): a
            # comparison within 2 MCSE of its threshold is a decision the draws cannot
            # settle (counted, never hidden); mcse_by_look keeps P(HR < 1)'s alone
            mcses = {k.removeprefix("MCSE "): v for k, v in probs.items()
                     if k.startswith("MCSE ")}
            out["mcse_by_rule"][look.name] = mcses
            out["mcse_by_look"][look.name] = mcses["P(HR < 1)"]
            out["near_threshold"] += near(probs) or near_ppos(probs)
            out["diag_failed"] += bool(fit.convergence_problems())  # counted, not hidden
            if screen != "exact":
                out["seconds_mcmc"] += time.perf_counter() - t0
            if screen == "pilot" and approx is not None and rules:
                draws = fit.posterior["log_hr"]
                for h, c in rules:
                    p = float((draws < np.log(h)).mean())
                    out["pilot"].append([approx.probit(h),
                                         float(stats.norm.ppf(p)), int(draws.size),
                                         float(stats.norm.ppf(c)),
                                         probs[f"MCSE P(HR < {h:g})"]])
        if screen != "exact":
            out["n_looks"] += 1
            out["n_mcmc"] += fit is not None
        if rule == "continue":
            continue
        if fit is None:
            med, lo, hi = (cal.quantile(approx, q) for q in (0.5, 0.025, 0.975))
        else:
            d = fit.posterior["log_hr"].to_numpy().ravel()
            med, (lo, hi) = float(np.median(d)), np.quantile(d, [0.025, 0.975])
        ep = cut.endpoint(endpoint)
        out.update({
            "decision": rule, "look": look.name, "look_index": i,
            "n_patients": cut.n_patients, "n_events": int(ep.n_events),
            "duration_months": float((date - origin).days / DAYS_PER_UNIT["months"]),
            "log_hr_median": float(med), "log_hr_95": [float(lo), float(hi)],
            "covered": bool(lo <= true_log_hr <= hi), "decided_by": "laplace" if fit is None
            else "mcmc",
        })
        mixtures = fit.mixture_weights() if fit is not None else None  # e.g. robust MAP
        if mixtures:
            # the last component's weight (per element: their mean)
            out["robust_weight"] = float(np.mean(np.asarray(next(iter(mixtures.values())))
                                                 [..., -1]))
        return out
    raise AssertionError("the final look always decides")  # pragma: no cover


@dataclass
class DesignResult:
    """Simulated trials (``records``: one row per trial) and their operating
    characteristics (``table()``: estimates with Monte Carlo 95% intervals)."""

    plan_name: str
    plan_hash: str
    scenarios: dict
    records: pd.DataFrame = field(repr=False)
    settings: dict = field(default_factory=dict, repr=False)

    def table(self) -> pd.DataFrame:
        """One row per (scenario, measure): estimate and Monte Carlo 95% interval.

        Proportions (declaring efficacy: the type I error under HR = 1 and the power
        otherwise; stopping at each look; coverage; trials with a look failing the
        convergence checks; trials with an MCMC look whose probability was within 2 MCSE
        of a threshold: a decision the draws could not settle, ``records["mcse_by_look"]``
        holds each MCMC look's MCSE of P(HR < 1), ``records["mcse_by_rule"]`` that of
        every probability its rules compare; when some trials had them, an interim look
        not held, its event count never reached or too few events by its date for the
        analysis (none; fewer than its quantile-cut intervals), a final analysis held
        short of its event count at the end of follow-up, and trials whose data warned at
        a look, ``records["data_warnings"]`` saying of what) have Wilson
        intervals; means (patients, events, duration, bias of the posterior median log HR)
        have t intervals.
        """
        rows = []
        # a row in every scenario when the data of any trial warned (a store written before
        # the warnings were recorded has none)
        any_warned = "data_warnings" in self.records and \
            bool((self.records["data_warnings"].fillna("") != "").any())
        for name, g in self.records.groupby("scenario", sort=False):
            n = len(g)
            props = {"P(efficacy): type I error (HR 1) / power":
                     g["decision"].isin(EFFICACY).sum()}
            for look in self.settings["looks"][:-1]:
                at = g["look"] == look
                for what in ("efficacy", "futility"):
                    props[f"stop for {what} at {look}"] = \
                        (at & (g["decision"] == f"stop for {what}")).sum()
            props["success at final"] = (g["decision"] == "success").sum()
            # the events the plan counts: of its analysis's endpoint (OS, PFS or TTP)
            label = f"{self.settings.get('endpoint', 'os').upper()} events"
            means = {"patients": g["n_patients"], label: g["n_events"],
                     "duration (months)": g["duration_months"],
                     "bias of posterior median log HR": g["log_hr_median"] - g["true_log_hr"]}
            if "robust_weight" in g and g["robust_weight"].notna().any():
                # a mixture prior (robust MAP): its last component's posterior weight
                means["posterior weight of the robust component"] = g["robust_weight"]
            props2 = {"95% interval covers true HR": g["covered"].sum(),
                      "trials with a look failing convergence checks": (g["diag_failed"] > 0
                                                                        ).sum()}
            for look in self.settings["looks"][:-1]:
                skipped = g["looks_skipped"].map(lambda x, k=look: k in list(x)) \
                    if "looks_skipped" in g else pd.Series(False, index=g.index)
                if skipped.any():  # count never reached; too few events by its date
                    props2[f"{look} not held"] = skipped.sum()
            if "final_events_reached" in g and not g["final_events_reached"].astype(bool).all():
                # analysed at the end of follow-up with fewer events than planned
                props2["final event count not reached"] = \
                    (~g["final_events_reached"].astype(bool)).sum()
            if "near_threshold" in g and g["near_threshold"].notna().all():
                props2["trials with a look within 2 MCSE of a threshold"] = \
                    (g["near_threshold"] > 0).sum()
            if "settled" in g and g["settled"].notna().all():
                props2["trials with a look refitted with settle_draws"] = \
                    (g["settled"] > 0).sum()
            if any_warned:  # records["data_warnings"] says of what
                props2["trials whose data warned at a look"] = \
                    (g["data_warnings"].fillna("") != "").sum()
            for measure, k in props.items():
                rows.append((name, measure, k / n, *wilson_interval(int(k), n), n))
            for measure, x in means.items():
                rows.append((name, measure, *mean_interval(x), n))
            for measure, k in props2.items():
                rows.append((name, measure, k / n, *wilson_interval(int(k), n), n))
        rows = pd.DataFrame(rows, columns=["scenario", "measure", "estimate", "mc_lower",
                                           "mc_upper", "n_trials"])
        return rows.set_index(["scenario", "measure"])

    def summary(self) -> pd.DataFrame:
        """The table as 'estimate (lower-upper)' strings: measures x scenarios."""
        t = self.table()
        fmt = t.apply(lambda r: f"{r.estimate:.3g} ({r.mc_lower:.3g}-{r.mc_upper:.3g})",
                      axis=1)
        return fmt.unstack("scenario")[list(self.scenarios)].loc[
            list(dict.fromkeys(t.index.get_level_values("measure")))]

    def __repr__(self) -> str:
        return (f"DesignResult({self.plan_name!r}: {len(self.scenarios)} scenario(s) x "
                f"{self.settings.get('n_trials')} trials; plan hash {self.plan_hash})")


def _check_pilot_size(plan, pilot: int, n_scenarios: int) -> None:
    """Fast mode's pilot, refused before it runs when it cannot give the comparisons the
    margin needs: each pilot trial gives at most one per rule of each look it reaches
    (``look_rules``), a look with a PPoS futility rule none."""
    from bayes_hcc.monitoring.screening import MIN_GROUP, look_rules

    per_trial = sum(len(look_rules(x) or ()) for x in (*plan.looks, plan.final))
    most = pilot * n_scenarios * per_trial
    if most < MIN_GROUP:
        need = -(-MIN_GROUP // max(n_scenarios * per_trial, 1))
        raise BayesHCCError(
            f"pilot={pilot}: {pilot} pilot trial(s) per scenario x {n_scenarios} "
            f"scenario(s) give at most {most} comparisons of the approximation with MCMC "
            f"({per_trial} rule(s) over the plan's looks), and the margin needs at least "
            f"{MIN_GROUP}: give pilot={need} or more.")


@bool_flags
def simulate_design(plan, scenarios=None, n_trials: int = 200, *, random_seed: int = 2024,
                    refit: dict | None = None, workers: int | None = None, client=None,
                    store=None, progress: bool = True, base: dict | None = None,
                    mode: str = "exact", pilot: int | None = None,
                    target: float | None = None,
                    settle_draws: int | None = None) -> DesignResult:
    """Operating characteristics of a monitoring plan by simulating whole trials.

    Parameters
    ----------
    plan : MonitoringPlan, or a plan file, TOML text or dict (:func:`load_plan`)
    scenarios : dict of name -> settings, list of "hr_os=0.7,..." strings, or None
        A text may also name a default scenario (``["HR 1.00", "HR 0.70"]``; one text is
        one scenario).
        Settings override :data:`DESIGN_BASE` (keys: :data:`SCENARIO_KEYS`, e.g. ``hr_os``,
        ``site_sd``, ``dropout_per_year``, ``n_patients``). Default
        :data:`DEFAULT_SCENARIOS` (HR 1.00, 0.85, 0.70, 0.60).
    n_trials : int
        Simulated trials per scenario.
    random_seed : int
        Seeds of all trials derive from it: the same seed gives the same results on any
        engine and any number of workers.
    refit : dict, optional
        Sampler overrides for every look's fit (default: the plan's analysis spec).
    workers : int or None
        Local process pool size (None = every core; 1 = in this process).
    client : dask.distributed.Client, optional
        Run the trials on this Dask cluster instead (Dask: ``pip install
        'bayes-hcc[cluster]'``).
    store : path, optional
        JSON Lines file of finished trials: an interrupted run resumes from it; a store
        written with other settings is refused, never overwritten.
    base : dict, optional
        Replaces :data:`DESIGN_BASE`.
    mode : {"exact", "fast"}
        "exact": the analysis model is fitted by MCMC at every look. "fast": the first
        ``pilot`` trials (default 50) of each scenario run exactly and record the Laplace
        approximation (``bh.laplace``) beside MCMC at every look; their errors calibrate a
        margin per threshold (``monitoring.screening.calibrate_margin``: the expected share
        of flipped decisions per look, over looks like the pilot's, below ``target``,
        default 0.001; both are fast mode's own and refused with mode="exact"); in the
        other trials the approximation decides every look whose probabilities are farther
        than their thresholds' margins, and MCMC the rest (and every look with a PPoS rule).
        ``settings["screening"]`` reports the calibration, the margins and the share of
        looks sent to MCMC.
    settle_draws : int, optional
        Draws sized to the decision: an MCMC look whose probability is within 2 MCSE of a
        threshold (a decision its draws cannot settle) is refitted with this many draws per
        chain (same seed) and that fit decides; ``records["settled"]`` counts them per
        trial and the table reports the share of trials with one. Both modes apply it
        alike (fast mode's MCMC looks, the pilot's included), so they still agree at the
        looks MCMC decides. Default None: one refit per look.
    """
    from bayes_hcc.runner import run_tasks, shared_pool

    plan = load_plan(plan)
    strata = dict(plan.spec.strata).get("column") if plan.spec.strata else None
    columns = [*map(str, plan.spec.covariates), *([strata] if strata not in (None, "site")
                                                  else [])]
    if columns:
        raise BayesHCCError(f"simulate_design: the plan's analysis {plan.spec.name!r} uses "
                            f"the column(s) {', '.join(columns)} (covariates or strata), and "
                            "simulated trials have no patient columns but site: judge the "
                            "design with the same analysis without them (strata by site "
                            "work). Predictions at a look (bh.predictive_probability) do "
                            "use them.")
    if scenarios is None:
        scenarios = DEFAULT_SCENARIOS
    elif not isinstance(scenarios, dict):
        if isinstance(scenarios, str):  # one scenario, not one per character
            scenarios = [scenarios]
        if not all(isinstance(x, str) for x in scenarios):
            raise BayesHCCError("scenarios: give a dict {name: settings} or a list of "
                                "strings such as 'hr_os=0.7,site_sd=0.3'.")
        # a default scenario by its name ("HR 0.70"), or "name: key=value,..."
        scenarios = dict((x, DEFAULT_SCENARIOS[x]) if x in DEFAULT_SCENARIOS
                         else parse_scenario(x) for x in scenarios)
    if not isinstance(n_trials, int) or n_trials < 1:
        raise BayesHCCError(f"n_trials={n_trials!r} must be a positive whole number.")
    check_seed(random_seed, "simulate_design", BayesHCCError)
    base = dict(DESIGN_BASE if base is None else base)
    kwargs = {name: _scenario_kwargs(base, sc, name) for name, sc in scenarios.items()}
    import inspect

    from bayes_hcc.simulate.trial import simulate_trial

    default_n = inspect.signature(simulate_trial).parameters["n_patients"].default
    for name, kw in kwargs.items():
        n = kw.get("n_patients", default_n)  # a base without one: simulate_trial's
        for look in (*plan.looks, plan.final):
            if look.events is not None and look.events > n:
                raise BayesHCCError(
                    f"scenario {name!r}: {n} patients cannot give the "
                    f"{look.events} events of the plan's look {look.name!r}; give the "
                    "scenario more patients (n_patients) or the plan fewer events.")
    from bayes_hcc.spec.sampler import check_refit

    refit = check_refit(refit, "simulate_design")
    from bayes_hcc.monitoring.predict import check_settle_draws

    settle_draws = check_settle_draws(settle_draws)
    if mode not in ("exact", "fast"):
        raise BayesHCCError(f"mode={mode!r}; choose 'exact' (MCMC at every look) or 'fast' "
                            "(screened by the Laplace approximation).")
    if client is not None and workers is not None:  # (it was ignored)
        refuse_ignored("simulate_design", [f"workers={workers!r}"], "the local process "
                       "pool, and client= runs the trials on the Dask cluster's workers")
    if mode == "exact":  # they calibrate fast mode's screening: ignored here, so refused
        given = [f"{k}={v!r}" for k, v in (("pilot", pilot), ("target", target))
                 if v is not None]
        refuse_ignored("simulate_design", given, "the screening of mode='fast'; "
                       "mode='exact' fits MCMC at every look and has none", "pass mode='fast'")
    else:
        pilot = FAST_MODE_PILOT if pilot is None else pilot
        target = FAST_MODE_TARGET if target is None else target
        from bayes_hcc.monitoring.screening import check_target

        check_target(target)  # before any pilot trial runs
    if mode == "fast" and not (isinstance(pilot, int) and 1 <= pilot <= n_trials):
        raise BayesHCCError(f"pilot={pilot!r}: the trials per scenario run exactly to "
                            f"calibrate the margin, between 1 and n_trials ({n_trials}). "
                            "Give a smaller pilot (pilot=...), or for a few trials "
                            "mode='exact': fast mode saves time only when n_trials is well "
                            "above its pilot.")
    if mode == "fast":
        _check_pilot_size(plan, pilot, len(scenarios))
    n_pilot = pilot if mode == "fast" else n_trials
    tasks, rest = [], []
    for name in scenarios:
        for i in range(n_trials):
            seed = _trial_seed(random_seed, name, i)
            payload = (plan, kwargs[name], seed, refit, settle_draws)
            if i < n_pilot:
                tasks.append((f"{name}/{i}", payload + (("pilot",) if mode == "fast"
                                                        else ())))
            else:
                rest.append((f"{name}/{i}", payload))
    meta = {"plan_hash": plan.hash, "scenarios": scenarios, "base": base, "refit": refit,
            "random_seed": random_seed, "seeds": "per scenario name (v2)",
            # the order is part of the settings too: a resume must list them as written
            "scenario_order": list(scenarios),
            **({} if settle_draws is None else {"settle_draws": settle_draws})}
    if mode == "fast":
        # the screening rule's version: a store of another rule is refused
        meta.update(mode="fast", pilot=pilot, target=target,
                    screening="expected share, margin per threshold; site SD integrated; "
                              "MCMC error at the threshold")
    # one pool: the pilot's workers, imported and compiled, go on to the rest
    with shared_pool(workers, client) as pool:
        out = run_tasks(_design_trial, tasks, workers=workers, client=client, progress=progress,
                        desc=f"design {plan.name}" + (" (pilot)" if mode == "fast" else ""),
                        store=store, meta=meta, unit="trial", pool=pool)
        screening = None
        if mode == "fast":
            from bayes_hcc.monitoring.screening import McmcShare, calibrate_margin

            pairs = np.array([p for rec in out.values() for p in rec["pilot"]],
                             float).reshape(-1, 5)
            try:
                cal = calibrate_margin(pairs[:, 0], pairs[:, 1], target=target,
                                       n_draws=pairs[:, 2], z_threshold=pairs[:, 3],
                                       mcse=pairs[:, 4],
                                       n_looks=sum(rec["n_looks"] for rec in out.values()))
            except BayesHCCError as err:
                raise BayesHCCError(
                    f"{err} The pilot ({pilot} trial(s) per scenario, in the store when one "
                    "was given) stopped early or had probabilities too extreme to compare; "
                    "give a larger pilot (pilot=...).") from None
            rest = [(k, payload + ("fast", cal)) for k, payload in rest]
            out.update(run_tasks(_design_trial, rest, workers=workers, client=client,
                                 progress=progress, desc=f"design {plan.name} (fast)",
                                 store=store, meta=meta, unit="trial", postfix=McmcShare(),
                                 pool=pool))
            fast = [out[k] for k, _ in rest]
            n_looks = sum(r["n_looks"] for r in fast)
            screening = {**cal.summary(), "pilot_trials_per_scenario": pilot,
                         "looks_screened": n_looks,
                         "approximation_failed": sum(r["n_approx_failed"] for r in fast),
                         "seconds_approx": sum(r["seconds_approx"] for r in fast),
                         "seconds_mcmc": sum(r["seconds_mcmc"] for r in fast),
                         # simulating the trial, its data cuts and the rest of the plan
                         "seconds_other": sum(r["seconds_trial"] - r["seconds_mcmc"]
                                              - r["seconds_approx"] for r in fast),
                         "share_sent_to_mcmc": (sum(r["n_mcmc"] for r in fast) / n_looks
                                                if n_looks else float("nan"))}
    rows = []
    for key, rec in out.items():
        name, i = key.rsplit("/", 1)
        rows.append({"scenario": name, "trial": int(i),
                     # wall times vary run to run: in settings["screening"], not records
                     **{k: v for k, v in rec.items() if k != "pilot" and
                        not k.startswith("seconds_")}})
    records = pd.DataFrame(rows)
    short = records.loc[~records["final_events_reached"].astype(bool), "scenario"] \
        if "final_events_reached" in records else records["scenario"].iloc[:0]
    if len(short):
        counts = short.value_counts()
        where = ", ".join(f"{k!r} {v} of {n_trials}" for k, v in counts.items())
        warn(f"design {plan.name}: in {where} simulated trials the final "
             f"{plan.final.events} events were never reached (too few patients, or too "
             "many lost to follow-up), so their final analysis used the events at the end "
             "of follow-up; the table's row 'final event count not reached' gives the "
             "share. Check n_patients and dropout_per_year against the plan's event "
             "counts.", DataWarning)
    looks = [x.name for x in plan.looks] + ["final"]
    return DesignResult(plan_name=plan.name, plan_hash=plan.hash, scenarios=scenarios,
                        records=records,
                        settings={"n_trials": n_trials, "random_seed": random_seed,
                                  "endpoint": plan.spec.endpoint,
                                  "refit": refit, "base": base, "looks": looks, "mode": mode,
                                  "settle_draws": settle_draws,
                                  **({"screening": screening} if screening else {})})
