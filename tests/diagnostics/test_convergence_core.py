"""One numeric core for the fit-time warning and bh.check: NaN diagnostics fail, every
sampled variable counts (site_z included), and fast mode is labelled exploratory."""

import warnings

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.convergence import EXPLORATORY_THRESHOLDS, THRESHOLDS


def test_one_draw_one_chain_is_not_silent(example_trial):
    """draws=1, chains=1 used to give no warning (ESS NaN, and NaN < 400 is false) and
    P(HR < 1) = 1.000 with MCSE 0.000."""
    with pytest.warns(bh.ConvergenceWarning, match="too few to assess"):
        fit = bh.WeibullPH().fit(example_trial, "os", draws=1, chains=1, random_seed=1)
    report = bh.check(fit, warn=False)
    assert not report.ok and {"r_hat", "ess_bulk", "ess_tail", "mcse_prob"} <= set(
        report.failed)
    p = bh.prob_superiority(fit)
    assert p.mcse == 1.0 and p.mcse_is_bound  # one draw: the bound is 1, not 0


def _shift_one_chain(fit, name, by):
    dt = fit.datatree.copy()
    post = dt["posterior"].to_dataset()
    post[name] = post[name] + xr_chain_offset(post, by)
    dt["posterior"] = post
    return bh.Fit(dt)


def xr_chain_offset(post, by):
    import xarray as xr

    return xr.DataArray(np.r_[by, np.zeros(post.sizes["chain"] - 1)], dims="chain",
                        coords={"chain": post["chain"]})


def test_fit_time_check_and_bh_check_see_site_z(weibull_fit):
    """Chains that disagree only on the non-centred site deviations: both the fit-time
    check and bh.check fail R-hat there (the fit-time check used to look at a short list of
    parameters without site_z)."""
    bad = _shift_one_chain(weibull_fit, "site_z", 0.5)
    problems = bad.convergence_problems()
    assert any(p.startswith("r_hat") and "(site_z)" in p for p in problems), problems
    report = bh.check(bad, warn=False)
    assert "r_hat" in report.failed and report.table.loc["r_hat", "where"] == "site_z"
    assert not weibull_fit.convergence_problems()


def test_nan_diagnostic_fails(weibull_fit):
    dt = weibull_fit.datatree.copy()
    post = dt["posterior"].to_dataset()
    post["log_shape"] = post["log_shape"].where(post["draw"] != 3)  # a NaN draw
    dt["posterior"] = post
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy on the NaN
        report = bh.check(bh.Fit(dt), warn=False)
    assert not report.ok and "log_shape" in report.table.loc["r_hat", "where"]


def test_fast_mode_is_exploratory_and_passes_on_the_example(example_trial):
    """Fast mode (4 chains x 300 draws) is labelled exploratory and held to the exploratory
    thresholds, which the example trial's primary analysis passes; the same fit is not
    confirmatory-grade (measured: 45-48 of 48 grid fits fail the confirmatory rules)."""
    spec = bh.load_spec("models/primary_os.toml")
    fit = bh.fit_spec(spec, example_trial, fast=True)
    report = bh.check(fit, warn=False)
    assert report.mode == "exploratory" and report.ok
    assert report.verdict == "OK (exploratory: fast mode, not for inference)"
    assert EXPLORATORY_THRESHOLDS["r_hat"] > THRESHOLDS["r_hat"]
    assert EXPLORATORY_THRESHOLDS["divergences"] == THRESHOLDS["divergences"] == 0
