"""Covariates in the illness-death model: read from the trial as the single-endpoint models
read them, and (slow) their coefficients recovered from data simulated with known ones."""

import warnings

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.errors import ModelError
from bayes_hcc.validation.illness_death import simulate_illness_death


def _trial_with(**columns):
    frame = bh.datasets.load_example_trial().to_frame()
    for name, values in columns.items():
        frame[name] = values(frame)
    keep = [c for c in frame.columns if not c.startswith(("os_", "pfs_", "ttp_"))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bh.read_trial(frame[keep])


def test_covariates_are_encoded_as_in_the_single_endpoint_models():
    rng = np.random.default_rng(1)
    trial = _trial_with(age=lambda f: rng.normal(60, 10, len(f)),
                        ecog=lambda f: rng.choice(["0", "1", "2"], len(f)))
    d = bh.IllnessDeathData.from_trial(trial, covariates=["age", "ecog"],
                                       reference_levels={"ecog": "0"})
    assert d.X.shape == (trial.n_patients, 3)
    np.testing.assert_allclose(d.X.mean(axis=0), 0.0, atol=1e-12)  # centred: curves at X = 0
    assert d.covariate_labels == ("age", "ecog:contrast1", "ecog:contrast2")
    model = bh.IllnessDeath(covariates=["age", "ecog"], reference_levels={"ecog": "0"})
    assert bh.IllnessDeath.from_settings(model.settings()).covariates == ("age", "ecog")


def test_missing_covariates_and_completions_are_refused_by_name():
    trial = _trial_with(age=lambda f: np.where(np.arange(len(f)) == 4, np.nan, 60.0 +
                                               np.arange(len(f)) % 7))
    with pytest.raises(ModelError, match="age.*missing.*HCC-0005"):
        bh.IllnessDeath(covariates=["age"]).fit(trial)
    with pytest.raises(ModelError, match="not in the data"):
        bh.IllnessDeath(covariates=["weight"]).fit(trial)
    d = bh.IllnessDeathData.from_trial(bh.datasets.load_example_trial())
    with pytest.raises(ModelError, match="covariates need the trial"):
        bh.IllnessDeath(covariates=["age"]).fit(d)


@pytest.mark.slow
def test_covariate_coefficients_are_recovered():
    """600 patients, one standardized covariate with log HRs 0.5, -0.4 and 0.7 on the three
    transitions (progression seen at 2-monthly scans): each posterior mean within 3 posterior
    SDs of its truth (a 0.3% miss per coefficient if the posterior is calibrated), and the
    effects table reports exp(beta) per unit."""
    rng = np.random.default_rng(7)
    model = bh.IllnessDeath("weibull_ph", site_effect="none", covariates=["x1"])
    truth = {"progression::log_hr": -0.4, "progression::log_lambda": -1.6,
             "progression::log_shape": 0.1, "progression::beta": np.array([0.5]),
             "death_without_progression::log_hr": -0.2,
             "death_without_progression::log_lambda": -3.0,
             "death_without_progression::log_shape": 0.0,
             "death_without_progression::beta": np.array([-0.4]),
             "death_after_progression::log_hr": 0.0,
             "death_after_progression::log_lambda": -2.0,
             "death_after_progression::log_shape": 0.1,
             "death_after_progression::beta": np.array([0.7]),
             "site_effect": np.zeros((3, 1))}
    X = rng.standard_normal((600, 1))
    X = (X - X.mean()) / X.std()
    data = simulate_illness_death(model, truth, site_sizes=(600,), X=X, random_seed=rng)
    fit = model.fit(data, draws=1000, tune=1000, chains=2, random_seed=3)
    post = fit.datatree["posterior"]
    for t, want in (("progression", 0.5), ("death_without_progression", -0.4),
                    ("death_after_progression", 0.7)):
        b = post[f"{t}::beta"].values.ravel()
        assert abs(b.mean() - want) < 3 * b.std(), (t, b.mean(), b.std())
    table = fit.covariate_effects()
    assert table.loc[("progression", "x1 (per unit)"), "hr_median"] == pytest.approx(
        np.exp(np.median(post["progression::beta"].values)), rel=1e-6)


def test_covariate_rows_follow_their_patients_whatever_the_row_order():
    rng = np.random.default_rng(4)
    frame = bh.datasets.load_example_trial().to_frame()
    frame["age"] = rng.normal(60, 10, len(frame))
    keep = [c for c in frame.columns if not c.startswith(("os_", "pfs_", "ttp_"))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = bh.IllnessDeathData.from_trial(bh.read_trial(frame[keep]), covariates=["age"])
        b = bh.IllnessDeathData.from_trial(bh.read_trial(frame[keep].iloc[::-1]),
                                           covariates=["age"])
    xa = dict(zip(a.patient_id, a.X[:, 0]))
    xb = dict(zip(b.patient_id, b.X[:, 0]))
    assert all(xa[p] == pytest.approx(xb[p], abs=1e-12) for p in xa)
    age = dict(zip(frame["patient_id"], frame["age"]))
    z = {p: (age[p] - frame["age"].mean()) / frame["age"].std(ddof=0) for p in age}
    assert all(xa[p] == pytest.approx(z[p], abs=1e-12) for p in xa)  # this patient's age
