"""One illness-death fit of the example trial: what it estimates, and the curves it implies.

The example trial is generated from a Markov illness-death model (``simulate_trial``: a
latent progression time with HR 0.67 and a death time with HR 0.70 that progression does
not change, Weibull shape 1.2, one site frailty for both): the transitions' true HRs are
0.67 (progression), 0.70 and 0.70 (death before and after progression), the true control
medians 6.5 (OS) and 2.27 months (PFS)."""

import json

import numpy as np
import pytest
import xarray as xr
from scipy import integrate, optimize

import bayes_hcc as bh
from bayes_hcc.multistate.likelihood import TRANSITIONS

TRUE_HR = {"progression": 0.67, "death_without_progression": 0.70,
           "death_after_progression": 0.70}


@pytest.fixture(scope="module")
def fit():
    trial = bh.datasets.load_example_trial()
    # 2 x 500 draws: enough for the intervals and curves below (check=False: R-hat of short
    # runs is not what these tests are about; the slow tests use full runs)
    return bh.IllnessDeath("weibull_ph", site_effect="shared").fit(
        trial, draws=500, tune=500, chains=2, random_seed=11, check=False)


def test_transition_hrs_cover_the_truth(fit):
    table = fit.summary()
    for t in TRANSITIONS:
        assert table.loc[t, "lower"] < TRUE_HR[t] < table.loc[t, "upper"], t
    assert list(fit.hazard_ratio()["transition"].values) == list(TRANSITIONS)
    assert "progression HR" in repr(fit)
    # each probability with its Monte Carlo error: arviz-stats' MCSE of the mean of that
    # transition's indicator, near the independent-draws binomial SE (NUTS draws of a
    # well-mixed fit: effective sample size between 1/9 and 4 times the draws)
    import arviz_stats as azs

    for t in TRANSITIONS:
        below = (fit.hazard_ratio().sel(transition=t) < 1).astype(float)
        p, mcse = table.loc[t, "P(HR < 1)"], table.loc[t, "P(HR < 1) MCSE"]
        assert p == pytest.approx(float(below.mean()))
        assert mcse == pytest.approx(float(azs.mcse(below, method="mean")))
        assert 0.5 < mcse / np.sqrt(p * (1 - p) / below.size) < 3, t


def test_curves_are_coherent_and_match_an_independent_integral(fit):
    """On every draw PFS <= min(OS, progression curve); OS at 5 months on a draw equals
    PFS + int_0^5 S0(u) a01(u) exp(-(H12(5) - H12(u))) du by scipy (1e-7)."""
    times = np.array([0.0, 1.0, 2.5, 5.0, 10.0, 20.0])
    ds = fit.state_probabilities(times, thin=5)
    assert bool((ds["pfs"] <= np.minimum(ds["os"], ds["progression"]) + 1e-12).all())
    assert np.allclose(ds["pfs"] + ds["alive_progressed"] + ds["dead"], 1.0)
    assert bool((ds["alive_progressed"] >= -1e-12).all())
    post = fit.datatree["posterior"].to_dataset()

    def draw(name):
        return float(post[name].values.reshape(-1)[::5][0])

    hr = post["log_hr"].values.reshape(-1, 3)[::5][0]
    lam = [np.exp(draw(f"{t}::log_lambda")) for t in TRANSITIONS]
    k = [np.exp(draw(f"{t}::log_shape")) for t in TRANSITIONS]
    for arm in (0, 1):
        e = np.exp(hr * arm)

        def H(j, t):
            return lam[j] * t ** k[j] * e[j]

        def f(u):
            return (np.exp(-H(0, u) - H(1, u)) * lam[0] * k[0] * u ** (k[0] - 1) * e[0]
                    * np.exp(-(H(2, 5.0) - H(2, u))))

        want = np.exp(-H(0, 5.0) - H(1, 5.0)) + integrate.quad(f, 0, 5.0, epsabs=0,
                                                                epsrel=1e-11)[0]
        got = float(ds["os"].isel(draw=0, arm=arm).sel(time=5.0))
        assert got == pytest.approx(want, rel=1e-7)


def test_medians_cover_the_truth_and_match_root_finding(fit):
    med = fit.medians(thin=5)
    lo, hi = (med.quantile(q, "draw") for q in (0.025, 0.975))
    assert float(lo["os"].sel(arm="sorafenib")) < 6.5 < float(hi["os"].sel(arm="sorafenib"))
    assert float(lo["pfs"].sel(arm="sorafenib")) < 2.27 < float(hi["pfs"].sel(arm="sorafenib"))
    # the interpolated median of a draw vs a root of its curve (brentq)
    for i in (0, 7):
        for name in ("os", "pfs"):
            m = float(med[name].isel(draw=i).sel(arm="sorafenib"))

            def curve(t):
                ds = fit.state_probabilities([t], thin=5)
                return float(ds[name].isel(draw=i, time=0).sel(arm="sorafenib")) - 0.5

            root = optimize.brentq(curve, 0.1, 60.0, xtol=1e-8)
            assert m == pytest.approx(root, abs=0.01)
    diff = med.sel(arm="difference")["os"]
    np.testing.assert_allclose(diff, med["os"].sel(arm="tace_sorafenib")
                               - med["os"].sel(arm="sorafenib"))


