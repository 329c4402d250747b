"""Collect data problems and raise them together, each naming its column, rows and fix."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bayes_hcc.errors import DataWarning, TrialDataError, warn


#: How to read a file whose columns are named otherwise (the command line's words for it:
#: ``cli.reading``).
RENAME_FIX = ("Columns named otherwise in the file: pass read_trial(..., "
              "columns={'your name': 'os_time', ...}).")

_MAX_LISTED = 8


def describe_rows(frame: pd.DataFrame, mask, *, id_column: str | None = "patient_id") -> str:
    """Human-readable list of the rows where ``mask`` holds: 1-based data-row numbers and ids."""
    mask = np.asarray(mask, dtype=bool)
    positions = np.flatnonzero(mask)
    shown = positions[:_MAX_LISTED]
    if id_column is not None and id_column in frame.columns:
        ids = frame[id_column].to_numpy()
        parts = [f"{p + 1} ({id_column} {ids[p]})" for p in shown]
    else:
        parts = [str(p + 1) for p in shown]
    more = f" and {len(positions) - len(shown)} more" if len(positions) > len(shown) else ""
    noun = "row" if len(positions) == 1 else "rows"
    return f"{noun} {', '.join(parts)}{more}"


def describe_values(values, mask) -> str:
    """The distinct offending values, quoted, at most a few."""
    vals = pd.unique(pd.Series(np.asarray(values, dtype=object)[np.asarray(mask, dtype=bool)]))
    shown = [repr(v) for v in vals[:_MAX_LISTED]]
    more = ", ..." if len(vals) > _MAX_LISTED else ""
    return ", ".join(shown) + more


class Problems:
    """Accumulates validation errors so that a user sees all of them at once."""

    def __init__(self, source: str, error: type[TrialDataError] = TrialDataError):
        self.source = source
        self.error = error
        self.messages: list[str] = []

    def add(self, message: str) -> None:
        self.messages.append(message)

    def rows(self, frame, mask, column: str, what: str, fix: str, *, values=None,
             id_column: str | None = "patient_id") -> None:
        """Record a problem on the rows where ``mask`` holds, if any."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        shown = ""
        if values is not None:
            shown = f" (values: {describe_values(values, mask)})"
        self.add(f"column '{column}': {what} in {describe_rows(frame, mask, id_column=id_column)}"
                 f"{shown}. Fix: {fix}")

    def raise_if_any(self) -> None:
        if not self.messages:
            return
        if len(self.messages) == 1:
            raise self.error(f"{self.source}: {self.messages[0]}")
        listed = "\n".join(f"  - {m}" for m in self.messages)
        raise self.error(f"{self.source}: {len(self.messages)} problems found:\n{listed}")


def calendar_date(value, what: str) -> pd.Timestamp:
    """``value`` as a calendar date (a ``YYYY-MM-DD`` string, a date or a Timestamp), or an
    error naming ``what`` (a number is refused: pandas reads 2018 as nanoseconds after
    1970; a string must be ISO 8601, with its day: "2018-06" parsed as 2018-06-01, a data
    cut nobody chose)."""
    if isinstance(value, str) and PARTIAL_DATE.fullmatch(value.strip()):
        raise TrialDataError(f"{what}={value!r} has no day; give the full date as "
                             "'YYYY-MM-DD', e.g. '2018-06-30' (a year or a month was read "
                             "as its first day).")
    ts = _timestamp(value)
    if pd.isna(ts):
        raise TrialDataError(f"{what}={value!r} is not a calendar date; give it as "
                             "'YYYY-MM-DD', e.g. '2018-12-31'.")
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def _timestamp(value) -> pd.Timestamp:
    """A Timestamp, or NaT for a number or anything not a date (a string must be ISO 8601:
    pandas' lenient parser reads "June" as 0001-06-01)."""
    if isinstance(value, (bool, int, float, np.number)):
        return pd.NaT
    try:
        if isinstance(value, str):
            return pd.to_datetime(value.strip(), format="ISO8601")
        return pd.Timestamp(value)
    except (TypeError, ValueError):
        return pd.NaT


def warn_data(message: str) -> None:
    """A DataWarning at the user's line, however deep the check that found it."""
    warn(message, DataWarning)


def _has_timezone(value) -> bool:
    if isinstance(value, str):
        try:
            value = pd.Timestamp(value.strip())
        except (ValueError, TypeError):
            return False
    return getattr(value, "tzinfo", None) is not None


#: Spreadsheet serial day numbers (Excel's 1900 date system: day 0 = 1899-12-30) of dates
#: between 1927 and 2119: a date column saved from a sheet whose cells were numbers.
_EXCEL_ORIGIN = pd.Timestamp("1899-12-30")
_EXCEL_SERIALS = (10_000, 80_000)
_NUMERIC_DATE = r"\s*(\d{1,2})([./-])(\d{1,2})\2(\d{4})\s*"
_KOREAN_DATE = r"\s*\d{4}\. ?\d{1,2}\. ?\d{1,2}\.?\s*"


