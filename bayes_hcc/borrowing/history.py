"""Historical control arms: the data a meta-analytic-predictive (MAP) prior is built from.

Each historical arm is reduced to events and exposure (patient-months at risk) under a
constant hazard, the sufficient statistics of its log hazard (RBesT's Poisson form). Three
input forms:

(a) ``events`` and ``exposure``, as published or computed;
(b) a published ``median`` with its CI (``median_lower``, ``median_upper``, level
    ``ci_level``, default 0.95) and the number of patients ``n``. Under a constant hazard
    lambda = log 2 / median, and the log of the estimated median has standard error
    1 / sqrt(d) with d events, so the CI gives d = (2 z / log(upper / lower))^2
    (z the normal quantile of the level) and the exposure is d / lambda. d is capped at n
    (with a DataWarning): a CI narrower than n events allow is not a constant hazard;
(c) patient-level data, a :class:`~bayes_hcc.TrialData` (read, simulated or reconstructed
    from a published figure by ``bh.reconstruct_trial``): events and exposure of its control
    arm.

Every arm needs a ``study`` name and a ``source`` (journal, year, table or page). An arm may
give its own ``time_unit`` (as published: SHARP's label reports weeks, its paper months);
otherwise the history's applies.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from bayes_hcc.errors import DataWarning, SpecError, TrialDataError, user_path, warn
from bayes_hcc.units import check_time_unit, convert

__all__ = ["HistoricalArm", "History", "read_history"]

FORM_A = ("events", "exposure")
FORM_B = ("median", "median_lower", "median_upper", "n")
#: every field a historical arm's record may give (other fields are the user's own notes)
FIELDS = ("study", "source", *FORM_A, *FORM_B, "ci_level", "time_unit", "trial", "endpoint",
          "arm", "interval_start", "interval_end")
#: names that mean a field, as tables are often written
_ALIASES = {"unit": "time_unit", "units": "time_unit", "level": "ci_level",
            "conf_level": "ci_level", "confidence_level": "ci_level", "patients": "n",
            "n_patients": "n", "deaths": "events"}
#: A median's CI whose log distances above and below it differ more than this many times
#: is named in a DataWarning (published ones are within about 2:1).
ASYMMETRY = 4.0


@dataclass(frozen=True)
class HistoricalArm:
    """One historical control arm as events and exposure (months) under a constant hazard."""

    study: str
    source: str
    events: float
    exposure: float
    form: str
    detail: str = ""
    reconstructed: bool = False
    #: per-interval rows (start, end, events, exposure) in months, when given (form a)
    intervals: np.ndarray | None = field(default=None, repr=False)
    #: the control arm's patients (time in months, event), for form (c)
    patients: tuple | None = field(default=None, repr=False)

    def per_interval(self, edges) -> tuple[np.ndarray, np.ndarray]:
        """Events and exposure (months) in each interval [edges_j, edges_j+1) (the last
        edge may be inf): from the patients, or from per-interval rows on the same edges."""
        edges = np.asarray(edges, float)
        if self.patients is not None:
            return events_exposure(*self.patients, edges)
        if self.intervals is not None:
            given = self.intervals[:, :2]
            want = np.column_stack([edges[:-1], edges[1:]])
            if given.shape != want.shape or not np.allclose(
                    np.where(np.isinf(given), 1e300, given), np.where(np.isinf(want), 1e300, want)):
                raise SpecError(f"history: study {self.study!r} gives events and exposure on the "
                                f"intervals {_intervals_text(given)}; the analysis cuts make "
                                f"{_intervals_text(want)}: give them on those intervals.")
            return self.intervals[:, 2].copy(), self.intervals[:, 3].copy()
        raise SpecError(f"history: study {self.study!r} gives only {self.form} (a constant "
                        "hazard over all follow-up); a per-interval MAP prior needs events and "
                        "exposure per interval of the cuts (interval_start, interval_end) or "
                        "patient-level data.")

    @property
    def log_rate(self) -> float:
        return float(np.log(self.events / self.exposure))

    @property
    def median(self) -> float:
        return float(np.log(2) * self.exposure / self.events)


def events_exposure(time, event, edges) -> tuple[np.ndarray, np.ndarray]:
    """Events and exposure of patients (time, event) in the intervals between ``edges``
    (an event at an edge belongs to the interval it ends, as in the piecewise model)."""
    t, e = np.asarray(time, float), np.asarray(event)
    lo, hi = np.asarray(edges[:-1], float), np.asarray(edges[1:], float)
    expo = np.clip(t[:, None], lo, hi) - lo
    inside = (t[:, None] > lo) & (t[:, None] <= hi)
    inside[:, 0] |= t == lo[0]
    return (inside & (e[:, None] == 1)).sum(axis=0).astype(float), expo.sum(axis=0)


def _intervals_text(rows) -> str:
    return ", ".join(f"[{a:g}, {b:g})" for a, b in rows)


def _interval_arm(study: str, rows: list, time_unit: str) -> HistoricalArm:
    """Form (a) per interval: several rows of one study with interval_start, interval_end,
    events and exposure."""
    source = {str(r.get("source") or "").strip() for r in rows}
    if len(source) != 1 or not next(iter(source)):
        raise SpecError(f"history: study {study!r}: every interval row needs the same, "
                        "non-empty 'source'.")
    out = []
    for r in rows:
        a, d, e = (_number(r, k, study) for k in ("interval_start", "events", "exposure"))
        # the last interval may run to the end of follow-up: empty or inf
        end = r.get("interval_end")
        b = np.inf if not _present(r, "interval_end") or end in (np.inf, "inf") \
            else _number(r, "interval_end", study)
        if d < 0 or e < 0 or not b > a:
            raise SpecError(f"history: study {study!r}: interval [{a:g}, {b:g}) needs end > "
                            f"start, events >= 0 and exposure >= 0.")
        out.append([float(convert(a, time_unit, "months")),
                    float(convert(b, time_unit, "months")) if np.isfinite(b) else np.inf,
                    d, float(convert(e, time_unit, "months"))])
    arr = np.array(sorted(out), float)
    if arr[0, 0] != 0 or np.any(arr[1:, 0] != arr[:-1, 1]):
        raise SpecError(f"history: study {study!r}: the intervals {_intervals_text(arr[:, :2])} "
                        "must start at 0 and follow each other without gaps.")
    d, e = float(arr[:, 2].sum()), float(arr[:, 3].sum())
    return HistoricalArm(study, next(iter(source)), d, e, "events/exposure per interval",
                         f"{d:g} events over {e:.4g} patient-months in {len(arr)} intervals",
                         intervals=arr)


def _number(rec, key, study, allow_missing=False):
    value = rec.get(key)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        if allow_missing:
            return None
        raise SpecError(f"history: study {study!r} needs {key}.")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"history: study {study!r}: {key} = {value!r} is not a number.") \
            from None
    if not np.isfinite(value):
        raise SpecError(f"history: study {study!r}: {key} = {value!r} must be finite.")
    return value


def _row_unit(rec, default: str) -> str:
    """A row's own ``time_unit`` (arms are published in weeks, months or days), else the
    history's."""
    if not _present(rec, "time_unit") or not str(rec["time_unit"]).strip():
        return default
    try:
        return check_time_unit(str(rec["time_unit"]).strip())
    except TrialDataError as err:
        raise SpecError(f"history: study {str(rec.get('study') or '?')!r}: {err}") from None