def test_rmst_hazard_ratio_over_time_and_probabilities(fit):
    """RMST on 400 grid points agrees with 4000 (1e-4 months); the difference row is the
    arms' difference; the marginal OS HR over time is finite and lies between the death
    HRs' range widened by their uncertainty; the superiority probabilities are those of
    the draws."""
    # extrapolate=True: PFS and TTP are seen only to about 10 months (the test below)
    coarse = fit.rmst(18.0, thin=5, extrapolate=True)
    fine = fit.rmst(18.0, thin=5, n_grid=4000, extrapolate=True)
    np.testing.assert_allclose(coarse["os"], fine["os"], atol=1e-4)
    assert bool((coarse["os"].sel(arm="sorafenib") <= 18.0).all())
    np.testing.assert_allclose(coarse["pfs"].sel(arm="difference"),
                               coarse["pfs"].sel(arm="tace_sorafenib")
                               - coarse["pfs"].sel(arm="sorafenib"))
    hr_t = fit.os_hazard_ratio([1.0, 6.0, 18.0, 200.0], thin=5)
    assert np.isfinite(hr_t).all() and bool((hr_t > 0).all())
    # 200 months is far beyond the OS follow-up: marked as the model's extrapolation
    follow = fit.follow_up_by_arm("os")
    assert hr_t.attrs["follow_up"] == follow and 18.0 < min(follow.values()) < 200.0
    assert hr_t["beyond_follow_up"].values.tolist() == [False, False, False, True]
    p = fit.prob_superiority(tau=18.0, thin=5)
    hr = fit.hazard_ratio()
    assert p["HR progression < 1"] == pytest.approx(float((hr.sel(
        transition="progression") < 1).mean()))
    assert p["RMST OS (18) difference > 0"] == pytest.approx(float((coarse["os"].sel(
        arm="difference") > 0).mean()))
    with pytest.raises(bh.BayesHCCError, match="os_hazard_ratio: times must be > 0"):
        fit.os_hazard_ratio([0.0, 1.0])


def test_pfs_and_ttp_follow_up_ends_at_the_last_scans(fit):
    """Progression is seen only at scans: beyond a patient's last scan the progression
    hazard is not in the data, however long the patient is followed for death. Each
    curve's follow-up is the trial's own endpoint's (the longest PFS and TTP times per arm,
    about 10 months in the control arm against 34 for OS), and an RMST, a median status or
    a landmark of PFS or TTP is judged against it: the OS horizon made the TTP RMST to 23
    months look like an estimate."""
    trial = bh.datasets.load_example_trial()
    for ep in ("os", "pfs", "ttp"):
        e = trial.endpoint(ep)
        assert fit.follow_up_by_arm(ep) == {a: float(e.time[e.arm == i].max())
                                            for i, a in enumerate(trial.arms)}
    os_h = min(fit.follow_up_by_arm("os").values())
    pfs_h = min(fit.follow_up_by_arm("pfs").values())
    ttp_h = min(fit.follow_up_by_arm("ttp").values())
    assert ttp_h <= pfs_h < 12.0 < os_h
    r = fit.rmst(12.0, thin=5)  # within OS follow-up, beyond PFS and TTP
    assert np.isfinite(r["os"]).all()
    assert r["pfs"].isnull().all() and r["progression"].isnull().all()
    assert set(r.attrs["not_estimable"]) == {"pfs", "progression"}
    with pytest.raises(bh.HorizonError, match="PFS follow-up"):
        bh.rmst(fit, 12.0, endpoint="pfs")
    with pytest.raises(bh.HorizonError, match="TTP follow-up"):
        bh.prob_rmst_gain(fit, 12.0, endpoint="ttp")
    np.testing.assert_allclose(  # within it, the same numbers as before
        bh.rmst(fit, 9.0, endpoint="pfs", estimand="typical_site").values.reshape(-1, 3),
        fit.rmst(9.0)["pfs"].values)
    table = fit.endpoint_table(tau=12.0, thin=5)
    assert "RMST difference (12 months)" in table.loc["OS"].index
    for label in ("PFS", "TTP"):
        row = table.loc[label].filter(like="RMST", axis=0)
        assert len(row) == 1 and "shortened" in row["note"].iloc[0]
        t = float(row.index[0].split("(")[1].split()[0])
        assert t <= (pfs_h if label == "PFS" else ttp_h)
    p = fit.prob_superiority(tau=12.0, thin=5)
    assert "RMST OS (12) difference > 0" in p.index and np.isfinite(p).all()
    assert any(k.startswith("RMST PFS (") and "(12)" not in k for k in p.index)
    beyond = bh.survival(fit, [6.0, 12.0], endpoint="ttp")["beyond_follow_up"]
    assert bool(beyond.sel(arm="sorafenib", time=12.0))  # TTP: past the last scans
    assert not bool(bh.survival(fit, [12.0], endpoint="os")["beyond_follow_up"].any())


