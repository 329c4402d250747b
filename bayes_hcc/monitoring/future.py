"""Completing a trial from the current posterior of its analysis model, patient by patient:
the simulator ``bayes_hcc.monitoring.predict`` runs (see its docstring for the rules), and
the base of the illness-death completion (``monitoring.illness_death``)."""

from __future__ import annotations


import numpy as np
import pandas as pd

from bayes_hcc.data._build import bounds_endpoint
from bayes_hcc.data.trial import TrialData
from bayes_hcc.errors import BayesHCCError, DataWarning, warn
from bayes_hcc.models.design import eta_numpy
from bayes_hcc.monitoring.plan import Prediction
from bayes_hcc.quantities.population import posterior_params
from bayes_hcc.units import DAYS_PER_UNIT

__all__ = ["FutureSimulator", "conditional_event_times"]


def conditional_event_times(family, params, eta, t0, e) -> np.ndarray:
    """Event times given survival to ``t0``: T = H^{-1}(H(t0 | eta) + e | eta), so that with
    e ~ Exp(1) P(T > t | T > t0) = exp(-(H(t | eta) - H(t0 | eta))). ``params`` hold one
    posterior draw (leading axis of length 1); ``eta``, ``t0`` and ``e`` one value per
    patient."""
    eta = np.asarray(eta, float)[None, :]
    h0 = family.cumhaz_at(params, np.asarray(t0, float)[None, :], eta)
    return family.time_at_cumhaz(params, h0 + np.asarray(e, float)[None, :], eta)[0]


#: a trial whose last randomization is within this many mean gaps between randomizations
#: of the cut is still accruing, as far as the data can tell (a Poisson process still
#: running leaves so long a gap with probability exp(-5), under 1%)
ACCRUING_GAPS = 5.0


def _warn_if_accruing(days_since_last: float, mean_gap: float) -> None:
    """Without a ``sample_size`` the future has no new patients; say so when the data
    suggest accrual has not ended (a silent assumption would delay every predicted event
    and lower the PPoS of a trial still recruiting)."""
    if days_since_last <= ACCRUING_GAPS * mean_gap:
        warn(
            f"prediction has no sample_size, so no patient is assumed to be randomized after "
            f"the cut, but the last randomization was {days_since_last:.0f} days before it "
            f"(one every {mean_gap:.1f} days so far): accrual looks ongoing. Give the planned "
            "total, prediction={'sample_size': N} (a plan's [prediction] table), or 0 "
            "more patients explicitly with sample_size = the number randomized.",
            DataWarning)


