"""Model checking of an illness-death fit: its log prior (what power-scaling sensitivity
scales) against PyMC's own density of the model's free variables, and ``bh.psense``."""

import warnings

import numpy as np
import pymc as pm
import pytest

import bayes_hcc as bh
from bayes_hcc.multistate.fit import IllnessDeathFit
from bayes_hcc.multistate.likelihood import TRANSITIONS


def _with_age(trial, unit):
    frame = trial.to_frame()[["patient_id", "site", "arm", "randomization_date",
                              "progression_date", "death_date", "last_followup_date",
                              "last_progression_free_date"]]
    frame["age"] = np.random.default_rng(3).normal(60, 10, len(frame)).round()
    return bh.read_trial(frame, time_unit=unit)


@pytest.mark.parametrize("baseline, site_effect, arm_effect, unit, covariates", [
    ("weibull_ph", "shared", "per_transition", "months", ()),
    ("piecewise_exponential", "random", "shared_death", "days", ("age",)),
])
def test_log_prior_equals_pymcs_density_of_the_free_variables(
        example_trial, python_linker, baseline, site_effect, arm_effect, unit, covariates):
    """``IllnessDeathFit.log_prior`` (scipy, from the recorded variables: log_lambda rather
    than the centred variable sampled, log HRs from the per-transition deterministic,
    time-scaled parameters moved back to months) sums, on every draw, to PyMC's log density
    of the model's free variables at the same point (without the Jacobian of site_sd's log
    transform: the density of the variable itself). Draws from the model's own prior;
    the second case in days, with a covariate and a shared death HR. (PyTensor's Python
    linker: the graph's mathematics is what is compared, see ``python_linker``.)"""
    trial = _with_age(example_trial, unit) if covariates else example_trial.to_unit(unit)
    # the first case with a prior of its own for each transition and the site SD: the
    # graph reads prior values from one data vector, so each must reach its own parameter
    priors = {} if covariates else {
        "progression.log_hr": bh.Prior("Normal", mu=-0.3, sigma=0.4),
        "death_without_progression.log_lambda": bh.Prior("Normal", mu=-3.0, sigma=1.5),
        "death_after_progression.log_shape": bh.Prior("Normal", mu=0.2, sigma=0.3),
        "site_sd": bh.Prior("HalfNormal", sigma=0.7)}
    model = bh.IllnessDeath(baseline, site_effect=site_effect, arm_effect=arm_effect,
                            covariates=list(covariates), priors=priors)
    data = model._data(trial, "ttp", "os", "test")
    fams = model.families(data)
    priors = [model.priors_for(f, t) for f, t in zip(fams, TRANSITIONS)]
    m = model._build(fams, priors, model._data_arrays(data, fams, priors), data)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The effect of Potentials")
        prior = pm.sample_prior_predictive(draws=50, model=m, random_seed=1)["prior"]
    fit = IllnessDeathFit.from_trace(
        {"posterior": prior.to_dataset(), "sample_stats": prior.to_dataset().drop_vars(
            list(prior.data_vars))},
        model=model, data=data, families=fams, priors=priors, settings={}, sampled=[],
        timing={})
    ours = fit.log_prior().to_array().sum("variable").values.ravel()
    logp = m.compile_logp(vars=m.free_RVs, jacobian=False)
    theirs = []
    for d in range(50):
        point = {}
        for rv in m.free_RVs:
            value = prior[rv.name].values[0, d]
            transform = m.rvs_to_transforms[rv]
            if transform is not None:
                value = transform.forward(value).eval()
            point[m.rvs_to_values[rv].name] = value
        theirs.append(logp(point))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-8)


def test_piecewise_settings_checked_as_a_single_endpoint_model_s():
    """Cut points and the interval count are checked when the model is made, as
    PiecewiseExponential's are: one number was "not iterable", text was split into
    characters, and unsorted or negative cuts and 2.5 intervals were taken as given."""
    for cuts, match in ((6, r"cuts: must be a list of numbers > 0, got 6"),
                        ("3,6", r"cuts: must be a list of numbers > 0, got '3,6'"),
                        ([6, 3], r"cuts: cut points must increase, got \[6, 3\]"),
                        ([-1, 3], r"cuts: must be a list of numbers > 0, got \[-1, 3\]")):
        with pytest.raises(bh.ModelError, match=rf"^IllnessDeath: {match}"):
            bh.IllnessDeath("piecewise_exponential", cuts=cuts)
    with pytest.raises(bh.ModelError, match=r"n_intervals: must be an integer, got 2.5"):
        bh.IllnessDeath("piecewise_exponential", n_intervals=2.5)
    with pytest.raises(bh.ModelError, match=r"cuts are for the piecewise baseline, not "
                       r"'weibull_ph'"):
        bh.IllnessDeath("weibull_ph", cuts=[3, 6])
    assert bh.IllnessDeath("piecewise_exponential", cuts=(3, 6.5)).cuts == (3.0, 6.5)
    # n_intervals with another baseline was ignored without a word
    with pytest.raises(bh.ModelError, match=r"n_intervals is for the piecewise baseline, not "
                       r"'weibull_ph'"):
        bh.IllnessDeath("weibull_ph", n_intervals=5)
    assert bh.IllnessDeath("piecewise_exponential").n_intervals == 4  # the default
    assert bh.IllnessDeath("piecewise_exponential", n_intervals=6).n_intervals == 6
    # settings saved with a fit carry the default interval count for every baseline: they
    # still rebuild the model
    weibull = bh.IllnessDeath("weibull_ph")
    assert weibull.settings()["n_intervals"] == 4
    assert bh.IllnessDeath.from_settings(weibull.settings()).settings() == weibull.settings()