def test_figures(fit, tmp_path):
    """The stacked state-occupation plot (its bands sum to 1) and the OS HR over time."""
    fig = bh.plot_state_probabilities(fit, thin=10)
    ax = fig.axes[0]
    top = max(c.get_paths()[0].vertices[:, 1].max() for c in ax.collections)
    assert top == pytest.approx(1.0, abs=1e-9)
    assert {t.get_text() for t in fig.axes[1].get_legend().get_texts()} == {
        "alive, progression-free", "alive after progression", "dead"}
    fig.savefig(tmp_path / "states.png")
    fig = bh.plot_os_hazard_ratio(fit, thin=10)
    assert fig.axes[0].get_yscale() == "log"
    fig.savefig(tmp_path / "hr.png")
    # times beyond an arm's OS follow-up (extrapolation) are shaded, and only those
    legend = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    limit = min(fit.follow_up_by_arm("os").values())
    assert ("beyond an arm's follow-up" in legend) == (float(fit.data.time.max()) > limit)
    fig = bh.plot_os_hazard_ratio(fit, times=[1.0, 2 * limit], thin=10)
    assert "beyond an arm's follow-up" in {t.get_text()
                                           for t in fig.axes[0].get_legend().get_texts()}
    fig = bh.plot_os_hazard_ratio(fit, times=[1.0, limit / 2], thin=10)
    assert "beyond an arm's follow-up" not in {t.get_text()
                                               for t in fig.axes[0].get_legend().get_texts()}
    # a credible level as a percentage failed inside xarray's quantile, and in the
    # transition tables inside numpy
    with pytest.raises(bh.BayesHCCError, match="plot_os_hazard_ratio: prob=95 must be"):
        bh.plot_os_hazard_ratio(fit, prob=95)
    with pytest.raises(bh.BayesHCCError, match="IllnessDeathFit.summary: prob=95 must be"):
        fit.summary(prob=95)
    # thin=0 failed inside a slice, times="12" with IndexError, tau=-1 gave a table of
    # "not estimable" rows
    with pytest.raises(bh.BayesHCCError, match=r"thin=0 must be a whole number >= 1"):
        fit.medians(thin=0)
    with pytest.raises(bh.BayesHCCError, match=r"thin=2.5 must be a whole number >= 1"):
        fit.state_probabilities([6.0], thin=2.5)
    with pytest.raises(bh.BayesHCCError, match=r"state_probabilities: times='12' is text"):
        fit.state_probabilities("12")
    with pytest.raises(bh.BayesHCCError, match=r"endpoint_table: tau=-1 must be > 0"):
        fit.endpoint_table(tau=-1)


def test_bh_check_diagnoses_an_illness_death_fit(fit):
    """bh.check works on an illness-death fit: the sampler rows of convergence_problems
    plus the Monte Carlo error of each transition's log HR and P(HR < 1)."""
    report = bh.check(fit, warn=False)
    assert {"r_hat", "ess_bulk", "mcse", "mcse_prob"} <= set(report.table.index)
    assert report.table.loc["mcse", "where"].startswith("log HR ")
    assert report.table.loc["mcse_prob", "where"].startswith("P(HR ")
    sampler_failures = {p.split(" ")[0] for p in fit.convergence_problems()}
    assert sampler_failures == set(report.failed) - {"mcse", "mcse_prob"}


def test_single_endpoint_functions_point_to_the_illness_death_methods(fit):
    with pytest.raises(bh.BayesHCCError, match="endpoint_table"):
        bh.summarize(fit)
    with pytest.raises(bh.BayesHCCError, match="illness-death fit has its own"):
        bh.hazard_ratio(fit)
    with pytest.raises(bh.BayesHCCError, match="take it with endpoint="):
        bh.prob_superiority(fit)


def test_estimands_average_the_curves_over_the_right_hospitals(fit):
    """typical_site: site effects 0 (the default). standardized: each site's curve with its
    posterior site effect, weighted by its patients; checked at 4 months against PFS written
    directly from the cumulative hazards. new_site: averaged over draws of a new site's
    effect; checked against Gauss-Hermite integration over b ~ Normal(0, site_sd) of
    exp(-e^b Lambda), within 4 Monte Carlo SEs of its 16 draws (the shared site effect)."""
    t = np.array([4.0])
    typical = fit.state_probabilities(t)
    np.testing.assert_array_equal(typical["pfs"].values,
                                  fit.state_probabilities(t, estimand="typical_site")["pfs"])
    post = fit.datatree["posterior"]
    thin = 4
    params = fit.transition_params(thin)
    log_hr = post["log_hr"].values.reshape(-1, 3)[::thin]
    f01, f02, _ = fit.families
    lam = np.stack([f01.cumhaz_at(params[0], t, (log_hr[:, 0] * a)[:, None])[:, 0, 0]
                    + f02.cumhaz_at(params[1], t, (log_hr[:, 1] * a)[:, None])[:, 0, 0]
                    for a in (0, 1)], axis=1)  # (S, arm): the typical site's Lambda
    site = post["site_effect"].values.reshape(-1, 3, len(fit.data.sites))[::thin, 0, :]
    w = np.bincount(fit.data.site) / len(fit.data.site)
    want = (np.exp(-lam[:, :, None] * np.exp(site)[:, None, :]) * w).sum(axis=-1)
    got = fit.state_probabilities(t, estimand="standardized")["pfs"].values[..., 0]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    x, gw = np.polynomial.hermite_e.hermegauss(40)
    sd = post["site_sd"].values.ravel()[::thin]
    b = sd[:, None] * x[None, :]  # (S, nodes)
    vals = np.exp(-lam[:, :, None] * np.exp(b)[:, None, :])
    gh = (vals * gw / gw.sum()).sum(axis=-1)
    spread = np.sqrt((vals ** 2 * gw / gw.sum()).sum(axis=-1) - gh ** 2)
    new = fit.state_probabilities(t, estimand="new_site")["pfs"].values[..., 0]
    assert np.all(np.abs(new - gh) <= 4 * spread / np.sqrt(16) + 1e-12)
    with pytest.raises(ValueError, match="estimand"):
        fit.state_probabilities(t, estimand="population")


