"""Each family's log-likelihood against independent computations, and numpy vs PyMC."""

import numpy as np
import pytest
from scipy import stats

import bayes_hcc as bh
from bayes_hcc.spec.priors import IntervalMixturePrior
from bayes_hcc.models import assemble, graph
from bayes_hcc.families.piecewise import PiecewiseFamily
from bayes_hcc.families.weibull import WeibullFamily

RNG = np.random.default_rng(42)
MIX = bh.Prior.mixture([bh.Prior("Normal", mu=-0.2, sigma=0.3),
                        bh.Prior("Normal", mu=0.0, sigma=2.0)], [0.7, 0.3])
#: A per-interval mixture (a per-interval MAP prior's shape): one mixture per interval of
#: cuts [2, 5], with different components, padded to a common number.
IMIX = IntervalMixturePrior.from_elements([
    bh.Prior.mixture([bh.Prior("Normal", mu=-2.4, sigma=0.2),
                      bh.Prior("Normal", mu=-2.5, sigma=1.0)], [0.8, 0.2]),
    bh.Prior("Normal", mu=-2.0, sigma=0.4),
    bh.Prior.mixture([bh.Prior("Normal", mu=-3.0, sigma=0.3),
                      bh.Prior("Normal", mu=-2.6, sigma=0.6),
                      bh.Prior("Normal", mu=-2.5, sigma=1.0)], [0.5, 0.3, 0.2])])
N = 60
TIME = RNG.weibull(1.3, N) * 8 + 0.01
EVENT = (RNG.uniform(size=N) < 0.7).astype(int)
ARM = RNG.integers(0, 2, N)
SITE = RNG.integers(0, 4, N)


def params_one(**kw):
    return {k: np.atleast_1d(np.asarray(v, float))[None, ...] if np.ndim(v) else
            np.array([float(v)]) for k, v in kw.items()}


