"""The sensitivity grid on the example trial, in fast mode."""

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import bayes_hcc as bh
from bayes_hcc.cli import app
from bayes_hcc.families.registry import FAMILIES

GRID = Path(__file__).resolve().parents[2] / "models" / "sensitivity_os.toml"


@pytest.fixture(scope="module")
def table():
    return bh.run_sensitivity(GRID, bh.datasets.load_example_trial(), fast=True, progress=False)


def test_grid_covers_the_plan(table):
    assert len(bh.load_grid(GRID)) >= 16
    fitted = table[table["elpd_loo"].notna()]
    assert len(fitted) >= 15
    assert set(fitted["family"]) == set(FAMILIES)  # every registered family is in the grid
    # Non-PH families: no HR printed, the note says why, the time ratio is there instead.
    aft = table.loc["family: log-normal AFT"]
    assert np.isnan(aft["hr_median"]) and "no single HR" in aft["note"]
    assert aft["tr_median"] > 0 and 0 <= aft["P(TR > 1)"] <= 1
    # No per_protocol column in the example trial: that row says so instead of a number.
    assert table.loc["population: per-protocol", "note"].startswith("skipped")
    # A time-varying HR's row: its HR is the geometric mean over intervals; the note gives
    # the HR averaged over time to the row's RMST horizon as well.
    tv = table.loc["time-varying HR"]
    averaged = re.search(r"HR averaged over time \(cumulative hazards' ratio\) to ([\d.]+) "
                         r"months: ([\d.]+)", tv["note"])
    assert averaged and float(averaged[1]) == pytest.approx(tv["rmst_tau"])
    assert 0.5 < float(averaged[2]) < 1.5  # the example trial's HRs are near 0.8
    for col in ("hr_median", "hr_lower", "hr_upper", "P(HR < 1)", "median_diff", "rmst_diff",
                "elpd_loo", "diagnostics", "spec_hash"):
        assert col in table.columns


def test_sceptical_prior_moves_probability_towards_half(table):
    vague = table.loc["log-HR prior: vague", "P(HR < 1)"]
    sceptical = table.loc["log-HR prior: sceptical", "P(HR < 1)"]
    assert abs(sceptical - 0.5) < abs(vague - 0.5)
    # and pulls the HR towards 1
    assert abs(table.loc["log-HR prior: sceptical", "hr_median"] - 1) < \
        abs(table.loc["log-HR prior: vague", "hr_median"] - 1)


def test_ttp_grid_runs_and_marks_imputations_not_comparable():
    """The pre-specified TTP grid on the example trial, whose TTP has patients censored at
    time 0 (died before a first scan: a likelihood of 1 on every draw; LOO failed on them
    and with it the whole grid). Every variant is fitted with an ELPD, and the rows that
    impute progression at a point of its scan interval are not marked comparable with the
    interval-censored rows (a density at a chosen time against a probability)."""
    trial = bh.datasets.load_example_trial()
    ttp = bh.run_sensitivity(GRID.parent / "sensitivity_ttp.toml", trial, fast=True,
                             progress=False)
    assert ttp["elpd_loo"].notna().all() and np.isfinite(ttp["elpd_loo"]).all(), ttp
    interval = ttp["censoring"] == "interval"
    assert interval.sum() >= 2 and (~interval).sum() == 3
    assert ttp.loc[interval, "elpd_comparable"].all()
    assert not ttp.loc[~interval, "elpd_comparable"].any()
    assert ttp.loc[~interval, "note"].str.contains("ELPD not comparable").all()
    notes = dict(zip(ttp.loc[~interval, "censoring"], ttp.loc[~interval, "note"]))
    assert "imputed at the scan that showed it" in notes["upper"]
    assert "imputed at the midpoint of its scan interval" in notes["midpoint"]


def test_every_row_hash_reloads_its_spec(table):
    for _, row in table.iterrows():
        spec = bh.load_spec(row["spec_toml"])
        assert spec.hash == row["spec_hash"]