def _present(rec, key) -> bool:
    v = rec.get(key)
    return v is not None and not (isinstance(v, float) and np.isnan(v))


def _meant_field(name: str) -> str | None:
    """The field a name not among ``FIELDS`` was probably meant to be (case, spaces,
    hyphens, a common alias or a typo), or None."""
    key = re.sub(r"[\s\-.]+", "_", str(name).strip().lower())
    if key in FIELDS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    close = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.8)
    return close[0] if close else None


def _check_field_names(records) -> None:
    """Refuse a field written so that its value would be left out silently: a name that
    means one of ``FIELDS`` (``CI_level``, ``ci level``, ``unit``, ``exposre``) where the
    record has no such field (a 90% CI read as 95%, weeks read as months). Other unknown
    fields (notes, links) are the user's own and kept out of the analysis."""
    problems = {}
    for rec in records:
        for name in rec:
            if name in FIELDS:
                continue
            meant = _meant_field(name)
            if meant is not None and meant not in rec:
                problems.setdefault((name, meant), []).append(
                    str(rec.get("study") or "?").strip())
    if problems:
        lines = [f"field {name!r} (studies {', '.join(studies)}) is not read: rename it "
                 f"{meant!r}" for (name, meant), studies in problems.items()]
        raise SpecError("history: " + "; ".join(lines) + ". The fields of a historical arm "
                        f"are {', '.join(FIELDS)}; other fields are kept out of the analysis.")


