"""Interim monitoring: the plan, the cut at a look, decision rules and the audit log."""

import html
import json
from pathlib import Path

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.families.weibull import WeibullFamily
from bayes_hcc.monitoring.plan import plan_from_dict
from tests.helpers import const, fabricated_fit

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "models" / "monitoring.toml"


def test_plan_parses_validates_and_hashes():
    plan = bh.load_plan(PLAN)
    assert [x.events for x in plan.looks] == [40, 70] and plan.final.events == 100
    assert plan.spec.name == "primary_os"
    assert plan.hash == bh.load_plan(PLAN).hash and len(plan.hash) == 16
    assert plan.look(2).efficacy == 0.995 and plan.look("final").success == 0.975
    table = plan.table()
    assert list(table.index) == ["interim 1", "interim 2", "final"]
    # the final look has no futility rule: its futility HR is empty, not 1.0, and an absent
    # PPoS rule is NaN like every other absent rule (it was None in a float table)
    assert table.loc["final"].drop("when").isna().tolist() == [True] * 4 + [False]
    assert table["futility hr"].tolist()[:2] == [1.0, 1.0]
    assert table["futility: PPoS <"].dtype == float


def test_a_plan_from_a_dict_or_text_as_in_a_notebook(monkeypatch):
    """bh.load_spec takes a dict or TOML text; bh.load_plan took only a file ("expected the
    path of a monitoring plan file"). A plan written in a notebook is the file's plan: the
    same hash; its analysis path is read from the current directory."""
    monkeypatch.chdir(ROOT)
    text = PLAN.read_text().replace('analysis = "primary_os.toml"',
                                    'analysis = "models/primary_os.toml"')
    assert text != PLAN.read_text()
    from_text = bh.load_plan(text)
    assert from_text.hash == bh.load_plan(PLAN).hash
    import tomllib

    d = tomllib.loads(text)
    assert bh.load_plan(d).hash == from_text.hash
    # the analysis as a spec or a dict, not a path
    spec = bh.load_spec(ROOT / "models" / "primary_os.toml")
    assert bh.load_plan({**d, "analysis": spec}).hash == from_text.hash
    assert bh.load_plan({**d, "analysis": spec.to_dict()}).spec == spec
    with pytest.raises(bh.SpecError, match=r"plan: .*primary_os.toml: no such spec file; did "
                       r"you mean models/primary_os.toml\?"):
        bh.load_plan({**d, "analysis": "primary_os.toml"})
    with pytest.raises(bh.SpecError, match=r"plan text: final: missing 'success'"):
        bh.load_plan(text.replace("success = 0.975", ""))


