"""TrialData.cut of dates-layout data against an independent route: the patient table and
scan table a data manager would export on the cut date (deaths, progressions and scans
after it unknown, follow-up ending at it), read and validated from scratch.

``cut`` derives the cut's endpoints from the already-validated data without checking them
again (it is what every interim look and simulated design look does, thousands of times);
this test is what shows that shortcut gives exactly the trial the full reading gives."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.data.assessments import LPF_COLUMN
from bayes_hcc.data.trial import TrialData
from tests.helpers import assert_same_trial


def exported_at(trial, cut, *, zero_time_events="error"):
    """Read, from scratch, the tables as known on ``cut`` (the independent route)."""
    cut = pd.Timestamp(cut)
    f = trial.to_frame()
    f = f[f["randomization_date"] <= cut].reset_index(drop=True)
    raw = f.drop(columns=[c for c in f.columns
                          if c.endswith(("_time", "_event", "_lower"))])
    death_known = f["death_date"].notna() & (f["death_date"] <= cut)
    raw["death_date"] = f["death_date"].where(death_known)
    raw["progression_date"] = f["progression_date"].where(f["progression_date"] <= cut)
    lfu = f["last_followup_date"]
    lfu = lfu.where(lfu.isna() | (lfu <= cut), cut)
    raw["last_followup_date"] = lfu.where(lfu.notna() | death_known, cut)
    scans = trial.assessments
    if scans is not None:
        scans = scans[(scans["assessment_date"] <= cut)
                      & scans["patient_id"].isin(set(f["patient_id"]))]
        raw = raw.drop(columns=[LPF_COLUMN])
        raw["progression_date"] = pd.NaT  # read from the scans
    elif LPF_COLUMN in raw.columns:  # the documented approximation without the scans
        lpf = f[LPF_COLUMN]
        raw[LPF_COLUMN] = lpf.where(lpf.isna() | (lpf <= cut), cut)
    # the export is strings, as a file would be
    for col in raw.columns:
        if pd.api.types.is_datetime64_dtype(raw[col].dtype):
            raw[col] = raw[col].dt.strftime("%Y-%m-%d").fillna("")
    if scans is not None:
        scans = scans.assign(assessment_date=scans["assessment_date"].dt.strftime("%Y-%m-%d"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TrialData.from_table(raw, control=trial.control, treatment=trial.treatment,
                                    time_unit=trial.time_unit, cut_date=cut,
                                    zero_time_events=zero_time_events, assessments=scans,
                                    warn=False)


def cut_dates(trial, rng, n=6):
    """Cut dates that matter: the days of events (an event on the cut day is known), the
    day of a randomization (that patient stays with zero follow-up), the day before one,
    and random days across the trial."""
    f = trial.to_frame()
    events = pd.Series(np.concatenate([f["death_date"].to_numpy(), f["progression_date"].to_numpy()])).dropna()
    special = [events.sort_values().iloc[len(events) // 3],
               f["randomization_date"].sort_values().iloc[len(f) // 2],
               f["randomization_date"].sort_values().iloc[len(f) // 2] - pd.Timedelta("1D")]
    if trial.assessments is not None:
        special.append(trial.assessments["assessment_date"].sort_values().iloc[
            len(trial.assessments) // 2])
    lo, hi = f["randomization_date"].min(), f["last_followup_date"].max()
    span = (hi - lo).days
    rand = [lo + pd.Timedelta(days=int(d)) for d in rng.integers(1, span, n)]
    return [d for d in special + rand if trial.cut_date is None or d <= trial.cut_date]


@pytest.mark.parametrize("seed", range(4))
def test_cut_of_a_simulated_trial_with_scans_equals_reading_the_export(seed):
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = bh.simulate_trial(90, sites=4, random_seed=seed, assessment_jitter_days=5.0,
                                  missed_visit_prob=0.1, post_progression_hr=2.0)
    assert trial.assessments is not None
    for when in cut_dates(trial, rng):
        assert_same_trial(trial.cut(when, warn=False), exported_at(trial, when))


def test_cut_of_the_example_trial_and_of_a_cut_equals_reading_the_export():
    trial = bh.datasets.load_example_trial()
    rng = np.random.default_rng(7)
    for when in cut_dates(trial, rng, n=3):
        once = trial.cut(when, warn=False)
        assert_same_trial(once, exported_at(trial, when))
        earlier = when - pd.Timedelta("45D")
        assert_same_trial(once.cut(earlier, warn=False), exported_at(trial, earlier))


def test_cut_without_the_scan_table_equals_reading_the_export():
    """The column form (last progression-free scan as a column) and plain dates."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scans = bh.simulate_trial(80, sites=3, random_seed=11)
        frame = scans.to_frame().drop(columns=[c for c in scans.to_frame().columns
                                               if c.endswith(("_time", "_event", "_lower"))])
        column_form = TrialData.from_table(frame, control=scans.control,
                                           treatment=scans.treatment)
        plain = TrialData.from_table(frame.drop(columns=[LPF_COLUMN]),
                                     control=scans.control, treatment=scans.treatment)
    rng = np.random.default_rng(3)
    for trial in (column_form, plain):
        for when in cut_dates(trial, rng, n=3):
            assert_same_trial(trial.cut(when, warn=False), exported_at(trial, when))


