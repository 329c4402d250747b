"""Progression and death as the illness-death model reads them, and the errors a
statistician meets with bad data or options."""

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.errors import DataWarning, ModelError, TrialDataError


def test_from_the_example_trial():
    trial = bh.datasets.load_example_trial()
    d = bh.IllnessDeathData.from_trial(trial)
    ttp, os_ = trial.endpoint("ttp"), trial.endpoint("os")
    assert len(d) == trial.n_patients and sum(d.counts().values()) == len(d)
    # progression seen between scans: (L, R] with R the scan that showed it
    seen = ttp.kind > 0
    assert np.array_equal(d.progressed, seen)
    np.testing.assert_allclose(d.prog_upper[seen], ttp.time[seen])
    assert np.all(d.prog_lower[seen] < d.prog_upper[seen])
    # no progression seen: free at the last scan, which is not after death or censoring
    np.testing.assert_allclose(d.prog_lower[~seen], ttp.time[~seen])
    assert np.all(np.isinf(d.prog_upper[~seen])) and np.all(d.prog_lower <= d.time)
    np.testing.assert_array_equal(d.death, os_.event)
    assert d.counts()["progression then death"] == int((seen & (os_.event == 1)).sum())


def arrays(**change):
    base = dict(arm=[0, 1, 0], site=None, prog_lower=[1.0, 2.0, 0.5],
                prog_upper=[2.0, np.inf, 0.5], time=[5.0, 6.0, 4.0], death=[1, 0, 1],
                patient_id=["P1", "P2", "P3"])
    return {**base, **change}


@pytest.mark.parametrize("change, match", [
    (dict(prog_upper=[7.0, np.inf, 0.5]), "progression after death.*P1"),
    (dict(prog_lower=[1.0, 8.0, 0.5]), "progression-free assessment after death.*P2"),
    (dict(prog_lower=[3.0, 2.0, 0.5]), "progression seen before the last.*P1"),
    (dict(time=[5.0, -1.0, 4.0]), "negative.*P2"),
    (dict(time=[5.0, np.nan, 4.0]), "missing.*P2"),
    (dict(prog_lower=[1.0, 2.0, 0.0], prog_upper=[2.0, np.inf, 0.0]),
     "progression at time 0.*P3.*half_day"),
])
def test_bad_data_names_the_patients(change, match):
    with pytest.raises(TrialDataError, match=match):
        bh.IllnessDeathData.from_arrays(**arrays(**change))


def test_progression_recorded_at_death_counts_as_death_without_progression():
    with pytest.warns(DataWarning, match="P3"):
        d = bh.IllnessDeathData.from_arrays(**arrays(prog_lower=[1.0, 2.0, 4.0],
                                                     prog_upper=[2.0, np.inf, 4.0]))
    assert not d.progressed[2] and d.counts()["death without a progression seen"] == 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(baseline="lognormal_aft"), "accelerated-failure-time"),
    (dict(baseline="cox"), "known families"),
    # one family per transition as a list raised "unhashable type: 'list'"
    (dict(baseline=["weibull_ph"] * 3), "give one family name, the baseline of all three"),
    (dict(time_scale="clock"), "markov, semi_markov"),
    (dict(site_effect="fixed"), "random, shared, none"),
    (dict(priors={"relapse.log_hr": bh.Prior("Normal", mu=0, sigma=1)}), "transition 'relapse'"),
])
def test_option_errors(kwargs, match):
    with pytest.raises(ModelError, match=match):
        bh.IllnessDeath(**kwargs)