class FutureSimulator:
    """Completes a trial from posterior draws of a fit (see the module docstring).

    Parameters
    ----------
    trial : TrialData
        The data as known today (needs randomization dates).
    fit : Fit
        A proportional-hazards fit of the plan's endpoint (OS, PFS or TTP) to exactly these
        data. With patient covariates, each enrolled patient's future uses their own
        covariates, and each new patient's covariates are those of an enrolled patient of
        the same site, drawn with Bayesian-bootstrap weights (Dirichlet(1, ..., 1) over
        that site's enrolled patients, new weights for every completed trial): future
        patients are taken to resemble the site's patients so far, with the uncertainty of
        that resemblance carried into the PPoS. The completed trial carries the covariate
        columns, so the final rule's refit adjusts for them as the plan's analysis does.
        With a stratified baseline each patient's times come from their stratum's
        baseline, and a new patient takes the stratum of the enrolled patient drawn for them.
    prediction : Prediction
    """

    #: the fit's covariate columns, and the columns a completed trial carries (those and a
    #: stratified baseline's column; empty: none)
    covariates: tuple = ()
    carried: tuple = ()
    #: each enrolled patient's stratum of a stratified baseline (None: one baseline)
    stratum = None

    def __init__(self, trial: TrialData, fit, prediction: Prediction):
        if not trial.has_dates:
            raise BayesHCCError("prediction needs calendar dates: the data have no "
                                "randomization_date column.")
        if fit.family.effect.quantity != "hazard_ratio":
            raise BayesHCCError(f"prediction decides on the hazard ratio, so it needs a "
                                f"proportional-hazards model; {fit.settings['model']} is not.")
        if fit.data_fingerprint != trial.fingerprint:
            raise BayesHCCError("the fit was not made on these data (data fingerprints "
                                "differ); fit the plan's model to the same data cut.")
        self.trial, self.fit, self.prediction = trial, fit, prediction
        self.endpoint = fit.endpoint
        if self.endpoint == "ttp" and "os" in trial.endpoints and \
                trial.endpoint("os").event.any():
            warn("completing TTP with its own model: death, which censors TTP, is not "
                 "modelled (only dropout_per_year), so patients who would die first stay at "
                 "risk of progression and the predicted progressions come too many and too "
                 "early. An illness-death completion models both: "
                 "completion=bh.IllnessDeath('weibull_ph') (predictive_probability) or "
                 "completion_model= (interim_analysis).", DataWarning)
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
        self.covariates = tuple(fit.settings.get("covariates") or ())
        #: the standardized covariates of the enrolled patients, as the fit used them
        self.X = fit.design()[2] if self.covariates else np.zeros((len(ep), 0))
        #: a stratified baseline: each enrolled patient's stratum (None: one baseline); a
        #: new patient takes the stratum of the enrolled patient whose covariates they carry
        self.stratum = fit.stratum()
        column = fit.settings.get("strata")
        extra = () if column in (None, "site") or column in self.covariates else (column,)
        self.carried = self.covariates + extra
        #: the raw columns a completed trial carries (a new patient's drawn with its row)
        self.covariate_frame = frame[list(self.carried)].reset_index(drop=True)
        self.params = posterior_params(fit)
        if self.stratum is not None:
            from bayes_hcc.units import log_unit_in_months

            self.n_strata, self.log_unit = len(fit.strata), log_unit_in_months(fit.time_unit)
        self.n_draws = fit.n_draws
        self.base = {a: fit.family.params_for_arm(self.params, a) for a in (0, 1)}
        self._accrual_so_far(trial, fit.sites)

    def _accrual_so_far(self, trial, sites) -> None:
        """Patients still to come (``sample_size``), the accrual rate's posterior (Gamma(n,
        elapsed days)) and the sites' counts: what ``_accrue`` draws from. Needs ``entry``,
        ``cut_day`` and ``site``."""
        n, size = len(self.entry), self.prediction.sample_size
        self.n_new = 0 if size is None else size - n
        if self.n_new < 0:
            raise BayesHCCError(f"sample_size {size} is below the {n} patients already "
                                "randomized.")
        elapsed = max(self.cut_day - self.entry.min(), 1.0)
        self.accrual_shape, self.accrual_rate = float(n), float(elapsed)  # per day
        if size is None:
            _warn_if_accruing(self.cut_day - self.entry.max(), elapsed / n)
        self.site_counts = np.bincount(self.site, minlength=len(sites))
        self.labels = {"arm": np.asarray(trial.arms), "site": np.asarray(sites)}

    # -- one completed trial -----------------------------------------------------------------
    def _residual_days(self, s, arm, site, t0_days, rng, X, stratum=None):
        """Event day (from randomization) given survival to t0, for one posterior draw;
        ``X`` the patients' standardized covariates ((n, 0) without), ``stratum`` their
        strata of a stratified baseline."""
        fam = self.fit.family
        post_s = {k: v[s:s + 1] for k, v in self.params.items()}
        eta = eta_numpy(post_s, arm, site, X,
                        site_effect=self.fit.site_effect, arm_by_site=self.fit.arm_by_site,
                        arm_effect=fam.arm_effect)[0]
        e = rng.exponential(size=len(arm))
        out = np.empty(len(arm))
        if stratum is not None:  # each stratum's baseline, each arm's
            from bayes_hcc.models.design import patient_groups

            groups = patient_groups(fam, post_s, arm, stratum, self.n_strata, self.log_unit)
        else:
            groups = ((arm == a, {k: v[s:s + 1] for k, v in self.base[a].items()})
                      for a in (0, 1))
        for m, p in groups:
            if m.any():
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
            death[idx] = self.entry[idx] + self._residual_days(
                s, self.arm[idx], self.site[idx], t0, rng, self.X[idx],
                None if self.stratum is None else self.stratum[idx])
            if rate > 0:
                censor[idx] = self.entry[idx] + t0 + np.ceil(rng.exponential(1 / rate,
                                                                             len(idx)))
            if self.scanned:
                death[idx], lower[idx], last_scan[idx] = self._seen_at_scans(
                    death[idx], self.entry[idx] + t0, censor[idx])
        arm, site, entry = self.arm, self.site, self.entry
        rows = np.arange(n0)  # whose covariates each patient carries
        if self.n_new:
            new_entry, new_site, new_arm = self._accrue(rng)
            new_rows = self._new_rows(new_site, rng)
            new_death = new_entry + self._residual_days(
                s, new_arm, new_site, np.zeros(self.n_new), rng, self.X[new_rows],
                None if self.stratum is None else self.stratum[new_rows])
            new_cens = self._lost(new_entry, rate, rng)
            new_lower, new_last = np.full(self.n_new, np.nan), new_entry.copy()
            if self.scanned:
                new_death, new_lower, new_last = self._seen_at_scans(new_death, new_entry,
                                                                     new_cens)
            arm, site = np.r_[arm, new_arm], np.r_[site, new_site]
            entry, rows = np.r_[entry, new_entry], np.r_[rows, new_rows]
            death, censor = np.r_[death, new_death], np.r_[censor, new_cens]
            lower, last_scan = np.r_[lower, new_lower], np.r_[last_scan, new_last]
        return {"entry": entry, "death": death, "censor": censor, "arm": arm, "site": site,
                "lower": lower, "last_scan": last_scan, "n_current": n0,
                "covariate_row": rows}

    def _new_rows(self, new_site, rng) -> np.ndarray:
        """Whose covariates (and stratum) each new patient carries. Drawn only when there
        are columns to carry or strata: a completion without them draws the random numbers
        it always did, so its recorded PPoS reproduce."""
        if self.carried or self.stratum is not None:
            return self._covariate_rows(new_site, rng)
        return np.zeros(len(new_site), np.int64)

    def _covariate_rows(self, new_site, rng) -> np.ndarray:
        """For each new patient, the enrolled patient whose covariates they carry: one of
        the same site, drawn with Bayesian-bootstrap weights (Gamma(1) per enrolled patient,
        normalised within the site; a site without enrolled patients draws from all)."""
        g = rng.standard_gamma(1.0, size=len(self.site))
        rows = np.empty(len(new_site), np.int64)
        for s in np.unique(new_site):
            pool = np.flatnonzero(self.site == s)
            if not len(pool):
                pool = np.arange(len(self.site))
            m = new_site == s
            rows[m] = pool[rng.choice(len(pool), size=int(m.sum()), p=g[pool] / g[pool].sum())]
        return rows

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
        if self.carried:  # each patient's own, a new patient's drawn (_covariate_rows)
            rows = sim["covariate_row"][keep]
            for c in self.carried:
                frame[c] = self.covariate_frame[c].to_numpy()[rows]
        if self.scanned:
            # censored: the last scan done by the cut (scans every scan_days after the last)
            last = sim["last_scan"][keep]
            seen_by = np.where(day >= last, last, last - self.scan_days * np.ceil(
                (last - day) / self.scan_days))
            seen_by = np.maximum(seen_by, entry)
            lower = (np.where(died, sim["lower"][keep], seen_by) - entry) / self.days
            upper = np.where(died, (sim["death"][keep] - entry) / self.days, np.nan)
            ep = bounds_endpoint(e, lower, upper)
        else:
            ep = {f"{e}_time": (end - entry) / self.days, f"{e}_event": died.astype(np.int8)}
        # valid by construction: built without re-reading (tests: equal to from_table)
        return TrialData._from_valid_times(frame, ep, control=self.trial.control,
                                           treatment=self.trial.treatment,
                                           time_unit=self.trial.time_unit,
                                           source="completed trial (prediction)")

    def draws(self, n_sims: int, rng: np.random.Generator) -> np.ndarray:
        """Posterior draws to use: without replacement when there are enough."""
        return rng.choice(self.n_draws, size=n_sims, replace=n_sims > self.n_draws)

    def to_date(self, day) -> pd.Timestamp:
        return self.origin + pd.to_timedelta(float(day), unit="D")