def test_weibull_pointwise_equals_scipy():
    log_lambda, log_k, log_hr = -2.0, np.log(1.3), -0.4
    eff = np.array([0.1, -0.2, 0.3, -0.2])
    post = params_one(log_lambda=log_lambda, log_shape=log_k, log_hr=log_hr)
    post["site_effect"] = eff[None, :]
    ll = assemble.pointwise_loglik(WeibullFamily(), post, TIME, EVENT, ARM, SITE, None,
                            site_effect="random", arm_by_site=None)[0]
    # scipy: H(t) = exp(eta) lambda t^k  <=>  weibull_min(c=k, scale=(lambda e^eta)^(-1/k)).
    k = np.exp(log_k)
    eta = log_lambda + log_hr * ARM + eff[SITE]
    dist = stats.weibull_min(c=k, scale=np.exp(-eta / k))
    ref = np.where(EVENT == 1, dist.logpdf(TIME), dist.logsf(TIME))
    np.testing.assert_allclose(ll, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("family", [WeibullFamily(), PiecewiseFamily([2.0, 5.0, 9.0])],
                         ids=["weibull", "piecewise"])
def test_pointwise_in_blocks_of_draws_equals_one_block(family, monkeypatch):
    """The log-likelihood is computed in blocks of draws (memory); blocks of 7 draws give
    exactly the values of one block of all 50 (each value depends on its own draw only)."""
    rng = np.random.default_rng(3)
    s = 50
    post = {"log_hr": rng.normal(-0.3, 0.1, s), "site_effect": rng.normal(0, 0.2, (s, 4)),
            "log_lambda": rng.normal(-2, 0.1, s), "log_shape": rng.normal(0.2, 0.05, s),
            "log_baseline_hazard": rng.normal(-2, 0.2, (s, 4))}
    kw = dict(site_effect="random", arm_by_site=None)
    monkeypatch.setattr(assemble, "_LL_BLOCK_VALUES", 10**9)
    whole = assemble.pointwise_loglik(family, post, TIME, EVENT, ARM, SITE, None, **kw)
    monkeypatch.setattr(assemble, "_LL_BLOCK_VALUES", 7 * N)
    blocks = assemble.pointwise_loglik(family, post, TIME, EVENT, ARM, SITE, None, **kw)
    assert whole.shape == (s, N)
    np.testing.assert_array_equal(blocks, whole)


def test_piecewise_pointwise_equals_direct_integral():
    fam = PiecewiseFamily([2.0, 5.0, 9.0])
    alpha = np.array([-2.0, -1.7, -2.4, -1.9])
    post = params_one(log_hr=0.3)
    post["log_baseline_hazard"] = alpha[None, :]
    ll = assemble.pointwise_loglik(fam, post, TIME, EVENT, ARM, SITE, None, site_effect="none",
                            arm_by_site=None)[0]
    # Independent: integrate the hazard numerically (scipy.quad) for H, look up h.
    from scipy.integrate import quad

    def h(t, a):
        j = np.searchsorted([2.0, 5.0, 9.0], t, side="left")
        return np.exp(alpha[j] + 0.3 * a)

    ref = [EVENT[i] * np.log(h(TIME[i], ARM[i]))
           - quad(lambda s: h(s, ARM[i]), 0, TIME[i], points=[2, 5, 9], limit=200)[0]
           for i in range(N)]
    np.testing.assert_allclose(ll, ref, rtol=1e-9, atol=1e-9)


def test_aggregated_piecewise_equals_patient_level():
    fam = PiecewiseFamily([1.5, 4.0, 7.5])
    alpha = np.array([-2.2, -1.8, -2.0, -2.5])
    eff = np.array([0.2, -0.1, 0.05, -0.15])
    log_hr = -0.35
    post = params_one(log_hr=log_hr)
    post["log_baseline_hazard"], post["site_effect"] = alpha[None], eff[None]
    patient = assemble.pointwise_loglik(fam, post, TIME, EVENT, ARM, SITE, None,
                                 site_effect="random", arm_by_site=None).sum()
    unit = ARM * 4 + SITE
    agg = fam.data_arrays(TIME, EVENT, unit, 8)
    cell_eta = log_hr * np.repeat([0, 1], 4) + np.tile(eff, 2)
    log_rate = alpha[None, :] + cell_eta[:, None]
    total = (agg["events"] * log_rate - agg["exposure"] * np.exp(log_rate)).sum()
    # Exact up to floating-point summation order.
    assert total == pytest.approx(patient, rel=1e-12)


@pytest.mark.parametrize("model", [bh.WeibullPH(site_effect="random"),
                                   bh.PiecewiseExponential(cuts=[2.0, 5.0, 9.0],
                                                           site_effect="random"),
                                   bh.PiecewiseExponential(cuts=[2.0, 5.0, 9.0],
                                                           site_effect="random",
                                                           time_varying_hr=True),
                                   bh.ExponentialPH(site_effect="random"),
                                   bh.LogNormalAFT(site_effect="random"),
                                   bh.LogLogisticAFT(site_effect="random")],
                         ids=["weibull", "pwe", "pwe-time-varying-hr", "exponential",
                              "lognormal", "loglogistic"])
def test_pymc_graph_equals_numpy(model, python_linker):
    """The sampled density (PyMC Potential) equals the numpy patient-level likelihood."""
    import pandas as pd

    trial = bh.read_trial(pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(N)], "site": [f"s{s}" for s in SITE],
        "arm": np.where(ARM == 1, "tace_sorafenib", "sorafenib"),
        "os_time": TIME, "os_event": EVENT}))
    ep, family, priors, X, scale, data, key = graph.prepare(model, trial, "os")
    m = graph.build_pymc(family, priors, data, site_effect="random", arm_by_site=None, n_sites=4,
                     n_cov=0)
    point = m.initial_point()
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in point.items()}
    # The Potential is written in random variables: evaluate it at the value variables.
    fn = m.compile_fn(m.replace_rvs_by_values([m["loglik"]])[0], inputs=m.value_vars,
                      on_unused_input="ignore")
    graph_ll = float(fn(point))
    # Untransformed values of the same point, as the posterior would hold them.
    names = [v.name for v in m.free_RVs] + [d.name for d in m.deterministics]
    outs = m.replace_rvs_by_values([m[n] for n in names])
    values = m.compile_fn(outs, inputs=m.value_vars, on_unused_input="ignore")(point)
    post = {n: np.asarray(v)[None, ...] for n, v in zip(names, values)}
    ll = assemble.pointwise_loglik(family, post, ep.time, ep.event, ep.arm, ep.site, X,
                            site_effect="random", arm_by_site=None)
    assert graph_ll == pytest.approx(ll.sum(), rel=1e-10)