def test_forest_plot_and_cli(tmp_path, table):
    fig = bh.plot_sensitivity(table)
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000
    ax = fig.axes[0]
    # Every variant has a row, the AFT ones say why they have no HR (they were dropped).
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table.index)
    notes = [t.get_text() for t in ax.texts]
    assert sum("AFT model: no single HR" in n for n in notes) == 2
    # The legend lies outside the axes (it used to cover the last row) ...
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.y1 <= ax.get_window_extent().y0
    # ... and tick labels are plain numbers, not "2x10^-1".
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "1" in labels and not any("10^" in x or "times" in x for x in labels)
    small = tmp_path / "grid.toml"
    base = GRID.parent / "primary_os.toml"
    small.write_text(f'base = "{base}"\n[[variants]]\nname = "sceptical"\noverrides = '
                     '{ "priors.log_hr" = { dist = "Normal", mu = 0.0, sigma = 0.2168 } }\n')
    res = CliRunner().invoke(app, ["sensitivity", str(small), "example", "--out",
                                   str(tmp_path / "out"), "--fast"])
    assert res.exit_code == 0, res.output
    out = pd.read_csv(tmp_path / "out" / "sensitivity.csv", index_col=0)
    assert len(out) == 2 and (tmp_path / "out" / "forest.png").exists()
    assert (tmp_path / "out" / "sensitivity.tex").exists()
    for h in out["spec_hash"]:
        assert bh.load_spec(tmp_path / "out" / "specs" / f"{h[:16]}.toml").hash == h


def test_grid_errors(tmp_path):
    bad = tmp_path / "g.toml"
    bad.write_text('base = "nowhere.toml"\n')
    with pytest.raises(bh.SpecError, match="no such spec file"):
        bh.load_grid(bad)
    bad.write_text(f'base = "{GRID.parent / "primary_os.toml"}"\n[[variants]]\nname = "x"\n'
                   'overrides = { "site.effect" = "sideways" }\n')
    with pytest.raises(bh.SpecError, match="variant 'x'.*choose one of random, fixed, none"):
        bh.load_grid(bad)
    # the API's arguments as a user might give them, refused before any fit: the CLI's
    # key=value text (it failed inside dict()), workers=0 (it ran in this process), and a
    # path or another table given to the forest plot (TypeError, KeyError)
    trial = bh.datasets.load_example_trial()
    with pytest.raises(bh.SpecError, match=r"overrides='family=weibull_ph' must be a dict of "
                       r"dotted keys, e.g. \{'family': 'weibull_ph'"):
        bh.run_sensitivity(GRID, trial, overrides="family=weibull_ph", progress=False)
    with pytest.raises(bh.BayesHCCError, match=r"workers=0: give the number of processes"):
        bh.run_sensitivity(GRID, trial, workers=0, progress=False)
    with pytest.raises(bh.BayesHCCError, match=r"plot_sensitivity: takes the table "
                       r"bh.run_sensitivity returns \(a saved one: pd.read_csv"):
        bh.plot_sensitivity("grid.csv")
    import pandas as pd

    with pytest.raises(bh.BayesHCCError, match=r"the table has none of the grid's columns"):
        bh.plot_sensitivity(pd.DataFrame({"a": [1.0]}))


def test_process_pool_gives_the_same_numbers(tmp_path):
    """workers=2 (spawned processes) and in-process execution: same seeds, same rows."""
    grid = tmp_path / "grid.toml"
    grid.write_text(f'base = "{GRID.parent / "primary_os.toml"}"\n[[variants]]\n'
                    'name = "sites: none"\noverrides = { "site.effect" = "none" }\n')
    trial = bh.datasets.load_example_trial()
    serial = bh.run_sensitivity(grid, trial, fast=True, progress=False)
    pooled = bh.run_sensitivity(grid, trial, fast=True, progress=False, workers=2)
    cols = ["hr_median", "hr_lower", "hr_upper", "P(HR < 1)", "median_diff", "spec_hash"]
    pd.testing.assert_frame_equal(serial[cols], pooled[cols])


