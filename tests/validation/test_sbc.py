"""Simulation-based calibration: the generator, the harness and (slow) the 200-replication
calibration of both families."""

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.families.registry import FAMILIES
from bayes_hcc.validation.report import WRONG_PRIOR
from bayes_hcc.validation.sbc import simulate_from_prior


def test_generator_draws_from_the_model():
    """With (numerically) point-mass priors and 20,000 patients, lifelines' Weibull fit of the
    generated data recovers the parameters: an independent check of the simulator. The
    tolerance is 4 standard errors of the MLE."""
    from lifelines import WeibullAFTFitter

    tight = {"log_hr": bh.Prior("Normal", mu=-0.4, sigma=1e-9),
             "log_lambda": bh.Prior("Normal", mu=-2.0, sigma=1e-9),
             "log_shape": bh.Prior("Normal", mu=np.log(1.3), sigma=1e-9)}
    model = bh.WeibullPH(site_effect="none", priors=tight)
    trial, truth = simulate_from_prior(model, site_sizes=(10_000, 10_000), random_seed=3)
    assert truth["log_hr"] == pytest.approx(-0.4)
    ep = trial.endpoint("os")
    assert 0 < ep.n_events < len(ep)  # some administrative censoring
    aft = WeibullAFTFitter().fit(pd.DataFrame({"T": ep.time, "E": ep.event, "arm": ep.arm}),
                                 "T", "E")
    rho = np.exp(aft.params_[("rho_", "Intercept")])
    assert abs(np.log(rho) - np.log(1.3)) < 4 * aft.standard_errors_[("rho_", "Intercept")]
    log_hr = -rho * aft.params_[("lambda_", "arm")]
    se = rho * aft.standard_errors_[("lambda_", "arm")]
    assert abs(log_hr + 0.4) < 4 * se


def test_generator_draws_treatment_by_site_time_varying_and_stratum_effects():
    """The generator draws what the model has: a treatment-by-site effect, a time-varying
    HR and a baseline per stratum (it drew none of them, so SBC of such a model compared
    its posterior with data from a different model). Each is recovered from the generated
    data by an estimator written here (a Cox fit per site with lifelines; events over
    exposure per interval and arm, per stratum), within 4 standard errors; the priors of
    everything else are point masses, so the truth is known to the error of the data."""
    from lifelines import CoxPHFitter

    P = bh.Prior
    fixed = {"log_hr": P("Normal", mu=-0.3, sigma=1e-9)}
    model = bh.WeibullPH(site_effect="none", arm_by_site="random", priors={
        **fixed, "log_lambda": P("Normal", mu=-2.0, sigma=1e-9),
        "log_shape": P("Normal", mu=0.2, sigma=1e-9), "arm_site_sd": P("HalfNormal", sigma=0.6)})
    trial, truth = simulate_from_prior(model, site_sizes=(5000,) * 4, random_seed=5)
    assert truth["arm_site_sd"] > 0.1 and np.ptp(truth["arm_site_effect"]) > 0.2  # visible
    ep = trial.endpoint("os")
    for s in range(4):
        m = ep.site == s
        cox = CoxPHFitter().fit(pd.DataFrame({"T": ep.time[m], "E": ep.event[m],
                                              "arm": ep.arm[m]}), "T", "E")
        true = truth["log_hr"] + truth["arm_site_effect"][s]
        assert abs(cox.params_["arm"] - true) < 4 * cox.standard_errors_["arm"], s

    def log_rate(time, event, lo, hi):
        exposure = np.clip(time - lo, 0, hi - lo).sum()
        d = ((time > lo) & (time <= hi) & (event == 1)).sum()
        return np.log(d / exposure), 1 / np.sqrt(d)

    model = bh.PiecewiseExponential(cuts=[3, 6], time_varying_hr=True, tv_sd=0.5,
                                     site_effect="none", priors={
                                         **fixed, "log_baseline_hazard": P("Normal", mu=-2.0,
                                                                           sigma=1e-9)})
    trial, truth = simulate_from_prior(model, site_sizes=(20_000,), random_seed=6)
    assert np.ptp(truth["log_hr_dev"]) > 0.3 and abs(truth["log_hr_dev"].mean()) < 1e-12
    ep = trial.endpoint("os")
    for j, (lo, hi) in enumerate([(0, 3), (3, 6), (6, np.inf)]):
        (treated, se1), (control, se0) = (log_rate(ep.time[ep.arm == a],
                                                   ep.event[ep.arm == a], lo, hi)
                                          for a in (1, 0))
        true = truth["log_hr"] + truth["log_hr_dev"][j]
        assert abs(treated - control - true) < 4 * np.hypot(se0, se1), j
    for pooling in ("partial", "none"):
        model = bh.ExponentialPH(site_effect="none", strata="site", pooling=pooling, priors={
            **fixed, "log_lambda": P("Normal", mu=-2.0, sigma=0.5)})
        trial, truth = simulate_from_prior(model, site_sizes=(8000,) * 3, random_seed=7)
        dev = truth["stratum_dev_log_lambda"]
        assert np.ptp(dev) > 0.05 and (pooling == "partial" or abs(dev.sum()) < 1e-12)
        ep = trial.endpoint("os")
        for s in range(3):
            m = (ep.site == s) & (ep.arm == 0)
            est, se = log_rate(ep.time[m], ep.event[m], 0, np.inf)
            assert abs(est - truth["log_lambda"] - dev[s]) < 4 * se, (pooling, s)


