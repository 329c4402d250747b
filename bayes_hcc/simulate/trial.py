"""simulate_trial: whole trials with a known truth, in the dates layout."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize

from bayes_hcc.data._build import LPF_COLUMN, arm_label
from bayes_hcc.data._checks import calendar_date
from bayes_hcc.data.assessments import first_positive_last_negative
from bayes_hcc.data.trial import TrialData
from bayes_hcc.errors import BayesHCCError, TrialDataError, bool_flags, refuse_ignored
from bayes_hcc.units import DAYS_PER_UNIT
from bayes_hcc.simulate.hazards import PiecewiseHazard, WeibullHazard
from bayes_hcc.spec.sampler import check_seed

__all__ = ["simulate_trial", "SimulationTruth", "WeibullHazard", "PiecewiseHazard"]

DAYS = DAYS_PER_UNIT["months"]


@dataclass(frozen=True)
class SimulationTruth:
    """What generated a simulated trial.

    ``hr`` and ``median`` are for a typical site (site effect 0); ``median_population``
    integrates over the site-effect distribution (a new site). A median is inf when the
    survival curve never falls to 1/2 (a cure fraction of half or more). ``hr["pfs"]`` is None when
    PFS is not proportional-hazards (different OS and TTP hazard shapes), ``hr["os"]`` when
    OS is not (a death hazard changed by progression: ``post_progression_hr``).
    """

    hr: dict
    median: dict
    median_population: dict
    site_effects: dict
    params: dict = field(repr=False)
    #: the illness-death model's transition HRs (progression, death without and after
    #: progression: ``bh.IllnessDeath``, clock forward) for a typical site
    transition_hr: dict = field(default_factory=dict)


def _pfs_hr(os_h, ttp_h, hr_os, hr_ttp):
    grid = np.linspace(0.1, 60, 200)
    h_c = os_h.hazard(grid) + ttp_h.hazard(grid)
    ratio = (hr_os * os_h.hazard(grid) + hr_ttp * ttp_h.hazard(grid)) / h_c
    return float(ratio[0]) if np.ptp(ratio) < 1e-9 else None


def _median(cumhaz, frailties=None, weights=None):
    """Median of S(t) = mean_k w_k exp(-exp(b_k) H(t)) (one point mass by default)."""
    b = np.zeros(1) if frailties is None else np.asarray(frailties)
    w = np.ones(1) if weights is None else np.asarray(weights)

    def f(t):
        return float(w @ np.exp(-np.exp(b) * cumhaz(t))) - 0.5

    return _root(f, 1e-9, 1e4, xtol=1e-12)


#: months: a survival curve still above 1/2 here has no median (a cure fraction)
NO_MEDIAN_BEYOND = 1e8
DECADES = 10.0 ** np.arange(-2, 9)


def _root(f, lo, hi, *, xtol):
    """Where the decreasing f = S - 1/2 crosses 0: in (lo, hi] or, when S is still above
    1/2 at hi, further out (hi x 10 at a time, up to ``NO_MEDIAN_BEYOND`` months); inf when
    S never falls to 1/2 (a cure fraction of at least half: a Gompertz hazard with gamma <
    0). scipy's root finder failed with "f(a) and f(b) must have different signs"."""
    while f(hi) > 0:
        if hi >= NO_MEDIAN_BEYOND:
            return float("inf")
        lo, hi = hi, hi * 10
    return float(optimize.brentq(f, lo, hi, xtol=xtol))


