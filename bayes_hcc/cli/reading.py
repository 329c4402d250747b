"""Reading a trial on the command line: the reading options every command that reads data
takes (declared once, added by ``reads_trial``), and messages whose fixes name those options
(``encoding='cp949'`` -> ``--encoding cp949``)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from bayes_hcc.data._checks import RENAME_FIX
from bayes_hcc.datasets import LOADERS
from bayes_hcc.errors import BayesHCCError, SpecError, TrialDataError
from bayes_hcc.sensitivity.grid import OVERRIDES_FIX

UNIT_HELP = ("Time unit of the data's times (times layout) or of the times derived from "
             "dates: days, weeks, months (default) or years. A bundled dataset is expressed "
             "in it.")


ASSESSMENTS_HELP = ("Tumour assessments (CSV, one row per patient and scan: patient_id, "
                    "assessment_date, progression): progression is then interval-censored "
                    "between scans.")


ENCODING_HELP = ("Encoding of a CSV file (default UTF-8), e.g. cp949 (Korean Windows) or "
                 "latin-1.")
SHEET_HELP = "Sheet of an Excel workbook (name or 0-based number) when it has several."
ZERO_HELP = ("Events at time 0 (same-day deaths): error (default) or half_day (counted at "
             "half a day, with a warning naming the patients).")

#: The options every command that reads a trial takes (declared once, added by
#: ``reads_trial``): name -> (type, default, flags, help).
_READ_OPTIONS = {
    "control": (str, "sorafenib", ("--control",), "Control arm label."),
    "treatment": (str, "tace_sorafenib", ("--treatment",), "Treatment arm label."),
    "adtte": (bool, False, ("--adtte",), "Read DATA as CDISC ADaM ADTTE."),
    "time_unit": (str, "months", ("--time-unit",), UNIT_HELP),
    "assessments": (Path, None, ("--assessments",), ASSESSMENTS_HELP),
    "encoding": (str, None, ("--encoding",), ENCODING_HELP),
    "sheet": (str, None, ("--sheet",), SHEET_HELP),
    "zero_time_events": (str, "error", ("--zero-time-events",), ZERO_HELP),
    "date_format": (str, None, ("--date-format",), "How the file's dates are written when "
                    "not YYYY-MM-DD, in strftime codes: %d/%m/%Y (day first), %m/%d/%Y, "
                    "%Y. %m. %d. ..."),
    "column": (list[str], None, ("--column",), "FILE_NAME=NAME reads a column named "
               "otherwise in the file as NAME (patient_id, site, arm, os_time, os_event, ...), "
               "repeatable: --column time=os_time --column status=os_event."),
    "paramcd": (list[str], None, ("--paramcd",), "With --adtte: CODE=ENDPOINT maps a "
                "PARAMCD to an endpoint (os, pfs, ttp), repeatable; default OS=os, PFS=pfs, "
                "TTP=ttp."),
    "arm_column": (str, None, ("--arm-column",), "With --adtte: the column holding the arm "
                   "(default TRT01P, else TRT01A, else ARM)."),
}


def reads_trial(command):
    """Give a command the trial-reading options of ``_READ_OPTIONS`` (after its own); it
    receives them as one ``read`` argument: ``read(data)`` is the trial."""
    import functools
    import inspect

    sig = inspect.signature(command)
    own = [p for p in sig.parameters.values() if p.name != "read"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                               default=typer.Option(default, *flags, help=text))
             for name, (kind, default, flags, text) in _READ_OPTIONS.items()]

    @functools.wraps(command)
    def wrapper(**kwargs):
        options = {name: kwargs.pop(name) for name in _READ_OPTIONS}

        def read(data):
            try:
                return load_data(data, **options)
            except BayesHCCError as err:  # its fixes as this command's options
                err.args = (message(err),) + err.args[1:]
                raise

        return command(read=read, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=own + added)
    return wrapper


def load_data(data: str, control: str = "sorafenib", treatment: str = "tace_sorafenib",
              adtte: bool = False, time_unit: str = "months", assessments: Path | None = None,
              encoding: str | None = None, sheet: str | None = None,
              zero_time_events: str = "error", date_format: str | None = None,
              paramcd: list[str] | None = None, arm_column: str | None = None,
              column: list[str] | None = None):
    """A bundled dataset name (example, veteran, leukemia, rats) or a file path, read with
    the command line's options."""
    from bayes_hcc.data import read_adtte, read_trial
    from bayes_hcc.units import check_time_unit

    time_unit = check_time_unit(time_unit)
    if Path(data).suffix.lower() == ".toml":
        raise TrialDataError(_toml_as_data(Path(data)))
    if data in LOADERS and not Path(data).exists():
        given = [flag for flag, value in (
            ("--adtte", adtte), ("--assessments", assessments), ("--encoding", encoding),
            ("--sheet", sheet), ("--zero-time-events", zero_time_events != "error"),
            ("--date-format", date_format), ("--column", column),
            ("--paramcd", paramcd), ("--arm-column", arm_column)) if value]
        if given:
            raise TrialDataError(f"{', '.join(given)} apply to reading a file; {data!r} is a "
                                 "bundled dataset, read as it is (give a file's path to "
                                 "read your own data).")
        trial = LOADERS[data]()
        return trial if trial.time_unit == time_unit else trial.to_unit(time_unit)
    adtte_only = [flag for flag, value in (("--paramcd", paramcd), ("--arm-column", arm_column))
                  if value]
    if adtte_only and not adtte:
        raise TrialDataError(f"{' and '.join(adtte_only)} apply to ADaM ADTTE data only; "
                             "pass --adtte to read DATA as ADTTE.")
    if sheet is not None and sheet.isdigit():
        sheet = int(sheet)
    common = dict(control=control, treatment=treatment, time_unit=time_unit,
                  assessments=assessments, encoding=encoding, sheet=sheet,
                  zero_time_events=zero_time_events)
    if adtte:
        if date_format is not None:
            raise TrialDataError("--date-format applies to a trial file's dates; ADaM ADTTE "
                                 "dates are SAS dates or ISO 8601.")
        if column:
            raise TrialDataError("--column applies to a trial file; ADaM ADTTE has its own "
                                 "variable names (--arm-column, --paramcd).")
        return read_adtte(data, paramcd=_paramcd(paramcd), arm_column=arm_column, **common)
    return read_trial(data, date_format=date_format,
                      columns=_pairs("--column", column, "FILE_NAME=NAME",
                                     "--column time=os_time --column status=os_event"),
                      **common)