def _interval_trial():
    """The test patients with TTP in the times layout's bounds: exact events, right-censored
    patients (one at time 0), events in (L, R] and in (0, R] (before the first scan)."""
    import pandas as pd

    kind = RNG.choice(4, size=N, p=[0.25, 0.15, 0.45, 0.15])  # right, exact, (L, R], (0, R]
    lower = np.where(kind == 3, 0.0, TIME)
    upper = np.select([kind == 0, kind == 1, kind == 2], [np.nan, TIME, TIME + 1.9],
                      TIME + 0.5)
    lower[np.flatnonzero(kind == 0)[0]] = 0.0  # censored at time 0: no information
    return bh.read_trial(pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(N)], "site": [f"s{s}" for s in SITE],
        "arm": np.where(ARM == 1, "tace_sorafenib", "sorafenib"),
        "cov": RNG.normal(size=N), "ttp_lower": lower, "ttp_upper": upper}))


def _graph_at_random_points(model, seed, trial=None, endpoint="os"):
    """The model's PyMC graph for the test trial, and two random points: each as the value
    variables' values and as a one-draw posterior of every free and deterministic variable."""
    import pandas as pd

    trial = trial or bh.read_trial(pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(N)], "site": [f"s{s}" for s in SITE],
        "arm": np.where(ARM == 1, "tace_sorafenib", "sorafenib"),
        "os_time": TIME, "os_event": EVENT}))
    ep, family, priors, X, scale, data, key = graph.prepare(model, trial, endpoint)
    m = graph.build_pymc(family, priors, data, site_effect=model.site_effect,
                     arm_by_site=model.arm_by_site, n_sites=4, n_cov=X.shape[1],
                     site_parametrization=graph.site_parametrization_for(model, ep))
    names = [v.name for v in m.free_RVs] + [d.name for d in m.deterministics]
    values = m.compile_fn(m.replace_rvs_by_values([m[n] for n in names]), inputs=m.value_vars,
                          on_unused_input="ignore")
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(2):
        point = {k: v + rng.normal(0, 0.5, size=np.shape(v))
                 for k, v in m.initial_point().items()}
        points.append((point, {n: np.asarray(v)[None, ...]
                               for n, v in zip(names, values(point))}))
    return ep, family, priors, X, m, points


@pytest.mark.parametrize("model", [
    bh.WeibullPH(site_effect="random"),
    bh.WeibullPH(site_effect="random", site_parametrization="centered"),
    bh.WeibullPH(site_effect="fixed"),
    bh.PiecewiseExponential(cuts=[2.0, 5.0], site_effect="random", arm_by_site="random"),
    bh.PiecewiseExponential(cuts=[2.0, 5.0], baseline_prior="independent", site_effect="none"),
    bh.LogNormalAFT(site_effect="random"),
    bh.WeibullPH(site_effect="random", priors={"log_hr": MIX}),
    bh.PiecewiseExponential(cuts=[2.0, 5.0], baseline_prior="independent",
                            site_effect="random", priors={"log_baseline_hazard": IMIX}),
    bh.WeibullPH(site_effect="random", prior_reference_time=8.0),
], ids=["noncentered", "centered", "fixed", "pwe-rw1-armbysite", "pwe-independent",
        "lognormal", "mixture-log-hr", "pwe-interval-mixture", "weibull-reference-time"])
