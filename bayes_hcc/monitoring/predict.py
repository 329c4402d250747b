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
``followup_window_days`` of the cut.

The final analysis is then cut where the plan puts it (an event count or a date) and the
final rule is applied: by refitting the plan's analysis model (MCMC; the compiled model is
reused for every refit) or, as a validated option, by a normal approximation of the final
posterior (site-stratified Cox estimate combined with the normal prior on log HR).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from bayes_hcc.units import DAYS_PER_UNIT
from bayes_hcc.data.trial import TrialData
from bayes_hcc.errors import BayesHCCError
from bayes_hcc.mcerror import wilson_interval
from bayes_hcc.models.design import eta_numpy
from bayes_hcc.monitoring.plan import (PPOS_METHODS, PREDICTION_DEFAULTS,  # noqa: F401
                                       Prediction, load_plan)
from bayes_hcc.quantities.population import posterior_params

__all__ = ["Prediction", "FutureSimulator", "conditional_event_times", "predict_event_dates", "predictive_probability",
           "PPoSResult", "PREDICTION_DEFAULTS", "PPOS_METHODS"]

def conditional_event_times(family, params, eta, t0, e) -> np.ndarray:
    """Event times given survival to ``t0``: T = H^{-1}(H(t0 | eta) + e | eta), so that with
    e ~ Exp(1) P(T > t | T > t0) = exp(-(H(t | eta) - H(t0 | eta))). ``params`` hold one
    posterior draw (leading axis of length 1); ``eta``, ``t0`` and ``e`` one value per
    patient."""
    eta = np.asarray(eta, float)[None, :]
    h0 = family.cumhaz_at(params, np.asarray(t0, float)[None, :], eta)
    return family.time_at_cumhaz(params, h0 + np.asarray(e, float)[None, :], eta)[0]


