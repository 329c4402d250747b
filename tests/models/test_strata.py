"""Stratified baselines: every registered family, both poolings, exact/right-censored and
interval-censored data: the sampled graph's likelihood and density equal the numpy model's
(so the stored log-likelihood, the quantities and the PPC read the same model), the fit
does not depend on the time unit, and estimands carry over."""

import json

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.families.registry import FAMILIES
from bayes_hcc.models import assemble, graph
from bayes_hcc.units import log_unit_in_months

RNG = np.random.default_rng(7)
N = 80
TIME = RNG.weibull(1.3, N) * 8 + 0.01
EVENT = (RNG.uniform(size=N) < 0.7).astype(int)
ARM = RNG.integers(0, 2, N)
SITE = RNG.integers(0, 3, N)
GROUP = RNG.choice(["lo", "mid", "hi"], N)


def _trial(interval=False, unit="months"):
    scale = {"months": 1.0, "days": 30.4375}[unit]
    d = {"patient_id": [f"p{i}" for i in range(N)], "site": [f"s{s}" for s in SITE],
         "arm": np.where(ARM == 1, "tace_sorafenib", "sorafenib"), "grp": GROUP,
         "cov": RNG.normal(size=N)}
    if interval:
        kind = RNG.choice(4, size=N, p=[0.25, 0.15, 0.45, 0.15])
        lower = np.where(kind == 3, 0.0, TIME)
        upper = np.select([kind == 0, kind == 1, kind == 2], [np.nan, TIME, TIME + 1.9],
                          TIME + 0.5)
        d.update(ttp_lower=lower * scale, ttp_upper=upper * scale)
    else:
        d.update(os_time=TIME * scale, os_event=EVENT)
    return bh.read_trial(pd.DataFrame(d), time_unit=unit)


def _model(key, **kw):
    return bh.MODELS[FAMILIES[key].model_name](**FAMILIES[key].calibration_options(), **kw)


def _graph(model, trial, endpoint, spread=0.5):
    ep, family, priors, X, scale, data, key = graph.prepare(model, trial, endpoint)
    strata = json.loads(key)["strata"]
    m = graph.build_pymc(family, priors, data, site_effect=model.site_effect,
                         arm_by_site=model.arm_by_site, n_sites=len(ep.sites),
                         n_cov=X.shape[1],
                         site_parametrization=graph.site_parametrization_for(model, ep),
                         n_strata=strata[0], pooling=strata[1])
    names = [v.name for v in m.free_RVs] + [d.name for d in m.deterministics]
    values = m.compile_fn(m.replace_rvs_by_values([m[n] for n in names]), inputs=m.value_vars,
                          on_unused_input="ignore")
    rng = np.random.default_rng(3)
    points = []
    for _ in range(2):
        point = {k: v + rng.normal(0, spread, size=np.shape(v))
                 for k, v in m.initial_point().items()}
        points.append((point, {n: np.asarray(v)[None, ...]
                               for n, v in zip(names, values(point))}))
    stratum, labels = graph.stratum_index(trial, ep, model.strata)
    return ep, family, priors, X, m, points, stratum, len(labels)


# every family with partial pooling; separate baselines for two families in the default run
# and for the others in the slow suite (the default run stays near 10 minutes)
DEFAULT_NONE = ("weibull_ph", "piecewise_exponential")
CASES = [(k, "partial", "site", ()) for k in sorted(FAMILIES)]
CASES += [pytest.param(k, "none", "site", (), marks=() if k in DEFAULT_NONE
                       else pytest.mark.slow) for k in sorted(FAMILIES)]
# a stratum column other than site (with a random site effect beside it), and the piecewise
# model's patient-level path (a covariate)
CASES += [("weibull_ph", "partial", "grp", ()), ("piecewise_exponential", "none", "grp", ()),
          ("piecewise_exponential", "partial", "grp", ("cov",))]