def test_log_prior_matches_pymc(model, python_linker):
    """The scipy log prior stored for power-scaling equals PyMC's prior density up to a
    constant: compared as differences between two random points."""
    ep, family, priors, X, m, points = _graph_at_random_points(model, seed=1)
    prior_lp = m.compile_fn(m.logp(vars=m.free_RVs, jacobian=False, sum=True),
                            inputs=m.value_vars, on_unused_input="ignore")
    diffs = []
    for point, post in points:
        lp = assemble.log_prior(post, priors, family, model.site_effect, model.arm_by_site, False)
        diffs.append((float(prior_lp(point)), sum(float(v[0]) for v in lp.values())))
    # abs 1e-8: scipy and PyTensor's kernels differ in the last bits only.
    assert diffs[0][0] - diffs[1][0] == pytest.approx(diffs[0][1] - diffs[1][1], abs=1e-8)


@pytest.mark.parametrize("model", [
    bh.WeibullPH(site_effect="random"),
    bh.WeibullPH(site_effect="random", site_parametrization="centered"),
    bh.WeibullPH(site_effect="fixed"),
    bh.WeibullPH(site_effect="none", priors={"log_lambda": {"dist": "StudentT", "nu": 4,
                                                            "mu": -2.0, "sigma": 1.5}}),
    bh.PiecewiseExponential(cuts=[2.0, 5.0, 9.0], site_effect="random"),
    bh.PiecewiseExponential(cuts=[2.0, 5.0], site_effect="random", arm_by_site="random"),
    bh.PiecewiseExponential(cuts=[2.0, 5.0], baseline_prior="independent",
                            site_effect="random"),
    bh.PiecewiseExponential(cuts=[2.0, 5.0, 9.0], site_effect="random", time_varying_hr=True),
    bh.ExponentialPH(site_effect="random"),
    bh.LogNormalAFT(site_effect="random"),
    bh.WeibullPH(site_effect="random", priors={"log_hr": MIX}),
    bh.PiecewiseExponential(cuts=[2.0, 5.0], site_effect="random", priors={
        "log_baseline_hazard": bh.Prior.mixture([bh.Prior("Normal", mu=-2.5, sigma=0.5),
                                                 bh.Prior("StudentT", nu=3, mu=-2.0,
                                                          sigma=2.0)], [0.5, 0.5]),
        "site_sd": bh.Prior.mixture([bh.Prior("HalfNormal", sigma=0.3),
                                     bh.Prior("HalfNormal", sigma=2.0)], [0.6, 0.4])}),
    bh.PiecewiseExponential(cuts=[2.0, 5.0], baseline_prior="independent",
                            site_effect="random", priors={"log_baseline_hazard": IMIX}),
    bh.WeibullPH(site_effect="random", prior_reference_time=8.0,
                 priors={"log_lambda": MIX}),
], ids=["weibull", "weibull-centered", "weibull-fixed", "weibull-studentt-nosite", "pwe",
        "pwe-armbysite", "pwe-independent", "pwe-time-varying-hr", "exponential",
        "lognormal", "weibull-mixture-log-hr", "pwe-mixture-baseline-and-site-sd",
        "pwe-interval-mixture", "weibull-reference-time-mixture"])
def test_sampled_density_is_the_model_posterior(model, python_linker):
    """The sampler moves intercepts together with the arm, site, shape and random-walk terms
    they are confounded with (``centred_intercept``). That must be an exact change of
    coordinates: the density the sampler sees equals the model's log posterior written in
    the original parameters -- scipy prior (``log_prior``) + numpy patient-level likelihood
    -- plus the log-Jacobian of the log transform of the SDs, up to a constant (compared as
    differences between two random points). A wrong shift or a non-unit Jacobian fails."""
    ep, family, priors, X, m, points = _graph_at_random_points(model, seed=2)
    sampled = m.compile_fn(m.logp(jacobian=True, sum=True), inputs=m.value_vars,
                           on_unused_input="ignore")
    diffs = []
    for point, post in points:
        reference = sum(float(v[0]) for v in assemble.log_prior(
            post, priors, family, model.site_effect, model.arm_by_site, False).values())
        reference += float(assemble.pointwise_loglik(family, post, ep.time, ep.event, ep.arm, ep.site,
                                              X, site_effect=model.site_effect,
                                              arm_by_site=model.arm_by_site).sum())
        reference += sum(float(np.log(post[v][0])) for v in ("site_sd", "arm_site_sd")
                         if v in post)
        diffs.append((float(sampled(point)), reference))
    assert any(n.endswith("__centred") for n in post)  # the shifted coordinates are used
    # abs 1e-8: scipy/numpy and PyTensor's kernels differ in the last bits only.
    assert diffs[0][0] - diffs[1][0] == pytest.approx(diffs[0][1] - diffs[1][1], abs=1e-8)