def _toml_as_data(path: Path) -> str:
    """What a TOML file given as DATA is (a spec, a plan or a grid: TOML is never trial
    data here), and where the command line takes it."""
    import tomllib

    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        doc = {}
    if "variants" in doc or "base" in doc:
        what = ("a sensitivity grid: `bayes-hcc sensitivity GRID DATA` takes it first, then "
                "the trial")
    elif "looks" in doc:
        what = ("a monitoring plan: pass it as --plan (`bayes-hcc monitor DATA --plan PLAN`, "
                "`bayes-hcc design --plan PLAN`)")
    elif "arm" in doc:
        what = ("historical control arms: `bayes-hcc map-prior HISTORY` builds a prior from "
                "them")
    elif doc:
        what = "an analysis spec: pass it as --spec (`bayes-hcc fit DATA --spec SPEC --out DIR`)"
    else:
        what = ("TOML (an analysis spec goes after --spec, a monitoring plan after --plan, a "
                "sensitivity grid first in `bayes-hcc sensitivity GRID DATA`)")
    names = ", ".join(sorted(LOADERS))
    return (f"{path} was given as DATA, the trial; it is {what}. DATA is a trial file (CSV, "
            f"Parquet, Excel; ADaM ADTTE with --adtte) or a bundled dataset ({names}).")


def _paramcd(pairs: list[str] | None) -> dict[str, str] | None:
    """``--paramcd OS=os --paramcd PFSINV=pfs`` as read_adtte's mapping."""
    return _pairs("--paramcd", pairs, "CODE=ENDPOINT", "--paramcd OS=os --paramcd PFSINV=pfs")


