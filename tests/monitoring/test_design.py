"""Design operating characteristics: simulated trials, the plan at every look, engines."""

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import bayes_hcc as bh
from bayes_hcc.cli.app import app
from bayes_hcc.monitoring.operating import (DESIGN_BASE, _design_trial, _scenario_kwargs,
                                            parse_scenario)
from bayes_hcc.monitoring.plan import plan_from_dict

ROOT = Path(__file__).resolve().parents[2]
#: 2 chains x 300 draws per look: these tests check bookkeeping and engines, not accuracy.
FAST = {"draws": 300, "tune": 300, "chains": 2}


def _plan(looks=(), final_events=60, prior_sd=None):
    analysis = "primary_os.toml"
    if prior_sd is not None:
        spec = bh.load_spec(ROOT / "models" / analysis)
        analysis = bh.apply_overrides(spec, {"priors.log_hr.sigma": prior_sd})
    return plan_from_dict({"name": "test plan", "analysis": analysis, "looks": list(looks),
                           "final": {"events": final_events, "success": 0.975}},
                          base_dir=ROOT / "models")


def test_design_records_and_oc_table_agree():
    plan = _plan([{"events": 30, "efficacy": 0.99, "futility": 0.05, "futility_hr": 0.8}])
    res = bh.simulate_design(plan, {"null": {"hr_os": 1.0}, "strong": {"hr_os": 0.4}},
                             n_trials=4, refit=FAST, workers=1, progress=False)
    rec = res.records
    assert len(rec) == 8 and set(rec["scenario"]) == {"null", "strong"}
    assert set(rec["decision"]) <= {"stop for efficacy", "stop for futility", "success",
                                    "no success"}
    at_look = rec["look"] == "interim 1"
    assert (rec.loc[at_look, "n_events"] >= 30).all()
    assert (rec.loc[~at_look, "n_events"] >= 60).all() and (rec["n_patients"] <= 130).all()
    assert np.allclose(rec["true_log_hr"], np.where(rec["scenario"] == "null", 0,
                                                    np.log(0.4)))
    tab = res.table()
    for name, g in rec.groupby("scenario"):
        t = tab.loc[name]
        eff = g["decision"].isin(["stop for efficacy", "success"]).mean()
        assert t.loc["P(efficacy): type I error (HR 1) / power", "estimate"] == eff
        assert eff == pytest.approx(t.loc["stop for efficacy at interim 1", "estimate"]
                                    + t.loc["success at final", "estimate"])
        assert t.loc["patients", "estimate"] == g["n_patients"].mean()
        assert t.loc["95% interval covers true HR", "estimate"] == g["covered"].mean()
        assert t.loc["trials with a look within 2 MCSE of a threshold", "estimate"] == \
            (g["near_threshold"] > 0).mean()
    # every MCMC look's MCSE of P(HR < 1) is recorded, and is what a probability from
    # 2 x 300-ish draws has: between 0 (all draws agree: the 1/n bound) and 0.05
    for mcse in rec["mcse_by_look"]:
        assert mcse and all(0 < v < 0.05 for v in mcse.values())
    # and the MCSE of every probability a rule compares: the interim's futility rule is on
    # P(HR < 0.8), the final's success on P(HR < 1)
    for by_look, by_rule in zip(rec["mcse_by_look"], rec["mcse_by_rule"]):
        assert by_rule.keys() == by_look.keys()
        for look, mcses in by_rule.items():
            want = {"P(HR < 1)", "P(HR < 0.8)"} if look == "interim 1" else {"P(HR < 1)"}
            assert mcses.keys() == want and mcses["P(HR < 1)"] == by_look[look]
            assert all(0 < v < 0.05 for v in mcses.values())
    assert (tab["mc_lower"] <= tab["estimate"]).all()
    assert (tab["estimate"] <= tab["mc_upper"]).all()
    assert res.summary().shape == (len(tab) // 2, 2)
    # A trial's record is a function of its seed alone
    payload = (plan, _scenario_kwargs(DESIGN_BASE, {"hr_os": 0.4}), int(rec.iloc[4]["seed"]),
               FAST, None)
    again = _design_trial(payload)
    assert again["decision"] == rec.iloc[4]["decision"]
    assert again["log_hr_median"] == rec.iloc[4]["log_hr_median"]


def test_same_seeds_same_results_on_every_engine_and_an_interrupted_run_resumes(tmp_path):
    """In-process, a local process pool and a Dask LocalCluster give identical records;
    a store cut short (one record kept, the next torn mid-line) resumes to the same."""
    from dask.distributed import Client, LocalCluster

    plan = _plan()
    kw = {"scenarios": {"HR 0.7": {"hr_os": 0.7}}, "n_trials": 3, "refit": FAST,
          "progress": False, "random_seed": 5}
    ref = bh.simulate_design(plan, workers=1, **kw).records
    pool = bh.simulate_design(plan, workers=2, **kw).records
    pd.testing.assert_frame_equal(ref, pool)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        dask = bh.simulate_design(plan, client=client, **kw).records
    pd.testing.assert_frame_equal(ref, dask)

    store = tmp_path / "design.jsonl"
    bh.simulate_design(plan, workers=1, store=store, **kw)
    lines = store.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["key"] == "__meta__"
    store.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])
    resumed = bh.simulate_design(plan, workers=1, store=store, **kw).records
    pd.testing.assert_frame_equal(ref, resumed)
    assert len(store.read_text().splitlines()) == 4
    with pytest.raises(bh.BayesHCCError, match="different settings"):
        bh.simulate_design(plan, workers=1, store=store, **{**kw, "random_seed": 6})


