"""The trial's future, simulated from the current posterior: event-timing prediction and the
predictive probability of success (PPoS).

For each simulation one posterior draw is taken, and the trial is completed conditionally on
what is already known:

* a patient who died keeps the observed death;
* a patient alive and still followed (last follow-up within ``followup_window_days`` of the
  data cut) gets a residual survival time from the model given survival so far,
  T = H0^{-1}(H0(t_obs) + E exp(-eta)), E ~ Exp(1), so observed follow-up is never
  shortened; future loss to follow-up is exponential (``dropout_per_year``);
* a patient whose last contact is older than that window was lost to follow-up and stays
  censored at the last contact;
* the remaining patients up to ``sample_size`` are accrued from the cut at a rate drawn from
  its posterior given the accrual so far (Poisson process, rate ~ Gamma(n, elapsed)), at
  sites drawn from a Dirichlet(1 + patients per site) posterior, randomized 1:1, and followed
  from randomization with the same model.

The endpoint is the fit's: OS, or PFS / TTP. When progression is seen at scans (the data
carry scan bounds), a simulated progression is seen at the first scan at or after it: scans
continue every ``assessment_interval`` months after the patient's last scan (from
randomization for a new patient) while the patient is followed, and the event is
interval-censored between the scan before and that scan. Documented approximations: every
PFS event, death included, is seen at a scan; death, which censors TTP, is not modelled
beyond ``dropout_per_year``; a patient is still followed when alive (OS) and last seen within
``followup_window_days`` of the cut. The illness-death completion (``completion=``,
``monitoring.illness_death``) models progression and death together: deaths exact, and
TTP censored by them.

The final analysis is then cut where the plan puts it (an event count or a date) and the
final rule is applied: by refitting the plan's analysis model (MCMC; the compiled model is
reused for every refit), as a validated option by a normal approximation of the final
posterior (site-stratified Cox estimate combined with the normal prior on log HR), or
screened (``method="fast"``): the first ``pilot`` completions are refitted by MCMC and by
the Laplace approximation of the same model (``bh.laplace``), their errors calibrate a
margin (``monitoring.screening.calibrate_margin``), and in the other completions the
approximation decides when its P(HR < 1) is farther than the margin from the success
threshold on the probit scale, MCMC otherwise.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from bayes_hcc.data._checks import calendar_date
from bayes_hcc.data.trial import TrialData, require_trial
from bayes_hcc.errors import (BayesHCCError, DataWarning, as_numbers, bool_flags,
                              only_data_warnings, refuse_ignored, warn)
from bayes_hcc.mcerror import wilson_interval
from bayes_hcc.monitoring.future import FutureSimulator, conditional_event_times  # noqa: F401
from bayes_hcc.monitoring.plan import (PPOS_METHODS, PREDICTION_DEFAULTS,  # noqa: F401
                                       Prediction, load_plan, normal_rule_prior)
from bayes_hcc.monitoring.screening import FAST_MODE_PILOT, FAST_MODE_TARGET
from bayes_hcc.quantities.core import as_fit
from bayes_hcc.spec.sampler import check_refit, check_seed

__all__ = ["Prediction", "FutureSimulator", "conditional_event_times", "predict_event_dates",
           "predict_event_counts", "predictive_probability", "PPoSResult",
           "PREDICTION_DEFAULTS", "PPOS_METHODS"]

def _as_looks(events) -> list[int]:
    items = [events] if np.isscalar(events) else list(events)
    if not items or not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool)
                            and e >= 1 for e in items):
        raise BayesHCCError(f"events={events!r}: give one or more positive whole event "
                            "counts, e.g. [70, 100].")
    return [int(e) for e in items]


def _future_event_days(sim: FutureSimulator, n_sims: int, random_seed):
    """The sorted event days of ``n_sims`` simulated futures (one posterior draw each),
    the same futures for the same seed: what the event-date and event-count predictions
    both read."""
    rng = np.random.default_rng(random_seed)
    for s in sim.draws(n_sims, rng):
        yield sim.event_days(sim.simulate(int(s), rng))


def _check_n_sims(n_sims) -> int:
    if not isinstance(n_sims, (int, np.integer)) or isinstance(n_sims, bool) or n_sims < 1:
        raise BayesHCCError(f"n_sims={n_sims!r} must be a positive whole number.")
    return int(n_sims)


def predict_event_dates(trial: TrialData, fit, events, *, prediction=None, n_sims: int = 2000,
                        random_seed: int | None = 0, probs=(0.025, 0.1, 0.5, 0.9, 0.975)
                        ) -> pd.DataFrame:
    """Posterior predictive calendar date at which event counts of the fit's endpoint (OS,
    PFS or TTP) will be reached.

    Parameters
    ----------
    trial : TrialData
        Data as of today (dates).
    fit : Fit
        The OS model fitted to ``trial`` (for instance ``InterimResult.fit``).
    events : int or sequence of int
        Target event counts (the next look's, the final analysis's).
    prediction : Prediction or dict, optional
        Future accrual and follow-up assumptions (:data:`PREDICTION_DEFAULTS`). Give the
        planned ``sample_size`` while accrual continues: without one no patient joins
        after the cut (a ``DataWarning`` says so when the data suggest accrual goes on).
    n_sims : int
        Simulated futures (no refits: this is cheap).

    Returns
    -------
    DataFrame
        One row per target: events known now, the quantiles of the predicted date, and the
        probability that the count is never reached (too few patients left at risk).
    """
    pred = prediction if isinstance(prediction, Prediction) else Prediction.from_dict(prediction)
    targets, n_sims = _as_looks(events), _check_n_sims(n_sims)
    probs = _check_probs(probs, "predict_event_dates")
    check_seed(random_seed, "predict_event_dates")
    sim = FutureSimulator(trial, fit, pred)
    days = np.full((n_sims, len(targets)), np.nan)
    for i, ev in enumerate(_future_event_days(sim, n_sims, random_seed)):
        for j, k in enumerate(targets):
            if len(ev) >= k:
                days[i, j] = ev[k - 1]
    known = sim.event.sum()
    rows = []
    for j, k in enumerate(targets):
        d = days[:, j]
        ok = np.isfinite(d)
        row = {"events": k, "known now": int(known),
               "P(not reached)": float(1 - ok.mean())}
        for q in probs:
            row[f"q{q:g}"] = (sim.to_date(np.quantile(d[ok], q)).normalize() if ok.any()
                              else pd.NaT)
        if k <= known:
            reached = trial.events_by_date(sim.endpoint).iloc[k - 1].normalize()
            row.update({f"q{q:g}": reached for q in probs})
        rows.append(row)
    out = pd.DataFrame(rows).set_index("events")
    out.attrs.update({"cut_date": str(sim.cut_date.date()), "n_sims": n_sims,
                      "prediction": pred.__dict__})
    return out


def _check_probs(probs, caller: str) -> tuple:
    """The quantile levels of a prediction table: numbers in [0, 1] (``probs=(50,)`` failed
    inside numpy)."""
    out = as_numbers(probs, caller, "probs", "(0.1, 0.5, 0.9)")
    if not out or not all(0 <= q <= 1 for q in out):
        raise BayesHCCError(f"{caller}: probs={probs!r} must be quantile levels between 0 "
                            "and 1, e.g. probs=(0.1, 0.5, 0.9).")
    return out


def _as_dates(dates) -> list[pd.Timestamp]:
    items = [dates] if isinstance(dates, (str, pd.Timestamp)) or np.isscalar(dates) \
        else list(dates)
    if not items:
        raise BayesHCCError(f"dates={dates!r}: give one or more calendar dates, e.g. "
                            "['2019-06-30', '2019-12-31'].")
    # each a full ISO date ("2019-06" was read as June 1st, "June 2019" too)
    return [calendar_date(d, "predict_event_counts: dates").normalize() for d in items]


def predict_event_counts(trial: TrialData, fit, dates, *, prediction=None,
                         n_sims: int = 2000, random_seed: int | None = 0,
                         probs=(0.025, 0.1, 0.5, 0.9, 0.975)) -> pd.DataFrame:
    """Posterior predictive number of events of the fit's endpoint (OS, PFS or TTP) the
    trial will have observed by calendar dates: the counterpart of
    :func:`predict_event_dates` for looks at a date. An event counts on the day it is
    known (a progression on the day of the scan that shows it), by the date as a final
    analysis at that date counts it; patients lost to follow-up stop counting.

    Parameters as :func:`predict_event_dates`, with ``dates`` (one or more calendar dates)
    in place of event counts. The futures are the same as its own for the same
    ``n_sims`` and ``random_seed``.

    Returns
    -------
    DataFrame
        One row per date: events known now, the mean and quantiles of the predicted count.
        A date on or before the data cut gives the count observed by then (the patients
        randomized by then are all known). ``attrs["draws"]``: the counts, one row per
        simulated future and one column per date.
    """
    pred = prediction if isinstance(prediction, Prediction) else Prediction.from_dict(prediction)
    targets, n_sims = _as_dates(dates), _check_n_sims(n_sims)
    probs = _check_probs(probs, "predict_event_counts")
    check_seed(random_seed, "predict_event_counts")
    sim = FutureSimulator(trial, fit, pred)
    days = np.array([(d - sim.origin) / np.timedelta64(1, "D") for d in targets])
    counts = np.zeros((n_sims, len(targets)), np.int64)
    for i, ev in enumerate(_future_event_days(sim, n_sims, random_seed)):
        counts[i] = np.searchsorted(ev, days, side="right")  # events on or before each day
    rows = []
    for j, d in enumerate(targets):
        row = {"date": d, "known now": int(sim.event.sum()), "mean": float(counts[:, j].mean())}
        row.update({f"q{q:g}": float(np.quantile(counts[:, j], q)) for q in probs})
        rows.append(row)
    out = pd.DataFrame(rows).set_index("date")
    out.attrs.update({"cut_date": str(sim.cut_date.date()), "n_sims": n_sims,
                      "prediction": pred.__dict__, "draws": counts})
    return out


@dataclass
class PPoSResult:
    """Predictive probability that the final analysis declares success.

    ``ppos`` is the share of completed trials whose final rule succeeded; ``mcse`` its
    Monte Carlo standard error sqrt(p (1 - p) / n) (the simulations are independent).
    ``sims`` has one row per completed trial.
    """

    ppos: float
    mcse: float
    n_sims: int
    method: str
    sims: pd.DataFrame = field(repr=False)
    cut_date: pd.Timestamp | None = None
    settings: dict = field(default_factory=dict, repr=False)
    #: ``method="fast"``: the margin calibration used (a later look's PPoS may reuse it:
    #: ``predictive_probability(..., calibration=)``)
    calibration: object = field(default=None, repr=False)
    #: the failed convergence checks of the posterior the completions were drawn from (the
    #: plan's fit, or the illness-death completion's): empty when it passed them
    source_problems: tuple = ()

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Wilson interval for the PPoS (Monte Carlo uncertainty only)."""
        return wilson_interval(int(self.sims["success"].sum()), self.n_sims, level)

    @property
    def n_unsettled(self) -> int:
        """Completions whose MCMC refit put P(HR < 1) within 2 MCSE of the success
        threshold: their success is not settled by the refit's draws (a decision another
        seed could reverse). Counted, never hidden; more refit draws (``refit=``) shrink
        it, or ``settle_draws`` does it for exactly these."""
        if "MCSE P(HR < 1) final" not in self.sims:
            return 0
        p, m = self.sims["P(HR < 1) final"], self.sims["MCSE P(HR < 1) final"]
        return int(((p - self.success_threshold).abs() < UNSETTLED_MCSE * m).sum())

    @property
    def n_short(self) -> int:
        """Completions that never reached the final event count (too few patients, many
        lost to follow-up): each was analysed at its last event."""
        if "events_reached" not in self.sims:
            return 0
        return int((~self.sims["events_reached"].astype(bool)).sum())

    @property
    def success_threshold(self) -> float:
        return float(self.settings.get("success", np.nan))

    def __repr__(self) -> str:
        lo, hi = self.interval()
        fails = int((~self.sims["converged"]).sum()) if "converged" in self.sims else 0
        extra = f"; {fails} refit(s) failed convergence checks" if fails else ""
        if self.n_unsettled:
            extra += (f"; {self.n_unsettled} refit(s) within {UNSETTLED_MCSE:g} MCSE of the "
                      "success threshold")
        if self.n_short:
            extra += (f"; {self.n_short} completion(s) never reached the final event count "
                      "(analysed at their last event)")
        if self.source_problems:
            extra += ("; the posterior the completions were drawn from failed convergence "
                      f"checks ({'; '.join(self.source_problems)})")
        return (f"PPoSResult(PPoS = {self.ppos:.3f} (MCSE {self.mcse:.3f}, 95% MC interval "
                f"{lo:.3f}-{hi:.3f}), {self.n_sims} completed trials, method {self.method!r}"
                f"{extra})")