@pytest.mark.parametrize("family, scipy_dist", [
    ("lognormal", lambda mu, s: stats.lognorm(s=s, scale=np.exp(mu))),
    ("loglogistic", lambda mu, s: stats.fisk(c=1 / s, scale=np.exp(mu))),
])
def test_aft_pointwise_equals_scipy(family, scipy_dist):
    from bayes_hcc.families.aft import LogLogisticFamily, LogNormalFamily

    fam = {"lognormal": LogNormalFamily(), "loglogistic": LogLogisticFamily()}[family]
    eff = np.array([0.1, -0.2, 0.3, -0.2])
    post = params_one(log_scale=2.0, log_sigma=np.log(0.8), log_tr=0.3)
    post["site_effect"] = eff[None, :]
    fam_ll = assemble.pointwise_loglik(fam, post, TIME, EVENT, ARM, SITE, None, site_effect="random",
                                arm_by_site=None)[0]
    eta = 2.0 + 0.3 * ARM + eff[SITE]
    dist = scipy_dist(eta, 0.8)
    ref = np.where(EVENT == 1, dist.logpdf(TIME), dist.logsf(TIME))
    np.testing.assert_allclose(fam_ll, ref, rtol=1e-10, atol=1e-10)


def test_exponential_pointwise_equals_scipy():
    from bayes_hcc.families.exponential import ExponentialFamily

    post = params_one(log_lambda=-2.0, log_hr=-0.4)
    ll = assemble.pointwise_loglik(ExponentialFamily(), post, TIME, EVENT, ARM, SITE, None,
                            site_effect="none", arm_by_site=None)[0]
    dist = stats.expon(scale=1 / np.exp(-2.0 - 0.4 * ARM))
    np.testing.assert_allclose(ll, np.where(EVENT == 1, dist.logpdf(TIME), dist.logsf(TIME)),
                               rtol=1e-12)


def test_endpoint_view_for_the_likelihood(example_trial):
    """The Endpoint's view (kind, lower, upper, entry) of right-censored data: events are
    exact with upper = time, censored patients have upper = inf, everyone enters at 0; the
    pointwise log-likelihood computed from the view with the bounds passed explicitly equals
    the plain event-indicator path."""
    from bayes_hcc.families.weibull import WeibullFamily
    from bayes_hcc.models.likelihood import EXACT, RIGHT

    ep = example_trial.endpoint("os")
    ev = ep.event == 1
    assert set(np.unique(ep.kind)) <= {RIGHT, EXACT} and (ep.kind[ev] == EXACT).all()
    np.testing.assert_array_equal(ep.lower, ep.time)
    np.testing.assert_array_equal(ep.upper[ev], ep.time[ev])
    assert np.isinf(ep.upper[~ev]).all() and (ep.entry == 0).all()
    rng = np.random.default_rng(1)
    post = {"log_hr": rng.normal(-0.2, 0.1, 6), "log_lambda": rng.normal(-2, 0.1, 6),
            "log_shape": rng.normal(0.1, 0.05, 6)}
    fam = WeibullFamily()
    kw = dict(site_effect="none", arm_by_site=None)
    X = np.zeros((len(ep), 0))
    plain = assemble.pointwise_loglik(fam, post, ep.time, ep.event, ep.arm, ep.site, X, **kw)
    view = assemble.pointwise_loglik(fam, post, ep.lower, ep.kind, ep.arm, ep.site, X,
                                     upper=ep.upper, entry=ep.entry, **kw)
    np.testing.assert_allclose(view, plain, rtol=1e-13)


