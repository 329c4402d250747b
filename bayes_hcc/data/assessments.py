"""The tumour-assessment history (one row per patient and scan, like an ADaM ADRS extract)
reduced to what the survival likelihood needs: the first assessment showing progression and
the last one before it without progression (``last_progression_free_date``).

Checked here, each as a named error listing the assessment rows: unknown patients, missing
or unparseable dates, a progression flag other than 0/1, duplicate assessments, assessments
before randomization or after death, and a progression-free assessment after one showing
progression (progression is irreversible: the first positive scan is the event).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_hcc.data._checks import RENAME_FIX, Problems, parse_date_column
from bayes_hcc.errors import TrialDataError

__all__ = ["ASSESSMENT_COLUMNS", "LPF_COLUMN", "reduce_assessments"]

#: The last tumour assessment without progression (dates layout, optional): with it,
#: progression is interval-censored between this date and ``progression_date``.
LPF_COLUMN = "last_progression_free_date"

#: Columns of an assessment table.
ASSESSMENT_COLUMNS = ("patient_id", "assessment_date", "progression")


def _canonical_table(raw, patients, source) -> tuple[pd.DataFrame, Problems]:
    if not isinstance(raw, pd.DataFrame):
        raise TrialDataError(f"assessments: a table (DataFrame or file path) of scans, got "
                             f"{type(raw).__name__}.")
    label = f"assessments ({source})"
    missing = [c for c in ASSESSMENT_COLUMNS if c not in raw.columns]
    if missing:
        raise TrialDataError(f"{label}: missing column(s) {', '.join(missing)}; an assessment "
                             "table has one row per patient and scan: patient_id, "
                             "assessment_date, progression (1 = the scan shows progression, "
                             "0 = it does not). " + RENAME_FIX)
    frame = raw.reset_index(drop=True).copy()
    ids = frame["patient_id"]
    frame["patient_id"] = ids.where(ids.isna(), ids.astype(str))
    problems = Problems(label)
    known = frame["patient_id"].isin(set(patients))
    problems.rows(frame, ~known, "patient_id", "patient not in the patient table",
                  "every assessed patient needs a row in the patient table (check the ids).",
                  values=frame["patient_id"])
    date = parse_date_column(frame, "assessment_date", problems, required=True)
    flag = frame["progression"]
    flag = (flag.astype(np.int64) if pd.api.types.is_integer_dtype(flag.dtype)
            or pd.api.types.is_bool_dtype(flag.dtype) else pd.to_numeric(flag.map(
                lambda v: int(v) if isinstance(v, (bool, np.bool_)) else v), errors="coerce"))
    problems.rows(frame, ~flag.isin([0, 1]), "progression", "progression flag not 0/1",
                  "use 1 = the scan shows progression, 0 = it does not.",
                  values=frame["progression"])
    dup = frame["patient_id"].notna() & date.notna() & \
        pd.DataFrame({"p": frame["patient_id"], "d": date}).duplicated(keep=False)
    problems.rows(frame, dup, "assessment_date", "duplicate assessments (same patient, same "
                  "date)", "keep one row per patient and assessment date (merge the readings "
                  "of one scan).")
    out = pd.DataFrame({"patient_id": frame["patient_id"], "assessment_date": date,
                        "progression": flag.fillna(0).astype(np.int8), "_row": frame.index})
    return out, problems


def first_positive_last_negative(row, when, positive, n: int
                                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per patient (``row``: each scan's patient index, 0..n-1), the date of the first scan
    showing progression and of the last scan without it (NaT when none): what reading an
    assessment table, and cutting the data at a date (the scans made by then), derive.
    With progression irreversible (checked when the table is read), every scan without
    progression precedes the first one with it."""
    row = np.asarray(row, dtype=np.int64)
    ticks = np.asarray(when, dtype="datetime64[ns]").view(np.int64)
    positive = np.asarray(positive, dtype=bool)
    nat = np.datetime64("NaT", "ns").view(np.int64)  # the smallest int64
    first = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(first, row[positive], ticks[positive])
    first[first == np.iinfo(np.int64).max] = nat
    last = np.full(n, nat)
    np.maximum.at(last, row[~positive], ticks[~positive])
    return first.view("datetime64[ns]"), last.view("datetime64[ns]")


def reduce_assessments(raw, frame: pd.DataFrame, dates: dict, source: str = "assessments"
                       ) -> tuple[dict, pd.DataFrame]:
    """Check the assessment table ``raw`` against the patient table ``frame`` (its parsed
    ``dates``) and return ``(dates, assessments)``: the patients' dates with
    ``progression_date`` (the first positive scan) and ``last_progression_free_date`` (the
    last negative scan before it) filled in, and the canonical table (sorted by patient and
    date)."""
    if LPF_COLUMN in frame.columns:
        raise TrialDataError(f"{source}: both an assessment table and a '{LPF_COLUMN}' column "
                             "were given; give the assessment history once (drop the column "
                             "or the table).")
    pid = frame["patient_id"].astype(str)
    table, problems = _canonical_table(raw, pid, source)
    by_id = {k: i for i, k in enumerate(pid)}
    row = table["patient_id"].map(by_id)
    ok = row.notna() & table["assessment_date"].notna()

    def patient_date(col):
        out = pd.Series(pd.NaT, index=table.index, dtype="datetime64[ns]")
        out[ok] = dates[col].to_numpy()[row[ok].astype(int)]
        return out

    when = table["assessment_date"]
    rand, death = patient_date("randomization_date"), patient_date("death_date")
    problems.rows(table, ok & rand.notna() & (when < rand), "assessment_date",
                  "assessment before randomization_date", "only follow-up scans after "
                  "randomization belong here (drop the baseline scan).")
    problems.rows(table, ok & death.notna() & (when > death), "assessment_date",
                  "assessment after death", "check the dates: no scan can follow the death date.")
    problems.raise_if_any()

    rows_view = table[["patient_id"]]  # input order, for messages naming the rows
    table = table[ok].sort_values(["patient_id", "assessment_date"], kind="stable")
    at = row[table.index].to_numpy(dtype=np.int64)
    first_pos, last_neg = first_positive_last_negative(
        at, table["assessment_date"], table["progression"].to_numpy() == 1, len(frame))
    after = table["assessment_date"].to_numpy() > first_pos[at]  # NaT compares False
    reverted = table[(table["progression"].to_numpy() == 0) & after]
    problems.rows(rows_view, rows_view.index.isin(reverted["_row"]), "progression",
                  "an assessment without progression after one showing progression",
                  "progression is irreversible: the first scan showing it is the event; drop "
                  "the later scans or correct the flags.")
    problems.raise_if_any()

    given = dates["progression_date"]
    derived_p = pd.Series(first_pos, index=frame.index)
    conflict = given.notna() & (given != derived_p)  # also: a progression without a scan
    if conflict.any():
        p = Problems(source)
        p.rows(frame, conflict.to_numpy(), "progression_date", "progression_date differs "
               "from the first assessment showing progression",
               "leave progression_date empty (it is read from the assessments) or make the "
               "two agree.")
        p.raise_if_any()
    out = dict(dates)
    out["progression_date"] = given.where(given.notna(), derived_p).astype("datetime64[ns]")
    out[LPF_COLUMN] = pd.Series(last_neg, index=frame.index)
    canonical = table.drop(columns="_row").reset_index(drop=True)
    return out, canonical
