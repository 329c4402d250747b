"""Medians and landmarks beyond follow-up are reported as not reached / extrapolated (they
used to be printed as estimates: a median of 21.5 months with 12.7 months of follow-up), and
the headline table's landmarks and tau follow the data's time unit."""

import warnings
from pathlib import Path

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.datasets import _DATA


@pytest.fixture(scope="module")
def immature_fit():
    """A trial cut early with a strong effect: the treatment arm's median lies beyond its
    follow-up (Kaplan-Meier not reached), the control median within it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.DataWarning)
        sim = bh.simulate_trial(130, os_hazard=bh.WeibullHazard(median=9.0, shape=1.0),
                                hr_os=0.45, accrual_start="2017-06-01",
                                accrual_end="2018-06-01", cut_date="2018-09-30",
                                random_seed=3)
    km = sim.kaplan_meier("os")
    assert np.isfinite(km.loc["sorafenib", "median"])
    assert not np.isfinite(km.loc["tace_sorafenib", "median"])
    return bh.WeibullPH().fit(sim, "os", random_seed=1)


def test_median_beyond_follow_up_is_not_reached(immature_fit):
    fu = immature_fit.follow_up_by_arm()
    table = bh.summarize(immature_fit)
    trt = table.loc["median tace_sorafenib (months)"]
    assert np.isnan(trt["median"]) and np.isnan(trt["upper"])
    assert trt["note"].startswith("not reached: median beyond follow-up")
    assert "extrapolate=True" in trt["note"]
    diff = table.loc["median difference (months)"]
    assert np.isnan(diff["median"]) and "not reached" in diff["note"]
    for t, a in ((24, "sorafenib"), (24, "tace_sorafenib")):
        row = table.loc[f"S({t} months) {a}"]
        assert t > fu[a] and np.isnan(row["median"]) and "beyond follow-up" in row["note"]
    # the control median is estimated, its upper limit lies beyond follow-up
    ctrl = table.loc["median sorafenib (months)"]
    assert ctrl["median"] < fu["sorafenib"] and np.isnan(ctrl["upper"])
    assert ctrl["note"].startswith("upper limit beyond follow-up")


def test_the_draws_say_where_they_lie_against_follow_up(immature_fit, tmp_path):
    """Outside the headline table (a notebook calling the quantity functions) the draws carry
    what the table says: each arm's median status, and the survival times beyond follow-up."""
    fu = immature_fit.follow_up_by_arm()
    med = bh.median_survival(immature_fit)
    assert med["follow_up"].values[:2].tolist() == [fu["sorafenib"], fu["tace_sorafenib"]]
    assert med["status"].values.tolist() == ["upper", "beyond", "beyond"]
    notes = bh.summarize(immature_fit)["note"]  # the table's verdicts, from the same rule
    assert notes["median sorafenib (months)"].startswith("upper limit beyond follow-up")
    assert notes["median tace_sorafenib (months)"].startswith("not reached")
    assert str(med.sel(arm="tace_sorafenib")["status"].values) == "beyond"
    s = bh.survival(immature_fit, [6, 12, 24])
    expected = [[t > fu[a] for t in (6, 12, 24)] for a in ("sorafenib", "tace_sorafenib")]
    assert s["beyond_follow_up"].values.tolist() == expected
    assert np.array(expected).any() and not np.array(expected).all()
    assert not bh.survival(immature_fit, [1.0])["beyond_follow_up"].any()
    s.to_netcdf(tmp_path / "s.nc")  # the coordinates survive a save (dict attrs would not)
    med.to_netcdf(tmp_path / "med.nc")


def test_extrapolate_shows_the_model_and_says_so(immature_fit):
    table = bh.summarize(immature_fit, extrapolate=True)
    med = bh.median_survival(immature_fit).sel(arm="tace_sorafenib")
    row = table.loc["median tace_sorafenib (months)"]
    assert row["median"] == pytest.approx(float(med.median()))
    assert row["median"] > immature_fit.follow_up_by_arm()["tace_sorafenib"]
    assert row["note"].startswith("extrapolated")
    assert table.loc["S(24 months) sorafenib", "note"].startswith("extrapolated")


