"""TrialData: the validated, immutable patient table, and the Endpoint view models consume."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_hcc.data._build import (DATE_COLUMNS, DAYS_PER_UNIT, arm_label, build_canonical,
                                   check_time_unit,
                                   warn_small)
from bayes_hcc.errors import TrialDataError

__all__ = ["TrialData", "Endpoint"]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


#: Observation kinds (``Endpoint.kind``), read by ``models.likelihood``.
RIGHT, EXACT, INTERVAL = 0, 1, 2


@dataclass(frozen=True, eq=False)
class Endpoint:
    """One endpoint as arrays: what a survival model needs.

    Attributes
    ----------
    name : str
        ``"os"``, ``"pfs"``, ``"ttp"`` (or another endpoint of the data).
    time, event : ndarray
        Follow-up time in ``time_unit`` and 1 = event, 0 = censored.
    arm : ndarray of int
        0 = control, 1 = treatment.
    site : ndarray of int
        Index into ``sites``.
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

    def __len__(self) -> int:
        return len(self.time)

    @property
    def n_events(self) -> int:
        return int(self.event.sum())

    # -- the view the censored likelihood reads (``models.likelihood``) ---------------------
    @property
    def kind(self) -> np.ndarray:
        """Observation kind per patient: RIGHT (0, censored), EXACT (1, event) or INTERVAL
        (2, event known to lie in (lower, upper]). Today's data are exact or right-censored;
        interval-censored progression builds on this view."""
        return np.where(np.asarray(self.event) == 1, EXACT, RIGHT).astype(np.int64)

    @property
    def lower(self) -> np.ndarray:
        """Event or censoring time; for an interval-censored patient the last time known
        event-free (L of (L, R])."""
        return np.asarray(self.time, float)

    @property
    def upper(self) -> np.ndarray:
        """Latest time the event can have happened: the event time for an exact event,
        infinity for a censored patient (R of (L, R])."""
        return np.where(self.kind == EXACT, self.lower, np.inf)

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
                 source: str = "trial data"):
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
        self._fingerprint = None

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_table(cls, raw: pd.DataFrame, *, control, treatment, time_unit: str = "months",
                   zero_time_events: str = "error", source: str = "trial data", cut_date=None,
                   truth=None, layout: str | None = None, warn: bool = True) -> TrialData:
        """Validate a patient table (dates or times layout) into a TrialData: what
        :func:`read_trial` does after reading a file, for code that builds the table itself
        (simulated and completed trials). ``warn=False`` leaves the DataWarnings out."""
        return cls._from_raw(raw, control=control, treatment=treatment, time_unit=time_unit,
                             zero_time_events=zero_time_events, source=source,
                             cut_date=cut_date, truth=truth, layout=layout, warn=warn)

    @classmethod
    def _from_raw(cls, raw, *, control, treatment, time_unit, zero_time_events="error",
                  source="trial data", cut_date=None, truth=None, layout=None, warn=True):
        frame, endpoints, layout = build_canonical(
            raw, control=control, treatment=treatment, time_unit=time_unit,
            zero_time_events=zero_time_events, source=source, layout=layout)
        control, treatment = arm_label(control), arm_label(treatment)
        time_unit = check_time_unit(time_unit)
        if warn:
            warn_small(frame, endpoints, control, treatment)
        return cls(frame, endpoints=endpoints, control=control, treatment=treatment,
                   time_unit=time_unit, layout=layout, cut_date=cut_date, truth=truth,
                   source=source)

    # -- basic views ----------------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """A copy of the canonical patient table (one row per patient)."""
        return self._frame.copy()

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
        return tuple(sorted(pd.unique(self._frame["site"])))

    @property
    def has_dates(self) -> bool:
        return "randomization_date" in self._frame.columns

    @property
    def covariates(self) -> tuple[str, ...]:
        core = {"patient_id", "site", "arm", *DATE_COLUMNS}
        core |= {f"{e}_{k}" for e in self.endpoints for k in ("time", "event")}
        return tuple(c for c in self._frame.columns if c not in core)

    def endpoint(self, name: str = "os") -> Endpoint:
        """The arrays of one endpoint (``"os"``, ``"pfs"`` or ``"ttp"``)."""
        key = str(name).lower()
        if key not in self.endpoints:
            raise TrialDataError(f"endpoint {name!r} is not in these data; available: "
                                 f"{', '.join(self.endpoints)}.")
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
        )

    # -- data cuts ------------------------------------------------------------------------
    def data_warnings(self, endpoints=None) -> None:
        """Issue the DataWarnings of these data (small sites; arms without events) for
        ``endpoints`` (default: all)."""
        warn_small(self._frame, self.endpoints if endpoints is None else tuple(endpoints),
                   self.control, self.treatment)

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
        cut = pd.Timestamp(date)
        if self.cut_date is not None and cut > self.cut_date:
            raise TrialDataError(
                f"cut({cut.date()}): these data were already cut at {self.cut_date.date()}; "
                "what happened after that is unknown. Cut at or before it.")
        f = self._frame
        keep = (f["randomization_date"] <= cut).to_numpy()
        f = f.loc[keep].reset_index(drop=True)
        if self.layout == "dates":
            raw = f.copy()
            death_known = f["death_date"].notna() & (f["death_date"] <= cut)
            raw["death_date"] = f["death_date"].where(death_known)
            raw["progression_date"] = f["progression_date"].where(f["progression_date"] <= cut)
            # Follow-up known up to the cut at most; a patient whose death comes after the
            # cut (and so had no separate last follow-up date) was alive at the cut.
            lfu = f["last_followup_date"]
            lfu = lfu.where(lfu.isna() | (lfu <= cut), cut)
            raw["last_followup_date"] = lfu.where(lfu.notna() | death_known, cut)
            raw = raw.drop(columns=[f"{e}_{k}" for e in ("os", "pfs", "ttp")
                                    for k in ("time", "event")])
            return TrialData._from_raw(raw, control=self.control, treatment=self.treatment,
                                       time_unit=self.time_unit, source=self.source,
                                       cut_date=cut, truth=self.truth, layout="dates",
                                       warn=warn)
        out = f.copy()
        per = DAYS_PER_UNIT[self.time_unit]
        avail = ((cut - f["randomization_date"]) / np.timedelta64(1, "D")).to_numpy(float) / per
        for e in self.endpoints:
            t = out[f"{e}_time"].to_numpy(float)
            out[f"{e}_event"] = ((out[f"{e}_event"] == 1) & (t <= avail)).astype(np.int8)
            out[f"{e}_time"] = np.minimum(t, avail)
        if warn:
            warn_small(out, self.endpoints, self.control, self.treatment)
        return TrialData(out, endpoints=self.endpoints, control=self.control,
                         treatment=self.treatment, time_unit=self.time_unit, layout=self.layout,
                         cut_date=cut, truth=self.truth, source=self.source)

    def subset(self, mask, *, label: str = "subset") -> TrialData:
        """The patients where ``mask`` (boolean, one per patient) holds."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.n_patients,):
            raise TrialDataError(f"subset: mask needs one boolean per patient "
                                 f"({self.n_patients}), got shape {mask.shape}.")
        out = self._frame.loc[mask].reset_index(drop=True)
        warn_small(out, self.endpoints, self.control, self.treatment)
        return TrialData(out, endpoints=self.endpoints, control=self.control,
                         treatment=self.treatment, time_unit=self.time_unit, layout=self.layout,
                         cut_date=self.cut_date, truth=self.truth,
                         source=f"{self.source} [{label}]")

    def to_unit(self, time_unit: str) -> TrialData:
        """The same trial with its times expressed in ``time_unit`` (days, weeks, months,
        years); every posterior of a unit-free quantity is unchanged."""
        from bayes_hcc.units import convert

        time_unit = check_time_unit(time_unit)
        out = self._frame.copy()
        for e in self.endpoints:
            out[f"{e}_time"] = convert(out[f"{e}_time"].to_numpy(float), self.time_unit,
                                       time_unit)
        return TrialData(out, endpoints=self.endpoints, control=self.control,
                         treatment=self.treatment, time_unit=time_unit, layout=self.layout,
                         cut_date=self.cut_date, truth=self.truth, source=self.source)

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
        ev = ", ".join(f"{e.upper()} {int(f[f'{e}_event'].sum())} events" for e in self.endpoints)
        cut = f" | cut {self.cut_date.date()}" if self.cut_date is not None else ""
        synth = " | SYNTHETIC" if self.truth is not None else ""
        return (f"TrialData | {self.n_patients} patients | 2 arms ({arms}) | "
                f"{len(self.sites)} sites | {ev}{cut} | {self.time_unit}{synth}")
