"""Completing a trial with an illness-death model: each patient continues from the state
they are in at the data cut.

For one posterior draw of a fitted :class:`~bayes_hcc.IllnessDeath` model:

* a patient who died keeps the observed death;
* a patient alive after a progression seen at a scan dies after their last contact t_c at
  the post-progression death hazard: T = H12^-1(H12(t_c) + E) on the clock-forward scale;
  on the clock-reset scale time since progression counts from a progression time u drawn
  from its conditional density S0(u) a01(u) S12(t_c - u) on (scan before, scan showing it]
  (the likelihood's quadrature), then T = u + H12^-1(H12(t_c - u) + E);
* a patient alive without a progression seen (last progression-free scan L <= t_c) may have
  progressed, unseen, between L and t_c: with probability
  I / (S0(t_c) + I), I = int_L^t_c S0(u) a01(u) S12(u, t_c) du (the likelihood's quadrature),
  they did, at a time u drawn from that integrand, and die at the post-progression hazard;
  otherwise they are still progression-free at t_c and progression and death without
  progression compete from t_c (each time drawn given survival to t_c), the death after
  a progression from the post-progression hazard;
* new patients (up to ``sample_size``), their covariates and loss to follow-up as in
  :class:`~bayes_hcc.monitoring.future.FutureSimulator` (new patients start in state 0 at
  randomisation); with covariates, every transition's linear predictor holds each
  patient's own.

A patient still followed is one alive at the cut whose last contact is within
``followup_window_days`` of it; the others stay censored at their last contact. The final
rule is the plan's, on OS, PFS or TTP (its analysis model refitted, or its normal
approximation). For PFS and TTP the completed trial carries what a trial would record: a
progression at the first scan (every ``assessment_interval`` months after the patient's last
scan) at or after it while the patient is alive and followed, interval-censored between
that scan and the one before; a death before any scan shows the progression is a PFS event
at death (exact) and censors TTP at the last scan before it; patients alive and followed
without a progression seen are censored at their last scan. Patients with an event of the
endpoint at the cut keep it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_hcc.errors import BayesHCCError
from bayes_hcc.monitoring.future import FutureSimulator, conditional_event_times
from bayes_hcc.multistate.likelihood import _nodes
from bayes_hcc.units import DAYS_PER_UNIT

__all__ = ["IllnessDeathFutureSimulator"]


class IllnessDeathFutureSimulator(FutureSimulator):
    """Completes a trial from an :class:`~bayes_hcc.IllnessDeathFit` (module docstring);
    the completed trial carries the plan's endpoint (OS, PFS or TTP), what the final rule
    reads, and the model's covariates with the columns named in ``carry`` (a column the
    final analysis stratifies by)."""

    def __init__(self, trial, fit, prediction, endpoint: str = "os", *, carry=()):
        if endpoint not in ("os", "pfs", "ttp"):
            raise BayesHCCError(f"completing a trial with an illness-death model for a final "
                                f"rule on {endpoint.upper()} is not available; the plan's "
                                "endpoint must be OS, PFS or TTP.")
        if endpoint != "os" and endpoint not in trial.endpoints:
            raise BayesHCCError(f"the plan's final rule is on {endpoint.upper()}, but the data "
                                f"have no {endpoint.upper()} endpoint.")
        if not trial.has_dates:
            raise BayesHCCError("prediction needs calendar dates: the data have no "
                                "randomization_date column.")
        if fit.data_fingerprint != trial.fingerprint:
            raise BayesHCCError("the illness-death fit was not made on these data (data "
                                "fingerprints differ); fit it to the same data cut.")
        self.trial, self.fit, self.prediction = trial, fit, prediction
        self.endpoint, self.scanned = endpoint, endpoint != "os"
        self.days = DAYS_PER_UNIT[trial.time_unit]
        self.scan_days = prediction.assessment_interval * DAYS_PER_UNIT["months"]
        frame = trial.to_frame()
        rand = pd.to_datetime(frame["randomization_date"])
        self.origin = rand.min().normalize()
        self.entry = ((rand - self.origin) / np.timedelta64(1, "D")).to_numpy(float)
        d = fit.data
        os_ = trial.endpoint("os")
        self.obs = os_.time * self.days
        self.lower = self.obs
        self.event = os_.event.astype(bool)
        cut = trial.cut_date if trial.cut_date is not None else \
            self.origin + pd.to_timedelta(float(np.max(self.entry + self.obs)), unit="D")
        self.cut_date = pd.Timestamp(cut)
        self.cut_day = (self.cut_date - self.origin) / np.timedelta64(1, "D")
        self.at_risk = ~self.event & (self.cut_day - (self.entry + self.obs)
                                      <= prediction.followup_window_days)
        self.site, self.arm = d.site.astype(np.int64), d.arm.astype(np.int64)
        self.prog_lower, self.prog_upper = d.prog_lower, d.prog_upper  # time unit
        self.n_draws = fit.n_draws
        self._accrual_so_far(trial, d.sites)
        # covariates as FutureSimulator's: each enrolled patient's own, a new patient's
        # those of an enrolled patient of the same site (Bayesian bootstrap)
        self.covariates = tuple(fit.model.covariates or ())
        self.X = np.asarray(d.X, float) if self.covariates else np.zeros((len(d), 0))
        # and the columns the final analysis needs besides (a stratified baseline's column:
        # a new patient takes that of the enrolled patient drawn for them)
        self.carried = self.covariates + tuple(c for c in carry if c not in self.covariates)
        self.covariate_frame = frame[list(self.carried)].reset_index(drop=True)
        self.markov = fit.model.time_scale == "markov"
        if self.scanned:  # PFS or TTP, seen at scans
            ep = trial.endpoint(endpoint)
            self.scan_time, self.scan_lower = ep.time * self.days, ep.lower * self.days
            self.scan_event = ep.event.astype(bool)
            # still to complete: followed, alive and without a progression seen
            self.scan_at_risk = self.at_risk & ~d.progressed & ~self.scan_event

    # -- transitions of one draw ------------------------------------------------------------
    def _after_progression(self, params, eta12, u, t0, rng):
        """Death time (time unit) after a progression at ``u``, given alive at ``t0`` >= u."""
        f12 = self.fit.families[2]
        e = rng.exponential(size=len(u))
        if self.markov:
            return conditional_event_times(f12, params[2], eta12, t0, e)
        gap = conditional_event_times(f12, params[2], eta12, np.maximum(t0 - u, 0.0), e)
        return u + gap

    def _from_state0(self, params, etas, t0, rng):
        """(progression time or inf, death time) of patients progression-free at ``t0``."""
        f01, f02, _ = self.fit.families
        n = len(t0)
        t01 = conditional_event_times(f01, params[0], etas[0], t0, rng.exponential(size=n))
        t02 = conditional_event_times(f02, params[1], etas[1], t0, rng.exponential(size=n))
        prog = t01 < t02
        death = t02.copy()
        if prog.any():
            death[prog] = self._after_progression(params, etas[2][prog], t01[prog], t01[prog],
                                                  rng)
        return np.where(prog, t01, np.inf), death

    def _progression_density(self, params, etas, lo, hi, alive):
        """Quadrature of a progression at u in (lo, hi] of patients alive at ``alive`` >= hi:
        nodes (n, Q) and their weights times S0(u) a01(u) S12(u -> alive), the integrand of
        the likelihood (``multistate.likelihood``)."""
        f01, f02, f12 = self.fit.families
        splits = np.concatenate([f.breakpoints() for f in self.fit.families])
        nodes, weights = _nodes(lo, hi, splits, grade_hi=not self.markov)
        q = nodes.shape[1]
        u = nodes.ravel()[None, :]
        rows = np.repeat(np.arange(len(lo)), q)
        e = [x[rows][None, :] for x in etas]
        t_rep = np.repeat(alive, q)[None, :]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_f = (-f01.cumhaz_at(params[0], u, e[0]) - f02.cumhaz_at(params[1], u, e[1])
                     + f01.log_hazard_at(params[0], u, e[0]))
            if self.markov:
                log_f = log_f - (f12.cumhaz_at(params[2], t_rep, e[2])
                                 - f12.cumhaz_at(params[2], u, e[2]))
            else:
                log_f = log_f - f12.cumhaz_at(params[2], np.maximum(t_rep - u, 1e-12), e[2])
        dens = np.where(weights > 0, np.exp(log_f[0].reshape(len(lo), q)) * weights, 0.0)
        return nodes, dens

    @staticmethod
    def _draw_node(nodes, dens, rng):
        """One node per row, with probability proportional to its ``dens``."""
        cdf = np.cumsum(dens, axis=1)
        pick = (cdf < rng.uniform(size=len(nodes))[:, None] * cdf[:, -1:]).sum(axis=1)
        return nodes[np.arange(len(nodes)), np.minimum(pick, nodes.shape[1] - 1)]

    def _unseen_progression(self, params, etas, lower, t0, rng):
        """For patients progression-free at their last scan ``lower`` and alive at ``t0``:
        whether they progressed unseen in between, and when (inf when not)."""
        f01, f02, _ = self.fit.families
        n = len(t0)
        out = np.full(n, np.inf)
        gap = t0 > lower
        if not gap.any():
            return out
        lo, hi = lower[gap], t0[gap]
        nodes, dens = self._progression_density(params, [x[gap] for x in etas], lo, hi, hi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            direct = (-f01.cumhaz_at(params[0], hi[None, :], etas[0][gap][None, :])
                      - f02.cumhaz_at(params[1], hi[None, :], etas[1][gap][None, :]))[0]
        integral = dens.sum(axis=1)
        p = integral / (integral + np.exp(direct))
        yes = rng.uniform(size=len(lo)) < p
        when = self._draw_node(nodes, dens, rng)
        out[np.flatnonzero(gap)[yes]] = when[yes]
        return out

    def _seen_progression(self, params, etas, lower, upper, t0, rng):
        """When a progression seen at the scan ``upper`` (the scan before it at ``lower``)
        happened, for patients alive at ``t0`` >= upper: a draw from its conditional
        density S0(u) a01(u) S12(u -> t0) on (lower, upper] (``upper`` itself when the two
        coincide: a progression date known exactly). Only the clock-reset scale needs it;
        on the clock-forward scale the death hazard does not depend on u."""
        out = np.asarray(upper, float).copy()
        wide = upper > lower
        if wide.any():
            nodes, dens = self._progression_density(params, [x[wide] for x in etas],
                                                    lower[wide], upper[wide], t0[wide])
            out[wide] = self._draw_node(nodes, dens, rng)
        return out

    @staticmethod
    def _etas(coef, arm, site, X):
        """Each transition's linear predictor of the patients (arm, site index, standardized
        covariates X) on one draw: ``coef`` = (log HRs (3,), site effects (3, sites),
        covariate coefficients (3, columns))."""
        log_hr, site_eff, beta = coef
        return [log_hr[j] * arm + site_eff[j][site] + X @ beta[j] for j in range(3)]

    def simulate(self, s: int, rng: np.random.Generator) -> dict:
        """Absolute days (since the first randomization) of entry, the endpoint's event
        (the day it is known) and censoring of every patient of the completed trial, from
        posterior draw ``s``; for PFS also the scan before a progression (``lower``) and the
        last scan done (``last_scan``)."""
        params, log_hr, site_eff = self.fit.draw_params(int(s))
        coef = (log_hr, site_eff, self.fit.draw_betas(int(s)))
        if self.scanned:
            return self._simulate_scanned(params, coef, rng)
        n0 = len(self.entry)
        day = self.days
        death = np.where(self.event, self.entry + self.obs, np.inf)
        censor = np.where(self.event | self.at_risk, np.inf, self.entry + self.obs)
        rate = -np.log1p(-self.prediction.dropout_per_year) / 365.25
        idx = np.flatnonzero(self.at_risk)
        if len(idx):
            t0 = self.obs[idx] / day  # time unit
            etas = self._etas(coef, self.arm[idx], self.site[idx], self.X[idx])
            seen = np.isfinite(self.prog_upper[idx])
            t_death = np.empty(len(idx))
            if seen.any():
                u = self.prog_upper[idx][seen]
                if not self.markov:  # time since progression matters: when, given alive
                    u = self._seen_progression(params, [x[seen] for x in etas],
                                               self.prog_lower[idx][seen], u, t0[seen], rng)
                t_death[seen] = self._after_progression(params, etas[2][seen], u, t0[seen],
                                                        rng)
            free = ~seen
            if free.any():
                _, t_death[free] = self._state_paths(params, [x[free] for x in etas],
                                                     self.prog_lower[idx][free], t0[free], rng)
            death[idx] = self._death_day_and_dropout(idx, t_death, censor, rate, rng)
        arm, site, entry, rows = self.arm, self.site, self.entry, np.arange(n0)
        if self.n_new:
            new_entry, new_site, new_arm = self._accrue(rng)
            new_rows = self._new_rows(new_site, rng)
            etas = self._etas(coef, new_arm, new_site, self.X[new_rows])
            _, t_new = self._from_state0(params, etas, np.zeros(self.n_new), rng)
            new_death = new_entry + np.maximum(np.ceil(t_new * day), 1.0)
            new_cens = self._lost(new_entry, rate, rng)
            arm, site = np.r_[arm, new_arm], np.r_[site, new_site]
            entry, rows = np.r_[entry, new_entry], np.r_[rows, new_rows]
            death, censor = np.r_[death, new_death], np.r_[censor, new_cens]
        nan = np.full(len(entry), np.nan)
        return {"entry": entry, "death": death, "censor": censor, "arm": arm, "site": site,
                "lower": nan, "last_scan": nan, "n_current": n0, "covariate_row": rows}

    def _death_day_and_dropout(self, idx, t_death, censor, rate, rng):
        """Absolute death day of the patients ``idx`` still followed (whole days, after
        their last day known alive), and their loss to follow-up written into ``censor``
        (random numbers in the order earlier versions drew them)."""
        day = self.entry[idx] + np.maximum(np.ceil(t_death * self.days),
                                           np.floor(self.obs[idx]) + 1)
        if rate > 0:
            censor[idx] = self.entry[idx] + self.obs[idx] + np.ceil(
                rng.exponential(1 / rate, len(idx)))
        return day

    def _state_paths(self, params, etas, lower, t0, rng):
        """(progression time or inf, death time) in the time unit, of patients alive and
        progression-free at their last scan ``lower``, last seen alive at ``t0``: an
        unseen progression between, or the competing transitions from ``t0``."""
        unseen = self._unseen_progression(params, etas, lower, t0, rng)
        went = np.isfinite(unseen)
        prog, death = unseen.copy(), np.empty(len(t0))
        if went.any():
            death[went] = self._after_progression(params, etas[2][went], unseen[went],
                                                  t0[went], rng)
        if (~went).any():
            stay = [x[~went] for x in etas]
            prog[~went], death[~went] = self._from_state0(params, stay, t0[~went], rng)
        return prog, death

    def _scans_seen(self, entry, prog, death_day, censor, last_scan):
        """PFS or TTP as recorded from latent paths (absolute days): (day the event is
        known, the scan before a progression or the death day, last scan done). A death
        before a progression is seen is a PFS event; it ends TTP's follow-up (censored at
        the last scan done)."""
        prog_day = entry + np.where(np.isfinite(prog), np.ceil(prog * self.days), np.inf)
        end = np.minimum(censor, death_day)  # scans only while alive and followed
        seen, before, last_done = self._seen_at_scans(prog_day, last_scan, end)
        dead = ~np.isfinite(seen) & (death_day <= censor) & (self.endpoint == "pfs")
        known = np.where(np.isfinite(seen), seen, np.where(dead, death_day, np.inf))
        lower = np.where(np.isfinite(seen), before, np.where(dead, death_day, np.nan))
        return known, lower, last_done

    def _simulate_scanned(self, params, coef, rng) -> dict:
        n0 = len(self.entry)
        day = self.days
        done = self.scan_event
        event = np.where(done, self.entry + self.scan_time, np.inf)
        lower = np.where(done, self.entry + self.scan_lower, np.nan)
        risk = self.scan_at_risk
        censor = np.where(done | risk, np.inf, self.entry + self.scan_time)
        last_scan = self.entry + self.scan_time  # censored: their last progression-free scan
        rate = -np.log1p(-self.prediction.dropout_per_year) / 365.25
        idx = np.flatnonzero(risk)
        if len(idx):
            t0 = self.obs[idx] / day
            etas = self._etas(coef, self.arm[idx], self.site[idx], self.X[idx])
            prog, t_death = self._state_paths(params, etas, self.prog_lower[idx], t0, rng)
            death_day = self._death_day_and_dropout(idx, t_death, censor, rate, rng)
            scan0 = self.entry[idx] + self.prog_lower[idx] * day
            event[idx], lower[idx], last_scan[idx] = self._scans_seen(
                self.entry[idx], prog, death_day, censor[idx], scan0)
        arm, site, entry, rows = self.arm, self.site, self.entry, np.arange(n0)
        if self.n_new:
            new_entry, new_site, new_arm = self._accrue(rng)
            new_rows = self._new_rows(new_site, rng)
            etas = self._etas(coef, new_arm, new_site, self.X[new_rows])
            prog, t_new = self._from_state0(params, etas, np.zeros(self.n_new), rng)
            death_day = new_entry + np.maximum(np.ceil(t_new * day), 1.0)
            new_cens = self._lost(new_entry, rate, rng)
            new_event, new_lower, new_last = self._scans_seen(new_entry, prog, death_day,
                                                              new_cens, new_entry)
            arm, site = np.r_[arm, new_arm], np.r_[site, new_site]
            entry, rows = np.r_[entry, new_entry], np.r_[rows, new_rows]
            event, censor = np.r_[event, new_event], np.r_[censor, new_cens]
            lower, last_scan = np.r_[lower, new_lower], np.r_[last_scan, new_last]
        return {"entry": entry, "death": event, "censor": censor, "arm": arm, "site": site,
                "lower": lower, "last_scan": last_scan, "n_current": n0,
                "covariate_row": rows}