def test_frequentist_companion_and_docx_export(table, tmp_path):
    """Every fitted row carries the Cox HR and log-rank p of its own data (the same for
    variants on the same patients), and the table exports to DOCX and LaTeX."""
    from docx import Document

    from bayes_hcc.data.km import classical_comparison

    ep = bh.datasets.load_example_trial().endpoint("os")
    ref = classical_comparison(ep.time, ep.event, ep.arm, ep.arms)
    row = table.loc["log-HR prior: vague"]
    assert row["cox_hr"] == pytest.approx(ref.iloc[1]["estimate"], rel=1e-9)
    assert row["logrank_p"] == pytest.approx(ref.loc["log-rank test", "p_value"], rel=1e-9)
    path = bh.write_table(table, tmp_path / "sens.docx", title="Sensitivity")
    doc = Document(str(path))
    rows = doc.tables[0].rows
    assert len(rows) == len(table) + 1
    assert "spec_toml" not in [c.text for c in rows[0].cells]
    assert any("frequentist companion" in p.text for p in doc.paragraphs)
    tex = bh.write_table(table, tmp_path / "sens.tex").read_text()
    assert tex.count(r" \\") == len(table) + 1


def test_illness_death_variant_has_its_own_row(table):
    """The grid's illness-death variant: OS medians and RMST from the joint model, the
    transition HRs in their own columns, no single OS HR (its hazards are not proportional
    under this model) and an ELPD of progression and death together, never comparable with
    the OS rows' (it was left empty)."""
    row = table.loc["model: illness-death (Weibull transitions, Markov)"]
    assert np.isnan(row["hr_median"]) and "illness-death" in row["note"]
    for t in ("progression", "death_without_progression", "death_after_progression"):
        assert 0.2 < row[f"hr_{t}"] < 3
    primary = table.iloc[0]
    for arm in ("sorafenib", "tace_sorafenib"):  # same data, same endpoint: similar medians
        assert abs(row[f"median {arm}"] - primary[f"median {arm}"]) < 2.0
    assert np.isfinite(row["elpd_loo"]) and not row["elpd_comparable"]
    assert row["likelihood_of"] == "progression and death"
    assert (table.loc[table["likelihood_of"] == "os", "elpd_comparable"]
            == table.loc[table["likelihood_of"] == "os", "elpd_loo"].notna()).all()
    assert row["estimand"] == primary["estimand"] and np.isfinite(row["cox_hr"])


def _site_grid(tmp_path, *variants):
    """A small grid on the primary analysis (random site effects) with these variants."""
    text = f'name = "sites"\nbase = "{GRID.parent / "primary_os.toml"}"\n'
    for name, overrides in variants:
        text += f'[[variants]]\nname = "{name}"\noverrides = {overrides}\n'
    path = tmp_path / f"grid{len(list(tmp_path.glob('grid*.toml')))}.toml"
    path.write_text(text)
    return path


SD_PRIOR = ("site SD prior: HalfNormal(0.25)",
            '{ "priors.site_sd" = { dist = "HalfNormal", sigma = 0.25 } }')
NO_SITES = ("sites: none", '{ "site.effect" = "none" }')


