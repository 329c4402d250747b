"""The M-spline baseline in the illness-death model: one cubic basis shared by the three
transitions (knots at quantiles of the pooled transition times, as the piecewise
baseline's cuts), fitted to the example trial, which was simulated from a known
illness-death truth (``tests/multistate/test_fit.py``: transition HRs 0.67, 0.70, 0.70;
control medians 6.5 months OS and 2.27 months PFS). Its likelihood is checked against
scipy quadrature with the other baselines (``test_likelihood.py``)."""

import numpy as np
import pytest
from scipy import integrate

import bayes_hcc as bh
from bayes_hcc.multistate.likelihood import TRANSITIONS, layout, loglik_numpy
from tests.helpers import mspline_hazards
from tests.multistate.test_fit import TRUE_HR

DAYS_PER_MONTH = 30.4375


@pytest.fixture(scope="module")
def fit():
    """2 x 300 draws, no site effects: enough for 95% intervals that are checked against
    truths inside them, not near their ends (this model samples about 9 times slower than
    the Weibull one on these data: twice the steps per draw, each 4 times the cost). check=False:
    R-hat of short runs is not what these tests are about."""
    return bh.IllnessDeath("mspline_ph", site_effect="none").fit(
        bh.datasets.load_example_trial(), draws=300, tune=300, chains=2, random_seed=5,
        check=False)


@pytest.mark.parametrize("scale", ["markov", "semi_markov"])
def test_one_basis_for_the_three_transitions_and_no_unit_in_the_posterior(scale):
    """The three transitions share one basis, whose knots and boundary move with the time
    unit. Then the posterior does not depend on the unit: at the same parameters the
    log-likelihood in days differs from the one in months, patient by patient, by a
    constant (log 30.4375 per density factor: an exact progression, a death), whatever
    the parameters; the priors are unit-free (a cumulative hazard at the boundary, a
    simplex). Checked at two random parameter points."""
    trial = bh.datasets.load_example_trial()
    model = bh.IllnessDeath("mspline_ph", time_scale=scale, site_effect="none")
    data = {u: bh.IllnessDeathData.from_trial(trial.to_unit(u), "ttp", "os")
            for u in ("months", "days")}
    fams = {u: model.families(d) for u, d in data.items()}
    months, days = fams["months"], fams["days"]
    assert months[0] is months[1] is months[2]
    assert len(months[0].knots) == 3 and np.all(np.diff(months[0].knots) > 0)
    assert months[0].boundary == pytest.approx(float(np.max(data["months"].time)))
    np.testing.assert_allclose(days[0].knots, months[0].knots * DAYS_PER_MONTH, rtol=1e-9)
    assert days[0].boundary == pytest.approx(months[0].boundary * DAYS_PER_MONTH)
    rng = np.random.default_rng(7)
    n, arm = len(data["months"].time), data["months"].arm.astype(float)
    diffs = []
    for _ in range(2):
        params = [{"log_scale": rng.normal(0.0, 0.5, 1),
                   "coefficients": rng.dirichlet(np.ones(months[0].n_basis), 1)}
                  for _ in TRANSITIONS]
        etas = [(rng.normal(0, 0.3) * arm)[None, :] for _ in TRANSITIONS]
        ll = {u: loglik_numpy(fams[u], params, etas, layout(data[u], fams[u], scale), n)[0]
              for u in data}
        diffs.append(ll["months"] - ll["days"])
    np.testing.assert_allclose(diffs[0], diffs[1], atol=1e-8)
    steps = diffs[0] / np.log(DAYS_PER_MONTH)  # whole numbers of density factors
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-8)
    assert set(np.round(steps).astype(int)) <= {0, 1, 2}


def test_transition_hrs_and_medians_cover_the_truth(fit):
    table = fit.summary()
    for t in TRANSITIONS:
        assert table.loc[t, "lower"] < TRUE_HR[t] < table.loc[t, "upper"], t
    med = fit.medians(thin=3)
    lo, hi = (med.quantile(q, "draw").sel(arm="sorafenib") for q in (0.025, 0.975))
    assert float(lo["os"]) < 6.5 < float(hi["os"])
    assert float(lo["pfs"]) < 2.27 < float(hi["pfs"])