def normal_final_probability(trial: TrialData, spec) -> float:
    """P(HR < 1) from a normal approximation of the final posterior of log HR: the
    site-stratified Cox estimate (Efron ties, ``monitoring.partial_likelihood``) combined
    with the spec's normal prior. When the Cox estimate does not exist (an arm without
    events: the partial likelihood is monotone) the approximation is taken at the mode of
    the partial likelihood times the prior instead, which always exists."""
    from bayes_hcc.monitoring.partial_likelihood import efron_log_hr, normal_prior_posterior

    mu, sigma = normal_rule_prior(spec)
    # interval-censored progression: the Cox estimate at the interval midpoints
    ep = trial.endpoint(spec.endpoint).with_censoring("midpoint")
    strata = ep.site if len(ep.sites) > 1 else None
    b, se = efron_log_hr(ep.time, ep.event, ep.arm, strata)
    if np.isfinite(b):
        prec = 1 / se**2 + 1 / sigma**2
        mean, sd = (b / se**2 + mu / sigma**2) / prec, 1 / np.sqrt(prec)
    else:
        mean, sd = normal_prior_posterior(ep.time, ep.event, ep.arm, strata, mu, sigma)
    return float(stats.norm.cdf(-mean / sd))


def check_completion_covariates(spec, completion, name: str) -> None:
    """An illness-death completion carries its own covariates into the completed trials:
    those the plan's analysis adjusts for must be among them (checked before anything is
    fitted; the refit failed inside a worker)."""
    model = getattr(completion, "model", completion)
    carried = set(map(str, getattr(model, "covariates", ()) or ()))
    missing = [str(c) for c in spec.covariates if str(c) not in carried]
    if missing:
        raise BayesHCCError(
            f"{name}: the plan's analysis {spec.name!r} adjusts for {', '.join(missing)}, "
            f"which the illness-death completion model does not have: its completed trials "
            f"would lack {'that column' if len(missing) == 1 else 'those columns'}. Give the "
            f"model the same covariates (bh.IllnessDeath(..., covariates={missing!r})), or "
            f"leave {name} out (the plan's own model completes the trial with each patient's "
            f"covariates).")