@pytest.mark.parametrize("change, message", [
    ({"looks": [{"events": 40, "efficacy": 1.5}]}, "efficacy = 1.5 must be a probability"),
    ({"looks": [{"events": 40}]}, "needs an 'efficacy', 'futility' or 'futility_ppos' rule"),
    ({"prediction": {"sample_size": 1}}, "sample_size = 1 must be"),
    ({"prediction": {"method": "laplace"}}, "method = 'laplace'"),
    ({"prediction": {"horizon": 3}}, "unknown key"),
    ({"looks": [{"events": 40, "date": "2019-01-01", "efficacy": 0.99}]}, "exactly one of"),
    # a look on "2019-06" was a look on June 1st
    ({"looks": [{"date": "2019-06", "efficacy": 0.99}]}, r"looks\[0\].date='2019-06' has no day"),
    ({"looks": [{"date": "June 2019", "efficacy": 0.99}]}, "is not a calendar date"),
    ({"looks": [{"events": 80, "efficacy": 0.99}]}, "must increase"),
    ({"looks": [{"events": 40, "efficacy": 0.99, "stop": 1}]}, "unknown key"),
    ({"final": {"events": 100}}, "missing 'success'"),
    ({"final": 100}, r"'final' must be a table \(\[final\]\)"),
    ({"final": {"events": 100, "success": 0.975, "futility": 0.1}},
     r"final: unknown key\(s\) futility; valid keys: events, date, success"),
    ({"looks": {"events": 40, "efficacy": 0.99}}, r"'looks' must be a list of tables"),
    ({"looks": [{"events": 0, "efficacy": 0.99}]},
     r"looks\[0\].events = 0 must be a positive whole number"),
    ({"looks": [{"events": 40.5, "efficacy": 0.99}]}, r"events = 40.5 must be a positive"),
    ({"looks": [{"date": "2019-06-01", "efficacy": 0.99},
                {"date": "2019-01-01", "efficacy": 0.99}]}, "look dates must increase"),
    ({"looks": [{"name": "a", "events": 30, "efficacy": 0.99},
                {"name": "a", "events": 40, "efficacy": 0.99}]}, "look names must be unique"),
    ({"looks": [{"name": "final", "events": 30, "efficacy": 0.99}]},
     "look names must be unique and not 'final'"),
    ({"prediction": {"dropout_per_year": 1.0}},
     r"prediction.dropout_per_year = 1.0 must be in \[0, 1\)"),
    ({"prediction": {"followup_window_days": 30.5}},
     r"followup_window_days = 30.5 must be a whole number >= 0"),
    ({"prediction": {"n_sims": 0}}, r"n_sims = 0 must be a positive whole number"),
    ({"prediction": {"assessment_interval": 0}}, r"assessment_interval = 0 must be a number"),
    # names as numbers were read as their digits: a look named 2 beside plan.look(2)
    ({"name": 5}, r"monitoring plan: name = 5 must be text \(the plan's name\)"),
    ({"description": ["x"]}, r"description = \['x'\] must be text"),
    ({"looks": [{"name": 2, "events": 40, "efficacy": 0.99}]},
     r"looks\[0\].name = 2 must be text \(the look's name, e.g. \"interim 1\"\)"),
    ({"looks": [{"name": " ", "events": 40, "efficacy": 0.99}]}, r"name = ' ' must be text"),
])
def test_bad_plans_are_named_errors(change, message):
    d = {"analysis": "primary_os.toml", "final": {"events": 60, "success": 0.975}, **change}
    with pytest.raises(bh.SpecError, match=message):
        plan_from_dict(d, base_dir=ROOT / "models")
    # and through bh.load_plan, which names where the plan came from
    with pytest.raises(bh.SpecError, match=r"^plan: .*" + message):
        bh.load_plan({**d, "analysis": bh.load_spec(ROOT / "models" / "primary_os.toml")})


@pytest.mark.parametrize("missing", ["analysis", "final"])
def test_a_plan_without_its_analysis_or_final(missing):
    d = {"analysis": "primary_os.toml", "final": {"events": 60, "success": 0.975}}
    with pytest.raises(bh.SpecError, match=rf"monitoring plan: missing '{missing}'"):
        plan_from_dict({k: v for k, v in d.items() if k != missing}, ROOT / "models")


@pytest.mark.parametrize("change, message", [
    # "stop for efficacy if P(HR < 1) > 0.05": a one-sided alpha written where the plan wants
    # the posterior probability; every look with P(HR < 1) above 5% stopped for efficacy
    ({"looks": [{"events": 40, "efficacy": 0.05}]},
     r"looks\[0\].efficacy = 0.05 would stop for efficacy when P\(HR < 1\) is only above "
     r"0.05.*write efficacy = 0.95"),
    ({"final": {"events": 60, "success": 0.025}},
     r"final.success = 0.025 would declare success.*write success = 0.975"),
    # "stop for futility if P(HR < 1) < 0.9": stops trials whose data favour TACE-sorafenib
    ({"looks": [{"events": 40, "efficacy": 0.99, "futility": 0.9}]},
     r"looks\[0\].futility = 0.9 would stop for futility when P\(HR < 1\) is as high as "
     r"0.9.*write futility = 0.1"),
    ({"looks": [{"events": 40, "futility": 0.7, "futility_hr": 1.2}]},
     r"looks\[0\].futility = 0.7 would stop for futility when P\(HR < 1.2\)"),
])
def test_rules_that_decide_against_the_data_are_refused(change, message):
    """A rule on the wrong side of 0.5 acts against what the posterior says: efficacy or
    success when the data favour control, futility when they favour TACE-sorafenib. Such a
    plan gave decisions, without a word, that no trial statistician means."""
    d = {"analysis": "primary_os.toml", "final": {"events": 60, "success": 0.975}, **change}
    with pytest.raises(bh.SpecError, match=message):
        plan_from_dict(d, base_dir=ROOT / "models")