def test_fit_errors_before_sampling():
    d = bh.IllnessDeathData.from_arrays(**arrays())
    with pytest.raises(ModelError, match="at least 2 sites"):
        bh.IllnessDeath().fit(d)
    none = bh.IllnessDeathData.from_arrays(**arrays(prog_upper=[np.inf] * 3,
                                                    prog_lower=[1.0, 2.0, 0.5]))
    with pytest.raises(ModelError, match=r"no progression seen.*Fit OS alone"):
        bh.IllnessDeath(site_effect="none").fit(none)
    no_deaths = bh.IllnessDeathData.from_arrays(**arrays(death=[0, 0, 0]))
    with pytest.raises(ModelError, match=r"no deaths at all.*Fit TTP alone"):
        bh.IllnessDeath(site_effect="none").fit(no_deaths)
    with pytest.raises(ModelError, match=r"covariates 'age' listed more than once"):
        bh.IllnessDeath(covariates=["age", "age"])
    with pytest.raises(ModelError, match="unknown parameter"):  # when the model is made
        bh.IllnessDeath(site_effect="none", priors={"log_scale": {"dist": "Normal", "mu": 0,
                                                                  "sigma": 1}})
    with pytest.raises(ModelError, match="cuts are for the piecewise"):
        bh.IllnessDeath(site_effect="none", cuts=[2.0]).fit(d)


def test_progression_and_death_must_be_two_endpoints():
    """progression='os' used to be taken: every death became "a progression at the time of
    death" (a DataWarning), then the fit stopped at "no progression seen"."""
    with pytest.raises(bh.TrialDataError, match=r"progression='os' is also the death "
                                                r"endpoint.*TTP: 'ttp'"):
        bh.IllnessDeathData.from_trial(bh.datasets.load_example_trial(), progression="os")


def test_data_without_progression_say_what_the_model_needs():
    """OS-only data (the veteran trial) used to fail with "endpoint 'ttp' is not in these
    data", which did not say that the model needs progression."""
    with pytest.raises(bh.TrialDataError, match=r"needs progression \('ttp'\) and death "
                       r"\('os'\).* have os but not 'ttp'"):
        bh.IllnessDeath("weibull_ph").fit(bh.datasets.load_veteran())
    # data with another endpoint that may be the progression (colon cancer's recurrence):
    # the message names it and how to say so (it only suggested reading the dates layout)
    with pytest.raises(bh.TrialDataError, match=r"have os, recurrence but not 'ttp'\. If "
                       r"'recurrence' is the progression, name it: fit\(trial, "
                       r"progression='recurrence'\) \(in a spec: \[illness_death\] "
                       r"progression = \"recurrence\"\)"):
        bh.IllnessDeath("weibull_ph", site_effect="none").fit(bh.datasets.load_colon())


def test_bad_sampler_settings_are_refused_by_name():
    d = bh.IllnessDeathData.from_arrays(**arrays())
    with pytest.raises(ModelError, match="draws"):
        bh.IllnessDeath(site_effect="none").fit(d, draws=0)
    with pytest.raises(ModelError, match="auto"):
        bh.IllnessDeath(site_effect="none").fit(d, draws="many")
    with pytest.raises(ModelError, match="target_accept"):
        bh.IllnessDeath(site_effect="none").fit(d, target_accept=1.5)


def test_a_transition_without_events_in_an_arm_is_reported(monkeypatch):
    """Like the single-endpoint models' arm without events: a transition with no event in
    one arm gets a DataWarning naming the transition and the arm (its HR is the prior's);
    it is issued before sampling (here the fit is stopped where it would compile)."""
    d = bh.IllnessDeathData.from_arrays(**arrays())
    control, treated = d.arms
    # arm 1 (P2) neither progresses nor dies; in arm 0 both deaths follow a progression
    assert d.empty_transitions() == [
        ("progression", treated), ("death without progression", control),
        ("death without progression", treated), ("death after progression", treated)]

    def stop(*args, **kwargs):
        raise RuntimeError("stopped before compiling")

    monkeypatch.setattr("bayes_hcc.models.sampling._compiled", stop)
    with pytest.warns(DataWarning, match=f"death after progression in arm '{treated}'"), \
            pytest.raises(RuntimeError, match="stopped before compiling"):
        bh.IllnessDeath(site_effect="none").fit(d)
    full = bh.IllnessDeathData.from_trial(bh.datasets.load_example_trial())
    assert full.empty_transitions() == []
