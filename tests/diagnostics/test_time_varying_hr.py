"""The proportional-hazards check: PiecewiseExponential(time_varying_hr=True)."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh


def non_ph_trial(n=600, seed=5):
    """Control: constant hazard 0.1/month. Treatment: 0.03 before 6 months, 0.2 after
    (HR 0.3 early, 2.0 late). Administrative censoring at 24 months."""
    rng = np.random.default_rng(seed)
    arm = np.repeat([0, 1], n // 2)
    t = np.where(arm == 0, rng.exponential(10.0, n), 0.0)
    e = rng.exponential(size=n)
    early = e / 0.03
    t = np.where(arm == 1, np.where(early < 6, early, 6 + (e - 0.03 * 6) / 0.2), t)
    event = (t <= 24).astype(int)
    return bh.read_trial(pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(n)], "site": [f"s{i % 4}" for i in range(n)],
        "arm": np.where(arm == 1, "tace_sorafenib", "sorafenib"),
        "os_time": np.minimum(t, 24), "os_event": event}))


def test_time_varying_hr_detects_crossing_hazards():
    trial = non_ph_trial()
    model = bh.PiecewiseExponential(cuts=[3.0, 6.0, 9.0, 12.0], time_varying_hr=True,
                                    site_effect="none")
    fit = model.fit(trial, random_seed=1)
    hr = np.exp(fit.posterior["log_hr_interval"])
    first = hr.isel(interval=0).values.ravel()
    last = hr.isel(interval=-1).values.ravel()
    # Truth 0.3 early and 2.0 late; the smoothing prior pulls both towards the average, but
    # the posterior must still put >95% probability on HR < 1 early and HR > 1 late.
    assert np.mean(first < 1) > 0.95 and np.mean(last > 1) > 0.95
    assert "geometric mean" in bh.hazard_ratio(fit).attrs["definition"]
    # Survival and medians use the per-interval HRs: standardized S matches KM at 12 months
    # within 3 posterior SDs.
    from lifelines import KaplanMeierFitter

    ep = trial.endpoint("os")
    s12 = bh.survival(fit, [12.0]).sel(arm="tace_sorafenib").values.ravel()
    km = KaplanMeierFitter().fit(ep.time[ep.arm == 1], ep.event[ep.arm == 1])
    assert abs(np.median(s12) - float(km.predict(12.0))) < 3 * s12.std()
    # The headline table gives the HR averaged over time too: the ratio of the arms'
    # cumulative hazards to tau. Truth at 12 months: (0.03 x 6 + 0.2 x 6) / (0.1 x 12) =
    # 1.15 (harm), where the geometric mean over the five intervals is 0.94.
    table = bh.summarize(fit, tau=12.0, frequentist=False)
    row = table.loc["marginal HR to 12 months"]
    assert "cumulative hazards" in row["note"] and "row 'marginal HR" in table.loc["HR", "note"]
    # independent closed form from the draws (no site effects): H_arm(12) is the sum over
    # the intervals [0, 3), ..., [9, 12) of 3 x exp(log hazard of the arm's interval)
    post = fit.posterior
    alpha = post["log_baseline_hazard"].transpose("chain", "draw", "interval").values
    lhi = post["log_hr_interval"].transpose("chain", "draw", "interval").values
    ratio = (3 * np.exp(alpha + lhi)[..., :4].sum(-1)) / (3 * np.exp(alpha)[..., :4].sum(-1))
    assert row["median"] == pytest.approx(np.median(ratio), rel=1e-9)
    # 1,000 draws of a 600-patient trial: the truth within the 95% interval
    assert row["lower"] < 1.15 < row["upper"] and row["lower"] > 0.94
    for q in ("P(HR < 1)", "P(HR < 0.8)"):
        assert "geometric mean" in table.loc[q, "note"]


def test_time_varying_hr_flat_under_proportional_hazards():
    """Example trial (PH by construction): every interval's 95% interval contains the
    average HR."""
    trial = bh.datasets.load_example_trial()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        fit = bh.PiecewiseExponential(time_varying_hr=True).fit(trial, random_seed=1)
    avg = float(np.median(bh.hazard_ratio(fit)))
    q = np.exp(fit.posterior["log_hr_interval"]).quantile([0.025, 0.975], dim=("chain", "draw"))
    assert ((q.sel(quantile=0.025) < avg) & (avg < q.sel(quantile=0.975))).all()
    fig = bh.plot_time_varying_hr(fit)
    assert len(fig.axes) == 1


def test_interval_labels_are_short_in_any_unit(example_trial):
    """The plot's interval labels were the coordinates as stored: in days, cuts at event-time
    quantiles read "[57.5269, 115.054)". They show 3 significant digits; the coordinates
    keep every digit."""
    import re

    fit = bh.PiecewiseExponential(time_varying_hr=True).fit(
        example_trial.to_unit("days"), draws=100, tune=100, chains=2, random_seed=1,
        check=False)
    labels = [t.get_text() for t in bh.plot_time_varying_hr(fit).axes[0].get_xticklabels()]
    stored = [str(v) for v in fit.posterior["log_hr_interval"]["interval"].values]
    assert len(labels) == len(stored) == 6 and labels[0].startswith("[0, ")
    for label, full in zip(labels, stored):
        numbers = re.findall(r"[\d.]+|inf", label)
        assert all(n == "inf" or len(n.replace(".", "").lstrip("0")) <= 3 for n in numbers)
        assert [float(n) for n in numbers] == pytest.approx(
            [float(n) for n in re.findall(r"[\d.]+|inf", full)], rel=5e-3)