def test_rmst_beyond_follow_up_still_refused(immature_fit):
    """RMST's horizon is the follow-up of the arm followed less long (the usual rule for
    comparing RMSTs): the default tau stays within it, a longer one is refused."""
    from bayes_hcc.quantities.summary import default_tau

    fu = immature_fit.follow_up_by_arm()
    assert default_tau(immature_fit) <= min(fu.values())
    with pytest.raises(bh.HorizonError, match="the shorter of the two"):
        bh.rmst(immature_fit, (min(fu.values()) + max(fu.values())) / 2)
    with pytest.raises(bh.HorizonError, match="extrapolate=True"):
        bh.summarize(immature_fit, tau=36)
    table = bh.summarize(immature_fit, tau=36, extrapolate=True)
    assert table.loc["RMST(36 months) difference", "note"].startswith("extrapolated")


def test_landmarks_and_tau_in_the_data_unit():
    """In days, the default landmarks are 12 and 24 months expressed in days, and the
    estimates equal the months ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.DataWarning)
        days = bh.read_trial(_DATA / "example_trial.csv", time_unit="days")
        months = bh.read_trial(_DATA / "example_trial.csv")
    kw = dict(random_seed=5, draws=500, tune=500, chains=2, check=False)
    td = bh.summarize(bh.WeibullPH().fit(days, "os", **kw))
    tm = bh.summarize(bh.WeibullPH().fit(months, "os", **kw))
    assert "S(365.25 days) sorafenib" in td.index and "S(730.5 days) sorafenib" in td.index
    # RMST: 24 months, or the whole months both arms' follow-up covers, in days
    tau_days = [q for q in td.index if q.startswith("RMST(")][0]
    tau_months = [q for q in tm.index if q.startswith("RMST(")][0]
    months = float(tau_months[5:].split(" ")[0])
    assert tau_days == f"RMST({round(months * 30.4375, 2):g} days) difference"  # 700.06
    assert td.attrs["time_unit"] == "days"
    # Same probabilities; the comparison is of two runs of the same posterior (different
    # sampler coordinates), so within 4 Monte Carlo SEs of the difference.
    for a in ("sorafenib", "tace_sorafenib"):
        x, y = td.loc[f"S(365.25 days) {a}"], tm.loc[f"S(12 months) {a}"]
        assert abs(x["mean"] - y["mean"]) <= 4 * np.hypot(x["mcse"], y["mcse"])


def test_probability_of_all_agreeing_draws_has_a_bound():
    draws = bh.quantities.core._probability(
        __import__("xarray").DataArray(np.ones((2, 50), bool), dims=("chain", "draw")), "x")
    assert draws.probability == 1.0 and draws.mcse == pytest.approx(0.01)
    assert draws.mcse_is_bound and "every draw agrees" in repr(draws)


def test_a_single_endpoint_fit_refuses_another_endpoint(example_weibull_fit):
    """endpoint= is for illness-death fits; on an OS fit, asking for PFS is an error that
    names the fit's endpoint (never the OS curve under a PFS label)."""
    with pytest.raises(bh.BayesHCCError, match="this fit is of 'os'"):
        bh.median_survival(example_weibull_fit, endpoint="pfs")
    same = bh.median_survival(example_weibull_fit, endpoint="os")
    np.testing.assert_array_equal(same.values, bh.median_survival(example_weibull_fit).values)