def _illness_death_simulator(trial, completion, pred, endpoint, random_seed, carry=()):
    from bayes_hcc.monitoring.illness_death import IllnessDeathFutureSimulator
    from bayes_hcc.multistate import IllnessDeath, IllnessDeathFit

    if isinstance(completion, IllnessDeath):
        with only_data_warnings():  # its convergence: predictive_probability's warning
            completion = completion.fit(trial, random_seed=random_seed, check=False)
    if not isinstance(completion, IllnessDeathFit):
        raise BayesHCCError(f"completion={completion!r}: give a bh.IllnessDeath model or its "
                            "fit to these data.")
    return IllnessDeathFutureSimulator(trial, completion, pred, endpoint, carry=carry)


#: A refit's probability within this many of its MCSEs of a threshold is not settled by its
#: draws (``settle_draws`` refits it with more; ``PPoSResult.n_unsettled`` counts those left).
UNSETTLED_MCSE = 2.0


def unsettled(p: float, mcse: float, threshold: float) -> bool:
    """Whether an MCMC probability ``p`` (Monte Carlo error ``mcse``) lies within
    ``UNSETTLED_MCSE`` of its MCSEs of ``threshold``: a decision another seed could
    reverse."""
    return bool(abs(p - threshold) < UNSETTLED_MCSE * mcse)


