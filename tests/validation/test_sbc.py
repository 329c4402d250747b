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


@pytest.mark.slow
def test_sbc_rejects_a_wrong_prior():
    """Data from log HR ~ N(0, 1), fitted with log HR ~ N(0.5, 0.2): log HR is rejected."""
    res = bh.sbc("weibull_ph", 200, fit_priors=WRONG_PRIOR, progress=False)
    assert res.tests().loc["log_hr", "p_value"] < 0.01
