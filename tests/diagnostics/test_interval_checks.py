"""Interval-censored endpoints in the user's workflow: the Turnbull reference, the posterior
predictive check that replicates the scans, plots, imputation variants and refits."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.data.km import turnbull


@pytest.fixture(scope="module")
def scanned():
    """A simulated trial whose progression is seen at 2-monthly scans (jittered, some
    missed), and the Weibull fit of its TTP (the simulator's TTP is Weibull PH)."""
    trial = bh.simulate_trial(random_seed=7, assessment_jitter_days=7, missed_visit_prob=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bh.WeibullPH().fit(trial, "ttp", random_seed=3, draws=500)
    return trial, fit


def test_turnbull_equals_kaplan_meier_on_exact_data():
    """With exact events and right censoring the NPMLE is the Kaplan-Meier estimate (an
    independent check of how we read lifelines' interval-censored output)."""
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(2)
    t = np.round(rng.exponential(5, 80), 2) + 0.01
    e = rng.uniform(size=80) < 0.7
    km = KaplanMeierFitter().fit(t, e).survival_function_at_times(np.unique(t[e]))
    tb = turnbull(t, np.where(e, t, np.inf))["survival"]
    # atol 1e-3: lifelines computes the NPMLE by EM, stopped at its own tolerance (the
    # differences seen are ~3e-4); a misread step (the value one time too early) is >= 0.0125
    np.testing.assert_allclose(tb.reindex(np.unique(t[e])).to_numpy(), km.to_numpy(),
                               atol=1e-3)


def test_reference_median_is_turnbull_for_scanned_progression(scanned):
    trial, _ = scanned
    km = trial.kaplan_meier("ttp")
    assert km.attrs["estimator"] == "turnbull"
    assert (km["median_from"] <= km["median"]).all()
    assert trial.kaplan_meier("os").attrs["estimator"] == "kaplan_meier"


def test_fit_keeps_bounds_and_scans_and_the_ppc_replicates_the_scans(scanned):
    trial, fit = scanned
    c = fit.datatree["constant_data"]
    ep = trial.endpoint("ttp")
    np.testing.assert_allclose(c["lower_bound"], ep.lower)
    np.testing.assert_array_equal(c["upper_bound"], ep.upper)
    assert c["scan_time"].shape[0] == len(ep)
    ppc = bh.ppc_km(fit, n_draws=60, random_seed=1)
    assert ppc.attrs["estimator"] == "turnbull"
    # a correct model (Weibull data, Weibull fit) with the observation process replicated:
    # the observed NPMLE lies in the 95% replicated band at most grid points (a check on
    # the replication, not a calibrated test: 0.85 leaves room for the band's own MC error)
    assert ppc.attrs["coverage"] >= 0.85, ppc.attrs
    fig = bh.plot_survival(fit)
    assert any("Turnbull" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_exact_visit_imputation_is_a_refittable_variant(scanned):
    trial, fit = scanned
    assert fit.spec.censoring == "interval"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        upper = bh.WeibullPH(censoring="upper").fit(trial, "ttp", random_seed=3, draws=500)
    assert upper.spec.censoring == "upper" and "lower_bound" not in upper.datatree[
        "constant_data"]
    assert bh.build(upper.spec).censoring == "upper"
    # the visit date as the event time moves every progression later: the control arm's
    # median TTP is longer than under the interval likelihood
    med = {f.spec.censoring: float(bh.median_survival(f).sel(arm="sorafenib").median())
           for f in (fit, upper)}
    assert med["upper"] > med["interval"]
    with pytest.raises(bh.ModelError, match="censoring"):
        bh.WeibullPH(censoring="exact")


def test_sensitivity_grid_for_ttp_varies_the_censoring():
    from pathlib import Path

    grid = bh.load_grid(Path(__file__).resolve().parents[2] / "models" /
                        "sensitivity_ttp.toml")
    assert {s.censoring for _, s in grid.variants} == {"interval", "midpoint", "upper",
                                                        "lower"}


def test_interval_fit_does_not_depend_on_unit_or_row_order(scanned):
    """The same scanned trial in days, and with its scan table's rows shuffled, gives the
    same posterior: log HR mean within 0.1 posterior SD (two independent 2000-draw chains
    sets: the Monte Carlo error of each mean is ~0.03 SD) and the same median TTP in months
    within 0.1 SD."""
    trial, fit = scanned
    frame = trial.to_frame()[["patient_id", "site", "arm", "randomization_date",
                              "death_date", "last_followup_date"]]
    shuffled = trial.assessments.sample(frac=1.0, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = bh.read_trial(frame.assign(progression_date=pd.NaT), assessments=shuffled)
        assert again.endpoint("ttp").has_bounds
        np.testing.assert_allclose(again.endpoint("ttp").lower, trial.endpoint("ttp").lower)
        days = bh.WeibullPH().fit(trial.to_unit("days"), "ttp", random_seed=9, draws=500)
    a, b = fit.posterior["log_hr"], days.posterior["log_hr"]
    assert abs(float(a.mean()) - float(b.mean())) < 0.1 * float(a.std())
    m_months = bh.median_survival(fit).sel(arm="sorafenib")
    m_days = bh.median_survival(days).sel(arm="sorafenib") / bh.units.DAYS_PER_UNIT["months"]
    assert abs(float(m_months.mean()) - float(m_days.mean())) < 0.1 * float(m_months.std())


def test_loo_and_compare_with_patients_censored_before_a_first_scan(example_trial):
    """The example trial's TTP has patients who died or left before their first scan: TTP
    censored at time 0, likelihood S(0) = 1 on every draw. PSIS cannot smooth a constant
    tail (arviz-stats raised "All tail values are the same", so bh.loo, bh.compare and a
    TTP sensitivity grid failed). Such a patient's importance weights are all equal, so its
    leave-one-out predictive density is that constant exactly; the other patients' PSIS-LOO
    is arviz-stats' own computed on them alone (checked here independently, rel 1e-12:
    the same arithmetic on the same numbers)."""
    import arviz_stats as azs
    import xarray as xr

    kw = dict(random_seed=1, draws=300, tune=300, chains=2, check=False)
    fit = bh.WeibullPH(site_effect="none").fit(example_trial, "ttp", **kw)
    ep = example_trial.endpoint("ttp")
    at_zero = (np.asarray(ep.time) == 0) & (np.asarray(ep.event) == 0)
    assert at_zero.sum() >= 5  # the data show the case
    res = bh.loo(fit)
    assert res.n_data_points == len(ep)
    # the fit stores patients in the endpoint's (canonical) order
    assert np.array_equal(fit.datatree["log_likelihood"]["patient"].values, ep.patient_id)
    np.testing.assert_array_equal(res.elpd_i.values[at_zero], 0.0)
    assert np.all(np.isneginf(res.pareto_k.values[at_zero]))
    assert np.all(np.isfinite(res.pareto_k.values[~at_zero]))
    alone = azs.loo(xr.DataTree.from_dict({
        "posterior": fit.datatree["posterior"].to_dataset(),
        "log_likelihood": fit.datatree["log_likelihood"].to_dataset().isel(
            patient=np.flatnonzero(~at_zero))}), pointwise=True)
    assert float(res.elpd) == pytest.approx(float(alone.elpd), rel=1e-12)
    assert float(res.p) == pytest.approx(float(alone.p), rel=1e-12)
    np.testing.assert_allclose(res.elpd_i.values[~at_zero], alone.elpd_i.values, rtol=1e-12)

    # compare: another prior on the same observations (prior parameters are data: no
    # recompile) is comparable; the midpoint imputation's density is not
    sceptical = bh.WeibullPH(site_effect="none", priors={
        "log_hr": bh.Prior("Normal", mu=0, sigma=0.2)}).fit(example_trial, "ttp", **kw)
    table = bh.compare({"vague": fit, "sceptical": sceptical})
    assert table.loc["vague", "elpd"] == pytest.approx(float(res.elpd), rel=1e-12)
    midpoint = bh.WeibullPH(site_effect="none", censoring="midpoint").fit(
        example_trial, "ttp", **kw)
    with pytest.raises(bh.BayesHCCError, match="censoring='midpoint'.*not comparable"):
        bh.compare({"interval": fit, "midpoint": midpoint})