def _pairs(flag: str, pairs: list[str] | None, form: str, example: str) -> dict | None:
    """A repeatable ``flag A=B`` option as a mapping {A: B}."""
    if not pairs:
        return None
    bad = [p for p in pairs if p.count("=") != 1 or not all(x.strip() for x in p.split("="))]
    if bad:
        raise TrialDataError(f"{flag} {', '.join(map(repr, bad))}: give {form}, e.g. "
                             f"{example}.")
    return dict(tuple(x.strip() for x in p.split("=")) for p in pairs)


def toml_pairs(flag: str, pairs: list[str] | None) -> dict | None:
    """A repeatable ``flag KEY=VALUE`` option as {KEY: value}, the value read as a TOML value
    (``3``, ``true``, ``{ dist = "Normal", sigma = 2 }``) and otherwise as text
    (``none``)."""
    import tomllib

    if not pairs:
        return None
    bad = [p for p in pairs if "=" not in p or not all(x.strip() for x in p.split("=", 1))]
    if bad:
        raise SpecError(f"{flag} {', '.join(map(repr, bad))}: give KEY=VALUE, e.g. "
                        f"{flag} site.effect=none.")
    out = {}
    for p in pairs:
        key, value = (x.strip() for x in p.split("=", 1))
        try:
            out[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = value
    return out


#: Fixes written for the Python API, as a command-line user gives them.
_CLI_WORDS = {"pass read_trial(..., control=..., treatment=...)":
              "pass --control and --treatment",
              "pass overwrite=True": "pass --overwrite",
              "interim_analysis: ppos_method is for": "--method is for",
              "interim_analysis: ppos=True and ppos_method are for":
              "--ppos and --method are for",
              "interim_analysis: ppos=True is for": "--ppos is for",
              "pass ppos=True (--ppos) too": "pass --ppos too",
              "interim_analysis: ppos_method=": "--method ",
              "Pass paramcd={...}": "Pass --paramcd CODE=ENDPOINT",
              "pass paramcd={'YOURCODE': 'os', ...}": "pass --paramcd YOURCODE=os",
              RENAME_FIX: "Columns named otherwise in the file: pass --column "
              "'your name=os_time' (repeatable).",
              OVERRIDES_FIX: "--override KEY=VALUE changes the base spec of every variant "
              "(e.g. --override site.effect=none for a single-centre trial)"}

#: Keyword arguments that messages name and that are command-line options of the commands
#: whose errors name them: the reading options and the sampler settings of ``fit``.
_KEYWORD_OPTIONS = {**{name: flags[0] for name, (_, _, flags, _) in _READ_OPTIONS.items()},
                    "draws": "--draws", "tune": "--tune", "chains": "--chains",
                    "seed": "--seed"}


def _keyword_pattern(options: dict) -> re.Pattern:
    return re.compile(r"(?<![\w.])(" + "|".join(options)
                      + r")=('[^']*'|\"[^\"]*\"|<[^>]*>|[-\w.]+)")


_KEYWORD = _keyword_pattern(_KEYWORD_OPTIONS)


def as_options(text: str, extra: dict | None = None) -> str:
    """Keyword arguments in a message as command-line options: ``encoding='cp949'`` ->
    ``--encoding cp949``, ``tune=-5`` -> ``--tune -5``, ``sheet=<name>`` -> ``--sheet
    <name>`` (``random_seed=`` or ``sampler.draws`` are left as they are). ``extra``: more
    keyword -> option pairs, for a command that has those options (``fit``'s
    ``--site-effect``)."""
    options = {**_KEYWORD_OPTIONS, **(extra or {})}
    pattern = _keyword_pattern(options) if extra else _KEYWORD
    return pattern.sub(lambda m: f"{options[m[1]]} {m[2].strip(chr(39) + chr(34))}", text)


def message(err, extra: dict | None = None) -> str:
    """An error's (or a warning's) message with its fixes as a command-line user gives
    them (``extra``: as ``as_options``)."""
    text = str(err)
    for api, cli in _CLI_WORDS.items():
        text = text.replace(api, cli)
    return as_options(text, extra)
