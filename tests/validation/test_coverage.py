"""Coverage of credible intervals on simulated trials (the 200-trial study is slow)."""

import numpy as np
import pytest

import bayes_hcc as bh


def test_coverage_records_truths_and_nested_intervals():
    res = bh.coverage_study("weibull_ph", 3, workers=1, progress=False, draws=300, tune=300)
    rec = res.records
    assert np.allclose(rec["log_hr_true"], np.log(0.70))
    t = bh.simulate_trial(**res.scenario, random_seed=int(rec["seed"][0])).truth
    assert rec["median_difference_true"][0] == pytest.approx(
        t.median["os"]["tace_sorafenib"] - t.median["os"]["sorafenib"])
    for q in ("log_hr", "median_difference"):
        for narrow, wide in ((0.5, 0.9), (0.9, 0.95)):
            a = np.array(rec[f"{q}_{narrow:g}"].tolist())
            b = np.array(rec[f"{q}_{wide:g}"].tolist())
            assert np.all(b[:, 0] <= a[:, 0]) and np.all(a[:, 1] <= b[:, 1])
    tab = res.table()
    assert set(tab.index.get_level_values("nominal")) == {0.5, 0.9, 0.95}
    # each trial's fit says whether it passed its convergence checks; the table counts the
    # ones that did not (kept in: dropping them would bias coverage)
    assert rec["converged"].dtype == bool
    assert (tab["unconverged"] == (~rec["converged"]).sum()).all()
    # and which checks they failed, by the names bh.check's table gives them: every
    # unconverged trial names one at least, a converged one none
    from bayes_hcc.diagnostics.check import REMEDIES

    named = rec["failed_checks"].str.len() > 0
    assert (named == ~rec["converged"]).all()
    failed = res.failed_checks()
    assert set(failed.index) <= set(REMEDIES) | {"mcse_prob"}
    assert failed.sum() >= (~rec["converged"]).sum()
    # a store written before the checks were recorded counts them as not recorded
    old = bh.validation.coverage.CoverageResult(res.name, rec.drop(columns="failed_checks"),
                                                res.probs, res.scenario)
    assert old.failed_checks().to_dict() == ({"not recorded": int((~rec["converged"]).sum())}
                                             if (~rec["converged"]).any() else {})


def test_study_settings_are_checked_before_it_starts():
    """A misspelt scenario setting raised TypeError from the first worker, after the
    study had started; one level as a number raised "'float' object is not iterable"."""
    with pytest.raises(bh.BayesHCCError, match=r"scenario has unknown setting\(s\) 'hr_0s' "
                       r"\(did you mean 'hr_os'\?\); simulate_trial takes"):
        bh.coverage_study("weibull_ph", 3, scenario={"hr_0s": 0.7}, workers=1)
    with pytest.raises(bh.BayesHCCError, match=r"coverage_study: scenario .*site_sd"):
        bh.coverage_study("weibull_ph", 3, scenario={"site_sd": -1.0}, workers=1)
    with pytest.raises(bh.BayesHCCError, match=r"probs must be in \(0, 1\), got \(90.0,\)"):
        bh.coverage_study("weibull_ph", 3, probs=90, workers=1)
    # models the study cannot judge: an AFT model raised KeyError 'log_hr' and covariates
    # a ModelError, each from the first worker after the study had started
    with pytest.raises(bh.BayesHCCError, match=r"has no hazard ratio \(its arm effect is "
                       r"log_tr\).*study a proportional-hazards family"):
        bh.coverage_study(bh.LogNormalAFT(), 3, workers=1)
    with pytest.raises(bh.BayesHCCError, match=r"simulated trials .* cannot be fitted by "
                       r"WeibullPH.*covariate\(s\) age not in the data"):
        bh.coverage_study(bh.WeibullPH(covariates=["age"]), 3, workers=1)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["weibull_ph", "piecewise_exponential"])
def test_90_percent_intervals_cover_85_to_95_percent(family):
    """Acceptance: over 200 trials the 90% intervals of log HR and of the median difference
    cover between 85% and 95% (Monte Carlo SE at 90% is about 2.1 points)."""
    tab = bh.coverage_study(family, 200, progress=False).table()
    cov90 = tab.xs(0.9, level="nominal")["coverage"]
    assert cov90.between(0.85, 0.95).all(), tab


def test_what_the_simulated_data_warn_of_is_recorded_not_hidden():
    """A coverage study of fixed site effects with two tiny sites: a trial whose tiny site
    has no deaths warns that its effect is informed by the prior only (with random_seed 2,
    one trial of the three has such a site). The study ran every fit with warnings
    silenced, so that was lost; each trial's record keeps it now, and the table counts such
    trials."""
    scenario = {**bh.validation.coverage.DEFAULT_SCENARIO,
                "site_sizes": [40, 30, 30, 25, 3, 2]}
    res = bh.coverage_study(bh.WeibullPH(site_effect="fixed"), 3, scenario=scenario,
                            workers=1, progress=False, draws=200, tune=200, random_seed=2)
    # which trials warn, found independently: their data, fitted one by one
    expected = {}
    for seed in res.records["seed"]:
        trial = bh.simulate_trial(**scenario, random_seed=int(seed))
        ep = trial.endpoint("os")
        quiet = [s for i, s in enumerate(ep.sites) if ep.event[ep.site == i].sum() == 0]
        if quiet:
            expected[int(seed)] = quiet
    assert len(expected) == 1  # a trial that warns and two that do not
    warned = res.data_warnings()
    assert {int(s) for s in warned.index} == set(expected)
    for seed, sites in expected.items():
        assert all(repr(s) in warned[seed] for s in sites) and "no events" in warned[seed]
    assert (res.table()["data_warned"] == len(expected)).all()
    # a store written before the warnings were recorded: not counted, not invented
    old = bh.validation.coverage.CoverageResult(
        res.name, res.records.drop(columns="data_warnings"), res.probs, res.scenario)
    assert old.data_warnings().empty and old.table()["data_warned"].isna().all()
