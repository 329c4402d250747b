"""Patient-level data from a published Kaplan-Meier curve and its numbers at risk (Guyot,
Ades, Ouwens and Welton, BMC Med Res Methodol 2012;12:9).

WORK IN PROGRESS (#25): ``clean_curve`` and ``reconstruct_ipd`` (one arm) exist and are
checked by a round trip on real data; ``reconstruct_trial``, the plot, the fidelity report,
the CLI and the docs are still to come.

The algorithm, per interval of the numbers-at-risk table [T_i, T_{i+1}):

1. guess the number censored in the interval from the drop of the curve,
   c_i = round(n_i S(T_{i+1}) / S(T_i) - n_{i+1});
2. spread those censorings evenly over the interval;
3. walk the digitised steps of the interval: at each step k the events are
   d_k = round(n_k (1 - S_k / S_km)), S_km the reconstructed KM so far, and the patients at
   risk drop by the events and the censorings before the next step;
4. if the number left at risk differs from the published n_{i+1}, correct c_i by the
   difference and repeat (until it matches or stops changing).

The last interval has no count after it: its censorings follow the total number of events
when it is given (the events are matched), otherwise the average censoring rate of the
earlier intervals (Guyot's rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_hcc.errors import TrialDataError

__all__ = ["clean_curve", "reconstruct_ipd", "CleanedCurve"]


@dataclass(frozen=True)
class CleanedCurve:
    """Digitised points after cleaning, and what was changed."""

    time: np.ndarray
    survival: np.ndarray
    changes: list = field(default_factory=list)


def clean_curve(curve, *, tol: float = 0.02) -> CleanedCurve:
    """Clean digitised (time, survival) points as a digitiser exports them.

    Sorted by time; survival in percent (any value above 1.5) divided by 100; exact
    duplicates removed; points that rise above an earlier point by at most ``tol`` (a
    digitiser's jitter) lowered to the running minimum; negative times refused; a point
    (0, 1) added when missing. Each change is listed in ``changes``. A curve rising by more
    than ``tol``, or starting clearly below 1, is an error naming the points."""
    frame = pd.DataFrame(curve).copy() if not isinstance(curve, pd.DataFrame) else curve.copy()
    if frame.shape[1] < 2:
        raise TrialDataError("reconstruct: the curve needs two columns, time and survival.")
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


def _check_at_risk(at_risk, t_max):
    frame = pd.DataFrame(at_risk).copy() if not isinstance(at_risk, pd.DataFrame) \
        else at_risk.copy()
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
    if times[-1] > t_max + 1e-9:
        raise TrialDataError(f"reconstruct: at-risk time {times[-1]:g} lies beyond the "
                             f"digitised curve (last point {t_max:g}): digitise the curve "
                             "to its end or drop that column.")
    if np.any(n < 0) or np.any(n != np.round(n)):
        raise TrialDataError("reconstruct: numbers at risk must be whole numbers >= 0.")
    return times, n.astype(int)


def _walk(ts, ss, n_start, s_km, cens):
    """Events and risk set over the steps ``ts`` (survival ``ss``) of one interval, starting
    with ``n_start`` at risk and the reconstructed KM at ``s_km``; ``cens`` are the
    censoring times of the interval. Returns (events per step, censored per step, n left,
    KM after)."""
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
        if up_i < lo_i:  # no digitised point in this interval: nothing happens in it
            continue
        t_int, s_int = ts[lo_i:up_i + 1], ss[lo_i:up_i + 1]
        t_end = tr[i + 1] if i + 1 < m else ts[-1]
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
    out = pd.DataFrame({"time": time, "event": event}).sort_values(
        ["time", "event"], ascending=[True, False], kind="stable").reset_index(drop=True)
    out.attrs["changes"] = cleaned.changes
    out.attrs["method"] = "Guyot et al. 2012 (BMC Med Res Methodol 12:9)"
    return out
