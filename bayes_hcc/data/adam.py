"""CDISC ADaM ADTTE in and out. The one place where CNSR (1 = censored) is inverted."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_hcc.units import DAYS_PER_UNIT, check_time_unit
from bayes_hcc.data._checks import Problems, warn_data
from bayes_hcc.data.read import read_table
from bayes_hcc.data.trial import TrialData, require_trial
from bayes_hcc.errors import ADaMError, bool_flags, did_you_mean, user_path

__all__ = ["read_adtte", "to_adtte", "write_adtte", "DEFAULT_PARAMCD"]

#: PARAMCD -> endpoint name.
DEFAULT_PARAMCD = {"OS": "os", "PFS": "pfs", "TTP": "ttp"}
_PARAM_LABEL = {"os": "Overall Survival", "pfs": "Progression-Free Survival",
                "ttp": "Time to Progression"}
_AVALU = {"DAY": "days", "DAYS": "days", "WEEK": "weeks", "WEEKS": "weeks",
          "MONTH": "months", "MONTHS": "months", "YEAR": "years", "YEARS": "years"}
_ARM_COLUMNS = ("TRT01P", "TRT01A", "ARM")


def _read_any(source, sheet=None, encoding=None) -> tuple[pd.DataFrame, str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        suffix = path.suffix.lower()
        if suffix in (".xpt", ".sas7bdat"):
            if not path.exists():
                raise ADaMError(f"{path}: no such file.")
            if path.is_dir():
                raise ADaMError(f"{path} is a directory; give the path of the data file.")
            import pyreadstat

            reader = pyreadstat.read_xport if suffix == ".xpt" else pyreadstat.read_sas7bdat
            try:
                frame, _meta = reader(str(path))
            except Exception as err:  # pyreadstat raises its own ReadstatError and others
                raise ADaMError(f"{path}: cannot be read as SAS {suffix} "
                                f"({type(err).__name__}: {err}).") from None
            return frame, str(path)
    return read_table(source, sheet=sheet, encoding=encoding)


def read_adtte(source, *, paramcd: dict[str, str] | None = None,
               control: str = "sorafenib", treatment: str = "tace_sorafenib",
               time_unit: str = "months", arm_column: str | None = None,
               zero_time_events: str = "error", sheet=None,
               encoding: str | None = None, assessments=None) -> TrialData:
    """Read a CDISC ADaM ADTTE data set (one row per subject and parameter).

    Parameters
    ----------
    source : path or DataFrame
        CSV, SAS transport (``.xpt``), ``.sas7bdat``, Parquet, Excel, or a DataFrame with
        ``USUBJID, SITEID, TRT01P`` (or ``TRT01A`` / ``ARM``), ``PARAMCD, AVAL, AVALU,
        CNSR`` and optionally ``STARTDT`` (randomization date; enables ``.cut()``) and
        ``ADT`` (the event or censoring date, checked against AVAL).
    paramcd : dict, optional
        PARAMCD -> endpoint name; default ``{"OS": "os", "PFS": "pfs", "TTP": "ttp"}``.
        Parameters not in the mapping are left out with a warning that names them.
    control, treatment : str
        Treatment labels as written in the arm column.
    time_unit : str, default "months"
        Unit of the resulting times; AVAL is converted from AVALU (days, weeks, months,
        years; one month = 30.4375 days, one year = 365.25 days).
    arm_column : str, optional
        Which column holds the arm; default the first of TRT01P, TRT01A, ARM present.
    assessments : path or DataFrame, optional
        Tumour assessments (``USUBJID`` or ``patient_id``, ``assessment_date``,
        ``progression``; like an ADRS extract), with ``STARTDT``: an event of a progression
        parameter (PFS, TTP) on the day of the first scan showing progression is
        interval-censored from the last scan without it.

    Interval-censored events can also be given directly: ``AVALL``, the lower bound of AVAL
    (the time of the last assessment without the event, in AVALU) on event rows (CNSR = 0);
    the event then lies in (AVALL, AVAL]. Empty AVALL = an exact event time.

    Returns
    -------
    TrialData
        In the times layout; other subject-level columns constant within a subject are kept
        as covariates.

    Raises
    ------
    ADaMError
        Missing columns, unknown AVALU, CNSR not a non-negative integer, negative AVAL, a
        subject missing a parameter or with a parameter twice, a subject whose site or arm
        changes between rows; with ``STARTDT`` and ``ADT``, an AVAL that is not ADT - STARTDT
        (+ 1 day) in AVALU (a mislabelled AVALU is named as such).
    """
    time_unit = check_time_unit(time_unit)
    frame, label = _read_any(source, sheet, encoding)
    src = f"ADTTE {label}"
    mapping = _paramcd_mapping(paramcd, "read_adtte")
    if arm_column is None:
        arm_column = next((c for c in _ARM_COLUMNS if c in frame.columns), None)
    required = ["USUBJID", "SITEID", "PARAMCD", "AVAL", "AVALU", "CNSR"]
    missing = [c for c in required if c not in frame.columns]
    if arm_column is None or arm_column not in frame.columns:
        missing.append(arm_column or "TRT01P (or TRT01A / ARM)")
    if missing:
        raise ADaMError(f"{src}: missing required column(s) {', '.join(missing)}. ADTTE needs "
                        "USUBJID, SITEID, TRT01P (or TRT01A / ARM), PARAMCD, AVAL, AVALU, CNSR.")
    frame = frame.reset_index(drop=True)
    for col in ("USUBJID", "SITEID", "PARAMCD", "AVALU", arm_column):
        frame[col] = frame[col].map(lambda v: v.strip() if isinstance(v, str) else v)

    unmapped = sorted(set(frame["PARAMCD"].dropna().astype(str)) - set(mapping))
    if unmapped:
        warn_data(f"{src}: PARAMCD {', '.join(unmapped)} not in the paramcd mapping "
                  f"({', '.join(mapping)}); those rows are left out. Pass paramcd={{...}} "
                  "to include them.")
    frame = frame[frame["PARAMCD"].isin(list(mapping))].reset_index(drop=True)
    if frame.empty:
        raise ADaMError(f"{src}: no rows with PARAMCD in {', '.join(mapping)}; pass "
                        "paramcd={'YOURCODE': 'os', ...} to map your parameter codes.")

    problems = Problems(src, ADaMError)

    def rows(mask, column, what, fix, values=None):
        problems.rows(frame, mask, column, what, fix, values=values, id_column="USUBJID")

    for col in ("USUBJID", "SITEID", arm_column):
        blank = frame[col].isna() | (frame[col].astype(str).str.strip() == "")
        problems.rows(frame, blank, col, f"missing {col}", f"every row needs its {col}.",
                      id_column=None if col == "USUBJID" else "USUBJID")
    unit = frame["AVALU"].astype(str).str.upper().map(_AVALU)
    rows(unit.isna(), "AVALU", "unknown time unit",
         f"use one of {', '.join(sorted(set(_AVALU)))}.", values=frame["AVALU"])
    aval = pd.to_numeric(frame["AVAL"], errors="coerce")
    rows(aval.isna(), "AVAL", "missing or non-numeric AVAL", "AVAL must be a number.",
         values=frame["AVAL"])
    rows(aval < 0, "AVAL", "negative AVAL", "times must be >= 0.", values=aval)
    rows(np.isinf(aval.to_numpy(float)), "AVAL", "infinite AVAL",
         "AVAL must be the finite time to event or censoring.", values=frame["AVAL"])
    cnsr = pd.to_numeric(frame["CNSR"], errors="coerce")
    rows(cnsr.isna() | (cnsr < 0) | (cnsr != np.floor(cnsr)), "CNSR",
         "CNSR not a non-negative integer", "CNSR is 0 for an event, >= 1 for censored.",
         values=frame["CNSR"])
    dup = frame.duplicated(["USUBJID", "PARAMCD"], keep=False)
    rows(dup, "PARAMCD", "subject has the same parameter more than once",
         "keep one row per USUBJID and PARAMCD.", values=frame["PARAMCD"])
    start = None
    if "STARTDT" in frame.columns:
        start = _parse_startdt(frame, problems)
        frame["_start"] = start.to_numpy()
    for col in ("SITEID", arm_column) + (("_start",) if start is not None else ()):
        varies = frame.groupby("USUBJID")[col].transform("nunique") > 1
        name = "STARTDT" if col == "_start" else col
        rows(varies, name, f"{name} differs between rows of the same subject",
             f"a subject has one {name}.", values=frame[name])
    params = list(pd.unique(frame["PARAMCD"]))
    have = frame.groupby("USUBJID")["PARAMCD"].agg(set)
    lacking = have[have.map(lambda s: len(s) < len(params))]
    if len(lacking):
        shown = "; ".join(f"{sid} lacks {', '.join(sorted(set(params) - s))}"
                          for sid, s in lacking.head(8).items())
        problems.add(f"column 'PARAMCD': subject(s) missing a parameter ({shown}"
                     f"{'; ...' if len(lacking) > 8 else ''}). Fix: every subject needs a row "
                     f"for each of {', '.join(params)}.")
    problems.raise_if_any()

    days = aval * unit.map(DAYS_PER_UNIT)
    if start is not None and "ADT" in frame.columns:
        _check_adt(frame, start, days, aval, problems)
    lower_days = pd.Series(np.nan, index=frame.index)
    if "AVALL" in frame.columns:
        avall = pd.to_numeric(frame["AVALL"], errors="coerce")
        given = avall.notna()
        rows(frame["AVALL"].notna() & ~given, "AVALL", "non-numeric AVALL",
             "AVALL is the time of the last assessment without the event (a number).",
             values=frame["AVALL"])
        rows(given & (cnsr != 0), "AVALL", "AVALL on a censored row",
             "AVALL bounds an event (CNSR = 0); leave it empty when censored.")
        rows(given & ((avall < 0) | (avall >= aval)), "AVALL", "lower bound after upper "
             "bound (AVALL not in [0, AVAL))", "AVALL < AVAL: the event lies in (AVALL, AVAL].",
             values=avall)
        lower_days = avall * unit.map(DAYS_PER_UNIT)
    if assessments is not None:
        lower_days = _lower_from_scans(frame, assessments, days, cnsr, lower_days, mapping,
                                       start, problems, src)
    problems.raise_if_any()
    frame = frame.assign(_time=(days / DAYS_PER_UNIT[time_unit]).to_numpy(),
                         _event=(cnsr == 0).astype(np.int8).to_numpy(),
                         _lower=(lower_days / DAYS_PER_UNIT[time_unit]).to_numpy(),
                         _ep=frame["PARAMCD"].map(mapping))
    subjects = frame.drop_duplicates("USUBJID").set_index("USUBJID")
    wide = pd.DataFrame({"patient_id": subjects.index.astype(str),
                         "site": subjects["SITEID"].astype(str).to_numpy(),
                         "arm": subjects[arm_column].astype(str).to_numpy()})
    if start is not None:
        first = ~frame.duplicated("USUBJID")
        wide["randomization_date"] = start[first.to_numpy()].to_numpy()
    for ep in pd.unique(frame["_ep"]):
        part = frame[frame["_ep"] == ep].set_index("USUBJID")
        wide[f"{ep}_time"] = part["_time"].reindex(subjects.index).to_numpy()
        wide[f"{ep}_event"] = part["_event"].reindex(subjects.index).to_numpy()
        lower = part["_lower"].reindex(subjects.index).to_numpy()
        if np.isfinite(lower).any():
            wide[f"{ep}_lower"] = lower
    skip = {"USUBJID", "SITEID", "PARAMCD", "PARAM", "AVAL", "AVALU", "CNSR", "STARTDT", "ADT",
            "STUDYID", "EVNTDESC", "CNSDTDSC", "SRCDOM", "SRCVAR", "SRCSEQ", *_ARM_COLUMNS,
            "_time", "_event", "_ep", "_start", "_lower", "AVALL"}
    for col in frame.columns:
        if col in skip or col in wide.columns:
            continue
        if (frame.groupby("USUBJID")[col].nunique(dropna=False) <= 1).all():
            wide[col] = subjects[col].to_numpy()
    return TrialData._from_raw(wide, control=control, treatment=treatment, time_unit=time_unit,
                               zero_time_events=zero_time_events, source=src, layout="times")


#: Progression parameters: their events can be seen at scans.
_PROGRESSION_ENDPOINTS = ("pfs", "ttp")


def _lower_from_scans(frame, assessments, days, cnsr, lower_days, mapping, start, problems,
                      src) -> pd.Series:
    """Lower bounds (days) of progression events from the scans: an event of a progression
    parameter on the day of the subject's first scan showing progression lies between the
    last scan without it (randomization if none) and that scan; other events stay exact
    (a PFS death)."""
    if start is None:
        raise ADaMError(f"{src}: assessments need STARTDT (the randomization date) to place "
                        "the scans on the AVAL time scale.")
    scans = assessments
    if not isinstance(scans, pd.DataFrame):
        scans, _ = read_table(scans)
    scans = scans.rename(columns={"USUBJID": "patient_id"})
    from bayes_hcc.data.assessments import ASSESSMENT_COLUMNS
    from bayes_hcc.data._checks import parse_date_column

    missing = [c for c in ASSESSMENT_COLUMNS if c not in scans.columns]
    if missing:
        raise ADaMError(f"{src}: assessments miss column(s) {', '.join(missing)} (USUBJID or "
                        "patient_id, assessment_date, progression).")
    scan_problems = Problems(f"{src} assessments", ADaMError)
    when = parse_date_column(scans, "assessment_date", scan_problems, required=True)
    scan_problems.raise_if_any()
    sid = scans["patient_id"].astype(str).str.strip()
    flag = pd.to_numeric(scans["progression"], errors="coerce")
    first_pos = when[flag == 1].groupby(sid[flag == 1]).min()
    neg = pd.DataFrame({"sid": sid[flag == 0], "when": when[flag == 0]})
    start_of = pd.Series(start.to_numpy(), index=frame["USUBJID"].astype(str)).groupby(
        level=0).first()
    out = lower_days.copy()
    ep = frame["PARAMCD"].map(mapping)
    for i in np.flatnonzero((cnsr == 0).to_numpy() & ep.isin(_PROGRESSION_ENDPOINTS)
                            .to_numpy() & out.isna().to_numpy()):
        s = str(frame["USUBJID"].iloc[i])
        if s not in first_pos.index or s not in start_of.index:
            continue
        pos_day = (first_pos[s] - start_of[s]) / np.timedelta64(1, "D")
        if abs(pos_day - float(days.iloc[i])) > 0.5:  # not this scan: e.g. a PFS death
            continue
        before = neg.loc[(neg["sid"] == s) & (neg["when"] < first_pos[s]), "when"]
        out.iloc[i] = ((before.max() - start_of[s]) / np.timedelta64(1, "D")
                       if len(before) else 0.0)
    return out


#: AVAL may differ from ADT - STARTDT by the ADaM "+ 1" day convention and by AVAL rounded
#: for display (0.1 month is 3 days): tolerated are these many days plus a share of the span.
_ADT_SLACK_DAYS, _ADT_SLACK_SHARE = 1.5, 0.02


def _check_adt(frame, start, days, aval, problems) -> None:
    """AVAL against the subject's own dates. An ADTTE's AVAL is ADT - STARTDT (+ 1 day by the
    usual convention) in AVALU; when they disagree one of the three is wrong, and an AVALU
    that mislabels the unit (months written as DAYS) would scale every time silently."""
    from bayes_hcc.data._checks import parse_date_column

    end = parse_date_column(frame, "ADT", problems, id_column="USUBJID")
    problems.raise_if_any()
    span = (end - start) / np.timedelta64(1, "D")
    slack = _ADT_SLACK_DAYS + _ADT_SLACK_SHARE * span.abs()
    diff = days - span
    bad = (span.notna() & ((diff < -slack) | (diff > slack + 1))).to_numpy()
    if not bad.any():
        return
    shown = [f"AVAL {a:g} {u} vs ADT - STARTDT {s:g} days" for a, u, s in
             zip(aval, frame["AVALU"].astype(str), span)]
    values = pd.Series(shown, index=frame.index)
    unit = _implied_unit(aval[bad], span[bad])
    if unit is not None:
        problems.rows(frame, bad, "AVALU", f"AVAL is in {unit.upper()} by its dates (ADT - "
                      "STARTDT), not in AVALU", f"set AVALU to {unit.upper()} on these rows "
                      "(or correct AVAL if the dates are wrong).", values=values,
                      id_column="USUBJID")
    else:
        problems.rows(frame, bad, "AVAL", "AVAL disagrees with ADT - STARTDT", "AVAL is the "
                      "time from STARTDT to ADT (+ 1 day) in AVALU: correct AVAL, ADT or "
                      "STARTDT, whichever is wrong (leave ADT out if it is not the event "
                      "or censoring date).", values=values, id_column="USUBJID")


def _paramcd_mapping(paramcd, caller: str) -> dict[str, str]:
    """The PARAMCD -> endpoint mapping: a dict of texts (default ``DEFAULT_PARAMCD``)."""
    if paramcd is None:
        return dict(DEFAULT_PARAMCD)
    if not isinstance(paramcd, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and k.strip() and v.strip()
            for k, v in paramcd.items()):
        raise ADaMError(f"{caller}: paramcd={paramcd!r} must map each PARAMCD to an endpoint "
                        "name, both texts, e.g. paramcd={'OSINV': 'os', 'PFSINV': 'pfs'}.")
    return {k.strip(): v.strip() for k, v in paramcd.items()}


def _implied_unit(aval, span) -> str | None:
    """The unit that makes AVAL equal its dates' span on every one of these rows, if any."""
    usable = (aval > 0) & (span >= 7)
    if not usable.any():
        return None
    per_unit = (span[usable] / aval[usable]).to_numpy(float)
    for unit, size in DAYS_PER_UNIT.items():
        if np.all(np.abs(per_unit / size - 1) < 0.05 + 1 / span[usable].to_numpy(float)):
            return unit
    return None


