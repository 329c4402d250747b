"""Turn a raw patient table (dates or times layout) into the validated canonical frame.

The canonical frame has one row per patient: ``patient_id``, ``site``, ``arm`` (the user's
labels), the four dates when known (and ``last_progression_free_date`` when the assessment
history is known), ``<endpoint>_time`` / ``<endpoint>_event`` for every endpoint, then
baseline covariates. An interval-censored endpoint (progression seen at a scheduled
assessment) also has ``<endpoint>_lower``: the last time known event-free, L of (L, R], for
the patients whose event is interval-censored (NaN for the others); their
``<endpoint>_time`` is R, the assessment that showed the event. Every check here reports
through :class:`Problems`, so a user sees every problem of a file at once; nothing is
dropped or coerced silently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_hcc.data._checks import (RENAME_FIX, Problems, describe_rows, parse_date_column,
                                    warn_data)
from bayes_hcc.data.assessments import LPF_COLUMN, reduce_assessments
from bayes_hcc.errors import TrialDataError
from bayes_hcc.units import DAYS_PER_UNIT, check_time_unit

DATE_COLUMNS = ("randomization_date", "progression_date", "death_date", "last_followup_date")
STANDARD_ENDPOINTS = ("os", "pfs", "ttp")
ID_COLUMNS = ("patient_id", "site", "arm")
DATES_REQUIRED = ID_COLUMNS + DATE_COLUMNS
TIMES_REQUIRED = ID_COLUMNS
ZERO_TIME_RULES = ("error", "half_day")
#: Tolerance for comparing times derived from the same dates (floating-point noise only).
_EPS = 1e-9


def arm_label(value):
    """An arm label as stored: text, with numeric codes written as integers when they are
    whole numbers (1, 1.0 and "1" all become "1"), so ``control=0, treatment=1`` matches an
    integer, float or text column alike. Other text is kept exactly as written."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return str(int(v)) if np.isfinite(v) and v.is_integer() else str(v)
    return value if isinstance(value, str) else str(value)


def _arm_column(arm: pd.Series) -> pd.Series:
    """The arm column with numeric codes written as :func:`arm_label` writes them (missing
    values stay missing)."""
    return arm.map(lambda v: v if pd.isna(v) else arm_label(v))


SITE_FIX = " A single-centre trial: add a site column with one value."


def _require(cols, required, source, layout, hint) -> None:
    missing = [c for c in required if c not in cols]
    if missing:
        raise TrialDataError(f"{source}: {layout} layout is missing column(s) "
                             f"{', '.join(missing)}. It needs {', '.join(required)}{hint}. "
                             + RENAME_FIX + (SITE_FIX if "site" in missing else ""))


def detect_layout(frame: pd.DataFrame, source: str) -> str:
    """'dates' or 'times', from the columns present; an error naming what is missing."""
    cols = set(frame.columns)
    if "randomization_date" in cols and cols & {"progression_date", "death_date",
                                               "last_followup_date"}:
        _require(cols, DATES_REQUIRED, source, "dates", " (progression_date and death_date "
                 "may be empty for patients without the event)")
        return "dates"
    if time_endpoints(frame):
        _require(cols, TIMES_REQUIRED, source, "times", " and pairs <endpoint>_time, "
                 "<endpoint>_event (os_time, os_event, pfs_time, ...)")
        return "times"
    raise TrialDataError(
        f"{source}: cannot tell the layout from the columns {sorted(map(str, cols))}. Provide "
        f"either the dates layout ({', '.join(DATES_REQUIRED)}) or the times layout "
        "(patient_id, site, arm, os_time, os_event, pfs_time, pfs_event, ttp_time, ttp_event). "
        + RENAME_FIX)


def time_endpoints(frame: pd.DataFrame) -> list[str]:
    """Endpoint names that have a ``<name>_time`` column, or a ``<name>_lower`` /
    ``<name>_upper`` pair (standard ones first)."""
    cols = {c for c in frame.columns if isinstance(c, str)}
    names = [c[: -len("_time")] for c in frame.columns
             if isinstance(c, str) and c.endswith("_time") and len(c) > 5]
    names += [c[: -len("_upper")] for c in frame.columns
              if isinstance(c, str) and c.endswith("_upper") and len(c) > 6
              and f"{c[:-len('_upper')]}_lower" in cols
              and c[: -len("_upper")] not in names]
    ordered = [e for e in STANDARD_ENDPOINTS if e in names]
    return ordered + [e for e in names if e not in ordered]