def test_cut_of_data_read_with_same_day_events_at_half_day():
    """Data read with zero_time_events="half_day" (a death on the day of randomization)
    can be cut: the event stays at half a day, as reading the export with the same rule
    gives (the cut used to re-read the data with the default rule and refuse them)."""
    raw = pd.DataFrame({
        "patient_id": ["a", "b", "c", "d"], "site": ["s1", "s1", "s2", "s2"],
        "arm": ["sorafenib", "tace_sorafenib"] * 2,
        "randomization_date": ["2019-01-01", "2019-01-05", "2019-02-01", "2019-03-01"],
        "progression_date": ["", "2019-03-01", "", ""],
        "death_date": ["2019-01-01", "2019-06-01", "", ""],
        "last_followup_date": ["", "2019-06-01", "2019-09-01", "2019-09-01"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = TrialData.from_table(raw, control="sorafenib", treatment="tace_sorafenib",
                                     zero_time_events="half_day")
    for when in ("2019-01-05", "2019-04-01", "2019-07-01"):
        got = trial.cut(when, warn=False)
        assert_same_trial(got, exported_at(trial, when, zero_time_events="half_day"))
        assert got.endpoint("os").time[0] == pytest.approx(0.5 / 30.4375)


def test_a_cut_before_both_arms_have_patients_is_a_named_error():
    """As reading the export would refuse it (and design looks skip such a look)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = bh.simulate_trial(40, sites=2, random_seed=5)
    f = trial.to_frame().sort_values("randomization_date")
    first = f["randomization_date"].iloc[0]
    before = first - pd.Timedelta("1D")
    with pytest.raises(bh.TrialDataError, match=r"no patients.*both arms.*Cut later"):
        trial.cut(before)
    with pytest.raises(bh.TrialDataError, match="no patients"):
        exported_at(trial, before)
    other = f.loc[f["arm"] != f["arm"].iloc[0], "randomization_date"].iloc[0]
    assert other > first  # only the first patient's arm randomized on the first day
    if True:
        with pytest.raises(bh.TrialDataError, match=r"only arm .*both arms"):
            trial.cut(first)
        with pytest.raises(bh.TrialDataError, match="only one arm"):
            exported_at(trial, first)
    times = bh.read_trial(trial.to_frame().drop(columns=[
        "progression_date", "death_date", "last_followup_date", LPF_COLUMN]))
    with pytest.raises(bh.TrialDataError, match="no patients"):
        times.cut(before)
