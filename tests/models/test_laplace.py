"""The Laplace approximation (``bh.laplace``) against MCMC of the same model, and its
reuse of the compiled functions with new data."""

import time
import warnings

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh


def _mcmc(model, trial):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(trial, "os", draws=1000, chains=4, random_seed=1, check=False)
    return fit.posterior["log_hr"].values.ravel()


def test_laplace_agrees_with_mcmc_without_site_effects():
    """Weibull PH, no site effects, the example trial (about 100 deaths: the posterior of
    the log HR is close to normal): Laplace mean within 0.1 posterior SD of the MCMC mean
    (MC error of that mean: about 0.02 SD at 4 x 1000 draws), SD within 5%, P(HR < 1)
    within 0.01. A refit with other data reuses the compiled functions (well under a
    second) and gives another answer."""
    trial = bh.datasets.load_example_trial()
    model = bh.WeibullPH(site_effect="none")
    approx = bh.laplace(model, trial)
    assert approx.converged and approx.effect == "log_hr"
    draws = _mcmc(model, trial)
    assert abs(approx.mean - draws.mean()) < 0.1 * draws.std()
    assert approx.sd == pytest.approx(draws.std(), rel=0.05)
    assert abs(approx.prob_superiority() - (draws < 0).mean()) < 0.01
    assert approx.prob_below(0.8) < approx.prob_below(1.0)
    in_days = bh.laplace(model, trial.to_unit("days"))  # no result depends on the unit
    assert in_days.mean == pytest.approx(approx.mean, abs=1e-8)
    assert in_days.sd == pytest.approx(approx.sd, rel=1e-8)
    early = trial.cut(pd.Timestamp("2019-01-31"), warn=False)
    t0 = time.perf_counter()
    again = bh.laplace(model, early)
    assert time.perf_counter() - t0 < 2.0
    assert again.converged and again.sd > approx.sd  # fewer events: a wider posterior


@pytest.mark.slow
@pytest.mark.parametrize("model", [bh.WeibullPH(), bh.PiecewiseExponential()], ids=repr)
def test_laplace_with_random_site_effects_is_close_to_mcmc(model):
    """With random site effects (6 sites) the site SD is integrated on a grid and the rest
    by the Laplace approximation. Measured on the example trial: mean within 0.01 SD of
    MCMC's, SD within 1%, P(HR < 1) within 0.009 (the joint approximation it replaced: mean
    0.11 SD low, P 0.013-0.024 high). Asserted: mean within 0.1 SD (MC error of the MCMC
    mean: about 0.02 SD), SD within 5%, P(HR < 1) within 0.02 (MC error about 0.01)."""
    trial = bh.datasets.load_example_trial()
    approx = bh.laplace(model, trial)
    draws = _mcmc(model, trial)
    assert approx.converged and approx.n_grid >= 5
    assert abs(approx.mean - draws.mean()) < 0.1 * draws.std()
    assert approx.sd == pytest.approx(draws.std(), rel=0.05)
    assert abs(approx.prob_superiority() - (draws < 0).mean()) < 0.02


def _interim_cuts(n, hr=1.0, look=1):
    """Cuts of null design trials at one of the monitoring plan's looks, as the design
    simulation makes them (random site effects, 6 sites)."""
    from bayes_hcc.models.from_spec import population
    from bayes_hcc.monitoring.interim import look_date
    from bayes_hcc.monitoring.operating import DESIGN_BASE, _scenario_kwargs

    plan = bh.load_plan(__import__("pathlib").Path(__file__).resolve().parents[2]
                        / "models" / "monitoring.toml")
    looks = (*plan.looks, plan.final)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in range(n):
            trial = bh.simulate_trial(**_scenario_kwargs(DESIGN_BASE, {"hr_os": hr}),
                                      random_seed=seed)
            when = look_date(trial, looks[(look + seed) % 3], "os")
            out.append(population(plan.spec, trial.cut(when, warn=False)))
    return plan, out


def test_newton_finds_the_mode_an_independent_optimiser_finds():
    """The joint mode (Newton with line search) on a simulated interim cut where scipy's
    trust-exact used to stop short: the same log HR as BFGS on the same log density run to
    a tight tolerance, within 0.01 posterior SD; the approximation converged."""
    from scipy import optimize

    from bayes_hcc.models import laplace as lp
    from bayes_hcc.models.from_spec import build
    from bayes_hcc.models.graph import prepare

    plan, (cut,) = _interim_cuts(1)
    model = build(plan.spec)
    approx = bh.laplace(model, cut, "os")
    assert approx.converged and approx.n_grid >= 5
    *_, key = prepare(model, cut, "os")
    funcs = lp._FUNCTIONS[key]
    res = optimize.minimize(lambda x: tuple(-np.asarray(v, float) for v in
                                            funcs["all"](x)[:2]),
                            funcs["x0"], jac=True, method="BFGS", options={"gtol": 1e-9})
    x, *_, ok, _ = lp._newton(funcs["all"], funcs["x0"], np.ones(len(funcs["x0"]), bool))
    assert ok
    assert abs(float(funcs["effect"](res.x)[0]) - float(funcs["effect"](x)[0])) < \
        0.01 * approx.sd


