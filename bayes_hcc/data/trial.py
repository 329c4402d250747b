"""TrialData: the validated, immutable patient table, and the Endpoint view models consume."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_hcc.data._build import (DATE_COLUMNS, DAYS_PER_UNIT, LPF_COLUMN,
                                   STANDARD_ENDPOINTS, arm_label, build_canonical,
                                   canonical_frame, check_time_unit, times_from_dates,
                                   warn_small, zero_time_events_at_half_day)
from bayes_hcc.data._checks import calendar_date
from bayes_hcc.data.assessments import first_positive_last_negative
from bayes_hcc.errors import TrialDataError, bool_flags

__all__ = ["TrialData", "Endpoint", "require_trial"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


#: Observation kinds (``Endpoint.kind``), read by ``models.likelihood``: right-censored at
#: t, exact event at t, event in (L, R] with L > 0, event in (0, R] (before the first
#: assessment: left-censored).
RIGHT, EXACT, INTERVAL, LEFT = 0, 1, 2, 3
#: How an analysis treats interval-censored events (``censoring=`` of a model): the
#: likelihood of (L, R], or the classical imputations at the midpoint, the assessment that
#: showed the event (R), or the last one without it (L).
CENSORING = ("interval", "midpoint", "upper", "lower")


@dataclass(frozen=True, eq=False)
class Endpoint:
    """One endpoint as arrays: what a survival model needs.

    Attributes
    ----------
    name : str
        ``"os"``, ``"pfs"``, ``"ttp"`` (or another endpoint of the data).
    time, event : ndarray
        Follow-up time in ``time_unit`` and 1 = event, 0 = censored. For an
        interval-censored event, ``time`` is R, the assessment that showed it.
    arm : ndarray of int
        0 = control, 1 = treatment.
    site : ndarray of int
        Index into ``sites``.
    interval_lower : ndarray, optional
        L of (L, R] for interval-censored events (NaN elsewhere); None when every event
        time is exact.
    """

    name: str
    time: np.ndarray
    event: np.ndarray
    arm: np.ndarray
    site: np.ndarray
    patient_id: np.ndarray
    arms: tuple[str, str]
    sites: tuple[str, ...]
    time_unit: str
    covariates: pd.DataFrame = field(repr=False)
    interval_lower: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.time)

    @property
    def n_events(self) -> int:
        return int(self.event.sum())

    # -- the view the censored likelihood reads (``models.likelihood``) ---------------------
    @property
    def interval(self) -> np.ndarray:
        """True for the patients whose event is known only to lie in (L, R]."""
        if self.interval_lower is None:
            return np.zeros(len(self.time), bool)
        lo = np.asarray(self.interval_lower, float)
        with np.errstate(invalid="ignore"):
            return (np.asarray(self.event) == 1) & np.isfinite(lo) & (lo < self.time)

    @property
    def has_bounds(self) -> bool:
        """Whether some event is interval-censored."""
        return bool(self.interval.any())

    @property
    def kind(self) -> np.ndarray:
        """Observation kind per patient: RIGHT (0, censored), EXACT (1, event), INTERVAL
        (2, event in (lower, upper]) or LEFT (3, event in (0, upper])."""
        kind = np.where(np.asarray(self.event) == 1, EXACT, RIGHT).astype(np.int64)
        iv = self.interval
        if iv.any():
            kind[iv] = np.where(np.asarray(self.interval_lower)[iv] > 0, INTERVAL, LEFT)
        return kind

    @property
    def lower(self) -> np.ndarray:
        """Event or censoring time; for an interval-censored patient the last time known
        event-free (L of (L, R])."""
        t = np.asarray(self.time, float)
        return np.where(self.interval, self.interval_lower, t) if self.has_bounds else t

    @property
    def upper(self) -> np.ndarray:
        """Latest time the event can have happened: the event time for an exact event, R
        for an interval-censored one, infinity for a censored patient."""
        return np.where(np.asarray(self.event) == 1, np.asarray(self.time, float), np.inf)

    def with_censoring(self, censoring: str = "interval") -> Endpoint:
        """The endpoint as an analysis with ``censoring`` sees it (``CENSORING``):
        ``"interval"`` keeps the bounds; ``"midpoint"``, ``"upper"`` and ``"lower"`` impute
        each interval-censored event at (L + R) / 2, R or L as an exact event time (an
        imputation at L = 0 is put at half a day, as ``zero_time_events="half_day"``)."""
        import dataclasses

        from bayes_hcc.units import DAYS_PER_UNIT

        if censoring not in CENSORING:
            raise TrialDataError(f"censoring={censoring!r}; choose one of "
                                 f"{', '.join(CENSORING)}.")
        if censoring == "interval" or not self.has_bounds:
            return self
        iv, lo, t = self.interval, self.lower, np.asarray(self.time, float)
        imputed = {"midpoint": (lo + t) / 2, "upper": t, "lower": lo}[censoring]
        imputed = np.maximum(imputed, 0.5 / DAYS_PER_UNIT[self.time_unit])
        return dataclasses.replace(self, time=_readonly(np.where(iv, imputed, t)),
                                   interval_lower=None)

    @property
    def entry(self) -> np.ndarray:
        """Time of entry into the risk set (delayed entry / left truncation); 0 here: every
        patient is at risk from randomization."""
        return np.zeros(len(self.time))


class TrialData:
    """A validated two-arm, multi-site time-to-event trial (immutable).

    Patients are held in a canonical order, sorted by ``patient_id`` (as text), whatever the
    order of the input rows: the same patients give the same fingerprint and, with the same
    model and seed, the same draws. Error messages about input rows count the input's rows.

    Build it with :func:`bayes_hcc.read_trial`, :func:`bayes_hcc.read_adtte` or
    :func:`bayes_hcc.simulate_trial`, not directly.
    """

    def __init__(self, frame: pd.DataFrame, *, endpoints, control: str, treatment: str,
                 time_unit: str, layout: str, cut_date=None, truth=None,
                 source: str = "trial data", assessments: pd.DataFrame | None = None):
        # Canonical order (patient id): row order changes neither the draws (sums over
        # patients run in this order) nor the fingerprint.
        self._frame = frame.sort_values("patient_id", kind="stable").reset_index(drop=True)
        self._frame.flags.allows_duplicate_labels = False
        self.endpoints = tuple(endpoints)
        self.control = control
        self.treatment = treatment
        self.time_unit = time_unit
        self.layout = layout
        self.cut_date = None if cut_date is None else pd.Timestamp(cut_date)
        self.truth = truth
        self.source = source
        self._assessments = assessments
        self._fingerprint = None
        self._views: dict = {}  # sites and endpoints, built once (the data are immutable)
        #: arm -> ArmReconstruction when the patients were rebuilt from published curves
        #: (:func:`bayes_hcc.reconstruct_trial`), else None
        self.reconstruction = None

    def with_reconstruction(self, reconstruction) -> TrialData:
        """These data marked as reconstructed from published curves (``reconstruction``:
        arm -> :class:`~bayes_hcc.data.reconstruct.ArmReconstruction`)."""
        out = TrialData(self._frame, endpoints=self.endpoints, control=self.control,
                        treatment=self.treatment, time_unit=self.time_unit, layout=self.layout,
                        cut_date=self.cut_date, truth=self.truth, source=self.source,
                        assessments=self._assessments)
        out.reconstruction = None if reconstruction is None else dict(reconstruction)
        return out

    @property
    def is_reconstructed(self) -> bool:
        """True when the patients were rebuilt from published Kaplan-Meier curves."""
        return bool(self.reconstruction)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_table(cls, raw: pd.DataFrame, *, control, treatment, time_unit: str = "months",
                   zero_time_events: str = "error", source: str = "trial data", cut_date=None,
                   truth=None, layout: str | None = None, warn: bool = True,
                   assessments=None) -> TrialData:
        """Validate a patient table (dates or times layout) into a TrialData: what
        :func:`read_trial` does after reading a file, for code that builds the table itself
        (simulated and completed trials). ``warn=False`` leaves the DataWarnings out."""
        return cls._from_raw(raw, control=control, treatment=treatment, time_unit=time_unit,
                             zero_time_events=zero_time_events, source=source,
                             cut_date=cut_date, truth=truth, layout=layout, warn=warn,
                             assessments=assessments)

    @classmethod
    def _from_raw(cls, raw, *, control, treatment, time_unit, zero_time_events="error",
                  source="trial data", cut_date=None, truth=None, layout=None, warn=True,
                  assessments=None):
        frame, endpoints, layout, assessments = build_canonical(
            raw, control=control, treatment=treatment, time_unit=time_unit,
            zero_time_events=zero_time_events, source=source, layout=layout,
            assessments=assessments)
        control, treatment = arm_label(control), arm_label(treatment)
        time_unit = check_time_unit(time_unit)
        if warn:
            warn_small(frame, endpoints, control, treatment)
        return cls(frame, endpoints=endpoints, control=control, treatment=treatment,
                   time_unit=time_unit, layout=layout, cut_date=cut_date, truth=truth,
                   source=source, assessments=assessments)

    # -- basic views ----------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """A copy of the canonical patient table (one row per patient), an ordinary
        DataFrame: the trial's own table refuses duplicate row labels, its copy does not
        (``pd.concat`` of two trials' tables failed with ``DuplicateLabelError``)."""
        out = self._frame.copy()
        out.flags.allows_duplicate_labels = True
        return out

    @property
    def n_patients(self) -> int:
        return len(self._frame)

    def __len__(self) -> int:
        return self.n_patients

    @property
    def arms(self) -> tuple[str, str]:
        return (self.control, self.treatment)

    @property
    def sites(self) -> tuple[str, ...]:
        """Site labels, sorted (stable under data cuts)."""
        if "sites" not in self._views:
            self._views["sites"] = tuple(sorted(pd.unique(self._frame["site"])))
        return self._views["sites"]

    @property
    def assessments(self) -> pd.DataFrame | None:
        """The tumour-assessment table (patient_id, assessment_date, progression), sorted,
        when the data were read with one; else None."""
        return None if self._assessments is None else self._assessments.copy()

    def scan_times(self) -> np.ndarray | None:
        """Times of each patient's scans from randomization, in ``time_unit`` (rows in the
        canonical patient order, NaN-padded), or None without an assessment table."""
        if self._assessments is None:
            return None
        a = self._assessments
        f = self._frame[["patient_id", "randomization_date"]]
        rand = a["patient_id"].map(dict(zip(f["patient_id"], f["randomization_date"])))
        t = ((a["assessment_date"] - rand) / np.timedelta64(1, "D")).to_numpy(float) \
            / DAYS_PER_UNIT[self.time_unit]
        row = a["patient_id"].map({p: i for i, p in enumerate(f["patient_id"])}).to_numpy()
        order = np.lexsort((t, row))
        row, t = row[order], t[order]
        pos = np.arange(len(row)) - np.searchsorted(row, row, side="left")
        out = np.full((len(f), int(pos.max()) + 1 if len(pos) else 0), np.nan)
        out[row, pos] = t
        return out

    def has_bounds(self, endpoint: str) -> bool:
        """Whether some event of ``endpoint`` is interval-censored (seen at an assessment
        with a known last assessment before it)."""
        return self.endpoint(endpoint).has_bounds

    @property
    def has_dates(self) -> bool:
        return "randomization_date" in self._frame.columns

    @property
    def covariates(self) -> tuple[str, ...]:
        core = {"patient_id", "site", "arm", *DATE_COLUMNS, LPF_COLUMN}
        core |= {f"{e}_{k}" for e in self.endpoints for k in ("time", "event", "lower")}
        return tuple(c for c in self._frame.columns if c not in core)

    def endpoint(self, name: str = "os") -> Endpoint:
        """The arrays of one endpoint (``"os"``, ``"pfs"`` or ``"ttp"``)."""
        key = str(name).lower()
        if key not in self.endpoints:
            raise TrialDataError(f"endpoint {name!r} is not in these data; available: "
                                 f"{', '.join(self.endpoints)}.")
        cached = self._views.get(("endpoint", key))
        if cached is None:
            cached = self._views[("endpoint", key)] = self._endpoint(key)
        # the arrays are read-only; the covariate table is the caller's own copy
        return dataclasses.replace(cached, covariates=cached.covariates.copy())

    def _endpoint(self, key: str) -> Endpoint:
        f = self._frame
        site_codes = pd.Categorical(f["site"], categories=list(self.sites)).codes
        return Endpoint(
            name=key,
            time=_readonly(f[f"{key}_time"].to_numpy(dtype=float)),
            event=_readonly(f[f"{key}_event"].to_numpy(dtype=np.int8)),
            arm=_readonly((f["arm"] == self.treatment).to_numpy(dtype=np.int8)),
            site=_readonly(site_codes.astype(np.int64)),
            patient_id=_readonly(f["patient_id"].to_numpy(dtype=object)),
            arms=self.arms,
            sites=self.sites,
            time_unit=self.time_unit,
            covariates=f[list(self.covariates)].copy(),
            interval_lower=(_readonly(f[f"{key}_lower"].to_numpy(dtype=float))
                            if f"{key}_lower" in f.columns else None),
        )

    # -- data cuts ------------------------------------------------------------------------
    def data_warnings(self, endpoints=None) -> None:
        """Issue the DataWarnings of these data (small sites; arms without events) for
        ``endpoints`` (default: all), a list of endpoint names."""
        if endpoints is None:
            endpoints = self.endpoints
        elif isinstance(endpoints, str):  # "os" was read letter by letter
            raise TrialDataError(f"endpoints={endpoints!r} must be a list of endpoint names, "
                                 f"e.g. [{endpoints!r}].")
        unknown = [e for e in endpoints if str(e).lower() not in self.endpoints]
        if unknown:  # a KeyError for a column of the table before
            raise TrialDataError(f"endpoint(s) {', '.join(map(repr, unknown))} not in these "
                                 f"data; available: {', '.join(self.endpoints)}.")
        warn_small(self._frame, tuple(str(e).lower() for e in endpoints), self.control,
                   self.treatment)

    def data_notes(self, endpoints=None) -> list[str]:
        """The texts of ``data_warnings``, recorded and not shown: what a fit of these data
        keeps (``Fit.data_notes``)."""
        from bayes_hcc.errors import recorded_data_warnings

        with recorded_data_warnings() as notes:
            self.data_warnings(endpoints)
        return notes

    @bool_flags
    def cut(self, date, *, warn: bool = True) -> TrialData:
        """The data as known at calendar ``date``.

        Patients randomized after ``date`` are left out; events after it are not yet known
        and follow-up is censored at it. A patient randomized on ``date`` stays, with zero
        follow-up (censored at time 0: no information, but part of the randomized set).
        ``warn=False`` leaves the DataWarnings to the caller (:meth:`data_warnings`).
        """
        if not self.has_dates:
            raise TrialDataError(
                "cut() needs calendar dates: these data have no randomization_date column. "
                "Read the dates layout, or add randomization_date to the times layout.")
        cut = calendar_date(date, "cut: date")
        if self.cut_date is not None and cut > self.cut_date:
            raise TrialDataError(
                f"cut({cut.date()}): these data were already cut at {self.cut_date.date()}; "
                "what happened after that is unknown. Cut at or before it.")
        keep = (self._frame["randomization_date"] <= cut).to_numpy()
        present = set(self._frame.loc[keep, "arm"])
        if len(present) < 2:
            arms = " and ".join(map(repr, sorted(present))) or "no patients"
            raise TrialDataError(
                f"cut({cut.date()}): by then {'only arm ' if present else ''}{arms} had been "
                f"randomized (first randomization "
                f"{self._frame['randomization_date'].min().date()}); a comparison needs "
                f"patients in both arms, {self.control!r} and {self.treatment!r}. Cut later.")
        if self.layout == "dates":
            return self._cut_dates(cut, keep, warn)
        f = self._frame.loc[keep].reset_index(drop=True)
        out = f.copy()
        per = DAYS_PER_UNIT[self.time_unit]
        avail = ((cut - f["randomization_date"]) / np.timedelta64(1, "D")).to_numpy(float) / per
        for e in self.endpoints:
            t = out[f"{e}_time"].to_numpy(float)
            seen = (out[f"{e}_event"] == 1) & (t <= avail)
            if f"{e}_lower" in out.columns:
                # an interval-censored event not yet seen: event-free up to L, if known then
                lo = out[f"{e}_lower"].to_numpy(float)
                t = np.where(~seen & np.isfinite(lo), lo, t)
                out[f"{e}_lower"] = np.where(seen, lo, np.nan)
            out[f"{e}_event"] = seen.astype(np.int8)
            out[f"{e}_time"] = np.minimum(t, avail)
        if warn:
            warn_small(out, self.endpoints, self.control, self.treatment)
        return TrialData(out, endpoints=self.endpoints, control=self.control,
                         treatment=self.treatment, time_unit=self.time_unit, layout=self.layout,
                         cut_date=cut, truth=self.truth, source=self.source)

    def _cut_dates(self, cut: pd.Timestamp, keep: np.ndarray, warn: bool) -> TrialData:
        """``cut`` of dates-layout data: the dates as known at the cut (a death or a
        progression after it unknown, follow-up ending at it at the latest; with the scan
        history, progression and the last progression-free scan read from the scans made
        by then), and the endpoints derived from them by the same derivation as when the
        data were read (``times_from_dates``). The data were validated when read and a cut
        only removes what was not yet known, so nothing is checked again; a test shows the
        result equal to reading the table a data manager would export at the cut."""
        f = self._frame.loc[keep].reset_index(drop=True)
        c64 = np.datetime64(cut, "ns")
        nat = np.datetime64("NaT", "ns")

        def col(name):
            return f[name].to_numpy(dtype="datetime64[ns]")

        death = col("death_date")
        death_known = ~np.isnat(death) & (death <= c64)
        lfu = col("last_followup_date")
        # follow-up known up to the cut at most; a patient whose death comes after the cut
        # (and so had no separate last follow-up date) was alive at the cut
        lfu = np.where(np.isnat(lfu) | (lfu <= c64), lfu, c64)
        lfu = np.where(~np.isnat(lfu) | death_known, lfu, c64)
        dates = {"randomization_date": col("randomization_date"),
                 "progression_date": None,
                 "death_date": np.where(death_known, death, nat),
                 "last_followup_date": lfu}
        assessments = self._assessments
        if assessments is not None:
            # the scans made by the cut: the first showing progression, and the last
            # without it (the checks at reading put every negative scan before the first
            # positive one)
            rows = assessments["patient_id"].map(
                {p: i for i, p in enumerate(f["patient_id"])}).to_numpy(dtype=float)
            when = assessments["assessment_date"].to_numpy(dtype="datetime64[ns]")
            known = ~np.isnan(rows) & (when <= c64)
            first, last_neg = first_positive_last_negative(
                rows[known], when[known], assessments["progression"].to_numpy()[known] == 1,
                len(f))
            dates["progression_date"], dates[LPF_COLUMN] = first, last_neg
            assessments = assessments.loc[known].reset_index(drop=True)
        else:
            prog = col("progression_date")
            dates["progression_date"] = np.where(prog <= c64, prog, nat)  # NaT compares False
            if LPF_COLUMN in f.columns:
                # Without the scan history, the last scan before the cut is unknown when the
                # last progression-free scan came after it: the patient is taken as
                # progression-free up to the cut (documented approximation).
                lpf = col(LPF_COLUMN)
                dates[LPF_COLUMN] = np.where(np.isnat(lpf) | (lpf <= c64), lpf, c64)
        # an event at time 0 in the cut was one in the data, which were then read with
        # zero_time_events="half_day" (the default refuses them)
        return TrialData._from_valid_dates(
            f, dates, assessments, control=self.control, treatment=self.treatment,
            time_unit=self.time_unit, cut_date=cut, truth=self.truth, source=self.source,
            warn=warn)

    @classmethod
    def _from_valid_dates(cls, frame, dates, assessments, *, control, treatment, time_unit,
                          cut_date=None, truth=None, source="trial data",
                          warn=True) -> TrialData:
        """Dates-layout data from dates valid by construction, with nothing checked again:
        the package's own constructions (a cut of validated data, a simulated trial), each
        shown equal to reading its table with :meth:`from_table` in the tests. ``frame``
        holds patient_id, site and arm (and covariates); ``dates`` the patients' dates,
        progression and the last progression-free scan already read from ``assessments``
        (the canonical scan table: sorted by patient and date) when there is one. The
        endpoints come from the one derivation (``times_from_dates``); events at time 0 are
        set at half a day (only data read with ``zero_time_events="half_day"`` have any)."""
        endpoints = tuple(STANDARD_ENDPOINTS)
        control, treatment = arm_label(control), arm_label(treatment)  # as reading does
        ep = times_from_dates(dates, time_unit)
        zero_time_events_at_half_day(ep, endpoints, time_unit)
        taken = set(DATE_COLUMNS) | {LPF_COLUMN} | {f"{e}_{k}" for e in endpoints
                                                   for k in ("time", "event", "lower")}
        out = canonical_frame(frame, dates, ep, endpoints, taken)
        if warn:
            warn_small(out, endpoints, control, treatment)
        return cls(out, endpoints=endpoints, control=control, treatment=treatment,
                   time_unit=time_unit, layout="dates", cut_date=cut_date, truth=truth,
                   source=source, assessments=assessments)

    @classmethod
    def _from_valid_times(cls, frame, ep, *, control, treatment, time_unit,
                          source="trial data") -> TrialData:
        """Times-layout data valid by construction (the PPoS simulator's completed trials),
        with nothing checked again: ``frame`` holds patient_id, site and arm; ``ep`` each
        endpoint's canonical time, event and lower bound (``bounds_endpoint`` for bounds).
        Shown equal to reading the same table with :meth:`from_table` in the tests."""
        endpoints = tuple(e for e in STANDARD_ENDPOINTS if f"{e}_time" in ep) + tuple(
            k[:-len("_time")] for k in ep if k.endswith("_time")
            and k[:-len("_time")] not in STANDARD_ENDPOINTS)
        control, treatment = arm_label(control), arm_label(treatment)
        out = canonical_frame(frame, None, ep, endpoints, {"patient_id", "site", "arm"})
        return cls(out, endpoints=endpoints, control=control, treatment=treatment,
                   time_unit=time_unit, layout="times", source=source)

    def subset(self, mask, *, label: str = "subset") -> TrialData:
        """The patients where ``mask`` (boolean or 0/1, one per patient) holds."""
        raw = np.asarray(mask)
        if raw.shape != (self.n_patients,):
            raise TrialDataError(f"subset: mask needs one boolean per patient "
                                 f"({self.n_patients}), got shape {raw.shape}.")
        if raw.dtype != bool:
            # read as truth values, positions 0..n-1 kept all but the first patient, and a
            # missing value (NaN) kept its patient
            flags = pd.to_numeric(pd.Series(raw), errors="coerce")
            bad = ~flags.isin([0, 1])
            if bad.any():
                rows = np.flatnonzero(bad.to_numpy())
                raise TrialDataError(
                    f"subset: mask must be True/False (or 1/0) for every patient; rows "
                    f"{', '.join(str(i + 1) for i in rows[:8])}"
                    f"{f' and {len(rows) - 8} more' if len(rows) > 8 else ''} are "
                    f"{', '.join(repr(v) for v in raw[rows[:3]].tolist())}. To keep patients by "
                    "position, build the mask: np.isin(np.arange(trial.n_patients), rows).")
            raw = flags.to_numpy() == 1
        mask = raw
        if not mask.any():
            raise TrialDataError(f"subset ({label}): the mask selects no patient.")
        out = self._frame.loc[mask].reset_index(drop=True)
        warn_small(out, self.endpoints, self.control, self.treatment)
        assessments = self._assessments
        if assessments is not None:
            assessments = assessments[assessments["patient_id"].isin(set(out["patient_id"]))]
        return TrialData(out, endpoints=self.endpoints, control=self.control,
                         treatment=self.treatment, time_unit=self.time_unit, layout=self.layout,
                         cut_date=self.cut_date, truth=self.truth,
                         source=f"{self.source} [{label}]", assessments=assessments
                         ).with_reconstruction(self.reconstruction)

    def to_unit(self, time_unit: str) -> TrialData:
        """The same trial with its times expressed in ``time_unit`` (days, weeks, months,
        years); every posterior of a unit-free quantity is unchanged."""
        from bayes_hcc.units import convert

        time_unit = check_time_unit(time_unit)
        out = self._frame.copy()
        for e in self.endpoints:
            for k in ("time", "lower"):
                if f"{e}_{k}" in out.columns:
                    out[f"{e}_{k}"] = convert(out[f"{e}_{k}"].to_numpy(float), self.time_unit,
                                              time_unit)
        factor = float(convert(1.0, self.time_unit, time_unit))
        recon = (None if self.reconstruction is None else
                 {a: r.scaled(factor) for a, r in self.reconstruction.items()})
        return TrialData(out, endpoints=self.endpoints, control=self.control,
                         treatment=self.treatment, time_unit=time_unit, layout=self.layout,
                         cut_date=self.cut_date, truth=self.truth, source=self.source,
                         assessments=self._assessments).with_reconstruction(recon)

    def events_by_date(self, endpoint: str = "os") -> pd.Series:
        """Calendar dates of the events of ``endpoint``, sorted (needs randomization dates)."""
        if not self.has_dates:
            raise TrialDataError("events_by_date() needs randomization_date.")
        ep = self.endpoint(endpoint)
        per = DAYS_PER_UNIT[self.time_unit]
        when = self._frame["randomization_date"] + pd.to_timedelta(ep.time * per, unit="D")
        return when[ep.event == 1].sort_values().reset_index(drop=True)

    # -- summaries --------------------------------------------------------------------------
    def summary(self, endpoint: str = "os") -> pd.DataFrame:
        """Patients, events, censored and median follow-up (reverse Kaplan-Meier).

        One row per arm, per site, and overall.
        """
        from bayes_hcc.data.km import follow_up_summary

        return follow_up_summary(self, endpoint)

    def kaplan_meier(self, endpoint: str = "os", *, alpha: float = 0.05) -> pd.DataFrame:
        """Kaplan-Meier median per arm with its (1 - alpha) confidence interval (lifelines)."""
        from bayes_hcc.data.km import km_medians

        return km_medians(self, endpoint, alpha=alpha)

    # -- identity ------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """A stable SHA-256 hash of the content (data, arm labels, unit and cut), independent
        of the order of the input rows and columns."""
        if self._fingerprint is None:
            f = self._frame[sorted(self._frame.columns)]
            body = f.to_csv(index=False, float_format="%.17g", date_format="%Y-%m-%dT%H:%M:%S")
            meta = f"{self.control}|{self.treatment}|{self.time_unit}|{self.cut_date}"
            if self._assessments is not None:  # the scans are data too
                body += "\n" + self._assessments.to_csv(index=False,
                                                        date_format="%Y-%m-%dT%H:%M:%S")
            self._fingerprint = hashlib.sha256((meta + "\n" + body).encode()).hexdigest()
        return self._fingerprint

    def __eq__(self, other) -> bool:
        return isinstance(other, TrialData) and self.fingerprint == other.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        f = self._frame
        n_arm = f["arm"].value_counts()
        arms = ", ".join(f"{a} {int(n_arm.get(a, 0))}" for a in self.arms)
        ev = ", ".join(_count(int(f[f"{e}_event"].sum()), f"{e.upper()} ", "event")
                       for e in self.endpoints)
        cut = f" | cut {self.cut_date.date()}" if self.cut_date is not None else ""
        synth = " | SYNTHETIC" if self.truth is not None else ""
        synth += " | RECONSTRUCTED from published curves" if self.reconstruction else ""
        return (f"TrialData | {self.n_patients} patients | 2 arms ({arms}) | "
                f"{_count(len(self.sites), '', 'site')} | {ev}{cut} | {self.time_unit}{synth}")


def _count(n: int, prefix: str, noun: str) -> str:
    """"OS 1 event", "OS 3 events": a count with its noun in the number it needs."""
    return f"{prefix}{n} {noun}{'' if n == 1 else 's'}"


def require_trial(trial, where: str) -> TrialData:
    """``trial`` itself when it is a TrialData; otherwise an error naming what was given and
    how to make one (a DataFrame is the usual slip in a notebook: it has not been validated,
    and OS, PFS and TTP have not been derived from it)."""
    if isinstance(trial, TrialData):
        return trial
    if isinstance(trial, pd.DataFrame):
        fix = ("read it with bh.read_trial(df) first: that checks every column and derives "
               "OS, PFS and TTP (time_unit=, columns= as for a file)")
    else:
        fix = ("read one with bh.read_trial(path), bh.read_adtte(path) or "
               "bh.simulate_trial(...), or load one from bh.datasets")
    name = type(trial).__name__
    got = ("None" if trial is None else "a pandas DataFrame" if isinstance(trial, pd.DataFrame)
           else f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}")
    raise TrialDataError(f"{where} needs a TrialData, not {got}: {fix}.")
