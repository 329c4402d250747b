"""Progression assessed at scans: the derivation of interval-censored TTP and PFS from the
assessment history (column or table form), the times-layout bounds, and the named errors."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.data.trial import EXACT, INTERVAL, LEFT, RIGHT
from bayes_hcc.units import DAYS_PER_UNIT

M = DAYS_PER_UNIT["months"]


def months(a, b="2018-01-01"):
    return (pd.Timestamp(a) - pd.Timestamp(b)).days / M


def patients(lpf=True):
    f = pd.DataFrame({
        "patient_id": ["a", "b", "c", "d", "e", "f"],
        "site": ["s1"] * 3 + ["s2"] * 3,
        "arm": ["sorafenib", "tace_sorafenib"] * 3,
        "randomization_date": ["2018-01-01"] * 6,
        # a: progression seen at the 4th-month scan after a clean 2nd-month scan
        # b: died without progression after a clean scan
        # c: alive, progression-free at the last scan
        # d: progression at the first scan (no clean scan after randomization)
        # e: alive, scanned, clean; f: no scan at all
        "progression_date": ["2018-05-01", "", "", "2018-03-01", "", ""],
        "death_date": ["2018-09-01", "2018-06-01", "", "", "", ""],
        "last_followup_date": ["", "", "2019-01-01", "2019-01-01", "2019-01-01", "2018-02-01"],
        "last_progression_free_date": ["2018-03-01", "2018-05-01", "2018-11-01", "",
                                       "2018-12-15", ""],
    })
    return f if lpf else f.drop(columns="last_progression_free_date")


SCANS = pd.DataFrame({
    "patient_id": ["a", "a", "a", "b", "b", "c", "d", "e"],
    "assessment_date": ["2018-03-01", "2018-01-20", "2018-05-01", "2018-03-01", "2018-05-01",
                        "2018-11-01", "2018-03-01", "2018-12-15"],
    "progression": [0, 0, 1, 0, 0, 0, 1, 0],
})


def read(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.DataWarning)
        return bh.read_trial(*args, **kwargs)


def test_derivation_rules_from_the_last_progression_free_date():
    """The documented rules, patient by patient (data guide: progression between
    assessments)."""
    ttp, pfs = read(patients()).endpoint("ttp"), read(patients()).endpoint("pfs")
    L_a, R_a = months("2018-03-01"), months("2018-05-01")
    # a: (last clean scan, first positive scan] for TTP and PFS
    assert ttp.kind[0] == INTERVAL and pfs.kind[0] == INTERVAL
    assert ttp.lower[0] == pytest.approx(L_a) and ttp.upper[0] == pytest.approx(R_a)
    # b: death without progression: TTP censored at the last scan (not at death), PFS an
    # exact event at death
    assert ttp.kind[1] == RIGHT and ttp.time[1] == pytest.approx(months("2018-05-01"))
    assert pfs.kind[1] == EXACT and pfs.time[1] == pytest.approx(months("2018-06-01"))
    # c, e: censored at the last scan (not at the last follow-up)
    assert ttp.time[2] == pytest.approx(months("2018-11-01")) and pfs.kind[2] == RIGHT
    assert pfs.time[4] == pytest.approx(months("2018-12-15"))
    # d: progression at the first scan: (0, R], left-censored
    assert ttp.kind[3] == LEFT and ttp.lower[3] == 0 and ttp.upper[3] == pytest.approx(
        months("2018-03-01"))
    # f: no scan after randomization: censored at time 0
    assert ttp.kind[5] == RIGHT and ttp.time[5] == 0 and pfs.time[5] == 0
    # OS stays exact
    assert not read(patients()).endpoint("os").has_bounds


def test_without_the_history_visit_dates_are_exact_times_as_before():
    ep = read(patients(lpf=False)).endpoint("ttp")
    assert not ep.has_bounds and set(ep.kind) <= {RIGHT, EXACT}
    assert ep.time[1] == pytest.approx(months("2018-06-01"))  # censored at death, as before


def test_assessment_table_gives_the_same_data_as_the_column():
    from_table = read(patients(lpf=False), assessments=SCANS)
    from_column = read(patients())
    for e in ("ttp", "pfs"):
        a, b = from_table.endpoint(e), from_column.endpoint(e)
        np.testing.assert_array_equal(a.kind, b.kind)
        np.testing.assert_allclose(a.lower, b.lower)
        np.testing.assert_allclose(a.upper, b.upper)
    assert len(from_table.assessments) == len(SCANS)
    # the scans are part of the data's identity
    other = SCANS.assign(assessment_date=SCANS["assessment_date"].replace("2018-01-20",
                                                                          "2018-01-25"))
    assert read(patients(lpf=False), assessments=other).fingerprint != from_table.fingerprint


def test_cut_uses_only_the_scans_known_at_the_cut():
    cut = read(patients(lpf=False), assessments=SCANS).cut("2018-04-01", warn=False)
    ttp = cut.endpoint("ttp")
    # a: progression (May) not yet seen; clean scans on Jan 20 and Mar 1: censored at Mar 1
    assert ttp.kind[0] == RIGHT and ttp.time[0] == pytest.approx(months("2018-03-01"))
    assert ttp.kind[3] == LEFT  # d progressed at the Mar 1 scan, before the cut


def test_times_layout_bounds():
    df = pd.DataFrame({"patient_id": list("abcd"), "site": ["s1", "s1", "s2", "s2"],
                       "arm": ["sorafenib", "tace_sorafenib"] * 2,
                       "os_time": [5, 6, 7, 8], "os_event": [1, 0, 1, 1],
                       "ttp_lower": [1, 2, 0, 3], "ttp_upper": [2, np.nan, 1.5, 3]})
    t = read(df)
    ep = t.endpoint("ttp")
    np.testing.assert_array_equal(ep.kind, [INTERVAL, RIGHT, LEFT, EXACT])
    np.testing.assert_allclose(ep.lower, [1, 2, 0, 3])
    np.testing.assert_allclose(ep.upper, [2, np.inf, 1.5, 3])
    # a unit change moves both bounds
    days = t.to_unit("days").endpoint("ttp")
    np.testing.assert_allclose(days.lower, ep.lower * M)
    np.testing.assert_allclose(days.upper[np.isfinite(ep.upper)],
                               ep.upper[np.isfinite(ep.upper)] * M)


def test_imputations_for_sensitivity():
    ep = read(patients()).endpoint("ttp")
    L, R = ep.lower[0], ep.upper[0]
    assert ep.with_censoring("midpoint").time[0] == pytest.approx((L + R) / 2)
    assert ep.with_censoring("upper").time[0] == pytest.approx(R)
    assert ep.with_censoring("lower").time[0] == pytest.approx(L)
    # L = 0 (progression at the first scan) is put at half a day, as zero_time_events does
    assert ep.with_censoring("lower").time[3] == pytest.approx(0.5 / M)
    for mode in ("midpoint", "upper", "lower"):
        assert not ep.with_censoring(mode).has_bounds
    with pytest.raises(bh.TrialDataError, match="censoring='exact'"):
        ep.with_censoring("exact")


# -- named errors: column, patient ids, fix --------------------------------------------------
def _error(*args, **kwargs) -> str:
    with pytest.raises(bh.TrialDataError) as info:
        read(*args, **kwargs)
    return str(info.value)


def test_assessment_after_death():
    scans = pd.concat([SCANS, pd.DataFrame({"patient_id": ["b"], "assessment_date":
                                            ["2018-07-01"], "progression": [0]})])
    msg = _error(patients(lpf=False), assessments=scans)
    assert "assessment after death" in msg and "patient_id b" in msg and "Fix:" in msg
    bad = patients()
    bad.loc[1, "last_progression_free_date"] = "2018-07-01"
    msg = _error(bad)
    assert "'last_progression_free_date': assessment after death" in msg and "b)" in msg


def test_negative_scan_after_a_positive_one():
    scans = pd.concat([SCANS, pd.DataFrame({"patient_id": ["a"], "assessment_date":
                                            ["2018-07-01"], "progression": [0]})])
    msg = _error(patients(lpf=False), assessments=scans)
    assert "without progression after one showing progression" in msg
    assert "patient_id a" in msg and "irreversible" in msg


def test_lower_bound_after_upper_bound():
    bad = patients()
    bad.loc[0, "last_progression_free_date"] = "2018-06-01"
    msg = _error(bad)
    assert "lower bound after upper bound" in msg and "patient_id a" in msg


def test_assessment_before_randomization():
    scans = pd.concat([SCANS, pd.DataFrame({"patient_id": ["c"], "assessment_date":
                                            ["2017-12-01"], "progression": [0]})])
    msg = _error(patients(lpf=False), assessments=scans)
    assert "assessment before randomization_date" in msg and "patient_id c" in msg
    bad = patients()
    bad.loc[2, "last_progression_free_date"] = "2017-12-01"
    assert "before randomization_date" in _error(bad)


def test_duplicate_assessments_and_unknown_patients():
    scans = pd.concat([SCANS, pd.DataFrame({"patient_id": ["c", "zz"], "assessment_date":
                                            ["2018-11-01", "2018-11-01"],
                                            "progression": [0, 0]})])
    msg = _error(patients(lpf=False), assessments=scans)
    assert "duplicate assessments" in msg and "patient_id c" in msg
    assert "patient not in the patient table" in msg and "zz" in msg


def test_progression_date_must_agree_with_the_scans():
    bad = patients(lpf=False)
    bad.loc[0, "progression_date"] = "2018-04-15"
    msg = _error(bad, assessments=SCANS)
    assert "progression_date differs" in msg and "patient_id a" in msg
    assert "both an assessment table" in _error(patients(), assessments=SCANS)


def test_adtte_round_trip_keeps_the_bounds(tmp_path, example_trial):
    """ADTTE carries the lower bound as AVALL (documented); writing and reading back gives
    the same interval-censored TTP and PFS. Without AVALL, the scans (``assessments=``, by
    USUBJID) give the same bounds from STARTDT."""
    path = bh.write_adtte(example_trial, tmp_path / "adtte.csv")
    back = bh.read_adtte(path)
    for e in ("os", "pfs", "ttp"):
        a, b = example_trial.endpoint(e), back.endpoint(e)
        np.testing.assert_array_equal(a.kind, b.kind)
        np.testing.assert_allclose(a.lower, b.lower, atol=1e-9)
    adtte = bh.to_adtte(example_trial).drop(columns="AVALL")
    scans = example_trial.assessments.rename(columns={"patient_id": "USUBJID"})
    derived = bh.read_adtte(adtte, assessments=scans)
    for e in ("pfs", "ttp"):
        a, b = example_trial.endpoint(e), derived.endpoint(e)
        np.testing.assert_array_equal(a.kind, b.kind)
        # AVAL in ADTTE is rounded to whole days from the dates: bounds agree to a day
        np.testing.assert_allclose(a.lower, b.lower, atol=1 / M)


def test_adtte_bad_lower_bounds_are_named():
    adtte = pd.DataFrame({"USUBJID": ["a", "b", "c", "d"], "SITEID": ["1", "1", "2", "2"],
                          "TRT01P": ["sorafenib", "tace_sorafenib"] * 2,
                          "PARAMCD": "TTP", "AVAL": [3.0, 4.0, 5.0, 6.0], "AVALU": "MONTHS",
                          "CNSR": [0, 1, 0, 0], "AVALL": [2.0, 1.0, 7.0, np.nan]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.DataWarning)
        with pytest.raises(bh.ADaMError) as info:
            bh.read_adtte(adtte)
    msg = str(info.value)
    assert "AVALL on a censored row" in msg and "USUBJID b" in msg
    assert "lower bound after upper bound" in msg and "USUBJID c" in msg


def test_cut_with_the_column_form():
    """Without the scan table, a cut knows the last progression-free scan only when it came
    before the cut; a later one is taken as progression-free up to the cut (documented
    approximation), never beyond it."""
    cut = read(patients()).cut("2018-04-01", warn=False)
    ttp = cut.endpoint("ttp")
    assert ttp.kind[0] == RIGHT and ttp.time[0] == pytest.approx(months("2018-03-01"))
    assert ttp.time[2] == pytest.approx(months("2018-04-01"))  # c: last scan in November
    assert (ttp.time <= months("2018-04-01") + 1e-9).all()


def test_already_parsed_dates_and_typed_flags_give_the_same_data_and_errors():
    """Date columns that are already datetime64 (a data cut's, or a table read with
    parse_dates) and integer/boolean progression flags take the fast path: the same trial
    as from strings, and a missing date is still the named error."""
    want = read(patients(lpf=False), assessments=SCANS)
    typed = patients(lpf=False)
    for col in ("randomization_date", "progression_date", "death_date", "last_followup_date"):
        typed[col] = pd.to_datetime(typed[col].replace("", None))
    scans = SCANS.assign(assessment_date=pd.to_datetime(SCANS["assessment_date"]),
                         progression=SCANS["progression"].astype(bool))
    got = read(typed, assessments=scans)
    pd.testing.assert_frame_equal(got.to_frame(), want.to_frame())
    pd.testing.assert_frame_equal(got.assessments, want.assessments)
    typed.loc[2, "randomization_date"] = pd.NaT
    with pytest.raises(bh.TrialDataError, match=r"randomization_date.*missing.*row 3 \(patient_id c\).*Fix"):
        read(typed, assessments=scans)


def test_columns_named_otherwise_in_both_tables():
    """``columns=`` renames in the patient table and the assessments alike (an export from
    another system: ``subject``, ``scan_date``, ``pd``); the trial is the one read from
    our names; a name in neither table is an error listing both tables' columns."""
    ours = read(patients(lpf=False), assessments=SCANS)
    mapping = {"subject": "patient_id", "scan_date": "assessment_date", "pd": "progression"}
    theirs = read(patients(lpf=False).rename(columns={"patient_id": "subject"}),
                  assessments=SCANS.rename(columns={"patient_id": "subject",
                                                    "assessment_date": "scan_date",
                                                    "progression": "pd"}),
                  columns=mapping)
    assert theirs == ours
    for name in ("ttp", "pfs"):
        np.testing.assert_array_equal(theirs.endpoint(name).lower, ours.endpoint(name).lower)
    with pytest.raises(bh.TrialDataError, match=r"renames 'scan_dt', which is not a column "
                                                r"\(the columns of DataFrame: 'patient_id'"):
        read(patients(lpf=False), assessments=SCANS, columns={"scan_dt": "assessment_date"})
