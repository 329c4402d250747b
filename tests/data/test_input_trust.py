"""Inputs that used to be accepted silently or crashed deep inside a library: each now
gets the package's own error (naming column, rows and fix) or a DataWarning."""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.errors import ADaMError, DataWarning, TrialDataError
from bayes_hcc.validation.reconstruction import reconstruction_round_trip


def times_frame(n=8):
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "patient_id": [f"P{i}" for i in range(n)],
        "site": ["A", "B"] * (n // 2),
        "arm": ["sorafenib", "sorafenib", "tace_sorafenib", "tace_sorafenib"] * (n // 4),
        "os_time": rng.uniform(1, 20, n).round(2), "os_event": [1, 0] * (n // 2),
    })


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kwargs)


# -- arms given as codes ----------------------------------------------------------------------
@pytest.mark.parametrize("codes", [[0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0], ["0", "0", "1", "1"]])
def test_integer_arm_codes_map_to_both_arms(codes):
    """The bug: an integer arm column with control=0, treatment=1 made every patient control
    (HR about 1, P(HR < 1) about 0.5, no warning)."""
    frame = times_frame().assign(arm=codes * 2)
    trial = quiet(bh.read_trial, frame, control=0, treatment=1)
    ep = trial.endpoint("os")
    np.testing.assert_array_equal(ep.arm, [0, 0, 1, 1] * 2)
    assert trial.arms == ("0", "1")
    assert "2 arms (0 4, 1 4)" in repr(trial)


def test_codes_not_matching_the_labels_are_refused():
    frame = times_frame().assign(arm=[0, 0, 1, 1] * 2)
    with pytest.raises(TrialDataError, match=r"column 'arm': unknown arm label .*values: '0', '1'"):
        bh.read_trial(frame)  # default labels sorafenib / tace_sorafenib
    with pytest.raises(TrialDataError, match="only one arm"):
        bh.read_trial(frame.assign(arm=[0] * 8), control=0, treatment=1)
    with pytest.raises(TrialDataError, match="both 0"):
        bh.read_trial(frame, control=0, treatment=0.0)


def test_empty_table():
    with pytest.raises(TrialDataError, match="no patients"):
        bh.read_trial(times_frame().iloc[:0])


# -- impossible and implausible values -------------------------------------------------------
def test_infinite_times_are_refused(tmp_path):
    frame = times_frame()
    frame.loc[2, "os_time"] = np.inf
    with pytest.raises(TrialDataError, match=r"column 'os_time': infinite time in row 3 "
                                             r"\(patient_id P2\)"):
        bh.read_trial(frame)
    path = tmp_path / "inf.csv"
    frame.astype({"os_time": object}).assign(
        os_time=lambda f: f["os_time"].map(lambda v: "inf" if v == np.inf else v)).to_csv(
        path, index=False)
    with pytest.raises(TrialDataError, match="infinite time"):
        bh.read_trial(path)
    adtte = bh.to_adtte(quiet(bh.read_trial, times_frame()))
    adtte.loc[0, "AVAL"] = np.inf
    with pytest.raises(ADaMError, match="infinite AVAL"):
        bh.read_adtte(adtte)


