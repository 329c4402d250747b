"""Piecewise-exponential baseline: constant hazard exp(alpha_j) on each interval."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from bayes_hcc.data.trial import INTERVAL, LEFT
from bayes_hcc.errors import ModelError
from bayes_hcc.families.base import Family, centred_intercept, log_hr_prior, log_rate_prior

BASELINE_PRIORS = ("rw1", "independent")


def exposure_matrix(time: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Time at risk of each patient in each interval [edges[j], edges[j+1]), shape (n, J)."""
    return np.clip(np.asarray(time, float)[:, None] - edges[:-1], 0.0, np.diff(edges))


def interval_index(time: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Interval holding each time (an event at a cut point belongs to the earlier interval:
    exposure in the later interval is then zero)."""
    return np.searchsorted(cuts, np.asarray(time, float), side="left")


def quantile_cuts(time, event, n_intervals: int, time_unit: str = "months") -> tuple[float, ...]:
    """Cut points at the j / n_intervals quantiles of the observed event times (j = 1..n-1),
    so each interval holds about the same number of events; rounded to 0.01 month (in
    months, whatever the data's unit, so the same trial in another unit gets the same cuts)
    and de-duplicated."""
    from bayes_hcc.units import convert

    t = np.asarray(time, float)[np.asarray(event) == 1]
    if n_intervals < 1:
        raise ModelError("n_intervals must be at least 1.")
    if len(t) < n_intervals:
        raise ModelError(f"n_intervals={n_intervals} but only {len(t)} events: choose fewer "
                         "intervals or give cuts explicitly.")
    q = convert(np.quantile(t, np.arange(1, n_intervals) / n_intervals), time_unit, "months")
    q = np.unique(np.round(q, 2))
    return tuple(float(convert(c, "months", time_unit)) for c in q if c > 0)


def _check_cuts_against_data(cuts, time, event, time_unit: str) -> None:
    """Warn when given cut points leave (almost) every event in one interval: every cut at
    or beyond the longest follow-up, or at least 95% of the events after the last cut. The
    baseline hazard is then constant over (nearly) all the data, the other intervals'
    hazards coming from the prior; usually the cuts were written in another unit than the
    data's (days as months, months as days)."""
    from bayes_hcc.errors import DataWarning, warn

    events = time[event == 1]
    where = None
    if cuts[0] >= time.max():
        where = f"lie at or beyond the longest follow-up ({time.max():.4g} {time_unit})"
    elif len(events) and np.mean(events > cuts[-1]) >= 0.95:
        where = (f"lie before {np.mean(events > cuts[-1]):.0%} of the event times (the first "
                 f"at {events.min():.4g} {time_unit})")
    if where:
        shown = ", ".join(f"{c:g}" for c in cuts)
        warn(f"cuts [{shown}] ({time_unit}, the data's unit) all {where}: the events fall "
             "in one interval, so the baseline hazard is constant over the data and the "
             "other intervals' hazards come from the prior. If the cuts are in another unit, "
             "convert them to the data's; n_intervals= cuts at quantiles of the event times.",
             DataWarning)


class PiecewiseFamily(Family):
    """Piecewise-constant baseline hazard with cut points ``cuts`` (edges 0, cuts..., inf).

    ``log_baseline_hazard`` (interval) has a first-order random-walk prior by default:
    alpha_1 ~ prior, alpha_j = alpha_{j-1} + rw_sd * z_j, z_j ~ N(0, 1), with a fixed
    smoothing scale ``rw_sd`` (default 0.3: neighbouring intervals' hazards within a factor
    1.8 of each other with 95% probability, a factor 3.3 at 4 SDs, so real changes are
    followed while noise is smoothed); ``"independent"`` gives each interval the prior.

    With ``time_varying_hr=True`` the log HR differs by interval: log_hr + dev_j, where dev
    is a random walk with step SD ``tv_sd`` (default 0.2) centred to mean zero, so
    ``log_hr`` is the average log HR over the intervals and ``log_hr_interval`` the
    per-interval values (a proportional-hazards check).
    """

    key = name = "piecewise_exponential"
    label, cli_name = "piecewise exponential", "pwe"
    model_name = "PiecewiseExponential"
    positional = ("cuts",)
    model_doc = """Piecewise-exponential proportional-hazards model.

    Parameters
    ----------
    cuts : sequence of float, optional
        Interval cut points in the data's time unit.
    n_intervals : int, optional
        Instead of ``cuts``: that many intervals, cut at the quantiles j / n_intervals of
        the observed event times (each interval holds about the same number of events).
        Default when neither is given: 6 intervals.
    baseline_prior : {"rw1", "independent"}, default "rw1"
        First-order random walk on the log baseline hazards (smoothing), or independent.
    rw_sd : float, default 0.3
        Step SD of the random walk (fixed smoothing scale, log hazard per interval).
    time_varying_hr : bool, default False
        A log HR per interval (random walk, step SD ``tv_sd``, centred so that ``log_hr`` is
        the average): the proportional-hazards check. ``hazard_ratio`` then returns the
        average HR; ``bh.plot_time_varying_hr`` shows the HR per interval.
    site_effect, arm_by_site, covariates, priors, site_parametrization
        As for :class:`WeibullPH`.
    """
    options = {"cuts": "cuts", "n_intervals": "int", "baseline_prior": BASELINE_PRIORS,
               "rw_sd": "positive", "time_varying_hr": "bool", "tv_sd": "positive"}
    exclusive_options = (("cuts", "n_intervals"),)
    params = ("log_baseline_hazard",)
    constant_between_breakpoints = True  # no graded quadrature (illness-death)
    param_dims = {"log_baseline_hazard": ("interval",)}
    aggregates = True  # events and exposure per cell and interval (exact; data_arrays)
    # only the sufficient statistics depend on the cuts; the step SDs are data too (like the
    # priors' parameters), so a sensitivity analysis of either compiles once
    data_settings = ("cuts", "rw_sd", "tv_sd")

    def __init__(self, cuts, baseline_prior: str = "rw1", rw_sd: float = 0.3,
                 time_varying_hr: bool = False, tv_sd: float = 0.2):
        cuts = np.asarray(cuts, float)
        if cuts.ndim != 1 or np.any(cuts <= 0) or np.any(np.diff(cuts) <= 0):
            raise ModelError(f"cuts must be increasing positive times, got {list(cuts)}.")
        if baseline_prior not in BASELINE_PRIORS:
            raise ModelError(f"baseline_prior={baseline_prior!r}; choose one of "
                             f"{', '.join(BASELINE_PRIORS)}.")
        if not rw_sd > 0:
            raise ModelError(f"rw_sd={rw_sd} must be > 0.")
        self.cuts = cuts
        self.baseline_prior = baseline_prior
        self.rw_sd = float(rw_sd)
        if time_varying_hr and len(cuts) < 1:
            raise ModelError("time_varying_hr=True needs at least two intervals (one cut).")
        if not tv_sd > 0:
            raise ModelError(f"tv_sd={tv_sd} must be > 0.")
        self.time_varying_hr = bool(time_varying_hr)
        self.tv_sd = float(tv_sd)
        self.edges = np.concatenate([[0.0], cuts, [np.inf]])

    @property
    def n_intervals(self) -> int:
        return len(self.cuts) + 1

    @classmethod
    def for_data(cls, time, event, time_unit="months", *, cuts=None, n_intervals=None,
                 baseline_prior="rw1", rw_sd=0.3, time_varying_hr=False, tv_sd=0.2):
        """Cuts as given, or at quantiles of the event times (``n_intervals``, default 6)."""
        if cuts is None:
            n = n_intervals or 6
            cuts = tuple(range(1, n)) if time is None else \
                quantile_cuts(time, event, n, time_unit)  # no data: a placeholder layout
        elif time is not None and len(cuts) and len(time):
            _check_cuts_against_data(np.asarray(cuts, float), np.asarray(time, float),
                                     np.asarray(event), time_unit)
        return cls(cuts, baseline_prior, rw_sd, time_varying_hr, tv_sd)

    @classmethod
    def unused_options(cls, options):
        out = {}
        if "tv_sd" in options and not options.get("time_varying_hr", False):
            out["tv_sd"] = ("a time-varying HR's step SD, unused while time_varying_hr is "
                            "false: set time_varying_hr = true, or leave tv_sd out")
        rw = options.get("baseline_prior", "rw1")
        if "rw_sd" in options and rw != "rw1":
            out["rw_sd"] = (f"the rw1 baseline's step SD, unused while baseline_prior is "
                            f"{rw!r}: set baseline_prior = \"rw1\", or leave rw_sd out")
        return out

    @classmethod
    def depends_on_data(cls, options):
        return "cuts" not in options

    @classmethod
    def events_needed(cls, options):
        if "cuts" in options:
            return super().events_needed(options)
        n = options.get("n_intervals") or 6
        return n, (f"its {n} intervals are cut at quantiles of the event times (options."
                   f"n_intervals = {n}{'' if 'n_intervals' in options else ', the default'}): "
                   "lower n_intervals or give options.cuts")

    @classmethod
    def calibration_options(cls):
        return {"cuts": [3.0, 6.0, 12.0]}

    @classmethod
    def from_settings(cls, s):
        return cls(s["cuts"], s.get("baseline_prior", "rw1"), s.get("rw_sd", 0.3),
                   s.get("time_varying_hr", False), s.get("tv_sd", 0.2))

    def settings(self):
        return {"name": self.name, "cuts": self.cuts.tolist(),
                "baseline_prior": self.baseline_prior, "rw_sd": self.rw_sd,
                "time_varying_hr": self.time_varying_hr, "tv_sd": self.tv_sd}

    def params_for_arm(self, params, arm):
        """With a time-varying HR the treatment arm's log hazard in interval j is
        alpha_j + log_hr + log_hr_dev_j (log_hr enters through eta)."""
        if not self.time_varying_hr or not arm:
            return params
        return {**params, "log_baseline_hazard": self._alpha(params) + params["log_hr_dev"]}

    @classmethod
    def default_priors(cls):
        return {"log_hr": log_hr_prior(),
                "log_baseline_hazard": log_rate_prior()}

    def check_prior(self, name, prior):
        if getattr(prior, "dist", "") != "IntervalMixture":
            return None
        if name != "log_baseline_hazard" or self.baseline_prior != "independent":
            return (f"priors[{name!r}] gives one distribution per interval; only "
                    "log_baseline_hazard with baseline_prior='independent' takes that.")
        if prior.n_elements != self.n_intervals:
            return (f"priors['log_baseline_hazard'] has {prior.n_elements} intervals; these "
                    f"cuts {list(self.cuts)} make {self.n_intervals}: build the prior on the "
                    "model's cuts.")
        return None

    def unit_shift(self, params, log_unit):
        # a rate per unit = rate per month x the unit's length in months
        return {"log_baseline_hazard": log_unit}

    def breakpoints(self):
        return self.cuts

    def _alpha(self, params):
        return np.asarray(params["log_baseline_hazard"], float)  # (S, J)

    def draw_prior(self, priors, size, rng):
        first = priors["log_baseline_hazard"].scipy()
        J = self.n_intervals
        if self.baseline_prior == "rw1":
            a1 = np.asarray(first.rvs(size=size, random_state=rng), float)
            steps = self.rw_sd * rng.standard_normal((size, J - 1))
            alpha = np.column_stack([a1, a1[:, None] + np.cumsum(steps, axis=1)])
        else:
            alpha = np.asarray(first.rvs(size=(size, J), random_state=rng), float)
        return {"log_baseline_hazard": alpha}

    def draw_effect_deviations(self, size, rng):
        # as build: a random walk of step SD tv_sd from 0, centred to mean zero
        if not self.time_varying_hr:
            return {}
        steps = self.tv_sd * rng.standard_normal((size, self.n_intervals - 1))
        walk = np.column_stack([np.zeros(size), np.cumsum(steps, axis=1)])
        return {"log_hr_dev": walk - walk.mean(axis=1, keepdims=True)}

    def log_prior(self, post, priors, shifts):
        from scipy import stats

        p, shift = priors["log_baseline_hazard"], shifts.get("log_baseline_hazard", 0.0)
        out = {}
        if "log_baseline_hazard_1" in post:  # random walk: the first level and the steps
            out["log_baseline_hazard_1"] = p.logpdf(post["log_baseline_hazard_1"] - shift)
        else:
            v = p.logpdf(post["log_baseline_hazard"] - shift)
            out["log_baseline_hazard"] = v.reshape(v.shape[0], -1).sum(axis=1)
        for z in ("rw_z", "tv_z"):
            if z in post:
                out[z] = stats.norm.logpdf(post[z]).reshape(post[z].shape[0], -1).sum(axis=1)
        return out

    def derived(self, post):
        # time-varying HR: the log HR in each interval
        if "log_hr_dev" not in post:
            return {}
        return {"log_hr_interval": post["log_hr"] + post["log_hr_dev"]}

    def sizes(self):
        return {"n_intervals": self.n_intervals}

    def coords(self):
        e = self.edges
        return {"interval": [f"[{e[j]:g}, {e[j + 1]:g})" for j in range(self.n_intervals)]}

    def constant_data(self):
        return {"cuts": ("cut", self.cuts)}

    def time_at_cumhaz(self, params, h, eta):
        return self.inverse_cumhaz(params, np.asarray(h, float) * np.exp(-np.asarray(eta)))

    @classmethod
    def example(cls):
        return cls((2.0, 6.0, 12.0))

    def example_params(self):
        return {"log_baseline_hazard": np.array([[-2.0, -2.6, -1.8, -2.3]])}

    def time_features(self, t):
        """The interval holding each time (one-hot; an event at a cut point belongs to the
        earlier interval, as in ``interval_index``) and the exposure in every interval."""
        t = np.asarray(t, float)
        onehot = np.zeros((len(t), self.n_intervals))
        onehot[np.arange(len(t)), interval_index(t, self.cuts)] = 1.0
        return {"onehot": onehot, "exposure": exposure_matrix(t, self.edges)}

    # Both as a matrix product (n, J) @ B + (J, 1): one BLAS call per batch, not a
    # (draws x patients x intervals) temporary.
    def log_hazard_x(self, xp, params, tf, eta):
        alpha = params["log_baseline_hazard"][..., :, None]  # B + (J, 1)
        return (tf["onehot"] @ alpha)[..., 0] + eta

    def cumhaz_x(self, xp, params, tf, eta):
        rate = xp.exp(params["log_baseline_hazard"])[..., :, None]  # B + (J, 1)
        return (tf["exposure"] @ rate)[..., 0] * xp.exp(eta)

    def inverse_cumhaz(self, params, h):
        rate = np.exp(self._alpha(params))  # (S, J)
        widths = np.diff(self.edges)[:-1]
        cum = np.concatenate([np.zeros((rate.shape[0], 1)),
                              np.cumsum(rate[:, :-1] * widths, axis=1)], axis=1)  # (S, J)
        h = np.asarray(h, float)
        # interval of each target: last j with cum[:, j] <= h
        j = (cum[:, None, :] <= h[:, :, None]).sum(axis=2) - 1  # (S, G)
        c = np.take_along_axis(cum, j, axis=1)
        r = np.take_along_axis(rate, j, axis=1)
        return self.edges[j] + (h - c) / r

    def data_arrays(self, time, event, unit_index, n_units, upper=None):
        """Sufficient statistics: events and exposure per unit (cell) and interval.

        ``unit_index`` maps each patient to its unit: a cell (arm x site) when there are
        no patient-level covariates, or the patient itself. Exact: the Poisson-form
        likelihood sum_j D_uj log h_uj - E_uj h_uj equals the patient-level one.

        With ``upper`` (``event`` then holds observation kinds), interval- and
        left-censored patients have no sufficient statistic: they keep per-patient terms
        log(S(L) - S(R)), from their unit and their exposures up to L and R (``ic_*``);
        the exact and right-censored patients keep the cell sums (a hybrid; exact).
        """
        time, event, unit_index = (np.asarray(time, float), np.asarray(event, float),
                                   np.asarray(unit_index))
        ic = {}
        if upper is not None:
            bounded = np.isin(event, (INTERVAL, LEFT))
            ic = {"ic_unit": unit_index[bounded].astype(np.int64),
                  "ic_exposure_lower": exposure_matrix(np.where(event[bounded] == LEFT, 0.0,
                                                                time[bounded]), self.edges),
                  "ic_exposure_upper": exposure_matrix(np.asarray(upper, float)[bounded],
                                                       self.edges)}
            time, event, unit_index = time[~bounded], event[~bounded], unit_index[~bounded]
        expo = exposure_matrix(time, self.edges)
        j = interval_index(time, self.cuts)
        ev = np.zeros_like(expo)
        ev[np.arange(len(time)), j] = event
        D = np.zeros((n_units, self.n_intervals))
        E = np.zeros((n_units, self.n_intervals))
        np.add.at(D, unit_index, ev)
        np.add.at(E, unit_index, expo)
        out = {"events": D, "exposure": E, **ic}
        if self.baseline_prior == "rw1":
            # Share w_j of the events in each interval, as the weight of each random-walk
            # step in the event-weighted mean of the walk (see build):
            # sum_j w_j walk_j = sum_i steps_i * rw_sd * sum_{j > i} w_j.
            per_interval = D.sum(axis=0)
            w = per_interval / per_interval.sum() if per_interval.sum() > 0 else \
                np.full(self.n_intervals, 1.0 / self.n_intervals)
            out["walk_weight"] = self.rw_sd * np.cumsum(w[::-1])[::-1][1:]
            out["rw_sd"] = np.asarray(self.rw_sd)
        if self.time_varying_hr:
            out["tv_sd"] = np.asarray(self.tv_sd)
        return out

    def build_params(self, priors, data, dims, offset=0.0):
        """The interval log hazards: a random walk from the first (``rw1``, its step
        weights ``data["walk_weight"]``) or independent intervals."""
        first = priors["log_baseline_hazard"]
        shift = self.unit_shift({}, data["log_unit"])["log_baseline_hazard"]
        if self.baseline_prior == "rw1":
            # Non-centred steps of fixed scale rw_sd (a hierarchical scale put mass near 0,
            # where the example trial's nearly constant hazard leads, and diverged there).
            steps = pm.Normal("rw_z", 0.0, 1.0, shape=self.n_intervals - 1)
            walk = pt.concatenate([pt.zeros(1), pt.cumsum(data["rw_sd"] * steps)])
            # alpha_j = alpha_1 + walk_j. alpha_1 is sampled at the event-weighted mean log
            # hazard, alpha_1 + sum_j w_j walk_j (+ offset), which the data pin down best
            # (exact change of coordinates: centred_intercept).
            a1 = centred_intercept(first, "log_baseline_hazard_1",
                                   offset + (data["walk_weight"] * steps).sum(), shift)
            alpha = pm.Deterministic("log_baseline_hazard", a1 + walk, dims="interval")
        else:
            alpha = centred_intercept(first, "log_baseline_hazard", offset, shift,
                                      dims="interval")
        return {"log_baseline_hazard": alpha}

    def build(self, priors, data, eta, dims, offset=0.0, strata=None):
        alpha = self.build_params(priors, data, dims, offset)["log_baseline_hazard"]
        if strata is None:
            log_rate = alpha[None, :] + eta[:, None]  # (unit, interval)
        else:
            # a baseline per stratum: each unit (an arm x site x stratum cell, or a patient)
            # with its stratum's interval log hazards
            per = pt.stack([p["log_baseline_hazard"]
                            for p in strata({"log_baseline_hazard": alpha})])
            log_rate = per[data["stratum_idx"]] + eta[:, None]
        if self.time_varying_hr:
            # log HR per interval = log_hr + dev_j, dev a random walk (step SD tv_sd) centred
            # to mean zero: log_hr is then the average log HR over the intervals.
            z = pm.Normal("tv_z", 0.0, 1.0, shape=self.n_intervals - 1)
            walk = pt.concatenate([pt.zeros(1), pt.cumsum(data["tv_sd"] * z)])
            dev = pm.Deterministic("log_hr_dev", walk - walk.mean(), dims="interval")
            log_rate = log_rate + data["arm"][:, None] * dev[None, :]
        ll = (data["events"] * log_rate - data["exposure"] * pt.exp(log_rate)).sum()
        if "ic_unit" in data:  # interval-censored patients: log(S(L) - S(R)) each
            from bayes_hcc.models.likelihood import interval_term

            rate = pt.exp(log_rate)[data["ic_unit"]]  # (patient, interval)
            H_lower = (data["ic_exposure_lower"] * rate).sum(axis=1)
            H_upper = (data["ic_exposure_upper"] * rate).sum(axis=1)
            ll = ll + interval_term(pt, H_lower, H_upper).sum()
        return ll