def _illness_death_os_median(os_h, ttp_h, hr_os, hr_ttp, rho, frailties=None, weights=None):
    """Median OS of the Markov illness-death model a01 = hr_ttp ttp_h, a02 = hr_os os_h,
    a12 = rho hr_os os_h (each times exp(b)), averaged over frailties b with weights:
    OS(t) = S0(t) + int_0^t S0(u) a01(u) exp(-rho hr_os (H_D(t) - H_D(u))) du.

    The truth of every simulated trial with ``post_progression_hr``, so it is computed once
    per set of arguments (``_cached_os_median``) when the hazards compare by value."""
    b = () if frailties is None else tuple(np.asarray(frailties, float).tolist())
    w = () if weights is None else tuple(np.asarray(weights, float).tolist())
    key = (os_h, ttp_h, float(hr_os), float(hr_ttp), float(rho), b, w)
    # other hazards compare by identity (and may change), and a hazard holding a list or an
    # array cannot be a key: those are computed every time
    by_value = all(isinstance(h, (WeibullHazard, PiecewiseHazard)) for h in (os_h, ttp_h))
    return (_cached_os_median if by_value and _hashable(key) else _os_median)(*key)


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _os_median(os_h, ttp_h, hr_os, hr_ttp, rho, b, w):
    """``_illness_death_os_median`` with the frailties b and weights w as tuples (() for one
    point mass at 0). The integral is scipy's adaptive quadrature: ``quad`` for one point
    mass, ``quad_vec`` over the frailties at once otherwise (one integration per time
    instead of one per frailty: 40 nodes took 1-29 s per median, now 0.1-1.3 s)."""
    from scipy import integrate

    m = np.exp(np.asarray(b or (0.0,), float))
    w = np.asarray(w or (1.0,), float)
    point = len(m) == 1
    # where a hazard jumps or bends (a piecewise baseline's cuts): quadrature without them
    # put a piecewise truth's median 1.4e-6 (relative) off
    breaks = np.unique(np.concatenate([_breaks(os_h), _breaks(ttp_h)]))

    def os_at(t):
        hd_t = os_h.cumhaz(t)

        def f(u):
            return (np.exp(-m * (hr_ttp * ttp_h.cumhaz(u) + hr_os * os_h.cumhaz(u)
                                 + rho * hr_os * (hd_t - os_h.cumhaz(u))))
                    * m * hr_ttp * ttp_h.hazard(u))

        s0 = np.exp(-m * (hr_ttp * ttp_h.cumhaz(t) + hr_os * hd_t))
        # and every power of 10 months: progressions happen early, and over a long range
        # (a median looked for far out) the adaptive quadrature missed them (a cure model's
        # OS, never reaching 1/2, got a median of 72,899 months)
        inside = np.concatenate([breaks, DECADES])
        inside = np.unique(inside[(inside > 0) & (inside < t)])
        if point:
            return s0 + integrate.quad(lambda u: float(f(u)[0]), 0.0, t, limit=200,
                                       epsabs=1e-13, points=inside if len(inside) else None)[0]
        return s0 + integrate.quad_vec(f, 0.0, t, limit=200, epsabs=1e-13, epsrel=1e-10,
                                       points=inside if len(inside) else None)[0]

    return _root(lambda t: float(w @ os_at(t)) - 0.5, 1e-6, 1e3, xtol=1e-10)


def _breaks(hazard) -> np.ndarray:
    """Times where a simulation hazard is not smooth: a PiecewiseHazard's cuts, a
    FamilyHazard's family breakpoints (none for a Weibull hazard)."""
    if isinstance(hazard, PiecewiseHazard):
        return np.asarray(hazard.cuts, float)
    family = getattr(hazard, "family", None)
    return np.asarray(family.breakpoints() if family is not None else [], float).ravel()


_cached_os_median = functools.lru_cache(maxsize=64)(_os_median)


def _site_sizes(n, sites, site_sizes, rng):
    if site_sizes is not None:
        try:
            raw = np.asarray(site_sizes, float)
        except (TypeError, ValueError):  # a dict, text...
            raw = np.array([np.nan])
        if raw.ndim != 1 or not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
            raise BayesHCCError(f"simulate_trial: site_sizes={site_sizes!r} must be a list of "
                                "whole numbers, one per site in the order of sites= (e.g. "
                                "sites=['A', 'B'], site_sizes=[70, 60]).")
        sizes = raw.astype(int)
        if sizes.ndim != 1 or len(sizes) != len(sites) or sizes.sum() != n or \
                np.any(sizes < 1):
            raise BayesHCCError(f"simulate_trial: site_sizes={np.ravel(sizes).tolist()} must give "
                                f"one positive size per site ({len(sites)}) adding up to "
                                f"n_patients={n}.")
        return sizes
    # Unequal sizes, as in real multicentre trials: multinomial over Dirichlet weights,
    # at least one patient per site.
    k = len(sites)
    w = rng.dirichlet(np.full(k, 3.0))
    return 1 + rng.multinomial(n - k, w)