class FutureSimulator:
    """Completes a trial from posterior draws of a fit (see the module docstring).

    Parameters
    ----------
    trial : TrialData
        The data as known today (needs randomization dates).
    fit : Fit
        A proportional-hazards fit of the plan's endpoint (OS, PFS or TTP) to exactly these
        data (no patient covariates: a future patient's covariates would need a model of
        their own).
    prediction : Prediction
    """

    def __init__(self, trial: TrialData, fit, prediction: Prediction):
        if not trial.has_dates:
            raise BayesHCCError("prediction needs calendar dates: the data have no "
                                "randomization_date column.")
        if fit.family.effect.quantity != "hazard_ratio":
            raise BayesHCCError(f"prediction decides on the hazard ratio, so it needs a "
                                f"proportional-hazards model; {fit.settings['model']} is not.")
        if fit.settings.get("covariates"):
            raise BayesHCCError("prediction with patient covariates is not supported: future "
                                "patients' covariates would need a model. Use the plan's "
                                "model without covariates.")
        if fit.data_fingerprint != trial.fingerprint:
            raise BayesHCCError("the fit was not made on these data (data fingerprints "
                                "differ); fit the plan's model to the same data cut.")
        self.trial, self.fit, self.prediction = trial, fit, prediction
        self.endpoint = fit.endpoint
        self.days = DAYS_PER_UNIT[trial.time_unit]
        frame = trial.to_frame()
        ep = trial.endpoint(self.endpoint)
        #: progression seen at scans: simulated events are seen at the next scans
        self.scanned = ep.has_bounds
        self.scan_days = prediction.assessment_interval * DAYS_PER_UNIT["months"]
        rand = pd.to_datetime(frame["randomization_date"])
        self.origin = rand.min().normalize()
        self.entry = ((rand - self.origin) / np.timedelta64(1, "D")).to_numpy(float)
        self.obs = ep.time * self.days  # days of follow-up known so far (event: R)
        self.lower = ep.lower * self.days  # L of a scanned event (= obs otherwise)
        self.event = ep.event.astype(bool)
        cut = trial.cut_date if trial.cut_date is not None else \
            self.origin + pd.to_timedelta(float(np.max(self.entry + self.obs)), unit="D")
        self.cut_date = pd.Timestamp(cut)
        self.cut_day = (self.cut_date - self.origin) / np.timedelta64(1, "D")
        # still followed: alive (when OS is known) and seen within the window
        os_ep = trial.endpoint("os") if "os" in trial.endpoints else ep
        alive = ~os_ep.event.astype(bool) if os_ep is not ep else np.ones(len(ep), bool)
        last_contact = self.entry + os_ep.time * self.days
        self.at_risk = ~self.event & alive & (self.cut_day - last_contact
                                              <= prediction.followup_window_days)
        site_pos = {s: i for i, s in enumerate(fit.sites)}
        self.site = np.array([site_pos[s] for s in np.asarray(ep.sites)[ep.site]])
        self.arm = ep.arm.astype(np.int64)
        if fit.strata:
            raise BayesHCCError("predictions from a stratified baseline (strata=) are not "
                                "available yet: new patients would need a stratum. Monitor "
                                "with an unstratified model (site effects model the sites).")
        self.params = posterior_params(fit)
        self.n_draws = fit.n_draws
        self.base = {a: fit.family.params_for_arm(self.params, a) for a in (0, 1)}
        n_new = 0 if prediction.sample_size is None else prediction.sample_size - len(ep)
        if n_new < 0:
            raise BayesHCCError(f"sample_size {prediction.sample_size} is below the "
                                f"{len(ep)} patients already randomized.")
        self.n_new = n_new
        elapsed = max(self.cut_day - self.entry.min(), 1.0)
        self.accrual_shape, self.accrual_rate = float(len(ep)), float(elapsed)  # per day
        self.site_counts = np.bincount(self.site, minlength=len(fit.sites))
        self.labels = {"arm": np.asarray(trial.arms), "site": np.asarray(fit.sites)}

    # -- one completed trial -----------------------------------------------------------------
    def _residual_days(self, s, arm, site, t0_days, rng):
        """Event day (from randomization) given survival to t0, for one posterior draw."""
        fam = self.fit.family
        post_s = {k: v[s:s + 1] for k, v in self.params.items()}
        eta = eta_numpy(post_s, arm, site, np.zeros((len(arm), 0)),
                        site_effect=self.fit.site_effect, arm_by_site=self.fit.arm_by_site,
                        arm_effect=fam.arm_effect)[0]
        e = rng.exponential(size=len(arm))
        out = np.empty(len(arm))
        for a in (0, 1):
            m = arm == a
            if m.any():
                p = {k: v[s:s + 1] for k, v in self.base[a].items()}
                out[m] = conditional_event_times(fam, p, eta[m], t0_days[m] / self.days,
                                                 e[m]) * self.days
        # whole days, strictly after the last day known alive
        return np.maximum(np.ceil(out), np.floor(t0_days) + 1)

    def _seen_at_scans(self, event_day, last_scan, censor):
        """Scanned endpoints: (day the event is seen, day of the scan before it, day of the
        last scan done) given the latent event day, the last scan so far and the end of
        follow-up (absolute days). Scans every ``scan_days`` after ``last_scan``."""
        step = self.scan_days
        k = np.ceil(np.maximum(event_day - last_scan, 0.0) / step)
        k = np.maximum(k, 1.0)
        seen_day = np.round(last_scan + k * step)
        seen = seen_day <= censor
        before = np.where(k > 1, np.round(last_scan + (k - 1) * step), last_scan)
        k_end = np.floor(np.maximum(np.minimum(censor, 1e12) - last_scan, 0.0) / step)
        last_done = np.round(last_scan + np.minimum(k_end, k - 1) * step)
        return (np.where(seen, seen_day, np.inf), np.where(seen, before, np.nan),
                np.where(seen, last_done, last_done))

    def simulate(self, s: int, rng: np.random.Generator) -> dict:
        """Absolute day (since the first randomization) of entry, event and censoring for
        every patient of the completed trial, from posterior draw ``s`` (``death`` is the
        day the endpoint's event is known; for scanned endpoints ``lower`` is the scan
        before it and ``last_scan`` the last scan done by a patient without it)."""
        n0 = len(self.entry)
        death = np.where(self.event, self.entry + self.obs, np.inf)
        lower = np.where(self.event, self.entry + self.lower, np.nan)
        censor = np.where(self.event | self.at_risk, np.inf, self.entry + self.obs)
        last_scan = self.entry + self.obs  # scanned endpoints: censored at the last scan
        rate = -np.log1p(-self.prediction.dropout_per_year) / 365.25
        idx = np.flatnonzero(self.at_risk)
        if len(idx):
            t0 = self.obs[idx]
            death[idx] = self.entry[idx] + self._residual_days(s, self.arm[idx],
                                                               self.site[idx], t0, rng)
            if rate > 0:
                censor[idx] = self.entry[idx] + t0 + np.ceil(rng.exponential(1 / rate,
                                                                             len(idx)))
            if self.scanned:
                death[idx], lower[idx], last_scan[idx] = self._seen_at_scans(
                    death[idx], self.entry[idx] + t0, censor[idx])
        arm, site, entry = self.arm, self.site, self.entry
        if self.n_new:
            new_entry, new_site, new_arm = self._accrue(rng)
            new_death = new_entry + self._residual_days(s, new_arm, new_site,
                                                        np.zeros(self.n_new), rng)
            new_cens = self._lost(new_entry, rate, rng)
            new_lower, new_last = np.full(self.n_new, np.nan), new_entry.copy()
            if self.scanned:
                new_death, new_lower, new_last = self._seen_at_scans(new_death, new_entry,
                                                                     new_cens)
            arm, site = np.r_[arm, new_arm], np.r_[site, new_site]
            entry = np.r_[entry, new_entry]
            death, censor = np.r_[death, new_death], np.r_[censor, new_cens]
            lower, last_scan = np.r_[lower, new_lower], np.r_[last_scan, new_last]
        return {"entry": entry, "death": death, "censor": censor, "arm": arm, "site": site,
                "lower": lower, "last_scan": last_scan, "n_current": n0}

    def _accrue(self, rng):
        """The patients still to come: entry day, site and arm (random numbers drawn in
        this order, as in every earlier version: recorded PPoS reproduce)."""
        lam = rng.gamma(self.accrual_shape, 1.0 / self.accrual_rate)
        entry = np.floor(self.cut_day + np.cumsum(rng.exponential(1 / lam, self.n_new)))
        site = rng.choice(len(self.site_counts), size=self.n_new,
                          p=rng.dirichlet(1.0 + self.site_counts))
        return entry, site, rng.integers(0, 2, size=self.n_new)

    def _lost(self, entry, rate, rng):
        """Day each new patient is lost to follow-up (``rate`` per day; inf for none)."""
        if rate > 0:
            return entry + np.ceil(rng.exponential(1 / rate, len(entry)))
        return np.full(len(entry), np.inf)

    def event_days(self, sim: dict) -> np.ndarray:
        """Sorted absolute days of the events the completed trial will observe (the day
        each is known: for a progression, the scan that shows it)."""
        d = sim["death"]
        return np.sort(d[np.isfinite(d) & (d <= sim["censor"])])

    def final_day(self, sim: dict, final) -> tuple[float, bool]:
        """Day of the final analysis (event count or date) and whether it is reached."""
        if final.date is not None:
            return (pd.Timestamp(final.date) - self.origin) / np.timedelta64(1, "D"), True
        ev = self.event_days(sim)
        if len(ev) >= final.events:
            return float(ev[final.events - 1]), True
        return float(ev[-1]) if len(ev) else self.cut_day, False

    def completed_trial(self, sim: dict, day: float) -> TrialData:
        """The completed trial cut at absolute ``day`` (times layout, the plan's endpoint;
        scanned endpoints as bounds: a progression seen by then in (L, R], else censored at
        the last scan by then)."""
        keep = sim["entry"] <= day
        entry = sim["entry"][keep]
        end = np.minimum(np.minimum(sim["death"][keep], sim["censor"][keep]), day)
        died = sim["death"][keep] <= np.minimum(sim["censor"][keep], day)
        n = int(keep.sum())
        e = self.endpoint
        frame = pd.DataFrame({
            "patient_id": [f"P{i + 1:05d}" for i in range(n)],
            "site": self.labels["site"][sim["site"][keep]],
            "arm": self.labels["arm"][sim["arm"][keep]],
        })
        if self.scanned:
            # censored: the last scan done by the cut (scans every scan_days after the last)
            last = sim["last_scan"][keep]
            seen_by = np.where(day >= last, last, last - self.scan_days * np.ceil(
                (last - day) / self.scan_days))
            seen_by = np.maximum(seen_by, entry)
            frame[f"{e}_lower"] = np.where(died, sim["lower"][keep], seen_by) - entry
            frame[f"{e}_lower"] = frame[f"{e}_lower"] / self.days
            frame[f"{e}_upper"] = np.where(died, (sim["death"][keep] - entry) / self.days,
                                           np.nan)
        else:
            frame[f"{e}_time"] = (end - entry) / self.days
            frame[f"{e}_event"] = died.astype(int)
        return TrialData.from_table(frame, control=self.trial.control,
                                   treatment=self.trial.treatment, time_unit=self.trial.time_unit,
                                   source="completed trial (prediction)", layout="times",
                                   warn=False)

    def draws(self, n_sims: int, rng: np.random.Generator) -> np.ndarray:
        """Posterior draws to use: without replacement when there are enough."""
        return rng.choice(self.n_draws, size=n_sims, replace=n_sims > self.n_draws)

    def to_date(self, day) -> pd.Timestamp:
        return self.origin + pd.to_timedelta(float(day), unit="D")