def test_times_over_twenty_years_warn_about_the_unit():
    frame = times_frame()
    frame.loc[1, "os_time"] = 1043.0  # days passed as months
    with pytest.warns(DataWarning, match=r"follow-up over 20 years .*row 2 .*time_unit="
                                         r"'months'.*days"):
        bh.read_trial(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        bh.read_trial(frame, time_unit="days")  # 1043 days is plausible


@pytest.mark.parametrize("column, value, message", [
    ("death_date", "2099-01-01", "after today"),
    ("randomization_date", "1900-01-01", "before 1950"),
    ("randomization_date", "2098-06-01", "after today"),
])
def test_implausible_dates_warn(column, value, message):
    frame = pd.DataFrame({
        "patient_id": ["a", "b", "c", "d"], "site": ["S"] * 4,
        "arm": ["sorafenib", "tace_sorafenib"] * 2,
        "randomization_date": ["2018-01-01"] * 4, "progression_date": [""] * 4,
        "death_date": ["2018-06-01", "", "2018-09-01", ""],
        "last_followup_date": ["", "2019-01-01", "", "2019-01-01"]})
    frame.loc[0, column] = value
    if column == "randomization_date" and value > "2018":
        frame.loc[0, "death_date"] = "2099-01-01"
    with pytest.warns(DataWarning, match=rf"column '{column}': dates {message}.*row 1"):
        bh.read_trial(frame)


def test_pfs_dates_copied_into_progression_date_warn(example_trial):
    """The data-manager slip: the PFS event date (progression or death) entered as
    progression_date. Read silently, every death without progression became a progression
    (TTP events 80 -> 111 on the example trial). Now a DataWarning names the rows; one
    progression recorded on the day of death (the example trial has one) does not warn."""
    cols = ["patient_id", "site", "arm", "randomization_date", "progression_date",
            "death_date", "last_followup_date"]
    frame = example_trial.to_frame()[cols]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert bh.read_trial(frame).endpoint("ttp").n_events == 80
    same_day = (frame["progression_date"] == frame["death_date"]).sum()
    assert same_day == 1  # so the warning below is not about what real data can hold
    copied = frame.assign(progression_date=frame["progression_date"].fillna(
        frame["death_date"]))
    n_copied = int(copied["death_date"].notna().sum())
    n_same = int((copied["progression_date"] == copied["death_date"]).sum())
    with pytest.warns(DataWarning, match=rf"column 'progression_date': equal to death_date "
                      rf"for {n_same} of {n_copied} deaths \(rows .*\)\. If these patients "
                      "died without progression"):
        trial = bh.read_trial(copied)
    assert trial.endpoint("ttp").n_events == 80 + (n_same - same_day)
    # the times layout, PFS copied as TTP: the same warning in its own columns' words
    ep = {e: example_trial.endpoint(e) for e in ("os", "pfs")}
    times = pd.DataFrame({"patient_id": ep["os"].patient_id, "site": frame["site"],
                          "arm": frame["arm"], "os_time": ep["os"].time,
                          "os_event": ep["os"].event, "pfs_time": ep["pfs"].time,
                          "pfs_event": ep["pfs"].event})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        bh.read_trial(times)
    with pytest.warns(DataWarning, match=r"columns 'ttp_time', 'ttp_event': a progression at "
                      r"the time of death for \d+ of 111 deaths .* set ttp_event = 0"):
        bh.read_trial(times.assign(ttp_time=times["pfs_time"], ttp_event=times["pfs_event"]))


def test_timezone_aware_date_among_naive_ones():
    frame = times_frame().assign(randomization_date=["2018-01-01"] * 8)
    frame.loc[3, "randomization_date"] = "2018-01-02T00:00:00+09:00"
    with pytest.raises(TrialDataError, match=r"time-zone-aware date .* row 4 \(patient_id P3\)"):
        bh.read_trial(frame)


def test_dates_with_surrounding_spaces_are_read_as_the_dates(tmp_path):
    """A spreadsheet's '2017-06-09 ' was refused as "unparseable date: write dates as
    YYYY-MM-DD", which it was; the spaces say nothing about the date."""
    from bayes_hcc.datasets import _DATA

    frame = pd.read_csv(_DATA / "example_trial.csv")
    padded = frame.copy()
    for col in ("death_date", "last_followup_date", "randomization_date"):
        padded[col] = padded[col].map(lambda v: f" {v} " if isinstance(v, str) else v)
    path = tmp_path / "padded.csv"
    padded.to_csv(path, index=False)
    for source in (padded, path):
        got, want = bh.read_trial(source), bh.read_trial(frame)
        for ep in ("os", "pfs", "ttp"):
            np.testing.assert_array_equal(got.endpoint(ep).time, want.endpoint(ep).time)
            np.testing.assert_array_equal(got.endpoint(ep).event, want.endpoint(ep).event)


def test_a_time_of_day_in_a_date_column_is_dropped_with_a_warning(example_trial):
    """A death written '2018-03-04 12:30' with last follow-up '2018-03-04' was an error,
    "last follow-up before a recorded event", on the same calendar day: the time of day
    made fractional days. Dates are calendar days: the time is dropped, with a warning
    naming the rows; midnight (a spreadsheet's '2018-03-04 00:00:00') is silent. The data
    read are those without the times, as text and as parsed datetimes."""
    frame = example_trial.to_frame()[["patient_id", "site", "arm", "randomization_date",
                                      "progression_date", "death_date",
                                      "last_followup_date"]]
    dead = frame.index[frame["death_date"].notna()][:2]
    text = frame.astype({c: str for c in ("death_date",)})
    text["death_date"] = frame["death_date"].dt.strftime("%Y-%m-%d").where(
        frame["death_date"].notna())
    with_times = text.copy()
    with_times.loc[dead[0], "death_date"] += " 12:30"
    with_times.loc[dead[1], "death_date"] += " 00:00:00"
    plain = quiet(bh.read_trial, text)
    rows = rf"row {dead[0] + 1} \(patient_id {frame.loc[dead[0], 'patient_id']}\)"
    with pytest.warns(DataWarning, match=rf"column 'death_date': a time of day in {rows} "
                      r"\(values: '\d{4}-\d\d-\d\d 12:30'\)"):
        got = bh.read_trial(with_times)
    assert got.fingerprint == plain.fingerprint
    parsed = frame.copy()
    parsed.loc[dead[0], "death_date"] += pd.Timedelta(hours=12, minutes=30)
    with pytest.warns(DataWarning, match=r"column 'death_date': a time of day in row"):
        assert bh.read_trial(parsed).fingerprint == plain.fingerprint


# -- files ------------------------------------------------------------------------------------
def test_header_with_spaces_is_stripped_with_a_warning(tmp_path):
    path = tmp_path / "spaces.csv"
    times_frame().rename(columns={"os_time": "os_time ", "site": " site"}).to_csv(path,
                                                                              index=False)
    with pytest.warns(DataWarning, match="surrounding spaces"):
        trial = bh.read_trial(path)
    assert trial.endpoints == ("os",) and trial.covariates == ()


def test_duplicated_column(tmp_path):
    path = tmp_path / "dup.csv"
    frame = times_frame()
    frame.to_csv(path, index=False)
    text = path.read_text().splitlines()
    text = [line + "," + line.split(",")[3] for line in text]  # os_time again
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(TrialDataError, match="'os_time' appear more than once"):
        bh.read_trial(path)


def test_workbook_with_two_sheets_needs_sheet(tmp_path):
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"note": ["read me"]}).to_excel(xl, sheet_name="README", index=False)
        times_frame().to_excel(xl, sheet_name="patients", index=False)
    with pytest.raises(TrialDataError, match=r"2 sheets \('README', 'patients'\); pass sheet="):
        bh.read_trial(path)
    assert quiet(bh.read_trial, path, sheet="patients").n_patients == 8
    with pytest.raises(TrialDataError, match="no sheet 'x'"):
        bh.read_trial(path, sheet="x")