def check_settle_draws(settle_draws) -> int | None:
    """``settle_draws``: None, or the draws per chain (a whole number >= 1) of the refit of
    an unsettled decision."""
    if settle_draws is None:
        return None
    if isinstance(settle_draws, bool) or not isinstance(settle_draws, (int, np.integer)) \
            or settle_draws < 1:
        raise BayesHCCError(f"settle_draws={settle_draws!r}: give the draws per chain of the "
                            "refit of a decision within 2 MCSE of its threshold (e.g. 4000), "
                            "or None.")
    return int(settle_draws)


def _final_analysis(payload) -> dict:
    """Run the final rule on one completed trial (runs in a worker when pooled). Methods
    "pilot" (MCMC, and the Laplace probit recorded beside it) and "screen" (the
    approximation decides when its probit is farther than the calibrated margin from the
    threshold's, MCMC otherwise) are the two phases of ``method="fast"``."""
    from bayes_hcc.models.from_spec import SIMULATED_REFIT, fit_spec
    from bayes_hcc.quantities.core import prob_superiority

    spec, trial, seed, method, refit, settle, *screen = payload
    if method == "normal":
        return {"p_final": normal_final_probability(trial, spec), "converged": True}
    z = None
    if method in ("pilot", "screen"):
        from bayes_hcc.monitoring.screening import approximate

        approx = approximate(spec, trial)
        z = approx.probit(1.0) if approx is not None else None
    if method == "screen":
        z_threshold, cal = screen
        if z is not None and cal.screens(z, z_threshold):
            return {"p_final": float(stats.norm.cdf(z - cal.bias)), "converged": True,
                    "decided_by": "laplace", "z_laplace": z, "approx_failed": False}

    def refit_with(extra):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence is recorded per refit below
            # Only P(HR < 1) and the convergence flags are used: no pointwise log-likelihood.
            fit = fit_spec(spec, trial, check=False, random_seed=seed,
                           **{"log_likelihood": False, **SIMULATED_REFIT, **refit, **extra})
        return fit, prob_superiority(fit, 1.0)

    fit, p_sup = refit_with({})
    settled = settle is not None and unsettled(p_sup.probability, p_sup.mcse, settle[1])
    if settled:  # the draws cannot settle this success: refit with more, same seed
        fit, p_sup = refit_with({"draws": settle[0]})
    out = {"p_final": p_sup.probability, "converged": not fit.convergence_problems(),
           "mcse": p_sup.mcse, "settled": settled}
    if method in ("pilot", "screen"):
        out.update(decided_by="mcmc", z_laplace=z, approx_failed=z is None,
                   n_draws=int(fit.posterior["log_hr"].size))
    return out


