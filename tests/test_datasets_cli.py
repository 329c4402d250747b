"""Bundled datasets and the command line."""

import numpy as np
import pytest
from typer.testing import CliRunner

import bayes_hcc as bh
from bayes_hcc.cli import app


def test_example_trial_is_the_recipe_and_synthetic():
    trial = bh.datasets.load_example_trial()
    assert trial == bh.datasets.make_example_trial()  # the CSV is what the recipe makes
    assert trial.n_patients == 130 and len(trial.sites) == 6
    assert trial.arms == ("sorafenib", "tace_sorafenib")
    assert trial.cut_date.strftime("%Y-%m-%d") == "2020-02-28"
    assert trial.truth.hr["os"] == 0.70 and trial.truth.median["os"]["sorafenib"] == \
        pytest.approx(6.5)
    assert "SYNTHETIC" in repr(trial)
    f = trial.to_frame()
    assert f["randomization_date"].max().year == 2019


@pytest.mark.parametrize("loader, n, endpoint", [
    (bh.datasets.load_veteran, 137, "os"),
    (bh.datasets.load_leukemia_6mp, 42, "relapse"),
    (bh.datasets.load_rats, 150, "tumour"),
])
def test_real_datasets_load(loader, n, endpoint):
    trial = loader()
    assert trial.n_patients == n and trial.endpoints == (endpoint,)


def test_veteran_cox_reference():
    from lifelines import CoxPHFitter
    import pandas as pd

    ep = bh.datasets.load_veteran().endpoint("os")
    cox = CoxPHFitter().fit(pd.DataFrame({"T": ep.time, "E": ep.event, "x": ep.arm}), "T", "E")
    # Published reference: HR about 1.02 (0.71 to 1.45).
    assert np.exp(cox.params_["x"]) == pytest.approx(1.02, abs=0.02)


def test_cli_describe_example_and_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["describe", "example"])
    assert result.exit_code == 0, result.output
    assert "130 patients" in result.output and "Kaplan-Meier median" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,site,arm,os_time,os_event\n1,A,sorafenib,-2,1\n"
                   "2,A,tace_sorafenib,3,0\n")
    result = runner.invoke(app, ["describe", str(bad)])
    assert result.exit_code == 2
    assert "negative time" in result.output and "row 1" in result.output


def test_cli_fit_writes_fit_and_table_and_refuses_overwrite(tmp_path):
    runner = CliRunner()
    out = tmp_path / "primary"
    args = ["fit", "example", "--model", "weibull", "--out", str(out), "--fast", "--seed", "3"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "P(HR < 1)" in result.output and "diagnostics:" in result.output
    table = __import__("pandas").read_csv(out / "summary.csv", index_col=0)
    fit = bh.load_fit(out / "fit.nc")
    # The table is what the saved fit gives.
    assert table.loc["P(HR < 1)", "mean"] == pytest.approx(bh.prob_superiority(fit).probability)
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(app, args + ["--overwrite"]).exit_code == 0
    bad = runner.invoke(app, ["fit", "example", "--model", "cox", "--out", str(out)])
    assert bad.exit_code == 2 and "choose one of pwe, weibull" in bad.output


def test_cli_fit_of_a_single_centre_trial(tmp_path):
    """``bayes-hcc fit veteran`` (one site) failed with the default random site effects and
    a Python keyword as the fix. Now the default is no site effects, said on the console;
    asking for site effects on one site is refused with the option that fixes it. The fit
    is the Python API's with ``site_effect='none'`` (same seed: the same draws)."""
    runner = CliRunner()
    out = tmp_path / "vet"
    result = runner.invoke(app, ["fit", "veteran", "--model", "weibull", "--out", str(out),
                                 "--fast", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "one site: no site effects (--site-effect none)" in result.output
    fit = bh.load_fit(out / "fit.nc")
    assert fit.site_effect == "none"
    again = bh.WeibullPH(site_effect="none").fit(bh.datasets.load_veteran(), "os", draws=300,
                                                  tune=400, chains=4, random_seed=3,
                                                  exploratory=True, check=False)
    np.testing.assert_array_equal(bh.hazard_ratio(fit).values, bh.hazard_ratio(again).values)
    refused = runner.invoke(app, ["fit", "veteran", "--site-effect", "random", "--out",
                                  str(tmp_path / "r"), "--fast"])
    assert refused.exit_code == 2
    error = refused.output.split("error: ")[1]
    assert "Use --site-effect none" in error and "site_effect=" not in error
    # a pre-specified analysis with site effects: the fix is the spec's to make
    spec = __import__("pathlib").Path(__file__).parents[1] / "models" / "primary_os.toml"
    refused = runner.invoke(app, ["fit", "veteran", "--spec", str(spec), "--out",
                                  str(tmp_path / "s"), "--fast"])
    assert refused.exit_code == 2 and '(in a spec: [site] effect = "none")' in refused.output