def _check_identity(frame, control, treatment, problems: Problems) -> None:
    pid = frame["patient_id"]
    problems.rows(frame, pid.isna() | (pid.astype(str).str.strip() == ""), "patient_id",
                  "missing patient id", "give every patient a unique id.", id_column=None)
    dup = pid.notna() & pid.duplicated(keep=False)
    problems.rows(frame, dup, "patient_id", "duplicate patient ids",
                  "each patient must appear once (one row per patient); remove or merge the "
                  "duplicates.", values=pid)
    site = frame["site"]
    problems.rows(frame, site.isna() | (site.astype(str).str.strip() == ""), "site",
                  "missing site", "fill in the randomizing site for these patients.")
    arm = _arm_column(frame["arm"])
    known = arm.isin([control, treatment])
    blank = arm.isna() | (arm.astype(str).str.strip() == "")
    problems.rows(frame, blank, "arm", "missing arm",
                  "fill in the arm each patient was randomized to.")
    unknown = ~known & ~blank
    # a label that is one of the arms but for case or surrounding spaces ('Sorafenib ')
    folded = {str(a).strip().casefold(): a for a in (control, treatment)}
    near = unknown & arm.astype(str).str.strip().str.casefold().isin(folded)
    problems.rows(frame, near, "arm", "arm label differing from an arm only in case or "
                  "surrounding spaces",
                  f"write the arms exactly as control={control!r} and treatment="
                  f"{treatment!r} (strip the spaces, fix the case), or recode the column.",
                  values=arm)
    problems.rows(frame, unknown & ~near, "arm", "unknown arm label",
                  f"arms must be control={control!r} or treatment={treatment!r}; recode the "
                  "column or pass read_trial(..., control=..., treatment=...).", values=arm)
    present = set(arm[known])
    if known.all() and len(present) < 2:
        problems.add(
            f"column 'arm': only one arm ({', '.join(map(repr, present)) or 'none'}) is present;"
            f" a comparison needs both control={control!r} and treatment={treatment!r}.")


def _parse_dates(frame, problems: Problems) -> dict[str, pd.Series]:
    cols = DATE_COLUMNS + ((LPF_COLUMN,) if LPF_COLUMN in frame.columns else ())
    return {col: parse_date_column(frame, col, problems) for col in cols}


#: Dates before this are implausible for a trial's patients (a DataWarning).
EARLIEST_PLAUSIBLE_DATE = pd.Timestamp("1950-01-01")


def warn_implausible(frame, dates, ep, endpoints, time_unit) -> None:
    """DataWarnings for data that may be right but deserve a look: follow-up over 20 years
    (often days or weeks read as months: check time_unit), dates before 1950 or after
    today."""
    from bayes_hcc.units import PLAUSIBLE_MAX_YEARS, convert

    limit = convert(PLAUSIBLE_MAX_YEARS, "years", time_unit)
    for name in endpoints:
        t = np.asarray(ep[f"{name}_time"], float)
        long = t > limit
        if long.any():
            warn_data(f"column '{name}_time': follow-up over {PLAUSIBLE_MAX_YEARS:g} years "
                      f"(longest {np.nanmax(t):.6g} {time_unit}) in "
                      f"{describe_rows(frame, long)}. Check time_unit={time_unit!r}: were "
                      "these times recorded in days or weeks?")
    _warn_progression_at_death(frame, ep, "progression_date" in (dates or {}))
    today = pd.Timestamp.today().normalize()
    for col, s in (dates or {}).items():
        s = pd.Series(s)
        early = (s < EARLIEST_PLAUSIBLE_DATE).to_numpy()
        if early.any():
            warn_data(f"column '{col}': dates before {EARLIEST_PLAUSIBLE_DATE.date()} in "
                      f"{describe_rows(frame, early)}; check them (a year typed wrong?).")
        late = (s > today).to_numpy()
        if late.any():
            warn_data(f"column '{col}': dates after today ({today.date()}) in "
                      f"{describe_rows(frame, late)}; check them (a year typed wrong?).")


#: Share of deaths whose progression_date is the death date above which the data probably
#: carry PFS event dates as progression dates (progression seen on the day of death is rare).
PROGRESSION_AT_DEATH_SHARE = 0.10


