"""An illness-death fit saved and loaded: ``fit.save(path)`` and ``bh.load_fit(path)``, as for a
single-endpoint fit. The loaded fit answers every question with the same numbers (it carries
the patients' progression and death data, the model's settings and the spec it ran from),
and the file refuses what a saved fit refuses: overwriting, an edited file, settings that no
longer rebuild the families and priors the draws came from."""

import json
import warnings

import h5py
import numpy as np
import pytest
import xarray as xr

import bayes_hcc as bh
from bayes_hcc.cli.app import main
from bayes_hcc.errors import BayesHCCError


@pytest.fixture(scope="module")
def trial():
    return bh.datasets.load_example_trial()


def _same_answers(a, b):
    xr.testing.assert_identical(a.datatree["posterior"].to_dataset(),
                                b.datatree["posterior"].to_dataset())
    assert repr(a) == repr(b)
    assert a.summary().equals(b.summary())
    times = [0.0, 3.0, 9.0, 15.0]
    for estimand in ("typical_site", "standardized"):
        xr.testing.assert_identical(a.state_probabilities(times, estimand=estimand),
                                    b.state_probabilities(times, estimand=estimand))
    xr.testing.assert_identical(a.medians(), b.medians())
    assert a.medians().attrs == b.medians().attrs
    assert a.prob_superiority(tau=12).equals(b.prob_superiority(tau=12))
    assert a.convergence_problems() == b.convergence_problems()
    assert a.random_seed == b.random_seed and a.data_fingerprint == b.data_fingerprint


def test_a_spec_fit_saved_and_loaded_gives_the_same_answers_and_report(trial, tmp_path):
    fit = bh.fit_spec("models/illness_death.toml", trial, draws=200, tune=300, chains=2,
                      check=False)
    path = fit.save(tmp_path / "joint.nc")
    loaded = bh.load_fit(path)
    assert isinstance(loaded, bh.IllnessDeathFit)
    _same_answers(fit, loaded)
    assert loaded.spec is not None and loaded.spec.hash == fit.spec.hash
    assert loaded.model.settings() == fit.model.settings()
    np.testing.assert_array_equal(loaded.data.prog_upper, fit.data.prog_upper)
    assert list(loaded.data.patient_id) == list(fit.data.patient_id)
    xr.testing.assert_identical(bh.median_survival(loaded, endpoint="pfs"),
                                bh.median_survival(fit, endpoint="pfs"))
    # the quantity functions take the file's path, as they take a single-endpoint fit's
    xr.testing.assert_identical(bh.median_survival(path, endpoint="pfs"),
                                bh.median_survival(fit, endpoint="pfs"))
    xr.testing.assert_identical(bh.rmst(str(path), 12.0, endpoint="os"),
                                bh.rmst(fit, 12.0, endpoint="os"))
    assert bh.prob_median_gain(path, endpoint="os").probability == \
        bh.prob_median_gain(fit, endpoint="os").probability
    with pytest.raises(BayesHCCError, match="an illness-death fit has its own"):
        bh.hazard_ratio(path)
    # the report from the file, as a user and `bayes-hcc report joint.nc` write it
    bh.report(loaded, tmp_path / "joint.html")
    assert "illness-death" in (tmp_path / "joint.html").read_text()
    with pytest.raises(SystemExit) as done:
        main(["report", str(path), "--out", str(tmp_path / "cli.html")])
    assert done.value.code in (0, None) and (tmp_path / "cli.html").is_file()
    # saving refuses to overwrite, as every saved result
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fit.save(path)
    fit.save(path, overwrite=True)


def test_piecewise_with_covariates_round_trip(trial, tmp_path):
    """The piecewise baseline's cut points come from the data and covariates are scaled by
    the data: both rebuilt from the saved patients, checked against what was stored."""
    frame = trial.to_frame()
    rng = np.random.default_rng(1)
    frame["age"] = rng.normal(60, 10, len(frame))
    frame["ecog"] = rng.choice(["0", "1", "2"], len(frame))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the trial as read back: same warnings as before
        with_covariates = bh.read_trial(frame[[c for c in frame.columns if not
                                               c.startswith(("os_", "pfs_", "ttp_"))]])
    model = bh.IllnessDeath("piecewise_exponential", site_effect="none",
                            covariates=["age", "ecog"], reference_levels={"ecog": "0"})
    fit = model.fit(with_covariates, draws=100, tune=200, chains=2, random_seed=5,
                    check=False)
    loaded = bh.load_fit(fit.save(tmp_path / "pwe.nc"))
    _same_answers(fit, loaded)
    assert loaded.covariate_effects().equals(fit.covariate_effects())
    np.testing.assert_array_equal(loaded.data.X, fit.data.X)
    assert loaded.spec is None


def test_an_edited_file_or_settings_that_no_longer_match_are_refused(trial, tmp_path):
    # the spec's model (Weibull transitions, random site effects), which the tests above
    # compiled: on an empty compile cache (CI) a new illness-death graph costs 25-40 s
    fit = bh.IllnessDeath("weibull_ph").fit(
        trial, draws=100, tune=200, chains=2, random_seed=3, check=False)
    path = fit.save(tmp_path / "joint.nc")
    with h5py.File(path, "r+") as f:  # one patient's death time edited
        f["illness_death_data"]["time"][0] += 1.0
    with pytest.raises(BayesHCCError, match="does not match its digest"):
        bh.load_fit(path)
    # read without the check (forensic), the rebuilt families no longer match the draws'
    dt = fit.datatree.copy()
    dt.attrs["families"] = json.dumps([{"family": "weibull_ph", "edited": True}] * 3)
    fit.datatree = dt
    other = fit.save(tmp_path / "edited.nc")
    with pytest.raises(BayesHCCError, match="families"):
        bh.load_fit(other)
    # a kind of fit this version does not know (a newer one's): named, not guessed at
    with h5py.File(other, "r+") as f:
        f.attrs["bayes_hcc_kind"] = "competing_risks"
    with pytest.raises(BayesHCCError, match="holds a 'competing_risks' fit, which this "
                                            "version of bayes_hcc cannot read"):
        bh.load_fit(other)


def test_a_fit_in_days_with_integer_arm_codes_round_trips(trial, tmp_path):
    """Off the months path: data read in days with arms coded 0/1 (``control=0,
    treatment=1``). The loaded fit keeps the unit and the arm labels, and answers in days
    (that the answers do not depend on the unit: ``test_agreement``)."""
    frame = trial.to_frame()
    frame["arm"] = (frame["arm"] == trial.treatment).astype(int)
    cols = ["patient_id", "site", "arm", "randomization_date", "progression_date",
            "death_date", "last_followup_date", "last_progression_free_date"]
    days = bh.read_trial(frame[cols], time_unit="days", control=0, treatment=1)
    model = bh.IllnessDeath("weibull_ph")  # the same compiled model as in months
    fit = model.fit(days, draws=200, tune=300, chains=2, random_seed=4, check=False)
    loaded = bh.load_fit(fit.save(tmp_path / "days.nc"))
    _same_answers(fit, loaded)
    assert loaded.data.time_unit == "days" and tuple(loaded.data.arms) == ("0", "1")
    med = bh.median_survival(loaded, endpoint="os")
    assert med.attrs["units"] == "days" and list(med["arm"].values) == ["0", "1",
                                                                       "difference"]
