"""The frequentist companion: the numbers are lifelines' and statsmodels' own, on the data
the fit used (summarize, sensitivity rows), stratified when asked, with delayed entry."""

import numpy as np
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test

import bayes_hcc as bh
from bayes_hcc.data.km import classical_comparison


def _reference(ep, strata=None):
    import pandas as pd

    df = pd.DataFrame({"T": ep.time, "E": ep.event, "arm": ep.arm.astype(float)})
    kw = {}
    if strata is not None:
        df["s"] = np.asarray(strata).astype(str)
        kw["strata"] = ["s"]
    return CoxPHFitter().fit(df, "T", "E", **kw).summary.loc["arm"]


def test_equal_to_lifelines_on_the_example_trial(example_trial):
    ep = example_trial.endpoint("os")
    table = classical_comparison(ep.time, ep.event, ep.arm, ep.arms)
    ref = _reference(ep)
    cox = table.iloc[1]
    # lifelines prints 2 decimals of exp(coef) and its CI; we hold its own numbers
    assert cox["estimate"] == pytest.approx(ref["exp(coef)"], rel=1e-9)
    assert cox["lower"] == pytest.approx(ref["exp(coef) lower 95%"], rel=1e-9)
    assert cox["upper"] == pytest.approx(ref["exp(coef) upper 95%"], rel=1e-9)
    # unstratified log-rank: statsmodels' survdiff equals lifelines' logrank_test
    lr = logrank_test(ep.time[ep.arm == 0], ep.time[ep.arm == 1], ep.event[ep.arm == 0],
                      ep.event[ep.arm == 1])
    assert table.loc["log-rank test", "p_value"] == pytest.approx(lr.p_value, rel=1e-6)
    for i, a in enumerate(ep.arms):
        km = KaplanMeierFitter().fit(ep.time[ep.arm == i], ep.event[ep.arm == i])
        assert table.loc[f"KM median {a} (months)", "estimate"] == km.median_survival_time_


def test_a_very_small_log_rank_p_is_not_rounded_to_zero():
    """statsmodels' survdiff gives p = 1 - cdf: 1.1e-16 at a chi-square of 68 and 0 beyond
    about 75, printed as "p = 0" in a table. The p-value is the chi-square's upper tail."""
    from scipy import stats

    rng = np.random.default_rng(11)
    arm = np.repeat([0, 1], 100)
    time = rng.exponential(np.where(arm == 1, 20.0, 1.0))
    event = np.ones(200)
    table = classical_comparison(time, event, arm, ("control", "treatment"))
    chisq, p = table.loc["log-rank test", ["estimate", "p_value"]]
    assert chisq > 100  # where survdiff's own p is exactly 0
    assert p == stats.chi2.sf(chisq, 1) and 0 < p < 1e-20
    lr = logrank_test(time[arm == 0], time[arm == 1], event[arm == 0], event[arm == 1])
    assert chisq == pytest.approx(lr.test_statistic, rel=1e-6)  # the same test


def test_stratified_by_site(example_trial):
    ep = example_trial.endpoint("os")
    table = classical_comparison(ep.time, ep.event, ep.arm, ep.arms, strata=ep.site)
    ref = _reference(ep, ep.site)
    assert table.iloc[1]["estimate"] == pytest.approx(ref["exp(coef)"], rel=1e-9)
    assert "stratified" in table.iloc[0]["method"]
    assert table.attrs["stratified"]
    # stratifying by site changes the test here (site baselines differ in the example)
    plain = classical_comparison(ep.time, ep.event, ep.arm, ep.arms)
    assert table.iloc[0]["estimate"] != pytest.approx(plain.iloc[0]["estimate"])


def test_delayed_entry_is_passed_to_both_libraries():
    rng = np.random.default_rng(3)
    n = 300
    arm = rng.integers(0, 2, n)
    t = rng.exponential(10 / np.exp(-0.5 * arm))
    entry = rng.uniform(0, 3, n)
    keep = t > entry  # left truncation: only those alive at entry are seen
    t, arm, entry = t[keep], arm[keep], entry[keep]
    event = (t < 30).astype(float)
    t = np.minimum(t, 30)
    table = classical_comparison(t, event, arm, ("c", "t"), entry=entry)
    import pandas as pd

    df = pd.DataFrame({"T": t, "E": event, "arm": arm.astype(float), "entry": entry})
    ref = CoxPHFitter().fit(df, "T", "E", entry_col="entry").summary.loc["arm"]
    assert table.iloc[1]["estimate"] == pytest.approx(ref["exp(coef)"], rel=1e-9)
    ignored = classical_comparison(t, event, arm, ("c", "t"))
    assert table.iloc[1]["estimate"] != pytest.approx(ignored.iloc[1]["estimate"])
    assert table.attrs["delayed_entry"] and "delayed entry" in table.iloc[0]["method"]


def test_no_events_in_an_arm_is_said_not_hidden():
    t = np.array([1.0, 2, 3, 4, 5, 6])
    event = np.array([1.0, 1, 1, 0, 0, 0])
    arm = np.array([0, 0, 0, 1, 1, 1])
    table = classical_comparison(t, event, arm, ("c", "t"))
    assert np.isnan(table.iloc[1]["estimate"])
    assert "no events in arm t" in table.iloc[1]["note"]
    assert np.isfinite(table.iloc[0]["p_value"])


def test_summarize_carries_the_companion(example_weibull_fit, example_trial):
    table = bh.summarize(example_weibull_fit)
    freq = table[table["estimand"] == "frequentist"]
    ep = example_trial.endpoint("os")
    ref = _reference(ep)
    assert freq.filter(like="Cox HR", axis=0)["median"].iloc[0] == pytest.approx(
        ref["exp(coef)"], rel=1e-9)
    assert 0 < freq.loc["log-rank p", "mean"] < 1
    assert "frequentist" not in bh.summarize(example_weibull_fit, frequentist=False)[
        "estimand"].to_numpy()
