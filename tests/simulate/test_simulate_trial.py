"""simulate_trial: reproducibility, structure, and recovery of the truth by lifelines."""

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter, WeibullFitter
from lifelines.utils import median_survival_times

import bayes_hcc as bh
from bayes_hcc.simulate import PiecewiseHazard, WeibullHazard

MONTH = 30.4375
# Dates are whole days and events land on the day after they happen (ceil), so derived
# times exceed the latent ones by at most one day.
ONE_DAY = 1 / MONTH


def test_same_seed_same_trial_and_different_seed_differs():
    a = bh.simulate_trial(random_seed=7)
    b = bh.simulate_trial(random_seed=7)
    c = bh.simulate_trial(random_seed=8)
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint


def test_structure_and_invariants():
    t = bh.simulate_trial(400, sites=8, random_seed=3)
    f = t.to_frame()
    assert len(f) == 400 and f["site"].nunique() == 8
    # 1:1 within site (permuted blocks of 4): imbalance at most 2 per site.
    counts = f.groupby(["site", "arm"]).size().unstack()
    assert (counts.max(axis=1) - counts.min(axis=1)).max() <= 2
    os_, pfs, ttp = (t.endpoint(e) for e in ("os", "pfs", "ttp"))
    assert np.all(pfs.time <= os_.time + 1e-12)  # PFS <= OS always
    assert np.all(ttp.time <= pfs.time + 1e-12)
    # Progression is seen only at scheduled assessments (every 2 months).
    prog = f["progression_date"].notna()
    visits = ((f.loc[prog, "progression_date"] - f.loc[prog, "randomization_date"]).dt.days
              / (2 * MONTH))
    assert np.allclose(visits, np.round(visits), atol=0.02)
    # Nothing after the administrative cut.
    assert (f["last_followup_date"] <= pd.Timestamp("2020-02-28")).all()
    assert t.truth.hr["os"] == 0.70


def test_large_trial_recovers_truth_with_lifelines():
    """20,000 patients, no site heterogeneity, continuous progression assessment.

    Tolerances: 4 standard errors of each frequentist estimate (two-sided false-alarm rate
    about 6e-5 per check), plus one day for the day rounding of dates.
    """
    t = bh.simulate_trial(
        20_000, sites=6, site_sd=0.0, accrual_start="2015-01-01", accrual_end="2016-12-31",
        cut_date="2022-12-31", dropout_per_year=0.05, assessment_interval=None,
        os_hazard=WeibullHazard(median=6.5, shape=1.2),
        ttp_hazard=WeibullHazard(median=3.0, shape=1.2), hr_os=0.70, hr_ttp=0.67,
        random_seed=11)
    for ep_name in ("os", "ttp", "pfs"):
        ep = t.endpoint(ep_name)
        df = pd.DataFrame({"T": ep.time, "E": ep.event, "trt": ep.arm})
        cox = CoxPHFitter().fit(df, "T", "E")
        est, se = cox.params_["trt"], cox.standard_errors_["trt"]
        assert abs(est - np.log(t.truth.hr[ep_name])) < 4 * se, ep_name
        for i, arm in enumerate(ep.arms):
            m = ep.arm == i
            kmf = KaplanMeierFitter().fit(ep.time[m], ep.event[m])
            ci = median_survival_times(kmf.confidence_interval_)
            se_med = (ci.iloc[0, 1] - ci.iloc[0, 0]) / (2 * 1.96)
            truth = t.truth.median[ep_name][arm]
            assert abs(kmf.median_survival_time_ - truth) < 4 * se_med + ONE_DAY, (ep_name, arm)
    # Weibull shape of OS in the control arm.
    ep = t.endpoint("os")
    m = ep.arm == 0
    wf = WeibullFitter().fit(ep.time[m], ep.event[m])
    assert abs(wf.rho_ - 1.2) < 4 * wf.summary.loc["rho_", "se(coef)"]


