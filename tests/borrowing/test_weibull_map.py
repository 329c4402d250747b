"""A constant-hazard MAP prior in the Weibull model, with the shape from the data: the prior
is put on the average baseline hazard up to a reference time (``prior_reference_time``), so
that what is borrowed is the control median at that time, whatever the shape."""

import numpy as np
import pytest

import bayes_hcc as bh

from .test_conflict import exponential_trial


def test_reference_time_fixes_the_prior_median_whatever_the_shape():
    """Closed form: with log_lambda's prior concentrated at log(log 2 / t_ref) and the prior
    on the average hazard to t_ref, S0(t_ref) = 1/2 on every draw, so the control arm's prior
    median is t_ref (to the prior's own width, 0.01 on the log hazard: about 1%) although
    the shape's prior spans 0.37-2.7. Without the reference time the same prior is on H0(1
    month) and the median moves with the shape (over 10x between its 2.5% and 97.5%)."""
    trial = bh.datasets.load_example_trial()
    tight = {"log_lambda": bh.Prior("Normal", mu=float(np.log(np.log(2) / 8.0)), sigma=0.01)}
    with_ref = bh.prior_predictive(bh.WeibullPH(site_effect="none", prior_reference_time=8.0,
                                                priors=tight), trial)
    q = with_ref.loc[f"median {trial.control}"]
    np.testing.assert_allclose(q[["q2.5", "q50", "q97.5"]], 8.0, rtol=0.04)
    without = bh.prior_predictive(bh.WeibullPH(site_effect="none", priors=tight), trial)
    q = without.loc[f"median {trial.control}"]
    assert q["q97.5"] / q["q2.5"] > 10


def test_reference_time_is_unit_free():
    """The reference time is a time: in days it is the same prior (a model made in code
    reads its times in the data's unit, as cut points), so the posterior is the same."""
    trial = bh.datasets.load_example_trial()
    months = bh.WeibullPH(site_effect="none", prior_reference_time=8.0).fit(trial,
                                                                              random_seed=1)
    days = bh.WeibullPH(site_effect="none", prior_reference_time=8.0 * 365.25 / 12).fit(
        trial.to_unit("days"), random_seed=1)
    for f in (months, days):
        assert f.family.prior_reference_months == pytest.approx(8.0)
    a, b = (np.log(bh.hazard_ratio(f)).to_numpy().ravel() for f in (months, days))
    assert np.median(a) == pytest.approx(np.median(b), abs=0.02)  # Monte Carlo error ~0.005


def test_map_prior_in_the_weibull_model(robust):
    """A trial whose control arm agrees with the history (constant hazards, so shape 1):
    the robust component's weight falls and the control hazard's posterior is narrower than
    without borrowing; the report reads the average hazard to the reference time."""
    t_ref = robust.reference_time
    historical_median = t_ref  # the MAP median's constant-hazard median
    trial = exponential_trial(historical_median, seed=2)
    opts = dict(site_effect="none", prior_reference_time=t_ref)
    fit = bh.WeibullPH(**opts, priors={"log_lambda": robust}).fit(trial, random_seed=4)
    ref = bh.WeibullPH(**opts).fit(trial, random_seed=4)
    table = bh.borrowing_report(fit, robust, reference=ref)["value"]
    assert table["robust weight: posterior"] < 0.2
    assert table["posterior SD ratio (with / without)"] < 0.9
    assert table["Box prior-predictive p-value"] > 0.1
    assert 0 < table["control events"] < trial.endpoint("os").n_events
