"""simulate_trial builds its TrialData from dates valid by construction, without reading its
own table back through every check (a design simulation makes thousands of trials). This
test is what shows the shortcut gives exactly the trial that reading the simulator's
patient and scan tables from scratch gives: every check passes, and progression and the
last progression-free scan read from the scans agree with the simulator's."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.data.assessments import LPF_COLUMN
from bayes_hcc.data.trial import TrialData
from tests.helpers import assert_same_trial

CONFIGS = {
    "default (scans every 2 months)": {},
    "jittered and missed scans, post-progression HR": dict(
        assessment_jitter_days=9.0, missed_visit_prob=0.2, post_progression_hr=2.5),
    "unequal schedules by arm": dict(assessment_interval={"sorafenib": 2.0,
                                                          "tace_sorafenib": 1.5},
                                     assessment_offset={"sorafenib": 0.0,
                                                        "tace_sorafenib": 0.5}),
    "visit dates only (no scan table)": dict(record_assessments=False),
    "progression observed exactly": dict(assessment_interval=None),
    "small trial, small sites, heavy dropout": dict(n_patients=14, sites=5,
                                                    dropout_per_year=0.6),
    "integer arm codes": dict(control=0, treatment=1),
}


def read_back(trial):
    """The simulator's tables as a file would hold them (strings), read with from_table."""
    f = trial.to_frame()
    raw = f[["patient_id", "site", "arm", "randomization_date", "progression_date",
             "death_date", "last_followup_date"]].copy()
    scans = trial.assessments
    if scans is not None:
        raw["progression_date"] = pd.NaT  # read from the scans
        scans = scans.sample(frac=1.0, random_state=1)  # any row order
        scans = scans.assign(assessment_date=scans["assessment_date"].dt.strftime("%Y-%m-%d"))
    elif LPF_COLUMN in f.columns:
        raw[LPF_COLUMN] = f[LPF_COLUMN]
    for col in raw.columns:
        if pd.api.types.is_datetime64_dtype(raw[col].dtype):
            raw[col] = raw[col].dt.strftime("%Y-%m-%d").fillna("")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TrialData.from_table(raw.iloc[::-1], control=trial.control,
                                    treatment=trial.treatment, time_unit=trial.time_unit,
                                    cut_date=trial.cut_date, assessments=scans, warn=False)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_simulated_trial_equals_reading_its_tables(config):
    for seed in range(8):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = bh.simulate_trial(random_seed=seed, **CONFIGS[config])
        want = read_back(got)
        assert_same_trial(got, want)
        assert got.endpoints == want.endpoints and got.layout == want.layout == "dates"
        # both arms coded as such (integer codes once made every patient control)
        assert set(got.endpoint("os").arm) == {0, 1} and got.control != got.treatment
        for ep in got.endpoints:  # the views models read
            a, b = got.endpoint(ep), want.endpoint(ep)
            np.testing.assert_array_equal(a.time, b.time)
            np.testing.assert_array_equal(a.event, b.event)
            np.testing.assert_array_equal(a.arm, b.arm)
            np.testing.assert_array_equal(a.site, b.site)
        # and the design's next step, a data cut, is the same on both
        cut = got.cut_date - pd.Timedelta(days=200)
        if (got.to_frame()["randomization_date"] <= cut).sum() > 8:
            try:
                c_want = want.cut(cut, warn=False)
            except bh.TrialDataError:
                continue
            assert got.cut(cut, warn=False).fingerprint == c_want.fingerprint


def test_a_simulated_trial_with_one_arm_is_a_named_error():
    # two patients in one site: the permuted block can put both in one arm
    seen = 0
    for seed in range(40):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bh.simulate_trial(n_patients=2, sites=1, random_seed=seed)
        except bh.TrialDataError as err:
            assert "both arms" in str(err) and "simulate more patients" in str(err)
            seen += 1
    assert seen > 0  # a block of [0, 0, 1, 1] puts 2 patients in one arm 1/3 of the time
