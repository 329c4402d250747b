"""read_trial: derivation of OS/PFS/TTP from dates, and every validation case."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.errors import DataWarning, TrialDataError

MONTH = 30.4375


def dates_frame():
    """Six patients, two sites of three, covering each derivation path."""
    return pd.DataFrame({
        "patient_id": ["P1", "P2", "P3", "P4", "P5", "P6"],
        "site": ["A", "A", "A", "B", "B", "B"],
        "arm": ["sorafenib", "tace_sorafenib"] * 3,
        "randomization_date": ["2018-01-01"] * 6,
        # P1 progresses then dies; P2 dies without progression; P3 progresses, alive;
        # P4 censored; P5 progression and death on the same day; P6 dies, no lfu recorded.
        "progression_date": ["2018-03-02", "", "2018-05-01", "", "2018-04-01", ""],
        "death_date": ["2018-06-01", "2018-02-01", "", "", "2018-04-01", "2018-09-01"],
        "last_followup_date": ["2018-06-01", "2018-02-01", "2018-12-01", "2018-07-01",
                               "2018-04-01", ""],
        "age": [60, 61, 62, 63, 64, 65],
    })


def times_frame():
    return pd.DataFrame({
        "patient_id": ["T1", "T2", "T3", "T4"],
        "site": ["A", "A", "B", "B"],
        "arm": ["sorafenib", "tace_sorafenib", "sorafenib", "tace_sorafenib"],
        "os_time": [10.0, 5.0, 8.0, 12.0], "os_event": [1, 0, 1, 1],
        "pfs_time": [4.0, 5.0, 8.0, 6.0], "pfs_event": [1, 0, 1, 1],
        "ttp_time": [4.0, 5.0, 8.0, 6.0], "ttp_event": [1, 0, 0, 1],
    })


def days(d):
    return d / MONTH


def test_dates_layout_derives_endpoints_by_standard_definitions():
    trial = bh.read_trial(dates_frame())
    os_, pfs, ttp = (trial.endpoint(e) for e in ("os", "pfs", "ttp"))
    # OS: death from any cause; censored at last follow-up.
    np.testing.assert_allclose(os_.time, days(np.array([151, 31, 334, 181, 90, 243])))
    np.testing.assert_array_equal(os_.event, [1, 1, 0, 0, 1, 1])
    # PFS: first of progression and death.
    np.testing.assert_allclose(pfs.time, days(np.array([60, 31, 120, 181, 90, 243])))
    np.testing.assert_array_equal(pfs.event, [1, 1, 1, 0, 1, 1])
    # TTP: progression; death without progression censored at death.
    np.testing.assert_allclose(ttp.time, days(np.array([60, 31, 120, 181, 90, 243])))
    np.testing.assert_array_equal(ttp.event, [1, 0, 1, 0, 1, 0])
    assert trial.covariates == ("age",)
    np.testing.assert_array_equal(os_.arm, [0, 1, 0, 1, 0, 1])
    assert os_.sites == ("A", "B")


def test_times_layout_and_repr_fingerprint():
    trial = bh.read_trial(times_frame())
    assert trial.endpoints == ("os", "pfs", "ttp")
    assert "4 patients" in repr(trial) and "OS 3 events" in repr(trial)
    assert "| 2 sites |" in repr(trial)
    one = times_frame().assign(site="A", ttp_event=[1, 0, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.DataWarning)  # an arm without TTP events
        single = repr(bh.read_trial(one))
    assert "| 1 site |" in single and "TTP 1 event |" in single  # not "1 sites", "1 events"
    again = bh.read_trial(times_frame())
    assert trial.fingerprint == again.fingerprint
    changed = times_frame()
    changed.loc[0, "os_time"] = 10.5
    assert bh.read_trial(changed).fingerprint != trial.fingerprint


def test_trial_is_immutable():
    trial = bh.read_trial(times_frame())
    ep = trial.endpoint("os")
    with pytest.raises(ValueError):
        ep.time[0] = 99.0
    frame = trial.to_frame()
    frame.loc[0, "os_time"] = 99.0
    assert trial.endpoint("os").time[0] == 10.0


def test_file_formats(tmp_path):
    df = dates_frame()
    for name, write in (("t.csv", lambda p: df.to_csv(p, index=False)),
                        ("t.parquet", lambda p: df.to_parquet(p)),
                        ("t.xlsx", lambda p: df.to_excel(p, index=False))):
        write(tmp_path / name)
        trial = bh.read_trial(tmp_path / name)
        assert trial.fingerprint == bh.read_trial(df).fingerprint, name


def test_a_spec_read_as_trial_data_is_named(tmp_path):
    """``bh.read_trial`` of a TOML file (a spec passed where the data goes) says which
    loaders read TOML files here."""
    spec = Path(__file__).resolve().parents[2] / "models" / "primary_os.toml"
    with pytest.raises(bh.TrialDataError, match=r"unknown file type '\.toml'.*an analysis "
                       r"spec, a monitoring plan, a sensitivity grid or historical control "
                       r"arms: bh\.load_spec.*bh\.read_history\)"):
        bh.read_trial(spec)


def _set(frame, col, idx, value):
    frame = frame.copy()
    frame[col] = frame[col].astype(object)
    frame.loc[idx, col] = value
    return frame


# (case id, frame factory, column expected in the message, row text expected)
DATES_CASES = [
    ("missing column", lambda: dates_frame().drop(columns="death_date"), "death_date", None),
    ("unknown arm", lambda: _set(dates_frame(), "arm", 2, "TACE"), "'arm'", "row 3 (patient_id P3)"),
    ("one arm", lambda: _set(dates_frame(), "arm", [1, 3, 5], "sorafenib"), "'arm'", "only one arm"),
    ("duplicate id", lambda: _set(dates_frame(), "patient_id", 4, "P1"), "'patient_id'", "rows 1 (patient_id P1), 5"),
    ("missing site", lambda: _set(dates_frame(), "site", 3, None), "'site'", "row 4 (patient_id P4)"),
    ("bad date", lambda: _set(dates_frame(), "death_date", 1, "2018-02-31"), "'death_date'", "row 2"),
    ("death before randomization", lambda: _set(dates_frame(), "death_date", 1, "2017-12-01"),
     "'death_date'", "row 2 (patient_id P2)"),
    ("progression before randomization",
     lambda: _set(dates_frame(), "progression_date", 2, "2017-12-01"), "'progression_date'", "row 3"),
    ("lfu before randomization",
     lambda: _set(dates_frame(), "last_followup_date", 3, "2017-12-01"), "'last_followup_date'", "row 4"),
    ("progression after death", lambda: _set(dates_frame(), "progression_date", 1, "2018-03-01"),
     "'progression_date'", "row 2 (patient_id P2)"),
    ("lfu before event", lambda: _set(dates_frame(), "last_followup_date", 2, "2018-04-01"),
     "'last_followup_date'", "row 3 (patient_id P3)"),
    ("lfu after death", lambda: _set(dates_frame(), "last_followup_date", 0, "2018-07-01"),
     "'last_followup_date'", "row 1"),
    ("no lfu and no death", lambda: _set(dates_frame(), "last_followup_date", 3, ""),
     "'last_followup_date'", "row 4"),
    ("death on randomization day", lambda: _set(dates_frame(), "death_date", 1, "2018-01-01")
     .pipe(_set, "last_followup_date", 1, "2018-01-01"), "'os_time'", "event at time 0"),
]

TIMES_CASES = [
    ("missing required", lambda: times_frame().drop(columns="site"), "site", None),
    ("non-numeric time", lambda: _set(times_frame(), "os_time", 1, "five"), "'os_time'", "row 2"),
    ("NaN time", lambda: _set(times_frame(), "os_time", 2, np.nan), "'os_time'", "row 3 (patient_id T3)"),
    ("negative time", lambda: _set(times_frame(), "pfs_time", 0, -1.0), "'pfs_time'", "row 1"),
    ("event not 0/1", lambda: _set(times_frame(), "os_event", 3, 2), "'os_event'", "row 4"),
    ("missing event column", lambda: times_frame().drop(columns="ttp_event"), "'ttp_event'", None),
    ("pfs later than os", lambda: _set(times_frame(), "pfs_time", 0, 11.0)
     .pipe(_set, "ttp_time", 0, 11.0), "'pfs_time'", "row 1 (patient_id T1)"),
    ("ttp event without pfs event", lambda: _set(times_frame(), "ttp_event", 1, 1), "'ttp_event'", "row 2"),
    ("ttp later than pfs", lambda: _set(times_frame(), "ttp_time", 2, 9.0).pipe(_set, "os_time", 2, 9.5),
     "'ttp_time'", "row 3"),
    ("ttp progression time differs", lambda: _set(times_frame(), "ttp_time", 3, 5.0), "'ttp_time'", "row 4"),
    ("zero event time", lambda: _set(times_frame(), "os_time", 2, 0.0).pipe(_set, "pfs_time", 2, 0.0)
     .pipe(_set, "ttp_time", 2, 0.0), "'os_time'", "event at time 0"),
]


@pytest.mark.parametrize("case, make, column, rows", DATES_CASES + TIMES_CASES,
                         ids=[c[0] for c in DATES_CASES + TIMES_CASES])
def test_validation_names_column_rows_and_fix(case, make, column, rows):
    with pytest.raises(TrialDataError) as info:
        bh.read_trial(make())
    msg = str(info.value)
    assert column in msg
    if rows is not None:
        assert rows in msg
    assert "Fix:" in msg or "needs" in msg or "only one arm" in msg


def test_dates_layout_checks_the_time_columns_it_also_carries():
    """A dates-layout file that also carries time and event columns (this package's own
    export, an analysis dataset) must say the same thing twice: the endpoints come from the
    dates, so a time or event column that disagrees with them (a correction made in one
    place only, another unit, another day count per month) is an error naming the rows,
    never silently ignored."""
    trial = bh.read_trial(dates_frame())
    both = dates_frame()
    for name in ("os", "pfs", "ttp"):
        ep = trial.endpoint(name)
        both[f"{name}_time"] = np.round(ep.time, 1)  # rounded as files are: 1.5 days
        both[f"{name}_event"] = ep.event
    assert bh.read_trial(both).fingerprint == trial.fingerprint
    assert bh.read_trial(trial.to_frame()).fingerprint == trial.fingerprint  # round trip
    edited = _set(both, "os_time", 3, 99.0)  # corrected in the times, not in the dates
    with pytest.raises(TrialDataError) as info:
        bh.read_trial(edited)
    msg = str(info.value)
    assert "'os_time'" in msg and "row 4 (patient_id P4)" in msg and "Fix:" in msg
    assert "time_unit" in msg  # the hint for times in another unit
    with pytest.raises(TrialDataError, match=r"'ttp_event'.*row 2 \(patient_id P2\)"):
        bh.read_trial(_set(both, "ttp_event", 1, 1))  # a death counted as progression
    with pytest.raises(TrialDataError, match="'pfs_time'"):  # 30-day months: 1.4% off
        bh.read_trial(both.assign(pfs_time=np.round(trial.endpoint("pfs").time * MONTH / 30,
                                                     2)))
    # the bounds layout of an interval-censored endpoint is compared too
    lpf = dates_frame().assign(last_progression_free_date=["2018-02-01", "", "2018-04-01",
                                                           "2018-06-01", "2018-03-01",
                                                           "2018-08-01"])
    interval = bh.read_trial(lpf)
    ep = interval.endpoint("ttp")
    lower = np.where(ep.event == 1, np.where(np.isnan(ep.lower), ep.time, ep.lower), ep.time)
    upper = np.where(ep.event == 1, ep.time, np.nan)
    bounds = lpf.assign(ttp_lower=lower, ttp_upper=upper)
    assert bh.read_trial(bounds).fingerprint == interval.fingerprint
    with pytest.raises(TrialDataError, match=r"'ttp_lower'.*row 1 \(patient_id P1\)"):
        bh.read_trial(_set(bounds, "ttp_lower", 0, 0.5))
    # an export with its time and event columns dropped keeps the canonical lower bounds
    # (NaN where the event is not interval-censored): read as the export says
    export = interval.to_frame().drop(columns=["os_time", "os_event", "pfs_time",
                                               "pfs_event", "ttp_time", "ttp_event"])
    again = bh.read_trial(export).endpoint("ttp")
    for a, b in ((again.time, ep.time), (again.event, ep.event), (again.lower, ep.lower)):
        np.testing.assert_array_equal(a, b)


def test_several_problems_reported_together():
    frame = _set(times_frame(), "os_time", 0, -1.0).pipe(_set, "os_event", 1, 7)
    with pytest.raises(TrialDataError, match="2 problems found"):
        bh.read_trial(frame)


def test_errors_are_value_errors():
    with pytest.raises(ValueError):
        bh.read_trial(times_frame().drop(columns="arm"))


def test_censoring_at_time_zero_allowed_and_half_day_rule():
    frame = _set(times_frame(), "os_time", 1, 0.0).pipe(_set, "pfs_time", 1, 0.0) \
        .pipe(_set, "ttp_time", 1, 0.0)
    assert bh.read_trial(frame).endpoint("os").time[1] == 0.0  # censored at 0: allowed
    frame = _set(frame, "os_event", 1, 1).pipe(_set, "pfs_event", 1, 1)
    with pytest.warns(DataWarning, match=r"half a day.*patient_id T2"):
        trial = bh.read_trial(frame, zero_time_events="half_day")
    assert trial.endpoint("os").time[1] == pytest.approx(0.5 / MONTH)


def test_small_site_and_no_event_arm_warn_not_error():
    frame = times_frame()
    frame.loc[frame["arm"] == "tace_sorafenib", "os_event"] = 0
    with pytest.warns(DataWarning) as record:
        bh.read_trial(frame)
    text = " ".join(str(w.message) for w in record)
    assert "fewer than 3 patients" in text and "'A' (2)" in text
    assert "os: arm 'tace_sorafenib' has no events" in text


def test_columns_named_otherwise_are_read_as_named():
    """A survival table as most are written (id, time, status, centre): ``columns=`` reads
    it as the times layout, with the same trial as the file written with our names; a
    name that is not a column, or two columns read as one name, are errors naming them;
    the error for an unrecognised file says how to rename."""
    ours = times_frame()
    theirs = ours.rename(columns={"patient_id": "id", "os_time": "time",
                                  "os_event": "status", "site": "centre"})
    with pytest.raises(TrialDataError, match=r"columns=\{'your name': 'os_time'"):
        bh.read_trial(theirs[["id", "centre", "arm", "time", "status"]])
    mapping = {"id": "patient_id", "time": "os_time", "status": "os_event", "centre": "site"}
    trial = bh.read_trial(theirs, columns=mapping)
    assert trial == bh.read_trial(ours)
    assert list(theirs.columns)[0] == "id"  # the caller's frame is not changed
    with pytest.raises(TrialDataError, match=r"renames 'tme' \(did you mean 'time'\?\), which "
                       "is not a column"):
        bh.read_trial(theirs, columns={**mapping, "tme": "os_time"})
    with pytest.raises(TrialDataError, match="more than one column would be read as 'os_time'"):
        bh.read_trial(theirs.assign(os_time=1.0), columns=mapping)
    with pytest.raises(TrialDataError, match=r"columns=\[.*give a dict \{name in the file"):
        bh.read_trial(theirs, columns=[("time", "os_time")])
    with pytest.raises(TrialDataError, match="missing column.*site.*single-centre"):
        bh.read_trial(theirs.drop(columns="centre"),
                      columns={k: v for k, v in mapping.items() if k != "centre"})


def test_custom_arm_labels_and_unknown_endpoint():
    frame = times_frame().replace({"sorafenib": "SOR", "tace_sorafenib": "TACE-SOR"})
    trial = bh.read_trial(frame, control="SOR", treatment="TACE-SOR")
    assert trial.arms == ("SOR", "TACE-SOR")
    with pytest.raises(TrialDataError, match="available: os, pfs, ttp"):
        trial.endpoint("dfs")


def test_summary_and_km_medians_match_lifelines():
    from lifelines import KaplanMeierFitter

    trial = bh.datasets.load_example_trial()
    s = trial.summary("os")
    assert s.loc[("overall", "all"), "patients"] == 130
    assert s.xs("arm")["patients"].sum() == 130
    assert s.xs("site")["events"].sum() == s.loc[("overall", "all"), "events"]
    km = trial.kaplan_meier("os")
    ep = trial.endpoint("os")
    ref = KaplanMeierFitter().fit(ep.time[ep.arm == 1], ep.event[ep.arm == 1])
    assert km.loc["tace_sorafenib", "median"] == ref.median_survival_time_
    # Reverse-KM median follow-up: censoring is the event.
    rev = KaplanMeierFitter().fit(ep.time, 1 - ep.event).median_survival_time_
    assert s.loc[("overall", "all"), "median_follow_up_months"] == rev
    # where the reverse KM never reaches 0.5 the NaN is explained, and only there
    for by, group in s.index:
        m = np.ones(len(ep), bool) if by == "overall" else (
            (ep.arm if by == "arm" else ep.site) ==
            (ep.arms if by == "arm" else ep.sites).index(group))
        reached = np.isfinite(KaplanMeierFitter().fit(ep.time[m], 1 - ep.event[m])
                              .median_survival_time_)
        assert reached == np.isfinite(s.loc[(by, group), "median_follow_up_months"])
    assert s.attrs["footnotes"] == ["median_follow_up_months not estimable (NaN) for CNUH, SMC: "
                                "no patient censored."]


def test_paths_starting_with_a_tilde_are_the_home_directory(tmp_path, monkeypatch):
    """``bh.read_trial("~/trial.csv")`` said "no such file" (pandas reads that path, so a
    notebook user expects it to work), and a table written to ``"~/t.tex"`` went into a
    folder named ``~`` under the current directory. Every path a user gives is expanded."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    trial = bh.datasets.load_example_trial()
    trial.to_frame().to_csv(home / "trial.csv", index=False)
    assert bh.read_trial("~/trial.csv").fingerprint == bh.read_trial(home / "trial.csv").fingerprint
    spec = bh.load_spec(Path(__file__).resolve().parents[2] / "models" / "primary_os.toml")
    (home / "s.toml").write_text(bh.dump_spec(spec))
    assert bh.load_spec("~/s.toml") == spec
    bh.write_table(pd.DataFrame({"a": [1.0]}), "~/t.tex")
    assert (home / "t.tex").exists() and not (tmp_path / "~").exists()