def _warn_progression_at_death(frame, ep, dates_layout: bool) -> None:
    """A DataWarning when many deaths have a progression at the death time: the mark of a
    PFS event (progression or death) copied in as the progression (a PFS date in
    progression_date, or PFS columns copied as TTP). TTP then counts every such death as a
    progression, and an illness-death model reads death without progression as progression
    followed by death."""
    if not {"ttp_time", "ttp_event", "os_time", "os_event"} <= ep.keys():
        return
    died = np.asarray(ep["os_event"]) == 1
    same = died & (np.asarray(ep["ttp_event"]) == 1) & (
        np.abs(np.asarray(ep["ttp_time"], float) - np.asarray(ep["os_time"], float)) <= _EPS)
    n, deaths = int(same.sum()), int(died.sum())
    if n < 3 or n <= PROGRESSION_AT_DEATH_SHARE * deaths:
        return
    if dates_layout:
        warn_data(f"column 'progression_date': equal to death_date for {n} of {deaths} "
                  f"deaths ({describe_rows(frame, same)}). If these patients died without "
                  "progression (a PFS event date copied in), leave progression_date empty "
                  "for them: as read, TTP counts each death as a progression. If progression "
                  "was recorded on the day of death, this can be ignored.")
    else:
        warn_data(f"columns 'ttp_time', 'ttp_event': a progression at the time of death for "
                  f"{n} of {deaths} deaths ({describe_rows(frame, same)}). If these patients "
                  "died without progression (PFS columns copied as TTP), set ttp_event = 0 "
                  "for them (TTP is censored at death): as read, TTP counts each death as a "
                  "progression. If progression was recorded at death, this can be ignored.")


def _check_dates(frame, dates, problems: Problems) -> None:
    """The checks of a patient's dates against each other (every problem named with its
    rows); the interval checks too when the last progression-free assessment is known."""
    r, p, d, lfu = (dates[c] for c in DATE_COLUMNS)
    problems.rows(frame, r.isna(), "randomization_date", "missing randomization date",
                  "every randomized patient needs a randomization date.")
    for col, s in (("progression_date", p), ("death_date", d), ("last_followup_date", lfu)):
        problems.rows(frame, s.notna() & r.notna() & (s < r), col, "date before "
                      "randomization_date", "check the dates: no event or follow-up can precede "
                      "randomization.")
    problems.rows(frame, p.notna() & d.notna() & (p > d), "progression_date",
                  "progression after death", "a progression must be recorded on or before the "
                  "death date.")
    problems.rows(frame, lfu.isna() & d.isna(), "last_followup_date",
                  "missing last follow-up date for a patient without a death date",
                  "record the last date the patient was known alive.")
    before_event = lfu.notna() & ((p.notna() & (lfu < p)) | (d.notna() & (lfu < d)))
    problems.rows(frame, before_event, "last_followup_date",
                  "last follow-up before a recorded event",
                  "the last follow-up date must be on or after the progression and death dates.")
    problems.rows(frame, lfu.notna() & d.notna() & (lfu > d), "last_followup_date",
                  "last follow-up after death", "for a patient who died, the last follow-up is "
                  "the death date (or leave it empty).")
    lpf = dates.get(LPF_COLUMN)
    if lpf is None:
        return
    col = LPF_COLUMN
    problems.rows(frame, lpf.notna() & r.notna() & (lpf < r), col, "assessment before "
                  "randomization_date", "tumour assessments after randomization only (the "
                  "baseline scan is not a follow-up assessment).")
    problems.rows(frame, lpf.notna() & d.notna() & (lpf > d), col, "assessment after death",
                  "check the dates: no assessment can follow the death date.")
    problems.rows(frame, lpf.notna() & p.notna() & (lpf >= p), col,
                  "lower bound after upper bound: the last assessment without progression is "
                  "on or after progression_date", "last_progression_free_date is the last scan "
                  "before the one that showed progression; progression_date is that scan.")
    problems.rows(frame, lpf.notna() & lfu.notna() & (lpf > lfu), col,
                  "assessment after last_followup_date", "the last follow-up is on or after "
                  "the last assessment.")


