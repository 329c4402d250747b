"""check(), LOO/compare, psense, posterior and prior predictive checks."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh


def test_good_fit_passes(weibull_fit):
    report = bh.check(weibull_fit)
    assert report.ok, report
    assert set(report.table.index) >= {"r_hat", "ess_bulk", "ess_tail", "divergences",
                                        "max_treedepth", "ebfmi", "mcse", "mcse_prob"}
    assert "Diagnostics: OK" in report._repr_html_()


def test_a_tree_without_sampler_statistics_fails_those_checks(weibull_fit):
    """A fit whose sample_stats were trimmed (or a tree assembled by hand) raised KeyError
    'sample_stats' from inside bh.check; a sample_stats without the divergence flags read
    as 0 divergences, a pass. Both now fail those rows, saying why."""
    trimmed = bh.models.fit.Fit(weibull_fit.datatree.copy())
    del trimmed.datatree["sample_stats"]
    with pytest.warns(bh.ConvergenceWarning, match="diagnostics failed"):
        report = bh.check(trimmed)
    assert {"divergences", "max_treedepth"} <= set(report.failed)
    assert "not recorded in the fit's sample_stats" in report.table.loc["divergences"].to_string()
    assert report.table.loc["r_hat", "ok"]  # what the draws show is still shown
    no_flags = bh.models.fit.Fit(weibull_fit.datatree.copy())
    no_flags.datatree["sample_stats"] = no_flags.datatree["sample_stats"].to_dataset().drop_vars(
        "diverging")
    with pytest.warns(bh.ConvergenceWarning):
        assert "divergences" in bh.check(no_flags).failed
    assert bh.check(weibull_fit).ok  # (the copies left the fit as it was)


def test_a_tree_not_made_by_the_package_is_refused_by_name():
    """An ArviZ tree of another model (or an empty one) failed with KeyError 'spec_toml'."""
    import arviz_base as azb
    import xarray as xr

    other = azb.from_dict({"posterior": {"log_hr": np.zeros((2, 50))}})
    for tree in (other, xr.DataTree()):
        for call in (bh.check, bh.hazard_ratio, bh.median_survival):
            with pytest.raises(bh.BayesHCCError, match=r"not a fit made by bayes_hcc \(its "
                               r"attributes lack spec_toml, .*random_seed\): pass the Fit "
                               r"that model.fit or bh.fit_spec returned"):
                call(tree)


def test_poor_fit_fails_with_explanations(example_trial):
    """tune=5, draws=20: R-hat, ESS and MCSE must fail, each with its remedy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        bad = bh.WeibullPH().fit(example_trial, "os", tune=5, draws=20, random_seed=1)
    with pytest.warns(bh.ConvergenceWarning, match="diagnostics failed"):
        report = bh.check(bad)
    assert not report.ok
    for name in ("r_hat", "ess_bulk", "ess_tail", "mcse"):
        assert name in report.failed, name
    text = "\n".join(report.explanations)
    assert "chains disagree" in text and "increase draws" in text


def test_one_chain_cannot_pass(example_trial):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        fit = bh.WeibullPH().fit(example_trial, "os", chains=1, random_seed=1)
        report = bh.check(fit, warn=False)
    assert "r_hat" in report.failed


def test_loo_prefers_true_family():
    """Clearly non-Weibull hazard (high, low, high): the piecewise model must win by more
    than 2 standard errors of the ELPD difference."""
    h = bh.PiecewiseHazard(cuts=(3.0, 9.0), rates=(0.25, 0.03, 0.25))
    trial = bh.simulate_trial(400, sites=6, os_hazard=h, site_sd=0.1, random_seed=21,
                              accrual_start="2015-01-01", accrual_end="2016-06-30")
    with warnings.catch_warnings():
        # The Weibull is misspecified on purpose and may show a stray divergence; the test
        # is about LOO, which is computed on its (still informative) posterior.
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        fits = {"weibull": bh.WeibullPH().fit(trial, random_seed=1, target_accept=0.99),
                "pwe": bh.PiecewiseExponential(cuts=[3.0, 9.0]).fit(trial, random_seed=1)}
    table = bh.compare(fits)
    assert table.index[0] == "pwe"
    # arviz-stats reports elpd_diff of the worse model as a negative number.
    assert -table.loc["weibull", "elpd_diff"] > 2 * table.loc["weibull", "dse"]
    assert table.loc["pwe", "weight"] > 0.9
    # Full precision: the table's ELPD is the one bh.loo computes (ArviZ's display rounding
    # used to give -1700.0 for -1661.36).
    for name, fit in fits.items():
        assert table.loc[name, "elpd"] == pytest.approx(float(bh.loo(fit).elpd), rel=1e-12)


