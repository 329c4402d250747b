"""ADaM ADTTE reader and writer."""

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.errors import ADaMError, DataWarning


def assert_same_endpoints(a, b):
    assert a.endpoints == b.endpoints
    for e in a.endpoints:
        x, y = a.endpoint(e), b.endpoint(e)
        # Identical: SAS transport stores IBM 56-bit-fraction floats, which hold every IEEE
        # double exactly, so no tolerance is needed.
        np.testing.assert_array_equal(x.time, y.time)
        np.testing.assert_array_equal(x.event, y.event)
        np.testing.assert_array_equal(x.arm, y.arm)
        np.testing.assert_array_equal(x.patient_id, y.patient_id)
        assert x.sites == y.sites
        np.testing.assert_array_equal(x.site, y.site)


@pytest.mark.parametrize("suffix", [".csv", ".xpt"])
def test_round_trip(tmp_path, suffix):
    trial = bh.datasets.load_example_trial()
    path = bh.write_adtte(trial, tmp_path / f"adtte{suffix}")
    back = bh.read_adtte(path)
    assert_same_endpoints(trial, back)
    # STARTDT carries the randomization date, so the data can be cut again.
    a, b = trial.cut("2019-01-01"), back.cut("2019-01-01")
    np.testing.assert_allclose(a.endpoint("os").time, b.endpoint("os").time, rtol=0,
                               atol=1e-12)
    # never overwritten silently (found by a coverage run: untested)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"exists; pass overwrite=True to replace it"):
        bh.write_adtte(trial, path)
    assert path.read_bytes() == before
    bh.write_adtte(trial.cut("2019-01-01"), path, overwrite=True)
    assert path.read_bytes() != before
    with pytest.raises(bh.ADaMError, match=r"write ADTTE as .csv or .xpt"):
        bh.write_adtte(trial, tmp_path / "adtte.sas7bdat")


def test_write_adtte_takes_to_adttes_settings_by_name(tmp_path):
    """A misspelt setting failed as "to_adtte() got an unexpected keyword argument"."""
    trial = bh.datasets.load_example_trial()
    path = bh.write_adtte(trial, tmp_path / "a.csv", studyid="HCC-TACE")
    assert set(pd.read_csv(path)["STUDYID"]) == {"HCC-TACE"}
    with pytest.raises(TypeError, match=r"write_adtte\(\) got an unexpected keyword argument "
                                        r"'study_id'"):
        bh.write_adtte(trial, tmp_path / "b.csv", study_id="HCC-TACE")


def test_frame_round_trip_and_cnsr_inversion():
    trial = bh.datasets.load_example_trial()
    adtte = bh.to_adtte(trial)
    assert set(adtte["PARAMCD"]) == {"OS", "PFS", "TTP"}
    os_rows = adtte[adtte["PARAMCD"] == "OS"].set_index("USUBJID")
    ep = trial.endpoint("os")
    np.testing.assert_array_equal(os_rows.loc[ep.patient_id, "CNSR"], 1 - ep.event)
    assert_same_endpoints(trial, bh.read_adtte(adtte))


def base_adtte():
    return bh.to_adtte(bh.datasets.load_example_trial()).drop(columns=["STARTDT", "ADT"])


def test_units_converted():
    adtte = base_adtte()
    days = adtte.assign(AVAL=adtte["AVAL"] * 30.4375, AVALU="DAYS")
    np.testing.assert_allclose(bh.read_adtte(days).endpoint("os").time,
                               bh.read_adtte(adtte).endpoint("os").time, rtol=1e-12)
    weeks = bh.read_adtte(adtte, time_unit="weeks").endpoint("os").time
    np.testing.assert_allclose(weeks, bh.read_adtte(adtte).endpoint("os").time * 30.4375 / 7)


def test_trt01a_and_custom_paramcd():
    adtte = base_adtte().rename(columns={"TRT01P": "TRT01A"})
    adtte["PARAMCD"] = adtte["PARAMCD"].map({"OS": "OSM", "PFS": "PFSM", "TTP": "TTPM"})
    trial = bh.read_adtte(adtte, paramcd={"OSM": "os", "PFSM": "pfs", "TTPM": "ttp"})
    assert trial.endpoints == ("os", "pfs", "ttp")