def times_from_dates(dates, time_unit: str) -> dict[str, np.ndarray]:
    """OS, PFS and TTP (time, event and, with the last progression-free assessment,
    the interval's lower bound) from checked dates (``_check_dates``): the one derivation,
    used when a table is read and when validated data are cut (``TrialData.cut``).

    Without the last progression-free assessment, progression and death are exact event
    times. With it (docs: data.md, "Progression between assessments"):

    * a progression lies in (last progression-free assessment, first assessment showing
      it]: TTP and PFS are interval-censored there (from randomization, L = 0, when no
      assessment without progression came first);
    * death without observed progression: TTP is censored at the last assessment (a
      progression between that scan and death was not observed), PFS is an exact event at
      death;
    * otherwise both are censored at the last assessment, at time 0 for a patient with no
      assessment after randomization.
    """
    r, p, d, lfu = (np.asarray(dates[c], dtype="datetime64[ns]") for c in DATE_COLUMNS)
    day, per = np.timedelta64(1, "D"), DAYS_PER_UNIT[time_unit]

    def span(end):
        return ((end - r) / day).astype(float) / per

    has_p, has_d = ~np.isnat(p), ~np.isnat(d)
    # A patient who died has been followed up to death (documented convention).
    last = np.where(np.isnat(lfu), d, lfu)
    os_t = np.where(has_d, span(d), span(last))
    out = {"os_time": os_t, "os_event": has_d.astype(np.int8)}
    if dates.get(LPF_COLUMN) is not None:
        lpf = np.asarray(dates[LPF_COLUMN], dtype="datetime64[ns]")
        lower = np.where(np.isnat(lpf), 0.0, span(lpf))
        upper = np.where(has_p, span(p), np.nan)
        return {**out,
                "ttp_time": np.where(has_p, upper, lower), "ttp_event": has_p.astype(np.int8),
                "ttp_lower": np.where(has_p, lower, np.nan),
                "pfs_time": np.where(has_p, upper, np.where(has_d, span(d), lower)),
                "pfs_event": (has_p | has_d).astype(np.int8),
                "pfs_lower": np.where(has_p, lower, np.nan)}
    first = np.where(has_p, p, d)  # a progression after death is a checked error
    return {**out,
            "pfs_time": np.where(has_p | has_d, span(first), span(last)),
            "pfs_event": (has_p | has_d).astype(np.int8),
            "ttp_time": np.where(has_p, span(p), np.where(has_d, span(d), span(last))),
            "ttp_event": has_p.astype(np.int8)}


def _derive_from_dates(frame, dates, time_unit, problems: Problems) -> dict[str, np.ndarray]:
    _check_dates(frame, dates, problems)
    return times_from_dates(dates, time_unit)


def _as_number(column: pd.Series) -> pd.Series:
    """A column as numbers (True/False as 1/0); NaN where a value is not a number."""
    return pd.to_numeric(column.map(lambda v: int(v) if isinstance(v, (bool, np.bool_))
                                    else v), errors="coerce")


#: A time column carried beside the dates agrees with the time the dates give within this
#: many days: files round their times (to 0.1 month: within 1.5 days), but a time counted
#: in another unit, or with 30-day months (1.4% off: beyond 2 days after 4.6 months), or
#: corrected in one place only, is not rounding.
GIVEN_TIME_TOLERANCE_DAYS = 2.0


def _given_columns(ep: dict, name: str, frame) -> dict[str, np.ndarray]:
    """What the columns of endpoint ``name`` a dates-layout ``frame`` carries should hold,
    given the endpoint ``ep`` derived from its dates: time and event (and the lower bound
    of an interval-censored event, as this package writes them), or the bounds
    ``<name>_lower`` / ``<name>_upper`` (upper empty = censored at lower; lower = upper =
    exact event)."""
    t, e = ep[f"{name}_time"], ep[f"{name}_event"]
    lower = ep.get(f"{name}_lower", np.full(len(t), np.nan))
    if (f"{name}_time" in frame.columns or f"{name}_event" in frame.columns
            or f"{name}_upper" not in frame.columns):  # the canonical form (a lone lower)
        return {f"{name}_time": t, f"{name}_event": e, f"{name}_lower": lower}
    return {f"{name}_lower": np.where((e == 1) & np.isfinite(lower), lower, t),
            f"{name}_upper": np.where(e == 1, t, np.nan)}


