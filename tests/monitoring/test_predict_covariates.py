"""Predictions from a covariate-adjusted or stratified analysis: each enrolled patient's
future uses their own covariates (and stratum's baseline), new patients carry the
covariates (and stratum) of an enrolled patient of their site (Bayesian bootstrap), and the
completed trial carries the columns to the final refit.

The fits here are exponential models without site effects: with a constant hazard the
conditional residual time is exponential with mean 1 / exp(log_lambda + eta), a closed form
the tests compute by hand.
"""

import warnings

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.data.trial import TrialData
from bayes_hcc.monitoring.plan import plan_from_dict
from bayes_hcc.monitoring.predict import FutureSimulator
from bayes_hcc.units import DAYS_PER_UNIT
from tests.helpers import complete_many

CUT = "2018-10-31"  # accrual still going on: new patients are simulated
SPEC = {"name": "exp_ecog", "endpoint": "os", "family": "exponential_ph",
        "covariates": ["ecog"], "site": {"effect": "none"},
        "sampler": {"draws": 300, "tune": 300, "chains": 2, "seed": 1}}


@pytest.fixture(scope="module")
def cut(example_trial):
    """The example trial with an ECOG-like 0/1 column (30% ones, more at the largest site,
    so that sites differ in case mix), cut while accrual goes on."""
    frame = example_trial.to_frame()
    rng = np.random.default_rng(8)
    big = frame["site"] == frame["site"].value_counts().index[0]
    frame["ecog"] = (rng.uniform(size=len(frame)) < np.where(big, 0.6, 0.2)).astype(int)
    trial = TrialData(frame, endpoints=example_trial.endpoints,
                      control=example_trial.control, treatment=example_trial.treatment,
                      time_unit=example_trial.time_unit, layout=example_trial.layout,
                      cut_date=example_trial.cut_date, source="example + ecog",
                      assessments=example_trial.assessments)
    return trial.cut(CUT, warn=False)


@pytest.fixture(scope="module")
def plan():
    return plan_from_dict({"name": "cov", "analysis": SPEC,
                           "final": {"events": 100, "success": 0.975},
                           "prediction": {"sample_size": 130, "n_sims": 6}})


@pytest.fixture(scope="module")
def fit(cut, plan):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bh.fit_spec(plan.spec, cut, check=False)


def test_completions_use_each_patients_covariates(cut, plan, fit):
    """With the covariate's coefficient set to 1.2 per SD in one posterior draw, each
    patient's simulated residual time has the exponential mean of their own covariate
    value, standardized by hand (mean 0, SD 1 over the enrolled patients, ddof 0). 2,000
    completions of that draw: every patient's mean within 4.5 Monte Carlo SE (about 50
    patients at once; the days are whole, which adds under one day to a mean of months)."""
    sim = FutureSimulator(cut, fit, plan.prediction)
    sim.params = {k: v.copy() for k, v in sim.params.items()}
    sim.params["beta"][:] = 1.2
    x = cut.to_frame()["ecog"].to_numpy(float)
    z = (x - x.mean()) / x.std()
    log_lambda = float(sim.params["log_lambda"][0])
    log_hr = float(sim.params["log_hr"][0])
    day = DAYS_PER_UNIT[cut.time_unit]
    rng = np.random.default_rng(2)
    idx = np.flatnonzero(sim.at_risk)
    reps = 2000
    residual, new, rows, sites, _ = complete_many(sim, reps, rng, idx, x)
    mean = day / np.exp(log_lambda + log_hr * sim.arm[idx] + 1.2 * z[idx])
    z_score = (residual.mean(axis=0) - 0.5 - mean) / (mean / np.sqrt(reps))
    assert np.abs(z_score).max() < 4.5, z_score
    # a new patient's time comes from the covariates they carry
    for v in (0, 1):
        expect = day / np.exp(log_lambda + 1.2 * z[x == v][0])
        got = new[v]
        assert abs(got.mean() - 0.5 - expect) < 4 * expect / np.sqrt(len(got)), (v, len(got))
    # ... which are those of an enrolled patient of their own site, in proportion
    assert np.array_equal(sim.site[rows], sites)
    for s in np.unique(sim.site):
        share = x[sim.site == s].mean()
        drawn = x[rows[sites == s]]
        # Bayesian bootstrap: the drawn share's SD is at most sqrt(p(1-p)/n_s) per completed
        # trial (the weights), so its mean over 2,000 trials is well inside 0.03
        assert abs(drawn.mean() - share) < 0.03, (s, drawn.mean(), share)