def test_site_frailty_recovered_by_large_per_site_samples():
    """With 5,000 patients per site, the site log-hazard shifts are estimated to ~0.03;
    tolerance 0.15 (about 5 standard errors of a difference of two estimates)."""
    t = bh.simulate_trial(30_000, sites=6, site_sd=0.5, site_sizes=[5000] * 6,
                          accrual_start="2015-01-01", accrual_end="2016-12-31",
                          cut_date="2022-12-31", assessment_interval=None, random_seed=5)
    ep = t.endpoint("os")
    df = pd.DataFrame({"T": ep.time, "E": ep.event, "trt": ep.arm})
    for s in range(1, 6):
        df[f"s{s}"] = (ep.site == s).astype(float)
    cox = CoxPHFitter().fit(df, "T", "E")
    b = np.array([t.truth.site_effects[s] for s in ep.sites])
    np.testing.assert_allclose(cox.params_[[f"s{s}" for s in range(1, 6)]], b[1:] - b[0],
                               atol=0.15)


def test_piecewise_hazard_truth():
    h = PiecewiseHazard(cuts=(3.0, 9.0), rates=(0.2, 0.1, 0.05))
    assert h.cumhaz(3.0) == pytest.approx(0.6)
    assert h.cumhaz(10.0) == pytest.approx(0.6 + 0.6 + 0.05)
    assert h.inverse_cumhaz(h.cumhaz(np.array([1.0, 5.0, 20.0]))) == pytest.approx([1, 5, 20])
    t = bh.simulate_trial(200, os_hazard=h, ttp_hazard=WeibullHazard(3.0, 1.0), random_seed=1)
    # S(m) = 0.5 under the control hazard: H(m) = log 2 -> m = 3 + (log2 - 0.6)/0.1.
    assert t.truth.median["os"]["sorafenib"] == pytest.approx(3 + (np.log(2) - 0.6) / 0.1)
    assert t.truth.hr["pfs"] is None  # not proportional hazards: no single PFS HR


def test_bad_arguments():
    with pytest.raises(ValueError, match="site_sizes"):
        bh.simulate_trial(100, sites=3, site_sizes=[10, 10, 10])
    with pytest.raises(ValueError, match="median > 0"):
        WeibullHazard(median=-1.0)
    # a hazard ratio of 0 or below used to fail inside scipy's root finder ("f(a) and f(b)
    # must have different signs") after a divide-by-zero warning
    for kw, match in [({"hr_os": 0.0}, r"hr_os=0.0 must be a hazard ratio, a finite number"),
                      ({"hr_ttp": -0.5}, r"hr_ttp=-0.5 must be a hazard ratio"),
                      ({"hr_os": "0.7"}, r"hr_os='0.7' must be a hazard ratio"),
                      ({"site_sd": -0.1}, r"site_sd=-0.1 must be a finite number >= 0"),
                      ({"n_patients": 130.5}, r"n_patients=130.5: give a whole number"),
                      # these failed inside numpy ("pvals must have at least 1 dimension",
                      # negative multinomial counts, arrays that do not broadcast) or
                      # split a label into letters (sites="AMC": sites A, M and C)
                      ({"sites": 0}, r"sites=0: give the number of sites"),
                      ({"sites": "AMC"}, r"sites='AMC': give the number of sites .at "
                                         r"least 1. or a list of their labels"),
                      ({"sites": ["A", "A"]}, r"each site needs its own label"),
                      ({"n_patients": 4, "sites": 6}, r"6 sites for 4 patients"),
                      ({"n_patients": 50, "site_sizes": [25, 25]},
                       r"one positive size per site \(6\) adding up to n_patients=50"),
                      # argument errors name the argument and say what it must be
                      ({"dropout_per_year": 1.0}, r"dropout_per_year=1.0 is the probability"),
                      ({"cut_date": "2018-01-01"}, r"accrual_end \(2019-05-31\) and "
                                                   r"cut_date \(2018-01-01\) must come in"),
                      ({"missed_visit_prob": 1.0}, r"missed_visit_prob=1.0 must be in "
                                                   r"\[0, 1\).*assessment_interval=None"),
                      ({"assessment_jitter_days": -3}, r"assessment_jitter_days=-3 must be"),
                      # without a schedule these were ignored: exact progression times
                      ({"assessment_interval": None, "missed_visit_prob": 0.2},
                       r"simulate_trial: missed_visit_prob=0.2 is for the scan schedule, and "
                       r"assessment_interval=None times progression exactly: give "
                       r"assessment_interval \(months between scans\), or leave it out"),
                      ({"assessment_interval": None, "assessment_offset": 1.0,
                        "assessment_jitter_days": 7},
                       r"assessment_offset=1.0 and assessment_jitter_days=7 are for"),
                      ({"assessment_interval": 0}, r"assessment_interval=0 must be > 0"),
                      # one label for both arms gave "2 arms (a 130, a 130)"
                      ({"control": "a", "treatment": "a"}, r"control and treatment are "
                                                           r"both 'a'"),
                      ({"site_sizes": [60, 70]}, r"site_sizes=\[60, 70\] must give"),
                      # these failed inside int(), the sampler and SeedSequence
                      ({"site_sizes": {"A": 70, "B": 60}}, r"site_sizes=\{'A': 70, 'B': 60\} "
                                                           r"must be a list of whole numbers"),
                      ({"os_hazard": 6.5}, r"os_hazard=6.5 must be a hazard: "
                                           r"bh.WeibullHazard"),
                      ({"random_seed": "1"}, r"random_seed='1' must be an integer")]:
        kw = {"random_seed": 1, **kw}
        with pytest.raises(bh.BayesHCCError, match=match):
            bh.simulate_trial(**kw)


