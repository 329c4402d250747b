"""The Cox partial likelihood behind ``method="normal"``'s final rule, checked against
statsmodels' and lifelines' Cox models, and the final probability it gives, including
data where the Cox estimate does not exist."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from statsmodels.duration.hazard_regression import PHReg

import bayes_hcc as bh
from bayes_hcc.data.km import cox_log_hr
from bayes_hcc.monitoring.partial_likelihood import (efron_log_hr, efron_terms,
                                                      normal_prior_posterior)
from bayes_hcc.monitoring.predict import normal_final_probability

PLAN = Path(__file__).resolve().parents[2] / "models" / "monitoring.toml"


def _data(rng, n, digits):
    """Two arms, 6 strata, exponential times with censoring, rounded to ``digits`` decimals
    (0 digits: many tied event times, tied with censoring times too)."""
    arm = rng.integers(0, 2, n)
    site = rng.integers(0, 6, n)
    t = rng.exponential(10 * np.exp(0.3 * arm), n)
    c = rng.uniform(0, 30, n)
    return np.minimum(t, c).round(digits), (t < c).astype(float), arm, site


@pytest.mark.parametrize("digits", [0, 1, 6])
@pytest.mark.parametrize("stratified", [False, True])
def test_estimate_and_se_equal_statsmodels_and_lifelines(digits, stratified):
    """statsmodels' PHReg (Efron ties) maximises the same partial likelihood to machine
    precision: estimate and SE agree to 1e-8 on 15 data sets of 20-200 patients. lifelines
    stops its Newton iterations earlier (its score at its own estimate is up to ~1e-3 here),
    so its estimate agrees to 2e-3 and its SE to 1e-4."""
    rng = np.random.default_rng(100 * digits + stratified)
    for _ in range(15):
        t, e, arm, site = _data(rng, int(rng.integers(20, 200)), digits)
        strata = site if stratified else None
        b, se = efron_log_hr(t, e, arm, strata)
        if not np.isfinite(b):  # a stratum layout with a monotone likelihood: tested below
            continue
        ref = PHReg(t, arm[:, None].astype(float), status=e, strata=strata,
                    ties="efron").fit()
        assert b == pytest.approx(ref.params[0], abs=1e-8)
        assert se == pytest.approx(ref.bse[0], abs=1e-8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lb, lse = cox_log_hr(t, e, arm, strata=strata)
        assert b == pytest.approx(lb, abs=2e-3) and se == pytest.approx(lse, abs=1e-4)


def test_log_likelihood_equals_statsmodels_at_any_beta():
    """The likelihood itself, not only its maximum: statsmodels' Efron log partial
    likelihood at five values of the log HR, with strata and ties."""
    t, e, arm, site = _data(np.random.default_rng(7), 150, 0)
    terms = efron_terms(t, e, arm, site)
    model = PHReg(t, arm[:, None].astype(float), status=e, strata=site, ties="efron")
    for beta in (-2.0, -0.5, 0.0, 0.3, 1.5):
        assert terms.loglik(beta) == pytest.approx(model.loglike(np.array([beta])), abs=1e-9)


def test_an_arm_without_events_has_no_estimate_but_a_posterior_mode():
    """All deaths in arm 0: the partial likelihood rises forever as the log HR falls, so the
    estimate is -inf (lifelines stops at about -19 with an SE in the thousands, which a
    Wald combination with the prior turns into the prior's own answer). With a N(0, 1)
    prior the mode exists; it equals scipy's maximum of statsmodels' log partial likelihood
    plus the log prior, and the SD the curvature there (central differences)."""
    rng = np.random.default_rng(2)
    arm = np.r_[np.zeros(30), np.ones(30)].astype(int)
    t = rng.exponential(5, 60)
    e = np.r_[np.ones(30), np.zeros(30)]
    assert efron_log_hr(t, e, arm) == (-np.inf, np.inf)
    assert efron_log_hr(t, 1 - e, arm)[0] == np.inf
    mode, sd = normal_prior_posterior(t, e, arm, None, 0.0, 1.0)
    model = PHReg(t, arm[:, None].astype(float), status=e, ties="efron")

    def f(b):
        return -(model.loglike(np.array([b])) - 0.5 * b**2)

    ref = optimize.minimize_scalar(f, bounds=(-10, 5), method="bounded",
                                   options={"xatol": 1e-10}).x
    h = 1e-4
    curv = (f(ref + h) - 2 * f(ref) + f(ref - h)) / h**2
    assert mode == pytest.approx(ref, abs=1e-6)
    assert sd == pytest.approx(1 / np.sqrt(curv), rel=1e-4)
    assert mode < -1.5  # the data pull far from the prior mean 0


def _frame(trial):
    f = trial.to_frame()
    return f[["patient_id", "site", "arm", "os_time", "os_event"]].copy()


def test_final_probability_when_the_treatment_arm_has_no_deaths(example_trial):
    """Every TACE-sorafenib death censored: the treatment is as good as the data can show,
    P(HR < 1) is near 1 (it was the prior's 0.5 with lifelines' divergent estimate), and it
    equals the posterior-mode normal approximation computed here from the parts."""
    spec = bh.load_plan(PLAN).spec
    f = _frame(example_trial)
    f.loc[f["arm"] == "tace_sorafenib", "os_event"] = 0
    with pytest.warns(bh.DataWarning, match="no events"):
        trial = bh.read_trial(f)
    p = normal_final_probability(trial, spec)
    ep = trial.endpoint("os")
    mode, sd = normal_prior_posterior(ep.time, ep.event, ep.arm, ep.site, 0.0,
                                      _prior_sigma(spec))
    assert p == pytest.approx(stats.norm.cdf(-mode / sd), abs=1e-12)
    assert p > 0.99


def _prior_sigma(spec):
    from bayes_hcc.models.from_spec import build

    model = build(spec)
    prior = model.resolved_priors(model.family_for(None, None))["log_hr"]
    assert prior.params["mu"] == 0.0
    return float(prior.params["sigma"])


def test_final_probability_ignores_the_time_unit_and_row_order(example_trial):
    """The partial likelihood reads only the order of the times: the same trial in days
    and with its rows shuffled gives the same P(HR < 1) (to rounding)."""
    spec = bh.load_plan(PLAN).spec
    f = _frame(example_trial)
    p = normal_final_probability(bh.read_trial(f), spec)
    days = f.assign(os_time=f["os_time"] * 30.4375).sample(frac=1.0, random_state=3)
    q = normal_final_probability(bh.read_trial(days, time_unit="days"), spec)
    assert q == pytest.approx(p, abs=1e-12)
    assert 0.0 < p < 1.0
    # and the Cox estimate inside equals statsmodels' on the trial itself
    ep = example_trial.endpoint("os")
    b, _ = efron_log_hr(ep.time, ep.event, ep.arm, ep.site)
    ref = PHReg(ep.time, ep.arm[:, None].astype(float), status=ep.event, strata=ep.site,
                ties="efron").fit()
    assert b == pytest.approx(ref.params[0], abs=1e-8)


def _spec(**changes):
    from bayes_hcc.spec.model_spec import read_toml, spec_from_dict

    d = read_toml(Path(PLAN).parent / "primary_os.toml")
    d.update(changes)
    return spec_from_dict(d)


@pytest.mark.parametrize("changes, named", [
    ({"family": "lognormal_aft", "options": {}, "priors": {}}, "TR"),
    ({"covariates": ["age"]}, "age"),
    ({"strata": {"column": "ecog", "pooling": "none"}}, "stratifies its baseline"),
    ({"priors": {"log_hr": {"dist": "StudentT", "nu": 3, "mu": 0.0, "sigma": 1.0}}},
     "StudentT"),
])
def test_the_normal_rule_refuses_an_analysis_it_does_not_approximate(example_trial,
                                                                     changes, named):
    """An unadjusted site-stratified Cox estimate with a normal prior approximates a
    proportional-hazards analysis without covariates or baseline strata, under a Normal
    log-HR prior. For any other spec the final rule and the PPoS refuse with a named error
    pointing to the methods that refit the spec itself (an AFT spec used to fail with a
    KeyError from deep inside, a covariate-adjusted one was silently approximated
    unadjusted); the PPoS refuses before simulating or fitting anything."""
    import dataclasses

    spec = _spec(**changes)
    with pytest.raises(bh.BayesHCCError, match=named) as err:
        normal_final_probability(example_trial, spec)
    assert "method='mcmc'" in str(err.value)
    plan = dataclasses.replace(bh.load_plan(PLAN), spec=spec)
    cut = example_trial.cut(pd.Timestamp(bh.look_date(example_trial, plan.look(1), "os")),
                            warn=False)
    with pytest.raises(bh.BayesHCCError, match=named):
        bh.predictive_probability(cut, plan, n_sims=5, method="normal")


def test_a_plan_asking_for_the_normal_rule_on_an_aft_analysis_is_refused_at_load():
    """The same check when the plan is read: a plan whose [prediction] method is "normal"
    over an analysis the rule does not approximate is a SpecError naming the setting,
    before any interim (the same plan with method "mcmc" loads)."""
    from bayes_hcc.monitoring.plan import plan_from_dict
    from bayes_hcc.spec.model_spec import read_toml

    spec = read_toml(Path(PLAN).parent / "primary_os.toml")
    spec.update(family="lognormal_aft", options={}, priors={})
    plan = {"analysis": spec, "looks": [{"events": 40, "efficacy": 0.99}],
            "final": {"events": 100, "success": 0.975}}
    assert plan_from_dict({**plan, "prediction": {"method": "mcmc"}})
    with pytest.raises(bh.SpecError, match="prediction.method = 'normal'.*TR"):
        plan_from_dict({**plan, "prediction": {"method": "normal"}})
