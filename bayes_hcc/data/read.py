"""read_trial: a patient table (file or DataFrame, dates or times layout) to TrialData."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from bayes_hcc.data.trial import TrialData
from bayes_hcc.errors import TrialDataError, did_you_mean

__all__ = ["read_trial", "read_table"]

_READERS = {
    ".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet",
    ".xlsx": "excel", ".xls": "excel",
}
# Identifiers and labels stay text: "007" must not become the number 7.
_TEXT_COLUMNS = {"patient_id": str, "site": str, "arm": str,
                 "USUBJID": str, "SITEID": str, "TRT01P": str, "TRT01A": str, "ARM": str}


#: Text files are read as UTF-8 (a byte-order mark is fine); another encoding must be named.
DEFAULT_ENCODING = "utf-8-sig"


def _decode_hint(path: Path, err: UnicodeDecodeError) -> str:
    head = path.read_bytes()[:4]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        guess = "it starts with a UTF-16 byte-order mark: pass encoding='utf-16'"
    else:
        guess = ("pass the file's encoding, e.g. encoding='cp949' (Korean Windows) or "
                 "encoding='latin-1', or save it as UTF-8")
    return (f"{path}: not UTF-8 text (byte {err.object[err.start:err.start + 1]!r} at "
            f"position {err.start}); {guess}.")


_OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _check_separator(path: Path, header: pd.DataFrame) -> None:
    """A CSV whose header is one column holding another separator (Excel writes semicolons,
    with decimal commas, in many European locales) is named as such, with the fix."""
    if header.shape[1] != 1 or not isinstance(header.iloc[0, 0], str):
        return
    for sep, name in _OTHER_SEPARATORS.items():
        if sep in header.iloc[0, 0]:
            decimal = ", decimal=','" if sep == ";" else ""
            raise TrialDataError(
                f"{path}: the columns are separated by {name}, not commas (header "
                f"{header.iloc[0, 0][:80]!r}). Fix: save the file as comma-separated CSV with "
                "decimal points (in Excel: CSV UTF-8), or read it with pandas.read_csv(path, "
                f"sep={sep!r}{decimal}) and pass the DataFrame.")


def _check_header(names, source: str) -> dict:
    """Duplicated column names are an error; names with surrounding spaces are renamed
    (a DataWarning lists them): returns the renaming."""
    from bayes_hcc.data._checks import warn_data

    names = [str(c) for c in names]
    stripped = [c.strip() for c in names]
    seen, dup = set(), []
    for c in stripped:
        if c in seen and c not in dup:
            dup.append(c)
        seen.add(c)
    if dup:
        raise TrialDataError(f"{source}: column(s) {', '.join(map(repr, dup))} appear more than "
                             "once in the header; keep one column of each name (which one "
                             "holds the data cannot be guessed).")
    renamed = {a: b for a, b in zip(names, stripped) if a != b}
    if renamed:
        warn_data(f"{source}: column name(s) {', '.join(map(repr, renamed))} have surrounding "
                  "spaces; read as " + ", ".join(map(repr, renamed.values())) + ".")
    return renamed


#: A column name that says "censoring indicator" (censor, censored, os_cens, CNSR; not
#: "uncensored"): read as an event indicator, it would invert every event.
_CENSORING_NAME = re.compile(r"(?<![a-z])(cens|cnsr)")


def with_columns(columns: dict | None, *tables: tuple) -> list[pd.DataFrame]:
    """The tables ((frame, source label) pairs: the patients, and the assessments when
    given) with their columns renamed as ``columns`` says ({name in the file: name read
    as}), checked: each name must be a column of one of them, and no two columns of a
    table may end up with the same name."""
    frames = [frame for frame, _ in tables]
    if not columns:
        return frames
    if not isinstance(columns, dict):
        raise TrialDataError(f"columns={columns!r}: give a dict {{name in the file: name to "
                             "read it as}, e.g. columns={'time': 'os_time', 'status': "
                             "'os_event'}.")
    given = {str(k).strip(): str(v).strip() for k, v in columns.items()}
    have = [[str(c) for c in frame.columns] for frame in frames]
    unknown = [k for k in given if not any(k in cols for cols in have)]
    if unknown:
        where = "; ".join(f"{label}: {', '.join(map(repr, cols))}"
                          for cols, (_, label) in zip(have, tables))
        everything = [c for cols in have for c in cols]
        raise TrialDataError(f"columns= renames {did_you_mean(unknown, everything)}, which "
                             f"{'is' if len(unknown) == 1 else 'are'} not a column (the "
                             f"columns of {where}).")
    censoring = {k: v for k, v in given.items()
                 if v.endswith("_event") and _CENSORING_NAME.search(k.lower())}
    if censoring:
        k, v = next(iter(censoring.items()))
        raise TrialDataError(
            f"columns= reads {k!r} as {v!r} (1 = event, 0 = censored), but its name says it "
            "is a censoring indicator (1 = censored): every event would be read as censored "
            f"and every censored patient as an event. Give an event indicator instead "
            f"({v} = 1 - {k}; an ADaM ADTTE's CNSR is read by bh.read_adtte).")
    out = []
    for frame, cols, (_, label) in zip(frames, have, tables):
        after = [given.get(c, c) for c in cols]
        twice = sorted({c for c in after if after.count(c) > 1})
        if twice:
            raise TrialDataError(
                f"{label}: with columns={given!r} more than one column would be read as "
                f"{', '.join(map(repr, twice))}; rename one of them (or leave the file's own "
                "column of that name out of the data).")
        out.append(frame.rename(columns={k: v for k, v in given.items() if k in cols}))
    return out


def with_date_format(frame: pd.DataFrame, date_format: str | None, source: str, *,
                     required: bool = True) -> pd.DataFrame:
    """The ``*_date`` columns written in ``date_format`` rewritten as ISO 8601 dates; a
    value not in that format is left as written, for the date checks to parse (an ISO
    date) or name (anything else)."""
    if date_format is None:
        return frame
    probe = pd.Timestamp("2019-12-31")
    try:
        ok = pd.to_datetime(probe.strftime(date_format), format=date_format) == probe
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise TrialDataError(f"date_format={date_format!r} does not give day, month and year; "
                             "use strftime codes, e.g. '%d/%m/%Y' or '%m/%d/%Y'.")
    columns = [c for c in frame.columns if str(c).endswith("_date")]
    if required and not columns:
        raise TrialDataError(f"{source}: date_format={date_format!r} given, but there is no "
                             "date column (randomization_date, ...): leave it out for times.")
    frame = frame.copy()
    for col in columns:
        raw = frame[col]
        if pd.api.types.is_datetime64_dtype(raw.dtype):
            continue
        text = raw.where(raw.isna(), raw.astype(str).str.strip())
        parsed = pd.to_datetime(text, format=date_format, errors="coerce")
        frame[col] = text.where(parsed.isna(), parsed.dt.strftime("%Y-%m-%d"))
    return frame


def read_table(source, *, sheet=None, encoding: str | None = None) -> tuple[pd.DataFrame, str]:
    """Read a CSV, Parquet or Excel file (or take a DataFrame); return it and a source label.

    Text files are UTF-8 (with or without a byte-order mark) unless ``encoding`` names
    another; a workbook with more than one sheet needs ``sheet`` (name or 0-based index).
    """
    if isinstance(source, pd.DataFrame):
        frame = source.copy()
        frame = frame.rename(columns=_check_header(frame.columns, "DataFrame"))
        return frame, "DataFrame"
    if not isinstance(source, (str, os.PathLike)):
        raise TrialDataError(f"cannot read trial data from a {type(source).__name__}; "
                             "pass a file path (CSV, Parquet, Excel) or a pandas DataFrame.")
    path = Path(source).expanduser()
    if not path.exists():
        raise TrialDataError(f"{path}: no such file.")
    if path.is_dir():
        raise TrialDataError(f"{path} is a directory; give the path of the data file in it.")
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        toml = (" (a TOML file here is an analysis spec, a monitoring plan, a sensitivity "
                "grid or historical control arms: bh.load_spec, bh.load_plan, bh.load_grid, "
                "bh.read_history)"
                if path.suffix.lower() == ".toml" else "")
        raise TrialDataError(f"{path}: unknown file type {path.suffix!r}; use one of "
                             f"{', '.join(sorted(_READERS))} or pass a DataFrame{toml}.")
    if path.stat().st_size == 0:
        raise TrialDataError(f"{path} is empty (0 bytes): no header and no patients.")
    if sheet is not None and kind != "excel":
        raise TrialDataError(f"{path}: sheet={sheet!r} applies to Excel workbooks only.")
    if encoding is not None and kind != "csv":
        raise TrialDataError(f"{path}: encoding={encoding!r} applies to text (CSV) files only.")
    try:
        if kind == "csv":
            enc = encoding or DEFAULT_ENCODING
            header = pd.read_csv(path, header=None, nrows=1, dtype=str, encoding=enc)
            _check_separator(path, header)
            renamed = _check_header(header.iloc[0].fillna("").tolist(), str(path))
            frame = pd.read_csv(path, dtype=_TEXT_COLUMNS, float_precision="round_trip",
                                encoding=enc)
        elif kind == "parquet":
            frame = pd.read_parquet(path)
            renamed = _check_header(frame.columns, str(path))
        else:
            with pd.ExcelFile(path) as book:
                if sheet is None and len(book.sheet_names) > 1:
                    n = len(book.sheet_names)
                    raise TrialDataError(f"{path}: the workbook has {n} sheets "
                                         f"({', '.join(map(repr, book.sheet_names))}); pass "
                                         "sheet=<name> to say which holds the patients.")
                if isinstance(sheet, str) and sheet not in book.sheet_names:
                    raise TrialDataError(f"{path}: no sheet {sheet!r}; sheets: "
                                         f"{', '.join(map(repr, book.sheet_names))}.")
                which = 0 if sheet is None else sheet
                header = pd.read_excel(book, sheet_name=which, header=None, nrows=1, dtype=str)
                renamed = _check_header(header.iloc[0].fillna("").tolist(), str(path))
                frame = pd.read_excel(book, sheet_name=which, dtype=_TEXT_COLUMNS)
    except UnicodeDecodeError as err:
        raise TrialDataError(_decode_hint(path, err)) from None
    except LookupError as err:  # an unknown encoding name
        raise TrialDataError(f"{path}: {err}; pass a Python codec name such as 'latin-1'.") \
            from None
    except pd.errors.EmptyDataError:
        raise TrialDataError(f"{path} has no columns (only blank lines).") from None
    except TrialDataError:
        raise
    except (ValueError, OSError, ImportError, pd.errors.ParserError) as err:
        raise TrialDataError(f"{path}: cannot be read as {kind} ({type(err).__name__}: {err})."
                             ) from None
    frame = frame.rename(columns={str(k): v for k, v in renamed.items()})
    return frame, str(path)


def read_trial(source, *, control: str = "sorafenib", treatment: str = "tace_sorafenib",
               time_unit: str = "months", zero_time_events: str = "error", sheet=None,
               encoding: str | None = None, assessments=None,
               date_format: str | None = None, columns: dict | None = None) -> TrialData:
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
          With the assessment history (a ``last_progression_free_date`` column, the
          last scan without progression, or ``assessments=``), progression is
          interval-censored between the last scan without it and ``progression_date``
          (the first scan showing it); TTP and PFS without an event are censored at the
          last scan, and death without progression censors TTP at the last scan (PFS is
          an exact event at death). See the data guide.
        * times: ``patient_id, site, arm`` and pairs ``os_time, os_event``,
          ``pfs_time, pfs_event``, ``ttp_time, ttp_event`` (any ``<name>_time`` /
          ``<name>_event`` pair is an endpoint; optional ``randomization_date``). An
          interval-censored endpoint is a ``<name>_lower, <name>_upper`` pair instead:
          upper empty = censored at lower; lower = upper = exact event; lower < upper =
          event in (lower, upper] (lower 0 = before the first assessment).

        Any further column is kept as a baseline covariate.
    control, treatment : str or int
        Arm labels as written in the ``arm`` column. Hazard ratios are
        hazard(treatment) / hazard(control). Numeric codes (``control=0, treatment=1``)
        are compared as numbers with a numeric column and stored as text ("0", "1").
    time_unit : {"months", "days", "weeks", "years"}, default "months"
        Unit of the times (times layout) or of the derived times (dates layout; one
        month = 30.4375 days).
    zero_time_events : {"error", "half_day"}, default "error"
        An event at time 0 (same-day death, say) has zero density under a Weibull model
        with shape > 1, so it is an error by default; ``"half_day"`` counts it at half a
        day, with a warning naming the patients. Censoring at time 0 is allowed (such a
        patient contributes no information).
    sheet : str or int, optional
        Sheet of an Excel workbook (required when it has more than one).
    encoding : str, optional
        Encoding of a CSV file; default UTF-8 (a byte-order mark is fine). A file that is
        not UTF-8 is an error asking for its encoding (``"latin-1"``, ``"cp949"``...).
    assessments : str, path or DataFrame, optional
        Tumour assessments (dates layout), one row per patient and scan: ``patient_id,
        assessment_date, progression`` (1 = the scan shows progression), like an ADaM ADRS
        extract. ``progression_date`` and ``last_progression_free_date`` are read from it
        (a ``progression_date`` given in the patient table must agree). Errors name the
        scans: unknown patients, duplicates, scans before randomization or after death, a
        scan without progression after one with it (progression is irreversible).
    date_format : str, optional
        How the dates are written when not as ISO 8601 (``YYYY-MM-DD``, the default), in
        ``strftime`` codes: ``"%d/%m/%Y"`` (day first), ``"%m/%d/%Y"`` (month first),
        ``"%Y. %m. %d."``. It applies to every ``*_date`` column and to the assessments; a
        value not in it may still be ISO 8601, else it is an error naming its row. An
        unparseable date's error suggests the format when the values show it (a day
        over 12 says which field is the day).
    columns : dict, optional
        Columns named otherwise in your file, as ``{name in the file: name read as}``:
        ``columns={"id": "patient_id", "time": "os_time", "status": "os_event",
        "centre": "site"}`` (the command line's ``--column time=os_time``); with
        ``assessments``, in both tables (``{"id": "patient_id", "scan_date":
        "assessment_date"}``). Every name must be a column of one of them; the files are
        not changed.

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
        For a site with fewer than 3 patients, an arm with no events, and implausible
    data (follow-up over 20 years: is the time unit right?; dates before 1950 or in the
    future; column names with surrounding spaces, which are stripped).
    """
    frame, label = read_table(source, sheet=sheet, encoding=encoding)
    if assessments is None:
        frame, = with_columns(columns, (frame, label))
    else:
        assessments, scans = read_table(assessments, encoding=encoding)
        frame, assessments = with_columns(columns, (frame, label), (assessments, scans))
        assessments = with_date_format(assessments, date_format, scans, required=False)
    frame = with_date_format(frame, date_format, label)
    return TrialData._from_raw(frame, control=control, treatment=treatment,
                               time_unit=time_unit, zero_time_events=zero_time_events,
                               source=label, assessments=assessments)