def _plan_fit(fit, plan):
    """``fit`` when it is a fit of ``plan``'s analysis (its endpoint and spec hash, which
    ``fit_spec`` records), else a named error: completions are drawn from the analysis
    model's posterior and refitted with it."""
    fit = as_fit(fit)
    spec = plan.spec
    if fit.endpoint != spec.endpoint:
        raise BayesHCCError(f"predictive_probability: fit= is a fit of {fit.endpoint.upper()}; "
                            f"the plan's analysis {spec.name!r} is of "
                            f"{spec.endpoint.upper()}. Leave fit out (the plan's analysis is "
                            "fitted here) or pass bh.fit_spec(plan.spec, trial).")
    given = fit.datatree.attrs.get("analysis_spec_hash")
    if given != spec.hash:
        why = "its spec hash differs" if given else "a model fitted in code"
        raise BayesHCCError(f"predictive_probability: fit= is not a fit of the plan's analysis "
                            f"{spec.name!r} ({why}): completions are drawn from the "
                            "analysis model's posterior and refitted with it. Leave fit out "
                            "(the plan's analysis is fitted here) or pass "
                            "bh.fit_spec(plan.spec, trial).")
    return fit


@bool_flags
def predictive_probability(trial: TrialData, plan, *, fit=None, n_sims: int | None = None,
                           method: str | None = None, prediction=None, random_seed: int = 0,
                           refit: dict | None = None, workers: int | None = 1,
                           progress: bool = False, completion=None,
                           pilot: int | None = None, target: float | None = None,
                           calibration=None,
                           settle_draws: int | None = None) -> PPoSResult:
    """Predictive probability of success at the final analysis of ``plan``.

    Parameters
    ----------
    trial : TrialData
        The data as known at the look (for example ``InterimResult.data``).
    plan : MonitoringPlan, or a plan file, TOML text or dict (:func:`load_plan`)
    fit : Fit, optional
        The plan's analysis fitted to ``trial`` (``bh.fit_spec(plan.spec, trial)``, or a
        look's fit; another endpoint or model is refused); fitted here when omitted.
    n_sims, method, prediction
        Override the plan's ``[prediction]`` settings: number of completed trials,
        ``"mcmc"`` (refit the plan's model on each: the reference), ``"normal"``
        (normal approximation of the final posterior; validated against MCMC in the tests)
        or ``"fast"`` (screened: MCMC only where the Laplace approximation is near the
        success threshold; see ``pilot``).
    pilot, target : int, float
        ``method="fast"`` (with another method they, and ``calibration``, are refused:
        they would be ignored): the first ``pilot`` completions (default 50) are refitted
        by MCMC and by the
        Laplace approximation (more, ``pilot`` at a time, until 20 of them can calibrate:
        a completion whose MCMC P(HR < 1) rests on fewer than 10 draws on one side cannot;
        when none are left every completion was refitted by MCMC and the result is the
        exact method's); their errors set the margin so that the expected share of final
        decisions that differ from MCMC's is below ``target`` (default 0.001;
        ``monitoring.screening.calibrate_margin``). ``settings["screening"]`` reports the
        calibration, the pilot size and the share of completions sent to MCMC.
    calibration : PPoSResult, optional
        ``method="fast"``: reuse the margin calibration of an earlier screened PPoS of the
        same plan, refit settings, completion model and ``target`` (for instance the
        previous look's) instead of running a pilot: every completion is then screened.
        Its completions were final analyses of the same trial's data, as these are; the
        report names the calibration's cut date. A calibration made under other settings
        is refused.
    settle_draws : int, optional
        Draws sized to the decision: a completion whose MCMC refit puts P(HR < 1) within 2
        MCSE of the success threshold (its draws cannot settle the decision) is refitted
        with this many draws per chain (same seed), and that refit decides; the others
        keep their refit (``sims["settled"]`` marks which). In every method that refits by
        MCMC, the screened one's pilot included. Default None: no second refit.
    random_seed : int
        Same data, plan, fit and seed give the same PPoS.
    refit : dict, optional
        Sampler overrides for the refits (default: the spec's sampler settings).
    workers : int or None
        Refits on a local process pool (None = every core).
    completion : IllnessDeath or IllnessDeathFit, optional
        Complete the trial with an illness-death model (fitted to ``trial`` here when a
        model is given) instead of the plan's model: each patient continues from the state
        they are in at the cut, progression status and time used
        (``bayes_hcc.monitoring.illness_death``). The final rule is still the plan's, on
        OS or on PFS (for PFS the completed trial records progressions at scans).
    """
    from bayes_hcc.models.from_spec import fit_spec
    from bayes_hcc.runner import run_tasks

    plan = load_plan(plan)
    require_trial(trial, "predictive_probability")
    pred = plan.prediction if prediction is None else (
        prediction if isinstance(prediction, Prediction) else
        Prediction.from_dict({**plan.prediction.__dict__, **prediction}))
    n_sims = _check_n_sims(pred.n_sims if n_sims is None else n_sims)
    method = pred.method if method is None else method
    if method not in PPOS_METHODS:
        raise BayesHCCError(f"method={method!r}; choose one of {', '.join(PPOS_METHODS)}.")
    if method == "normal":  # no completion is refitted: these would be ignored
        refuse_ignored("predictive_probability",
                       [k for k, v in (("refit", refit), ("settle_draws", settle_draws))
                        if v is not None],
                       "the MCMC refits of the completed trials, and method='normal' "
                       "analyses each with the normal approximation",
                       "pass method='mcmc' or 'fast'")
    settle_draws = check_settle_draws(settle_draws)
    refit = check_refit(refit, "predictive_probability")
    if method != "fast":  # the screening's settings would be ignored: refused
        given = [k for k, v in (("pilot", pilot), ("target", target),
                                ("calibration", calibration)) if v is not None]
        refuse_ignored("predictive_probability", given, "the screening of method='fast', "
                       f"and method={method!r} has none", "pass method='fast'")
    else:
        pilot = FAST_MODE_PILOT if pilot is None else pilot
        target = FAST_MODE_TARGET if target is None else target
        from bayes_hcc.monitoring.screening import check_target

        check_target(target)  # before any pilot completion runs
    if method == "normal":
        normal_rule_prior(plan.spec)  # before any completion is simulated
    if method == "fast" and not (isinstance(pilot, int) and not isinstance(pilot, bool)
                                 and pilot >= 1):
        raise BayesHCCError(f"pilot={pilot!r}: the completions refitted both ways to "
                            "calibrate the margin, a whole number >= 1 (more than n_sims: "
                            "every completion is refitted by MCMC).")
    final = plan.final
    endpoint = plan.spec.endpoint
    ep = trial.endpoint(endpoint)
    if final.events is not None and ep.n_events >= final.events:
        raise BayesHCCError(f"the data already hold {ep.n_events} {endpoint.upper()} events, "
                            f"the final "
                            f"analysis's {final.events}: run interim_analysis(..., "
                            "look='final') instead of predicting it.")
    # the posterior the completions are drawn from is fitted here unless a fit is given
    fitted_here = fit is None if completion is None else not hasattr(completion, "datatree")
    if completion is not None:
        check_completion_covariates(plan.spec, completion, "completion")
        # a baseline stratified by a column: the completed trials carry it for the refit
        column = dict(plan.spec.strata).get("column") if plan.spec.strata else None
        sim = _illness_death_simulator(trial, completion, pred, endpoint, random_seed,
                                       carry=() if column in (None, "site") else (column,))
    else:
        if fit is not None:
            fit = _plan_fit(fit, plan)
        if fit is None:
            with only_data_warnings():  # its convergence: the warning below
                fit = fit_spec(plan.spec, trial, check=False)
        sim = FutureSimulator(trial, fit, pred)
    source_problems = tuple(sim.fit.convergence_problems())
    if source_problems and fitted_here:  # a fit the caller gave was checked when it was made
        from bayes_hcc.convergence import warn_convergence

        source = (f"the plan's analysis {plan.spec.name!r}" if completion is None
                  else repr(sim.fit.model))
        warn_convergence(f"PPoS: the posterior the completions are drawn from ({source}, "
                         f"fitted to the cut) failed convergence checks: "
                         f"{'; '.join(source_problems)}. The PPoS rests on it: fit it with "
                         "more draws/tune and pass it (fit= or completion=).")
    if final.date is not None and pd.Timestamp(final.date) <= sim.cut_date:
        raise BayesHCCError(f"the final analysis date {final.date} is not after the data cut "
                            f"{sim.cut_date.date()}.")
    completion_label = "plan model" if completion is None else repr(sim.fit.model)
    if calibration is not None:  # before any completion is simulated
        _check_reused_calibration(calibration, method, plan.hash, refit,
                                  completion_label, target, settle_draws)
    rng = np.random.default_rng(check_seed(random_seed, "predictive_probability"))
    seeds = rng.integers(2**31, size=n_sims)
    rows, tasks = [], []
    t_sim = time.perf_counter()
    for i, s in enumerate(sim.draws(n_sims, rng)):
        completed = sim.simulate(int(s), rng)
        day, reached = sim.final_day(completed, final)
        data = sim.completed_trial(completed, day)
        e = data.endpoint(endpoint)
        rows.append({"sim": i, "draw": int(s), "final_date": sim.to_date(day).normalize(),
                     "events_reached": reached, "n_patients": len(e),
                     "n_events": e.n_events, "seed": int(seeds[i])})
        # the completed trial itself (read once, by the simulator): a worker refits it
        tasks.append((f"sim{i}", (plan.spec, data, int(seeds[i]), method, refit,
                                  None if settle_draws is None else
                                  (settle_draws, final.success))))
    t_sim = time.perf_counter() - t_sim
    screening = cal = None
    if method == "fast":
        from bayes_hcc.runner import shared_pool

        with shared_pool(workers) as pool:  # the pilot's workers go on to the rest
            out, screening, cal = _screened_final_analyses(
                tasks, pilot, final.success, target, workers, progress, pool, calibration)
        # where the time went (wall seconds; they vary run to run: settings only)
        screening["seconds"] = {"simulating completions": t_sim, **screening["seconds"]}
    else:
        out = run_tasks(_final_analysis, tasks, workers=workers, progress=progress,
                        desc="PPoS refits" if method == "mcmc" else
                        "PPoS final analyses (normal approximation)", unit="refit")
    sims = pd.DataFrame(rows)
    sims["P(HR < 1) final"] = [out[k]["p_final"] for k, _ in tasks]
    sims["converged"] = [out[k]["converged"] for k, _ in tasks]
    # the Monte Carlo error of each refit's probability (NaN where no MCMC decided)
    sims["MCSE P(HR < 1) final"] = [out[k].get("mcse", np.nan) for k, _ in tasks]
    if settle_draws is not None:
        sims["settled"] = [bool(out[k].get("settled", False)) for k, _ in tasks]
    if screening is not None:
        sims["decided_by"] = [out[k]["decided_by"] for k, _ in tasks]
    sims["success"] = sims["P(HR < 1) final"] > final.success
    p = float(sims["success"].mean())
    result = PPoSResult(ppos=p, mcse=float(np.sqrt(p * (1 - p) / n_sims)), n_sims=n_sims,
                        method=method, sims=sims, cut_date=sim.cut_date,
                        settings={"prediction": pred.__dict__, "random_seed": random_seed,
                                  "success": final.success, "settle_draws": settle_draws,
                                  "refit": refit, "plan_hash": plan.hash,
                                  "completion": completion_label,
                                  **({"screening": screening} if screening else {})},
                        calibration=cal, source_problems=source_problems)
    if result.n_short:
        warn(f"PPoS: {result.n_short} of {n_sims} completed trials never reach the final "
             f"{final.events} {endpoint.upper()} events (too few patients, or too many lost "
             "to follow-up): each is analysed at its last event, with fewer. Check the "
             "plan's final event count against prediction.sample_size and "
             "dropout_per_year.", DataWarning)
    return result