def test_paramcd_written_as_given_and_checked():
    """to_adtte's paramcd maps PARAMCD -> endpoint, as read_adtte's does. A mapping the
    wrong way round (``{"os": "OSINV"}``) used to be ignored without a word, and a code given
    to two endpoints wrote a file read_adtte refuses."""
    trial = bh.datasets.load_example_trial()
    out = bh.to_adtte(trial, paramcd={"OSINV": "os"})
    assert out["PARAMCD"].value_counts().to_dict() == {"OSINV": 130, "PFS": 130, "TTP": 130}
    back = bh.read_adtte(out, paramcd={"OSINV": "os", "PFS": "pfs", "TTP": "ttp"})
    assert_same_endpoints(trial, back)
    with pytest.raises(ADaMError, match=r"not an endpoint of this trial: 'OSINV'"):
        bh.to_adtte(trial, paramcd={"os": "OSINV"})
    with pytest.raises(ADaMError, match=r"endpoint 'os' two codes \(A, B\)"):
        bh.to_adtte(trial, paramcd={"A": "os", "B": "os"})
    with pytest.raises(ADaMError, match="PARAMCD PFS would code os and pfs"):
        bh.to_adtte(trial, paramcd={"PFS": "os"})
    for call in (bh.to_adtte, bh.read_adtte):  # text was dict()-ed into a ValueError
        with pytest.raises(ADaMError, match=r"paramcd='OS' must map each PARAMCD"):
            call(trial if call is bh.to_adtte else out, paramcd="OS")


def _with(frame, idx, col, value):
    frame = frame.copy()
    frame[col] = frame[col].astype(object)
    frame.loc[idx, col] = value
    return frame


@pytest.mark.parametrize("make, match", [
    (lambda f: f.drop(columns="CNSR"), "missing required column"),
    (lambda f: _with(f, 0, "AVALU", "FORTNIGHTS"), r"'AVALU': unknown time unit in row 1"),
    (lambda f: _with(f, 1, "AVAL", -3.0), r"'AVAL': negative AVAL in row 2 \(USUBJID HCC-0001\)"),
    (lambda f: _with(f, 2, "CNSR", 0.5), r"'CNSR'.*row 3"),
    (lambda f: pd.concat([f, f.iloc[[0]]]), "same parameter more than once"),
    (lambda f: f.drop(index=[1]), r"HCC-0001 lacks PFS"),
    (lambda f: _with(f, 0, "SITEID", "ELSEWHERE"), "SITEID differs"),
])
def test_adtte_errors(make, match):
    with pytest.raises(ADaMError, match=match):
        bh.read_adtte(make(base_adtte()))


def test_unmapped_paramcd_warns():
    adtte = base_adtte()
    extra = adtte[adtte["PARAMCD"] == "OS"].assign(PARAMCD="DOR")
    with pytest.warns(DataWarning, match="PARAMCD DOR not in the paramcd mapping"):
        trial = bh.read_adtte(pd.concat([adtte, extra], ignore_index=True))
    assert trial.endpoints == ("os", "pfs", "ttp")


def test_aval_checked_against_its_dates():
    """AVAL must be ADT - STARTDT (+ 1 day, the usual ADaM convention) in AVALU. Times in
    months labelled DAYS would otherwise be read as days: every median 30 times too small,
    and the baseline prior (set in the trial's unit) scaled the wrong way."""
    trial = bh.datasets.load_example_trial()
    adtte = bh.to_adtte(trial)
    # The "+ 1" convention and AVAL rounded for display (0.1 month) are both accepted.
    plus_one = adtte.assign(AVAL=(adtte["ADT"] - adtte["STARTDT"]).dt.days + 1, AVALU="DAYS")
    np.testing.assert_allclose(bh.read_adtte(plus_one).endpoint("os").time,
                               trial.endpoint("os").time + 1 / 30.4375, atol=1e-9)
    bh.read_adtte(adtte.assign(AVAL=adtte["AVAL"].round(1)))
    with pytest.raises(ADaMError, match=r"column 'AVALU': AVAL is in MONTHS by its dates .*"
                       r"rows 1 \(USUBJID HCC-0001\).*set AVALU to MONTHS"):
        bh.read_adtte(adtte.assign(AVALU="DAYS"))
    with pytest.raises(ADaMError, match=r"AVAL is in WEEKS by its dates"):
        bh.read_adtte(adtte.assign(AVAL=adtte["AVAL"] * 30.4375 / 7))
    # One subject's event date a year off: the row, both numbers, and the fix.
    wrong = adtte.copy()
    wrong.loc[3, "ADT"] += pd.Timedelta(days=365)
    with pytest.raises(ADaMError, match=r"'AVAL': AVAL disagrees with ADT - STARTDT in row 4 "
                       r"\(USUBJID HCC-0002\) \(values: 'AVAL 16.7885 MONTHS vs ADT - STARTDT "
                       r"876 days'\)"):
        bh.read_adtte(wrong)
    bad_date = _with(adtte, 0, "ADT", "2017-13-01")
    with pytest.raises(ADaMError, match=r"'ADT': unparseable date in row 1"):
        bh.read_adtte(bad_date)
