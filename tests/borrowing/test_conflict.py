"""Borrowing in a fit: the robust MAP prior backs off when the trial's control arm disagrees
with the history and sharpens the posterior when it agrees; Box's p-value against an
independent Monte Carlo computation."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayes_hcc as bh
from bayes_hcc.borrowing.conflict import box_p_value, component_weights



@pytest.fixture(scope="module")
def models(robust):
    """Compiled once each: without borrowing, and with the robust MAP prior."""
    return (bh.ExponentialPH(site_effect="none"),
            bh.ExponentialPH(site_effect="none", priors={"log_lambda": robust}))


def exponential_trial(control_median, seed, n=130, hr=0.8):
    """Constant hazards, control median ``control_median`` months, HR ``hr``, follow-up
    2 to 4 years (administrative censoring)."""
    rng = np.random.default_rng(seed)
    arm = np.arange(n) % 2
    rate = np.log(2) / control_median * np.where(arm == 1, hr, 1.0)
    t, c = rng.exponential(1 / rate), rng.uniform(24, 48, n)
    frame = pd.DataFrame({"patient_id": [f"p{i:03d}" for i in range(n)], "site": "one",
                          "arm": np.where(arm == 1, "tace_sorafenib", "sorafenib"),
                          "os_time": np.minimum(t, c), "os_event": (t <= c).astype(int)})
    return bh.read_trial(frame)


@pytest.mark.parametrize("factor", [1.0, 3.0], ids=["agreement", "conflict"])
def test_borrowing_backs_off_under_conflict(robust, models, factor):
    """Acceptance of #26, on four simulated trials (130 patients, constant hazards, 2-4
    years of follow-up). With the control median at the historical one (log 2 / exp(MAP
    median)) the robust component's posterior weight falls below its prior 0.2, the control
    log hazard's posterior is narrower than without borrowing and Box's p-value is
    unremarkable. At 3x the historical median the weight moves to the robust component
    (> 0.5), Box's p-value is small, and the posterior median of the control log hazard
    lies within 0.25 posterior SD of the no-borrowing one on average over the trials: the
    robust component Normal(MAP median, 1) still holds one event's worth of information,
    which moves it by about |difference| / sqrt(events) = 1.1 / sqrt(40), 0.17 SD; measured
    0.13 to 0.27 over 8 trials (so no single trial is held to 0.25, each to 0.35). 20,000
    draws per fit keep the Monte Carlo error of the difference near 0.02 SD."""
    historical_median = np.log(2) / np.exp(robust.quantiles([0.5])[0])
    shifts = []
    for seed in (1, 2, 3, 4):
        trial = exponential_trial(factor * historical_median, seed=seed)
        without, with_map = (m.fit(trial, draws=5000, random_seed=5) for m in models)
        table = bh.borrowing_report(with_map, robust, reference=without)["value"]
        if factor == 1.0:
            assert table["robust weight: posterior"] < 0.2
            assert table["posterior SD ratio (with / without)"] < 0.9
            assert table["Box prior-predictive p-value"] > 0.1
        else:
            assert table["robust weight: posterior"] > 0.5
            assert table["Box prior-predictive p-value"] < 0.05
            shifts.append(abs(table["control log hazard /month: median"]
                              - table["without borrowing: median"])
                          / table["without borrowing: SD"])
    if shifts:
        assert np.mean(shifts) < 0.25 and max(shifts) < 0.35, shifts


def test_box_p_value_against_monte_carlo(robust):
    """The quadrature p-value against simulation from the prior predictive (400,000 draws;
    tolerance 0.01, about 5 Monte Carlo SEs for the tails tested here)."""
    prior = robust.informative
    w = np.asarray(prior.weights)
    mus = np.array([c.params["mu"] for c in prior.components])
    sds = np.array([c.params["sigma"] for c in prior.components])
    rng = np.random.default_rng(0)
    k = rng.choice(len(w), 400_000, p=w)
    y = rng.poisson(800.0 * np.exp(rng.normal(mus[k], sds[k])))
    pmf = np.bincount(y) / len(y)
    for events in (30, 150):  # the two tails
        mc = pmf[pmf <= pmf[events]].sum()
        assert box_p_value(prior, events, 800.0) == pytest.approx(mc, abs=0.01)


def test_component_weights_are_posterior_probabilities():
    """For a two-normal mixture and draws from one component only, the weights are the
    average posterior membership, computed here by Bayes' rule directly."""
    prior = bh.Prior.mixture([bh.Prior("Normal", mu=0.0, sigma=0.1),
                              bh.Prior("Normal", mu=0.0, sigma=1.0)], [0.8, 0.2])
    theta = np.array([0.0, 0.5, -1.0])
    a = 0.8 * stats.norm.pdf(theta, 0, 0.1)
    b = 0.2 * stats.norm.pdf(theta, 0, 1.0)
    np.testing.assert_allclose(component_weights(prior, theta), [np.mean(a / (a + b)),
                                                                 np.mean(b / (a + b))])


def test_report_refuses_a_fit_without_the_prior(robust, models):
    trial = exponential_trial(9.0, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = models[0].fit(trial, draws=300, tune=300, exploratory=True)
    with pytest.raises(bh.ModelError, match="not this MAP prior"):
        bh.borrowing_report(fit, robust)


def test_borrowing_does_not_depend_on_the_time_unit(robust, models):
    """The MAP prior is declared per month; a trial in days moves it to days (the unit
    shift of log_lambda) and the robust weight read back on the months scale is the same."""
    trial = exponential_trial(27.0, seed=1)
    months = models[1].fit(trial, random_seed=1).mixture_weights()["log_lambda"]
    days = models[1].fit(trial.to_unit("days"), random_seed=1).mixture_weights()["log_lambda"]
    np.testing.assert_allclose(days, months, atol=1e-6)
    assert months[-1] > 0.5  # in conflict: the robust component carries the posterior


def test_a_fit_records_where_its_prior_came_from(robust, models, tmp_path):
    """The spec holds the prior's numbers; the fit also keeps where they came from (studies,
    history fingerprint, ESS, robust weight), through save and load, and says so in its
    footnotes."""
    trial = exponential_trial(9.0, seed=3)
    fit = models[1].fit(trial, random_seed=2)
    where = fit.prior_provenance["log_lambda"]
    assert where["studies"] == ["A", "B", "C", "D"]
    assert where["history_fingerprint"] == robust.history.fingerprint
    assert where["robust_weight"] == 0.2
    assert bh.load_fit(fit.save(tmp_path / "f.nc")).prior_provenance == fit.prior_provenance
    assert any("robust MAP prior from 4 historical control arms" in n
               for n in bh.fit_footnotes(fit))
    assert models[0].fit(trial, random_seed=2).prior_provenance == {}


def test_the_prior_check_allows_rounding_only():
    """A fit's priors come back through their dict form, renormalising mixture weights:
    last-bit differences are the same prior; any real difference is not."""
    from bayes_hcc.borrowing.conflict import _same_prior

    a = {"dist": "Mixture", "weights": [0.3, 0.7],
         "components": [{"dist": "Normal", "mu": -2.5, "sigma": 0.2},
                        {"dist": "Normal", "mu": -2.4, "sigma": 1.0}]}
    b = {**a, "weights": [0.3 * (1 + 1e-15), 0.7]}
    assert _same_prior(a, b)
    assert not _same_prior(a, {**a, "weights": [0.31, 0.69]})
    assert not _same_prior(a, {**a, "components": a["components"][:1] * 2})