def test_a_ppos_futility_look_records_the_mcse_of_its_ppos():
    """A look with a PPoS futility rule records the Monte Carlo error of the PPoS it
    compared: a binomial one from the plan's 40 completions, so 40^2 MCSE^2 = k (40 - k)
    for the whole number k of successful (or failed) completions (to 1e-6: float
    rounding). With the futility threshold at 0.5, |PPoS - 0.5| = |k / 40 - 0.5| either
    way, so whether the PPoS was within 2 MCSE of its threshold follows from the record;
    the trial's near-threshold count is that plus the final look's P(HR < 1) test."""
    plan = plan_from_dict({"name": "ppos look", "analysis": "primary_os.toml",
                           "looks": [{"events": 30, "futility_ppos": 0.5}],
                           "final": {"events": 60, "success": 0.975},
                           "prediction": {"n_sims": 40, "method": "normal"}},
                          base_dir=ROOT / "models")
    rec = bh.simulate_design(plan, {"HR 0.8": {"hr_os": 0.8}}, n_trials=6, refit=FAST,
                             workers=1, progress=False).records
    n_near_ppos = 0
    for _, r in rec.iterrows():
        mcses = r["mcse_by_rule"]["interim 1"]
        assert mcses.keys() == {"P(HR < 1)", "PPoS"}
        m = mcses["PPoS"]
        k = 40 * (1 - np.sqrt(1 - 4 * 40 * m ** 2)) / 2
        assert abs(k - round(k)) < 1e-6 and 0 <= k <= 20
        near_ppos = abs(round(k) / 40 - 0.5) < 2 * m
        near_final = "final" in r["p_by_look"] and abs(
            r["p_by_look"]["final"] - 0.975) < 2 * r["mcse_by_look"]["final"]
        assert r["near_threshold"] == near_ppos + near_final
        n_near_ppos += near_ppos
    assert n_near_ppos >= 1  # the check above met a PPoS near its threshold