def test_the_package_quantity_functions_take_an_illness_death_fit(fit, tmp_path):
    """bh.survival / survival_curve / median_survival / rmst / prob_median_gain /
    prob_rmst_gain give OS, PFS and TTP of one illness-death fit, labelled as for a
    single-endpoint fit (chain, draw, arm[, time]); the values are the fit's own methods'
    on the same (every 4th) draws, and the estimand is passed through."""
    med = bh.median_survival(fit, endpoint="pfs", estimand="typical_site")
    own_all = fit.medians(estimand="typical_site")
    own = own_all["pfs"]
    assert med.dims == ("chain", "draw", "arm") and med.sizes["chain"] == 2
    assert list(med["arm"].values) == [*fit.data.arms, "difference"]
    np.testing.assert_array_equal(med.values.reshape(-1, 3), own.values)
    assert med.attrs["endpoint"] == "pfs"
    status = own_all.attrs["status"]["pfs"]
    assert list(med["status"].values) == [status[a] for a in fit.data.arms] + [
        max(status.values(), key=["reached", "upper", "beyond"].index)]
    assert dict(zip(fit.data.arms, med["follow_up"].values[:2])) == \
        own_all.attrs["follow_up"]["pfs"]
    saved = tmp_path / "median.nc"  # plain attributes and coordinates: netCDF takes it
    med.to_netcdf(saved)
    xr.testing.assert_identical(xr.load_dataarray(saved), med)
    s = bh.survival(fit, [0.0, 4.0], endpoint="os")  # the package default: standardized
    np.testing.assert_allclose(s.values.reshape(-1, 2, 2), fit.state_probabilities(
        [0.0, 4.0], estimand="standardized")["os"].values)
    assert s.attrs["estimand"] == "standardized" and np.allclose(s.sel(time=0.0), 1.0)
    curve = bh.survival_curve(fit, endpoint="ttp", n=5, estimand="typical_site")
    assert curve.sizes["time"] == 5 and curve.name == "survival_curve"
    r = bh.rmst(fit, 9.0, endpoint="ttp", estimand="typical_site")  # TTP seen to 9.8
    np.testing.assert_allclose(r.values.reshape(-1, 3),
                               fit.rmst(9.0)["progression"].values)
    gain = bh.prob_median_gain(fit, endpoint="os", estimand="typical_site")
    diff = fit.medians()["os"].sel(arm="difference").values
    assert gain.probability == pytest.approx(float((diff > 0).mean()))
    assert gain.statement.startswith("OS median gain")
    assert 0 < bh.prob_rmst_gain(fit, 9.0, endpoint="pfs").mcse < 0.05
    # the marginal HR up to t, log S_1(t) / log S_0(t), of a curve (it had no endpoint
    # argument, and its error asked for one)
    mhr = bh.marginal_hazard_ratio(fit, [3.0, 9.0, 30.0], endpoint="pfs")
    s = bh.survival(fit, [3.0, 9.0, 30.0], endpoint="pfs")
    np.testing.assert_allclose(mhr.values, np.log(s.isel(arm=1)) / np.log(s.isel(arm=0)))
    # marked beyond either arm's PFS follow-up, as the curves are
    assert mhr["beyond_follow_up"].values.tolist() == \
        s["beyond_follow_up"].any("arm").values.tolist() == [False, False, True]
    assert mhr.attrs["follow_up"] == fit.follow_up_by_arm("pfs")
    with pytest.raises(bh.BayesHCCError, match=r"^bh\.marginal_hazard_ratio: an illness-"
                       r"death fit .*pass endpoint='os', 'pfs' or 'ttp' \(got 'dfs'\)"):
        bh.marginal_hazard_ratio(fit, [3.0], endpoint="dfs")


