"""Patient-level data from a published Kaplan-Meier curve and its numbers at risk (Guyot,
Ades, Ouwens and Welton, BMC Med Res Methodol 2012;12:9).

``reconstruct_ipd`` rebuilds one arm, ``reconstruct_trial`` a two-arm TrialData (marked
RECONSTRUCTED, carrying its inputs) and ``reconstruction_fidelity`` says how closely the
result reproduces the published curve, numbers at risk and events.

The algorithm, per interval of the numbers-at-risk table [T_i, T_{i+1}):

1. guess the number censored in the interval from the drop of the curve,
   c_i = round(n_i S(T_{i+1}) / S(T_i) - n_{i+1});
2. spread those censorings evenly over the interval;
3. walk the digitised steps of the interval: at each step k the events are
   d_k = round(n_k (1 - S_k / S_km)), S_km the reconstructed KM so far, and the patients at
   risk drop by the events and the censorings before the next step;
4. if the number left at risk differs from the published n_{i+1}, correct c_i by the
   difference and repeat (until it matches or stops changing);
5. if even without censoring fewer than n_{i+1} are left (a digitiser's time error put a
   step of the next interval into this one), the interval keeps n_i - n_{i+1} events and
   the excess falls at the next interval's first step (a refinement of Guyot's step 4,
   which leaves the mismatch).

The last interval has no count after it: its censorings follow the total number of events
when it is given (the events are matched), otherwise the average censoring rate of the
earlier intervals (Guyot's rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike

import numpy as np
import pandas as pd

from bayes_hcc.errors import (BayesHCCError, DataWarning, TrialDataError, one_number, user_path,
                              warn)

__all__ = ["clean_curve", "reconstruct_ipd", "reconstruct_arm", "reconstruct_trial",
           "reconstruction_fidelity", "read_points",
           "CleanedCurve", "ArmReconstruction", "Fidelity", "METHOD"]

METHOD = "Guyot et al. 2012 (BMC Med Res Methodol 12:9)"


@dataclass(frozen=True)
class CleanedCurve:
    """Digitised points after cleaning, and what was changed."""

    time: np.ndarray
    survival: np.ndarray
    changes: list = field(default_factory=list)


#: Names of the value column of a digitised curve and of a numbers-at-risk table.
SURVIVAL_NAMES = ("survival", "surv", "s")
AT_RISK_NAMES = ("n_at_risk", "at_risk", "n_risk", "n")


def _named_columns(frame: pd.DataFrame, second: tuple) -> pd.DataFrame:
    """The frame with its ``time`` column first and its value column second when both are
    named (in any order, any case), else as given: two columns by position."""
    names = {str(c).strip().lower(): c for c in frame.columns}
    value = next((names[n] for n in second if n in names), None)
    if "time" in names and value is not None:
        return frame[[names["time"], value]]
    return frame


def clean_curve(curve, *, tol: float = 0.02) -> CleanedCurve:
    """Clean digitised (time, survival) points as a digitiser exports them.

    Columns named ``time`` and ``survival`` are read by name (in any order), otherwise the
    first two by position. Sorted by time; survival in percent (any value above 1.5) divided
    by 100; exact duplicates removed; points that rise above an earlier point by at most
    ``tol`` (a digitiser's jitter) lowered to the running minimum; negative times refused; a
    point (0, 1) added when missing. Each change is listed in ``changes``. A curve rising by
    more than ``tol``, or starting clearly below 1, is an error naming the points."""
    frame = _table(curve, "the curve", "time, survival")
    if frame.shape[1] < 2:
        raise TrialDataError("reconstruct: the curve needs two columns, time and survival.")
    frame = _named_columns(frame, SURVIVAL_NAMES)
    if frame.empty:
        raise TrialDataError("reconstruct: the curve has no points; give the digitised "
                             "(time, survival) points.")
    t = pd.to_numeric(frame.iloc[:, 0], errors="coerce").to_numpy(float)
    s = pd.to_numeric(frame.iloc[:, 1], errors="coerce").to_numpy(float)
    changes = []
    bad = ~(np.isfinite(t) & np.isfinite(s))
    if bad.any():
        raise TrialDataError(f"reconstruct: the curve has non-numeric or missing values in "
                             f"row(s) {', '.join(str(i + 1) for i in np.flatnonzero(bad)[:8])}.")
    if (t < 0).any():
        raise TrialDataError(f"reconstruct: negative times in the curve, row(s) "
                             f"{', '.join(str(i + 1) for i in np.flatnonzero(t < 0)[:8])}.")
    if s.max() > 1.5:
        s = s / 100.0
        changes.append("survival given in percent: divided by 100")
    order = np.argsort(t, kind="stable")
    if (order != np.arange(len(t))).any():
        changes.append("points sorted by time")
    t, s = t[order], s[order]
    # the same time twice: a vertical step of the curve; keep the lowest survival (the
    # value after the step) for that time
    if len(np.unique(t)) < len(t):
        keep = pd.DataFrame({"t": t, "s": s}).groupby("t", sort=True)["s"].min()
        changes.append(f"{len(t) - len(keep)} point(s) at a repeated time merged (lowest "
                       "survival kept)")
        t, s = keep.index.to_numpy(float), keep.to_numpy(float)
    running = np.minimum.accumulate(s)
    rise = s - running
    if (rise > tol).any():
        rows = np.flatnonzero(rise > tol)
        raise TrialDataError(f"reconstruct: the curve rises by more than {tol} at time(s) "
                             f"{', '.join(f'{x:g}' for x in t[rows][:8])}: a survival curve "
                             "never increases; check the digitised points (or another curve "
                             "crossing this one).")
    if (rise > 0).any():
        changes.append(f"{int((rise > 0).sum())} slightly increasing point(s) lowered to the "
                       "running minimum")
        s = running
    if s[0] < 1.0 - tol and t[0] > 0:
        raise TrialDataError(f"reconstruct: the curve starts at S = {s[0]:.3g} (time "
                             f"{t[0]:g}), below 1: add the point (0, 1), or check that the "
                             "figure shows the whole curve.")
    s = np.clip(s, 0.0, 1.0)
    if t[0] > 0:
        t, s = np.r_[0.0, t], np.r_[1.0, s]
        changes.append("point (0, 1) added")
    elif s[0] < 1.0:
        changes.append(f"first point (0, {s[0]:.3g}) set to survival 1")
        s = s.copy()
        s[0] = 1.0
        s = np.minimum.accumulate(s)
    return CleanedCurve(t, s, changes)


def _table(value, what: str, columns: str) -> pd.DataFrame:
    """A copy of a table given as a DataFrame, a CSV path (``read_points``, as
    ``reconstruct_trial`` reads one), a dict of columns or a two-column array; anything
    else is refused by name (a scalar was "DataFrame constructor not properly called!")."""
    if isinstance(value, pd.DataFrame):
        return value.copy()
    if isinstance(value, (str, PathLike)):
        return read_points(value)
    try:
        frame = pd.DataFrame(value)
    except (ValueError, TypeError):
        frame = None
    if frame is None or frame.ndim != 2 or isinstance(value, (bytes, int, float)):
        raise TrialDataError(f"reconstruct: {what} must be a table ({columns}): a DataFrame, "
                             "a dict of columns, a two-column array or the path of a CSV "
                             f"file; got {type(value).__name__}.")
    return frame.copy()


def _check_at_risk(at_risk, t_max):
    frame = _table(at_risk, "the numbers at risk", "time, n_at_risk")
    if frame.shape[1] < 2 or frame.empty:
        raise TrialDataError("reconstruct: the numbers at risk need two columns, time and "
                             "n_at_risk, and at least the row (0, the arm's sample size).")
    frame = _named_columns(frame, AT_RISK_NAMES)
    times = pd.to_numeric(frame.iloc[:, 0], errors="coerce").to_numpy(float)
    n = pd.to_numeric(frame.iloc[:, 1], errors="coerce").to_numpy(float)
    if not (np.isfinite(times).all() and np.isfinite(n).all()):
        raise TrialDataError("reconstruct: the numbers at risk need numeric times and counts.")
    if np.any(np.diff(times) <= 0):
        raise TrialDataError("reconstruct: the at-risk times must increase.")
    if np.any(np.diff(n) > 0):
        rows = np.flatnonzero(np.diff(n) > 0) + 1
        raise TrialDataError(f"reconstruct: numbers at risk increase at time(s) "
                             f"{', '.join(f'{times[i]:g}' for i in rows)}: they can only fall "
                             "(check the table, or the arm's row).")
    if times[0] != 0:
        raise TrialDataError("reconstruct: the numbers at risk must start at time 0 (the "
                             "arm's sample size).")
    if np.any(n < 0) or np.any(n != np.round(n)):
        raise TrialDataError("reconstruct: numbers at risk must be whole numbers >= 0.")
    # A published table often goes on past the curve's end with 0 at risk (the last
    # patients left before the next tick): consistent, and it says that everyone left. A
    # positive count there means the curve was not digitised to its end.
    beyond = (times > t_max + 1e-9) & (n > 0)
    if beyond.any():
        i = int(np.flatnonzero(beyond)[-1])
        raise TrialDataError(f"reconstruct: at-risk time {times[i]:g} ({n[i]:g} at risk) lies "
                             f"beyond the digitised curve (last point {t_max:g}): digitise "
                             "the curve to its end or drop that column.")
    return times, n.astype(int)


def _walk(ts, ss, n_start, s_km, cens, budget=None):
    """Events and risk set over the steps ``ts`` (survival ``ss``) of one interval, starting
    with ``n_start`` at risk and the reconstructed KM at ``s_km``; ``cens`` are the
    censoring times of the interval; at most ``budget`` events in all (None: no limit).
    Returns (events per step, censored per step, n left, KM after)."""
    k = len(ts)
    d = np.zeros(k, int)
    c = np.zeros(k, int)
    # censorings before the next step: the first step also takes those between the start
    # of the interval and its first digitised point
    starts, ends = np.r_[-np.inf, ts[1:]], np.r_[ts[1:], np.inf]
    for j in range(k):
        c[j] = int(np.sum((cens >= starts[j]) & (cens < ends[j])))
    n = n_start
    for j in range(k):
        if s_km > 0 and n > 0:
            d[j] = int(np.clip(np.round(n * (1.0 - ss[j] / s_km)), 0, n))
            if budget is not None:
                d[j] = min(d[j], budget)
                budget -= d[j]
        if d[j] > 0:
            s_km = s_km * (1.0 - d[j] / n)
        n = n - d[j] - c[j]
    return d, c, n, s_km


def reconstruct_ipd(curve, at_risk, total_events: int | None = None, *,
                    max_iterations: int = 100) -> pd.DataFrame:
    """Patient-level (time, event) data of one arm from its digitised Kaplan-Meier curve and
    its published numbers at risk (Guyot et al. 2012; the module docstring).

    Returns a DataFrame ``time, event`` with one row per patient (the sample size is the
    first number at risk); ``attrs["changes"]`` lists what cleaning the curve changed.
    """
    cleaned = clean_curve(curve)
    ts, ss = cleaned.time, cleaned.survival
    tr, nr = _check_at_risk(at_risk, ts[-1])
    if total_events is not None:
        te = float(total_events)
        if not (np.isfinite(te) and te == round(te) and 0 <= te <= nr[0]):
            raise TrialDataError(f"reconstruct: total_events = {total_events!r} must be a "
                                 f"whole number between 0 and the arm's {nr[0]} patients "
                                 "(the first number at risk).")
        total_events = int(te)
    m = len(tr)
    # digitised points in each at-risk interval [tr_i, tr_{i+1}) (the last to the end)
    lower = np.searchsorted(ts, tr, side="left")
    upper = np.r_[lower[1:] - 1, len(ts) - 1]
    events_t, events_n, cens_t = [], [], []
    s_km = 1.0
    censor_rates = []
    total_so_far = 0
    n_at = int(nr[0])  # at risk at the start of the interval (reconstructed; = published
    # when the previous interval matched), so the patients always add up to nr[0]
    for i in range(m):
        lo_i, up_i = lower[i], upper[i]
        if up_i < lo_i:
            # no digitised step in this interval: no events, but the published count may
            # still fall (censorings, spread evenly as in any other interval)
            if i + 1 < m:
                nc = max(0, n_at - int(nr[i + 1]))
                cens_t += list(tr[i] + (tr[i + 1] - tr[i]) * np.arange(1, nc + 1) / (nc + 1))
                n_at -= nc
            continue
        t_int, s_int = ts[lo_i:up_i + 1], ss[lo_i:up_i + 1]
        # censorings are spread to the next at-risk time, or to the curve's end when the
        # table goes on past it (with 0 at risk: everyone left by then)
        t_end = min(tr[i + 1], ts[-1]) if i + 1 < m else ts[-1]
        if i + 1 < m:
            s_next = ss[min(upper[i] + 1, len(ss) - 1)]
            nc = max(0, int(round(nr[i] * s_next / max(ss[lo_i], 1e-12) - nr[i + 1])))
            for _ in range(max_iterations):
                cens = tr[i] + (t_end - tr[i]) * np.arange(1, nc + 1) / (nc + 1)
                d, c, n_left, s_after = _walk(t_int, s_int, n_at, s_km, cens)
                # the patients left must equal the next published count
                gap = n_left - nr[i + 1]
                if gap == 0 or nc + gap < 0:
                    break
                nc = nc + gap
            if n_left < nr[i + 1]:
                # fewer left than published even with the censorings cut: no censoring, and
                # if the events alone are still too many (a digitiser's time error moved a
                # step of the next interval into this one), the interval keeps n_i - n_{i+1}
                # events; the excess falls at the next interval's first step (the KM carried
                # forward stays higher, so that step drops more)
                nc, cens = 0, np.array([])
                d, c, n_left, s_after = _walk(t_int, s_int, n_at, s_km, cens,
                                              budget=max(0, n_at - int(nr[i + 1])))
            censor_rates.append(nc / max(t_end - tr[i], 1e-12))
        else:
            # last interval: match the total events when given, else the average censoring
            # rate of the earlier intervals
            if total_events is not None:
                remaining = int(total_events) - total_so_far
                best = None
                for nc in range(0, n_at + 1):
                    cens = tr[i] + (t_end - tr[i]) * np.arange(1, nc + 1) / (nc + 1)
                    d, c, n_left, s_after = _walk(t_int, s_int, n_at, s_km, cens)
                    miss = abs(int(d.sum()) - remaining)
                    if best is None or miss < best[0]:
                        best = (miss, nc)
                    if d.sum() <= remaining:
                        break
                nc = best[1]
            else:
                rate = float(np.mean(censor_rates)) if censor_rates else 0.0
                nc = min(int(round(rate * (t_end - tr[i]))), n_at)
            cens = tr[i] + (t_end - tr[i]) * np.arange(1, nc + 1) / (nc + 1)
            d, c, n_left, s_after = _walk(t_int, s_int, n_at, s_km, cens)
        s_km = s_after
        n_at = int(n_left)
        total_so_far += int(d.sum())
        for tj, dj in zip(t_int, d):
            if dj:
                events_t.append(tj)
                events_n.append(dj)
        # the censorings actually used (those before the interval's last step are all used)
        cens_t += list(cens[: int(c.sum())])
        if i + 1 == m and n_left > 0:
            cens_t += [ts[-1]] * int(n_left)  # still at risk at the end of the curve
    time = np.r_[np.repeat(events_t, events_n), cens_t].astype(float)
    event = np.r_[np.ones(int(np.sum(events_n)), int), np.zeros(len(cens_t), int)]
    miss = None if total_events is None else abs(int(event.sum()) - total_events)
    if miss is not None and miss > max(2, 0.05 * total_events):
        # only the last interval's censorings are free to match the total; the events before
        # it follow from the curve and the numbers at risk, rounded step by step (round
        # trips of real trials with the true count miss it by up to 3 events, under 5%)
        warn(f"reconstruct: the reconstruction has {int(event.sum())} events, the published "
             f"total_events = {total_events} ({miss} apart, more than the rounding of the "
             "algorithm's steps leaves). The events up to the last number at risk (time "
             f"{tr[-1]:g}) follow from the curve's drops and the numbers at risk; after it "
             "only censoring can be added. Check the published count, the curve's last "
             "points and the at-risk table; bh.reconstruction_fidelity shows both counts.",
             DataWarning)
    out = pd.DataFrame({"time": time, "event": event}).sort_values(
        ["time", "event"], ascending=[True, False], kind="stable").reset_index(drop=True)
    out.attrs["changes"] = cleaned.changes
    out.attrs["method"] = METHOD
    return out


def read_points(path) -> pd.DataFrame:
    """Two numeric columns from a CSV as a digitiser writes it (WebPlotDigitizer: no header;
    other tools: a header line): (time, survival) points or (time, number at risk) rows."""
    path = user_path(path, "reconstruct", "a digitiser's CSV file")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    frame = pd.read_csv(path, header=None, sep=None, engine="python")
    first = pd.to_numeric(frame.iloc[0], errors="coerce")
    if first.isna().any():  # a header line: its names say which column is which
        frame.columns = [str(c).strip() for c in frame.iloc[0]]
        frame = frame.iloc[1:].reset_index(drop=True)
    if frame.shape[1] < 2:
        raise TrialDataError(f"{path}: needs two columns (time and survival, or time and "
                             "number at risk); found one.")
    frame = _named_columns(frame, SURVIVAL_NAMES + AT_RISK_NAMES)
    return frame.iloc[:, :2].apply(pd.to_numeric, errors="coerce")


# -- a two-arm trial ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ArmReconstruction:
    """What one arm was reconstructed from (the cleaned digitised curve, the published
    numbers at risk, total events and median when given) and the patients it gave."""

    arm: str
    curve: CleanedCurve
    at_risk: pd.DataFrame
    ipd: pd.DataFrame
    total_events: int | None = None
    published_median: float | None = None

    def scaled(self, factor: float) -> ArmReconstruction:
        """The same reconstruction with every time multiplied by ``factor`` (a unit change)."""
        curve = CleanedCurve(self.curve.time * factor, self.curve.survival, self.curve.changes)
        at_risk = self.at_risk.assign(time=self.at_risk["time"] * factor)
        ipd = self.ipd.assign(time=self.ipd["time"] * factor)
        median = None if self.published_median is None else self.published_median * factor
        return ArmReconstruction(self.arm, curve, at_risk, ipd, self.total_events, median)


def reconstruct_arm(arm: str, curve, at_risk, total_events=None,
                    median=None) -> ArmReconstruction:
    """One arm's :class:`ArmReconstruction` (errors name the arm)."""
    try:
        cleaned = clean_curve(curve)
        tr, nr = _check_at_risk(at_risk, cleaned.time[-1])
        ipd = reconstruct_ipd(curve, at_risk, total_events)
        if median is not None:  # "abc" failed inside float() after the reconstruction
            median = one_number(median, "reconstruct", "median", "9.1")
            if median <= 0:
                raise TrialDataError(f"reconstruct: median = {median:g} must be > 0 (the "
                                     "published median, in the figure's time unit).")
    except BayesHCCError as err:
        raise TrialDataError(f"arm {arm!r}: {err}") from None
    return ArmReconstruction(arm, cleaned, pd.DataFrame({"time": tr, "n_at_risk": nr}), ipd,
                             None if total_events is None else int(total_events),
                             None if median is None else float(median))


def _arm_inputs(arm, value) -> dict:
    """One arm's inputs: a tuple (curve, at_risk[, total_events]) or a dict with keys curve,
    at_risk and optionally total_events, median; curve and at_risk may be CSV paths."""
    inputs = _arm_dict(arm, value)
    for key in ("curve", "at_risk"):  # a file path: read as a digitiser writes it
        if isinstance(inputs[key], (str, PathLike)):
            inputs[key] = read_points(inputs[key])
    return inputs


def _arm_dict(arm, value) -> dict:
    if isinstance(value, dict):
        unknown = set(value) - {"curve", "at_risk", "total_events", "median"}
        if unknown or not {"curve", "at_risk"} <= set(value):
            raise TrialDataError(f"reconstruct_trial: arm {arm!r} needs a dict with keys curve "
                                 "and at_risk (optionally total_events, median); got "
                                 f"{sorted(value)}.")
        return dict(value)
    if isinstance(value, (tuple, list)) and len(value) in (2, 3):
        return dict(zip(("curve", "at_risk", "total_events"), value))
    raise TrialDataError(f"reconstruct_trial: arm {arm!r} needs (curve, at_risk), "
                         "(curve, at_risk, total_events) or a dict {'curve': ..., 'at_risk': "
                         "..., 'total_events': ..., 'median': ...}.")


def reconstruct_trial(arms: dict, *, control: str, treatment: str, endpoint: str = "os",
                      time_unit: str = "months", site: str = "published",
                      source: str | None = None):
    """A two-arm :class:`~bayes_hcc.TrialData` rebuilt from each arm's digitised
    Kaplan-Meier curve and published numbers at risk (:func:`reconstruct_ipd` per arm).

    ``arms`` maps each arm label to ``(curve, at_risk)``, ``(curve, at_risk, total_events)``
    or a dict with keys ``curve``, ``at_risk``, ``total_events``, ``median`` (the published
    median, compared in the fidelity report); ``curve`` and ``at_risk`` are DataFrames (or
    two-column arrays) or paths of CSV files as a digitiser writes them. The times are in
    ``time_unit``, the unit of the figure's axis. Every patient is in one site (``site``): a
    published curve carries no site information. The result is marked RECONSTRUCTED (its
    repr, its ``source`` and every fit of it say so) and keeps its inputs in
    ``trial.reconstruction``, for :func:`reconstruction_fidelity` and
    :func:`bayes_hcc.plot_reconstruction`.
    """
    from bayes_hcc.data.trial import TrialData
    from bayes_hcc.units import check_time_unit

    time_unit = check_time_unit(time_unit)
    if not isinstance(arms, dict) or len(arms) != 2:
        raise TrialDataError("reconstruct_trial: give a dict with the two arms, {control_label: "
                             "(curve, at_risk), treatment_label: (curve, at_risk)}.")
    labels = {str(a) for a in arms}
    if labels != {str(control), str(treatment)}:
        raise TrialDataError(f"reconstruct_trial: the arms given are {sorted(labels)}, but "
                             f"control={control!r} and treatment={treatment!r}: name the two "
                             "arms as the dict's keys.")
    if not endpoint.isidentifier():
        raise TrialDataError(f"reconstruct_trial: endpoint {endpoint!r} must be a plain name "
                             "(os, pfs, ...).")
    parts, recon = [], {}
    for arm, value in arms.items():
        arm = str(arm)
        recon[arm] = reconstruct_arm(arm, **_arm_inputs(arm, value))
        ipd = recon[arm].ipd
        parts.append(pd.DataFrame({
            "patient_id": [f"{arm}-{i + 1:04d}" for i in range(len(ipd))],
            "site": site, "arm": arm,
            f"{endpoint}_time": ipd["time"].to_numpy(float),
            f"{endpoint}_event": ipd["event"].to_numpy(int)}))
    frame = pd.concat(parts, ignore_index=True)
    source = source or (f"RECONSTRUCTED from published Kaplan-Meier curves "
                        f"({METHOD})")
    if "RECONSTRUCTED" not in source:
        source = f"{source} (RECONSTRUCTED, {METHOD})"
    trial = TrialData.from_table(frame, control=control, treatment=treatment,
                                 time_unit=time_unit, source=source, layout="times")
    return trial.with_reconstruction(recon)


# -- fidelity ----------------------------------------------------------------------------------
def _step(times, values, at):
    """A right-continuous step function through (times, values) evaluated at ``at``."""
    idx = np.searchsorted(times, at, side="right") - 1
    return np.where(idx >= 0, values[np.clip(idx, 0, None)], 1.0)


def _km(time, event):
    """Kaplan-Meier step points (times, survival) of one arm's patients."""
    ut = np.unique(time[event == 1])
    at_risk = np.array([(time >= u).sum() for u in ut])
    d = np.array([((time == u) & (event == 1)).sum() for u in ut])
    return np.r_[0.0, ut], np.r_[1.0, np.cumprod(1.0 - d / at_risk)]


def _median(times, surv):
    below = np.flatnonzero(surv <= 0.5)
    return float(times[below[0]]) if len(below) else float("nan")


@dataclass(frozen=True)
class Fidelity:
    """How closely reconstructed patients reproduce what was published.

    ``summary``: one row per arm (patients, events reconstructed and published, max and
    mean absolute difference between the reconstructed KM and the digitised curve at the
    digitised points, medians of the digitised curve, the reconstruction and the
    publication). ``intervals``: per arm and at-risk interval, the published and
    reconstructed numbers at risk at its start and the reconstructed events and
    censorings in it."""

    summary: pd.DataFrame
    intervals: pd.DataFrame

    @classmethod
    def of(cls, arms, *, time_unit: str = "months") -> Fidelity:
        """The report of some :class:`ArmReconstruction` (one or both arms)."""
        rows, tables = {}, []
        for rec in arms:
            rows[rec.arm], table = arm_fidelity(rec)
            tables.append(table)
        summary = pd.DataFrame.from_dict(rows, orient="index")
        summary.index.name = "arm"
        summary.attrs["time_unit"] = time_unit
        return cls(summary, pd.concat(tables, ignore_index=True))

    def __repr__(self) -> str:
        with pd.option_context("display.width", 120, "display.max_columns", 20,
                               "display.float_format", "{:.3f}".format):
            return (f"Reconstruction fidelity ({METHOD})\n{self.summary.to_string()}\n\n"
                    f"Per at-risk interval:\n{self.intervals.to_string(index=False)}")

    def _repr_html_(self) -> str:
        return (f"<p><b>Reconstruction fidelity</b> ({METHOD})</p>"
                + self.summary.to_html(float_format="{:.3f}".format)
                + "<p>Per at-risk interval</p>"
                + self.intervals.to_html(index=False, float_format="{:.3f}".format))


def arm_fidelity(rec: ArmReconstruction) -> tuple[dict, pd.DataFrame]:
    """One arm's fidelity row and interval table, computed from the patients alone (the
    reconstruction's own bookkeeping is not trusted)."""
    t, e = rec.ipd["time"].to_numpy(float), rec.ipd["event"].to_numpy(int)
    kt, ks = _km(t, e)
    pts_t, pts_s = rec.curve.time, rec.curve.survival
    diff = np.abs(_step(kt, ks, pts_t) - pts_s)
    row = {"patients": len(t), "events": int(e.sum()),
           "events_published": rec.total_events,
           "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
           "median_digitised": _median(pts_t, pts_s),
           "median_reconstructed": _median(kt, ks),
           "median_published": rec.published_median}
    tr, nr = rec.at_risk["time"].to_numpy(float), rec.at_risk["n_at_risk"].to_numpy(int)
    ends = np.r_[tr[1:], np.inf]
    rows = []
    for i, (a, b) in enumerate(zip(tr, ends)):
        inside = (t >= a) & (t < b)
        # the last interval ends with the curve (a table past its end: a zero-length row)
        rows.append({"arm": rec.arm, "start": a, "end": b if np.isfinite(b) else max(a, pts_t[-1]),
                     "at_risk_published": int(nr[i]), "at_risk_reconstructed": int((t >= a).sum()),
                     "events": int((inside & (e == 1)).sum()),
                     "censored": int((inside & (e == 0)).sum())})
    return row, pd.DataFrame(rows)


def reconstruction_fidelity(trial) -> Fidelity:
    """The fidelity report of a trial built by :func:`reconstruct_trial` (see
    :class:`Fidelity`)."""
    recon = getattr(trial, "reconstruction", None)
    if not recon:
        raise TrialDataError("reconstruction_fidelity: these data were not reconstructed from "
                             "published curves (build them with bh.reconstruct_trial).")
    return Fidelity.of([recon[arm] for arm in trial.arms], time_unit=trial.time_unit)