def test_grid_on_a_single_centre_trial(tmp_path):
    """The multi-centre grid run on a single-centre trial (veteran: one site). It used to
    stop at the first variant with a ModelError, losing every other row. Now a variant the
    data cannot carry is a row saying why; no fittable variant at all is an error listing the
    reasons and the fix; ``overrides=`` changes the base of every variant; and a variant that
    changes nothing the model uses (a site-SD prior without site effects) is marked as the
    same posterior, not counted as a separate check."""
    veteran = bh.datasets.load_veteran()
    grid = _site_grid(tmp_path, SD_PRIOR, NO_SITES)
    table = bh.run_sensitivity(grid, veteran, fast=True, progress=False)
    assert table.loc["primary: primary_os", "note"].startswith(
        "skipped: site_effect='random' needs at least 2 sites")
    assert table.loc[SD_PRIOR[0], "note"].startswith("skipped: site_effect='random'")
    fitted = table.loc["sites: none"]
    assert fitted["diagnostics"] == "ok" and 0.5 < fitted["hr_median"] < 2
    # the same variant, fitted on its own, gives the same numbers
    alone = bh.fit_spec(bh.load_grid(grid).variants[2][1], veteran, fast=True, check=False)
    assert fitted["hr_median"] == pytest.approx(float(bh.hazard_ratio(alone).median()),
                                                rel=1e-12)

    with pytest.raises(bh.SpecError, match=r"(?s)no variant can be fitted.*2 variant\(s\): "
                       r"site_effect='random' needs at least 2 sites.*"
                       r'overrides=\{"site.effect": "none"\}'):
        bh.run_sensitivity(_site_grid(tmp_path, SD_PRIOR), veteran, fast=True,
                           progress=False)

    table = bh.run_sensitivity(grid, veteran, fast=True, progress=False,
                               overrides={"site.effect": "none"})
    assert (table["diagnostics"] == "ok").all()
    base = table.iloc[0]
    assert base["hr_median"] == pytest.approx(fitted["hr_median"], rel=1e-12)
    for name in (SD_PRIOR[0], "sites: none"):
        assert table.loc[name, "note"].startswith("same posterior as 'primary: primary_os'")
        assert table.loc[name, "same_posterior_as"] == "primary: primary_os"
        assert table.loc[name, "hr_median"] == base["hr_median"]
    assert "same posterior" not in str(base["note"])
    # a variant that changes only what is reported (the estimand) shares the draws but not
    # the row: not marked
    est = ("estimand: new site", '{ "report.estimand" = "new_site" }')
    reported = bh.run_sensitivity(_site_grid(tmp_path, est), veteran, fast=True,
                                  progress=False, overrides={"site.effect": "none"})
    assert "same posterior" not in str(reported.loc[est[0], "note"])
    assert table.attrs["overrides"] == {"site.effect": "none"}
    assert "site.effect = 'none'" in table.attrs["footnotes"][1]
    assert 'effect = "none"' in table.loc[SD_PRIOR[0], "spec_toml"]


def test_grid_variants_with_different_posteriors_are_not_marked(table):
    """On the example trial (six sites) no two variants of the bundled grid share a
    posterior: the mark is not a blanket."""
    assert not table["note"].fillna("").str.contains("same posterior").any()


def test_cli_override_and_skipped_rows(tmp_path):
    runner = CliRunner()
    grid = _site_grid(tmp_path, SD_PRIOR)
    res = runner.invoke(app, ["sensitivity", str(grid), "veteran", "--out",
                              str(tmp_path / "a"), "--fast"])
    assert res.exit_code == 2
    assert "--override KEY=VALUE changes the base spec of every variant" in res.output
    assert "overrides={" not in res.output
    res = runner.invoke(app, ["sensitivity", str(_site_grid(tmp_path, SD_PRIOR, NO_SITES)),
                              "veteran", "--out", str(tmp_path / "b"), "--fast"])
    assert res.exit_code == 0, res.output
    assert "primary: primary_os: skipped: site_effect='random' needs at least 2 sites; " \
        "these data have 1." in res.output  # the whole reason
    # a TOML value (a table) and a bare word, each as the Python API's overrides
    res = runner.invoke(app, ["sensitivity", str(grid), "veteran", "--out",
                              str(tmp_path / "c"), "--fast", "--override", "site.effect=none",
                              "--override",
                              'priors.log_hr={ dist = "Normal", mu = 0.0, sigma = 2.0 }'])
    assert res.exit_code == 0, res.output
    assert f"{SD_PRIOR[0]}: same posterior as 'primary: primary_os'" in res.output
    out = pd.read_csv(tmp_path / "c" / "sensitivity.csv", index_col=0)
    spec = bh.load_spec(tmp_path / "c" / "specs" / f"{out['spec_hash'].iloc[0][:16]}.toml")
    assert dict(spec.site)["effect"] == "none"
    assert dict(spec.priors)["log_hr"].params == {"mu": 0.0, "sigma": 2.0}
    res = runner.invoke(app, ["sensitivity", str(grid), "veteran", "--out",
                              str(tmp_path / "d"), "--override", "site.effect"])
    assert res.exit_code == 2 and "give KEY=VALUE" in res.output