def _check_reused_calibration(previous, method, plan_hash, refit, completion, target,
                              settle_draws=None):
    """``calibration=``: a screened PPoS's result whose margins were set under the same
    plan, refit settings, completion model and target (else a named error)."""
    if not isinstance(previous, PPoSResult) or previous.calibration is None:
        raise BayesHCCError("calibration=: give the result of an earlier "
                            "predictive_probability(..., method='fast') whose screening "
                            f"calibrated a margin (got {type(previous).__name__}).")
    was = previous.settings
    differs = [name for name, mine, theirs in (
        ("plan", plan_hash, was.get("plan_hash")), ("refit", refit, was.get("refit")),
        ("completion", completion, was.get("completion")),
        ("target", target, previous.calibration.target),
        ("settle_draws", settle_draws, was.get("settle_draws"))) if mine != theirs]
    if differs:
        raise BayesHCCError(f"calibration=: that PPoS was screened with another "
                            f"{', '.join(differs)}; its margins do not apply here. Run this "
                            "one with its own pilot (leave calibration out).")


def _screened_final_analyses(tasks, pilot: int, success: float, target: float, workers,
                             progress, pool=None, previous=None) -> tuple[dict, dict, object]:
    """``method="fast"``: pilot completions both ways, the margin, then the rest screened
    (module docstring); with ``previous`` (an earlier screened PPoSResult) its calibration
    and no pilot. Returns the results by key, the screening report and the calibration."""
    from bayes_hcc.monitoring.screening import (MIN_GROUP, MIN_TAIL_DRAWS, calibrate_margin,
                                                usable_pairs)
    from bayes_hcc.runner import run_tasks

    out, n_pilot = {}, 0
    z_threshold = float(stats.norm.ppf(success))
    t0 = time.perf_counter()
    if previous is not None:
        reused = {"calibration_from": "the screened PPoS at the cut of "
                                      f"{previous.cut_date.date()}"}
        rest, report = _screen_rest(tasks, 0, z_threshold, previous.calibration, workers,
                                    progress, pool, reused)
        report["seconds"] = {"pilot": 0.0, "screened completions": time.perf_counter() - t0}
        return rest, report, previous.calibration
    while True:  # pilot batches until MIN_GROUP comparisons can calibrate (or none left)
        batch = [(k, p[:3] + ("pilot",) + p[4:]) for k, p in tasks[n_pilot:n_pilot + pilot]]
        out.update(run_tasks(_final_analysis, batch, workers=workers, progress=progress,
                             desc="PPoS refits (pilot)", unit="refit", pool=pool))
        n_pilot += len(batch)
        pairs = np.array([(r["z_laplace"], stats.norm.ppf(r["p_final"]), r["n_draws"],
                           r["mcse"]) for r in out.values() if r["z_laplace"] is not None],
                         float).reshape(-1, 4)
        usable = int((np.isfinite(pairs[:, 0]) & usable_pairs(pairs[:, 1], pairs[:, 2])
                      ).sum())
        if usable >= MIN_GROUP or n_pilot == len(tasks):
            break
    t_pilot = time.perf_counter() - t0
    if usable < MIN_GROUP:  # every completion was refitted by MCMC: the exact method's result
        return out, {"seconds": {"pilot": t_pilot, "screened completions": 0.0},
                     "n_pilot": usable, "pilot_completions": n_pilot,
                     "completions_screened": 0, "approximation_failed": 0,
                     "share_sent_to_mcmc": float("nan"), "target_flip_share": target,
                     "note": f"fewer than {MIN_GROUP} completions could calibrate the margin (MCMC "
                             f"P(HR < 1) on fewer than {MIN_TAIL_DRAWS} draws on one side "
                             "in the others): every completion was refitted by MCMC"}, None
    cal = calibrate_margin(pairs[:, 0], pairs[:, 1], target=target, n_draws=pairs[:, 2],
                           z_threshold=z_threshold, n_looks=n_pilot, mcse=pairs[:, 3])
    t0 = time.perf_counter()
    rest, report = _screen_rest(tasks, n_pilot, z_threshold, cal, workers, progress, pool)
    report["seconds"] = {"pilot": t_pilot, "screened completions": time.perf_counter() - t0}
    return {**out, **rest}, report, cal


def _screen_rest(tasks, n_pilot, z_threshold, cal, workers, progress, pool, extra=None):
    """The completions after the pilot, screened with ``cal``: results by key and the
    screening report."""
    from bayes_hcc.monitoring.screening import McmcShare
    from bayes_hcc.runner import run_tasks

    rest = [(k, p[:3] + ("screen",) + p[4:] + (z_threshold, cal))
            for k, p in tasks[n_pilot:]]

    def counts(r):  # the running MCMC share, in the bar's terms
        return {"n_looks": 1, "n_mcmc": r["decided_by"] == "mcmc"}

    share = McmcShare("completions")
    out = run_tasks(_final_analysis, rest, workers=workers, progress=progress,
                    desc="PPoS refits (screened)", unit="refit",
                    postfix=lambda r: share(counts(r)), pool=pool)
    screened = [out[k] for k, _ in rest]
    return out, {**cal.summary(), **(extra or {}), "pilot_completions": n_pilot,
                 "completions_screened": len(screened),
                 "approximation_failed": sum(r["approx_failed"] for r in screened),
                 "share_sent_to_mcmc": (sum(r["decided_by"] == "mcmc" for r in screened)
                                        / len(screened) if screened else float("nan"))}