@pytest.mark.parametrize("key, pooling, column, covariates", CASES)
def test_stratified_graph_and_density_equal_numpy(key, pooling, column, covariates, python_linker):
    site_effect = "random" if column != "site" else None
    model = _model(key, strata=column, pooling=pooling, covariates=covariates,
                   **({} if site_effect is None else {"site_effect": site_effect}))
    trial = _trial()
    ep, family, priors, X, m, points, stratum, n_strata = _graph(model, trial, "os")
    density = m.compile_fn(m.logp(jacobian=False, sum=True), inputs=m.value_vars,
                           on_unused_input="ignore")
    loglik_term = m.compile_fn(m.replace_rvs_by_values([m["loglik"]])[0], inputs=m.value_vars,
                               on_unused_input="ignore")
    diffs = []
    for point, post in points:
        ll = assemble.pointwise_loglik(family, post, ep.time, ep.event, ep.arm, ep.site, X,
                                       site_effect=model.site_effect, arm_by_site=None,
                                       stratum=stratum, n_strata=n_strata)
        assert float(loglik_term(point)) == pytest.approx(float(ll.sum()), rel=1e-10)
        lp = sum(float(v[0]) for v in assemble.log_prior(
            post, priors, family, model.site_effect, None, bool(covariates), "months",
            pooling).values())
        diffs.append((float(density(point)), lp + float(ll.sum())))
    # the sampler's density moves between the points as the numpy model's does (log prior
    # of the strata's deviations included); last-bit differences of the kernels only (the
    # Gompertz density at a random point is ~1e8: relative 1e-12)
    assert diffs[0][0] - diffs[1][0] == pytest.approx(diffs[0][1] - diffs[1][1], rel=1e-12,
                                                      abs=1e-8)
    # the strata really differ: a stratum's baseline is not the typical one
    dev = points[0][1][f"stratum_dev_{family.params[0]}"]
    assert dev.shape[-1] == n_strata and np.abs(dev).max() > 0


@pytest.mark.parametrize("key", [
    pytest.param(k, marks=() if k in ("weibull_ph", "piecewise_exponential", "mspline_ph")
                 else pytest.mark.slow) for k in sorted(FAMILIES)])
def test_stratified_graph_with_interval_censoring_equals_numpy(key, python_linker):
    model = _model(key, strata="site")
    trial = _trial(interval=True)
    # random points nearer the initial point: at the +-0.5 points a Gompertz stratum's
    # hazards reach 1e6, where the graph's single-branch interval term and numpy's two-branch
    # one differ by float cancellation (relative 1e-8), not by the model
    ep, family, priors, X, m, points, stratum, n_strata = _graph(model, trial, "ttp", 0.2)
    loglik_term = m.compile_fn(m.replace_rvs_by_values([m["loglik"]])[0], inputs=m.value_vars,
                               on_unused_input="ignore")
    grad = m.compile_dlogp(jacobian=False)
    for point, post in points:
        ll = assemble.pointwise_loglik(family, post, ep.lower, ep.kind, ep.arm, ep.site, X,
                                       site_effect="none", arm_by_site=None, upper=ep.upper,
                                       stratum=stratum, n_strata=n_strata)
        assert np.isfinite(ll).all()
        assert float(loglik_term(point)) == pytest.approx(float(ll.sum()), rel=1e-10)
        assert np.isfinite(grad(point)).all()


def test_stratum_deviations_are_on_the_months_scale():
    """A Weibull stratum with its own shape: its log scale in days moves by its own
    shape x log(days per month), so the numpy density of the same model in days and in
    months differs by the Jacobian of the time change only (a constant)."""
    fam = bh.WeibullPH().family_for(None, None)
    post = {"log_lambda": np.array([-2.0, -1.5]), "log_shape": np.array([0.1, -0.2])}
    devs = {"log_lambda": np.array([0.3, -0.4]), "log_shape": np.array([0.5, 0.2])}
    lu = log_unit_in_months("days")
    base_days = {**post, "log_lambda": post["log_lambda"] + np.exp(post["log_shape"]) * lu}
    months = fam.stratum_params(np, post, devs, 0.0)
    days = fam.stratum_params(np, base_days, devs, lu)
    # the same stratum: log lambda in days = log lambda in months + k_stratum log(unit)
    k = np.exp(months["log_shape"])
    np.testing.assert_allclose(days["log_lambda"], months["log_lambda"] + k * lu, rtol=1e-12)
    np.testing.assert_allclose(days["log_shape"], months["log_shape"])