def _parse_startdt(frame, problems) -> pd.Series:
    """STARTDT as calendar dates (SAS dates arrive as datetimes, CSV as text)."""
    from bayes_hcc.data._checks import parse_date_column

    return parse_date_column(frame, "STARTDT", problems, required=True, id_column="USUBJID")


def to_adtte(trial: TrialData, *, studyid: str = "BAYES-HCC",
             paramcd: dict[str, str] | None = None) -> pd.DataFrame:
    """Export a TrialData as an ADaM ADTTE frame (one row per subject and parameter).

    AVAL is in the trial's time unit (AVALU says which); CNSR = 1 - event. With
    randomization dates, STARTDT is the randomization date and ADT the event or censoring
    date (rounded to the day).
    """
    require_trial(trial, "to_adtte")
    mapping = _paramcd_mapping(paramcd, "to_adtte")
    unknown = sorted(set(mapping.values()) - set(trial.endpoints))
    if paramcd is not None and unknown:
        raise ADaMError(
            "to_adtte: paramcd maps PARAMCD -> endpoint; not an endpoint of this trial: "
            f"{did_you_mean(unknown, trial.endpoints)} (it has {', '.join(trial.endpoints)}); e.g. "
            "paramcd={'OSINV': 'os'} writes OS as PARAMCD OSINV.")
    code_of = {}
    for code, ep in mapping.items():
        if ep in code_of and paramcd is not None:
            raise ADaMError(f"to_adtte: paramcd gives endpoint {ep!r} two codes "
                            f"({code_of[ep]}, {code}); give each endpoint one PARAMCD.")
        code_of[ep] = code
    codes = {ep: code_of.get(ep, ep.upper()) for ep in trial.endpoints}
    shared = sorted({c for c in codes.values() if list(codes.values()).count(c) > 1})
    if shared:
        raise ADaMError(
            f"to_adtte: PARAMCD {', '.join(shared)} would code "
            f"{' and '.join(ep for ep in trial.endpoints if codes[ep] in shared)}; "
            "give each endpoint its own code in paramcd.")
    frame = trial.to_frame()
    parts = []
    for ep in trial.endpoints:
        code = codes[ep]
        part = pd.DataFrame({
            "STUDYID": studyid,
            "USUBJID": frame["patient_id"].to_numpy(),
            "SITEID": frame["site"].to_numpy(),
            "TRT01P": frame["arm"].to_numpy(),
            "PARAMCD": code,
            "PARAM": _PARAM_LABEL.get(ep, ep),
            "AVAL": frame[f"{ep}_time"].to_numpy(float),
            "AVALU": trial.time_unit.upper(),
            "CNSR": (1 - frame[f"{ep}_event"].to_numpy()).astype(np.int64),
        })
        if f"{ep}_lower" in frame.columns:  # interval-censored events: (AVALL, AVAL]
            part["AVALL"] = frame[f"{ep}_lower"].to_numpy(float)
        if trial.has_dates:
            start = frame["randomization_date"]
            part["STARTDT"] = start.to_numpy()
            offset = pd.to_timedelta(np.round(part["AVAL"] * DAYS_PER_UNIT[trial.time_unit]),
                                     unit="D")
            part["ADT"] = (start + offset).to_numpy()
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["USUBJID", "PARAMCD"], kind="stable").reset_index(drop=True)


@bool_flags
def write_adtte(trial: TrialData, path, *, overwrite: bool = False,
                studyid: str = "BAYES-HCC", paramcd: dict[str, str] | None = None) -> Path:
    """Write :func:`to_adtte` (``studyid``, ``paramcd`` as it takes them) to CSV or SAS
    transport (``.xpt``); refuses to overwrite."""
    path = user_path(path, "write_adtte", "the file to write (.csv, .xpt or .parquet)")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    frame = to_adtte(trial, studyid=studyid, paramcd=paramcd)
    if path.suffix.lower() == ".xpt":
        import pyreadstat

        fmt = {c: "DATE9." for c in ("STARTDT", "ADT") if c in frame.columns}
        for c in fmt:  # SAS dates: pyreadstat wants datetime.date values for DATE9.
            frame[c] = frame[c].dt.date
        pyreadstat.write_xport(frame, str(path), table_name="ADTTE", variable_format=fmt)
    elif path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False, float_format="%.17g")
    else:
        raise ADaMError(f"{path}: write ADTTE as .csv or .xpt.")
    return path