def test_a_futility_rule_below_a_clinically_relevant_hr_may_exceed_one_half():
    """P(HR < 0.8) < 0.6 is a rule people write (the effect worth having is unlikely); only a
    futility HR of 1 or above makes a threshold over 0.5 act against the data."""
    d = {"analysis": "primary_os.toml", "final": {"events": 60, "success": 0.975},
         "looks": [{"events": 40, "futility": 0.6, "futility_hr": 0.8}]}
    assert plan_from_dict(d, base_dir=ROOT / "models").look(1).futility == 0.6


@pytest.mark.parametrize("kwargs, message", [
    ({"events": 40, "efficacy": 99}, r"look 'x': efficacy = 99 must be a probability"),
    ({"events": 40, "efficacy": 0.05}, "would stop for efficacy"),
    ({"efficacy": 0.99}, "give exactly one of 'events'"),
    ({"events": 40}, "needs an 'efficacy', 'futility' or 'futility_ppos' rule"),
    ({"events": 40, "success": 0.975, "efficacy": 0.99}, "a final look has only a success"),
    ({"events": 40, "futility": 0.1, "futility_hr": 0}, "must be a hazard ratio"),
    ({"date": "2019-06", "efficacy": 0.99}, "has no day"),
    ({"name": 5, "events": 40, "efficacy": 0.99}, r"Look: name = 5 must be text"),
    ({"events": 40, "efficacy": 0.99, "endpoint": " "}, r"endpoint = ' ' must be an "
                                                        r"endpoint's name"),
])
def test_a_look_made_by_hand_is_checked_as_a_plan_s_look(kwargs, message):
    """bh.Look is public (bh.decide takes one): made by hand, it was not checked at all, so
    Look('x', events=40, efficacy=99) never stopped and efficacy=0.05 nearly always did."""
    with pytest.raises(bh.SpecError, match=message):
        bh.Look(**{"name": "x", **kwargs})
    assert bh.Look("x", events=40, efficacy=0.99, futility=0.1).futility_hr == 1.0
    assert bh.Look("final", date="2020-02-28", success=0.975).is_final


def _fit_with_log_hr(values):
    arm = np.array([0, 1])
    post = {"log_hr": np.asarray(values, float).reshape(1, -1),
            "log_lambda": const(-2.0, 1, len(values)), "log_shape": const(0.0, 1, len(values))}
    return fabricated_fit(WeibullFamily(), post, arm=arm, site=np.zeros(2, int))


def test_a_look_decides_only_on_its_plan_s_endpoint():
    """bh.decide(os_fit, pfs_plan.look(1)) applied the PFS plan's thresholds to the OS
    posterior without a word. The plan's hash is unchanged by the look's endpoint (it is
    the analysis spec's, already hashed), so audit logs written before still verify."""
    pfs = plan_from_dict({"analysis": "secondary_pfs.toml",
                          "looks": [{"events": 40, "efficacy": 0.999}],
                          "final": {"events": 100, "success": 0.975}},
                         base_dir=ROOT / "models")
    fit = _fit_with_log_hr(np.full(1000, -0.5))  # an OS fit
    with pytest.raises(bh.BayesHCCError, match=r"decide: look 'interim 1' is a look of a PFS "
                       r"analysis; this fit is of OS"):
        bh.decide(fit, pfs.look(1))
    # (posteriors made by hand, not sampled: no convergence to judge, so warn=False)
    assert bh.decide(fit, bh.load_plan(PLAN).look(1), warn=False)[0] == "stop for efficacy"
    assert bh.decide(fit, bh.Look("x", events=40, efficacy=0.99),
                     warn=False)[0] == "stop for efficacy"
    assert bh.load_plan(PLAN).hash == "db825387a9a3d966"  # as before looks had an endpoint