def test_the_completed_trial_carries_the_covariates(cut, plan, fit):
    sim = FutureSimulator(cut, fit, plan.prediction)
    out = sim.simulate(0, np.random.default_rng(4))
    done = sim.completed_trial(out, float(np.max(out["entry"])) + 1)
    assert "ecog" in done.covariates and done.n_patients == len(out["entry"])
    ecog = done.to_frame()["ecog"].to_numpy()
    raw = cut.to_frame()["ecog"].to_numpy()
    n0 = len(sim.entry)
    assert np.array_equal(ecog[:n0], raw)  # enrolled patients keep their own
    assert np.array_equal(ecog[n0:], raw[out["covariate_row"][n0:]])


def test_ppos_of_a_covariate_adjusted_plan(cut, plan, fit):
    """The PPoS of a plan whose analysis adjusts for a covariate runs end to end (it was
    refused), each completed trial refitted with the covariate, and is reproducible."""
    kw = dict(fit=fit, random_seed=3, refit={"draws": 200, "tune": 200, "chains": 2})
    first = bh.predictive_probability(cut, plan, **kw)
    assert 0 <= first.ppos <= 1 and first.n_sims == 6
    assert bh.predictive_probability(cut, plan, **kw).ppos == first.ppos


def test_interim_look_with_ppos_and_design_refusal(cut, plan):
    """A look of the covariate-adjusted plan computes its PPoS into the record; a design
    simulation of it is refused before any trial is simulated (simulated trials have no
    covariates; it failed at the first fit with 'ecog not in the data')."""
    looked = plan_from_dict({"name": "cov", "analysis": SPEC,
                             "looks": [{"name": "i1", "date": CUT, "efficacy": 0.995}],
                             "final": {"events": 100, "success": 0.975},
                             "prediction": {"sample_size": 130, "n_sims": 4}})
    res = bh.interim_analysis(cut, looked, look=1, ppos=True, fast=True)
    assert 0 <= res.record["ppos"]["ppos"] <= 1 and res.record["ppos"]["n_sims"] == 4
    with pytest.raises(bh.BayesHCCError, match="uses the column.*ecog.*no patient columns"):
        bh.simulate_design(plan, n_trials=2)


def test_an_illness_death_completion_carries_the_covariates_the_plan_needs(cut, plan):
    """An illness-death completion model with the plan's covariates completes the trial
    with them (a point-mass posterior here: no MCMC for the completion); one without them
    is refused before it is fitted (its completed trials would lack the column the final
    refit adjusts for: the refit failed inside a worker)."""
    from tests.multistate.test_completion import point_fit

    joint = point_fit(cut, covariates=["ecog"], beta=(0.5, 0.2, 0.3))
    res = bh.predictive_probability(cut, plan, completion=joint, n_sims=4, random_seed=2,
                                    refit={"draws": 200, "tune": 200, "chains": 2})
    assert 0 <= res.ppos <= 1 and res.n_sims == 4
    with pytest.raises(bh.BayesHCCError, match="adjusts for ecog, which the illness-death "
                       r"completion model does not have.*covariates=\['ecog'\]"):
        bh.predictive_probability(cut, plan, completion=bh.IllnessDeath("weibull_ph"))
    with pytest.raises(bh.BayesHCCError, match="completion_model: .*adjusts for ecog"):
        bh.interim_analysis(cut, plan, look="final", completion_model=bh.IllnessDeath())


