"""The command line as a user runs it: the real entry point (``main``), exit codes,
messages in the command line's own words, no traceback, and the time unit in every label."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.cli.app import main
from bayes_hcc.datasets import _DATA

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    """``bayes-hcc ARGV`` in this process through the real entry point: (code, out, err)."""
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    cap = capsys.readouterr()
    assert "Traceback" not in cap.out + cap.err
    return done.value.code, cap.out, cap.err


def test_real_command_bad_input_no_traceback(tmp_path):
    """The installed script, in a fresh process: an input error exits 2 with one line."""
    exe = Path(sys.executable).with_name("bayes-hcc")
    proc = subprocess.run([str(exe), "describe", str(tmp_path / "missing.csv")],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "MPLBACKEND": "Agg"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {tmp_path / 'missing.csv'}: no such file."
    assert "Traceback" not in proc.stdout + proc.stderr


def test_usage_and_internal_errors(capsys, monkeypatch):
    code, _, err = run(capsys, "fit")
    assert code == 2 and "Missing argument" in err
    reading = sys.modules["bayes_hcc.cli.reading"]  # where commands read their data

    def boom(*a, **k):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(reading, "load_data", boom)
    code, _, err = run(capsys, "describe", "example")
    assert code == 3 and "internal error (RuntimeError: simulated bug)" in err
    assert "please report" in err


@pytest.mark.parametrize("argv, said", [
    (("fit", "models/primary_os.toml", "--out", "OUT"), "an analysis spec: pass it as --spec"),
    (("sensitivity", "example", "models/sensitivity_os.toml", "--out", "OUT"),
     "a sensitivity grid: `bayes-hcc sensitivity GRID DATA` takes it first"),
    (("monitor", "models/monitoring.toml", "--look", "1"), "a monitoring plan: pass it as "
     "--plan"),
    (("describe", "HISTORY"), "historical control arms: `bayes-hcc map-prior HISTORY`"),
])
def test_a_toml_file_given_as_the_data_is_named_with_where_it_goes(capsys, tmp_path, argv,
                                                                    said):
    """A spec, plan, grid or history file where the trial goes (the data first, or the
    grid's two arguments swapped) is named for what it is, with the command that takes it;
    it used to be refused as an "unknown file type '.toml'" of trial data."""
    history = _DATA / "sorafenib_history.toml"
    argv = [str(history) if a == "HISTORY" else str(tmp_path / "out") if a == "OUT"
            else str(ROOT / a) if a.startswith("models/") else a for a in argv]
    code, out, err = run(capsys, *argv)
    toml = argv[2] if argv[0] == "sensitivity" else argv[1]  # where DATA goes
    assert code == 2 and not out
    assert err.startswith(f"error: {toml} was given as DATA, the trial; it is {said}")
    assert "or a bundled dataset (colon, example, leukemia, rats, veteran)" in err
    assert not (tmp_path / "out").exists()


def test_time_unit_on_describe_and_fit(capsys, tmp_path):
    """A file in days read with --time-unit days: follow-up in days, landmarks 12 and 24
    months expressed in days and labelled so (a file in days used to be read as months)."""
    raw = pd.read_csv(_DATA / "veteran.csv")
    frame = pd.DataFrame({"patient_id": raw["id"], "site": "VA", "arm": raw["arm"],
                          "os_time": raw["time_days"], "os_event": raw["status"]})
    path = tmp_path / "veteran_days.csv"
    frame.to_csv(path, index=False)
    code, out, _ = run(capsys, "describe", str(path), "--control", "standard", "--treatment",
                       "test", "--time-unit", "days")
    assert code == 0 and "== OS (days) ==" in out and "median_follow_up_days" in out
    code, out, _ = run(capsys, "fit", str(path), "--control", "standard", "--treatment",
                       "test", "--time-unit", "days", "--site-effect", "none", "--model",
                       "weibull", "--out", str(tmp_path / "fit"), "--draws", "300", "--tune",
                       "300", "--chains", "2")
    assert code == 0, out
    assert "times in days" in out and "S(365.25 days) standard" in out
    assert bh.load_fit(tmp_path / "fit" / "fit.nc").time_unit == "days"
    code, _, err = run(capsys, "describe", "example", "--time-unit", "fortnights")
    assert code == 2 and "--time-unit fortnights is not known" in err


def test_messages_name_the_command_line_options(capsys, tmp_path):
    frame = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "site": ["S"] * 4,
                          "arm": ["A", "B", "A", "B"], "os_time": [1, 2, 3, 4],
                          "os_event": [1, 1, 0, 1]})
    path = tmp_path / "labels.csv"
    frame.to_csv(path, index=False)
    code, _, err = run(capsys, "describe", str(path))
    assert code == 2 and "pass --control and --treatment" in err and "read_trial" not in err
    out = tmp_path / "fit"
    code, _, err = run(capsys, "fit", "example", "--model", "weibull", "--out", str(out),
                       "--fast", "--report")
    assert code == 0, err  # an internal error (exit 3) prints its exception: keep it
    code, _, err = run(capsys, "report", str(out / "fit.nc"), "--out",
                       str(out / "report.html"))
    assert code == 2 and "pass --overwrite" in err and "overwrite=True" not in err
    code, printed, err = run(capsys, "fit", "example", "--tune", "-5", "--out",
                             str(tmp_path / "t"))
    assert code == 2 and "--tune -5 must be between 1 and" in err and "tune=" not in err
    assert printed == ""  # refused before the data are read or "fitting ..." is printed


READING = ["--control", "--treatment", "--adtte", "--time-unit", "--assessments", "--encoding",
           "--sheet", "--zero-time-events", "--date-format", "--paramcd", "--arm-column",
           "--column"]


@pytest.mark.parametrize("command", ["describe", "fit", "sensitivity", "monitor"])
def test_every_command_reading_a_trial_takes_the_same_options(capsys, command):
    code, out, _ = run(capsys, command, "--help")
    assert code == 0 and [flag for flag in READING if flag not in out] == []


def _korean_frame():
    return pd.DataFrame({"patient_id": [f"P{i}" for i in range(8)],
                         "site": ["서울", "부산"] * 4,
                         "arm": ["sorafenib", "tace_sorafenib"] * 4,
                         "os_time": [1.5, 2.0, 3.25, 4.0, 5.0, 6.5, 7.0, 8.0],
                         "os_event": [1, 1, 0, 1, 1, 0, 1, 1]})


def test_the_fixes_a_reading_error_names_exist_on_the_command_line(capsys, tmp_path):
    """Every fix a reading error proposes is an option of the command (before, a Korean
    Windows file, a same-day death or a two-sheet workbook told a command-line user to pass
    Python keyword arguments the command did not have)."""
    frame = _korean_frame()
    korean = tmp_path / "korean.csv"
    frame.to_csv(korean, index=False, encoding="cp949")
    code, _, err = run(capsys, "describe", str(korean))
    assert code == 2 and "--encoding cp949" in err and "encoding=" not in err
    code, out, _ = run(capsys, "describe", str(korean), "--encoding", "cp949")
    assert code == 0 and "2 sites" in out and "서울" in out

    same_day = tmp_path / "same_day.csv"
    frame.assign(os_time=[0.0] + frame.os_time[1:].tolist()).to_csv(same_day, index=False)
    code, _, err = run(capsys, "describe", str(same_day))
    assert code == 2 and "pass --zero-time-events half_day" in err
    code, out, err = run(capsys, "describe", str(same_day), "--zero-time-events", "half_day")
    assert code == 0 and "(--zero-time-events half_day)" in err and "8 patients" in out

    book = tmp_path / "trial.xlsx"
    with pd.ExcelWriter(book) as xl:
        pd.DataFrame({"note": ["read me"]}).to_excel(xl, sheet_name="README", index=False)
        frame.to_excel(xl, sheet_name="patients", index=False)
    code, _, err = run(capsys, "describe", str(book))
    assert code == 2 and "pass --sheet <name>" in err
    for sheet in ("patients", "1"):
        code, out, _ = run(capsys, "describe", str(book), "--sheet", sheet)
        assert code == 0 and "8 patients" in out

    adtte = tmp_path / "adtte.csv"
    table = bh.to_adtte(bh.read_trial(frame))
    table.assign(PARAMCD=table["PARAMCD"].replace({"OS": "OSINV"})).to_csv(adtte, index=False)
    code, _, err = run(capsys, "describe", str(adtte), "--adtte")
    assert code == 2 and "pass --paramcd YOURCODE=os" in err
    code, out, _ = run(capsys, "describe", str(adtte), "--adtte", "--paramcd", "OSINV=os")
    assert code == 0 and "8 patients" in out
    code, _, err = run(capsys, "describe", str(korean), "--paramcd", "OSINV=os")
    assert code == 2 and "pass --adtte" in err
    code, _, err = run(capsys, "describe", str(adtte), "--adtte", "--paramcd", "OSINV")
    assert code == 2 and "give CODE=ENDPOINT" in err
    day_first = tmp_path / "day_first.csv"
    example = bh.datasets.load_example_trial().to_frame()
    dates = [c for c in example if c.endswith("_date") and c != "last_progression_free_date"]
    example = example[["patient_id", "site", "arm", *dates]]
    example.assign(**{c: pd.to_datetime(example[c]).dt.strftime("%d/%m/%Y") for c in dates}
                   ).to_csv(day_first, index=False)
    code, _, err = run(capsys, "describe", str(day_first))
    assert code == 2 and "pass --date-format %d/%m/%Y (these dates are day first)" in err
    code, out, _ = run(capsys, "describe", str(day_first), "--date-format", "%d/%m/%Y")
    assert code == 0 and "130 patients" in out
    code, _, err = run(capsys, "describe", "example", "--encoding", "cp949", "--sheet", "1")
    assert code == 2 and "--encoding, --sheet apply to reading a file" in err

    # a survival file as most are written: columns named otherwise, a single centre
    plain = tmp_path / "plain.csv"
    frame.rename(columns={"patient_id": "id", "os_time": "time", "os_event": "status"}).drop(
        columns="site").to_csv(plain, index=False, encoding="utf-8")
    code, _, err = run(capsys, "describe", str(plain))
    assert code == 2 and "pass --column 'your name=os_time' (repeatable)" in err
    assert "columns=" not in err
    code, _, err = run(capsys, "describe", str(plain), "--column", "time=os_time", "--column",
                       "status=os_event", "--column", "id=patient_id")
    assert code == 2 and "missing column(s) site" in err and "single-centre" in err
    plain_site = tmp_path / "plain_site.csv"
    pd.read_csv(plain).assign(centre="one").to_csv(plain_site, index=False)
    code, out, err = run(capsys, "describe", str(plain_site), "--column", "time=os_time",
                         "--column", "status=os_event", "--column", "id=patient_id",
                         "--column", "centre=site")
    assert code == 0 and "8 patients" in out, err
    code, _, err = run(capsys, "describe", str(plain_site), "--column", "time")
    assert code == 2 and "give FILE_NAME=NAME" in err
    # a censoring flag (1 = censored) named as the event column: refused, not inverted
    flagged = tmp_path / "flagged.csv"
    pd.read_csv(plain_site).assign(cnsr=lambda d: 1 - d["status"]).drop(
        columns="status").to_csv(flagged, index=False)
    code, _, err = run(capsys, "describe", str(flagged), "--column", "time=os_time",
                       "--column", "cnsr=os_event", "--column", "id=patient_id",
                       "--column", "centre=site")
    assert code == 2 and "reads 'cnsr' as 'os_event'" in err and "censoring indicator" in err


def test_monitor_help_keeps_brackets(capsys):
    code, out, _ = run(capsys, "monitor", "--help")
    assert code == 0 and "[prediction]" in out


def test_monitor_console_and_audit_record(capsys, tmp_path):
    """The console shows HR (95% CrI), events by arm and each probability with its MCSE;
    the record has them and the PPoS; OS monitoring says nothing about TTP."""
    log = tmp_path / "audit.jsonl"
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, _ = run(capsys, "monitor", "example", "--plan",
                           str(ROOT / "models" / "monitoring.toml"), "--look", "1", "--fast",
                           "--log", str(log), "--ppos", "--method", "normal")
    assert code == 0, out
    assert not [w for w in caught if "ttp" in str(w.message) or "pfs" in str(w.message)]
    assert "HR " in out and "95% CrI" in out and "OS events / patients by arm" in out
    assert "P(HR < 1) = " in out and "(MCSE " in out and "PPoS = " in out
    rec = json.loads(log.read_text().splitlines()[-1])
    assert set(rec["events_by_arm"]) == {"sorafenib", "tace_sorafenib"}
    assert rec["ppos"]["method"] == "normal" and 0 <= rec["ppos"]["ppos"] <= 1
    # --method without --ppos was ignored without a word (look 1 has no PPoS rule)
    code, out, err = run(capsys, "monitor", "example", "--plan",
                         str(ROOT / "models" / "monitoring.toml"), "--look", "1", "--fast",
                         "--log", str(log), "--method", "normal")
    assert code == 2 and "--method is for the predictive probability of success, and look " \
        "'interim 1' computes none (it has no PPoS futility rule): pass --ppos too" in err, err
    code, out, err = run(capsys, "monitor", "example", "--plan",
                         str(ROOT / "models" / "monitoring.toml"), "--look", "final", "--fast",
                         "--log", str(log), "--ppos")
    assert code == 2 and "error: --ppos is for the predictive probability of success, and " \
        "the final analysis has none (its decision is the final rule on the data): leave it " \
        "out." in err, err
    assert len(log.read_text().splitlines()) == 1  # nothing appended



def test_monitor_a_plan_whose_later_looks_are_at_dates(capsys, tmp_path):
    """A plan with its second look and final analysis at dates: the look runs, its record
    is written, and the console predicts the events by those dates (it used to fail after
    the look, exit 2, because there was no event count to predict a date for)."""
    plan = (ROOT / "models" / "monitoring.toml").read_text()
    plan = plan.replace('analysis = "primary_os.toml"',
                        f'analysis = "{(ROOT / "models" / "primary_os.toml").as_posix()}"')
    plan = plan.replace("events = 70", 'date = "2019-01-31"').replace(
        "events = 100", 'date = "2019-12-31"')
    (tmp_path / "plan.toml").write_text(plan)
    log = tmp_path / "audit.jsonl"
    code, out, err = run(capsys, "monitor", "example", "--plan", str(tmp_path / "plan.toml"),
                         "--look", "1", "--fast", "--log", str(log))
    assert code == 0, err
    assert "predicted events by the later looks' dates" in out
    assert "predicted dates of the later looks' event counts" not in out
    assert "2019-01-31" in out and "2019-12-31" in out and log.exists()

def test_data_warnings_only_for_the_analysed_endpoint():
    """A look analyses OS: a TTP arm without events at the cut is not its business (the
    look used to print four TTP warnings)."""
    import warnings

    frame = pd.DataFrame({
        "patient_id": list("abcdef"), "site": ["S"] * 6,
        "arm": ["sorafenib", "tace_sorafenib"] * 3,
        "randomization_date": ["2018-01-01"] * 6,
        "progression_date": ["2018-03-01", "", "", "", "", ""],
        "death_date": ["2018-06-01", "2018-05-01", "", "2018-07-01", "", ""],
        "last_followup_date": ["", "", "2019-01-01", "", "2019-01-01", "2019-01-01"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = bh.read_trial(frame)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cut = trial.cut("2018-12-01", warn=False)
        cut.data_warnings(["os"])
    assert not [w for w in caught if "ttp" in str(w.message)]
    with pytest.warns(bh.DataWarning, match="ttp: arm 'tace_sorafenib' has no events"):
        cut.data_warnings()


@pytest.mark.parametrize("case", ["latin-1 file", "utf-16 file", "empty file", "directory",
                                  "fit not HDF5", "log is a directory",
                                  "store is a directory", "settle draws 0",
                                  "integer arms"])
def test_bad_input_cases_exit_2_without_traceback(capsys, tmp_path, case):
    frame = pd.DataFrame({"patient_id": ["a", "b", "c", "d"], "site": ["Séoul"] * 4,
                          "arm": ["sorafenib", "tace_sorafenib"] * 2, "os_time": [1, 2, 3, 4],
                          "os_event": [1, 1, 0, 1]})
    path = tmp_path / "trial.csv"
    plan = str(ROOT / "models" / "monitoring.toml")
    if case == "latin-1 file":
        frame.to_csv(path, index=False, encoding="latin-1")
        argv, message = ["describe", str(path)], "not UTF-8"
    elif case == "utf-16 file":
        frame.to_csv(path, index=False, encoding="utf-16")
        argv, message = ["describe", str(path)], "pass --encoding utf-16"
    elif case == "empty file":
        path.write_bytes(b"")
        argv, message = ["describe", str(path)], "empty (0 bytes)"
    elif case == "directory":
        argv, message = ["describe", str(tmp_path)], "is a directory"
    elif case == "fit not HDF5":
        (tmp_path / "fit.nc").write_text("hello")
        argv, message = ["report", str(tmp_path / "fit.nc"), "--out",
                         str(tmp_path / "r.html")], "cannot be read as a saved fit"
    elif case == "log is a directory":
        argv, message = ["monitor", "example", "--plan", plan, "--fast", "--log",
                         str(tmp_path)], "is a directory"
    elif case == "store is a directory":
        argv, message = ["design", "--plan", plan, "--trials", "1", "--store",
                         str(tmp_path)], "is a directory"
    elif case == "settle draws 0":
        argv, message = ["design", "--plan", plan, "--trials", "1", "--settle-draws",
                         "0"], "settle_draws=0"
    else:
        frame.assign(arm=[0, 1, 0, 1]).to_csv(path, index=False)
        code, out, _ = run(capsys, "describe", str(path), "--control", "0", "--treatment",
                           "1")
        assert code == 0 and "2 arms (0 2, 1 2)" in out
        return
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err, err
    assert err.startswith("error: ")


def test_scans_on_the_command_line(capsys, tmp_path):
    """A patient file and its scans (--assessments): describe shows the Turnbull medians for
    TTP and PFS; fit --censoring runs the imputation variant; a bad choice is named."""
    patients = pd.read_csv(_DATA / "example_trial.csv")
    path = tmp_path / "patients.csv"
    patients.to_csv(path, index=False)
    scans = _DATA / "example_assessments.csv"
    code, out, _ = run(capsys, "describe", str(path), "--assessments", str(scans))
    assert code == 0 and "Turnbull NPMLE median per arm" in out
    code, out, _ = run(capsys, "describe", str(path))  # without the scans: visit dates
    assert code == 0 and "Turnbull" not in out
    code, out, _ = run(capsys, "fit", str(path), "--assessments", str(scans), "--endpoint",
                       "ttp", "--model", "weibull", "--censoring", "midpoint", "--fast",
                       "--out", str(tmp_path / "fit"))
    assert code == 0, out
    assert bh.load_fit(tmp_path / "fit" / "fit.nc").spec.censoring == "midpoint"
    code, _, err = run(capsys, "fit", "example", "--endpoint", "ttp", "--censoring", "exact",
                       "--fast", "--out", str(tmp_path / "fit2"))
    assert code == 2 and "censoring" in err and "interval, midpoint, upper, lower" in err


def test_stratified_fit_on_the_command_line(capsys, tmp_path):
    """fit --strata site: a baseline per site (site effect none by default), the stratified
    frequentist companion in the printed table; a site effect on top is a named error."""
    code, out, _ = run(capsys, "fit", "example", "--model", "weibull", "--strata", "site",
                       "--pooling", "none", "--fast", "--out", str(tmp_path / "fit"))
    assert code == 0, out
    fit = bh.load_fit(tmp_path / "fit" / "fit.nc")
    assert fit.pooling == "none" and fit.site_effect == "none" and len(fit.strata) == 6
    assert "log-rank stratified" in out
    code, _, err = run(capsys, "fit", "example", "--strata", "site", "--site-effect",
                       "random", "--fast", "--out", str(tmp_path / "fit2"))
    assert code == 2 and "not identifiable" in err


def test_reconstruct_on_the_command_line(capsys, tmp_path):
    """Digitiser exports (no header, percent, shuffled) and published at-risk tables in,
    a trial table out that `fit` reads; the fidelity printed; outputs never overwritten."""
    from bayes_hcc.validation.reconstruction import digitise_km, published_at_risk

    trial = bh.datasets.load_veteran()
    ep = trial.endpoint("os")
    files = []
    for i, arm in enumerate(trial.arms):
        m = ep.arm == i
        curve = digitise_km(ep.time[m], ep.event[m], seed=i)
        curve = curve.assign(survival=100 * curve["survival"]).sample(frac=1, random_state=i)
        curve.to_csv(tmp_path / f"curve_{arm}.csv", index=False, header=False)
        published_at_risk(ep.time[m]).to_csv(tmp_path / f"risk_{arm}.csv", index=False)
        files += [str(tmp_path / f"curve_{arm}.csv"), str(tmp_path / f"risk_{arm}.csv")]
    out = tmp_path / "ipd.csv"
    args = ["reconstruct", *files, "--out", str(out), "--control", "standard",
            "--treatment", "test", "--events", "64", "--events", "64",
            "--plot", str(tmp_path / "overlay.png")]
    code, text, err = run(capsys, *args)
    assert code == 0, err
    assert "survival given in percent" in text and "Per at-risk interval" in text
    assert "RECONSTRUCTED" in text and (tmp_path / "overlay.png").stat().st_size > 0
    back = bh.read_trial(out, control="standard", treatment="test")
    assert back.n_patients == trial.n_patients
    assert set(pd.read_csv(out).columns) == {"patient_id", "site", "arm", "os_time",
                                             "os_event"}
    code, _, err = run(capsys, *args)
    assert code == 2 and "--overwrite" in err
    code, text, _ = run(capsys, "reconstruct", *files[:2], "--out", str(tmp_path / "one.csv"))
    assert code == 0 and set(pd.read_csv(tmp_path / "one.csv").columns) == {"time", "event"}
    code, _, err = run(capsys, "reconstruct", files[0], "--out", str(tmp_path / "x.csv"))
    assert code == 2 and "pair of files per arm" in err
    code, _, err = run(capsys, "reconstruct", *files, "--out", str(tmp_path / "y.csv"),
                       "--events", "64")
    assert code == 2 and "once per arm" in err


def test_map_prior_on_the_command_line(capsys, tmp_path):
    """A history file in, a [priors.log_lambda] table out that an analysis spec takes as
    it is; per interval with --cut; outputs never overwritten silently."""
    import tomllib

    rows = [{"study": s, "source": "test", "events": d, "exposure": d / r}
            for s, d, r in [("A", 150, 0.070), ("B", 120, 0.095), ("C", 140, 0.065)]]
    pd.DataFrame(rows).to_csv(tmp_path / "history.csv", index=False)
    out = tmp_path / "prior.toml"
    code, text, err = run(capsys, "map-prior", str(tmp_path / "history.csv"), "--out",
                          str(out), "--robust", "0.25")
    assert code == 0, err
    assert "robust MAP prior" in text and "ESS" in text
    table = tomllib.loads(out.read_text())["priors"]
    assert out.read_text().startswith("# robust MAP prior")
    spec = bh.load_spec({"name": "borrowing", "endpoint": "os", "family": "exponential_ph",
                         "site": {"effect": "none"}, "priors": table})
    assert spec.priors[0][1].weights[-1] == pytest.approx(0.25)
    code, _, err = run(capsys, "map-prior", str(tmp_path / "history.csv"), "--out", str(out))
    assert code == 2 and "--overwrite" in err
    code, _, err = run(capsys, "map-prior", str(tmp_path / "history.csv"), "--out",
                       str(tmp_path / "p2.toml"), "--cut", "4")
    assert code == 2 and "per-interval MAP prior needs events and exposure" in err
    # the bundled history's unit is months: another --time-unit (an unknown one too) was
    # ignored without a word; checked before anything is read
    for unit in ("days", "fortnights"):
        code, _, err = run(capsys, "map-prior", "sorafenib", "--out",
                           str(tmp_path / "p3.toml"), "--time-unit", unit)
        assert code == 2 and f"--time-unit {unit}: the unit of a history file's numbers; " \
            "the bundled sorafenib history is in months" in err, err
    assert not (tmp_path / "p3.toml").exists()
    code, _, err = run(capsys, "map-prior", "sorafenib", "--out", str(tmp_path / "p4.toml"),
                       "--robust", "1")
    assert code == 2 and "--robust 1.0: a weight in [0, 1)" in err


def test_fit_runs_a_pre_specified_analysis_from_its_spec(capsys, tmp_path):
    """`fit --spec models/<analysis>.toml`: the spec's endpoint, model, priors and [report]
    table, single-endpoint and illness-death; the sampler settings given on the command
    line override the spec's and are recorded; model options beside a spec are refused."""
    from bayes_hcc.quantities.summary import as_specified

    out = tmp_path / "pfs"
    code, printed, err = run(capsys, "fit", "example", "--spec", "models/secondary_pfs.toml",
                             "--out", str(out), "--draws", "200", "--seed", "5")
    assert code in (0, None), err
    assert "fitting the spec 'secondary_pfs'" in printed
    fit = bh.load_fit(out / "fit.nc")
    assert fit.endpoint == "pfs" and fit.random_seed == 5
    assert dict(fit.spec.sampler)["draws"] == 200
    assert fit.datatree.attrs["analysis_spec_hash"] == bh.load_spec(
        "models/secondary_pfs.toml").hash
    table = pd.read_csv(out / "summary.csv", index_col="quantity")
    want = bh.summarize(fit, **as_specified(fit))  # the spec's tau (12, shortened to follow-up)
    assert list(table.index) == list(want.index)
    assert "RMST(10 months) difference" in table.index  # PFS followed 10.4: whole months

    out = tmp_path / "joint"
    # --fast sets the draws: --draws beside it was overridden without a word; refused
    code, printed, err = run(capsys, "fit", "example", "--spec", "models/illness_death.toml",
                             "--out", str(out), "--fast", "--draws", "200")
    assert code == 2 and "--fast sets --draws, --tune, --chains (draws 300, tune 400, " \
        "chains 4); leave --draws out, or leave --fast out to choose them" in err, err
    assert printed == "" and not out.exists()
    code, printed, err = run(capsys, "fit", "example", "--spec", "models/illness_death.toml",
                             "--out", str(out), "--fast", "--seed", "3")
    assert code in (0, None), err
    assert "4 chains x 300 draws" in printed  # --fast's, as without a spec
    joint = bh.load_fit(out / "fit.nc")
    assert joint.datatree["posterior"].sizes["draw"] == 300
    assert isinstance(joint, bh.IllnessDeathFit) and joint.spec.name == "illness_death"
    table = pd.read_csv(out / "summary.csv", index_col=["endpoint", "quantity"])
    assert set(table.index.get_level_values("endpoint")) == {"OS", "PFS", "TTP"}
    assert "death_after_progression" in printed

    code, printed, err = run(capsys, "fit", "example", "--spec", "models/primary_os.toml",
                             "--model", "weibull", "--out", str(tmp_path / "x"))
    assert code == 2 and "--model: the spec models/primary_os.toml sets the model" in err
    assert printed == ""


def test_the_default_plan_outside_the_repository_says_where_it_looked(capsys, monkeypatch,
                                                                      tmp_path):
    """``bayes-hcc monitor example`` run outside the repository said only "no such
    monitoring plan file" (after reading the data); the default plan is read from the
    current directory, and the error says so and how to point at another."""
    monkeypatch.chdir(tmp_path)
    for argv in (["monitor", "example", "--fast"], ["design", "--trials", "2"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and f"no such monitoring plan file in {tmp_path}" in err
        assert "run from the repository root, or pass --plan PATH" in err


def test_sensitivity_refuses_existing_outputs_before_fitting_anything(capsys, tmp_path,
                                                                     monkeypatch):
    """Only the forest plot was checked before the grid ran: a folder holding the tables of
    an earlier run (without its plot) was refused by the table writer, after every fit."""
    def never(*args, **kwargs):
        raise AssertionError("the grid ran")

    monkeypatch.setattr(bh, "run_sensitivity", never)
    (tmp_path / "sensitivity.csv").write_text("earlier run\n")
    code, _, err = run(capsys, "sensitivity", str(ROOT / "models" / "sensitivity_os.toml"),
                       "example", "--out", str(tmp_path), "--fast")
    assert code != 0 and "sensitivity.csv exist; pass --overwrite to replace" in err
    assert (tmp_path / "sensitivity.csv").read_text() == "earlier run\n"


def test_fit_with_an_unknown_endpoint_says_so_before_announcing_a_fit(capsys, tmp_path):
    code, out, err = run(capsys, "fit", "example", "--endpoint", "oss", "--out",
                         str(tmp_path / "o"))
    assert code != 0 and "endpoint 'oss' is not in these data; available: os, pfs, ttp" in err
    assert "fitting" not in out
