"""Settings that validation used to let through crash deep inside the sampler or a library;
each now gets the package's own error naming the setting, in the API, the spec and the
CLI. The design store cannot be reused under other settings."""

import json
from pathlib import Path

import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.cli.app import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kwargs, message", [
    ({"tune": 0}, r"tune=0 must be between 1 and"),  # nutpie used to panic (PanicException)
    ({"draws": 10**12}, r"draws=1000000000000 must be between 1 and 2,000,000"),
    ({"chains": 10**9}, r"chains=1000000000 must be between 1 and 64"),
    ({"draws": 600_000, "chains": 4}, r"chains x draws = 2,400,000 .* would not fit"),
    ({"random_seed": 2**70}, r"seed=.* must be between 0 and 18,446,744,073,709,551,615"),
    ({"random_seed": -1}, r"seed=-1 must be between 0"),
    ({"random_seed": 1.5}, r"seed=1.5 must be an integer"),
    ({"target_accept": 1.0}, r"target_accept=1.0 must be a number strictly between 0 and 1"),
])
def test_sampler_settings_are_checked_before_sampling(example_trial, kwargs, message):
    with pytest.raises(bh.ModelError, match=message):
        bh.WeibullPH().fit(example_trial, "os", **kwargs)


def test_trace_memory_bound_counts_patients(example_trial):
    """400,000 draws of a 130-patient pointwise log-likelihood is 0.4 GB: allowed; the same
    draws at 13,000 patients (4 GB x 10) is refused before sampling."""
    from bayes_hcc.spec.sampler import check_sampler_settings

    check_sampler_settings(draws=100_000, tune=10, chains=4, values_per_draw=230)
    with pytest.raises(bh.ModelError, match=r"needs about 39\.\d GiB .* log_likelihood=False"):
        check_sampler_settings(draws=100_000, tune=10, chains=4, values_per_draw=13_100)


def test_spec_sampler_settings(tmp_path):
    text = (ROOT / "models" / "primary_os.toml").read_text().replace("tune = 1000", "tune = 0")
    with pytest.raises(bh.SpecError, match=r"spec text: sampler.tune: must be >= 1|tune=0"):
        bh.load_spec(text)
    text = (ROOT / "models" / "primary_os.toml").read_text().replace(
        "seed = 20200228", "seed = 1180591620717411303424")
    with pytest.raises(bh.SpecError, match=r"sampler: seed=.* must be between 0"):
        bh.load_spec(text)


@pytest.mark.parametrize("value, message", [
    ("inf", r"looks\[0\]\.futility_hr = inf must be a hazard ratio between 0.01 and 100"),
    ('"one"', r"looks\[0\]\.futility_hr = 'one' must be a hazard ratio"),
    ("0", r"futility_hr = 0 must be a hazard ratio"),
])
def test_plan_rules_are_finite_and_in_range(tmp_path, value, message):
    text = (ROOT / "models" / "monitoring.toml").read_text().replace(
        "futility_hr = 1.0", f"futility_hr = {value}", 1)
    path = tmp_path / "plan.toml"
    path.write_text(text)
    (tmp_path / "primary_os.toml").write_text((ROOT / "models" / "primary_os.toml")
                                              .read_text())
    with pytest.raises(bh.SpecError, match=message):
        bh.load_plan(path)


@pytest.mark.parametrize("text, message", [
    ("hr_os=abc", r"hr_os='abc' must be a hazard ratio > 0"),
    ("hr_os=-1", r"hr_os=-1 must be a hazard ratio > 0"),
    ("site_sd=nan", r"site_sd="),
    ("n_patients=12.5", r"n_patients=12.5 must be a whole number"),
])
def test_scenarios_are_checked_with_named_errors(text, message, capsys):
    plan = bh.load_plan(ROOT / "models" / "monitoring.toml")
    with pytest.raises(bh.BayesHCCError, match=message):
        bh.simulate_design(plan, [text], n_trials=1, progress=False)
    with pytest.raises(SystemExit) as done:
        main(["design", "--plan", str(ROOT / "models" / "monitoring.toml"), "--trials", "1",
              "--scenario", text])
    err = capsys.readouterr().err
    assert done.value.code == 2 and "Traceback" not in err and "scenario" in err


FAST = {"draws": 100, "tune": 100, "chains": 2}


def _plan():
    from bayes_hcc.monitoring.plan import plan_from_dict

    return plan_from_dict({"analysis": "primary_os.toml",
                           "final": {"events": 40, "success": 0.975}},
                          base_dir=ROOT / "models")