def test_encodings(tmp_path):
    frame = times_frame().assign(site=["Séoul", "Busan"] * 4)
    latin = tmp_path / "latin1.csv"
    frame.to_csv(latin, index=False, encoding="latin-1")
    with pytest.raises(TrialDataError, match="not UTF-8.*encoding='latin-1'"):
        bh.read_trial(latin)
    assert quiet(bh.read_trial, latin, encoding="latin-1").sites == ("Busan", "Séoul")
    utf16 = tmp_path / "utf16.csv"
    frame.to_csv(utf16, index=False, encoding="utf-16")
    with pytest.raises(TrialDataError, match="UTF-16 byte-order mark: pass encoding='utf-16'"):
        bh.read_trial(utf16)
    bom = tmp_path / "bom.csv"
    frame.to_csv(bom, index=False, encoding="utf-8-sig")
    assert quiet(bh.read_trial, bom).sites == ("Busan", "Séoul")
    with pytest.raises(TrialDataError, match="unknown encoding"):
        bh.read_trial(latin, encoding="no-such-codec")


def test_european_csv_is_named_with_its_fix(tmp_path):
    """Excel in many European locales writes semicolons and decimal commas: the error says
    so and how to read it (before: "cannot tell the layout from the columns"), and reading
    it as the error says gives the same trial."""
    frame = times_frame()
    path = tmp_path / "semicolons.csv"
    frame.to_csv(path, index=False, sep=";", decimal=",")
    with pytest.raises(TrialDataError, match=r"separated by semicolons, not commas .*"
                       r"pandas.read_csv\(path, sep=';', decimal=','\)"):
        bh.read_trial(path)
    as_told = quiet(bh.read_trial, pd.read_csv(path, sep=";", decimal=","))
    np.testing.assert_array_equal(as_told.endpoint("os").time, frame["os_time"])
    tabs = tmp_path / "tabs.csv"
    frame.to_csv(tabs, index=False, sep="\t")
    with pytest.raises(TrialDataError, match=r"separated by tabs.*sep='\\t'\) and pass"):
        bh.read_trial(tabs)
    commas = tmp_path / "decimal_commas.csv"
    frame.assign(os_time=frame["os_time"].map(lambda v: f"{v:.2f}".replace(".", ","))).to_csv(
        commas, index=False)
    with pytest.raises(TrialDataError, match=r"'os_time': non-numeric time in rows 1 .*"
                       r"decimal commas such as '2,5'"):
        bh.read_trial(commas)
    other = frame.assign(os_time=frame["os_time"].astype(object))
    other.loc[2, "os_time"] = "n/a"
    with pytest.raises(TrialDataError, match=r"row 3 .*times must be numbers\.") as err:
        bh.read_trial(other)
    assert "decimal commas" not in str(err.value)


DATES = ["randomization_date", "progression_date", "death_date", "last_followup_date"]


def _written(frame, fmt):
    return frame.assign(**{c: pd.to_datetime(frame[c]).dt.strftime(fmt) for c in DATES})


@pytest.mark.parametrize("fmt, hint", [
    ("%d/%m/%Y", "date_format='%d/%m/%Y' (these dates are day first)"),
    ("%m-%d-%Y", "date_format='%m-%d-%Y' (these dates are month first)"),
    ("%d.%m.%Y", "date_format='%d.%m.%Y' (these dates are day first)"),
    ("%Y. %m. %d.", "date_format='%Y. %m. %d.' (year. month. day.)")])
