"""Time units: the one place where a time unit is checked and converted.

Times are in the data's unit everywhere (months unless the user says otherwise). Priors
whose scale depends on time (log baseline rates, log time scales) are declared once, in
months, and moved to the data's unit by :func:`log_unit_in_months` inside each family
(``Family.unit_shift``), so no posterior depends on the unit the data come in.
"""

from __future__ import annotations

import math

from bayes_hcc.errors import TrialDataError, bool_flags

__all__ = ["DAYS_PER_UNIT", "TIME_UNITS", "check_time_unit", "log_unit_in_months",
           "convert", "time_label", "PLAUSIBLE_MAX_YEARS"]

#: Length of each unit in days (a month is a twelfth of a Julian year).
DAYS_PER_UNIT = {"days": 1.0, "weeks": 7.0, "months": 30.4375, "years": 365.25}
TIME_UNITS = tuple(DAYS_PER_UNIT)
#: Follow-up beyond this many years is implausible for this trial population (a DataWarning).
PLAUSIBLE_MAX_YEARS = 20.0


#: Other ways people write the units (singular, abbreviated); "m" is left out: minutes?
UNIT_ALIASES = {"day": "days", "d": "days", "week": "weeks", "wk": "weeks", "wks": "weeks",
                "w": "weeks", "month": "months", "mo": "months", "mon": "months",
                "mos": "months", "year": "years", "yr": "years", "yrs": "years", "y": "years"}


def check_time_unit(time_unit) -> str:
    """The unit in canonical form ("days", "weeks", "months", "years"; "month", "wk"... are
    read as such), or an error."""
    unit = str(time_unit).strip().lower()
    unit = UNIT_ALIASES.get(unit, unit)
    if unit not in DAYS_PER_UNIT:
        raise TrialDataError(
            f"time_unit={time_unit!r} is not known; choose one of {', '.join(DAYS_PER_UNIT)}.")
    return unit


def log_unit_in_months(time_unit: str) -> float:
    """log of the length of one ``time_unit`` in months (days: log(1 / 30.4375) = -3.42).

    A rate per unit is the rate per month times this length, so a log rate in the data's
    unit is the log rate per month plus this value; a log time is the log time in months
    minus it.
    """
    return math.log(DAYS_PER_UNIT[check_time_unit(time_unit)] / DAYS_PER_UNIT["months"])


def convert(value, from_unit: str, to_unit: str):
    """A time (number or array) in ``from_unit`` expressed in ``to_unit``."""
    return value * (DAYS_PER_UNIT[check_time_unit(from_unit)]
                    / DAYS_PER_UNIT[check_time_unit(to_unit)])


@bool_flags
def time_label(value: float, unit: str, *, exact: bool = False) -> str:
    """A time as table row names and sentences give it: "12 months", "1 month",
    "52.18 weeks" (12 months in weeks, 52.1786...), "365.25 days", "1.917 years".

    Four significant digits, and never fewer than two decimals, trailing zeros dropped: a
    landmark or horizon converted from months reads as people write it instead of ``:g``'s
    six digits, and a time a user gave (12, 0.125, 365.25) reads as given. ``exact=True``
    gives 12 significant digits (for labels that must tell apart times closer than that)."""
    value = float(value)
    unit = check_time_unit(unit)
    if exact or not math.isfinite(value) or value == 0:
        number = f"{value:.12g}"
    else:
        decimals = min(max(2, 3 - math.floor(math.log10(abs(value)))), 15)
        number = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    if number == "-0":
        number = "0"
    return f"{number} {unit[:-1] if number == '1' else unit}"