def test_stratified_fit_same_in_days_and_estimands(example_trial):
    model = bh.WeibullPH(strata="site")
    months = model.fit(example_trial, "os", random_seed=2)
    days = model.fit(example_trial.to_unit("days"), "os", random_seed=2)
    for f in (months, days):
        assert f.site_effect == "none" and f.strata == tuple(example_trial.endpoint("os").sites)
    a, b = months.posterior["log_hr"], days.posterior["log_hr"]
    # the same posterior whatever the unit: means within 0.1 posterior SD (MC error)
    assert abs(float(a.mean() - b.mean())) < 0.1 * float(a.std())
    med_m = bh.median_survival(months).sel(arm="sorafenib").median()
    med_d = bh.median_survival(days).sel(arm="sorafenib").median() / 30.4375
    assert abs(float(med_m - med_d)) < 0.1 * float(bh.median_survival(months).sel(
        arm="sorafenib").std())
    # every estimand: standardised over the strata, typical stratum, new stratum
    meds = {e: float(bh.median_survival(months, estimand=e).sel(arm="sorafenib").median())
            for e in bh.ESTIMANDS}
    assert all(np.isfinite(v) and v > 0 for v in meds.values())
    # the standardised survival at t is the strata's patient-weighted mean of theirs
    s = bh.survival(months, [6.0]).sel(arm="sorafenib").median()
    assert 0 < float(s) < 1
    # stratified frequentist companion and statements
    table = bh.summarize(months)
    assert "stratified" in table.loc["log-rank p", "note"]
    assert "stratum (site: a baseline hazard per stratum)" in table.loc["HR", "note"]


def test_separate_baselines_have_no_new_stratum(example_trial):
    fit = bh.WeibullPH(strata="site", pooling="none").fit(example_trial, "os", random_seed=2)
    with pytest.raises(bh.BayesHCCError, match="needs partially pooled strata"):
        bh.median_survival(fit, estimand="new_site")


def test_strata_settings_errors(example_trial):
    with pytest.raises(bh.ModelError, match="not identifiable"):
        bh.WeibullPH(strata="site", site_effect="random")
    with pytest.raises(bh.ModelError, match="pooling"):
        bh.WeibullPH(strata="site", pooling="sometimes")
    with pytest.raises(bh.ModelError, match="give strata="):
        bh.WeibullPH(pooling="none")
    with pytest.raises(bh.ModelError, match="strata='ecog': no such column"):
        bh.WeibullPH(strata="ecog").fit(example_trial, "os")
    spec = bh.WeibullPH(strata="site", pooling="none").spec
    text = bh.dump_spec(spec)
    assert "[strata]" in text and bh.load_spec(text) == spec
    assert "strata" not in bh.dump_spec(bh.WeibullPH().spec)  # old hashes unchanged


def test_missing_stratum_is_named():
    f = _trial().to_frame()
    f.loc[f["patient_id"] == "p5", "grp"] = None
    trial = bh.read_trial(f[["patient_id", "site", "arm", "os_time", "os_event", "grp"]])
    with pytest.raises(bh.ModelError, match="strata='grp' is missing for 1 patient"):
        bh.WeibullPH(strata="grp", site_effect="none").fit(trial, "os")


def test_report_and_tables_of_a_stratified_fit(example_trial, tmp_path):
    fit = bh.fit_spec(bh.PiecewiseExponential(strata="site").spec, example_trial, fast=True,
                      random_seed=4)
    html = bh.report(fit, tmp_path / "r.html", figures=["survival", "ppc"]).read_text()
    assert "stratum_sd" in html and "stratified" in html
    notes = bh.fit_footnotes(fit, bh.summarize(fit))
    assert any("baseline stratified by site (6 strata, pooling partial)" in n for n in notes)
    # the stored pointwise log-likelihood is the stratified model's (LOO reads it)
    assert np.isfinite(float(bh.loo(fit).elpd))
    assert "strata site (6, pooling partial)" in repr(fit)
    # saved and loaded, the strata come back
    fit.save(tmp_path / "f.nc")
    back = bh.load_fit(tmp_path / "f.nc")
    assert back.strata == fit.strata and back.pooling == "partial"
    np.testing.assert_array_equal(back.stratum(), fit.stratum())