def test_the_quantity_functions_ask_an_illness_death_fit_for_its_endpoint(fit):
    with pytest.raises(bh.BayesHCCError, match="endpoint='os', 'pfs' or 'ttp'"):
        bh.median_survival(fit)
    with pytest.raises(bh.BayesHCCError, match="got 'dfs'"):
        bh.survival(fit, [1.0], endpoint="dfs")
    with pytest.raises(bh.HorizonError, match="extrapolate=True"):
        bh.rmst(fit, 500.0, endpoint="os")
    # the fit's own methods keep the same horizon (fit.rmst(500) used to answer silently)
    horizon = bh.quantities.core.rmst_horizon(fit)[1]
    for call in (lambda: fit.rmst(500.0), lambda: fit.prob_superiority(tau=500.0),
                 lambda: fit.endpoint_table(tau=500.0)):
        with pytest.raises(bh.HorizonError, match="tau = 500 months exceeds the follow-up"):
            call()
    assert fit.rmst(horizon, thin=10)["os"].notnull().all()
    beyond = fit.rmst(500.0, thin=10, extrapolate=True)["os"].sel(arm="sorafenib")
    assert bool((beyond > fit.rmst(horizon, thin=10)["os"].sel(arm="sorafenib")).all())
    with pytest.raises(bh.BayesHCCError, match="estimand"):
        bh.median_survival(fit, endpoint="os", estimand="average")


def test_a_death_effect_shared_before_and_after_progression(fit):
    """``arm_effect="shared_death"``: one log HR for both death transitions (equal on every
    draw), which covers the example trial's true 0.70 and, pooling the deaths of both
    transitions, has a smaller posterior SD than either per-transition death HR of the
    same data. Settings round-trip; a prior for the after-progression HR alone is
    refused (it has none of its own)."""
    trial = bh.datasets.load_example_trial()
    model = bh.IllnessDeath("weibull_ph", site_effect="shared", arm_effect="shared_death")
    shared = model.fit(trial, draws=500, tune=500, chains=2, random_seed=11, check=False)
    log_hr = shared.datatree["posterior"]["log_hr"]
    assert np.array_equal(log_hr.sel(transition="death_without_progression").values,
                          log_hr.sel(transition="death_after_progression").values)
    table = shared.summary()
    assert table.loc["death_after_progression", "lower"] < 0.70 < \
        table.loc["death_after_progression", "upper"]
    sd_shared = float(log_hr.sel(transition="death_after_progression").std())
    per = fit.datatree["posterior"]["log_hr"]
    assert sd_shared < min(float(per.sel(transition=t).std()) for t in TRANSITIONS[1:])
    # LOO of the two joint models of the same patients: the truth has one death HR (0.70
    # before and after progression), so sharing it costs nothing: the ELPDs differ by less
    # than two standard errors of their difference
    table = bh.compare({"separate death HRs": fit, "shared death HR": shared})
    worse = table.iloc[1]
    assert abs(worse["elpd_diff"]) < 2 * worse["dse"], table
    again = bh.IllnessDeath.from_settings(model.settings())
    assert again.arm_effect == "shared_death" and "shared_death" in repr(again)
    assert "arm_effect" not in bh.IllnessDeath().settings()  # older settings still match
    with pytest.raises(bh.ModelError, match="share one"):
        bh.IllnessDeath(arm_effect="shared_death", priors={
            "death_after_progression.log_hr": bh.Prior("Normal", mu=0.0, sigma=1.0)})
    with pytest.raises(bh.ModelError, match="arm_effect='both'"):
        bh.IllnessDeath(arm_effect="both")


def test_prior_variants_share_the_compiled_joint_model(fit):
    """Prior parameters are data, as in the single-endpoint models: an illness-death model
    with other prior values (a sceptical progression HR, another site-SD scale) reuses the
    fixture's compiled sampler (a new graph costs about 20 s), gives the same draws as
    compiling afresh for that prior, and the prior really acts: Normal(0, 0.05) holds the
    progression log HR near 0 where the fixture's vague prior gives about log(0.67)."""
    from bayes_hcc.models import sampling

    trial = bh.datasets.load_example_trial()
    sceptical = bh.IllnessDeath("weibull_ph", site_effect="shared", priors={
        "progression.log_hr": bh.Prior("Normal", mu=0.0, sigma=0.05),
        "site_sd": bh.Prior("HalfNormal", sigma=0.5)})
    kw = dict(draws=200, tune=300, chains=2, random_seed=5, check=False)
    n_cached = len(sampling._CACHE)
    reused = sceptical.fit(trial, **kw)
    assert len(sampling._CACHE) == n_cached  # no new compile
    assert json.loads(reused.datatree.attrs["timing_seconds"])["compile"] < 1.0
    sampling._CACHE.clear()
    fresh = sceptical.fit(trial, **kw)
    for name in ("log_hr", "site_sd"):
        np.testing.assert_array_equal(reused.datatree["posterior"][name],
                                      fresh.datatree["posterior"][name])
    prog = reused.datatree["posterior"]["log_hr"].sel(transition="progression")
    vague = fit.datatree["posterior"]["log_hr"].sel(transition="progression")
    # prior SD 0.05 against a likelihood SD of about 0.2: the posterior mean is within
    # about 0.06 of 0 (shrunk by 1 / (1 + (0.2 / 0.05)^2) = 1/17); the vague one about -0.4
    assert abs(float(prog.mean())) < 0.1 < abs(float(vague.mean()))


