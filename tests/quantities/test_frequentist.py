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


def test_a_log_rank_test_without_information_is_said_not_raised():
    """Every patient at risk at the one event time has the event (e.g. all progressions
    seen at the same scan): the log-rank statistic's variance is 0. statsmodels raised a
    LinAlgError from inside ``survdiff`` (so did ``bh.summarize`` and the sensitivity
    grid); the row is now blank with a note. The Cox row is lifelines' own (Efron's tie
    handling gives HR 1 here)."""
    t = np.array([1.0, 5, 5, 2, 5, 5])
    event = np.array([0.0, 1, 1, 0, 1, 1])
    arm = np.array([0, 0, 0, 1, 1, 1])
    for strata in (None, np.array([0, 0, 1, 1, 0, 1])):
        table = classical_comparison(t, event, arm, ("c", "t"), strata=strata)
        test = table.loc["log-rank test"]
        assert np.isnan(test["estimate"]) and np.isnan(test["p_value"])
        assert "not computable" in test["note"] and "variance is 0" in test["note"]
    ref = _reference(type("Ep", (), {"time": t, "event": event, "arm": arm})())
    assert table.iloc[1]["estimate"] == pytest.approx(ref["exp(coef)"], rel=1e-9)


@pytest.mark.parametrize("case", ["separated", "other arm gone", "within strata"])
def test_a_monotone_cox_likelihood_is_not_estimable(case):
    """Events in both arms, but every event at a time when both arms have patients at risk
    is in one arm: the Cox partial likelihood rises without bound in the arm effect (Efron
    or Breslow ties alike), so its maximum is at HR 0 or infinity. lifelines warned and
    printed e.g. HR 5e-08 (95% CI 0 to inf); the row is now blank and says why. The test
    shows lifelines' own fit diverging on the same data, so the rule is not stricter than
    the likelihood."""
    import warnings

    import pandas as pd
    from lifelines.exceptions import ConvergenceWarning

    strata = None
    if case == "separated":  # every control patient fails before any treated patient
        t, event, arm = [1.0, 2, 3, 4, 5, 6], [1.0] * 6, [0, 0, 0, 1, 1, 1]
    elif case == "other arm gone":  # treated events only once no control is at risk
        t, event, arm = [1.0, 2, 3, 0.5, 0.5, 4], [1.0, 1, 1, 0, 0, 1], [0, 0, 0, 1, 1, 1]
    else:  # pooled, the treated event at 10 has a control at risk; in its stratum none
        t = [1.0, 2, 3, 10, 4, 20, 12]
        event = [1.0, 1, 0, 1, 1, 0, 0]
        arm = [0, 0, 1, 1, 0, 0, 1]
        strata = np.array([0, 0, 0, 0, 1, 1, 1])
    t, event, arm = np.array(t), np.array(event), np.array(arm)
    table = classical_comparison(t, event, arm, ("c", "t"), strata=strata)
    cox = table.iloc[1]
    assert np.isnan(cox[["estimate", "lower", "upper", "p_value"]].astype(float)).all()
    assert "not estimable" in cox["note"] and "monotone likelihood" in cox["note"]
    assert "only arm c" in cox["note"]
    assert np.isfinite(table.loc["log-rank test", "p_value"])  # the test is still defined
    df = pd.DataFrame({"T": t, "E": event, "arm": arm.astype(float)})
    kw = {}
    if strata is not None:
        df["s"] = strata
        kw["strata"] = ["s"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from lifelines import CoxPHFitter

        s = CoxPHFitter().fit(df, "T", "E", **kw).summary.loc["arm"]
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    assert s["se(coef)"] > 100  # lifelines stopped far out on a rising likelihood
    if strata is not None:  # unstratified, the same data have a finite Cox estimate
        plain = classical_comparison(t, event, arm, ("c", "t")).iloc[1]
        assert np.isfinite(plain["estimate"]) and 0 < plain["estimate"]


def test_no_event_time_with_both_arms_at_risk_is_not_estimable():
    """Each stratum holds one arm: no event informs the arm effect at all (the partial
    likelihood is flat), and neither the stratified test nor the Cox model exists."""
    t = np.array([1.0, 2, 3, 4])
    event = np.array([1.0, 1, 1, 1])
    arm = np.array([0, 0, 1, 1])
    table = classical_comparison(t, event, arm, ("c", "t"), strata=arm)
    assert "no event time had patients of both arms at risk" in table.iloc[1]["note"]
    assert np.isnan(table.loc["log-rank test", "p_value"])


def test_summarize_of_a_trial_whose_events_share_one_time():
    """The user's view of the first test above: a fit whose patients at risk all had their
    event at the same time. ``bh.summarize`` raised statsmodels' LinAlgError; its log-rank
    row is now blank and says why, and the Bayesian rows are there."""
    from tests.helpers import six_patient_fit

    table = bh.summarize(six_patient_fit([1.0, 5, 5, 2, 5, 5], [0, 1, 1, 0, 1, 1]))
    row = table.loc["log-rank p"]
    assert np.isnan(row["mean"]) and "variance is 0" in row["note"]
    assert "chi-square" not in row["note"].replace("estimate = chi-square", "")
    assert np.isfinite(table.loc["HR", "median"])
