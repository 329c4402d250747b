"""Mixture priors compose Prior objects: scipy twin, PyMC variable, spec round trip, and
compile-once (weights and component parameters are data)."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import bayes_hcc as bh
from bayes_hcc.models import graph

ROBUST = bh.Prior.mixture([bh.Prior("Normal", mu=-0.3, sigma=0.15),
                           bh.Prior("Normal", mu=0.0, sigma=2.0)], weights=[0.8, 0.2])


def test_logpdf_and_draws_are_the_mixture():
    x = np.linspace(-3, 2, 11)
    ref = np.log(0.8 * stats.norm(-0.3, 0.15).pdf(x) + 0.2 * stats.norm(0, 2).pdf(x))
    np.testing.assert_allclose(ROBUST.logpdf(x), ref, rtol=1e-12)
    draws = ROBUST.scipy().rvs(20_000, random_state=1)
    cdf = lambda v: 0.8 * stats.norm(-0.3, 0.15).cdf(v) + 0.2 * stats.norm(0, 2).cdf(v)
    # KS at alpha 0.001 on 20,000 draws: a wrong weight or component fails by far
    assert stats.kstest(draws, cdf).pvalue > 0.001
    assert str(ROBUST) == "Mixture(0.8 x Normal(mu=-0.3, sigma=0.15), 0.2 x Normal(mu=0, " \
                          "sigma=2))"


@pytest.mark.parametrize("components, weights, message", [
    ([bh.Prior("Normal", mu=0, sigma=1)], [1.0], "at least two components"),
    ([bh.Prior("Normal", mu=0, sigma=1)] * 2, [0.5, 0.6], "sum to 1.1"),
    ([bh.Prior("Normal", mu=0, sigma=1)] * 2, [1.0, 0.0], "one positive number per"),
    ([bh.Prior("Normal", mu=0, sigma=1), bh.Prior("HalfNormal", sigma=1)], [0.5, 0.5],
     "share their support"),
])
def test_invalid_mixtures_are_named_errors(components, weights, message):
    with pytest.raises(bh.SpecError, match=message):
        bh.Prior.mixture(components, weights)


def test_a_mixture_asked_of_prior_says_how_to_build_one():
    """bh.Prior("Mixture", ...) said Mixture is unknown and listed the plain distributions,
    with no word of bh.Prior.mixture; now it says how to build one (and where a
    per-interval mixture comes from)."""
    with pytest.raises(bh.SpecError, match=r"'Mixture' is not a plain distribution: build "
                       r"a mixture with bh\.Prior\.mixture\("):
        bh.Prior("Mixture", weights=[0.8, 0.2], components=[])
    with pytest.raises(bh.SpecError, match=r"per-interval MAP prior.*bh\.map_prior"):
        bh.Prior("interval_mixture")


def test_spec_round_trip_with_a_mixture(tmp_path):
    text = ((Path(__file__).resolve().parents[2] / "models" / "primary_os.toml").read_text()
            .replace('log_hr = { dist = "Normal", mu = 0.0, sigma = 1.0 }',
                     'log_hr = { dist = "Mixture", weights = [0.8, 0.2], components = ['
                     '{ dist = "Normal", mu = -0.3, sigma = 0.15 }, '
                     '{ dist = "Normal", mu = 0.0, sigma = 2.0 }] }'))
    spec = bh.load_spec(text)
    assert spec.prior_dict["log_hr"] == ROBUST
    assert bh.load_spec(bh.dump_spec(spec)) == spec
    with pytest.raises(bh.SpecError, match="priors.log_hr"):
        bh.load_spec(text.replace("[0.8, 0.2]", "[0.8, 0.3]"))


def test_weights_change_without_recompiling_and_the_fit_reports_them(example_trial):
    """Two mixtures with other weights and components of the same kinds share one compiled
    model (the compile key holds the structure only); the fit records the prior, its log
    prior feeds psense."""
    other = bh.Prior.mixture([bh.Prior("Normal", mu=0.0, sigma=0.5),
                              bh.Prior("Normal", mu=0.0, sigma=5.0)], weights=[0.5, 0.5])
    keys = [graph.prepare(bh.WeibullPH(priors={"log_hr": p}), example_trial, "os")[-1]
            for p in (ROBUST, other)]
    assert keys[0] == keys[1]
    plain = graph.prepare(bh.WeibullPH(), example_trial, "os")[-1]
    assert plain != keys[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        fit = bh.WeibullPH(priors={"log_hr": ROBUST}).fit(example_trial, "os", random_seed=2)
    assert fit.priors["log_hr"] == ROBUST
    assert "log_hr" in bh.psense(fit).index
    summary = bh.WeibullPH(priors={"log_hr": ROBUST}).prior_summary(example_trial)
    assert summary.loc["log_hr", "prior"].startswith("Mixture(0.8 x Normal")