def _check_given_times(frame, ep, time_unit: str, problems: Problems) -> set[str]:
    """The dates layout derives OS, PFS and TTP from the dates. A file that also carries
    their time, event or bound columns (this package's export, an analysis dataset) must
    say the same thing there: a column that disagrees (a correction made in one place
    only, times in another unit or with another month length) is an error naming the
    rows, never silently overridden by the dates. Returns the columns compared (read, not
    kept as covariates)."""
    tol = GIVEN_TIME_TOLERANCE_DAYS / DAYS_PER_UNIT[time_unit]
    compared = set()
    for name in STANDARD_ENDPOINTS:
        for col, want in _given_columns(ep, name, frame).items():
            if col not in frame.columns:
                continue
            compared.add(col)
            raw = frame[col]
            got = _as_number(raw).to_numpy(float)
            want = np.asarray(want, float)
            same = (np.isnan(got) & np.isnan(want)) | (np.abs(got - want) <= (
                0.5 if col.endswith("_event") else tol))
            shown = [f"{v} (the dates give {w:.4g})" if np.isfinite(w) else
                     f"{v} (the dates give none)" for v, w in zip(raw, want)]
            what = (f"event differs from the {name.upper()} event the dates give"
                    if col.endswith("_event") else
                    f"time differs from the {name.upper()} time the dates give (in "
                    f"{time_unit}" + ("" if time_unit == "days" else
                                      f" of {DAYS_PER_UNIT[time_unit]:g} days") + ")")
            problems.rows(
                frame, ~same, col, what,
                "the dates layout derives OS, PFS and TTP from the dates and does not read "
                "this column: correct the dates (or this column) so that they agree, drop the "
                "column to use the dates alone, or drop the date columns to read the times "
                "layout; if the times are in another unit, read it with time_unit= (on the "
                "command line --time-unit) days, weeks, months or years.", values=shown)
    return compared


def _check_bounds(frame, ep, problems: Problems) -> dict[str, np.ndarray]:
    """An endpoint given as ``<ep>_lower`` / ``<ep>_upper`` (R's ``Surv(type="interval2")``):
    upper empty = censored at lower; lower = upper = exact event; lower < upper = event in
    (lower, upper] (lower 0: before the first assessment). Returns the canonical time
    (upper for an event), event and lower (NaN unless interval-censored)."""
    lcol, ucol = f"{ep}_lower", f"{ep}_upper"
    if f"{ep}_time" in frame.columns or f"{ep}_event" in frame.columns:
        problems.add(f"columns '{ep}_time'/'{ep}_event' and '{lcol}'/'{ucol}' both given; "
                     f"give {ep.upper()} once: as a time and event, or as bounds.")
        return {}
    vals = {}
    for col in (lcol, ucol):
        raw = frame[col]
        v = pd.to_numeric(raw, errors="coerce")
        problems.rows(frame, raw.notna() & v.isna(), col, "non-numeric bound",
                      "bounds must be numbers (leave upper empty for a censored patient).",
                      values=raw)
        problems.rows(frame, v < 0, col, "negative bound", "bounds must be >= 0.", values=v)
        vals[col] = v.to_numpy(float)
    lo, up = vals[lcol], vals[ucol]
    problems.rows(frame, np.isnan(lo) & frame[lcol].isna().to_numpy(), lcol, "missing lower "
                  "bound", "give the last time known event-free (0 if the event was seen at "
                  "the first assessment).")
    problems.rows(frame, np.isinf(lo), lcol, "infinite lower bound",
                  "the lower bound is the last time known event-free: a finite number.")
    problems.rows(frame, lo > up, lcol, "lower bound after upper bound",
                  f"{lcol} <= {ucol}: the event lies in ({lcol}, {ucol}].", values=lo)
    return bounds_endpoint(ep, lo, up)


def bounds_endpoint(ep: str, lo: np.ndarray, up: np.ndarray) -> dict[str, np.ndarray]:
    """The canonical time, event and lower bound of an endpoint given as bounds (checked,
    or valid by construction): upper NaN = censored at lower; lower = upper = exact event;
    else an event in (lower, upper]."""
    censored = ~np.isfinite(up)
    exact = ~censored & (lo == up)
    return {f"{ep}_time": np.where(censored, lo, up),
            f"{ep}_event": (~censored).astype(np.int8),
            f"{ep}_lower": np.where(censored | exact, np.nan, lo)}