def test_family_hazard_is_the_family_the_models_fit():
    """FamilyHazard wraps a registered family at fixed parameters: a Weibull one equals
    WeibullHazard with the same rate and shape; a Gompertz one inverts its own cumulative
    hazard; simulate_trial accepts it and reports its median as the truth."""
    import bayes_hcc as bh

    w = bh.WeibullHazard(median=6.5, shape=1.2)
    fw = bh.FamilyHazard("weibull_ph", log_lambda=np.log(w.rate), log_shape=np.log(1.2))
    t = np.array([0.5, 3.0, 6.5, 20.0])
    np.testing.assert_allclose(fw.cumhaz(t), w.cumhaz(t), rtol=1e-12)
    np.testing.assert_allclose(fw.hazard(t), w.hazard(t), rtol=1e-12)
    np.testing.assert_allclose(fw.inverse_cumhaz(w.cumhaz(t)), t, rtol=1e-10)
    g = bh.FamilyHazard("gompertz_ph", log_lambda=-2.5, gamma=0.04)
    np.testing.assert_allclose(g.cumhaz(g.inverse_cumhaz(np.array([0.1, 0.69, 3.0]))),
                               [0.1, 0.69, 3.0], rtol=1e-10)
    trial = bh.simulate_trial(130, os_hazard=g, random_seed=1)
    median = float(g.inverse_cumhaz(np.log(2.0)))
    assert trial.truth.median["os"][trial.arms[0]] == pytest.approx(median, rel=1e-6)
    with pytest.raises(ValueError, match="needs parameter"):
        bh.FamilyHazard("gompertz_ph", log_lambda=-2.5)
    with pytest.raises(ValueError, match="unknown parameter.*gama.*takes log_lambda, gamma"):
        bh.FamilyHazard("gompertz_ph", log_lambda=-2.5, gama=0.1)
    with pytest.raises(ValueError, match="gamma must be finite"):
        bh.FamilyHazard("gompertz_ph", log_lambda=-2.5, gamma=float("nan"))
    # a parameter shaped for another layout failed inside numpy at the first evaluation
    with pytest.raises(ValueError, match=r"log_baseline_hazard has shape \(6,\); this layout "
                       r"takes shape \(4,\): one per interval, \[0, 2\).*cuts="):
        bh.FamilyHazard("piecewise_exponential", log_baseline_hazard=np.full(6, -2.0))
    with pytest.raises(ValueError, match=r"log_lambda has shape \(2,\); give a single number"):
        bh.FamilyHazard("weibull_ph", log_lambda=[-2.0, -1.0], log_shape=0.1)
    from bayes_hcc.families.registry import family_class

    three = bh.FamilyHazard(family_class("piecewise_exponential")(cuts=[2.0, 6.0]),
                            log_baseline_hazard=np.log([0.1, 0.2, 0.3]))
    assert three.cumhaz(7.0) == pytest.approx(0.2 + 0.8 + 0.3)


