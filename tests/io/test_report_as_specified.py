"""The report of a pre-specified analysis shows what its spec's ``[report]`` table
pre-specifies (estimand, interval, landmarks, RMST horizon, HR thresholds), in the fit's
time unit; before, ``bh.report`` printed the package defaults whatever the spec said
(``secondary_pfs.toml``'s RMST at 12 months came out at 23)."""

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.quantities.core import rmst_horizon
from bayes_hcc.quantities.summary import as_specified, default_landmarks
from bayes_hcc.units import convert


@pytest.fixture(scope="module")
def trial():
    return bh.datasets.load_example_trial()


def test_the_report_table_is_the_one_the_spec_pre_specifies(trial, tmp_path):
    spec = bh.apply_overrides(bh.load_spec("models/primary_os.toml"), {
        "report.estimand": "typical_site", "report.prob": 0.9, "report.times": [6.0],
        "report.tau": 12.0, "report.hr_thresholds": [1.0, 0.7]})
    fit = bh.fit_spec(spec, trial, fast=True, check=False)
    bh.report(fit, tmp_path / "r.html")
    got = pd.read_csv(tmp_path / "r_summary.csv", index_col="quantity")
    want = bh.summarize(fit, estimand="typical_site", prob=0.9, times=[6.0], tau=12.0,
                        thresholds=[1.0, 0.7])
    assert list(got.index) == list(want.index)
    assert {"S(6 months) sorafenib", "RMST(12 months) difference", "P(HR < 0.7)"} <= \
        set(got.index)
    assert not any(q.startswith("S(12") for q in got.index)
    np.testing.assert_allclose(got["median"].to_numpy(float), want["median"].to_numpy(float))
    assert set(got["estimand"].dropna()) <= {"typical_site", "frequentist"}
    assert "90% equal-tailed credible intervals" in (tmp_path / "r.html").read_text()


def test_a_tau_beyond_follow_up_is_shortened_to_it(trial):
    """primary_os.toml pre-specifies tau = 24 months; the TACE arm is followed 23.3: the
    whole months it covers, 23 (it was 23.2608, printed as such in the table's label)."""
    fit = bh.fit_spec("models/primary_os.toml", trial, fast=True, check=False)
    opts = as_specified(fit)
    assert 23 < rmst_horizon(fit)[1] < 24 and opts["tau"] == 23.0
    assert "RMST(23 months) difference" in bh.summarize(fit, **opts).index
    assert opts["times"] == (12.0, 24.0) and opts["thresholds"] == (1.0, 0.8)
    # the headline table says so on the row (its label alone showed 23 as if pre-specified)
    from bayes_hcc.quantities.summary import headline_table

    note = headline_table(fit).loc["RMST(23 months) difference", "note"]
    assert re.fullmatch(r"pre-specified tau 24 months is past the follow-up \(23\.3 months\): "
                        r"shortened to the whole months it covers", note), note
    days = bh.fit_spec("models/primary_os.toml", trial.to_unit("days"), fast=True,
                       check=False)
    note = headline_table(days).loc["RMST(700.06 days) difference", "note"]
    assert note.startswith("pre-specified tau 730.5 days is past the follow-up (708 days)")


def test_report_times_stay_the_same_times_in_any_unit(trial, tmp_path):
    """The default landmarks are 12 and 24 months: a spec written in days without a
    [report] table gets them in days, and so does a model made in code and fitted to
    data in days (its recorded spec takes the data's unit); never 12 and 24 days."""
    text = Path("models/primary_os.toml").read_text()
    days = text.replace('endpoint = "os"', 'endpoint = "os"\ntime_unit = "days"', 1)
    days = days[:days.index("[report]")]  # no [report] table: the defaults
    assert "time_unit" in days
    (tmp_path / "days.toml").write_text(days)
    spec = bh.load_spec(tmp_path / "days.toml")
    want = tuple(convert(t, "months", "days") for t in (12.0, 24.0))
    np.testing.assert_allclose(dict(spec.report)["times"], want)
    in_days = trial.to_unit("days")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        fit = bh.WeibullPH(site_effect="none").fit(in_days, "os", draws=200, tune=300,
                                                   chains=2, random_seed=1)
    assert fit.spec.time_unit == "days"
    np.testing.assert_allclose(dict(fit.spec.report)["times"], want)
    np.testing.assert_allclose(as_specified(fit)["times"], default_landmarks(fit))
    # the default RMST horizon (24 months) lies past the follow-up: shortened to the same
    # horizon in days as in months, 23 whole months
    from bayes_hcc.quantities.summary import default_tau, shortened_tau
    assert default_tau(fit) == pytest.approx(convert(23.0, "months", "days"), rel=1e-12)
    assert shortened_tau(fit, convert(30.0, "months", "days")) == default_tau(fit)
    assert shortened_tau(fit, 400.0) == 400.0  # within follow-up: as given
