"""Agreement with lifelines and statsmodels (fast form on the example trial; all shipped
datasets in the slow run)."""

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.validation.agreement import event_time_cuts


def test_agreement_on_the_example_trial():
    """Every check, including Cox, Cox with site indicators and site-stratified Cox, within
    the tolerances stated in ``TOLERANCE_SE``."""
    tab = bh.agreement(bh.datasets.load_example_trial())
    assert len(tab) == 7
    assert tab["ok"].all(), tab
    assert tab["converged"].all()


def test_a_check_on_a_fit_that_failed_its_convergence_checks_is_not_ok(monkeypatch):
    """The fits are made with warnings silenced, and a row said ok from its numbers alone:
    agreement from a posterior that had not converged passed, without a word."""
    monkeypatch.setattr(bh.Fit, "convergence_problems",
                        lambda self: ["r_hat = 1.2 (log_hr), needs <= 1.01"])
    tab = bh.agreement(bh.datasets.load_veteran(), checks=["weibull"], draws=200, tune=200,
                       chains=2)
    row = tab.iloc[0]
    assert not row["ok"] and not row["converged"]
    assert row["note"] == "the fit failed its convergence checks: r_hat = 1.2 (log_hr), needs "\
                          "<= 1.01"


def test_event_time_cuts_put_each_event_time_at_an_interval_end():
    cuts = event_time_cuts([1.0, 2.0, 2.0, 3.0, 4.0], [1, 1, 0, 1, 0])
    assert list(cuts) == [1.0, 2.0]  # 3.0 is the last event time: its interval is open


def test_unknown_check_is_named():
    with pytest.raises(bh.BayesHCCError, match=r"checks: unknown 'kaplan'; choose from"):
        bh.agreement(bh.datasets.load_veteran(), checks=["kaplan"])
    # one check as text is one check (it was the checks 'c', 'o', 'x')
    with pytest.raises(bh.BayesHCCError, match=r"unknown 'coxx' \(did you mean 'cox'\?\)"):
        bh.agreement(bh.datasets.load_veteran(), checks="coxx")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["veteran", "leukemia", "rats"])
def test_agreement_on_shipped_real_datasets(name):
    tab = bh.agreement(bh.datasets.LOADERS[name]())
    assert tab["ok"].all(), tab


# the stratified Cox reference on a site without deaths: lifelines warns its MLE may not be
# unique (the reference's own warning, shown to the user as lifelines issues it)
@pytest.mark.filterwarnings("ignore::lifelines.exceptions.ConvergenceWarning")
def test_a_cut_with_a_patient_randomized_that_day_and_a_site_without_deaths():
    """On a data cut, a patient randomized on the cut's day is censored at 0: lifelines
    refuses a duration of 0 (ValueError from inside lifelines); that patient adds nothing
    to any likelihood (S(0) = 1) and is left out of the reference exactly. What the data
    warn of (here a site without deaths under fixed site effects) goes to the row's note,
    since the fits' warnings are not shown."""
    cut = bh.datasets.load_example_trial().cut("2017-11-15", warn=False)
    ep = cut.endpoint("os")
    assert ((ep.time == 0) & (ep.event == 0)).any()
    tab = bh.agreement(cut, checks=["weibull", "stratified_cox"], draws=300, tune=300,
                       chains=2)
    assert np.isfinite(tab.loc["weibull log HR vs lifelines WeibullAFTFitter", "reference"])
    # leaving them out is exact: the same reference as keeping them censored at 1e-9
    # months, whose likelihood term -H(1e-9) is ~1e-10 (1e-5: lifelines' optimiser tolerance)
    from bayes_hcc.validation.agreement import lifelines_weibull_log_hr

    nudged = lifelines_weibull_log_hr(np.where(ep.time == 0, 1e-9, ep.time), ep.event, ep.arm)
    assert tab.loc["weibull log HR vs lifelines WeibullAFTFitter", "reference"] == \
        pytest.approx(nudged[0], abs=1e-5)
    assert "have no events: with site_effect='fixed'" in tab.loc[
        "piecewise + fixed site effects vs site-stratified Cox", "note"]