def test_post_progression_hr_makes_an_illness_death_truth():
    """A death hazard 3x higher after progression: progressed patients die sooner, OS is no
    longer proportional hazards (hr["os"] None), the true OS medians (the illness-death OS
    curve, integrated numerically) match the Kaplan-Meier medians of 6000 patients within
    4% (a KM median's SE here is about 2%), and PFS and TTP are unchanged."""
    from lifelines import KaplanMeierFitter

    kw = dict(n_patients=6000, site_sd=0.0, dropout_per_year=0.0, assessment_interval=None,
              accrual_start="2010-01-01", accrual_end="2010-06-30", cut_date="2020-01-01",
              random_seed=5)
    base = bh.simulate_trial(**kw)
    t = bh.simulate_trial(post_progression_hr=3.0, **kw)
    assert t.truth.hr["os"] is None and base.truth.hr["os"] == 0.70
    assert t.truth.transition_hr == {"progression": 0.67, "death_without_progression": 0.70,
                                     "death_after_progression": 0.70}
    assert t.truth.median["pfs"] == base.truth.median["pfs"]
    assert t.truth.median["os"]["sorafenib"] < base.truth.median["os"]["sorafenib"]
    os_ = t.endpoint("os")
    for a, label in enumerate(os_.arms):
        km = KaplanMeierFitter().fit(os_.time[os_.arm == a], os_.event[os_.arm == a])
        assert km.median_survival_time_ == pytest.approx(t.truth.median["os"][label],
                                                         rel=0.04)
    # the same latent times: deaths before any progression are unchanged
    pfs_b, pfs_t = base.endpoint("pfs"), t.endpoint("pfs")
    np.testing.assert_allclose(pfs_b.time, pfs_t.time)
    with pytest.raises(ValueError, match="post_progression_hr"):
        bh.simulate_trial(post_progression_hr=0.0, random_seed=1)


def independent_os(time, os_h, ttp_h, hr_os, hr_ttp, rho, m=1.0):
    """OS at ``time`` of the Markov illness-death model ``simulate_trial`` draws from (a01 =
    hr_ttp ttp_h, a02 = hr_os os_h, a12 = rho hr_os os_h, each times the frailty m), by
    scipy's scalar ``quad``, told where the hazards jump (a piecewise hazard's cuts) and
    every power of 10 months (over a long range it misses the early progressions)."""
    from scipy import integrate

    hd = os_h.cumhaz(time)

    def f(u):
        return float(np.exp(-m * (hr_ttp * ttp_h.cumhaz(u) + hr_os * os_h.cumhaz(u)
                                  + rho * hr_os * (hd - os_h.cumhaz(u))))
                     * m * hr_ttp * ttp_h.hazard(u))

    cuts = list(getattr(os_h, "cuts", ())) + list(10.0 ** np.arange(-2, 9))
    pts = sorted(c for c in cuts if 0 < c < time) or None
    inner = integrate.quad(f, 0, time, points=pts, limit=500, epsabs=1e-14, epsrel=1e-12)[0]
    return float(np.exp(-m * (hr_ttp * ttp_h.cumhaz(time) + hr_os * hd))) + inner