def test_decisions_match_hand_computed_probabilities():
    """A posterior of 1000 known log-HR values: P(HR < 1) = share of negative values
    (made by hand, not sampled: no convergence to judge, so warn=False)."""
    plan = bh.load_plan(PLAN)
    lk = plan.look(1)  # efficacy 0.999, futility P(HR<1) < 0.10
    # 999 of 1000 draws below 0 -> P = 0.999, not > 0.999: continue
    fit = _fit_with_log_hr(np.r_[np.full(999, -0.5), 0.5])
    decision, probs = bh.decide(fit, lk, warn=False)
    assert probs["P(HR < 1)"] == pytest.approx(0.999) and decision == "continue"
    fit = _fit_with_log_hr(np.full(1000, -0.5))
    assert bh.decide(fit, lk, warn=False)[0] == "stop for efficacy"
    fit = _fit_with_log_hr(np.r_[np.full(99, -0.5), np.full(901, 0.5)])  # P = 0.099 < 0.10
    assert bh.decide(fit, lk, warn=False)[0] == "stop for futility"
    final = plan.look("final")
    fit = _fit_with_log_hr(np.r_[np.full(976, -0.5), np.full(24, 0.5)])  # 0.976 > 0.975
    assert bh.decide(fit, final, warn=False)[0] == "success"
    fit = _fit_with_log_hr(np.r_[np.full(975, -0.5), np.full(25, 0.5)])
    assert bh.decide(fit, final, warn=False)[0] == "no success"


def test_decide_warns_when_the_fit_is_not_fit_for_a_decision(example_trial):
    """bh.decide on a fit that failed its convergence checks gave the rules' decision
    without a word, where bh.interim_analysis reports "no decision: diagnostics failed"
    for the same fit. It warns, naming the failed checks and the decision; warn=False
    (for callers that judge the fit themselves) gives the same decision silently."""
    import warnings

    look = bh.load_plan(PLAN).look(1)
    short = bh.WeibullPH().fit(example_trial, "os", draws=30, tune=50, chains=2,
                               random_seed=3, check=False)
    assert "ess_bulk" in short.failed_checks()  # 60 draws: ESS below 100 per chain
    with pytest.warns(bh.ConvergenceWarning, match=r"decide: the fit failed its "
                      r"convergence checks \(.*ess_bulk = .*\), so '[a-z ]+' is the rules' "
                      r"decision on a posterior not fit for one") as caught:
        rule, probs = bh.decide(short, look)
    assert caught[0].filename == __file__  # the user's line, not the package's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bh.decide(short, look, warn=False) == (rule, probs)
    # a fast-mode fit is exploratory: no decision either
    fast = bh.WeibullPH().fit(example_trial, "os", draws=300, tune=400, random_seed=3,
                              check=False, exploratory=True)
    with pytest.warns(bh.ConvergenceWarning, match=r"decide: the fit (is exploratory "
                      r"\(fast mode|failed its convergence checks)"):
        bh.decide(fast, look)


