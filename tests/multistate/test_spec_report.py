"""The illness-death model from a spec file (``models/illness_death.toml``), its errors, and
its HTML report."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.errors import SpecError

MODELS = Path(__file__).resolve().parents[2] / "models"
SPEC = MODELS / "illness_death.toml"


def _spec(**changes):
    d = bh.load_spec(SPEC).to_dict()
    for key, value in changes.items():
        *path, last = key.split("__")
        target = d
        for p in path:
            target = target.setdefault(p, {})
        if value is None:
            target.pop(last, None)
        else:
            target[last] = value
    return d


def test_shipped_spec_describes_the_model():
    spec = bh.load_spec(SPEC)
    assert bh.load_spec(bh.dump_spec(spec)) == spec
    model = bh.build(spec)
    assert isinstance(model, bh.IllnessDeath)
    assert (model.baseline, model.time_scale, model.site_effect) == \
        ("weibull_ph", "markov", "random")
    assert dict(spec.report)["estimand"] == "standardized"
    assert "illness-death" in repr(spec)


def test_transition_priors_nested_or_flat_and_shared_sites():
    nested = _spec(priors__progression={"log_lambda": {"dist": "Normal", "mu": -1.6,
                                                        "sigma": 0.5}},
                   illness_death__shared_site_effect=True)
    spec = bh.load_spec(nested)
    assert spec.prior_dict["progression.log_lambda"].to_dict()["mu"] == -1.6
    flat = bh.load_spec(bh.dump_spec(spec))  # written back as a quoted flat key
    assert flat == spec
    model = bh.build(spec)
    assert model.site_effect == "shared"
    assert model.priors["progression.log_lambda"].to_dict()["sigma"] == 0.5


def test_piecewise_cuts_move_to_the_data_unit():
    spec = bh.load_spec(_spec(family="piecewise_exponential", options={"cuts": [2.0, 6.0]},
                              priors={}))
    model = bh.IllnessDeath.from_spec(spec, "days")
    assert np.allclose(model.cuts, [2.0 * 30.4375, 6.0 * 30.4375])


@pytest.mark.parametrize("changes, match", [
    ({"family": "lognormal_aft", "priors": {}}, "accelerated-failure-time"),
    ({"site": {"effect": "fixed"}}, "fixed"),
    ({"strata": {"column": "age"}}, "strata"),
    ({"censoring": "midpoint"}, "censoring"),
    ({"options": {"prior_reference_time": 8.0}}, "no options"),
    ({"endpoint": "dfs"}, "os, pfs or ttp"),
    ({"site": {"effect": "none"}, "illness_death__shared_site_effect": True}, "needs"),
    ({"sampler__sampler": "pymc"}, "nutpie"),
    ({"illness_death__time_scale": "reset"}, "semi_markov"),
    ({"priors__death_after_progression": {"log_scale": {"dist": "Normal", "mu": 0,
                                                         "sigma": 1}}}, "unknown prior"),
    ({"illness_death__shared_death_effect": True,
      "priors__death_after_progression": {"log_hr": {"dist": "Normal", "mu": 0,
                                                      "sigma": 1}}}, "share one log HR"),
])
def test_spec_errors_name_the_key_and_the_fix(changes, match):
    with pytest.raises(SpecError, match=match):
        bh.load_spec(_spec(**changes))


@pytest.fixture(scope="module")
def fit():
    # a short run (2 x 150 after 150): these tests are about what the spec and the report
    # record, not about the posterior (test_fit.py and the slow tests check that)
    return bh.fit_spec(SPEC, bh.datasets.load_example_trial(), draws=150, tune=150,
                       chains=2, check=False)


def test_fit_spec_equals_the_direct_fit_and_records_the_spec(fit):
    spec = bh.load_spec(SPEC)
    direct = bh.IllnessDeath("weibull_ph").fit(
        bh.datasets.load_example_trial(), draws=150, tune=150, chains=2,
        random_seed=dict(spec.sampler)["seed"], check=False)
    np.testing.assert_array_equal(fit.datatree["posterior"]["log_hr"].values,
                                  direct.datatree["posterior"]["log_hr"].values)
    attrs = fit.datatree.attrs
    assert attrs["analysis_spec_hash"] == spec.hash
    ran = bh.load_spec(attrs["spec_toml"])
    assert ran.hash == attrs["spec_hash"] and dict(ran.sampler)["draws"] == 150
    assert fit.data_fingerprint == bh.datasets.load_example_trial().fingerprint


def test_report_of_an_illness_death_fit(fit, tmp_path):
    path = bh.report(fit, tmp_path / "joint.html")
    text = path.read_text()
    for section in ("Transition hazard ratios", "OS, PFS and time to progression",
                    "death_after_progression", "state occupation probabilities",
                    "marginal OS hazard ratio", "analysis_spec_hash", "Diagnostics",
                    "OS from the joint model over its Kaplan-Meier estimate",
                    "PFS from the joint model over its Turnbull estimate",
                    "TTP from the joint model over its Turnbull estimate",
                    "posterior predictive check of OS"):
        assert section in text, section
    assert text.count("data:image/png;base64,") == 6
    table = pd.read_csv(tmp_path / "joint_summary.csv", index_col=[0, 1])
    assert set(table.index.get_level_values(0)) == {"OS", "PFS", "TTP"}
    # the spec's tau (24 months) is past this trial's follow-up: cut to it, and said in the row
    assert any(q.startswith("RMST difference") for q in table.index.get_level_values(1))
    with pytest.raises(FileExistsError):
        bh.report(fit, tmp_path / "joint.html")


def test_publication_tables_of_an_illness_death_fit(fit, tmp_path):
    """bh.publication_tables used to refuse a joint fit; a paper reporting one needs its
    endpoint table (the report's) and its transition HRs as DOCX and LaTeX, with the
    footnotes saying what the numbers are."""
    from docx import Document

    from bayes_hcc.quantities.summary import headline_table

    trial = bh.datasets.load_example_trial()
    paths = bh.publication_tables(fit, tmp_path, trial=trial)
    assert sorted(p.name for p in paths) == sorted(
        f"{stem}{suffix}" for stem in ("illness_death_endpoints", "illness_death_transitions",
                                       "disposition") for suffix in (".docx", ".tex"))
    table, hrs = headline_table(fit), fit.summary()
    doc = Document(str(tmp_path / "illness_death_endpoints.docx"))
    rows = [[c.text for c in r.cells] for r in doc.tables[0].rows]
    assert len(rows) == len(table) + 1
    at = table.index.get_loc(("OS", "median difference"))
    assert rows[1 + at][:2] == ["OS", "median difference"]
    assert rows[1 + at][rows[0].index("median")] == \
        f"{table.loc[('OS', 'median difference'), 'median']:.3f}"
    doc = Document(str(tmp_path / "illness_death_transitions.docx"))
    rows = [[c.text for c in r.cells] for r in doc.tables[0].rows]
    assert [r[0] for r in rows[1:]] == list(hrs.index)
    assert rows[1][rows[0].index("hr_median")] == f"{hrs['hr_median'].iloc[0]:.3f}"
    text = " ".join(p.text for p in doc.paragraphs)
    for needle in ("HR < 1 favours tace_sorafenib", "not proportional", "Estimand",
                   "weibull_ph baseline per transition", "markov time scale",
                   "death after progression: log_hr ~ Normal", "Times in months",
                   "Nothing extrapolated", fit.data_fingerprint[:12]):
        assert needle in text, needle
    notes = bh.fit_footnotes(fit)
    assert "not proportional" in notes[1]
    # this short fit (2 x 150 draws) fails its checks: the first footnote says what failed
    assert fit.convergence_problems() and notes[0].startswith("MCMC DIAGNOSTICS FAILED: ")
    # ... and so does the table itself (first row's note, attrs), as bh.summarize's does
    assert table.attrs["diagnostics"].startswith("MCMC diagnostics FAILED (")
    assert table["note"].iloc[0].endswith("see bh.check(fit)")
    assert "Nothing extrapolated" in " ".join(bh.fit_footnotes(fit, table))  # not one
    immature = table.copy()
    immature.loc[("OS", "median tace_sorafenib"), "note"] = "not reached (beyond follow-up)"
    assert ("Extrapolated or not reached (beyond follow-up, see the note column): OS median "
            "tace_sorafenib.") in bh.fit_footnotes(fit, immature)
    with pytest.raises(FileExistsError):
        bh.publication_tables(fit, tmp_path)


def test_report_and_tables_paths_a_user_may_give(fit, tmp_path):
    """A directory as the report's path used to say "exists; pass overwrite=True" and then
    fail with IsADirectoryError; a file as the tables' directory failed with a bare
    FileExistsError; a saved joint fit's path was refused by bh.report as "not a
    single-endpoint fit". Each now works or says what to give."""
    with pytest.raises(bh.BayesHCCError, match="is a directory; give the report's file name"):
        bh.report(fit, tmp_path, overwrite=True)
    (tmp_path / "tables.csv").write_text("x\n")
    with pytest.raises(bh.BayesHCCError, match="is a file; publication_tables writes several "
                       "tables: give a directory"):
        bh.publication_tables(fit, tmp_path / "tables.csv")
    saved = fit.save(tmp_path / "joint.nc")
    text = bh.report(saved, tmp_path / "joint.html").read_text()
    assert "Transition hazard ratios" in text
    assert {p.name for p in bh.publication_tables(str(saved), tmp_path / "t")} == {
        "illness_death_endpoints.docx", "illness_death_endpoints.tex",
        "illness_death_transitions.docx", "illness_death_transitions.tex"}


def test_single_endpoint_functions_name_themselves_for_a_joint_fit(fit):
    """A joint fit given to a single-endpoint function is refused with what to use instead;
    the message said "this function", which one being left to the traceback."""
    for fn in (bh.summarize, bh.effect_ratio, bh.hazard_ratio, bh.frequentist):
        with pytest.raises(bh.BayesHCCError, match=rf"^bh\.{fn.__name__} takes a "
                           r"single-endpoint fit; an illness-death fit has its own: "
                           r"fit\.summary\(\)"):
            fn(fit)


def test_endpoint_table_is_the_medians_of_the_curves(fit):
    table = fit.endpoint_table(tau=10.0)
    med = fit.medians()
    c, t = fit.data.arms
    assert table.loc[("OS", f"median {c}"), "median"] == pytest.approx(
        float(med["os"].sel(arm=c).median()))
    assert table.loc[("PFS", "median difference"), "P(> 0)"] == pytest.approx(
        float((med["pfs"].sel(arm="difference") > 0).mean()))
    # coherent: PFS median <= OS median and <= the TTP median in each arm (medians of
    # curves ordered on every draw)
    for arm in (c, t):
        assert table.loc[("PFS", f"median {arm}"), "median"] <= \
            table.loc[("OS", f"median {arm}"), "median"]


def test_a_monitoring_plan_refuses_an_illness_death_analysis(tmp_path):
    """Looks decide on one hazard ratio; an illness-death analysis has three (and OS/PFS
    hazards that are not proportional): the plan says so and points to completion_model=."""
    plan = tmp_path / "plan.toml"
    plan.write_text(f'name = "joint"\nanalysis = "{SPEC}"\n[final]\nevents = 100\n'
                    'success = 0.975\n')
    with pytest.raises(SpecError, match="completion_model"):
        bh.load_plan(plan)


def test_a_shared_death_effect_from_the_spec_keeps_older_hashes():
    """``illness_death.shared_death_effect = true`` builds the model with one log HR for
    both death transitions; written only when true, so the shipped spec (and any spec
    written before the key existed) keeps its hash."""
    spec = bh.load_spec(SPEC)
    off = bh.load_spec(_spec(illness_death__shared_death_effect=False))
    assert off.hash == spec.hash and bh.build(off).arm_effect == "per_transition"
    on = bh.load_spec(_spec(illness_death__shared_death_effect=True))
    assert on.hash != spec.hash and bh.load_spec(bh.dump_spec(on)) == on
    assert bh.build(on).arm_effect == "shared_death"


def test_headline_table_notes_the_shortened_pre_specified_tau(fit):
    """illness_death.toml pre-specifies tau = 24 months; OS is followed 23.3 months in the
    TACE arm: the OS RMST row is at 23 months and says why (PFS and TTP rows already said
    theirs)."""
    from bayes_hcc.quantities.summary import headline_table

    table = headline_table(fit)
    note = table.loc[("OS", "RMST difference (23 months)"), "note"]
    assert note == ("pre-specified tau 24 months is past the follow-up (23.3 months): "
                    "shortened to the whole months it covers")
    assert table.loc[("PFS", "RMST difference (10 months)"), "note"].startswith(
        "tau shortened to the PFS follow-up")