def test_landmarks_given_as_text_are_refused_not_split_into_digits(example_weibull_fit):
    """summarize(times="12") iterated the string: rows S(1 months) and S(2 months)."""
    with pytest.raises(bh.BayesHCCError, match=r"times='12' is text; give numbers"):
        bh.summarize(example_weibull_fit, times="12")
    with pytest.raises(bh.BayesHCCError, match=r"must be finite and >= 0"):
        bh.summarize(example_weibull_fit, times=[-1, 12])
    one = bh.summarize(example_weibull_fit, times=12, thresholds=0.8)  # one number: one
    assert [r for r in one.index if r.startswith(("S(", "P(HR"))] == [
        "S(12 months) sorafenib", "S(12 months) tace_sorafenib", "P(HR < 0.8)"]
    # a landmark or threshold given twice is one row each (times=[12, 12] raised TypeError
    # from inside xarray)
    twice = bh.summarize(example_weibull_fit, times=[12, 12.0, 6], thresholds=[0.8, 0.8])
    assert [r for r in twice.index if r.startswith(("S(", "P(HR"))] == [
        "S(12 months) sorafenib", "S(12 months) tace_sorafenib", "S(6 months) sorafenib",
        "S(6 months) tace_sorafenib", "P(HR < 0.8)"]
    # and the same numbers as asked once (the same draws: equal to the last digit)
    for row in ("S(12 months) sorafenib", "S(12 months) tace_sorafenib", "P(HR < 0.8)"):
        assert twice.loc[row, "mean"] == one.loc[row, "mean"], row
    # thresholds="0.8" failed inside with "could not convert string to float: '.'"
    with pytest.raises(bh.BayesHCCError, match=r"thresholds='0.8' is text"):
        bh.summarize(example_weibull_fit, thresholds="0.8")


def test_survival_grid_arguments_checked(example_weibull_fit):
    """``survival_curve(fit, n=2.5)`` failed inside numpy ("'float' object cannot be
    interpreted as an integer") and ``n=0`` returned a curve of no points; ``survival``
    read one number written as text, where ``summarize`` refuses text."""
    for n in (0, 1, 2.5, "50"):
        with pytest.raises(bh.BayesHCCError, match=r"survival_curve: n=.* must be a whole "
                           "number >= 2"):
            bh.survival_curve(example_weibull_fit, n=n)
    assert bh.survival_curve(example_weibull_fit, n=np.int64(5)).sizes["time"] == 5
    with pytest.raises(bh.BayesHCCError, match=r"survival: times='12' is text"):
        bh.survival(example_weibull_fit, "12")
    with pytest.raises(bh.BayesHCCError, match=r"survival: times=\[-1.0, 2.0\] must be "
                       "finite and >= 0"):
        bh.survival(example_weibull_fit, [-1, 2])
    with pytest.raises(bh.BayesHCCError, match=r"must be finite numbers"):
        bh.survival(example_weibull_fit, [np.nan, 2])
    # one number is one time
    assert bh.survival(example_weibull_fit, 12).sizes["time"] == 1


def test_a_follow_up_under_a_month_gives_the_rmst_to_it():
    """One arm followed for under a month (a file of early data, or an early cut): the
    headline table's RMST runs to that follow-up, as the illness-death table and the
    sensitivity grid already did. summarize raised instead, naming the longest follow-up
    of either arm as the one "under a month" ("the follow-up (5 months) is under a
    month"), with a fix (tau=) that `bayes-hcc fit` has no option for."""
    from tests.helpers import six_patient_fit

    fit = six_patient_fit([1.0, 5, 5, 0.2, 0.5, 0.7], [1, 1, 0, 0, 1, 0])
    assert fit.follow_up_by_arm() == {"sorafenib": 5.0, "tace_sorafenib": 0.7}
    table = bh.summarize(fit)
    row = table.loc["RMST(0.7 months) difference"]
    # the RMST difference to 0.7 months of two survival curves lies within +-0.7 months
    assert -0.7 < row["median"] < 0.7 and row["lower"] < row["median"] < row["upper"]
    assert bh.rmst(fit, 0.7).sel(arm="difference").median() == pytest.approx(row["median"])
    # an arm never followed (all censored at 0: randomized on the day of the cut)
    with pytest.warns(bh.DataWarning, match="arm 'tace_sorafenib' has no events"):
        fit = six_patient_fit([1.0, 5, 5, 0, 0, 0], [1, 1, 0, 0, 0, 0])
    with pytest.raises(bh.BayesHCCError, match="arm 'tace_sorafenib' has no follow-up"):
        bh.summarize(fit)