def test_dates_not_in_iso_format(example_trial, fmt, hint, tmp_path):
    """Dates written day first, month first or the Korean way are refused with the format
    that reads them (the values show it: a day over 12), and read with it they give the
    same times as ISO dates, the assessments too."""
    frame = example_trial.to_frame()[["patient_id", "site", "arm", *DATES]]
    with pytest.raises(TrialDataError, match=re.escape(hint)):
        bh.read_trial(_written(frame, fmt))
    scans = example_trial.assessments
    path = tmp_path / "scans.csv"
    scans.assign(assessment_date=pd.to_datetime(scans["assessment_date"]).dt.strftime(fmt)
                 ).to_csv(path, index=False)
    read = quiet(bh.read_trial, _written(frame, fmt), date_format=fmt, assessments=path)
    iso = quiet(bh.read_trial, frame, assessments=scans)
    for ep in ("os", "pfs", "ttp"):
        for field in ("time", "event", "lower", "upper", "arm", "site"):
            np.testing.assert_array_equal(getattr(read.endpoint(ep), field),
                                          getattr(iso.endpoint(ep), field))
    assert read.endpoint("ttp").has_bounds


def test_partial_dates_are_refused_not_read_as_the_first_of_the_month(example_trial,
                                                                      tmp_path):
    """'2017-06' and '2018' parsed (ISO 8601) as 2017-06-01 and 2018-01-01: a death on an
    imputed day nobody chose. Refused by row, with the fix; the assessments too."""
    frame = example_trial.to_frame()[["patient_id", "site", "arm", *DATES]]
    frame = frame.astype({c: str for c in DATES}).replace("NaT", "")
    frame.loc[0, "death_date"] = "2017-06"
    frame.loc[1, "progression_date"] = "2018"
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(TrialDataError) as err:
        bh.read_trial(tmp_path / "t.csv")
    text = str(err.value)
    assert "column 'death_date': partial date (no day) in row 1 (patient_id HCC-0001) " \
        "(values: '2017-06')" in text
    assert "column 'progression_date': partial date (no day) in row 2" in text
    assert "imputed explicitly before reading" in text and "unparseable" not in text
    scans = example_trial.assessments.astype({"assessment_date": str})
    scans.loc[scans.index[3], "assessment_date"] = "2018-03"
    with pytest.raises(TrialDataError, match="'assessment_date': partial date"):
        bh.read_trial(example_trial.to_frame()[["patient_id", "site", "arm", *DATES]],
                      assessments=scans)


def test_a_date_format_that_cannot_be_told_or_is_wrong(example_trial):
    frame = example_trial.to_frame()[["patient_id", "site", "arm", *DATES]].head(8)
    early = frame.assign(**{c: pd.to_datetime(frame[c]).map(
        lambda d: d.replace(day=min(d.day, 12)) if pd.notna(d) else d) for c in DATES})
    with pytest.raises(TrialDataError, match="no day here is over 12, so the values cannot "
                       "tell which"):
        bh.read_trial(_written(early, "%d/%m/%Y"))
    # the wrong format: the dates whose day is over 12 do not fit it and are named
    with pytest.raises(TrialDataError, match=r"(?s)unparseable date.*these dates are day first"):
        bh.read_trial(_written(frame, "%d/%m/%Y"), date_format="%m/%d/%Y")
    with pytest.raises(TrialDataError, match="does not give day, month and year"):
        bh.read_trial(frame, date_format="%d/%m")
    with pytest.raises(TrialDataError, match="no date column"):
        bh.read_trial(times_frame(), date_format="%d/%m/%Y")