def _arm_from_record(rec: dict, time_unit: str) -> HistoricalArm:
    study = str(rec.get("study") or "").strip()
    if not study:
        raise SpecError("history: every historical arm needs a 'study' name.")
    source = rec.get("source")
    if source is None or (isinstance(source, float) and np.isnan(source)) or \
            not str(source).strip():
        raise SpecError(f"history: study {study!r} needs a 'source' (journal, year, table "
                        "or page): borrowed numbers must be traceable.")
    source = str(source).strip()
    trial = rec.get("trial")
    if trial is not None:
        return _arm_from_trial(study, source, trial, rec.get("endpoint", "os"),
                               rec.get("arm"))
    has_a = [k for k in FORM_A if _present(rec, k)]
    has_b = [k for k in FORM_B if _present(rec, k)]
    if has_a and has_b:  # (n alone was called "a median" here)
        raise SpecError(f"history: study {study!r} gives {', '.join(has_a)} (events and "
                        f"exposure) and {', '.join(has_b)} (a median with its CI and n): "
                        "give one form per arm.")
    if has_a:
        d, e = (_number(rec, k, study) for k in FORM_A)
        if d < 0 or e <= 0:
            raise SpecError(f"history: study {study!r}: events must be >= 0 and exposure "
                            f"> 0 (got {d:g}, {e:g}).")
        e = float(convert(e, time_unit, "months"))
        return HistoricalArm(study, source, d, e, "events/exposure",
                             f"{d:g} events over {e:.4g} patient-months")
    if has_b:
        m, lo, hi, n = (_number(rec, k, study) for k in FORM_B)
        if n < 1 or n != int(n):  # n = 0 capped the arm at 0 events over 0 months
            raise SpecError(f"history: study {study!r}: n = {n:g} must be the arm's number "
                            "of patients, a whole number >= 1.")
        level = _number(rec, "ci_level", study, allow_missing=True)
        level = 0.95 if level is None else level  # (a ci_level of 0 was read as 0.95)
        if not 0 < lo < m < hi:
            raise SpecError(f"history: study {study!r}: the median's CI must surround it "
                            f"(got {lo:g} < {m:g} < {hi:g}?).")
        if not 0 < level < 1:
            raise SpecError(f"history: study {study!r}: ci_level = {level:g} must lie in "
                            "(0, 1).")
        m, lo, hi = (float(convert(x, time_unit, "months")) for x in (m, lo, hi))
        # a constant hazard gives a CI symmetric around the median on the log scale, and a
        # published (log-log) KM CI is near it (SHARP 1.8:1, Asia-Pacific 1:1); far from it
        # is more likely a typo (7.0 entered as 20) than a curve
        up, down = np.log(hi / m), np.log(m / lo)
        if max(up / down, down / up) > ASYMMETRY:
            warn(f"history: study {study!r}: the median's CI ({lo:.3g}-{hi:.3g} around "
                 f"{m:.3g} months) is {max(up / down, down / up):.0f} times farther from it "
                 f"{'above' if up > down else 'below'} than {'below' if up > down else 'above'}"
                 " on the log scale; check the numbers (a typo?): the events it implies come "
                 "from its width alone.", DataWarning)
        z = stats.norm.ppf(0.5 + level / 2)
        d = (2 * z / np.log(hi / lo)) ** 2
        note = ""
        if d > n:
            warn(f"history: study {study!r}: the median's CI implies {d:.0f} events, "
                          f"more than its {n:g} patients; capped at {n:g} (a constant hazard "
                          "does not fit this CI well).", DataWarning)
            note = f"; capped at n = {n:g}"
            d = float(n)
        rate = np.log(2) / m
        return HistoricalArm(study, source, float(d), float(d / rate), "median+CI",
                             f"median {m:.3g} months ({100 * level:g}% CI {lo:.3g}-{hi:.3g}), "
                             f"n = {n:g}: {d:.1f} effective events{note}")
    raise SpecError(f"history: study {study!r} needs events and exposure, or median, "
                    "median_lower, median_upper and n, or a trial (TrialData).")