def _as_looks(events) -> list[int]:
    items = [events] if np.isscalar(events) else list(events)
    if not items or not all(isinstance(e, (int, np.integer)) and not isinstance(e, bool)
                            and e >= 1 for e in items):
        raise BayesHCCError(f"events={events!r}: give one or more positive whole event "
                            "counts, e.g. [70, 100].")
    return [int(e) for e in items]


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
        Future accrual and follow-up assumptions (:data:`PREDICTION_DEFAULTS`).
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
    sim = FutureSimulator(trial, fit, pred)
    rng = np.random.default_rng(random_seed)
    days = np.full((n_sims, len(targets)), np.nan)
    for i, s in enumerate(sim.draws(n_sims, rng)):
        ev = sim.event_days(sim.simulate(int(s), rng))
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

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Wilson interval for the PPoS (Monte Carlo uncertainty only)."""
        return wilson_interval(int(self.sims["success"].sum()), self.n_sims, level)

    def __repr__(self) -> str:
        lo, hi = self.interval()
        fails = int((~self.sims["converged"]).sum()) if "converged" in self.sims else 0
        extra = f"; {fails} refit(s) failed convergence checks" if fails else ""
        return (f"PPoSResult(PPoS = {self.ppos:.3f} (MCSE {self.mcse:.3f}, 95% MC interval "
                f"{lo:.3f}-{hi:.3f}), {self.n_sims} completed trials, method {self.method!r}"
                f"{extra})")


def normal_final_probability(trial: TrialData, spec) -> float:
    """P(HR < 1) from a normal approximation of the final posterior of log HR: the
    site-stratified Cox estimate (lifelines) combined with the spec's normal prior."""
    from bayes_hcc.data.km import cox_log_hr

    from bayes_hcc.models.from_spec import build

    model = build(spec)
    prior = model.resolved_priors(model.family_for(None, None))["log_hr"]
    if prior.dist != "Normal":
        raise BayesHCCError("method='normal' needs a Normal prior on log_hr; use 'mcmc'.")
    mu, sigma = float(prior.params["mu"]), float(prior.params["sigma"])
    # interval-censored progression: the Cox estimate at the interval midpoints
    ep = trial.endpoint(spec.endpoint).with_censoring("midpoint")
    strata = ep.site if len(ep.sites) > 1 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b, se = cox_log_hr(ep.time, ep.event, ep.arm, strata=strata)
    prec = 1 / se**2 + 1 / sigma**2
    mean = (b / se**2 + mu / sigma**2) / prec
    return float(stats.norm.cdf(-mean * np.sqrt(prec)))


