"""Reconstruction of patient-level data from a digitised KM curve and its numbers at risk
(Guyot 2012): round trips on real data, digitiser defects cleaned and reported, inconsistent
inputs refused by name. (Work in progress for #25: one arm at a time.)"""

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import median_survival_times

import bayes_hcc as bh
from bayes_hcc.data.reconstruct import clean_curve

reconstruct_ipd = bh.reconstruct_ipd


def digitise(t, e, rng, n_points=40):
    """What a person reads off a KM figure: up to ``n_points`` step corners (after each
    drop) and the end of the curve, with a digitiser's imprecision: times +-0.2% of the axis
    (order kept: a digitiser cannot put a lower step before a higher one), survival +-0.004."""
    km = KaplanMeierFitter().fit(t, e)
    sf = km.survival_function_.iloc[:, 0]
    times, surv = sf.index.to_numpy(), sf.to_numpy()
    drop = np.flatnonzero(np.diff(surv) < 0) + 1
    idx = drop[np.unique(np.round(np.linspace(0, len(drop) - 1, min(n_points, len(drop))))
                         .astype(int))]
    pt = np.sort(np.abs(times[idx] + rng.normal(0, 0.002 * times.max(), len(idx))))
    ps = surv[idx] + rng.normal(0, 0.004, len(idx))
    curve = pd.DataFrame({"t": np.r_[0.0, pt, times[-1]],
                          "s": np.r_[1.0, ps, min(surv[-1], ps[-1])]})
    return curve, km


def at_risk_table(t, k=8):
    grid = np.arange(0, t.max(), max(1.0, np.round(t.max() / k)))
    return pd.DataFrame({"t": grid, "n": [int((t >= g).sum()) for g in grid]})


@pytest.mark.parametrize("loader", [bh.datasets.load_example_trial, bh.datasets.load_veteran],
                         ids=["example", "veteran"])
def test_round_trip_on_real_data(loader):
    rng = np.random.default_rng(1)
    ep = loader().endpoint("os")
    parts = []
    for a in (0, 1):
        m = ep.arm == a
        t, e = ep.time[m], ep.event[m]
        curve, km = digitise(t, e, rng)
        ipd = reconstruct_ipd(curve, at_risk_table(t), total_events=int(e.sum()))
        assert len(ipd) == m.sum()  # every patient, once
        assert abs(int(ipd["event"].sum()) - int(e.sum())) <= 2
        km2 = KaplanMeierFitter().fit(ipd["time"], ipd["event"])
        grid = np.linspace(0, 0.95 * t.max(), 200)
        mad = np.mean(np.abs(km.survival_function_at_times(grid).to_numpy()
                             - km2.survival_function_at_times(grid).to_numpy()))
        assert mad < 0.02
        ci = median_survival_times(km.confidence_interval_)  # the true KM median's 95% CI
        assert ci.iloc[0, 0] <= km2.median_survival_time_ <= ci.iloc[0, 1]
        parts.append(ipd.assign(arm=float(a)))
    rec = pd.concat(parts)
    true = pd.DataFrame({"time": ep.time, "event": ep.event, "arm": ep.arm.astype(float)})
    b_rec = CoxPHFitter().fit(rec, "time", "event").params_["arm"]
    b_true = CoxPHFitter().fit(true, "time", "event").params_["arm"]
    assert abs(b_rec - b_true) < 0.1


def test_digitiser_defects_are_cleaned_and_reported():
    curve = pd.DataFrame({"t": [5, 0, 2, 2, 8, 9], "s": [70, 100, 85, 85, 71, 60]})
    c = clean_curve(curve)
    assert list(c.time) == [0, 2, 5, 8, 9]
    np.testing.assert_allclose(c.survival, [1.0, 0.85, 0.70, 0.70, 0.60])
    text = " ".join(c.changes)
    assert "percent" in text and "sorted" in text and "repeated time" in text
    assert "slightly increasing" in text


def test_inconsistent_inputs_are_refused_by_name():
    curve = pd.DataFrame({"t": [0, 1, 2, 3], "s": [1.0, 0.8, 0.6, 0.5]})
    with pytest.raises(bh.TrialDataError, match="numbers at risk increase at time"):
        reconstruct_ipd(curve, pd.DataFrame({"t": [0, 1, 2], "n": [50, 40, 45]}))
    with pytest.raises(bh.TrialDataError, match="beyond the digitised curve"):
        reconstruct_ipd(curve, pd.DataFrame({"t": [0, 2, 4], "n": [50, 30, 20]}))
    with pytest.raises(bh.TrialDataError, match="starts at S = 0.7"):
        clean_curve(pd.DataFrame({"t": [1, 2], "s": [0.7, 0.6]}))
    with pytest.raises(bh.TrialDataError, match="rises by more than"):
        clean_curve(pd.DataFrame({"t": [0, 1, 2], "s": [1.0, 0.5, 0.7]}))