def test_a_variant_whose_medians_are_never_reached(tmp_path):
    """A trial whose survival levels off above 0.5 (hazard 0.06 / month to 6 months, then
    0.002): a Gompertz variant's medians are +inf on most draws. Its row says the medians
    are not reached, leaves them and their difference blank, raises no RuntimeWarning (the
    quantiles of +inf draws are +inf, not numpy's NaN), and estimates the HR as any row."""
    trial = bh.simulate_trial(130, os_hazard=bh.PiecewiseHazard(cuts=(6.0,),
                                                                 rates=(0.06, 0.002)),
                              hr_os=0.7, random_seed=3)
    grid = _site_grid(tmp_path, ("family: Gompertz", '{ "family" = "gompertz_ph" }'))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        table = bh.run_sensitivity(grid, trial, fast=True, progress=False,
                                   overrides={"site.effect": "none"})
    row = table.loc["family: Gompertz"]
    assert np.isnan(row["median sorafenib"]) and np.isnan(row["median_diff"])
    assert "median sorafenib not reached" in row["note"]
    assert 0.2 < row["hr_median"] < 2.5


def test_rmst_horizon_without_a_pre_specified_tau_is_the_reports(tmp_path):
    """A spec without [report] tau: the grid's RMST was at 12 months while the report and
    summarize of the same fit use 24 months (shortened to the follow-up): two numbers for
    one analysis. The grid now uses the report's horizon."""
    from bayes_hcc.quantities.summary import default_tau

    text = (GRID.parent / "primary_os.toml").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("tau ="))
    (tmp_path / "base.toml").write_text(text)
    grid = tmp_path / "grid.toml"
    grid.write_text(f'name = "g"\nbase = "{tmp_path / "base.toml"}"\ninclude_base = false\n'
                    '[[variants]]\nname = "sites: none"\noverrides = { "site.effect" = '
                    '"none" }\n')
    trial = bh.datasets.load_example_trial()
    table = bh.run_sensitivity(grid, trial, fast=True, progress=False)
    alone = bh.fit_spec(bh.load_grid(grid).variants[0][1], trial, fast=True, check=False)
    assert dict(alone.spec.report).get("tau") is None
    assert table.loc["sites: none", "rmst_tau"] == default_tau(alone) == 23.0


def test_a_variant_s_own_data_warning_is_in_its_note(tmp_path):
    """At an early cut CNUH has no OS events: the fixed-site-effects variant's effect for it
    is the prior's alone. The grid silenced every warning of its fits (for the verdict
    column), so the row gave no sign; the variant's DataWarnings are now in its note, and
    the other rows stay as they were."""
    grid = _site_grid(tmp_path, ("sites: fixed", '{ "site.effect" = "fixed" }'))
    early = bh.datasets.load_example_trial().cut("2017-11-15", warn=False)
    table = bh.run_sensitivity(grid, early, fast=True, progress=False,
                               overrides={"family": "weibull_ph"})
    assert table.loc["sites: fixed", "note"].startswith(
        "os: site(s) 'CNUH' have no events: with site_effect='fixed' their effects are "
        "informed by the prior only")
    assert "have no events" not in table.loc["primary: primary_os", "note"]