def _date_format_hint(values: pd.Series) -> str:
    """How dates that are not ISO 8601 seem to be written, as a ``date_format`` to pass
    (a first field over 12 is a day; when no field is over 12 the data cannot tell)."""
    text = values.dropna().astype(str)
    if len(text) and text.str.fullmatch(_KOREAN_DATE).all():
        return ", or pass date_format='%Y. %m. %d.' (year. month. day.)"
    serial = pd.to_numeric(text, errors="coerce")
    if len(text) and serial.notna().all() and (serial % 1 == 0).all() and \
            serial.between(*_EXCEL_SERIALS).all():
        example = int(serial.iloc[0])
        day = (_EXCEL_ORIGIN + pd.Timedelta(days=example)).date()
        return (f"; these look like spreadsheet serial day numbers ({example} is {day}): "
                "format the cells as dates before saving, or convert the column with "
                "pandas.to_datetime(column, unit='D', origin='1899-12-30')")
    parts = text.str.extract("^" + _NUMERIC_DATE + "$")
    if not len(text) or parts.isna().any().any():
        return ""
    first, second, sep = parts[0].astype(int), parts[2].astype(int), parts[1].iloc[0]
    if not (parts[1] == sep).all():
        return ""
    day_first, month_first = f"%d{sep}%m{sep}%Y", f"%m{sep}%d{sep}%Y"
    if first.max() > 12 >= second.max():
        return f", or pass date_format={day_first!r} (these dates are day first)"
    if second.max() > 12 >= first.max():
        return f", or pass date_format={month_first!r} (these dates are month first)"
    if max(first.max(), second.max()) <= 12:
        return (f", or pass date_format={day_first!r} or {month_first!r}: no day here is "
                "over 12, so the values cannot tell which; check how the source wrote them")
    return ""


#: A year, or a year and a month, without a day ("2018", "2018-02", "2018/2").
PARTIAL_DATE = re.compile(r"\d{4}([-/.]\d{1,2})?")


def parse_date_column(frame, col: str, problems: Problems, *, required: bool = False,
                      id_column: str = "patient_id") -> pd.Series:
    """One date column as naive calendar dates; unparseable values, and a mix of
    time-zone-aware and naive values (the calendar day would be ambiguous), are problems
    naming the rows. Missing values stay NaT (an error when ``required``)."""
    raw = frame[col]
    if pd.api.types.is_datetime64_dtype(raw.dtype):  # already naive dates (e.g. a data cut)
        if required:
            problems.rows(frame, raw.isna(), col, "missing date",
                          f"every row needs a value in {col}.", id_column=id_column)
        return _calendar_days(frame, col, raw.astype("datetime64[ns]"), raw, id_column)
    blank = raw.isna() | (raw.astype(str).str.strip().isin(["", "NaT", "nan", "None"]))
    aware = raw.where(~blank).map(_has_timezone).fillna(False).astype(bool).to_numpy()
    if aware.any() and not aware[~blank.to_numpy()].all():
        problems.rows(frame, aware, col, "time-zone-aware date among dates without a time "
                      "zone", "write every date as YYYY-MM-DD without a time zone.",
                      values=raw, id_column=id_column)
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    # surrounding spaces (a spreadsheet's '2017-06-09 ') say nothing about the date
    values = raw.where(~blank).map(lambda v: v.strip() if isinstance(v, str) else v)
    if aware.any():  # all aware: keep each date's own local calendar day
        values = values.map(lambda v: v if pd.isna(v) else pd.Timestamp(v).tz_localize(None))
    # A year, or a year and month, parses as its first day: an imputation nobody chose
    partial = values.map(lambda v: isinstance(v, str) and PARTIAL_DATE.fullmatch(v.strip())
                         is not None).astype(bool)
    problems.rows(frame, partial, col, "partial date (no day)", "give the full date; a "
                  "partial date must be imputed explicitly before reading (by the analysis "
                  "plan's rule, e.g. the 15th of the month, or the earliest day the other "
                  "dates allow), not read as the first of the month.", values=raw,
                  id_column=id_column)
    values = values.where(~partial)
    parsed = pd.to_datetime(values, errors="coerce", format="ISO8601")
    bad = ~blank & ~partial & parsed.isna()
    problems.rows(frame, bad, col, "unparseable date", "write dates as YYYY-MM-DD (ISO 8601)"
                  + _date_format_hint(raw[bad]) + ".", values=raw, id_column=id_column)
    if required:
        problems.rows(frame, blank, col, "missing date", f"every row needs a value in {col}.",
                      id_column=id_column)
    return _calendar_days(frame, col, parsed, raw, id_column)


def _calendar_days(frame, col: str, parsed: pd.Series, raw, id_column: str) -> pd.Series:
    """Dates as calendar days: a time of day (a date-time export, '2018-03-04 12:30') is
    dropped with a DataWarning naming the rows; times count whole days between dates, and a
    time of day made a death at 12:30 fall after a last follow-up the same day. Midnight
    (a spreadsheet's '2018-03-04 00:00:00') is a plain date: silent."""
    day = parsed.dt.normalize()
    timed = (parsed.notna() & (parsed != day)).to_numpy()
    if timed.any():
        shown = raw.astype(str) if pd.api.types.is_datetime64_dtype(raw.dtype) else raw
        rows = describe_rows(frame, timed, id_column=id_column)
        warn_data(f"column {col!r}: a time of day in {rows} (values: "
                  f"{describe_values(shown, timed)}); dates are read as calendar days, so "
                  "the time is dropped. Nothing to do if that is right.")
    return day