def test_a_date_look_before_any_death_is_skipped_not_fatal():
    plan = _plan([{"date": "2017-06-03", "efficacy": 0.99}], final_events=30)
    res = bh.simulate_design(plan, {"HR 0.7": {"hr_os": 0.7}}, n_trials=1, refit=FAST,
                             workers=1, progress=False)
    rec = res.records.iloc[0]
    assert rec["looks_skipped"] == ["interim 1"] and rec["look"] == "final"
    # the table says so (it only showed no stop at that look)
    assert res.table().loc[("HR 0.7", "interim 1 not held"), "estimate"] == 1.0


def test_a_date_look_with_fewer_events_than_the_analysis_needs_is_not_held():
    """The analysis (primary_os.toml) cuts its 6 piecewise intervals at quantiles of the
    event times, so it needs 6 deaths. A date look that a simulated trial reached with 1-5
    deaths ended the whole simulation in "n_intervals=6 but only 3 events", naming neither
    the look nor the trial; it is now a look not held, as one before any death is. A final
    analysis held short of 6 deaths at the end of follow-up cannot be skipped: it is a named
    error saying which setting to change."""
    kwargs = _scenario_kwargs(DESIGN_BASE, {"hr_os": 0.7})
    seed = 11
    deaths = bh.simulate_trial(**kwargs, random_seed=seed).events_by_date("os")
    day = deaths.iloc[2].normalize() + pd.Timedelta(days=1)  # 3 deaths known (or a few more)
    plan = _plan([{"date": str(day.date()), "efficacy": 0.99}], final_events=30)
    rec = _design_trial((plan, kwargs, seed, FAST, None))
    assert rec["looks_skipped"] == ["interim 1"] and rec["look"] == "final"
    assert rec["n_events"] >= 30
    # a final analysis at the end of follow-up, 40 patients followed for at most 6 weeks:
    # a handful of deaths
    short = {"n_patients": 40, "accrual_end": "2017-06-30", "cut_date": "2017-07-15"}
    with pytest.raises(bh.BayesHCCError, match=r"simulate_design: a simulated trial \(seed "
                       r"\d+\) has [0-5] OS events at its final analysis \(2017-07-15\), but "
                       r"the analysis 'primary_os' \(piecewise_exponential\) needs at least 6"
                       r".*lower n_intervals or give options.cuts.*the scenario's cut_date"):
        bh.simulate_design(_plan(final_events=30), {"short": short}, n_trials=1, refit=FAST,
                           workers=1, progress=False)


