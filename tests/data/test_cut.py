"""TrialData.cut against a hand-computed example."""

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.errors import TrialDataError

MONTH = 30.4375


def trial():
    return bh.read_trial(pd.DataFrame({
        "patient_id": ["A1", "A2", "A3", "B1", "B2", "B3"],
        "site": ["A", "A", "A", "B", "B", "B"],
        "arm": ["sorafenib", "tace_sorafenib"] * 3,
        "randomization_date": ["2019-01-01", "2019-01-01", "2019-03-01",
                               "2019-02-01", "2019-05-01", "2019-07-01"],
        "progression_date": ["2019-02-01", "2019-05-01", "", "2019-04-01", "", ""],
        "death_date": ["2019-04-01", "2019-08-01", "", "", "2019-05-21", ""],
        "last_followup_date": ["2019-04-01", "2019-08-01", "2019-09-01", "2019-10-01",
                               "2019-05-21", "2019-08-01"],
    }))


def test_cut_matches_hand_computation():
    cut = trial().cut("2019-06-01")
    # B3 randomized after the cut: left out.
    assert list(cut.to_frame()["patient_id"]) == ["A1", "A2", "A3", "B1", "B2"]
    os_, pfs, ttp = (cut.endpoint(e) for e in ("os", "pfs", "ttp"))
    # A1: died 2019-04-01 (before cut): event at 90 days.
    # A2: progressed 2019-05-01 (before), died 2019-08-01 (after cut): OS censored at cut
    #     (151 days), PFS/TTP event at 120 days.
    # A3: alive, last seen after the cut: censored at the cut (92 days).
    # B1: progressed 2019-04-01, last seen after cut: OS censored at cut (120 days).
    # B2: died 2019-05-21 before the cut: OS event at 20 days; TTP censored at death.
    np.testing.assert_allclose(os_.time * MONTH, [90, 151, 92, 120, 20])
    np.testing.assert_array_equal(os_.event, [1, 0, 0, 0, 1])
    np.testing.assert_allclose(pfs.time * MONTH, [31, 120, 92, 59, 20])
    np.testing.assert_array_equal(pfs.event, [1, 1, 0, 1, 1])
    np.testing.assert_allclose(ttp.time * MONTH, [31, 120, 92, 59, 20])
    np.testing.assert_array_equal(ttp.event, [1, 1, 0, 1, 0])
    assert cut.cut_date == pd.Timestamp("2019-06-01")
    assert "cut 2019-06-01" in repr(cut)


def test_cut_of_times_layout_with_randomization_dates_agrees():
    full = trial()
    frame = full.to_frame().drop(columns=["progression_date", "death_date",
                                          "last_followup_date"])
    times = bh.read_trial(frame)
    a, b = full.cut("2019-06-01"), times.cut("2019-06-01")
    for e in ("os", "pfs", "ttp"):
        np.testing.assert_allclose(a.endpoint(e).time, b.endpoint(e).time)
        np.testing.assert_array_equal(a.endpoint(e).event, b.endpoint(e).event)


def test_event_on_the_cut_day_is_known():
    cut = trial().cut("2019-04-01")
    assert cut.endpoint("os").event[0] == 1  # A1 died on the cut date


def test_cut_errors():
    frame = trial().to_frame()
    times = frame.drop(columns=["randomization_date", "progression_date", "death_date",
                                "last_followup_date"])
    with pytest.raises(TrialDataError, match="needs calendar dates"):
        bh.read_trial(times).cut("2019-06-01")
    with pytest.raises(TrialDataError, match="already cut at 2019-06-01"):
        trial().cut("2019-06-01").cut("2019-07-01")
    # not a date: the package's error, not pandas' parser (and 2019 is not read as
    # 2019 nanoseconds after 1970)
    for bad in ("2019-13-01", "June", 2019, None):
        with pytest.raises(TrialDataError, match=r"cut: date=.* is not a calendar date"):
            trial().cut(bad)
    with pytest.raises(TrialDataError, match=r"cut_date=2020 is not a calendar date"):
        bh.simulate_trial(20, cut_date=2020)
    # a year or a month has no day: "2019-06" was cut at 2019-06-01, a month early for
    # somebody who meant the end of June
    for partial in ("2019-06", "2019", " 2019-6 "):
        with pytest.raises(TrialDataError, match=r"cut: date=.* has no day; give the full "
                           r"date as 'YYYY-MM-DD'"):
            trial().cut(partial)


def test_cut_of_example_trial_is_consistent():
    full = bh.datasets.load_example_trial()
    early = full.cut("2018-12-31")
    assert early.n_patients < full.n_patients
    assert early.endpoint("os").n_events < full.endpoint("os").n_events
    # Cutting never lengthens follow-up of a patient.
    f, e = full.to_frame().set_index("patient_id"), early.to_frame().set_index("patient_id")
    assert (e["os_time"] <= f.loc[e.index, "os_time"] + 1e-12).all()
    assert early.cut("2018-12-31") == early


def test_a_subset_of_one_arm_describes_it_and_refuses_a_comparison(example_trial):
    """``trial.subset(arm == control)`` is a fair way to describe one arm, but it warned
    that the other arm "has no events" (it has no patients) and a model fitted it without
    complaint: the HR's posterior was its prior. Now the warning says the arm is empty and
    both kinds of model refuse such data by name."""
    control = example_trial.endpoint("os").arm == 0
    with pytest.warns(bh.DataWarning, match="arm 'tace_sorafenib' has no patients in these "
                      "data"):
        one = example_trial.subset(control)
    assert one.summary("os").loc[("arm", "sorafenib"), "patients"] == control.sum()
    with pytest.raises(bh.ModelError, match="os: arm 'tace_sorafenib' has no patients"):
        bh.WeibullPH(site_effect="none").fit(one, "os")
    with pytest.raises(bh.ModelError, match="IllnessDeath: arm 'tace_sorafenib' has no "
                       "patients"):
        bh.IllnessDeath("weibull_ph", site_effect="none").fit(one)


def test_a_subset_mask_is_read_as_true_or_false(example_trial):
    """A mask of 0/1 (a per_protocol column) selects as booleans do; positions (0, 1, 2,
    ...) were read as truth values and kept all but the first patient, and a missing
    value kept its patient: both are refused with the rows, as is a mask selecting no
    patient (it made a trial of 0 patients that failed later)."""
    n = example_trial.n_patients
    flags = (np.arange(n) % 3 != 0).astype(int)
    assert example_trial.subset(flags) == example_trial.subset(flags == 1)
    assert example_trial.subset(flags).n_patients == int(flags.sum())
    with pytest.raises(TrialDataError, match=r"mask must be True/False \(or 1/0\) for every "
                       r"patient; rows 3, 4, 5.*np.isin"):
        example_trial.subset(np.arange(n))
    with_nan = flags.astype(float)
    with_nan[5] = np.nan
    with pytest.raises(TrialDataError, match=r"rows 6 are nan"):
        example_trial.subset(with_nan)
    with pytest.raises(TrialDataError, match=r"the mask selects no patient"):
        example_trial.subset(np.zeros(n, bool))