def _check_times(frame, endpoints, problems: Problems) -> dict[str, np.ndarray]:
    out = {}
    for ep in endpoints:
        tcol, ecol = f"{ep}_time", f"{ep}_event"
        if tcol not in frame.columns:
            out.update(_check_bounds(frame, ep, problems))
            continue
        if f"{ep}_upper" in frame.columns:  # (it was dropped without a word)
            problems.add(f"columns '{tcol}'/'{ecol}' and '{ep}_upper' both given; give "
                         f"{ep.upper()} once: as a time and event (with '{ep}_lower' for an "
                         f"event seen between assessments), or as bounds '{ep}_lower'/"
                         f"'{ep}_upper'.")
            continue
        if ecol not in frame.columns:
            problems.add(f"column '{ecol}' is missing; every '{tcol}' needs its event indicator "
                         "(1 = event, 0 = censored).")
            continue
        raw_t = frame[tcol]
        t = pd.to_numeric(raw_t, errors="coerce")
        nonnum = raw_t.notna() & t.isna()
        comma = nonnum & raw_t.astype(str).str.fullmatch(r"\s*-?\d+,\d+\s*")
        problems.rows(frame, nonnum, tcol, "non-numeric time", "times must be numbers"
                      + (" (decimal commas such as '2,5': save the file with decimal points, "
                         "or read it with pandas.read_csv(..., decimal=',') and pass the "
                         "DataFrame)." if comma.any() else "."), values=raw_t)
        problems.rows(frame, raw_t.isna(), tcol, "missing (NaN) time",
                      "every patient needs a time (the censoring time if no event).")
        problems.rows(frame, t < 0, tcol, "negative time", "times must be >= 0.", values=t)
        problems.rows(frame, np.isinf(t.to_numpy(float)), tcol, "infinite time",
                      "give the finite follow-up time (censored at the last contact if the "
                      "event was not observed).", values=raw_t)
        raw_e = frame[ecol]
        e = _as_number(raw_e)
        bad_e = ~e.isin([0, 1])
        one_two = bad_e.any() and e.isin([1, 2]).all()  # R's survival datasets (lung...)
        problems.rows(frame, bad_e, ecol, "event indicator not 0/1",
                      "use 1 = event, 0 = censored" + (
                          " (values 1 and 2, as R's survival datasets code status, usually "
                          "mean 1 = censored, 2 = event: subtract 1)." if one_two else "."),
                      values=raw_e)
        out[tcol] = t.to_numpy(dtype=float)
        out[ecol] = np.where(bad_e, 0, e.fillna(0)).astype(np.int8)
        lcol = f"{ep}_lower"
        if lcol in frame.columns:  # the canonical form: time = R, lower = L of (L, R]
            lo = pd.to_numeric(frame[lcol], errors="coerce").to_numpy(float)
            has = np.isfinite(lo)
            problems.rows(frame, has & (out[ecol] == 0), lcol, "lower bound for a censored "
                          "patient", f"{lcol} is the last time known event-free before an "
                          f"event at {tcol}; leave it empty for a censored patient.")
            problems.rows(frame, has & ((lo < 0) | (lo >= out[tcol])), lcol,
                          f"lower bound not in [0, {tcol})", f"an event at {tcol} was known "
                          f"not to have happened by {lcol} < {tcol}.", values=lo)
            out[lcol] = np.where(has, lo, np.nan)
    return out


def _check_consistency(frame, ep, problems: Problems) -> None:
    """Cross-endpoint checks under the standard definitions (PFS <= OS, TTP vs PFS)."""
    if {"pfs_time", "os_time"} <= ep.keys():
        problems.rows(frame, ep["pfs_time"] > ep["os_time"] + _EPS, "pfs_time",
                      "PFS later than OS", "PFS ends at progression or death, so pfs_time "
                      "cannot exceed os_time.")
        problems.rows(frame, (ep["os_event"] == 1) & (ep["pfs_event"] == 0)
                      & (np.abs(ep["pfs_time"] - ep["os_time"]) <= _EPS), "pfs_event",
                      "death at the PFS time recorded as PFS-censored",
                      "death is a PFS event: set pfs_event = 1.")
    if {"ttp_time", "pfs_time"} <= ep.keys():
        problems.rows(frame, (ep["ttp_event"] == 1) & (ep["pfs_event"] == 0), "ttp_event",
                      "TTP inconsistent with PFS: progression without a PFS event",
                      "a progression is a PFS event: set pfs_event = 1 at the progression time.")
        problems.rows(frame, ep["ttp_time"] > ep["pfs_time"] + _EPS, "ttp_time",
                      "TTP inconsistent with PFS: ttp_time later than pfs_time",
                      "TTP is censored at death, so ttp_time <= pfs_time.")
        problems.rows(frame, (ep["ttp_event"] == 1)
                      & (np.abs(ep["ttp_time"] - ep["pfs_time"]) > _EPS), "ttp_time",
                      "TTP inconsistent with PFS: progression time differs from pfs_time",
                      "with a progression, PFS ends at it: ttp_time must equal pfs_time.")