def test_curves_asked_again_come_from_the_fit_unchanged(fit):
    """A report asks for the same curves several times (medians for the table and for
    P(superiority)); the fit keeps them: the same values as a fresh fit object computes,
    read-only (a caller cannot alter what the next caller gets), not pickled to workers,
    and recomputed when the draws are replaced."""
    import pickle

    times = np.linspace(0.0, 20.0, 7)
    first = fit.state_probabilities(times, estimand="standardized")
    again = fit.state_probabilities(times, estimand="standardized")
    fresh = bh.IllnessDeathFit(fit.datatree, fit.model, fit.data, fit.families, fit.priors)
    xr.testing.assert_identical(again, first)
    xr.testing.assert_identical(fresh.state_probabilities(times, estimand="standardized"),
                                first)
    tree, cache = fit._curve_cache
    assert tree is fit.datatree and cache
    assert all(not v.flags.writeable for c in cache.values() for v in c.values())
    assert "_curve_cache" not in pickle.loads(pickle.dumps(fit)).__dict__
    # other draws: the kept curves are not reused
    shifted = fit.datatree.copy(deep=True)
    shifted["posterior"]["log_hr"] = shifted["posterior"]["log_hr"] - 1.0
    other = bh.IllnessDeathFit(shifted, fit.model, fit.data, fit.families, fit.priors)
    other._curve_cache = fit._curve_cache  # as if the fit's draws had been swapped
    changed = other.state_probabilities(times, estimand="standardized")
    assert not np.allclose(changed["os"].sel(arm=fit.data.arms[1]).values,
                           first["os"].sel(arm=fit.data.arms[1]).values)


def test_arviz_diagnostic_plots_take_an_illness_death_fit(fit):
    """bh.plot_trace / bh.plot_rank used to refuse a joint fit ("takes a single-endpoint
    fit"); they now show its transition log HRs, site SD and each transition's baseline
    headline parameter, or the variables asked for."""
    import matplotlib.pyplot as plt

    fig = bh.plot_rank(fit)
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles == [*(f"log_hr\n{t}" for t in ("progression", "death_without_progression",
                                                 "death_after_progression")),
                      "site_sd", *(f"{t}::log_shape" for t in (
                          "progression", "death_without_progression",
                          "death_after_progression"))]
    plt.close(fig)
    fig = bh.plot_trace(fit, var_names=["site_sd"])
    assert len(fig.axes) == 2  # its trace and its density
    plt.close(fig)
    fig = bh.plot_trace(fit)
    assert len(fig.axes) > 2
    plt.close(fig)


def test_plot_survival_of_a_joint_fit(fit):
    """``bh.plot_survival(joint, endpoint=...)`` draws that endpoint's curve from the joint
    model over the endpoint's own non-parametric estimate (it refused a joint fit). The
    reference curves are checked against the trial's own endpoints (read_trial's OS, PFS,
    TTP), which the plot rebuilds from the joint fit's progression and death data."""
    from lifelines import KaplanMeierFitter

    from bayes_hcc.data.km import turnbull

    trial = bh.datasets.load_example_trial()
    for name in ("os", "pfs", "ttp"):
        fig = bh.plot_survival(fit, endpoint=name)
        ax, tab = fig.axes
        curve = bh.survival_curve(fit, np.linspace(
            0.0, max(fit.follow_up_by_arm(name).values()), 100), endpoint=name)
        ep = trial.endpoint(name)
        lines = ax.get_lines()  # per arm: posterior median, then the reference steps
        for i, arm in enumerate(fit.data.arms):
            post, ref = lines[2 * i], lines[2 * i + 1]
            np.testing.assert_allclose(post.get_ydata(), curve.sel(arm=arm).quantile(
                0.5, dim=("chain", "draw")).values)
            m = ep.arm == i
            if name == "os":
                km = KaplanMeierFitter().fit(ep.time[m], ep.event[m]).survival_function_
                x, y = km.index.to_numpy(), km.iloc[:, 0].to_numpy()
            else:
                sf = turnbull(ep.lower[m], ep.upper[m])["survival"]
                x, y = np.r_[0.0, sf.index.to_numpy()], np.r_[1.0, sf.to_numpy()]
            np.testing.assert_allclose(ref.get_xdata(), x, err_msg=(name, arm))
            np.testing.assert_allclose(ref.get_ydata(), y, err_msg=(name, arm))
        for text in tab.texts:  # numbers at risk: the endpoint's patients still followed
            x, y = text.get_position()
            assert int(text.get_text()) == int(np.sum(ep.time[ep.arm == 1 - y] >= x)), name
        assert ax.get_title().startswith(f"{name.upper()}: illness-death model")
        # drawn to the endpoint's own follow-up, not the OS one: PFS and TTP are seen only
        # up to the last scans (10 months here, against 34 for OS)
        assert ax.get_lines()[0].get_xdata().max() == pytest.approx(
            max(fit.follow_up_by_arm(name).values()), rel=1e-12)
    with pytest.raises(bh.BayesHCCError, match=r"bh\.plot_survival: .*endpoint='os'"):
        bh.plot_survival(fit)


