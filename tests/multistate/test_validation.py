"""The illness-death calibration tools: the generator (checked against the observation rule
written independently) and (slow) the acceptance: SBC with 200 replications and the coverage
of OS and PFS medians on 100 trials from an illness-death truth."""

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.validation.illness_death import (SBC_PRIORS, draw_illness_death_truth,
                                                illness_death_coverage, illness_death_sbc,
                                                simulate_illness_death)

RATES = (0.2, 0.05, 0.3)  # progression, death without and after progression, per month


def _exponential_truth(time_scale="markov"):
    model = bh.IllnessDeath("exponential_ph", time_scale=time_scale, site_effect="none")
    truth = {"site_effect": np.zeros((3, 1))}
    for t, r in zip(("progression", "death_without_progression", "death_after_progression"),
                    RATES):
        truth[f"{t}::log_hr"] = 0.0
        truth[f"{t}::log_lambda"] = np.log(r)
    return model, truth


@pytest.mark.parametrize("time_scale", ["markov", "semi_markov"])
def test_generator_follows_the_model_and_the_scan_rule(time_scale):
    """20,000 patients, constant hazards, follow-up far beyond every death: the share whose
    progression is seen (a scan every 2 months from randomisation falls between progression
    and death) agrees within 4 MC SE with the rule written independently; progression
    intervals are one scan interval wide on the grid; everyone dies after any scan shown."""
    model, truth = _exponential_truth(time_scale)
    n = 20_000
    d = simulate_illness_death(model, truth, site_sizes=(n,), min_follow_up=1e4,
                               random_seed=1)
    assert d.death.all()
    rng = np.random.default_rng(2)
    l1, l2, l3 = RATES
    t01, t02 = rng.exponential(1 / l1, n), rng.exponential(1 / l2, n)
    prog = t01 < t02
    death = np.where(prog, t01 + rng.exponential(1 / l3, n), t02)  # memoryless: same on
    scan = 2.0 * np.ceil(t01 / 2.0)                                 # either clock
    p = np.mean(prog & (scan <= death))
    assert abs(d.progressed.mean() - p) < 4 * np.sqrt(2 * p * (1 - p) / n)
    iv = d.progressed
    np.testing.assert_allclose(d.prog_upper[iv] - d.prog_lower[iv], 2.0)
    np.testing.assert_allclose(d.prog_upper[iv] / 2.0, np.round(d.prog_upper[iv] / 2.0))
    assert np.all(d.time[iv] >= d.prog_upper[iv])
    # without a progression seen: progression-free at the last scan before death
    free = ~iv
    np.testing.assert_allclose(d.prog_lower[free], 2.0 * np.floor(d.time[free] / 2.0))


def test_prior_draws_have_the_models_parameters():
    model = bh.IllnessDeath("weibull_ph", site_effect="shared", priors=SBC_PRIORS)
    truth = draw_illness_death_truth(model, 6, np.random.default_rng(0))
    assert truth["site_effect"].shape == (3, 6)
    np.testing.assert_array_equal(truth["site_effect"][0], truth["site_effect"][2])  # shared
    assert {k.split("::")[1] for k in truth if "::" in k} == {"log_hr", "log_lambda",
                                                              "log_shape"}
    with pytest.raises(bh.BayesHCCError, match="cuts"):
        illness_death_sbc(bh.IllnessDeath("piecewise_exponential"), 2)
    # kept draws beyond each fit's would repeat and tie the ranks (as bh.sbc's)
    with pytest.raises(bh.BayesHCCError, match=r"n_keep=99 exceeds the draws of each fit "
                       r"\(2 chains x 40 = 80\)"):
        illness_death_sbc(model, 2, draws=40)
    # covariates: every replication failed to fit ("no replication could be fitted", after
    # all of them had run); refused before any
    with pytest.raises(bh.BayesHCCError, match=r"simulated trials have no covariates \(age\)"):
        illness_death_sbc(bh.IllnessDeath("weibull_ph", covariates=["age"]), 2)


#: The calibrated priors with piecewise baselines (the Weibull shape prior left out).
PIECEWISE_PRIORS = {k.replace("log_lambda", "log_baseline_hazard"): v
                    for k, v in SBC_PRIORS.items() if k != "log_shape"}


def test_sbc_of_a_piecewise_baseline_ranks_each_interval():
    """A piecewise baseline (one log hazard per interval and transition) failed after every
    replication had run: its vector truths did not fit the ranks' table (ValueError). Each
    interval is ranked as an element of its parameter now, with its truth."""
    model = bh.IllnessDeath("piecewise_exponential", cuts=[4, 10], site_effect="shared",
                            priors=PIECEWISE_PRIORS)
    res = illness_death_sbc(model, 2, draws=60, tune=100, n_keep=20, workers=1,
                            progress=False)
    name = "progression.log_baseline_hazard"
    assert res.truth[name].shape == (2, 3) and res.draws[name].shape == (2, 20, 3)
    assert [f"{name}[{j}]" for j in range(3)] == [k for k in res.tests().index
                                                 if k.startswith(name)]
    ranks = res.ranks()[name]
    assert int(ranks.min()) >= 0 and int(ranks.max()) <= 20


@pytest.mark.slow
def test_illness_death_sbc_200_replications_is_uniform():
    """Acceptance: the three log HRs, the site SD and every baseline parameter: no
    parameter rejects uniformity at the family-wise level 0.01 (Bonferroni over the 10),
    and the same fits with posteriors narrowed by half are rejected for every parameter.
    About 10 minutes on 2 cores (9:39 measured after the likelihood graph was rebuilt)."""
    res = illness_death_sbc(n_reps=200, progress=False)
    tests = res.tests()
    assert (tests["p_value"] > 0.01 / len(tests)).all(), tests
    assert (res.narrowed(0.5).tests()["p_value"] < 0.01).all()


@pytest.mark.slow
def test_illness_death_sbc_of_a_piecewise_baseline():
    """Piecewise baselines (cuts at 4 and 10 months, 3 intervals per transition), the site
    effect shared: the three log HRs, the site SD and the nine interval log hazards calibrate
    (no parameter rejects uniformity at the family-wise level 0.01, Bonferroni over 13)."""
    model = bh.IllnessDeath("piecewise_exponential", cuts=[4, 10], site_effect="shared",
                            priors=PIECEWISE_PRIORS)
    tests = illness_death_sbc(model, 200, progress=False).tests()
    assert len(tests) == 13 and (tests["p_value"] > 0.01 / len(tests)).all(), tests


@pytest.mark.slow
def test_illness_death_median_intervals_cover():
    """Acceptance: on 100 trials from an illness-death truth (death hazard 3x higher after
    progression), 90% intervals of each arm's OS and PFS medians cover 85-95% of the time.
    About 10 minutes on 2 cores (8:25 measured after the likelihood graph was rebuilt)."""
    table = illness_death_coverage(100, progress=False)
    c90 = table.xs(0.9, level="level")["coverage"]
    assert c90.between(0.85, 0.95).all(), table