def zero_time_events_at_half_day(ep, endpoints, time_unit) -> dict[str, np.ndarray]:
    """Move events at time 0 to half a day (``zero_time_events="half_day"``), in place in
    ``ep``; returns which patients moved, per endpoint (only endpoints with any)."""
    moved = {}
    for name in endpoints:
        t, e = ep[f"{name}_time"], ep[f"{name}_event"]
        zero = (t == 0) & (e == 1)
        if zero.any():
            t[zero] = 0.5 / DAYS_PER_UNIT[time_unit]
            moved[name] = zero
    return moved


def _zero_times(frame, ep, endpoints, rule, time_unit, problems: Problems) -> None:
    """Events at time 0 have zero density under a Weibull with shape > 1: decide explicitly."""
    if rule == "error":
        for name in endpoints:
            zero = (ep[f"{name}_time"] == 0) & (ep[f"{name}_event"] == 1)
            problems.rows(frame, zero, f"{name}_time", "event at time 0",
                          "check the dates; if same-day events are real, pass "
                          "zero_time_events='half_day' to count them at half a day.")
        return
    half = 0.5 / DAYS_PER_UNIT[time_unit]
    for name, zero in zero_time_events_at_half_day(ep, endpoints, time_unit).items():
        warn_data(f"{name}: event at time 0 set to half a day ({half:.4g} {time_unit}) in "
                  f"{describe_rows(frame, zero)} (zero_time_events='half_day').")


def canonical_frame(frame, dates, ep, endpoints, taken) -> pd.DataFrame:
    """The canonical patient table: ids, site and arm of ``frame``, the ``dates``, each
    endpoint's time, event and (when some event is interval-censored) lower bound, then
    ``frame``'s other columns (those not in ``taken``: baseline covariates)."""
    out = {"patient_id": frame["patient_id"].astype(str).to_numpy(),
           "site": frame["site"].astype(str).to_numpy(),
           "arm": _arm_column(frame["arm"]).astype(str).to_numpy()}
    if dates is not None:
        for col, s in dates.items():
            out[col] = np.asarray(s, dtype="datetime64[ns]")
    for name in endpoints:
        out[f"{name}_time"] = np.asarray(ep[f"{name}_time"], dtype=float)
        out[f"{name}_event"] = np.asarray(ep[f"{name}_event"], dtype=np.int8)
        if f"{name}_lower" in ep and np.isfinite(ep[f"{name}_lower"]).any():
            out[f"{name}_lower"] = np.asarray(ep[f"{name}_lower"], dtype=float)
    for col in frame.columns:
        if col not in taken and col not in out:
            out[col] = frame[col].to_numpy()
    return pd.DataFrame(out)