def test_scenarios_from_text_and_bad_scenarios():
    assert parse_scenario("hr_os=0.7,site_sd=0.3") == ("hr_os=0.7,site_sd=0.3",
                                                      {"hr_os": 0.7, "site_sd": 0.3})
    assert parse_scenario("pessimistic: hr_os=0.85") == ("pessimistic", {"hr_os": 0.85})
    with pytest.raises(bh.BayesHCCError, match="not key=value"):
        parse_scenario("hr=0.7")
    # a trailing comma is allowed; a gap between commas or a key set twice (the last value
    # used to win without a word) is refused
    assert parse_scenario("x: hr_os=0.7,") == ("x", {"hr_os": 0.7})
    with pytest.raises(bh.BayesHCCError, match="empty item between commas"):
        parse_scenario("x: hr_os=0.7,,site_sd=0.3")
    with pytest.raises(bh.BayesHCCError, match="sets hr_os twice"):
        parse_scenario("x: hr_os=0.7,hr_os=0.8")
    with pytest.raises(bh.BayesHCCError, match="sets nothing"):
        parse_scenario("x: ")
    with pytest.raises(bh.BayesHCCError, match="n_trials"):
        bh.simulate_design(_plan(), n_trials=0)
    # bad values are named errors before any work starts, not tracebacks from a worker
    with pytest.raises(bh.BayesHCCError, match="scenario 'bad'.*dropout_per_year"):
        bh.simulate_design(_plan(), {"bad": {"dropout_per_year": 1.5}}, n_trials=1)
    with pytest.raises(bh.BayesHCCError, match="must be a dict"):
        bh.simulate_design(_plan(), {"bad": 0.7}, n_trials=1)
    with pytest.raises(bh.BayesHCCError, match="list of strings"):
        bh.simulate_design(_plan(), [{"hr_os": 0.7}], n_trials=1)
    # a default scenario by name, one text being one scenario ("HR 1.00" was read as the
    # scenarios 'H', 'R', ...); workers=0 meant every core, a negative number failed later
    with pytest.raises(bh.BayesHCCError, match=r"'HR 0.5' is not key=value .* \(nor the name "
                       r"of a default scenario: HR 1.00, HR 0.85"):
        bh.simulate_design(_plan(), "HR 0.5", n_trials=1)
    for workers in (0, -2, 1.5):
        with pytest.raises(bh.BayesHCCError, match=rf"workers={workers!r}: give the number "
                           r"of processes, a whole number >= 1"):
            bh.simulate_design(_plan(), "HR 1.00", n_trials=1, workers=workers, progress=False)
    one = bh.simulate_design(_plan(), "HR 0.70", n_trials=1, workers=1, progress=False)
    assert one.scenarios == {"HR 0.70": {"hr_os": 0.7}}
    # a sampler setting misspelt in refit= raised TypeError from the first trial's refit,
    # after the simulation had started; a PPoS likewise
    with pytest.raises(bh.BayesHCCError, match=r"simulate_design: refit has unknown key\(s\) "
                       r"'draw' \(did you mean 'draws'\?\)"):
        bh.simulate_design(_plan(), n_trials=1, refit={"draw": 100})
    with pytest.raises(bh.BayesHCCError, match=r"refit chains=0 must be between 1"):
        bh.simulate_design(_plan(), n_trials=1, refit={"chains": 0})
    with pytest.raises(bh.BayesHCCError, match=r"predictive_probability: refit has unknown"):
        bh.predictive_probability(bh.datasets.load_example_trial().cut("2018-06-06"),
                                  _plan(), refit={"tunes": 100})