def _registry_model(key, **kw):
    """Every registered family's model class, with a layout independent of the data."""
    from bayes_hcc.families.registry import FAMILIES

    return bh.MODELS[FAMILIES[key].model_name](**FAMILIES[key].calibration_options(), **kw)


@pytest.mark.parametrize("key", sorted(__import__("bayes_hcc.families.registry",
                                                  fromlist=["FAMILIES"]).FAMILIES))
def test_every_family_graph_and_posterior_density_equal_numpy(key, python_linker):
    """Parametrised over the registry (a new family is covered without editing this file):
    at two random points, the density the sampler sees, in its own (possibly shifted)
    coordinates and without the Jacobians of PyMC's transforms (log for SDs, simplex), differs
    between the points exactly as the numpy model does (scipy log prior + numpy
    patient-level likelihood): a wrong intercept shift fails. And the graph's likelihood
    term equals the numpy one at each point."""
    model = _registry_model(key, site_effect="random")
    ep, family, priors, X, m, points = _graph_at_random_points(model, seed=3)
    density = m.compile_fn(m.logp(jacobian=False, sum=True), inputs=m.value_vars,
                           on_unused_input="ignore")
    loglik_term = m.compile_fn(m.replace_rvs_by_values([m["loglik"]])[0], inputs=m.value_vars,
                               on_unused_input="ignore")
    diffs = []
    for point, post in points:
        ll = float(assemble.pointwise_loglik(family, post, ep.time, ep.event, ep.arm, ep.site,
                                             X, site_effect="random", arm_by_site=None).sum())
        assert float(loglik_term(point)) == pytest.approx(ll, rel=1e-10)
        lp = sum(float(v[0]) for v in assemble.log_prior(
            post, priors, family, "random", None, False).values())
        diffs.append((float(density(point)), lp + ll))
    # abs 1e-8: scipy/numpy and PyTensor's kernels differ in the last bits only.
    assert diffs[0][0] - diffs[1][0] == pytest.approx(diffs[0][1] - diffs[1][1], abs=1e-8)


@pytest.mark.parametrize("key", sorted(__import__("bayes_hcc.families.registry",
                                                  fromlist=["FAMILIES"]).FAMILIES))
def test_every_family_refits_new_data_without_recompiling(key, example_trial):
    """The compile-cache key of a model with data-chosen layout (quantile cut points, knots,
    boundary, the time unit) is the same for another trial of the same shape and for the same
    trial in days: those settings reach the graph as data, so a refit reuses the sampler."""
    from bayes_hcc.families.registry import FAMILIES

    model = bh.MODELS[FAMILIES[key].model_name]()
    other = bh.simulate_trial(130, random_seed=5)
    keys = {graph.prepare(model, t, "os")[-1]
            for t in (example_trial, other, example_trial.to_unit("days"))}
    assert len(keys) == 1


# Every family once; the piecewise family also with a covariate, where its units are the
# patients instead of the arm x site cells (the other families have one data path).
@pytest.mark.parametrize("key, covariates", [
    *[(k, ()) for k in sorted(__import__("bayes_hcc.families.registry",
                                         fromlist=["FAMILIES"]).FAMILIES)],
    ("piecewise_exponential", ("cov",))])