def test_empty_file_and_directory(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(TrialDataError, match=r"empty \(0 bytes\)"):
        bh.read_trial(empty)
    folder = tmp_path / "data.csv"
    folder.mkdir()
    with pytest.raises(TrialDataError, match="is a directory"):
        bh.read_trial(folder)
    header_only = tmp_path / "header.csv"
    times_frame().iloc[:0].to_csv(header_only, index=False)
    with pytest.raises(TrialDataError, match="no patients"):
        bh.read_trial(header_only)


# -- ADaM ADTTE -------------------------------------------------------------------------------
def _adtte():
    frame = times_frame().assign(randomization_date=["2018-01-01"] * 8)
    frame = frame.assign(pfs_time=frame["os_time"], pfs_event=frame["os_event"])
    trial = quiet(bh.read_trial, frame)
    return bh.to_adtte(trial)


@pytest.mark.parametrize("column", ["SITEID", "USUBJID", "TRT01P"])
def test_adtte_missing_identifiers(column):
    adtte = _adtte()
    adtte.loc[2, column] = np.nan
    with pytest.raises(ADaMError, match=rf"column '{column}': missing {column} in row 3"):
        bh.read_adtte(adtte)


def test_adtte_startdt_must_agree_and_parse():
    adtte = _adtte()
    first = adtte.index[adtte["USUBJID"] == "P1"][0]
    adtte.loc[first, "STARTDT"] = pd.Timestamp("2018-02-01")
    with pytest.raises(ADaMError, match="STARTDT differs between rows of the same subject"):
        bh.read_adtte(adtte)
    bad = _adtte().astype({"STARTDT": object})
    bad.loc[0, "STARTDT"] = "31/02/2018"
    with pytest.raises(ADaMError, match="column 'STARTDT': unparseable date"):
        bh.read_adtte(bad)


def test_adtte_non_sas_file(tmp_path):
    path = tmp_path / "adtte.xpt"
    path.write_text("not a transport file")
    with pytest.raises(ADaMError, match="cannot be read as SAS .xpt"):
        bh.read_adtte(path)


# -- a DataFrame (or nothing) where a TrialData is needed -------------------------------------
@pytest.mark.parametrize("call, where", [
    (lambda x: bh.WeibullPH().fit(x, "os"), "WeibullPH.fit"),
    (lambda x: bh.PiecewiseExponential().prior_summary(x), "prior_summary"),
    (lambda x: bh.fit_spec("models/primary_os.toml", x), "fit_spec"),
    (lambda x: bh.IllnessDeath("weibull_ph").fit(x), "IllnessDeath.fit"),
    (lambda x: bh.interim_analysis(x, "models/monitoring.toml"), "interim_analysis"),
    (lambda x: bh.predictive_probability(x, "models/monitoring.toml"),
     "predictive_probability"),
    (lambda x: bh.verify_log("no_such_log.jsonl", x, "models/monitoring.toml"), "verify_log"),
    (lambda x: bh.run_sensitivity("models/sensitivity_os.toml", x, progress=False),
     "run_sensitivity"),
    (lambda x: bh.subgroups("models/primary_os.toml", x, by="site"), "subgroups"),
    (lambda x: bh.to_adtte(x), "to_adtte"),
    (lambda x: bh.disposition(x), "disposition"),
    (lambda x: bh.agreement(x), "agreement"),
    (lambda x: reconstruction_round_trip(x), "reconstruction_round_trip"),
])
def test_a_data_frame_where_a_trial_is_needed_says_how_to_read_it(call, where, example_trial,
                                                                   monkeypatch):
    """The notebook slip: the raw table passed to a fit. It used to fail with
    "'DataFrame' object has no attribute 'endpoint'" (or 'events_by_date', 'endpoints')
    from deep inside; now the error names the call and the fix, before any work is done,
    and the fix works."""
    from pathlib import Path
    monkeypatch.chdir(Path(__file__).parents[2])  # the repo's models/
    frame = example_trial.to_frame()
    with pytest.raises(TrialDataError, match=re.escape(
            f"{where} needs a TrialData, not a pandas DataFrame: read it with "
            "bh.read_trial(df) first")):
        call(frame)
    if where != "prior_summary":  # which shows the priors without data
        with pytest.raises(TrialDataError, match=re.escape(f"{where} needs a TrialData, "
                                                            "not None")):
            call(None)
    # the fix given: the frame read back is the same trial (patients, arms, sites, times)
    back = bh.read_trial(frame)
    for ep in ("os", "pfs", "ttp"):
        np.testing.assert_array_equal(back.endpoint(ep).time, example_trial.endpoint(ep).time)
        np.testing.assert_array_equal(back.endpoint(ep).arm, example_trial.endpoint(ep).arm)


# -- event indicators written the other way round ---------------------------------------------
def test_a_censoring_column_read_as_the_event_column_is_refused():
    """``columns={"cnsr": "os_event"}`` (a censoring flag, 1 = censored) used to be read
    silently as events: every death censored and every censored patient dead. Refused, with
    the fix; a column named as an event indicator ("uncensored" included) is read."""
    frame = times_frame().rename(columns={"os_time": "time"})
    for name in ("cnsr", "CENSOR", "os_cens", "censored"):
        flagged = frame.assign(**{name: 1 - frame["os_event"]}).drop(columns="os_event")
        with pytest.raises(TrialDataError, match=re.escape(
                f"columns= reads {name!r} as 'os_event' (1 = event, 0 = censored), but its "
                "name says it is a censoring indicator")):
            bh.read_trial(flagged, columns={"time": "os_time", name: "os_event"})
        fixed = flagged.assign(os_event=1 - flagged[name]).drop(columns=name)
        trial = quiet(bh.read_trial, fixed, columns={"time": "os_time"})
        np.testing.assert_array_equal(
            trial.endpoint("os").event,
            quiet(bh.read_trial, times_frame()).endpoint("os").event)
    ok = frame.rename(columns={"os_event": "uncensored"})
    trial = quiet(bh.read_trial, ok, columns={"time": "os_time", "uncensored": "os_event"})
    assert trial.endpoint("os").n_events == int(frame["os_event"].sum())


def test_status_coded_one_two_as_in_r_gets_the_hint():
    frame = times_frame().assign(os_event=[1, 2] * 4)
    with pytest.raises(TrialDataError, match=r"event indicator not 0/1 .*\(values 1 and 2, as "
                       r"R's survival datasets code status, usually mean 1 = censored, 2 = "
                       r"event: subtract 1"):
        bh.read_trial(frame)
    frame = times_frame().assign(os_event=[0, 3] * 4)  # not that coding: no such hint
    with pytest.raises(TrialDataError, match=r"use 1 = event, 0 = censored\.") as err:
        bh.read_trial(frame)
    assert "survival datasets" not in str(err.value)


def test_site_and_patient_labels_differing_only_in_case_or_spaces_warn():
    """'SNUH', 'snuh' and 'SNUH ' were read silently as three sites (three site effects,
    three strata); 'P0' and 'p0 ' as two patients. Each is now a DataWarning naming the
    labels and the rows; the labels are kept as written (nothing merged behind the user's
    back)."""
    frame = times_frame(12).assign(site=["SNUH", "snuh", "SNUH ", "AMC", "AMC", "AMC"] * 2)
    frame.loc[11, "patient_id"] = "p0 "
    with pytest.warns(DataWarning) as record:
        trial = bh.read_trial(frame)
    text = [str(w.message) for w in record]
    assert any(t.startswith("column 'site': labels that differ only in case or surrounding "
                            "spaces are read as different sites: 'SNUH', 'SNUH ', 'snuh' "
                            "(rows 1 (patient_id P0), 2 (patient_id P1), 3 (patient_id P2), "
                            "7 (patient_id P6)") for t in text), text
    assert any("column 'patient_id'" in t and "'P0', 'p0 '" in t
               and "12 (patient_id p0 )" in t for t in text), text
    assert len(trial.endpoint("os").sites) == 4  # as written
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        bh.read_trial(times_frame(12).assign(site=["A", "B", "C"] * 4))


def test_spreadsheet_serial_dates_get_the_conversion(example_trial):
    """Dates saved from a sheet whose cells were numbers (42828 for 2017-04-03) were
    refused with only "write dates as YYYY-MM-DD"; the error now says what they are and
    how to convert them, and the conversion it gives reads the same trial."""
    cols = ["patient_id", "site", "arm", "randomization_date", "progression_date",
            "death_date", "last_followup_date"]
    frame = example_trial.to_frame()[cols].copy()
    serial = frame.copy()
    for c in cols[3:]:
        serial[c] = (pd.to_datetime(frame[c]) - pd.Timestamp("1899-12-30")).dt.days
    first = int(serial["randomization_date"].iloc[0])
    day = pd.Timestamp(frame["randomization_date"].iloc[0]).date()
    with pytest.raises(TrialDataError, match=re.escape(
            f"these look like spreadsheet serial day numbers ({first} is {day}): format the "
            "cells as dates before saving, or convert the column with pandas.to_datetime(")):
        bh.read_trial(serial)
    fixed = serial.copy()
    for c in cols[3:]:
        fixed[c] = pd.to_datetime(serial[c], unit="D", origin="1899-12-30")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        back, want = bh.read_trial(fixed), bh.read_trial(frame)
    np.testing.assert_array_equal(back.endpoint("os").time, want.endpoint("os").time)
    with pytest.raises(TrialDataError) as err:  # plain numbers that are not such serials
        bh.read_trial(frame.assign(randomization_date=7))
    assert "spreadsheet" not in str(err.value)


def test_arm_labels_off_by_case_or_spaces_and_missing_arms_are_named():
    """'sorafenib ' and 'Sorafenib' were "unknown arm label" with the generic fix (pass
    control=...), and a missing arm was an unknown label "nan"; each now gets its own
    problem and fix, all reported at once."""
    frame = times_frame()
    frame.loc[1, "arm"] = "sorafenib "
    frame.loc[2, "arm"] = "Tace_Sorafenib"
    frame.loc[3, "arm"] = np.nan
    frame.loc[5, "arm"] = "placebo"
    with pytest.raises(TrialDataError) as err:
        bh.read_trial(frame)
    msg = str(err.value)
    assert re.search(r"column 'arm': missing arm in row 4 \(patient_id P3\)", msg), msg
    assert re.search(r"column 'arm': arm label differing from an arm only in case or "
                     r"surrounding spaces in rows 2 \(patient_id P1\), 3 \(patient_id P2\) "
                     r"\(values: 'sorafenib ', 'Tace_Sorafenib'\)\. Fix: write the arms "
                     r"exactly as control='sorafenib'", msg), msg
    assert re.search(r"column 'arm': unknown arm label in row 6 \(patient_id P5\) "
                     r"\(values: 'placebo'\)", msg), msg


# -- True or False, and nothing else ------------------------------------------------------------
def _public_callables_with_flags():
    """Every public function and public method of a public class with a parameter whose
    default is True or False."""
    import inspect

    out = []
    for name in bh.__all__:
        obj = getattr(bh, name)
        members = ([(name, obj)] if callable(obj) and not isinstance(obj, type) else
                   [(f"{name}.{m}", f) for m, f in inspect.getmembers(obj, inspect.isfunction)
                    if not m.startswith("_")] if isinstance(obj, type) else [])
        out += [(label, f) for label, f in members
                if any(isinstance(p.default, bool)
                       for p in inspect.signature(f).parameters.values())]
    return out


def test_every_public_flag_is_checked():
    """Each of them refuses a non-boolean (the decorator reads the signature, so a flag
    added later is covered once its function is decorated; this lists the undecorated)."""
    flagged = _public_callables_with_flags()
    assert len(flagged) >= 25
    assert [label for label, f in flagged if not hasattr(f, "__wrapped__")] == []


def test_a_misspelt_keyword_of_a_flagged_function_names_the_function(example_trial):
    """The flag check bound the arguments first, and its TypeError named no function
    ("got an unexpected keyword argument 'drawz'")."""
    with pytest.raises(TypeError, match=r"fit\(\) got an unexpected keyword argument "
                                        r"'drawz'"):
        bh.WeibullPH().fit(example_trial, "os", drawz=10)
    with pytest.raises(TypeError, match=r"cut\(\) got an unexpected keyword argument 'warm'"):
        example_trial.cut("2019-01-01", warm=False)


def test_a_flag_given_as_text_is_refused_not_read_as_true(tmp_path, example_trial):
    """``overwrite="no"`` overwrote the file (any non-empty string is true), ``warn="no"``
    warned and ``check="false"`` checked: each is refused, naming the call, and nothing is
    written; numpy booleans and real booleans pass."""
    import numpy as np

    path = bh.write_adtte(example_trial, tmp_path / "adtte.csv")
    before = path.read_bytes()
    with pytest.raises(bh.BayesHCCError,
                       match=r"write_adtte: overwrite='no' must be True or False"):
        bh.write_adtte(example_trial, path, overwrite="no")
    assert path.read_bytes() == before
    with pytest.raises(bh.BayesHCCError, match=r"TrialData.cut: warn='no' must be True"):
        example_trial.cut("2019-01-01", warn="no")
    with pytest.raises(bh.BayesHCCError, match=r"WeibullPH.fit: check='false' must be True"):
        bh.WeibullPH().fit(example_trial, check="false")
    with pytest.raises(bh.BayesHCCError, match=r"interim_analysis: fast=1 must be True"):
        bh.interim_analysis(example_trial, "models/monitoring.toml", fast=1)
    assert example_trial.cut("2019-01-01", warn=np.False_).n_patients == \
        example_trial.cut("2019-01-01", warn=False).n_patients


def test_time_columns_beside_the_dates_must_say_what_the_dates_say(example_trial):
    """A dates-layout file that also carries OS/PFS/TTP times (this package's export, an
    analysis dataset) is read from the dates; a time column that disagrees with them (a
    correction made in one place only, times in another unit, 30-day months) is an error
    naming the rows, never silently overridden. Times rounded as files round them (0.1
    month: within 1.5 days) agree."""
    frame = example_trial.to_frame()
    assert {"os_time", "os_event", "ttp_lower"} <= set(frame.columns)
    again = bh.read_trial(frame)
    for ep in ("os", "pfs", "ttp"):
        assert np.array_equal(again.endpoint(ep).event, example_trial.endpoint(ep).event)
        assert np.allclose(again.endpoint(ep).time, example_trial.endpoint(ep).time)
    rounded = frame.assign(os_time=frame["os_time"].round(1))
    assert np.allclose(bh.read_trial(rounded).endpoint("os").time,
                       example_trial.endpoint("os").time)
    # row 6's OS corrected in the time column only
    bad = frame.copy()
    bad.loc[5, "os_time"] = 9.0
    bad.loc[5, "os_event"] = 0
    with pytest.raises(TrialDataError) as err:
        bh.read_trial(bad)
    for want in (r"column 'os_time': time differs from the OS time the dates give (in months "
                 r"of 30.4375 days) in row 6 (patient_id HCC-0006) (values: '9.0 (the dates "
                 r"give 6.012)')",
                 "column 'os_event': event differs from the OS event the dates give in row 6 "
                 "(patient_id HCC-0006) (values: '0 (the dates give 1)')",
                 "drop the column to use the dates alone"):
        assert want in str(err.value), want
    # months counted as 30 days: 1.4% off, beyond the tolerance after about 4.6 months
    thirty = frame.assign(os_time=frame["os_time"] * 30.4375 / 30)
    with pytest.raises(TrialDataError, match=r"column 'os_time': time differs"):
        bh.read_trial(thirty)
    # the file's times (months) read as days: the fix names time_unit (and says days once)
    with pytest.raises(TrialDataError, match=r"(?s)column 'os_time': time differs from the OS "
                       r"time the dates give \(in days\) in rows 1.*read it with time_unit="):
        bh.read_trial(frame, time_unit="days")


def test_layout_options_that_do_not_fit_the_file():
    """(Found by a coverage run: no test reached these.) An endpoint given both as a time
    and event and as bounds, an assessment table beside the times layout, and an unknown
    zero_time_events rule are named errors. An upper bound beside a time and event was
    silently dropped."""
    # os_upper beside os_time and os_event was dropped without a word
    with pytest.raises(TrialDataError, match=r"columns 'os_time'/'os_event' and 'os_upper' "
                       r"both given; give OS once: as a time and event \(with 'os_lower'"):
        bh.read_trial(times_frame().assign(os_upper=25.0))
    bounds = times_frame().drop(columns="os_time").assign(os_lower=1.0, os_upper=25.0)
    with pytest.raises(TrialDataError, match=r"columns 'os_time'/'os_event' and "
                       r"'os_lower'/'os_upper' both given; give OS once"):
        bh.read_trial(bounds)
    scans = pd.DataFrame({"patient_id": ["P0"], "assessment_date": ["2018-01-01"]})
    with pytest.raises(TrialDataError, match=r"an assessment table goes with the dates layout"
                       r".*in the times layout give <endpoint>_lower / _upper bounds"):
        bh.read_trial(times_frame(), assessments=scans)
    with pytest.raises(TrialDataError, match=r"zero_time_events='drop'; choose one of"):
        bh.read_trial(times_frame(), zero_time_events="drop")


def _fabricated():
    from bayes_hcc.families.weibull import WeibullFamily
    from tests.helpers import const, fabricated_fit

    return fabricated_fit(WeibullFamily(), {"log_lambda": const(-2.0), "log_shape": const(0.0),
                                            "log_hr": const(-0.2)},
                          arm=[0, 1], site=[0, 0])


@pytest.mark.parametrize("call, where", [
    (lambda trial, p: bh.write_table(pd.DataFrame({"a": [1]}), p), "write_table"),
    (lambda trial, p: bh.write_adtte(trial, p), "write_adtte"),
    (lambda trial, p: bh.read_history(p), "read_history"),
    (lambda trial, p: bh.verify_log(p, trial, "models/monitoring.toml"), "the audit log"),
    (lambda trial, p: bh.interim_analysis(trial, "models/monitoring.toml", log=p),
     "interim_analysis: log"),
    (lambda trial, p: bh.load_fit(p), "load_fit"),
    (lambda trial, p: _fabricated().save(p), "save"),
    (lambda trial, p: bh.report(_fabricated(), p), "report"),
    (lambda trial, p: bh.publication_tables(_fabricated(), p), "publication_tables"),
    (lambda trial, p: bh.sbc("weibull_ph", 2, store=p, progress=False), "store"),
    (lambda trial, p: bh.validation_report(p), "validation_report"),
])
def test_a_path_given_something_else_is_refused_by_name(call, where, example_trial,
                                                        monkeypatch):
    """A fit, a trial or a number where a path belongs failed with pathlib's "argument
    should be a str or an os.PathLike object ..., not 'int'", naming neither the call nor
    the argument; an empty path was the current directory. One check, ``user_path``, for
    every path the package reads or writes (it also expands ``~``)."""
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).parents[2])  # the repo's models/
    for bad, got in ((5, "int"), (example_trial, "TrialData"), ("", "an empty path")):
        with pytest.raises(bh.BayesHCCError, match=re.escape(where) + r": expected the path "
                           rf"of .*, got {got}\."):
            call(example_trial, bad)