def test_site_sd_integrated_on_a_grid_agrees_with_mcmc_on_interim_cuts():
    """Random site effects (6 sites): with the site SD integrated on a grid, P(HR < 1) on
    the probit scale is within 0.1 of MCMC's (4 x 1000 draws) on 6 simulated interim cuts.
    Measured on 40 such cuts against the mean of two MCMC runs: error SD 0.025, largest
    0.07, about the Monte Carlo error of the runs (0.03 per run); the joint Laplace
    approximation it replaced was off by 0.09 (SD), up to 0.18. 0.1 is over 3 Monte Carlo
    SDs of one run."""
    from scipy import stats

    from bayes_hcc.models.from_spec import build

    plan, cuts = _interim_cuts(6, hr=0.8)
    model = build(plan.spec)
    for cut in cuts:
        approx = bh.laplace(model, cut, "os")
        assert approx.converged and approx.n_grid >= 5
        draws = _mcmc(model, cut)
        p = np.clip((draws < 0).mean(), 10 / draws.size, 1 - 10 / draws.size)
        assert abs(approx.probit(1.0) - stats.norm.ppf(p)) < 0.1


def test_a_mixture_approximation_is_consistent():
    """Probabilities, probits and quantiles of a mixture agree with each other and with
    scipy's normal for one component; probits stay finite far in the tails."""
    from scipy import stats

    one = bh.LaplaceResult.normal(-0.2, 0.3)
    assert one.probit(1.0) == pytest.approx(0.2 / 0.3)
    assert one.quantile(0.9) == pytest.approx(stats.norm.ppf(0.9, -0.2, 0.3))
    mix = bh.LaplaceResult("log_hr", -0.2, 0.3, True, "", 0,
                           ((-0.3, 0.25, 0.3), (-0.15, 0.3, 0.5), (0.0, 0.35, 0.2)), 3)
    for h in (0.6, 1.0, 1.3):
        p = mix.prob_below(h)
        assert stats.norm.cdf(mix.probit(h)) == pytest.approx(p, rel=1e-10)
        assert mix.quantile(p) == pytest.approx(np.log(h), abs=1e-8)
    far = bh.LaplaceResult.normal(-3.0, 0.25)  # P(HR < 1) = 1 - 1e-33
    assert far.probit(1.0) == pytest.approx(12.0, rel=1e-9)
    assert bh.LaplaceResult.normal(3.0, 0.25).probit(1.0) == pytest.approx(-12.0, rel=1e-9)
    # arguments out of range are named (they failed inside scipy's root finder, or gave
    # 0 with a divide-by-zero warning); the quantiles at 0 and 1 are the infinities
    with pytest.raises(bh.BayesHCCError, match=r"quantile: q=1.5 must lie between 0 and 1"):
        mix.quantile(1.5)
    assert (mix.quantile(0.0), mix.quantile(1.0)) == (-np.inf, np.inf)
    with pytest.raises(bh.BayesHCCError, match=r"threshold=0 must be a ratio > 0"):
        mix.prob_below(0)


def test_laplace_takes_a_spec_and_refuses_what_is_not_a_model(example_trial):
    """bh.laplace(spec) raised AttributeError (so did an illness-death model or a name);
    a spec gives its own model, population and endpoint: the same approximation as the
    model it builds."""
    from pathlib import Path

    spec = Path(__file__).resolve().parents[2] / "models" / "primary_os.toml"
    assert bh.laplace(spec, example_trial) == bh.laplace(bh.build(bh.load_spec(spec)),
                                                         example_trial, "os")
    with pytest.raises(bh.BayesHCCError, match="laplace takes a single-endpoint model .* "
                       "not IllnessDeath"):
        bh.laplace(bh.IllnessDeath(), example_trial)
    with pytest.raises(bh.BayesHCCError, match=r"not str \('weibull'\)"):
        bh.laplace("weibull", example_trial)