def test_design_store_settings_line_is_mandatory(tmp_path):
    plan = _plan()
    store = tmp_path / "design.jsonl"
    kw = {"scenarios": {"null": {"hr_os": 1.0}}, "n_trials": 2, "refit": FAST,
          "progress": False, "random_seed": 5, "workers": 1}
    bh.simulate_design(plan, store=store, **kw)
    lines = store.read_text().splitlines()
    assert json.loads(lines[0])["key"] == "__meta__"
    store.write_text("\n".join(lines[1:]) + "\n")  # the settings line deleted
    with pytest.raises(bh.BayesHCCError, match="no settings line"):
        bh.simulate_design(plan, store=store, **kw)
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    with pytest.raises(bh.BayesHCCError, match="is a directory"):
        bh.simulate_design(plan, store=folder, **kw)
    junk = tmp_path / "junk.jsonl"
    junk.write_text('[1, 2]\n{"key": "a", "result": 1}\n')
    with pytest.raises(bh.BayesHCCError, match="line 1 is not a store record"):
        bh.simulate_design(plan, store=junk, **kw)


def test_scenario_order_changes_no_trial(tmp_path):
    """Seeds derive from the scenario's name: listing the scenarios in another order (on a
    resumed store or not) gives every scenario the same trials (they used to follow the
    position, so a reordered resume gave two scenarios the same seeds)."""
    plan = _plan()
    kw = {"n_trials": 2, "refit": FAST, "progress": False, "random_seed": 5, "workers": 1}
    a = bh.simulate_design(plan, {"null": {"hr_os": 1.0}, "alt": {"hr_os": 0.6}}, **kw)
    b = bh.simulate_design(plan, {"alt": {"hr_os": 0.6}, "null": {"hr_os": 1.0}}, **kw)
    cols = ["scenario", "trial", "seed", "decision"]
    key = ["scenario", "trial"]
    ra = a.records[[c for c in cols if c in a.records]].sort_values(key).reset_index(drop=True)
    rb = b.records[[c for c in cols if c in b.records]].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(ra, rb)
    assert a.records.groupby("scenario")["seed"].apply(set).pipe(
        lambda s: s["null"].isdisjoint(s["alt"]))
    # A store written with one order is not resumed with another (settings differ).
    store = tmp_path / "design.jsonl"
    bh.simulate_design(plan, {"null": {"hr_os": 1.0}, "alt": {"hr_os": 0.6}}, store=store,
                       **kw)
    with pytest.raises(bh.BayesHCCError, match="different settings"):
        bh.simulate_design(plan, {"alt": {"hr_os": 0.6}, "null": {"hr_os": 1.0}},
                           store=store, **kw)


@pytest.mark.parametrize("call, message", [
    (lambda: bh.WeibullHazard(median=-1, shape=1), r"WeibullHazard needs median > 0"),
    (lambda: bh.PiecewiseHazard(cuts=(2.0, 1.0), rates=(1.0, 1.0, 1.0)),
     r"PiecewiseHazard needs increasing positive cuts"),
    (lambda: bh.datasets.load_colon("Lev+5Fu"), r"colon trial's arms are 'Lev\+5FU'"),
    (lambda: bh.write_table(pd.DataFrame({"a": [1]}), "t.csv"),
     r"choose a \.docx or \.tex file name \(a CSV or Markdown table: table\.to_csv"),
    # another object failed inside with KeyError or AttributeError
    (lambda: bh.plot_subgroups(pd.DataFrame({"a": [1]})),
     r"plot_subgroups: draws the table of bh.subgroups"),
    (lambda: bh.plot_map_prior(bh.datasets.load_example_trial()),
     r"plot_map_prior draws a MAP prior \(bh.map_prior\), not a TrialData"),
    (lambda: bh.plot_borrowing_design({"table": None}),
     r"plot_borrowing_design draws the result of bh.borrowing_design, not a dict"),
])
def test_bad_arguments_are_the_package_errors(call, message):
    """These were bare ValueErrors: the command line (which turns the package's errors into
    a message and exit code 2) showed them as tracebacks, and ``except bh.BayesHCCError``
    missed them. They are BayesHCCErrors (still ValueErrors)."""
    with pytest.raises(bh.BayesHCCError, match=message):
        call()


@pytest.mark.parametrize("call", [
    lambda: bh.simulate_design(ROOT / "models" / "monitoring.toml", n_trials=2,
                               random_seed="2024", progress=False),
    lambda: bh.coverage_study(n_trials=2, random_seed="2020", progress=False),
    lambda: bh.sbc("weibull_ph", n_reps=2, random_seed="2018", progress=False),
    lambda: bh.simulate_trial(20, random_seed="1"),
], ids=["simulate_design", "coverage_study", "sbc", "simulate_trial"])
def test_a_seed_written_as_text_is_refused_before_any_work(call):
    """A seed as text (as a config file or a command line gives it) failed inside numpy's
    SeedSequence, after the study's set-up; one check (``spec.sampler.check_seed``)
    names the function and the argument."""
    with pytest.raises(bh.BayesHCCError, match=r"random_seed='\d+' must be an integer"):
        call()