def build_canonical(raw: pd.DataFrame, *, control: str, treatment: str, time_unit: str,
                    zero_time_events: str = "error", source: str = "trial data",
                    layout: str | None = None, assessments=None):
    """Validate ``raw`` (and the assessment table, if any) and return ``(canonical_frame,
    endpoints, layout, assessments)``: the canonical assessment table, or None."""
    time_unit = check_time_unit(time_unit)
    if zero_time_events not in ZERO_TIME_RULES:
        raise TrialDataError(f"zero_time_events={zero_time_events!r}; choose one of "
                             f"{', '.join(ZERO_TIME_RULES)}.")
    frame = raw.reset_index(drop=True)
    if len(frame) == 0:
        raise TrialDataError(f"{source}: no patients (the table has a header but no rows).")
    if frame.columns.duplicated().any():
        dup = sorted(set(map(str, frame.columns[frame.columns.duplicated()])))
        raise TrialDataError(f"{source}: column(s) {', '.join(map(repr, dup))} appear more than "
                             "once; keep one column of each name.")
    if arm_label(control) == arm_label(treatment):
        raise TrialDataError(f"control and treatment are both {control!r}; name the two arms "
                             "as written in the arm column.")
    control, treatment = arm_label(control), arm_label(treatment)
    layout = layout or detect_layout(frame, source)
    problems = Problems(source)
    _check_identity(frame, control, treatment, problems)
    dates = None
    if layout == "dates":
        dates = _parse_dates(frame, problems)
        endpoints = list(STANDARD_ENDPOINTS)
        problems.raise_if_any()  # derivation needs parseable dates
        if assessments is not None:
            dates, assessments = reduce_assessments(assessments, frame, dates, source)
        ep = _derive_from_dates(frame, dates, time_unit, problems)
        taken = set(DATES_REQUIRED) | {LPF_COLUMN}
        problems.raise_if_any()  # compare with the time columns only what the dates give
        taken |= _check_given_times(frame, ep, time_unit, problems)
    else:
        if assessments is not None:
            raise TrialDataError(f"{source}: an assessment table goes with the dates layout "
                                 "(randomization, progression, death and follow-up dates); "
                                 "in the times layout give <endpoint>_lower / _upper bounds.")
        endpoints = time_endpoints(frame)
        ep = _check_times(frame, endpoints, problems)
        taken = set(TIMES_REQUIRED) | {f"{e}_{k}" for e in endpoints
                                       for k in ("time", "event", "lower", "upper")}
        if "randomization_date" in frame.columns:
            r = parse_date_column(frame, "randomization_date", problems, required=True)
            dates = {"randomization_date": r}
            taken.add("randomization_date")
    problems.raise_if_any()
    _check_consistency(frame, ep, problems)
    _zero_times(frame, ep, endpoints, zero_time_events, time_unit, problems)
    problems.raise_if_any()
    warn_implausible(frame, dates, ep, endpoints, time_unit)
    warn_label_variants(frame)

    return canonical_frame(frame, dates, ep, endpoints, taken), tuple(endpoints), layout, \
        assessments


def warn_label_variants(frame: pd.DataFrame) -> None:
    """DataWarnings for sites (and patient ids) whose labels differ only in case or
    surrounding spaces ('SNUH', 'snuh', 'SNUH '): read as different sites (each with its
    own effect) or different patients, which a typing slip rarely means."""
    for col, what, fix in (
            ("site", "different sites", "if they are one site, write them the same"),
            ("patient_id", "different patients", "if they are one patient, keep one row")):
        labels = frame[col].dropna().astype(str)
        key = labels.str.strip().str.casefold()
        if key.nunique() == labels.nunique():  # the usual case, in linear time
            continue
        distinct = pd.DataFrame({"key": key, "label": labels}).drop_duplicates()
        variants = [sorted(g) for _, g in distinct.groupby("key")["label"] if len(g) > 1]
        rows = frame[col].astype(str).isin({x for g in variants for x in g}).to_numpy()
        listed = "; ".join(", ".join(map(repr, g)) for g in variants[:5])
        warn_data(f"column '{col}': labels that differ only in case or surrounding spaces "
                  f"are read as {what}: {listed}"
                  + (f" (and {len(variants) - 5} more groups)" if len(variants) > 5 else "")
                  + f" ({describe_rows(frame, rows)}). {fix[0].upper() + fix[1:]}.")


def warn_small(frame: pd.DataFrame, endpoints, control: str, treatment: str) -> None:
    """DataWarnings (not errors) for sites with fewer than 3 patients and arms with no events."""
    counts = frame["site"].value_counts()
    small = counts[counts < 3]
    if len(small):
        listed = ", ".join(f"{s!r} ({n})" for s, n in small.items())
        warn_data(f"site(s) with fewer than 3 patients: {listed}. Site effects for them are "
                  "driven by the prior; consider pooling small sites or site_effect='none'.")
    present = set(frame["arm"])
    missing = [a for a in (control, treatment) if a not in present]
    for arm in missing:
        warn_data(f"arm {arm!r} has no patients in these data: they describe the other arm "
                  "only, and no model can compare the arms on them.")
    for name in endpoints:
        ev = frame.groupby("arm")[f"{name}_event"].sum()
        for arm in (control, treatment):
            if arm in missing:
                continue
            if ev.get(arm, 0) == 0:
                warn_data(f"{name}: arm {arm!r} has no events; its hazard (and the hazard ratio)"
                          " is informed by the prior only, so read that posterior with care.")