def test_grid_approximation_does_not_depend_on_the_time_unit_or_row_order():
    """Random site effects (the grid over the site SD): the same trial in days, and with
    its rows in reverse order, gives the same P(HR < 1) (the probit to 1e-4: the modes are
    found to a Newton decrement of 1e-6) and the same grid."""
    model = bh.PiecewiseExponential()
    trial = bh.datasets.load_example_trial()
    base = bh.laplace(model, trial)
    days = bh.laplace(model, trial.to_unit("days"))
    frame = trial.to_frame().iloc[::-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shuffled = bh.TrialData.from_table(
            frame.drop(columns=[c for c in frame.columns
                                if c.endswith(("_time", "_event", "_lower"))
                                or c == "last_progression_free_date"]),
            control=trial.control, treatment=trial.treatment,
            assessments=trial.assessments.iloc[::-1])
    again = bh.laplace(model, shuffled)
    assert base.converged and base.n_grid >= 5
    for other in (days, again):
        assert other.probit(1.0) == pytest.approx(base.probit(1.0), abs=1e-4)
        assert other.n_grid == base.n_grid


def test_a_new_process_loads_the_compiled_approximation_from_disk(tmp_path, monkeypatch):
    """The approximation's compiled functions are stored (signed, without data) beside the
    sampler's graphs; a process that has not compiled them loads them (no compile: the
    compile step is made to fail) and gets the answers a fresh compile gives, for the data
    they were stored with and for other data. A damaged entry is rebuilt."""
    from bayes_hcc.models import _nutpie
    from bayes_hcc.models import laplace as lap

    path = tmp_path / "laplace.pkl"
    monkeypatch.setattr(_nutpie, "_graph_cache_file", lambda ident: path if ident else None)
    monkeypatch.setattr(lap, "_FUNCTIONS", {})
    trial = bh.datasets.load_example_trial()
    cut = trial.cut(pd.Timestamp("2018-12-31"), warn=False)
    model = bh.PiecewiseExponential()  # random site effects: the grid is used
    built_full, built_cut = bh.laplace(model, trial), bh.laplace(model, cut)
    assert path.exists() and built_full.n_grid >= 5
    stored = _nutpie.load_signed(path)
    values = [np.asarray(v.get_value()) for v in stored["shared"].values()]
    assert values and all(a.size == 0 if a.ndim else a == 0 for a in values)  # no data

    def no_compile(*args):
        raise AssertionError("compiled although a stored entry exists")

    with monkeypatch.context() as mp:  # a new process: nothing compiled in memory
        mp.setattr(lap, "_FUNCTIONS", {})
        mp.setattr(lap, "_compile_functions", no_compile)
        loaded_cut, loaded_full = bh.laplace(model, cut), bh.laplace(model, trial)
    for loaded, built in ((loaded_full, built_full), (loaded_cut, built_cut)):
        assert loaded.converged
        assert loaded.mean == pytest.approx(built.mean, abs=1e-9)
        assert loaded.sd == pytest.approx(built.sd, rel=1e-9)
    path.write_bytes(b"damaged")
    monkeypatch.setattr(lap, "_FUNCTIONS", {})
    again = bh.laplace(model, cut)
    assert again.mean == pytest.approx(built_cut.mean, abs=1e-9)
    assert _nutpie.load_signed(path)["shared"]  # the rebuilt entry replaced the damaged one


def test_newton_finds_a_known_mode_and_reports_what_it_cannot_find():
    """The mode finder on log densities with known answers (found by a coverage run: its
    failure paths had no test). A Gaussian: the mean and precision, exactly, in one step;
    a log density that is not finite, and one without a maximum (linear: Newton's steps
    never settle), are reported as not converged with the reason, never as a mode: fast
    mode then sends the look to MCMC (monitoring.screening.approximate returns None)."""
    from bayes_hcc.models.laplace import _newton

    mean = np.array([1.0, -2.0, 0.5])
    prec = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 4.0]])

    def gauss(x):
        d = x - mean
        return -0.5 * d @ prec @ d, -prec @ d, -prec

    x, v, K, it, ok, msg = _newton(gauss, np.zeros(3), np.ones(3, bool))
    assert ok and msg == "converged" and it <= 3
    np.testing.assert_allclose(x, mean, atol=1e-10)
    np.testing.assert_allclose(K, prec, atol=1e-12)
    # the second coordinate held at 0: the conditional mode of the other two
    x, *_, ok, _ = _newton(gauss, np.zeros(3), np.array([True, False, True]))
    # the free block's gradient is 0 where P_ff (x_f - m_f) = P_fh (m_h - x_h), x_h = 0
    cond = mean[[0, 2]] + np.linalg.solve(prec[np.ix_([0, 2], [0, 2])],
                                          prec[np.ix_([0, 2], [1])].ravel() * mean[1])
    assert ok and x[1] == 0.0
    np.testing.assert_allclose(x[[0, 2]], cond, atol=1e-10)
    *_, ok, msg = _newton(lambda x: (np.nan, np.zeros(1), -np.eye(1)), np.zeros(1),
                          np.ones(1, bool))
    assert not ok and msg == "the log density or its derivatives are not finite"
    *_, ok, msg = _newton(lambda x: (float(x[0]), np.ones(1), np.zeros((1, 1))), np.zeros(1),
                          np.ones(1, bool), max_iter=25)
    assert not ok and msg == "iteration limit"  # each step climbs, none settles