def test_illness_death_truth_medians_solve_an_independent_os_curve():
    """The true OS medians under ``post_progression_hr`` (a piecewise death hazard, so the
    integrand jumps at the cuts, and site effects) solve OS(t) = 1/2 for an OS curve
    integrated here by scipy's scalar ``quad`` with the cuts given, one frailty node at a
    time: within 1e-9 (the package's quadrature targets 1e-10; without the cuts the typical
    median was 1.4e-6 off). A second trial with the same truth gives the same numbers."""
    os_h = bh.PiecewiseHazard((2.0, 6.0), (0.05, 0.1, 0.2))
    ttp_h = bh.WeibullHazard(median=3.0, shape=0.8)  # singular at 0
    kw = dict(n_patients=20, os_hazard=os_h, ttp_hazard=ttp_h, hr_os=0.7, hr_ttp=0.6,
              post_progression_hr=2.5, site_sd=0.3)
    t = bh.simulate_trial(random_seed=1, **kw)
    x, w = np.polynomial.hermite_e.hermegauss(40)
    for label, (h_os, h_ttp) in ((t.control, (1.0, 1.0)), (t.treatment, (0.7, 0.6))):
        typical = t.truth.median["os"][label]
        assert independent_os(typical, os_h, ttp_h, h_os, h_ttp, 2.5) == \
            pytest.approx(0.5, abs=1e-9)
        population = t.truth.median_population["os"][label]
        mix = sum(wk * independent_os(population, os_h, ttp_h, h_os, h_ttp, 2.5,
                                      np.exp(0.3 * xk)) for xk, wk in zip(x, w)) / w.sum()
        assert mix == pytest.approx(0.5, abs=1e-9)
    again = bh.simulate_trial(random_seed=2, **kw).truth
    assert again.median == t.truth.median
    assert again.median_population == t.truth.median_population


def test_true_medians_far_out_or_never_reached():
    """A median past 1,000 months is found (it was looked for only up to there), and a
    curve that never falls to 1/2 (a cure fraction: Gompertz with gamma < 0) has an
    infinite median: both failed inside scipy's root finder ("f(a) and f(b) must have
    different signs"). With a cure and post_progression_hr the long-range quadrature once
    missed the early progressions and gave a median of 72,899 months."""
    long_os = bh.WeibullHazard(median=600.0, shape=1.0)
    ttp = bh.WeibullHazard(median=3.0, shape=1.2)
    t = bh.simulate_trial(n_patients=20, os_hazard=long_os, post_progression_hr=0.5,
                          random_seed=1)
    median = t.truth.median["os"][t.control]
    assert median > 1000
    assert independent_os(median, long_os, ttp, 1.0, 1.0, 0.5) == pytest.approx(0.5, abs=1e-9)

    cure = bh.FamilyHazard("gompertz_ph", log_lambda=-3.0, gamma=-0.3)
    # S(inf) = exp(-hr exp(log_lambda) / |gamma|) = 0.85 for the control arm: no median
    assert np.exp(-np.exp(-3.0) / 0.3) > 0.5
    for kw in ({"os_hazard": cure}, {"os_hazard": cure, "post_progression_hr": 1.5}):
        truth = bh.simulate_trial(n_patients=20, random_seed=1, **kw).truth
        assert all(np.isinf(v) for v in truth.median["os"].values())
        assert all(np.isinf(v) for v in truth.median_population["os"].values())
        assert all(np.isfinite(v) for v in truth.median["pfs"].values())
    # and the illness-death OS with the cure does stay above 1/2
    assert independent_os(1e6, cure, ttp, 1.0, 1.0, 1.5) > 0.5
    truth = bh.simulate_trial(n_patients=20, ttp_hazard=cure, random_seed=1).truth
    assert all(np.isinf(v) for v in truth.median["ttp"].values())
    assert all(np.isfinite(v) for v in truth.median["os"].values())