def test_bh_covariate_effects_takes_a_joint_fit(fit, tmp_path):
    """``bh.covariate_effects(joint)`` refused the joint fit ("takes a single-endpoint fit")
    although the fit has its own per-transition table: it now gives that table (this fit
    has no covariates: the method's error, a BayesHCCError, was a bare ValueError)."""
    with pytest.raises(bh.BayesHCCError, match=r"^covariate_effects: this fit has no "
                       r"covariates\.$"):
        bh.covariate_effects(fit)
    with pytest.raises(bh.BayesHCCError, match="this fit has no covariates"):
        bh.covariate_effects(str(fit.save(tmp_path / "joint.nc")))


def test_each_patients_log_likelihood_matches_scipy_quadrature(fit):
    """LOO needs each patient's log-likelihood on every draw: the probability of what was
    seen of their progression and death. On three draws, for a patient of every data
    pattern in the example trial, it equals the independent computation of
    test_likelihood (the transition intensities written out, progression integrated over
    its scan interval by scipy's adaptive quadrature) at that draw's parameters, log HRs
    and shared site effect: 1e-7 relative, the accuracy of the graded quadrature."""
    from tests.multistate.test_likelihood import reference

    ll = fit.log_likelihood()
    d = fit.data
    assert ll.dims == ("chain", "draw", "patient") and ll.sizes["patient"] == len(d)
    assert list(ll["patient"].values) == [str(x) for x in d.patient_id]
    flat = ll.values.reshape(-1, len(d))
    post = fit.datatree["posterior"].to_dataset()
    exact = np.isfinite(d.prog_upper) & (d.prog_upper == d.prog_lower)
    seen = np.isfinite(d.prog_upper) & ~exact
    patterns = [np.flatnonzero(m)[0] for m in (
        seen & (d.death == 1), seen & (d.death == 0), ~np.isfinite(d.prog_upper) & (d.death == 1),
        ~np.isfinite(d.prog_upper) & (d.death == 0)) if m.any()]
    assert len(patterns) == 4
    for s in (0, 377, flat.shape[0] - 1):
        params = [{"log_lambda": float(post[f"{t}::log_lambda"].values.reshape(-1)[s]),
                   "log_shape": float(post[f"{t}::log_shape"].values.reshape(-1)[s])}
                  for t in TRANSITIONS]
        log_hr = post["log_hr"].values.reshape(-1, 3)[s]
        site = post["site_effect"].values.reshape(flat.shape[0], 3, -1)[s]
        for i in patterns:
            etas = [log_hr[j] * d.arm[i] + site[j, d.site[i]] for j in range(3)]
            want = reference("weibull", params, etas, d.prog_lower[i], d.prog_upper[i],
                             d.time[i], d.death[i], "markov")
            assert flat[s, i] == pytest.approx(want, rel=1e-7), (s, i)


def test_loo_of_a_joint_fit_and_what_it_is_compared_with(fit, tmp_path):
    """bh.loo takes an illness-death fit (it refused one): PSIS-LOO on the patients, whose
    ELPD is below the in-sample log predictive density by a positive effective number of
    parameters, fewer than the model has (3 HRs, 6 Weibull parameters, a site SD and 6
    site effects). A saved and loaded fit gives the same ELPD. A single-endpoint fit is
    never compared with it."""
    import warnings

    from scipy.special import logsumexp

    elpd = bh.loo(fit)
    ll = fit.log_likelihood().values.reshape(-1, len(fit.data))
    lppd = float(np.sum(logsumexp(ll, axis=0) - np.log(ll.shape[0])))
    assert 0 < lppd - float(elpd.elpd) < 16
    assert float(elpd.p) == pytest.approx(lppd - float(elpd.elpd), rel=1e-6)
    fit.save(tmp_path / "joint.nc")
    assert float(bh.loo(bh.load_fit(tmp_path / "joint.nc")).elpd) == float(elpd.elpd)
    with warnings.catch_warnings():  # a short single-endpoint fit: only its kind matters
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        os_fit = bh.WeibullPH().fit(bh.datasets.load_example_trial(), "os", draws=50,
                                    tune=50, chains=1, random_seed=1)
    with pytest.raises(bh.BayesHCCError, match="joint is an illness-death fit and os not"):
        bh.compare({"joint": fit, "os": os_fit})