def _arm_from_trial(study, source, trial, endpoint, arm) -> HistoricalArm:
    from bayes_hcc.data.trial import TrialData

    if not isinstance(trial, TrialData):
        raise SpecError(f"history: study {study!r}: 'trial' must be a TrialData "
                        "(bh.read_trial, bh.reconstruct_trial).")
    ep = trial.endpoint(endpoint)
    if ep.has_bounds:
        raise SpecError(f"history: study {study!r}: {endpoint} is interval-censored; give "
                        "events and exposure instead.")
    label = trial.control if arm is None else str(arm)
    if label not in trial.arms:
        raise SpecError(f"history: study {study!r}: arm {label!r} is not one of "
                        f"{list(trial.arms)}.")
    mask = ep.arm == trial.arms.index(label)
    t = np.asarray(convert(ep.time[mask], trial.time_unit, "months"), float)
    ev = np.asarray(ep.event[mask], int)
    d, e = float(ev.sum()), float(t.sum())
    kind = "reconstructed patients" if trial.is_reconstructed else "patient-level data"
    return HistoricalArm(study, source, d, e, kind,
                         f"{kind}: arm {label!r}, {int(mask.sum())} patients, {d:g} events "
                         f"over {e:.4g} patient-months",
                         reconstructed=trial.is_reconstructed, patients=(t, ev))