def test_compare_refuses_different_units(weibull_fit, example_trial):
    with warnings.catch_warnings():  # convergence of this fit is beside the point
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        other = bh.WeibullPH().fit(example_trial, "pfs", random_seed=1, draws=200, tune=200)
    with pytest.raises(bh.BayesHCCError, match="same patients"):
        bh.compare([weibull_fit, other])
    # the same patients in days: log densities differ by log(days per month) per death
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        days = bh.WeibullPH().fit(example_trial.to_unit("days"), "os", random_seed=1,
                                  draws=200, tune=200)
    with pytest.raises(bh.BayesHCCError, match="fitted in days.*same data in one unit"):
        bh.compare([weibull_fit, days])
    # one fit twice (a notebook cell run with the same name twice) split its stacking
    # weight 0.5/0.5 with itself
    with pytest.raises(bh.BayesHCCError, match=r"'a' and 'b' are the same fit"):
        bh.compare({"a": weibull_fit, "b": weibull_fit})
    # one fit, or one path, is not fits to compare ("'Fit' object is not iterable"; a path
    # was read letter by letter, "x: no such file")
    for one, name in ((weibull_fit, "Fit"), ("fits/a.nc", "str"), (5, "int")):
        with pytest.raises(bh.BayesHCCError, match=r"compare: takes two or more fits, as a "
                           rf"dict name -> fit or a list, .* got {name}\."):
            bh.compare(one)