@pytest.fixture(scope="module")
def by_region(example_trial):
    """The example trial with a 'region' column (40% north), cut while accruing, and a plan
    whose exponential analysis has a baseline stratified by it."""
    frame = example_trial.to_frame()
    rng = np.random.default_rng(8)
    frame["region"] = np.where(rng.uniform(size=len(frame)) < 0.4, "north", "south")
    trial = TrialData(frame, endpoints=example_trial.endpoints,
                      control=example_trial.control, treatment=example_trial.treatment,
                      time_unit=example_trial.time_unit, layout=example_trial.layout,
                      cut_date=example_trial.cut_date,
                      assessments=example_trial.assessments).cut(CUT, warn=False)
    spec = {**{k: v for k, v in SPEC.items() if k != "covariates"}, "name": "exp_region",
            "strata": {"column": "region", "pooling": "partial"}}
    plan = plan_from_dict({"name": "strat", "analysis": spec,
                           "final": {"events": 100, "success": 0.975},
                           "prediction": {"sample_size": 130, "n_sims": 4}})
    return trial, plan


def test_an_illness_death_completion_carries_the_strata_column(by_region):
    """An illness-death completion (no covariates of its own) of a plan stratified by a
    column: its completed trials carry the column, each new patient that of the enrolled
    patient drawn for them, so the final refit can stratify (it failed there)."""
    from tests.multistate.test_completion import point_fit

    trial, strat = by_region
    res = bh.predictive_probability(trial, strat, completion=point_fit(trial), n_sims=4,
                                    random_seed=2,
                                    refit={"draws": 200, "tune": 200, "chains": 2})
    assert 0 <= res.ppos <= 1 and res.n_sims == 4


def test_completions_of_a_stratified_baseline_use_each_patients_stratum(by_region):
    """A baseline stratified by a 'region' column (partial pooling; predictions from it were
    refused: "new patients would need a stratum"). With the strata's log-hazard deviations
    set to -0.7 and +0.7 in one draw, every at-risk patient's mean residual time is that of
    their own stratum, a new patient's that of the stratum of the enrolled patient they
    were drawn from (their region, which the completed trial carries), within 4.5 MC SE
    over 2,000 completions; and the PPoS runs end to end."""
    trial, strat = by_region
    frame = trial.to_frame()
    rng = np.random.default_rng(8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bh.fit_spec(strat.spec, trial, check=False)
    assert fit.strata == ("north", "south")
    sim = FutureSimulator(trial, fit, strat.prediction)
    sim.params = {k: v.copy() for k, v in sim.params.items()}
    dev = np.array([-0.7, 0.7])
    sim.params["stratum_dev_log_lambda"][0] = dev
    region = frame["region"]
    stratum = (region.to_numpy() == "south").astype(int)  # by hand: north 0, south 1
    log_lambda, log_hr = float(sim.params["log_lambda"][0]), float(sim.params["log_hr"][0])
    day = DAYS_PER_UNIT[trial.time_unit]
    idx = np.flatnonzero(sim.at_risk)
    reps = 2000
    residual, new, _, _, out = complete_many(sim, reps, rng, idx, stratum)
    mean = day / np.exp(log_lambda + dev[stratum[idx]] + log_hr * sim.arm[idx])
    score = (residual.mean(axis=0) - 0.5 - mean) / (mean / np.sqrt(reps))
    assert np.abs(score).max() < 4.5, score
    for st in (0, 1):
        expect = day / np.exp(log_lambda + dev[st])
        got = new[st]
        assert abs(got.mean() - 0.5 - expect) < 4.5 * expect / np.sqrt(len(got)), st
    done = sim.completed_trial(out, float(out["entry"].max()) + 1)
    assert np.array_equal(done.to_frame()["region"].to_numpy(),
                          region.to_numpy()[out["covariate_row"]])
    # simulated design trials have no region column: refused before any is simulated
    with pytest.raises(bh.BayesHCCError, match="uses the column.*region"):
        bh.simulate_design(strat, n_trials=2)
    res = bh.predictive_probability(trial, strat, fit=fit, random_seed=1,
                                    refit={"draws": 200, "tune": 200, "chains": 2})
    assert 0 <= res.ppos <= 1 and res.n_sims == 4