def test_time_units_as_people_write_them():
    """``time_unit="month"`` (or "wk", "yr", "day") was "not known; choose one of days,
    weeks, months, years": the singular and the usual abbreviations name the same unit
    (the data are then the same), "m" stays ambiguous (minutes?) and is refused."""
    from bayes_hcc.units import check_time_unit

    trial = bh.datasets.load_example_trial()
    for alias, unit in (("month", "months"), ("Mo", "months"), ("wk", "weeks"),
                        ("day", "days"), ("yr", "years"), (" Years ", "years")):
        assert check_time_unit(alias) == unit
        assert trial.to_unit(alias) == trial.to_unit(unit)
    with pytest.raises(TrialDataError, match="time_unit='m' is not known"):
        check_time_unit("m")


def test_a_trials_table_is_an_ordinary_dataframe(example_trial):
    """trial.to_frame() kept the trial's refusal of duplicate row labels, so stacking two
    trials' tables (two data cuts, two simulated trials) failed inside pandas with
    DuplicateLabelError. The copy is an ordinary DataFrame; the trial itself is unchanged."""
    import pandas as pd

    cols = ["patient_id", "site", "arm", "os_time", "os_event"]
    early = example_trial.cut("2019-01-01", warn=False)
    both = pd.concat([example_trial.to_frame()[cols].assign(cut="final"),
                      early.to_frame()[cols].assign(cut="2019")])
    assert len(both) == example_trial.n_patients + early.n_patients
    assert both.groupby("cut").size().to_dict() == {"2019": early.n_patients,
                                                    "final": example_trial.n_patients}
    frame = example_trial.to_frame()[cols]
    frame = pd.concat([frame, frame.iloc[[0]]])  # a patient entered twice, to be found
    assert frame.index.duplicated().sum() == 1 and example_trial.n_patients == len(frame) - 1