class History:
    """Historical control arms for a MAP prior (module docstring: the three input forms).

    ``History(records, time_unit="months")``: records are dicts (or DataFrame rows) with
    ``study``, ``source`` and one form's fields; ``trial=`` a TrialData for form (c).
    """

    def __init__(self, records, *, time_unit: str = "months"):
        time_unit = check_time_unit(time_unit)
        if isinstance(records, Mapping):  # one arm's record, or columns of several
            columns = all(np.ndim(v) == 1 for v in records.values())
            lengths = {len(v) for v in records.values()} if columns else set()
            if len(lengths) > 1:
                raise SpecError(f"history: the columns given have different lengths "
                                f"({', '.join(f'{k}: {len(v)}' for k, v in records.items())}); "
                                "give one value per arm in every column.")
            records = pd.DataFrame(records) if columns else [records]
        if isinstance(records, pd.DataFrame):
            records = records.to_dict("records")
        if isinstance(records, (str, bytes)) or not hasattr(records, "__iter__") or \
                not all(isinstance(r, Mapping) for r in records):
            # a TrialData itself was "'TrialData' object is not iterable"
            raise SpecError("history: give the arms as a list of records (one dict per arm: "
                            "study, source and one form's fields; a trial's control arm as "
                            "{'study': ..., 'source': ..., 'trial': trial}), a DataFrame, or "
                            "bh.read_history(path) for a CSV or TOML file"
                            + (f"; got {type(records).__name__}" if not
                               hasattr(records, "__iter__") else "") + ".")
        records = [dict(r) for r in records]
        if not records:
            raise SpecError("history: no historical arms given.")
        _check_field_names(records)
        arms, seen = [], set()
        for r in records:
            if _present(r, "interval_start"):  # per-interval rows: one arm per study
                study = str(r.get("study") or "").strip()
                if not study:
                    raise SpecError("history: every historical arm needs a 'study' name.")
                if study in seen:
                    continue
                seen.add(study)
                rows = [x for x in records if str(x.get("study") or "").strip() == study]
                if not all(_present(x, "interval_start") for x in rows):
                    raise SpecError(f"history: study {study!r} mixes per-interval rows with "
                                    "an overall row: give one or the other.")
                units = {_row_unit(x, time_unit) for x in rows}
                if len(units) > 1:
                    raise SpecError(f"history: study {study!r}: its interval rows give "
                                    f"different time units {sorted(units)}: use one.")
                arms.append(_interval_arm(study, rows, units.pop()))
            else:
                arms.append(_arm_from_record(r, _row_unit(r, time_unit)))
        # in study order, whatever the order of the rows: the same arms give the same
        # fingerprint and, with the same seed, the same MAP draws
        self.arms = tuple(sorted(arms, key=lambda a: a.study))
        names = [a.study for a in self.arms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SpecError(f"history: study name(s) {', '.join(dup)} appear twice; each "
                            "historical arm needs its own name.")
        self.time_unit = time_unit

    def __len__(self) -> int:
        return len(self.arms)

    @property
    def events(self) -> np.ndarray:
        return np.array([a.events for a in self.arms], float)

    @property
    def exposure(self) -> np.ndarray:
        """Patient-months at risk per arm."""
        return np.array([a.exposure for a in self.arms], float)

    def per_interval(self, edges) -> tuple[np.ndarray, np.ndarray]:
        """Events and exposure, (arms, intervals), on the intervals between ``edges``
        (months; the last may be inf)."""
        parts = [a.per_interval(edges) for a in self.arms]
        return (np.array([p[0] for p in parts], float), np.array([p[1] for p in parts], float))

    @property
    def fingerprint(self) -> str:
        body = "\n".join(f"{a.study}|{a.source}|{a.events!r}|{a.exposure!r}|{a.form}"
                         + ("" if a.intervals is None else "|" + a.intervals.tobytes().hex())
                         + ("" if a.patients is None else "|" + a.patients[0].tobytes().hex()
                            + a.patients[1].tobytes().hex())
                         for a in self.arms)
        return hashlib.sha256(body.encode()).hexdigest()

    def table(self) -> pd.DataFrame:
        """One row per arm: form, events, exposure (months), log hazard with its 95% CI
        (normal on the log, SE 1/sqrt(events)), the constant-hazard median, the source."""
        rows = []
        for a in self.arms:
            se = 1 / np.sqrt(a.events) if a.events > 0 else np.inf
            rows.append({"study": a.study, "form": a.form, "events": a.events,
                         "exposure_months": a.exposure, "log_hazard": a.log_rate
                         if a.events > 0 else -np.inf,
                         "lower": a.log_rate - 1.96 * se if a.events > 0 else -np.inf,
                         "upper": a.log_rate + 1.96 * se if a.events > 0 else np.inf,
                         "median_months": a.median if a.events > 0 else np.inf,
                         "source": a.source, "detail": a.detail})
        return pd.DataFrame(rows).set_index("study")

    def __repr__(self) -> str:
        with pd.option_context("display.width", 120, "display.float_format", "{:.3g}".format):
            table = self.table()[["form", "events", "exposure_months", "median_months",
                                  "source"]]
            table["source"] = [s if len(s) <= 60 else s[:59] + "…" for s in table["source"]]
            return (f"History | {len(self)} historical control "
                    f"arm{'s' if len(self) != 1 else ''} (full sources: "
                    ".table())\n" + table.to_string())


def read_history(path, *, time_unit: str = "months") -> History:
    """Historical control arms from a CSV (one row per arm) or a TOML file (``[[arm]]``
    tables), with the columns of :class:`History` (``study``, ``source``, and events and
    exposure, or median, median_lower, median_upper, n and optionally ci_level);
    ``time_unit`` is the unit of the exposures and medians (TOML: a top-level
    ``time_unit`` key overrides it)."""
    path = user_path(path, "read_history", "a history file (CSV or TOML)")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file.")
    if path.suffix.lower() == ".toml":
        from bayes_hcc.spec.kinds import kind_hint
        from bayes_hcc.spec.model_spec import read_toml

        doc = read_toml(path, "history")
        unknown = set(doc) - {"arm", "time_unit"}
        if unknown or "arm" not in doc:
            raise SpecError(f"{path}: a history file has [[arm]] tables and optionally "
                            f"time_unit" + (f"; unknown key(s) {sorted(unknown)}" if unknown
                                            else "") + kind_hint(doc, "bh.read_history") + ".")
        return History(doc["arm"], time_unit=doc.get("time_unit", time_unit))
    frame = pd.read_csv(path, comment="#")
    return History(frame, time_unit=time_unit)
