"""Monitoring a PFS or TTP plan whose progression is seen at scans: looks count progression
events (on the day of the scan that shows them), predictions complete the trial through the
scan process, and design simulations run the plan on simulated scanned trials."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.data.trial import INTERVAL, LEFT
from bayes_hcc.monitoring.plan import plan_from_dict
from bayes_hcc.monitoring.predict import FutureSimulator

ROOT = Path(__file__).resolve().parents[2]
FAST = {"draws": 300, "tune": 300, "chains": 2}


def _plan(**prediction):
    return plan_from_dict({"name": "ttp plan", "analysis": "secondary_ttp.toml",
                           "looks": [{"events": 40, "efficacy": 0.999, "futility": 0.05}],
                           "final": {"events": 70, "success": 0.975},
                           "prediction": {"sample_size": 130, "n_sims": 20,
                                          "method": "normal", **prediction}},
                          base_dir=ROOT / "models")


@pytest.fixture(scope="module")
def look1(example_trial):
    return bh.interim_analysis(example_trial, _plan(), look=1, fast=True, random_seed=2)


def test_look_counts_progressions_when_the_scan_shows_them(look1, example_trial):
    when = example_trial.events_by_date("ttp")
    assert look1.cut_date == when.iloc[39].normalize()
    assert look1.n_events == 40 == look1.data.endpoint("ttp").n_events
    assert look1.data.endpoint("ttp").has_bounds  # still interval-censored after the cut
    rec = look1.record
    assert sum(rec["events_by_arm"].values()) == 40


def test_prediction_completes_the_trial_through_the_scans(look1):
    plan = look1.plan
    # the approximation is said, with the completion that avoids it
    with pytest.warns(bh.DataWarning, match="death, which censors TTP, is not modelled.*"
                      r"completion=bh\.IllnessDeath"):
        sim = FutureSimulator(look1.data, look1.fit, plan.prediction)
    assert sim.scanned and sim.endpoint == "ttp"
    # patients who died are not waiting for a progression
    dead = look1.data.endpoint("os").event == 1
    assert not (sim.at_risk & dead).any()
    rng = np.random.default_rng(4)
    completed = sim.simulate(int(sim.draws(1, rng)[0]), rng)
    day, reached = sim.final_day(completed, plan.final)
    data = sim.completed_trial(completed, day)
    ep = data.endpoint("ttp")
    if reached:  # progressions seen at the same scan day can pass the count together
        assert ep.n_events >= plan.final.events
        assert (sim.event_days(completed) < day).sum() < plan.final.events
    # events known at the look keep their bounds; new ones lie between scans
    # ``assessment_interval`` apart (L = 0 for a progression at a new patient's first scan)
    old = look1.data.endpoint("ttp")
    n_old = len(old)
    np.testing.assert_allclose(ep.lower[:n_old][old.event == 1],
                               old.lower[old.event == 1], atol=1e-9)
    new_iv = (ep.kind == INTERVAL) & (np.arange(len(ep)) >= n_old)
    widths = (ep.upper - ep.lower)[new_iv] * bh.units.DAYS_PER_UNIT["months"]
    scan = plan.prediction.assessment_interval * bh.units.DAYS_PER_UNIT["months"]
    assert new_iv.any() and np.all(np.abs(widths - scan) <= 1.0)  # whole days
    assert (ep.kind == LEFT).any() or (ep.kind == INTERVAL).any()


def test_ppos_and_event_dates_for_a_ttp_plan(look1):
    pp = look1.ppos(random_seed=1)
    assert pp.n_sims == 20 and 0 <= pp.ppos <= 1
    reached = pp.sims["events_reached"]
    assert (pp.sims.loc[reached, "n_events"] >= 70).all()  # ties at a scan day: 71
    dates = bh.predict_event_dates(look1.data, look1.fit, [50, 70], n_sims=200,
                                   prediction=look1.plan.prediction)
    assert (dates["P(not reached)"] < 0.5).all()
    assert (dates["q0.5"] > pd.Timestamp(look1.cut_date)).all()
    assert dates.loc[50, "q0.5"] <= dates.loc[70, "q0.5"]


def test_a_posterior_that_failed_its_checks_is_said_wherever_a_ppos_rests_on_it(
        look1, example_trial, monkeypatch):
    """The illness-death completion model's fit (interim_analysis fits it with check=False)
    and the plan's fit that predictive_probability makes itself were never checked: a PPoS
    drawn from a posterior that had not converged was reported, and decided on, as any
    other. Here a one-chain posterior stands in for a fit that failed (R-hat cannot be
    assessed on one chain)."""
    import warnings

    from tests.multistate.test_completion import point_fit

    assert "completion_problems" not in look1.record  # a look without a completion model
    monkeypatch.setattr(bh.IllnessDeath, "fit", lambda self, trial, **kw: point_fit(trial))
    model = bh.IllnessDeath("exponential_ph", site_effect="none")
    res = bh.interim_analysis(example_trial, _plan(), look=1, fast=True, random_seed=2,
                              ppos=True, completion_model=model)
    assert res.decision == "no decision: diagnostics failed"
    assert res.rule_decision == look1.rule_decision  # the rule's verdict is kept
    assert any(p.startswith("r_hat") for p in res.completion_problems)
    assert res.ppos_result.source_problems == res.completion_problems
    assert res.record["diagnostics_ok"] is False
    assert res.record["completion_problems"] == list(res.completion_problems)
    assert any("completion model's fit failed convergence checks: r_hat" in line
               for line in res.summary_lines())
    # predictive_probability warns when it fitted the posterior itself ...
    with pytest.warns(bh.ConvergenceWarning, match=r"PPoS: the posterior the completions "
                      r"are drawn from \(IllnessDeath\(baseline='exponential_ph'.*failed "
                      r"convergence checks: r_hat"):
        pp = bh.predictive_probability(look1.data, look1.plan, completion=model,
                                       random_seed=1)
    assert "failed convergence checks (r_hat" in repr(pp)
    # ... and records it without a second warning for a fit the caller made and was told of
    with warnings.catch_warnings():
        warnings.simplefilter("error", bh.ConvergenceWarning)
        pp = bh.predictive_probability(look1.data, look1.plan, completion=point_fit(
            look1.data), random_seed=1)
    assert pp.source_problems and "failed convergence checks" in repr(pp)
    # the plan's own fit, made by predictive_probability, likewise
    monkeypatch.setattr(bh.Fit, "convergence_problems",
                        lambda self: ["ess_bulk = 50 (log_hr), needs >= 400"])
    with pytest.warns(bh.DataWarning, match="death, which censors TTP"), \
            pytest.warns(bh.ConvergenceWarning, match=r"PPoS: the posterior .* failed "
                         r"convergence checks: ess_bulk = 50"):
        bh.predictive_probability(look1.data, look1.plan, random_seed=1)


def test_design_simulation_for_a_ttp_plan_with_unequal_schedules():
    res = bh.simulate_design(_plan(), {"shifted scans": {
        "hr_ttp": 0.67, "assessment_offset": {"sorafenib": 0.0, "tace_sorafenib": 1.0}}},
        n_trials=2, refit=FAST, workers=1, progress=False)
    rec = res.records
    assert np.allclose(rec["true_log_hr"], np.log(0.67))
    assert (rec["n_events"] >= 40).all()


def test_plan_endpoints():
    for ep in ("pfs", "ttp"):
        spec = bh.apply_overrides(bh.load_spec(ROOT / "models" / "secondary_ttp.toml"),
                                  {"endpoint": ep})
        assert plan_from_dict({"analysis": spec, "final": {"events": 70,
                                                           "success": 0.975}}).spec.endpoint == ep
    spec = bh.apply_overrides(bh.load_spec(ROOT / "models" / "secondary_ttp.toml"),
                              {"endpoint": "dfs"})
    with pytest.raises(bh.SpecError, match="monitors one of os, pfs, ttp"):
        plan_from_dict({"analysis": spec, "final": {"events": 70, "success": 0.975}})
    with pytest.raises(bh.SpecError, match="assessment_interval"):
        _plan(assessment_interval=0)


def _table_of_completion(sim, completed, day):
    """The times-layout table a data manager would write for a completed trial cut at
    ``day`` (written here from the simulation itself, independently of the package's
    construction): ids, site, arm and the endpoint as time/event or, when progression is
    seen at scans, as (lower, upper] bounds."""
    keep = completed["entry"] <= day
    entry, death = completed["entry"][keep], completed["death"][keep]
    censor = completed["censor"][keep]
    died = death <= np.minimum(censor, day)
    e = sim.endpoint
    table = pd.DataFrame({"patient_id": [f"P{i + 1:05d}" for i in range(keep.sum())],
                          "site": sim.labels["site"][completed["site"][keep]],
                          "arm": sim.labels["arm"][completed["arm"][keep]]})
    if sim.scanned:
        last = completed["last_scan"][keep]
        seen_by = np.maximum(np.where(day >= last, last, last - sim.scan_days * np.ceil(
            (last - day) / sim.scan_days)), entry)
        table[f"{e}_lower"] = (np.where(died, completed["lower"][keep], seen_by) - entry) \
            / sim.days
        table[f"{e}_upper"] = np.where(died, (death - entry) / sim.days, np.nan)
    else:
        table[f"{e}_time"] = (np.minimum(np.minimum(death, censor), day) - entry) / sim.days
        table[f"{e}_event"] = died.astype(int)
    return table


@pytest.mark.parametrize("endpoint", ["ttp", "os"])
def test_completed_trial_equals_reading_its_table(look1, endpoint, example_trial):
    """The simulator builds each completed trial without re-reading a table (it is valid
    by construction); it equals reading, with every check, the table that completion
    describes: interval-censored progression (TTP at scans) and right-censored OS, at the
    final analysis's day and at earlier and later days, in months and in days."""
    from tests.helpers import assert_same_trial

    if endpoint == "os":
        look = bh.interim_analysis(example_trial, ROOT / "models" / "monitoring.toml",
                                   look=1, fast=True, random_seed=2)
    else:
        look = look1
    in_days = look.data.to_unit("days")
    for data, fit in ((look.data, look.fit), (in_days, bh.fit_spec(
            look.plan.spec, in_days, fast=True, random_seed=2, check=False))):
        sim = FutureSimulator(data, fit, look.plan.prediction)
        rng = np.random.default_rng(11)
        for s in sim.draws(3, rng):
            completed = sim.simulate(int(s), rng)
            day, _ = sim.final_day(completed, look.plan.final)
            for d in (day - 45.0, day, day + 200.0):
                want = bh.TrialData.from_table(
                    _table_of_completion(sim, completed, d), control=data.control,
                    treatment=data.treatment, time_unit=data.time_unit, layout="times",
                    warn=False, source="completed trial (prediction)")
                assert_same_trial(sim.completed_trial(completed, d), want)