@pytest.mark.parametrize("time_scale", ["markov", "semi_markov"])
def test_replicated_paths_follow_the_model_s_curves(fit, time_scale):
    """``simulate_paths`` draws each patient's progression and death by inverting the
    transitions' cumulative hazards. Over patients and draws, the share alive (OS) and
    alive without progression (PFS) at each time equals the model's own curves for the
    same patients and draws, computed independently by quadrature (``multistate.curves``),
    per arm. 4 copies of 100 draws x ~65 patients: binomial SE under 0.004, tolerance
    0.015. The clock-reset scale reads the same draws as a semi-Markov model's."""
    import copy

    from bayes_hcc.multistate.curves import curves

    joint = copy.copy(fit)
    joint.model = bh.IllnessDeath("weibull_ph", site_effect="shared", time_scale=time_scale)
    draws = np.arange(0, fit.n_draws, fit.n_draws // 100)
    times = np.array([2.0, 4.0, 6.0, 9.0, 12.0, 18.0])
    rng = np.random.default_rng(5)
    paths = [joint.simulate_paths(draws, rng) for _ in range(4)]
    n = len(fit.data)
    etas = joint._patient_etas(draws)
    params = [{k: np.repeat(v[draws], n, axis=0) for k, v in p.items()}
              for p in joint.transition_params()]
    model = curves(joint.families, params, [e.reshape(-1, 1) for e in etas], time_scale,
                   times)
    arm = np.asarray(fit.data.arm)
    for a in (0, 1):
        m = np.tile(arm == a, len(draws))  # (draw, patient) rows of the arm
        for name, seen in (("os", [d for _, d in paths]),
                           ("pfs", [np.minimum(p, d) for p, d in paths])):
            empirical = np.mean([(x.ravel()[m, None] > times).mean(axis=0) for x in seen],
                                axis=0)
            expected = model[name][m].mean(axis=0)
            np.testing.assert_allclose(empirical, expected, atol=0.015, err_msg=f"{name} {a}")


def test_posterior_predictive_check_of_a_joint_fit(fit):
    """``bh.ppc_km(joint, endpoint=)`` replicates the trial from the joint model (paths
    observed as the data were: death exactly within follow-up, progression at the scans).
    The example trial comes from this model, so the observed OS Kaplan-Meier curve and
    the PFS and TTP Turnbull curves lie inside the 95% bands almost everywhere (at least
    90% of grid points per arm). A posterior with every death hazard tripled (the draws
    moved to a wrong model) is caught: the OS curve leaves the band."""
    import copy

    import matplotlib.pyplot as plt

    for endpoint in ("os", "pfs", "ttp"):
        table = bh.ppc_km(fit, endpoint=endpoint, n_draws=60, random_seed=1)
        assert table.attrs["endpoint"] == endpoint
        assert table.attrs["estimator"] == ("kaplan-meier" if endpoint == "os" else "turnbull")
        for arm, part in table.groupby("group"):
            assert part["inside"].mean() >= 0.9, (endpoint, arm, part["inside"].mean())
    wrong = copy.copy(fit)
    post = fit.datatree["posterior"].to_dataset()
    for t in ("death_without_progression", "death_after_progression"):
        post[f"{t}::log_lambda"] = post[f"{t}::log_lambda"] + np.log(3.0)
    wrong.datatree = fit.datatree.copy()
    wrong.datatree["posterior"] = xr.DataTree(post)
    assert bh.ppc_km(wrong, n_draws=100, random_seed=1).attrs["coverage"] < 0.5
    fig = bh.plot_ppc(fit, endpoint="os", random_seed=1)
    assert fig._suptitle.get_text().startswith("OS: posterior predictive KM by arm")
    plt.close(fig)
    with pytest.raises(bh.BayesHCCError, match=r"endpoint='death'; an illness-death fit is "
                       r"checked on 'os', 'pfs' or 'ttp'"):
        bh.ppc_km(fit, endpoint="death")
    with pytest.raises(bh.BayesHCCError, match=r"simulate_paths: draws must be whole numbers "
                       r"from 0 to 999 \(flat indices of this fit's 1000"):
        fit.simulate_paths([0, 1000], 1)
    prog, death = fit.simulate_paths(3, 1)  # one draw; a seed for the generator
    assert prog.shape == death.shape == (1, len(fit.data))
    assert (np.where(np.isfinite(prog), prog, 0) <= death).all()  # progression before death


def test_power_scaling_sensitivity_of_a_joint_fit(fit):
    """``bh.psense`` refused a joint fit; it now power-scales its joint likelihood of
    progression and death and its prior (``fit.log_prior``, tested against PyMC's density
    in test_model_check): the three transition log HRs, the site SD and the typical site's
    median OS and PFS per arm. The same draws read against a progression log HR prior
    centred at HR 3 with SD 0.1 (a prior the draws contradict) are flagged for that
    transition, with a prior sensitivity many times the default prior's."""
    import copy

    table = bh.psense(fit)
    arms = fit.data.arms
    assert list(table.index) == [*(f"log_hr[{t}]" for t in TRANSITIONS), "site_sd",
                                 *(f"median_{e}_{a}" for e in ("os", "pfs") for a in arms)]
    assert np.isfinite(table[["prior", "likelihood"]].to_numpy(float)).all()
    assert table.loc["log_hr[death_after_progression]", "diagnosis"] == "✓"
    wrong = copy.copy(fit)
    wrong.priors = [dict(p) for p in fit.priors]
    wrong.priors[0]["log_hr"] = bh.Prior("Normal", mu=np.log(3.0), sigma=0.1)
    flagged = bh.psense(wrong, medians=False)
    row = "log_hr[progression]"
    assert flagged.loc[row, "diagnosis"] == "potential prior-data conflict", flagged
    assert flagged.loc[row, "prior"] > 5 * table.loc[row, "prior"]