def _illness_death_simulator(trial, completion, pred, endpoint, random_seed):
    from bayes_hcc.monitoring.illness_death import IllnessDeathFutureSimulator
    from bayes_hcc.multistate import IllnessDeath, IllnessDeathFit

    if isinstance(completion, IllnessDeath):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            completion = completion.fit(trial, random_seed=random_seed, check=False)
    if not isinstance(completion, IllnessDeathFit):
        raise BayesHCCError(f"completion={completion!r}: give a bh.IllnessDeath model or its "
                            "fit to these data.")
    return IllnessDeathFutureSimulator(trial, completion, pred, endpoint)


def _final_analysis(payload) -> dict:
    """Run the final rule on one completed trial (runs in a worker when pooled)."""
    from bayes_hcc.models.from_spec import SIMULATED_REFIT, fit_spec
    from bayes_hcc.quantities.core import prob_superiority

    spec, frame, meta, seed, method, refit = payload
    trial = TrialData.from_table(frame, control=meta["control"], treatment=meta["treatment"],
                                time_unit=meta["time_unit"], layout="times", warn=False,
                                source="completed trial (prediction)")
    if method == "normal":
        return {"p_final": normal_final_probability(trial, spec), "converged": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is recorded per refit below
        # Only P(HR < 1) and the convergence flags are used: no pointwise log-likelihood.
        fit = fit_spec(spec, trial, check=False, random_seed=seed,
                       **{"log_likelihood": False, **SIMULATED_REFIT, **refit})
    return {"p_final": prob_superiority(fit, 1.0).probability,
            "converged": not fit.convergence_problems()}


def predictive_probability(trial: TrialData, plan, *, fit=None, n_sims: int | None = None,
                           method: str | None = None, prediction=None, random_seed: int = 0,
                           refit: dict | None = None, workers: int | None = 1,
                           progress: bool = False, completion=None) -> PPoSResult:
    """Predictive probability of success at the final analysis of ``plan``.

    Parameters
    ----------
    trial : TrialData
        The data as known at the look (for example ``InterimResult.data``).
    plan : MonitoringPlan or path
    fit : Fit, optional
        The plan's model fitted to ``trial``; fitted here when omitted.
    n_sims, method, prediction
        Override the plan's ``[prediction]`` settings: number of completed trials,
        ``"mcmc"`` (refit the plan's model on each: the reference) or ``"normal"``
        (normal approximation of the final posterior; validated against MCMC in the tests).
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
        (``bayes_hcc.monitoring.illness_death``). The final rule is still the plan's (OS).
    """
    from bayes_hcc.models.from_spec import fit_spec
    from bayes_hcc.runner import run_tasks

    plan = load_plan(plan)
    pred = plan.prediction if prediction is None else (
        prediction if isinstance(prediction, Prediction) else
        Prediction.from_dict({**plan.prediction.__dict__, **prediction}))
    n_sims = _check_n_sims(pred.n_sims if n_sims is None else n_sims)
    method = pred.method if method is None else method
    if method not in PPOS_METHODS:
        raise BayesHCCError(f"method={method!r}; choose one of {', '.join(PPOS_METHODS)}.")
    final = plan.final
    endpoint = plan.spec.endpoint
    ep = trial.endpoint(endpoint)
    if final.events is not None and ep.n_events >= final.events:
        raise BayesHCCError(f"the data already hold {ep.n_events} {endpoint.upper()} events, "
                            f"the final "
                            f"analysis's {final.events}: run interim_analysis(..., "
                            "look='final') instead of predicting it.")
    if completion is not None:
        sim = _illness_death_simulator(trial, completion, pred, endpoint, random_seed)
    else:
        if fit is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = fit_spec(plan.spec, trial, check=False)
        sim = FutureSimulator(trial, fit, pred)
    if final.date is not None and pd.Timestamp(final.date) <= sim.cut_date:
        raise BayesHCCError(f"the final analysis date {final.date} is not after the data cut "
                            f"{sim.cut_date.date()}.")
    rng = np.random.default_rng(random_seed)
    seeds = rng.integers(2**31, size=n_sims)
    meta = {"control": trial.control, "treatment": trial.treatment,
            "time_unit": trial.time_unit}
    rows, tasks = [], []
    for i, s in enumerate(sim.draws(n_sims, rng)):
        completed = sim.simulate(int(s), rng)
        day, reached = sim.final_day(completed, final)
        data = sim.completed_trial(completed, day)
        e = data.endpoint(endpoint)
        rows.append({"sim": i, "draw": int(s), "final_date": sim.to_date(day).normalize(),
                     "events_reached": reached, "n_patients": len(e),
                     "n_events": e.n_events, "seed": int(seeds[i])})
        frame = data.to_frame()[["patient_id", "site", "arm",
                                 *[f"{endpoint}_{k}" for k in ("time", "event", "lower")
                                   if f"{endpoint}_{k}" in data.to_frame().columns]]]
        tasks.append((f"sim{i}", (plan.spec, frame, meta, int(seeds[i]), method,
                                  dict(refit or {}))))
    out = run_tasks(_final_analysis, tasks, workers=workers, progress=progress,
                    desc="PPoS refits" if method == "mcmc" else
                    "PPoS final analyses (normal approximation)")
    sims = pd.DataFrame(rows)
    sims["P(HR < 1) final"] = [out[k]["p_final"] for k, _ in tasks]
    sims["converged"] = [out[k]["converged"] for k, _ in tasks]
    sims["success"] = sims["P(HR < 1) final"] > final.success
    p = float(sims["success"].mean())
    return PPoSResult(ppos=p, mcse=float(np.sqrt(p * (1 - p) / n_sims)), n_sims=n_sims,
                      method=method, sims=sims, cut_date=sim.cut_date,
                      settings={"prediction": pred.__dict__, "random_seed": random_seed,
                                "refit": dict(refit or {}), "plan_hash": plan.hash,
                                "completion": "plan model" if completion is None else
                                repr(sim.fit.model)})