def test_interim_look_cuts_like_trialdata_and_logs_a_reproducible_record(tmp_path,
                                                                          example_trial):
    plan = bh.load_plan(PLAN)
    log = tmp_path / "audit.jsonl"
    res = bh.interim_analysis(example_trial, plan, look=1, fast=True, log=log)
    date = bh.look_date(example_trial, plan.look(1))
    cut = example_trial.cut(date)
    assert res.cut_date == date and res.n_events == cut.endpoint("os").n_events >= 40
    assert res.fit.datatree.attrs["data_fingerprint"] == cut.fingerprint
    # A fast look is exploratory: it never decides, and says why (diagnostics, or fast mode).
    assert res.diagnostics.mode == "exploratory"
    assert res.decision == ("no decision: exploratory fit (fast mode)" if res.diagnostics.ok
                            else "no decision: diagnostics failed")
    assert res.rule_decision in ("stop for efficacy", "stop for futility", "continue")
    # in a notebook: the decision, the console's lines and the diagnostics it rests on
    shown = res._repr_html_()
    assert html.escape(res.decision) in shown
    assert all(html.escape(line) in shown for line in res.summary_lines())
    assert ("Diagnostics OK</b> (exploratory: fast mode" in shown) == res.diagnostics.ok
    assert all(html.escape(e) in shown for e in res.diagnostics.explanations)
    rec = json.loads(log.read_text().splitlines()[0])
    assert rec["plan_hash"] == plan.hash and rec["data_fingerprint"] == cut.fingerprint
    before = log.read_text()
    bh.interim_analysis(example_trial, plan, look=1, fast=True, log=log)
    assert log.read_text().startswith(before)  # appended, never rewritten
    check = bh.verify_log(log, example_trial, plan, record=0)
    assert check["reproduced"], check["differences"]


def test_look_not_reached_is_a_clear_error(example_trial):
    plan = plan_from_dict({"analysis": "primary_os.toml",
                           "final": {"events": 500, "success": 0.975}},
                          base_dir=ROOT / "models")
    with pytest.raises(bh.TrialDataError, match="has not happened yet"):
        bh.interim_analysis(example_trial, plan, look="final", fast=True)


def test_a_look_with_fewer_events_than_the_analysis_needs(example_trial):
    """primary_os.toml cuts its 6 piecewise intervals at quantiles of the event times. A
    plan with a look at 4 deaths was accepted, and the look (or a design simulation) ended
    in "n_intervals=6 but only 4 events", naming no look; the plan is now refused, naming
    the look and the ways out. A look by date is checked when it is held."""
    def plan(looks, **options):
        spec = bh.load_spec(ROOT / "models" / "primary_os.toml")
        if options:  # the spec's options replaced by these
            spec = bh.load_spec({**spec.to_dict(), "options": options})
        return plan_from_dict({"analysis": spec, "looks": looks,
                               "final": {"events": 100, "success": 0.975}})

    with pytest.raises(bh.SpecError, match=r"look 'early' is at 4 OS events, but the analysis "
                       r"'primary_os' \(piecewise_exponential\) needs at least 6: its 6 "
                       r"intervals are cut at quantiles of the event times \(options."
                       r"n_intervals = 6\): lower n_intervals or give options.cuts in the "
                       r"analysis spec; or give the look at least 6 events"):
        plan([{"name": "early", "events": 4, "efficacy": 0.999}])
    assert plan([{"events": 6, "efficacy": 0.999}]).looks[0].events == 6
    assert plan([{"events": 4, "efficacy": 0.999}], n_intervals=3).looks[0].events == 4
    # cut points given: any look with an event can be analysed
    cuts = plan([{"events": 2, "efficacy": 0.999}], cuts=[3.0, 6.0, 12.0])
    assert cuts.looks[0].events == 2
    # an M-spline baseline's 3 knots (the default) at quantiles need 4 events
    spline = bh.apply_overrides(bh.load_spec(ROOT / "models" / "primary_os.toml"),
                                {"family": "mspline_ph"})
    with pytest.raises(bh.SpecError, match=r"is at 3 OS events, but .* needs at least 4: its "
                       r"3 knots are placed at quantiles of the event times \(options.n_knots "
                       r"= 3, the default\)"):
        plan_from_dict({"analysis": spline, "looks": [{"events": 3, "efficacy": 0.999}],
                        "final": {"events": 100, "success": 0.975}})
    # a look by date after the 3rd death: refused when held, before anything is sampled
    day = example_trial.events_by_date("os").iloc[2].normalize()
    by_date = plan([{"name": "early", "date": str(day.date()), "efficacy": 0.999}])
    with pytest.raises(bh.TrialDataError, match=rf"look 'early' \(cut {day.date()}\) has 3 OS "
                       r"events in the analysis population, but the analysis 'primary_os' "
                       r"\(piecewise_exponential\) needs at least 6.*or hold the look later"):
        bh.interim_analysis(example_trial, by_date, look=1, fast=True)