def test_psense_flags_conflicting_prior_not_default(example_trial, weibull_fit):
    """A strongly wrong informative prior on log HR (HR 3, SD 0.1 on the log scale) is a
    prior-data conflict; the default priors are not flagged for log HR, site SD or the
    medians."""
    default = bh.psense(weibull_fit)
    for name in ("log_hr", "site_sd", "median_sorafenib", "median_tace_sorafenib"):
        assert default.loc[name, "diagnosis"] == "✓", default
    wrong = bh.WeibullPH(priors={"log_hr": bh.Prior("Normal", mu=np.log(3.0), sigma=0.1)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        fit = wrong.fit(example_trial, "os", random_seed=1)
    table = bh.psense(fit)
    assert table.loc["log_hr", "diagnosis"] == "potential prior-data conflict", table


def test_ppc_km_covers_observed_for_correct_model(weibull_fit):
    """The example trial is Weibull-generated: the 95% PPC band should contain the observed
    KM at (nearly) all grid points; we require 90% per arm and per site."""
    by_arm = bh.ppc_km(weibull_fit, random_seed=1)
    assert by_arm.attrs["coverage"] >= 0.9
    assert set(by_arm["group"]) == set(weibull_fit.arms)
    by_site = bh.ppc_km(weibull_fit, by="site", random_seed=1, n_draws=100)
    assert by_site.attrs["coverage"] >= 0.9
    # Replicates keep observed follow-up: the band is flat beyond the last follow-up.
    assert (by_arm["lower"] <= by_arm["upper"]).all()


def test_ppc_detects_misfit():
    """A Weibull fitted to a strongly non-monotone hazard misses the observed KM somewhere."""
    h = bh.PiecewiseHazard(cuts=(3.0, 9.0), rates=(0.25, 0.03, 0.25))
    trial = bh.simulate_trial(400, sites=6, os_hazard=h, site_sd=0.1, random_seed=21,
                              accrual_start="2015-01-01", accrual_end="2016-06-30")
    with warnings.catch_warnings():  # misspecified on purpose (see test above)
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        fit = bh.WeibullPH().fit(trial, random_seed=1, target_accept=0.99)
    assert bh.ppc_km(fit, random_seed=1).attrs["coverage"] < 0.8


def test_prior_predictive(example_trial):
    # draws=0 silently meant the default and 2.5 failed inside numpy; a seed as text
    # inside numpy's SeedSequence
    for kwargs, match in (({"draws": 0}, "draws=0 must be an integer >= 2"),
                          ({"draws": 2.5}, "draws=2.5 must be an integer >= 2"),
                          ({"random_seed": "x"}, "random_seed='x' must be an integer")):
        with pytest.raises(bh.BayesHCCError, match="prior_predictive: " + match):
            bh.prior_predictive(bh.PiecewiseExponential(), example_trial, **kwargs)
    table = bh.prior_predictive(bh.PiecewiseExponential(), example_trial, random_seed=1)
    assert list(table.index) == ["HR", "median sorafenib", "median tace_sorafenib"]
    # log HR ~ Normal(0, 1): the HR quantiles are exp(+-1.96) up to Monte Carlo error
    # (2000 draws: the 2.5% quantile is known to about +-8%).
    assert table.loc["HR", "q50"] == pytest.approx(1.0, abs=0.1)
    assert table.loc["HR", "q2.5"] == pytest.approx(np.exp(-1.96), rel=0.15)


def test_prior_predictive_of_a_time_varying_hr(example_trial):
    """The treatment arm's median under a time-varying HR reads the HR's deviations by
    interval (it ignored them: the same quantiles as a constant HR). With the log HR and
    the baseline fixed (point-mass priors; control hazard 0.1 per month in every interval),
    the treatment arm's median depends only on the deviations, whose prior is written here
    again (a random walk of step SD 1 from 0, centred); its quantiles agree with an
    independent Monte Carlo of 20,000 draws within 15% (2,000 draws: the 2.5% and 97.5%
    quantiles are known to about +-8%)."""
    P = bh.Prior
    model = bh.PiecewiseExponential(
        cuts=[3, 6], baseline_prior="independent", time_varying_hr=True, tv_sd=1.0,
        priors={"log_hr": P("Normal", mu=0.0, sigma=1e-9),
                "log_baseline_hazard": P("Normal", mu=np.log(0.1), sigma=1e-9)})
    table = bh.prior_predictive(model, example_trial, random_seed=2)
    assert table.loc["median sorafenib"].to_numpy() == pytest.approx(np.log(2) / 0.1)
    rng = np.random.default_rng(0)
    walk = np.column_stack([np.zeros(20_000),
                            np.cumsum(rng.standard_normal((20_000, 2)), axis=1)])
    rate = 0.1 * np.exp(walk - walk.mean(axis=1, keepdims=True))  # (draw, interval)
    # the median: where the cumulative hazard, linear within each interval, reaches log 2
    cum = np.column_stack([np.zeros(20_000), np.cumsum(rate[:, :2] * 3.0, axis=1)])
    j = (cum < np.log(2)).sum(axis=1) - 1
    rows = np.arange(20_000)
    median = 3.0 * j + (np.log(2) - cum[rows, j]) / rate[rows, j]
    expected = np.quantile(median, [0.025, 0.25, 0.5, 0.75, 0.975])
    assert table.loc["median tace_sorafenib"].to_numpy() == pytest.approx(expected, rel=0.15)
    assert np.ptp(expected) > 4  # the deviations spread it: a constant HR gives one value


def test_prior_predictive_of_a_pre_specified_analysis(example_trial):
    """A spec (what a statistician checks before the analysis) raised AttributeError, as
    did a model's class or the illness-death model. The spec gives its own model, priors
    and endpoint: the same draws as the model it builds, on that endpoint; the others are
    refused by name."""
    from pathlib import Path

    spec = Path(__file__).resolve().parents[2] / "models" / "secondary_pfs.toml"
    table = bh.prior_predictive(spec, example_trial, random_seed=1)
    direct = bh.prior_predictive(bh.build(bh.load_spec(spec)), example_trial, "pfs",
                                 random_seed=1)
    assert table.attrs["endpoint"] == "pfs"
    # written for a paper it says what it is (a DOCX of it had no footnote at all)
    assert table.attrs["footnotes"][0].startswith("Prior predictive of PFS under ")
    pd.testing.assert_frame_equal(table, direct)
    with pytest.raises(bh.BayesHCCError, match=r"give a model, bh.WeibullPH\(...\), not"):
        bh.prior_predictive(bh.WeibullPH, example_trial)


def test_prior_predictive_of_an_illness_death_model(example_trial):
    """It raised AttributeError; now its draws come from the model's own graph (PyMC's
    forward sampling, the likelihood left out) and the medians from them as from a fit's.
    Exponential transitions at the typical site: the control arm's median PFS is
    log 2 / (lambda01 + lambda02) and its median TTP log 2 / lambda01, with each log
    lambda from its declared prior: the quartiles agree with 200,000 scipy draws of those
    within 0.2 on the log scale (the Monte Carlo SE of a quartile of 2000 draws of a
    log-median whose SD is about 2 is 0.06). Each log HR is Normal(0, 1): its median HR
    within 0.15 of 1 on the log scale (2.7 SE)."""
    from pathlib import Path

    from bayes_hcc.multistate.data import IllnessDeathData
    from bayes_hcc.multistate.likelihood import TRANSITIONS

    model = bh.IllnessDeath("exponential_ph", site_effect="none")
    table = bh.prior_predictive(model, example_trial, draws=2000, random_seed=2)
    data = IllnessDeathData.from_trial(example_trial, "ttp", "os")
    priors = [model.priors_for(f, t) for f, t in zip(model.families(data), TRANSITIONS)]
    rng = np.random.default_rng(5)
    lam = [np.exp(p["log_lambda"].scipy().rvs(200_000, random_state=rng)) for p in priors]
    quartiles = ["q25", "q50", "q75"]
    for row, median in (("median PFS sorafenib", np.log(2) / (lam[0] + lam[1])),
                        ("median TTP sorafenib", np.log(2) / lam[0])):
        np.testing.assert_allclose(np.log(table.loc[row, quartiles].to_numpy(float)),
                                   np.log(np.quantile(median, [0.25, 0.5, 0.75])), atol=0.2)
    for t in TRANSITIONS:
        assert abs(np.log(table.loc[f"HR {t.replace('_', ' ')}", "q50"])) < 0.15
    assert (table.loc["median PFS sorafenib"] <= table.loc["median OS sorafenib"]).all()
    assert table.attrs["footnotes"][0].startswith("Prior predictive of IllnessDeath(")
    # the shipped illness-death spec: its model, endpoints and priors, in any time unit
    # (the same seed gives the same draws; the medians scale with the unit)
    spec = Path(__file__).resolve().parents[2] / "models" / "illness_death.toml"
    months = bh.prior_predictive(spec, example_trial, random_seed=4)
    days = bh.prior_predictive(spec, example_trial.to_unit("days"), random_seed=4)
    medians = [r for r in months.index if r.startswith("median")]
    finite = np.isfinite(months.loc[medians].to_numpy(float))
    np.testing.assert_allclose(days.loc[medians].to_numpy(float)[finite] / 30.4375,
                               months.loc[medians].to_numpy(float)[finite], rtol=1e-6)


def test_bad_arguments_are_named(weibull_fit):
    with pytest.raises(bh.BayesHCCError, match="n_draws=0 must be an integer >= 2"):
        bh.ppc_km(weibull_fit, n_draws=0)
    with pytest.raises(bh.BayesHCCError, match="by='patient'; choose 'arm' or 'site'"):
        bh.ppc_km(weibull_fit, by="patient")
    with pytest.raises(bh.BayesHCCError, match=r"endpoint='pfs', but this fit is of OS"):
        bh.ppc_km(weibull_fit, endpoint="pfs")
    # a credible level as a percentage: frequentist, covariate_effects and plot_survival
    # failed inside numpy or lifelines, ppc_km compared a list with 0
    for call in (bh.summarize, bh.frequentist, bh.covariate_effects, bh.plot_survival,
                 bh.ppc_km):
        with pytest.raises(bh.BayesHCCError, match=rf"{call.__name__}: prob=95 must be "
                           "strictly between 0 and 1"):
            call(weibull_fit, prob=95)
    with pytest.raises(bh.BayesHCCError, match=r"ppc_km: prob=\[0.9, 0.5\] is several"):
        bh.ppc_km(weibull_fit, prob=[0.9, 0.5])
    # threshold=-1 flagged every row as a prior-data conflict; "0.05" failed inside numpy
    with pytest.raises(bh.BayesHCCError, match=r"ppc_km: random_seed='x' must be an integer"):
        bh.ppc_km(weibull_fit, random_seed="x")
    with pytest.raises(bh.BayesHCCError, match=r"psense: threshold=-1 must be > 0"):
        bh.psense(weibull_fit, threshold=-1)
    with pytest.raises(bh.BayesHCCError, match=r"psense: threshold='0.05x' must be a number"):
        bh.psense(weibull_fit, threshold="0.05x")


def test_parameter_names_as_a_user_types_them(weibull_fit):
    """One name as text is one name: ``psense(fit, "log_hr")`` dropped every letter
    silently and showed the medians alone, and the trace and rank plots failed inside
    ArviZ. A misspelt name is refused with the nearest one (psense dropped it silently)."""
    table = bh.psense(weibull_fit, "log_hr", medians=False)
    assert list(table.index) == ["log_hr"]
    with pytest.raises(bh.BayesHCCError, match=r"psense: var_names: unknown 'loghr' \(did "
                       r"you mean 'log_hr'\?\); choose from .*site_sd"):
        bh.psense(weibull_fit, ["loghr"])
    fig = bh.plot_trace(weibull_fit, "log_hr")
    assert len(fig.axes) == 2  # one variable: its density and its trace
    with pytest.raises(bh.BayesHCCError, match=r"plot_rank: var_names: unknown 'site sd' "
                       r"\(did you mean 'site_sd'\?\)"):
        bh.plot_rank(weibull_fit, ["site sd"])
    import matplotlib.pyplot as plt

    plt.close("all")