def test_spec_helpers_take_a_spec_as_load_spec_does(example_trial):
    """bh.dump_spec(5) and bh.apply_overrides(5, {...}) failed with "'int' object has no
    attribute 'to_dict'"; bh.look_date(5, look) with "no attribute 'events_by_date'". The
    spec helpers take what bh.load_spec takes (a path among them); the look date a trial."""
    from pathlib import Path

    path = Path(__file__).parents[2] / "models" / "primary_os.toml"
    spec = bh.load_spec(path)
    assert bh.dump_spec(path) == bh.dump_spec(spec)
    assert bh.apply_overrides(path, {"site.effect": "none"}) == \
        bh.apply_overrides(spec, {"site.effect": "none"})
    with pytest.raises(bh.SpecError, match=r"expected an analysis spec .* got int"):
        bh.dump_spec(5)
    with pytest.raises(bh.SpecError, match=r"expected an analysis spec .* got int"):
        bh.apply_overrides(5, {"site.effect": "none"})
    plan = bh.load_plan(path.parent / "monitoring.toml")
    with pytest.raises(TrialDataError, match=r"look_date needs a TrialData, not an int"):
        bh.look_date(5, plan.look(1))
    assert bh.look_date(example_trial, plan.look(1)) == plan.look_date(example_trial, 1)