def test_an_arm_without_follow_up_under_a_spec_s_tau(tmp_path):
    """The spec's tau on data where one arm has no follow-up (every patient censored at
    time 0) was shortened to 0, and the report, `bayes-hcc fit` and the sensitivity grid
    (every row, so the whole grid) ended in "rmst: tau=0.0 must be > 0". The report now
    refuses as summarize does, and a grid row says its RMST is not estimable and why,
    keeping the row's other columns; `bayes-hcc fit` refuses before sampling."""
    from bayes_hcc.spec.model_spec import apply_overrides, dump_spec
    from tests.helpers import six_patient_trial

    primary = bh.load_spec(Path(__file__).resolve().parents[2] / "models" / "primary_os.toml")
    spec = apply_overrides(primary, {"family": "exponential_ph", "site.effect": "none",
                                     "sampler.draws": 200, "sampler.tune": 200,
                                     "sampler.chains": 2})
    assert dict(spec.report)["tau"] == 24.0
    path = tmp_path / "spec.toml"
    path.write_text(dump_spec(spec))
    with pytest.warns(bh.DataWarning, match="arm 'tace_sorafenib' has no events"):
        trial = six_patient_trial([1.0, 5, 5, 0, 0, 0], [1, 1, 0, 0, 0, 0])
        fit = bh.fit_spec(path, trial, check=False)
    with pytest.raises(bh.BayesHCCError, match="arm 'tace_sorafenib' has no follow-up"):
        bh.report(fit, tmp_path / "report.html")
    grid = tmp_path / "grid.toml"
    grid.write_text(f'base = "{path}"\n[[variants]]\nname = "sceptical"\noverrides = '
                    '{ "priors.log_hr" = { dist = "Normal", mu = 0.0, sigma = 0.2168 } }\n')
    table = bh.run_sensitivity(grid, trial, fast=True, progress=False)
    assert len(table) == 2 and table["rmst_diff"].isna().all()
    assert table["note"].str.contains("RMST not estimable: arm 'tace_sorafenib' has no "
                                      "follow-up").all()
    assert np.isfinite(table["hr_median"]).all()
    # `bayes-hcc fit` sampled, then refused at its table and wrote nothing; it now refuses
    # before sampling (with the spec, and without: its table refuses too)
    from typer.testing import CliRunner

    from bayes_hcc.cli.app import app

    data = tmp_path / "six.csv"
    trial.to_frame().to_csv(data, index=False)
    for how in (["--spec", str(path)], ["--model", "weibull"]):
        with pytest.warns(bh.DataWarning, match="arm 'tace_sorafenib' has no events"):
            res = CliRunner().invoke(app, ["fit", str(data), *how, "--out",
                                           str(tmp_path / "o")])
        assert res.exit_code != 0 and "fitting" not in res.output, res.output
        assert "arm 'tace_sorafenib' has no follow-up" in res.output
        assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_an_illness_death_grid_row_without_follow_up_of_its_curve(tmp_path):
    """The same for a grid's illness-death row (slow: an illness-death fit, 20-45 s): on the
    example trial with the treated arm's TTP known only at time 0 (no scan yet), its TTP
    RMST is not estimable and the row says why; it used to raise out of the grid."""
    trial = bh.datasets.load_example_trial()
    frame, ttp = trial.to_frame(), trial.endpoint("ttp")
    treated = frame["arm"] == "tace_sorafenib"
    frame = frame[["patient_id", "site", "arm", "os_time", "os_event"]].assign(
        ttp_time=np.where(treated, 0.0, ttp.time), ttp_event=np.where(treated, 0, ttp.event))
    with pytest.warns(bh.DataWarning, match="no events"):
        trial = bh.read_trial(frame)
    base = Path(__file__).resolve().parents[2] / "models" / "secondary_ttp.toml"
    grid = tmp_path / "grid.toml"
    grid.write_text(f'base = "{base}"\ninclude_base = false\n[[variants]]\nname = "joint"\n'
                    'overrides = { "family" = "weibull_ph", "illness_death" = '
                    '{ time_scale = "markov" } }\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.DataWarning)
        table = bh.run_sensitivity(grid, trial, fast=True, progress=False)
    row = table.loc["joint"]
    assert row["likelihood_of"] == "progression and death" and np.isnan(row["rmst_diff"])
    assert "RMST not estimable: arm 'tace_sorafenib' has no follow-up" in row["note"]
    assert np.isfinite(row["hr_median"])  # the progression HR (a TTP variant's HR)