def test_curves_are_coherent_and_match_an_independent_integral(fit):
    """On every draw PFS <= min(OS, progression curve); OS at 5 months on a draw equals
    PFS + int_0^5 S0(u) a01(u) exp(-(H12(5) - H12(u))) du, with the M-spline hazards
    written from their definition (``tests.helpers.mspline_hazards``) and scipy's
    adaptive quadrature (1e-7)."""
    times = np.array([0.0, 1.0, 2.5, 5.0, 10.0, 40.0])  # 40: beyond the boundary knot
    ds = fit.state_probabilities(times, thin=30)
    assert bool((ds["pfs"] <= np.minimum(ds["os"], ds["progression"]) + 1e-12).all())
    assert np.allclose(ds["pfs"] + ds["alive_progressed"] + ds["dead"], 1.0)
    post = fit.datatree["posterior"].to_dataset()
    fam = fit.families[0]
    hr = post["log_hr"].values.reshape(-1, 3)[::30][0]
    p = [{"log_scale": float(post[f"{t}::log_scale"].values.reshape(-1)[::30][0]),
          "coefficients": post[f"{t}::coefficients"].values.reshape(-1, fam.n_basis)[::30][0]}
         for t in TRANSITIONS]
    for arm in (0, 1):
        (h01, H01), (_, H02), (_, H12) = (mspline_hazards(fam.knots, fam.boundary, p[j],
                                                          hr[j] * arm) for j in range(3))
        for horizon in (5.0, 40.0):
            def f(u, horizon=horizon):
                return np.exp(-H01(u) - H02(u)) * h01(u) * np.exp(-(H12(horizon) - H12(u)))

            pts = [k for k in (*fam.knots, fam.boundary) if k < horizon]
            want = np.exp(-H01(horizon) - H02(horizon)) + integrate.quad(
                f, 0, horizon, points=pts, epsabs=0, epsrel=1e-10, limit=200)[0]
            got = float(ds["os"].isel(draw=0, arm=arm).sel(time=horizon))
            assert got == pytest.approx(want, rel=1e-7), (arm, horizon)


def test_an_illness_death_spec_takes_the_m_spline_baseline():
    """``family = "mspline_ph"`` in an illness-death spec (it was refused, as the model
    was); the Weibull priors of the shipped spec are dropped with the family, as for every
    family variant; an option of the single-endpoint M-spline that the illness-death one
    does not take (the Dirichlet concentration) is refused."""
    spec = bh.load_spec("models/illness_death.toml")
    ms = bh.apply_overrides(spec, {"family": "mspline_ph"}, name="mspline")
    model = bh.IllnessDeath.from_spec(ms)
    assert model.baseline == "mspline_ph" and set(model.priors) == {"log_hr", "site_sd"}
    with pytest.raises(bh.SpecError, match="concentration not available in an illness-death "
                       "model; its mspline_ph transitions take boundary, degree, knots, "
                       "n_knots"):
        bh.apply_overrides(spec, {"family": "mspline_ph", "options.concentration": 2.0})
    # a piecewise option of the single-endpoint model is named as the illness-death's
    with pytest.raises(bh.SpecError, match="rw_sd not available in an illness-death model; "
                       "its piecewise_exponential transitions take cuts, n_intervals"):
        bh.apply_overrides(spec, {"family": "piecewise_exponential", "options.rw_sd": 0.3})


def test_the_basis_options_are_honoured_checked_and_saved():
    """knots, n_knots, degree and boundary, as ``MSplinePH`` takes them: used by the shared
    basis, refused for another baseline or when they contradict each other, kept in the
    settings a saved fit is rebuilt from, and moved to the data's unit from a spec's."""
    trial = bh.datasets.load_example_trial()
    data = bh.IllnessDeathData.from_trial(trial, "ttp", "os")
    fam = bh.IllnessDeath("mspline_ph", knots=[2.0, 6.0], degree=2,
                          boundary=40.0).families(data)[0]
    assert list(fam.knots) == [2.0, 6.0] and fam.degree == 2 and fam.boundary == 40.0
    assert len(bh.IllnessDeath("mspline_ph", n_knots=5).families(data)[0].knots) == 5
    for kwargs, match in ((dict(knots=[3.0]), "for the M-spline baseline, not 'weibull_ph'"),
                          (dict(n_knots=2, knots=[3.0]), "knots or n_knots, not both"),
                          (dict(degree=7), "at most 5"), (dict(degree=2.5), "an integer"),
                          (dict(knots=[3.0, 50.0], boundary=40.0), "before the boundary")):
        baseline = "weibull_ph" if "weibull" in match else "mspline_ph"
        with pytest.raises(bh.ModelError, match=match):
            bh.IllnessDeath(baseline, **kwargs)
    with pytest.raises(bh.ModelError, match="before the boundary knot 34.2"):  # the data's
        bh.IllnessDeath("mspline_ph", knots=[3.0, 50.0]).families(data)
    model = bh.IllnessDeath("mspline_ph", knots=np.array([2, 6]), degree=2)
    assert model.settings()["knots"] == [2.0, 6.0]
    assert bh.IllnessDeath.from_settings(model.settings()).settings() == model.settings()
    assert "knots" not in bh.IllnessDeath("mspline_ph").settings()  # as saved before
    spec = bh.apply_overrides(bh.load_spec("models/illness_death.toml"),
                              {"family": "mspline_ph", "options.knots": [2.0, 6.0],
                               "options.boundary": 30.0})
    days = bh.IllnessDeath.from_spec(spec, "days").families(
        bh.IllnessDeathData.from_trial(trial.to_unit("days"), "ttp", "os"))[0]
    np.testing.assert_allclose(days.knots, [2.0 * DAYS_PER_MONTH, 6.0 * DAYS_PER_MONTH])
    assert days.boundary == pytest.approx(30.0 * DAYS_PER_MONTH)