def test_cli_design(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(f'analysis = "{ROOT / "models" / "primary_os.toml"}"\n'
                    '[final]\nevents = 40\nsuccess = 0.975\n')
    out = tmp_path / "oc"
    res = CliRunner().invoke(app, ["design", "--plan", str(plan), "--trials", "2",
                                   "--scenario", "hr_os=0.7", "--fast", "--workers", "1",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "P(efficacy)" in res.output
    assert len(pd.read_csv(out / "design_trials.csv")) == 2
    res = CliRunner().invoke(app, ["design", "--plan", str(plan), "--trials", "2",
                                   "--scenario", "hr=0.7", "--workers", "1"])
    assert res.exit_code == 2 and "not key=value" in res.output
    res = CliRunner().invoke(app, ["design", "--plan", str(plan), "--trials", "2",
                                   "--mode", "quick", "--workers", "1"])
    assert res.exit_code == 2 and "mode='quick'" in res.output


def test_cli_scheduler_without_dask_says_which_extra(tmp_path, monkeypatch):
    """Dask is an optional engine (the cluster extra): without it, --scheduler is a clear
    error naming the install command, not an ImportError traceback."""
    import sys

    monkeypatch.setitem(sys.modules, "dask", None)  # as if dask were not installed
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    plan = tmp_path / "plan.toml"
    plan.write_text(f'analysis = "{ROOT / "models" / "primary_os.toml"}"\n'
                    '[final]\nevents = 40\nsuccess = 0.975\n')
    res = CliRunner().invoke(app, ["design", "--plan", str(plan), "--trials", "2",
                                   "--scheduler", "local"])
    assert res.exit_code != 0
    assert "bayes-hcc[cluster]" in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_type_one_error_without_interim_looks_is_nominal():
    """No interim looks, a vague prior on log HR (Normal(0, 10)), success when
    P(HR < 1) > 0.975 at 100 events: with HR = 1 the rule is a one-sided 2.5% test.
    400 trials: MC SE 0.008; the two-sided binomial test against 0.025 must not reject at
    the 1% level (a correct calibration fails this 1 time in 100)."""
    from scipy import stats

    plan = _plan(final_events=100, prior_sd=10.0)
    res = bh.simulate_design(plan, {"null": {"hr_os": 1.0}}, n_trials=400, random_seed=400,
                             progress=False)
    k = int(res.records["decision"].eq("success").sum())
    assert stats.binomtest(k, 400, 0.025).pvalue > 0.01, k / 400


@pytest.mark.slow
def test_cli_design_in_fast_mode_reports_the_screening(tmp_path):
    """bayes-hcc design --mode fast: the OC table, the screening line and its JSON."""
    out = tmp_path / "oc"
    res = CliRunner().invoke(app, ["design", "--plan", str(ROOT / "models" / "monitoring.toml"),
                                   "--trials", "16", "--mode", "fast", "--pilot", "10",
                                   "--scenario",
                                   "hr_os=1.0", "--workers", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "screening: margin" in res.output and "sent to MCMC" in res.output
    s = json.loads((out / "design_screening.json").read_text())
    assert s["pilot_trials_per_scenario"] == 10 and s["margin"] > 0
    assert len(pd.read_csv(out / "design_trials.csv")) == 16


def test_settle_draws_refit_exactly_the_looks_their_draws_cannot_settle():
    """``settle_draws``: an MCMC look whose probability is within 2 MCSE of a threshold is
    refitted with more draws (same seed) and that fit decides. With 2 x 100 draws (MCSE
    about 0.03) and thresholds where these trials' probabilities fall, some looks are
    unsettled: a trial without one is recorded exactly as without ``settle_draws``; a
    trial with one is settled at its first such look, whose MCSE shrinks by about
    sqrt(100 / 800) = 0.35 (ratio within 0.15-0.6: the run-to-run spread of an
    indicator's effective sample size at 200 draws)."""
    plan = plan_from_dict({"name": "settle", "analysis": "primary_os.toml",
                           "looks": [{"events": 30, "efficacy": 0.9, "futility": 0.3}],
                           "final": {"events": 60, "success": 0.8}},
                          base_dir=ROOT / "models")
    thresholds = {"interim 1": (0.9, 0.3), "final": (0.8,)}
    kw = dict(n_trials=8, refit={"draws": 100, "tune": 200, "chains": 2}, workers=1,
              progress=False)
    plain = bh.simulate_design(plan, {"HR 0.8": {"hr_os": 0.8}}, **kw).records
    settled = bh.simulate_design(plan, {"HR 0.8": {"hr_os": 0.8}}, settle_draws=800,
                                 **kw).records
    assert "settled" not in plain and settled["settled"].notna().all()
    n_settled = 0
    for (_, a), (_, b) in zip(plain.iterrows(), settled.iterrows()):
        first = next((look for look, p in a["p_by_look"].items() if any(
            abs(p - c) < 2 * a["mcse_by_look"][look] for c in thresholds[look])), None)
        if first is None:
            assert b["settled"] == 0
            for col in ("decision", "look", "p_by_look", "mcse_by_look", "log_hr_median"):
                assert b[col] == a[col], col
            continue
        assert b["settled"] >= 1
        n_settled += 1
        ratio = b["mcse_by_look"][first] / a["mcse_by_look"][first]
        assert 0.15 < ratio < 0.6, (first, ratio)
    assert n_settled >= 2


def test_a_final_event_count_never_reached_is_counted_and_said():
    """A scenario that cannot give the plan's events: 100 patients for 120 events is
    refused before any trial runs; 130 patients of whom 60% a year are lost to follow-up
    reach 110 deaths in few trials. Such a trial's final analysis used the events at the
    end of follow-up, and only ``records`` held the flag: the table now has a row with
    the share (equal to the records') and a DataWarning says what happened."""
    with pytest.raises(bh.BayesHCCError, match=r"scenario 'small': 100 patients cannot "
                       r"give the 120 events of the plan's look 'final'"):
        bh.simulate_design(_plan(final_events=120), {"small": {"n_patients": 100}},
                           n_trials=1)
    plan = _plan(final_events=110)
    with pytest.warns(bh.DataWarning, match=r"in 'lossy' \d of 3 simulated trials the "
                      r"final 110 events were never reached"):
        res = bh.simulate_design(plan, {"lossy": {"dropout_per_year": 0.6}}, n_trials=3,
                                 refit=FAST, workers=1, progress=False)
    short = ~res.records["final_events_reached"]
    assert short.any()
    assert (res.records.loc[short, "n_events"] < 110).all()
    row = res.table().loc[("lossy", "final event count not reached")]
    assert row["estimate"] == pytest.approx(short.mean())
    # a design whose trials all reach it has no such row (the tables are unchanged)
    full = bh.simulate_design(_plan(final_events=30), {"HR 0.7": {"hr_os": 0.7}},
                              n_trials=1, refit=FAST, workers=1, progress=False)
    assert "final event count not reached" not in full.table().index.get_level_values(1)


def test_the_table_counts_the_events_of_the_plans_endpoint():
    """A plan on TTP counts TTP events (its looks' and the table's): the row was labelled
    "OS events" for every plan."""
    plan = plan_from_dict({"name": "ttp", "analysis": "secondary_ttp.toml",
                           "final": {"events": 30, "success": 0.975}},
                          base_dir=ROOT / "models")
    res = bh.simulate_design(plan, {"HR 0.6": {"hr_ttp": 0.6}}, n_trials=1, refit=FAST,
                             workers=1, progress=False)
    measures = res.table().index.get_level_values("measure")
    assert "TTP events" in measures and "OS events" not in measures
    assert res.table().loc[("HR 0.6", "TTP events"), "estimate"] == 30


def test_what_the_data_warn_of_at_a_look_is_recorded_and_counted():
    """An analysis with fixed site effects looked at after 10 deaths: a simulated site with
    no deaths yet has the prior's effect, which a look on real data says
    (``bh.interim_analysis`` warns). Design simulations silenced every warning, so a design
    whose early looks lean on such prior-only sites did not say how often; each trial's
    record keeps its data's warnings now, and the table counts the trials."""
    spec = bh.apply_overrides(bh.load_spec(ROOT / "models" / "primary_os.toml"),
                              {"family": "weibull_ph", "site.effect": "fixed"})
    plan = plan_from_dict({"analysis": spec, "looks": [{"events": 10, "efficacy": 0.999}],
                           "final": {"events": 60, "success": 0.975}})
    res = bh.simulate_design(plan, {"null": {"hr_os": 1.0}}, n_trials=3, refit=FAST,
                             workers=1, progress=False, random_seed=3)
    rec = res.records
    warned = rec["data_warnings"] != ""
    assert warned.any()  # with 6 sites and 10 deaths, some site has none (checked)
    # independently: the interim look of the same simulated trial, as a user runs it
    for _, r in rec.iterrows():
        trial = bh.simulate_trial(**_scenario_kwargs(DESIGN_BASE, {"hr_os": 1.0}),
                                  random_seed=int(r["seed"]))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bh.interim_analysis(trial, plan, look=1, fast=True)
        quiet = [str(w.message).rstrip(".") for w in caught
                 if issubclass(w.category, bh.DataWarning)]
        if quiet:
            assert all(q in r["data_warnings"] for q in quiet)
        else:
            assert r["data_warnings"] == "" or r["look"] != "interim 1"
    tab = res.table().loc["null"]
    assert tab.loc["trials whose data warned at a look", "estimate"] == warned.mean()