@bool_flags
def simulate_trial(
    n_patients: int = 130,
    *,
    sites=6,
    site_sizes=None,
    accrual_start="2017-06-01",
    accrual_end="2019-05-31",
    cut_date="2020-02-28",
    os_hazard=WeibullHazard(median=6.5, shape=1.2),
    ttp_hazard=WeibullHazard(median=3.0, shape=1.2),
    hr_os: float = 0.70,
    hr_ttp: float = 0.67,
    post_progression_hr: float = 1.0,
    site_sd: float = 0.2,
    dropout_per_year: float = 0.05,
    assessment_interval: float | dict | None = 2.0,
    assessment_offset: float | dict = 0.0,
    assessment_jitter_days: float = 0.0,
    missed_visit_prob: float = 0.0,
    record_assessments: bool = True,
    control: str = "sorafenib",
    treatment: str = "tace_sorafenib",
    id_prefix: str = "SIM",
    random_seed=None,
) -> TrialData:
    """Simulate a randomized two-arm trial with a known truth.

    Progression and death are generated jointly from two latent proportional-hazards
    times: a time to progression ``T_P`` (``ttp_hazard``, ratio ``hr_ttp``) and a time to
    death ``T_D`` (``os_hazard``, ratio ``hr_os``), independent given arm and site, each
    multiplied by the site's frailty ``exp(b_site)``, ``b_site ~ Normal(0, site_sd)``.
    OS = T_D; a progression is recorded at the first scheduled assessment (every
    ``assessment_interval`` months from randomization; ``None`` = observed exactly) on or
    after ``T_P``, if that is no later than death and last follow-up. So PFS <= OS always,
    TTP's cause-specific hazard is exactly ``hr_ttp``-proportional (before assessment
    discretisation) and, when both hazards are Weibull with the same shape, PFS is
    proportional-hazards too with HR = (r_D hr_os + r_P hr_ttp) / (r_D + r_P).

    ``post_progression_hr`` multiplies the death hazard from the (latent) progression on,
    on the clock-forward scale: the data then come from a Markov illness-death model with
    transition hazards a01 = ttp_hazard, a02 = os_hazard and a12 = post_progression_hr x
    os_hazard (each times the arm's HR, hr_ttp, hr_os, hr_os, and the frailty), as
    ``bh.IllnessDeath(time_scale="markov")`` parametrises it (``truth.transition_hr``). OS is
    then no longer proportional-hazards (``truth.hr["os"]`` is None) and its true medians
    come from the model's OS curve (numerical integration). With 1 (the default) the death
    time does not depend on progression, and the data are those of earlier versions.

    Patients are randomized 1:1 in permuted blocks of 4 within site, uniformly over the
    accrual period; loss to follow-up is exponential (``dropout_per_year`` is the
    probability of being lost within a year); the administrative cut is ``cut_date``.
    Dates are whole days (an event lands on the day it happens, at least one day after
    randomization).

    The assessment schedule: scans at ``offset + k * interval`` months (k = 1, 2, ...), each
    moved by a normal jitter of SD ``assessment_jitter_days`` days and missed with
    probability ``missed_visit_prob``; a scan happens only while the patient is alive and
    followed. ``assessment_interval`` and ``assessment_offset`` may be dicts by arm label
    (unequal schedules). With ``record_assessments`` (default) the trial carries the scans
    (``trial.assessments``): progression is then interval-censored between the last scan
    without it and the scan showing it (``read_trial``'s rules); without, the visit date is
    the progression date, as a trial recording only visit dates would have it. The jitter
    and missed visits draw random numbers after everything else, so the same seed gives
    the same patients, deaths and latent progressions whatever the schedule.

    Returns
    -------
    TrialData
        Dates layout, with ``.truth`` a :class:`SimulationTruth`. The same ``random_seed``
        gives identical data.
    """
    check_seed(random_seed, "simulate_trial", BayesHCCError)  # "1" failed inside numpy
    for name, hazard in (("os_hazard", os_hazard), ("ttp_hazard", ttp_hazard)):
        if not (hasattr(hazard, "cumhaz") and hasattr(hazard, "inverse_cumhaz")):
            raise BayesHCCError(f"simulate_trial: {name}={hazard!r} must be a hazard: "
                                "bh.WeibullHazard(median=6.5, shape=1.2), "
                                "bh.PiecewiseHazard(...) or bh.FamilyHazard(...) (a median "
                                "alone: WeibullHazard(median=m, shape=1), constant).")
    rng = np.random.default_rng(random_seed)
    # arm labels as data store them (integer codes 0/1 become "0"/"1"), so the patient
    # table, the truth's keys and the TrialData agree whatever type the caller used
    control, treatment = arm_label(control), arm_label(treatment)
    if isinstance(n_patients, bool) or not isinstance(n_patients, (int, np.integer)):
        raise BayesHCCError(f"simulate_trial: n_patients={n_patients!r}: give a whole number "
                            "of patients.")
    if n_patients < 2:
        raise BayesHCCError(f"simulate_trial: n_patients={n_patients}: a two-arm trial needs "
                            "at least 2 patients.")
    if isinstance(sites, (int, np.integer)) and not isinstance(sites, bool) and sites >= 1:
        site_labels = [f"site{i + 1:02d}" for i in range(int(sites))]
    elif isinstance(sites, (list, tuple, np.ndarray, pd.Index)) and len(sites) > 0:
        site_labels = [str(s) for s in sites]
    else:
        raise BayesHCCError(f"simulate_trial: sites={sites!r}: give the number of sites (at "
                            "least 1) or a list of their labels.")
    if len(set(site_labels)) != len(site_labels):
        raise BayesHCCError(f"simulate_trial: sites={sites!r}: each site needs its own label.")
    if site_sizes is None and len(site_labels) > n_patients:
        raise BayesHCCError(f"simulate_trial: {len(site_labels)} sites for {n_patients} "
                            "patients: every site needs at least one patient (fewer sites, "
                            "or more patients).")
    if str(control) == str(treatment):
        raise BayesHCCError(f"simulate_trial: control and treatment are both {control!r}; "
                            "give the two arms different labels.")
    for name, value in (("hr_os", hr_os), ("hr_ttp", hr_ttp),
                        ("post_progression_hr", post_progression_hr)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
                not (np.isfinite(value) and value > 0):
            raise BayesHCCError(f"simulate_trial: {name}={value!r} must be a hazard ratio, a "
                                "finite number > 0 (1: no effect).")
    if isinstance(site_sd, bool) or not isinstance(site_sd, (int, float, np.number)) or \
            not (np.isfinite(site_sd) and site_sd >= 0):
        raise BayesHCCError(f"simulate_trial: site_sd={site_sd!r} must be a finite number "
                            ">= 0 (the SD of the sites' log hazard ratios; 0: no site "
                            "effects).")
    if isinstance(dropout_per_year, bool) or not isinstance(
            dropout_per_year, (int, float, np.number)) or not (0 <= dropout_per_year < 1):
        raise BayesHCCError(f"simulate_trial: dropout_per_year={dropout_per_year!r} is the "
                            "probability of loss to follow-up within a year, in [0, 1).")
    start, end, cut = (calendar_date(x, name) for x, name in (
        (accrual_start, "accrual_start"), (accrual_end, "accrual_end"), (cut_date, "cut_date")))
    if not start <= end <= cut:
        raise BayesHCCError(f"simulate_trial: accrual_start ({start.date()}), accrual_end "
                            f"({end.date()}) and cut_date ({cut.date()}) must come in that "
                            "order.")
    sizes = _site_sizes(n_patients, site_labels, site_sizes, rng)
    b = rng.normal(0.0, site_sd, size=len(site_labels)) if site_sd > 0 \
        else np.zeros(len(site_labels))

    site_idx = np.repeat(np.arange(len(site_labels)), sizes)
    arm = np.empty(n_patients, np.int8)
    for s in range(len(site_labels)):
        idx = np.flatnonzero(site_idx == s)
        blocks = np.concatenate([rng.permutation([0, 0, 1, 1])
                                 for _ in range(-(-len(idx) // 4))])
        arm[idx] = blocks[: len(idx)]
    if len(set(arm.tolist())) < 2:
        raise TrialDataError(f"simulate_trial: all {n_patients} patients were randomized to "
                             f"{control if arm[0] == 0 else treatment!r}; a comparison needs "
                             "both arms (simulate more patients).")
    span_days = (end - start).days
    rand_day = rng.integers(0, span_days + 1, size=n_patients)
    order = np.argsort(rand_day, kind="stable")  # patient ids in order of randomization
    site_idx, arm, rand_day = site_idx[order], arm[order], np.sort(rand_day, kind="stable")

    frail = np.exp(b[site_idx])
    e_d, e_p = rng.exponential(size=n_patients), rng.exponential(size=n_patients)
    m_death = frail * np.where(arm == 1, hr_os, 1.0)
    t_death = os_hazard.inverse_cumhaz(e_d / m_death)
    t_prog = ttp_hazard.inverse_cumhaz(e_p / (frail * np.where(arm == 1, hr_ttp, 1.0)))
    if post_progression_hr != 1.0:
        # the death hazard is post_progression_hr times higher after t_prog: the same e_d
        # spent at the old rate up to t_prog and at the new rate after it
        h_prog = os_hazard.cumhaz(t_prog)
        after = e_d / m_death > h_prog
        residual = (e_d / m_death - h_prog) / post_progression_hr
        t_death = np.where(after, os_hazard.inverse_cumhaz(
            np.where(after, h_prog + residual, 0.0)), t_death)
    rate = -np.log1p(-dropout_per_year) / 12.0
    t_drop = rng.exponential(1 / rate, size=n_patients) if rate > 0 else np.full(n_patients,
                                                                                 np.inf)

    def to_days(t):
        return np.where(np.isfinite(t), np.maximum(1, np.ceil(t * DAYS)), np.inf)

    admin_days = (cut - start).days - rand_day
    death_d = to_days(t_death)
    drop_d = np.minimum(to_days(t_drop), admin_days)
    died = death_d <= drop_d
    lfu_d = np.where(died, death_d, drop_d)
    scans = None
    if assessment_interval is None:
        # no schedule, so no offset, jitter or missed visits: such a setting was ignored
        refuse_ignored("simulate_trial", [
            f"{k}={v!r}" for k, v in (("assessment_offset", assessment_offset),
                                      ("assessment_jitter_days", assessment_jitter_days),
                                      ("missed_visit_prob", missed_visit_prob))
            if isinstance(v, dict) or v != 0],
            "the scan schedule, and assessment_interval=None times progression exactly",
            "give assessment_interval (months between scans)")
        prog_d = to_days(t_prog)
        seen = prog_d <= lfu_d
    else:
        prog_d, seen, lpf_d, scans = _scan_schedule(
            t_prog, lfu_d, arm, rng, interval=assessment_interval, offset=assessment_offset,
            jitter_days=assessment_jitter_days, missed=missed_visit_prob, control=control,
            treatment=treatment)

    r_dates = start + pd.to_timedelta(rand_day, unit="D")

    def date(days, mask):
        out = pd.Series(pd.NaT, index=range(n_patients), dtype="datetime64[ns]")
        out[mask] = (r_dates[mask] + pd.to_timedelta(days[mask], unit="D")).to_numpy()
        return out

    frame = pd.DataFrame({
        "patient_id": [f"{id_prefix}-{i + 1:04d}" for i in range(n_patients)],
        "site": np.asarray(site_labels)[site_idx],
        "arm": np.where(arm == 1, treatment, control),
    })
    dates = {"randomization_date": np.asarray(r_dates, dtype="datetime64[ns]"),
             "progression_date": date(prog_d, seen).to_numpy(),
             "death_date": date(death_d, died).to_numpy(),
             "last_followup_date": date(lfu_d, np.ones(n_patients, bool)).to_numpy()}
    assessments = None
    if scans is not None and record_assessments:
        who, day, flag = scans
        when = (r_dates[who] + pd.to_timedelta(day, unit="D")).to_numpy()
        # progression and the last progression-free scan read from the scans, as reading
        # the table does; the canonical scan table sorted by patient and date
        dates["progression_date"], dates[LPF_COLUMN] = first_positive_last_negative(
            who, when, flag == 1, n_patients)
        assessments = pd.DataFrame({"patient_id": frame["patient_id"].to_numpy()[who],
                                    "assessment_date": when,
                                    "progression": flag.astype(np.int8)})
        assessments = assessments.sort_values(["patient_id", "assessment_date"],
                                              kind="stable").reset_index(drop=True)

    # Truth: typical-site quantities are closed form; the population (new-site) medians
    # integrate the frailty by Gauss-Hermite quadrature.
    gh_x, gh_w = np.polynomial.hermite_e.hermegauss(40)
    pop_b, pop_w = site_sd * gh_x, gh_w / gh_w.sum()
    cum = {
        "os": lambda hr: (lambda t: hr * os_hazard.cumhaz(t)),
        "ttp": lambda hr: (lambda t: hr * ttp_hazard.cumhaz(t)),
    }
    hrs = {"os": hr_os, "ttp": hr_ttp}
    median, median_pop = {}, {}
    for ep in ("os", "ttp", "pfs"):
        median[ep], median_pop[ep] = {}, {}
        for label, is_t in ((control, 0), (treatment, 1)):
            if ep == "pfs":
                h_os, h_ttp = (hr_os, hr_ttp) if is_t else (1.0, 1.0)
                fn = (lambda ho, ht: lambda t: cum["os"](ho)(t) + cum["ttp"](ht)(t))(h_os, h_ttp)
            elif ep == "os" and post_progression_hr != 1.0:
                median[ep][label] = _illness_death_os_median(
                    os_hazard, ttp_hazard, hr_os if is_t else 1.0, hr_ttp if is_t else 1.0,
                    post_progression_hr)
                median_pop[ep][label] = _illness_death_os_median(
                    os_hazard, ttp_hazard, hr_os if is_t else 1.0, hr_ttp if is_t else 1.0,
                    post_progression_hr, pop_b, pop_w)
                continue
            else:
                fn = cum[ep](hrs[ep] if is_t else 1.0)
            median[ep][label] = _median(fn)
            median_pop[ep][label] = _median(fn, pop_b, pop_w)
    truth = SimulationTruth(
        hr={"os": hr_os if post_progression_hr == 1.0 else None, "ttp": hr_ttp,
            "pfs": _pfs_hr(os_hazard, ttp_hazard, hr_os, hr_ttp)},
        median=median,
        median_population=median_pop,
        site_effects=dict(zip(site_labels, b.tolist())),
        params={"n_patients": n_patients, "site_sizes": sizes.tolist(), "site_sd": site_sd,
                "os_hazard": os_hazard, "ttp_hazard": ttp_hazard,
                "post_progression_hr": post_progression_hr,
                "dropout_per_year": dropout_per_year,
                "assessment_interval": assessment_interval,
                "assessment_offset": assessment_offset,
                "assessment_jitter_days": assessment_jitter_days,
                "missed_visit_prob": missed_visit_prob,
                "accrual": (str(start.date()), str(end.date())), "cut_date": str(cut.date()),
                "random_seed": random_seed},
        transition_hr={"progression": hr_ttp, "death_without_progression": hr_os,
                       "death_after_progression": hr_os},
    )
    # valid by construction (every date check holds; events at least a day after
    # randomization): built without re-reading, shown equal to from_table in the tests
    return TrialData._from_valid_dates(frame, dates, assessments, control=control,
                                       treatment=treatment, time_unit="months",
                                       cut_date=cut, truth=truth, source="simulate_trial",
                                       warn=False)


def _per_arm(value, arm, control, treatment, what):
    if isinstance(value, dict):
        unknown = set(map(str, value)) - {control, treatment}
        if unknown or len(value) != 2:
            raise BayesHCCError(f"simulate_trial: {what} by arm needs the keys {control!r} "
                                f"and {treatment!r}, got {sorted(map(str, value))}.")
        v = {str(k): float(x) for k, x in value.items()}
        return np.where(arm == 1, v[treatment], v[control])
    return np.full(len(arm), float(value))


def _scan_schedule(t_prog, lfu_d, arm, rng, *, interval, offset, jitter_days, missed,
                   control, treatment):
    """Scan days per patient, the scan that shows progression, and the last scan before.

    Returns ``(prog_day, seen, last_free_day, (patient, day, flag))``: the day of the first
    scan at or after the latent progression time ``t_prog`` (months), whether it happened
    (patient alive and followed), the day of the last scan before it (NaN without one), and
    the scans done (up to the one showing progression)."""
    n = len(t_prog)
    step = _per_arm(interval, arm, control, treatment, "assessment_interval")
    shift = _per_arm(offset, arm, control, treatment, "assessment_offset")
    if np.any(step <= 0) or np.any(shift < 0):
        raise BayesHCCError(f"simulate_trial: assessment_interval={interval!r} must be > 0 "
                            f"and assessment_offset={offset!r} >= 0 (months).")
    if not jitter_days >= 0:
        raise BayesHCCError(f"simulate_trial: assessment_jitter_days={jitter_days!r} must be "
                            ">= 0 (the SD of a scan's shift, in days).")
    if not 0 <= missed < 1:
        raise BayesHCCError(f"simulate_trial: missed_visit_prob={missed!r} must be in [0, 1) "
                            "(1 would miss every scan: use assessment_interval=None for a "
                            "trial without scans).")
    horizon = float(np.max(lfu_d)) / DAYS
    k = np.arange(1, int(np.ceil(horizon / step.min())) + 2)
    month = shift[:, None] + step[:, None] * k[None, :]  # (n, K)
    if jitter_days > 0:
        month = month + rng.normal(0.0, jitter_days, size=month.shape) / DAYS
        month = np.maximum.accumulate(np.maximum(month, 1.0 / DAYS), axis=1)
    done = np.ones(month.shape, bool) if missed == 0 else rng.random(month.shape) >= missed
    day = np.maximum(1, np.round(month * DAYS))
    month = np.where(done, month, np.inf)  # a missed scan sees nothing
    done &= day <= lfu_d[:, None]  # alive and followed
    hit = done & (month >= t_prog[:, None])
    seen = hit.any(axis=1)
    first = np.where(seen, hit.argmax(axis=1), month.shape[1])
    before = done & (np.arange(month.shape[1])[None, :] < first[:, None])
    prog_d = np.where(seen, day[np.arange(n), np.minimum(first, month.shape[1] - 1)], np.inf)
    last = np.where(before, day, -np.inf).max(axis=1)
    scanned = before | (hit & (np.arange(month.shape[1])[None, :] == first[:, None]))
    who, col = np.nonzero(scanned)
    flag = (col == first[who]).astype(np.int8)
    return prog_d, seen, np.where(np.isfinite(last), last, np.nan), (who, day[who, col], flag)