def test_models_the_generator_cannot_draw_from_are_refused():
    """Covariates (no distribution to draw them from) and strata of another column than
    the site: refused by name before any fit, not calibrated against other data."""
    with pytest.raises(bh.BayesHCCError, match=r"covariates \(age\)"):
        bh.sbc(bh.WeibullPH(covariates=["age"]), 10)
    with pytest.raises(bh.BayesHCCError, match="strata='region'.*strata='site'"):
        bh.sbc(bh.WeibullPH(strata="region", site_effect="none"), 10)


def test_harness_is_reproducible_on_any_number_of_workers_and_raises_the_alarm():
    """Same seeds, same ranks in-process and in a pool. A posterior narrowed to 30% of its
    spread is rejected even with 24 replications (ranks pile at both ends: p << 0.01)."""
    one = bh.sbc("weibull_ph", 24, workers=1, progress=False)
    two = bh.sbc("weibull_ph", 24, workers=2, progress=False)
    assert one.ranks().equals(two.ranks())
    assert set(one.tests().index) == {"log_hr", "site_sd", "log_lambda", "log_shape"}
    narrowed = one.narrowed(0.3).tests()
    assert (narrowed["p_value"] < 0.01).all(), narrowed
    ranks = one.ranks()
    assert int(ranks["log_hr"].min()) >= 0 and int(ranks["log_hr"].max()) <= one.n_draws


def test_unknown_model_is_a_clear_error():
    with pytest.raises(bh.BayesHCCError, match="weibull_ph"):
        bh.sbc("cox", 10)


def test_settings_that_would_distort_the_ranks_are_refused():
    """More kept draws than each fit has repeated draws (ties in the ranks: SBC would
    judge a distorted statistic); an empty site had the data say "1 site"."""
    with pytest.raises(bh.BayesHCCError, match=r"n_keep=5000 exceeds the draws of each fit "
                       r"\(2 chains x 500 = 1000\)"):
        bh.sbc("weibull_ph", 10, n_keep=5000)
    with pytest.raises(bh.BayesHCCError, match=r"site_sizes=\(0, 5\): give the patients of "
                       r"each site, whole numbers >= 1"):
        bh.sbc("weibull_ph", 10, site_sizes=(0, 5))


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))  # every registered family
def test_sbc_200_replications_is_uniform_and_narrowing_is_rejected(family):
    """Acceptance: no monitored parameter rejects uniformity at the family-wise level 0.01
    (200 replications; Bonferroni over the family's parameters: with 4-9 parameters per
    family and 7 families, a per-parameter 0.01 would fail a correct model about one run in
    three); the same fits with the posterior narrowed by half are rejected for every
    parameter (p < 0.01 each)."""
    res = bh.sbc(family, 200, progress=False)
    tests = res.tests()
    assert (tests["p_value"] > 0.01 / len(tests)).all(), tests
    assert (res.narrowed(0.5).tests()["p_value"] < 0.01).all()


#: Model features beyond a family's defaults, each calibrated as the families are.
FEATURES = {
    "treatment_by_site": lambda: bh.WeibullPH(arm_by_site="random"),
    "time_varying_hr": lambda: bh.PiecewiseExponential(cuts=[3, 6, 12],
                                                       time_varying_hr=True),
    "strata_partial": lambda: bh.WeibullPH(strata="site", pooling="partial",
                                           site_effect="none"),
    "strata_none": lambda: bh.WeibullPH(strata="site", pooling="none", site_effect="none"),
}


@pytest.mark.slow
@pytest.mark.parametrize("feature", list(FEATURES))
def test_sbc_200_replications_of_model_features(feature):
    """The treatment-by-site SD, a time-varying HR's deviations and strata's baselines
    (pooled, or each its own) calibrate as the families do: no monitored parameter rejects
    uniformity at the family-wise level 0.01 (Bonferroni), and the log HR's posterior
    narrowed by half is rejected."""
    res = bh.sbc(FEATURES[feature](), 200, progress=False)
    tests = res.tests()
    assert (tests["p_value"] > 0.01 / len(tests)).all(), tests
    assert res.narrowed(0.5).tests().loc["log_hr", "p_value"] < 0.01


@pytest.mark.slow
def test_sbc_rejects_a_wrong_prior():
    """Data from log HR ~ N(0, 1), fitted with log HR ~ N(0.5, 0.2): log HR is rejected."""
    res = bh.sbc("weibull_ph", 200, fit_priors=WRONG_PRIOR, progress=False)
    assert res.tests().loc["log_hr", "p_value"] < 0.01