def test_every_family_graph_with_interval_censoring_equals_numpy(key, covariates, python_linker):
    """Interval- and left-censored events in the sampled graph, every family: the graph's
    likelihood term equals the numpy patient-level likelihood of the same points (so for
    the piecewise model the hybrid of cell sufficient statistics and per-patient interval
    terms is exact, with cells and with patient-level units)."""
    from bayes_hcc.models.likelihood import INTERVAL, LEFT

    trial = _interval_trial()
    model = _registry_model(key, site_effect="random", covariates=covariates)
    ep, family, priors, X, m, points = _graph_at_random_points(model, 4, trial, "ttp")
    assert {INTERVAL, LEFT} <= set(ep.kind)
    loglik_term = m.compile_fn(m.replace_rvs_by_values([m["loglik"]])[0], inputs=m.value_vars,
                               on_unused_input="ignore")
    grad = m.compile_dlogp(jacobian=False)
    for point, post in points:
        ll = assemble.pointwise_loglik(family, post, ep.lower, ep.kind, ep.arm, ep.site, X,
                                       site_effect="random", arm_by_site=None, upper=ep.upper)
        assert np.isfinite(ll).all()
        assert float(loglik_term(point)) == pytest.approx(float(ll.sum()), rel=1e-10)
        assert np.isfinite(grad(point)).all()  # no log 0 or inf reaches the gradient


@pytest.mark.parametrize("key", sorted(__import__("bayes_hcc.families.registry",
                                                  fromlist=["FAMILIES"]).FAMILIES))
def test_numba_and_python_linkers_give_the_same_density(key):
    """The graph tests above evaluate the model's graph with the Python linker
    (``python_linker``); the sampler runs it compiled by numba. For every family, on
    interval-, left- and right-censored and exact data with random site effects (every path
    of the likelihood), the log density with its Jacobians and its gradient agree between
    the two at random points: relative 1e-12 for the density, 1e-9 for the gradient
    (floating-point reassociation in the fused kernels; a wrong kernel differs by far more)."""
    import pytensor

    from tests.helpers import python_linker

    model = _registry_model(key, site_effect="random")
    with python_linker():
        ep, family, priors, X, m, points = _graph_at_random_points(model, 5, _interval_trial(),
                                                                   "ttp")
        logp = m.logp(jacobian=True, sum=True)
        outs = [logp, *pytensor.grad(logp, m.value_vars)]
        python = m.compile_fn(outs, inputs=m.value_vars, on_unused_input="ignore")
    numba = m.compile_fn(outs, inputs=m.value_vars, on_unused_input="ignore", mode="NUMBA")
    for point, _ in points:
        got, ref = numba(point), python(point)
        assert float(got[0]) == pytest.approx(float(ref[0]), rel=1e-12)
        for g, r in zip(got[1:], ref[1:]):
            np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-12)


def test_stored_loglik_of_left_censored_only_data():
    """Data whose only bounded events are left-censored ((0, R]: progression at the first
    scan) still store log(1 - S(R)) for them, not the censored term at 0."""
    import pandas as pd

    lower = np.where(EVENT == 1, 0.0, TIME)
    upper = np.where(EVENT == 1, TIME, np.nan)
    trial = bh.read_trial(pd.DataFrame({
        "patient_id": [f"p{i}" for i in range(N)], "site": [f"s{s}" for s in SITE],
        "arm": np.where(ARM == 1, "tace_sorafenib", "sorafenib"),
        "ttp_lower": lower, "ttp_upper": upper}))
    fit = bh.WeibullPH(site_effect="none").fit(trial, "ttp", random_seed=1, draws=200,
                                               tune=200, chains=2, check=False)
    post = {k: fit.posterior[k].to_numpy().reshape(-1) for k in ("log_hr", "log_lambda",
                                                                 "log_shape")}
    ll = fit.datatree["log_likelihood"]["ttp"].to_numpy().reshape(len(post["log_hr"]), -1)
    ep = trial.endpoint("ttp")  # patients in the canonical (id) order, as the fit stores
    t = np.where(ep.event == 1, ep.upper, ep.lower)
    lam, k = np.exp(post["log_lambda"])[:, None], np.exp(post["log_shape"])[:, None]
    H = lam * t[None, :] ** k * np.exp(post["log_hr"][:, None] * ep.arm[None, :])
    expected = np.where(ep.event == 1, np.log(-np.expm1(-H)), -H)
    np.testing.assert_allclose(ll, expected, rtol=1e-9, atol=1e-12)
