"""read_trial: a patient table (file or DataFrame, dates or times layout) to TrialData."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from bayes_hcc.data.trial import TrialData
from bayes_hcc.errors import TrialDataError

__all__ = ["read_trial", "read_table"]

_READERS = {
    ".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
    ".xlsx": "excel", ".xls": "excel",
}
# Identifiers and labels stay text: "007" must not become the number 7.
_TEXT_COLUMNS = {"patient_id": str, "site": str, "arm": str,
                 "USUBJID": str, "SITEID": str, "TRT01P": str, "TRT01A": str, "ARM": str}


def read_table(source) -> tuple[pd.DataFrame, str]:
    """Read a CSV, Parquet or Excel file (or take a DataFrame); return it and a source label."""
    if isinstance(source, pd.DataFrame):
        return source.copy(), "DataFrame"
    if not isinstance(source, (str, os.PathLike)):
        raise TrialDataError(f"cannot read trial data from a {type(source).__name__}; "
                             "pass a file path (CSV, Parquet, Excel) or a pandas DataFrame.")
    path = Path(source)
    if not path.exists():
        raise TrialDataError(f"{path}: no such file.")
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        raise TrialDataError(f"{path}: unknown file type {path.suffix!r}; use one of "
                             f"{', '.join(sorted(_READERS))} or pass a DataFrame.")
    if kind == "csv":
        frame = pd.read_csv(path, dtype=_TEXT_COLUMNS, float_precision="round_trip")
    elif kind == "parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_excel(path, dtype=_TEXT_COLUMNS)
    return frame, str(path)


def read_trial(source, *, control: str = "sorafenib", treatment: str = "tace_sorafenib",
               time_unit: str = "months", zero_time_events: str = "error") -> TrialData:
    """Read and validate a two-arm trial, one row per patient.

    Parameters
    ----------
    source : str, path or DataFrame
        CSV, Parquet or Excel file, or a DataFrame, in either layout:

        * dates: ``patient_id, site, arm, randomization_date, progression_date,
          death_date, last_followup_date`` (progression/death empty when not observed;
          last follow-up may be empty for a patient who died). OS, PFS and TTP are
          derived: OS = death from any cause; PFS = progression or death, whichever
          first; TTP = progression, with death without progression censored at death.
        * times: ``patient_id, site, arm`` and pairs ``os_time, os_event``,
          ``pfs_time, pfs_event``, ``ttp_time, ttp_event`` (any ``<name>_time`` /
          ``<name>_event`` pair is an endpoint; optional ``randomization_date``).

        Any further column is kept as a baseline covariate.
    control, treatment : str
        Arm labels as written in the ``arm`` column. Hazard ratios are
        hazard(treatment) / hazard(control).
    time_unit : {"months", "days", "weeks", "years"}, default "months"
        Unit of the times (times layout) or of the derived times (dates layout; one
        month = 30.4375 days).
    zero_time_events : {"error", "half_day"}, default "error"
        An event at time 0 (same-day death, say) has zero density under a Weibull model
        with shape > 1, so it is an error by default; ``"half_day"`` counts it at half a
        day, with a warning naming the patients. Censoring at time 0 is allowed (such a
        patient contributes no information).

    Returns
    -------
    TrialData

    Raises
    ------
    TrialDataError
        Listing every problem found, each with its column, rows (1-based data rows and
        patient ids) and the fix.

    Warns
    -----
    DataWarning
        For a site with fewer than 3 patients and an arm with no events.
    """
    frame, label = read_table(source)
    return TrialData._from_raw(frame, control=control, treatment=treatment,
                               time_unit=time_unit, zero_time_events=zero_time_events,
                               source=label)