def test_a_look_s_date_on_its_plan_s_endpoint(example_trial):
    """A look at 40 events of a PFS plan is the day of the 40th PFS event, not of the 40th
    death: plan.look_date finds the look and its plan's endpoint. bh.look_date given a
    look's name raised AttributeError; it says where a look is found."""
    spec = bh.apply_overrides(bh.load_spec(ROOT / "models" / "primary_os.toml"),
                              {"endpoint": "pfs"})
    plan = plan_from_dict({"analysis": spec, "looks": [{"events": 40, "efficacy": 0.999}],
                           "final": {"events": 100, "success": 0.975}})
    pfs_day = example_trial.events_by_date("pfs").iloc[39].normalize()
    assert plan.look_date(example_trial, 1) == pfs_day
    assert plan.look_date(example_trial, "interim 1") == pfs_day
    # a plan's look knows its endpoint: bh.look_date of a PFS plan's look gave the day of
    # the 40th death unless the endpoint was passed again by hand
    assert plan.look(1).endpoint == "pfs"
    assert bh.look_date(example_trial, plan.look(1)) == pfs_day
    with pytest.raises(bh.BayesHCCError, match=r"look 'interim 1' counts PFS events \(its "
                       r"plan's endpoint\), not OS"):
        bh.look_date(example_trial, plan.look(1), "os")
    # a look made by hand has no plan: its endpoint is given, or OS
    hand = bh.Look("interim 1", events=40, efficacy=0.999)
    assert pfs_day < bh.look_date(example_trial, hand) == bh.look_date(example_trial, hand,
                                                                        "os")
    assert bh.look_date(example_trial, hand, "pfs") == pfs_day
    with pytest.raises(bh.BayesHCCError, match=r"look='interim 1' is not a Look; a look is "
                       r"found in its plan.*plan.look_date\(trial, 'interim 1'\)"):
        bh.look_date(example_trial, "interim 1")
    # a completion model that is not one is refused before the look's fit (it raised
    # AttributeError after it)
    with pytest.raises(bh.BayesHCCError, match=r"completion_model='illness' is not an "
                       r"illness-death model"):
        bh.interim_analysis(example_trial, plan, look=1, ppos=True, completion_model="illness")


def test_a_look_as_a_user_names_it():
    """``plan.look("Interim 1")`` (the name as printed in a report) and ``np.int64(1)``
    (from ``np.arange``) were "no look"; a misspelt name is refused with the nearest."""
    plan = bh.load_plan(ROOT / "models" / "monitoring.toml")
    first = plan.look(1)
    assert plan.look("Interim 1") is first and plan.look(" interim 1") is first
    assert plan.look(np.int64(1)) is first and plan.look("FINAL") is plan.final
    with pytest.raises(bh.SpecError, match=r"no look 'interim1' \(did you mean 'interim 1'\?\)"):
        plan.look("interim1")
    with pytest.raises(bh.SpecError, match=r"no look 0: looks are 1..2"):
        plan.look(0)


def test_a_look_shows_the_model_s_data_warnings(example_trial):
    """At a first look after 10 deaths CNUH has none: an analysis with fixed site effects
    gives CNUH the prior's effect. The look silenced every warning of its fit (the verdict
    reports convergence), so the statistician was not told; the model's DataWarnings now
    show at the look (convergence warnings stay silenced)."""
    spec = bh.apply_overrides(bh.load_spec(ROOT / "models" / "primary_os.toml"),
                              {"family": "weibull_ph", "site.effect": "fixed"})
    plan = plan_from_dict({"analysis": spec, "looks": [{"events": 10, "efficacy": 0.999}],
                           "final": {"events": 100, "success": 0.975}})
    with pytest.warns(bh.DataWarning, match=r"os: site\(s\) 'CNUH' have no events: with "
                      r"site_effect='fixed'"):
        res = bh.interim_analysis(example_trial, plan, look=1, fast=True)
    assert res.n_events == 10
