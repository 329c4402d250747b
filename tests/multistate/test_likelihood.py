"""The illness-death likelihood of every data pattern equals an independent computation:
the transition intensities written out here and integrated by scipy's adaptive quadrature,
for the Weibull, piecewise-exponential and M-spline baselines and both time scales; and the
compiled graph computes the same numbers as the numpy version."""

import numpy as np
import pytensor
import pytest
from scipy import integrate

import bayes_hcc as bh
from bayes_hcc.families.mspline import MSplineFamily
from bayes_hcc.families.piecewise import PiecewiseFamily
from bayes_hcc.families.weibull import WeibullFamily
from bayes_hcc.multistate.likelihood import TRANSITIONS, layout, loglik_numpy
from tests.helpers import mspline_hazards

# one patient per pattern: exact progression then death / then censored; progression in an
# interval then death / censored; never assessed (L = 0) progression in (0, R]; no
# progression seen, then death / censored (with time between the last scan and T, and
# without); a progression seen at the end of follow-up
L = np.array([2.0, 1.0, 0.0, 1.0, 3.0, 2.5, 0.0, 4.0, 0.5, 1.2])
R = np.array([2.0, 3.0, 1.5, 2.0, np.inf, np.inf, np.inf, 6.0, 0.5, 5.0])
T = np.array([7.0, 9.0, 4.0, 8.0, 8.0, 2.5, 5.0, 6.0, 3.0, 5.0])
D = np.array([1, 0, 1, 0, 1, 0, 1, 1, 0, 1])
ARM = np.array([0, 1, 0, 1, 1, 0, 1, 1, 0, 1])
BETA = (-0.3, 0.2, -0.1)
CUTS = np.array([1.0, 3.5, 6.0])
#: M-spline: cubic, knots at CUTS, boundary before the longest follow-up (T = 9), so the
#: hazard's constant extrapolation beyond it is in the likelihood too; 7 basis functions
BOUNDARY = 8.0
_SIMPLEX = np.array([[1.0, 2.0, 0.5, 1.5, 1.0, 0.8, 1.2], [0.6, 1.0, 1.4, 1.0, 0.9, 1.1, 2.0],
                     [2.0, 1.5, 1.0, 0.5, 1.0, 1.3, 0.7]])
PARAMS = {
    "weibull": [{"log_lambda": -2.0, "log_shape": np.log(1.3)},
                {"log_lambda": -3.0, "log_shape": np.log(0.8)},   # k < 1: singular at 0
                {"log_lambda": -1.5, "log_shape": np.log(0.9)}],  # singular at T - u = 0
    "piecewise": [{"log_baseline_hazard": np.array([-2.0, -1.5, -2.2, -1.8])},
                  {"log_baseline_hazard": np.array([-3.0, -2.5, -2.8, -3.1])},
                  {"log_baseline_hazard": np.array([-1.2, -1.0, -1.6, -1.4])}],
    "mspline": [{"log_scale": ls, "coefficients": c / c.sum()}
                for ls, c in zip((0.2, -1.0, 0.8), _SIMPLEX)],
}


def hazards(kind, p, eta):
    """Hazard and cumulative hazard, written from their definitions."""
    if kind == "mspline":
        return mspline_hazards(CUTS, BOUNDARY, p, eta)
    if kind == "weibull":
        lam, k = np.exp(p["log_lambda"]), np.exp(p["log_shape"])
        return (lambda t: lam * k * t ** (k - 1) * np.exp(eta),
                lambda t: lam * t ** k * np.exp(eta))
    edges = np.concatenate([[0.0], CUTS, [np.inf]])
    rate = np.exp(p["log_baseline_hazard"] + eta)

    def h(t):
        return rate[max(np.searchsorted(edges, t, side="left") - 1, 0)]

    def H(t):
        return sum(r * max(0.0, min(t, b) - a) for r, a, b in zip(rate, edges[:-1], edges[1:]))

    return h, H


def reference(kind, params, etas, l_, r_, t_, d_, scale):
    (h01, H01), (h02, H02), (h12, H12) = (hazards(kind, p, e) for p, e in zip(params, etas))

    def s0(u):
        return np.exp(-H01(u) - H02(u))

    def after(u):  # survival from progression at u to t_, times the death density if dead
        if scale == "markov":
            return np.exp(-(H12(t_) - H12(u))) * (h12(t_) if d_ else 1.0)
        return np.exp(-H12(t_ - u)) * (h12(t_ - u) if d_ else 1.0)

    def f(u):
        return s0(u) * h01(u) * after(u)

    def quad(a, b):
        knots = [*CUTS, BOUNDARY]
        pts = [c for c in knots if a < c < b] + [t_ - c for c in knots if a < t_ - c < b]
        return integrate.quad(f, a, b, points=pts or None, limit=500, epsabs=0,
                              epsrel=1e-11)[0]

    if np.isfinite(r_) and r_ == l_:
        return np.log(f(r_))
    if np.isfinite(r_):
        return np.log(quad(l_, r_))
    integral = quad(l_, t_) if t_ > l_ else 0.0
    return np.log(s0(t_) * (h02(t_) if d_ else 1.0) + integral)


def data():
    return bh.IllnessDeathData.from_arrays(arm=ARM, site=None, prog_lower=L, prog_upper=R,
                                           time=T, death=D)


def families(kind):
    return {"weibull": [WeibullFamily()] * 3, "piecewise": [PiecewiseFamily(CUTS)] * 3,
            "mspline": [MSplineFamily(CUTS, BOUNDARY)] * 3}[kind]


@pytest.mark.parametrize("scale", ["markov", "semi_markov"])
@pytest.mark.parametrize("kind", ["weibull", "piecewise", "mspline"])
def test_every_pattern_matches_scipy_quadrature(kind, scale):
    """Piecewise: exact up to rounding (1e-12; exp of a linear function per piece). Weibull:
    1e-7 relative (graded quadrature against adaptive quadrature at 1e-11, with hazards
    singular at 0 and, on the clock-reset scale, at T - u = 0). M-spline: 1e-7 as Weibull's
    (a smooth hazard: the integrands are not polynomials, and the quadrature splits at the
    knots and the boundary, where the hazard's derivatives jump)."""
    params = PARAMS[kind]
    lay = layout(data(), families(kind), scale)
    got = loglik_numpy(families(kind), [{k: np.atleast_1d(v)[None] if np.ndim(v) else
                                         np.array([v]) for k, v in p.items()} for p in params],
                       [(b * ARM)[None, :].astype(float) for b in BETA], lay, len(T))[0]
    want = np.array([reference(kind, params, [b * ARM[i] for b in BETA], L[i], R[i], T[i],
                               D[i], scale) for i in range(len(T))])
    tol = 1e-12 if kind == "piecewise" else 1e-7
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("baseline", ["weibull_ph", "piecewise_exponential", "exponential_ph",
                                      "gompertz_ph", "mspline_ph"])
def test_the_compiled_graph_computes_the_numpy_likelihood(baseline):
    """The model's likelihood term at a random point equals the numpy likelihood of the
    parameters the graph holds at that point (site effects included)."""
    sites = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    d = bh.IllnessDeathData.from_arrays(arm=ARM, site=sites, prog_lower=L, prog_upper=R,
                                        time=T, death=D)
    model = bh.IllnessDeath(baseline, time_scale="semi_markov", site_effect="random",
                            cuts=CUTS if baseline == "piecewise_exponential" else None)
    fams = model.families(d)
    priors = [model.priors_for(f, t) for f, t in zip(fams, TRANSITIONS)]
    m = model._build(fams, priors, model._data_arrays(d, fams, priors), d)
    names = [f"{t}::{p}" for t in TRANSITIONS for p in fams[0].params]
    outs = [m.potentials[0], m["log_hr"], m["site_effect"]] + [m[n] for n in names]
    fn = pytensor.function(m.value_vars, outs, on_unused_input="ignore", mode="FAST_COMPILE")
    rng = np.random.default_rng(3)
    point = {v.name: np.asarray(x + 0.3 * rng.standard_normal(np.shape(x)))
             for v, x in zip(m.value_vars, (m.initial_point(1)[v.name] for v in m.value_vars))}
    pot, log_hr, site, *vals = fn(*[point[v.name] for v in m.value_vars])
    n_par = len(fams[0].params)
    params = [{p: np.asarray(vals[j * n_par + i])[None] for i, p in enumerate(fams[0].params)}
              for j in range(3)]
    etas = [(log_hr[j] * ARM + site[j][sites])[None, :] for j in range(3)]
    want = loglik_numpy(fams, params, etas, layout(d, fams, "semi_markov"), len(T)).sum()
    assert pot == pytest.approx(want, rel=1e-10)


def test_covariates_enter_every_transition_with_their_own_coefficients():
    """With covariates, the graph's likelihood equals the numpy likelihood at etas that add
    X @ beta_j of each transition (two covariates, Weibull, clock forward)."""
    from dataclasses import replace

    sites = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    X = np.random.default_rng(5).standard_normal((len(T), 2))
    d = replace(bh.IllnessDeathData.from_arrays(arm=ARM, site=sites, prog_lower=L,
                                                prog_upper=R, time=T, death=D),
                X=X, covariate_labels=("a", "b"),
                covariate_info=(("a", {"kind": "numeric", "mean": 0.0, "sd": 1.0,
                                       "columns": [0]}),
                                ("b", {"kind": "numeric", "mean": 0.0, "sd": 1.0,
                                       "columns": [1]})))
    model = bh.IllnessDeath("weibull_ph", site_effect="random", covariates=("a", "b"))
    fams = model.families(d)
    priors = [model.priors_for(f, t) for f, t in zip(fams, TRANSITIONS)]
    assert all(p["beta"].to_dict()["sigma"] == 1.0 for p in priors)
    m = model._build(fams, priors, model._data_arrays(d, fams, priors), d)
    names = [f"{t}::{p}" for t in TRANSITIONS for p in fams[0].params]
    betas = [f"{t}::beta" for t in TRANSITIONS]
    outs = [m.potentials[0], m["log_hr"], m["site_effect"]] + [m[n] for n in names + betas]
    fn = pytensor.function(m.value_vars, outs, on_unused_input="ignore", mode="FAST_COMPILE")
    rng = np.random.default_rng(4)
    point = {v.name: np.asarray(x + 0.3 * rng.standard_normal(np.shape(x)))
             for v, x in zip(m.value_vars, (m.initial_point(1)[v.name] for v in m.value_vars))}
    pot, log_hr, site, *vals = fn(*[point[v.name] for v in m.value_vars])
    n_par = len(fams[0].params)
    params = [{p: np.asarray(vals[j * n_par + i])[None] for i, p in enumerate(fams[0].params)}
              for j in range(3)]
    beta = vals[3 * n_par:]
    assert all(np.abs(b).sum() > 0 for b in beta)
    etas = [(log_hr[j] * ARM + site[j][sites] + X @ beta[j])[None, :] for j in range(3)]
    want = loglik_numpy(fams, params, etas, layout(d, fams, "markov"), len(T)).sum()
    assert pot == pytest.approx(want, rel=1e-10)
    without = [(log_hr[j] * ARM + site[j][sites])[None, :] for j in range(3)]
    assert pot != pytest.approx(loglik_numpy(fams, params, without,
                                             layout(d, fams, "markov"), len(T)).sum(),
                                rel=1e-6)


@pytest.mark.parametrize("scale", ["markov", "semi_markov"])
@pytest.mark.parametrize("kind", ["weibull", "piecewise"])
def test_a_progression_seen_on_the_last_day_of_follow_up(kind, scale):
    """Progression seen exactly at T and censored that day (a data cut on the day of the
    scan): no time after progression, so the contribution is S0(T) a01(T). On the clock-reset
    scale the death hazard is read at T - R = 0, where a Weibull hazard with shape < 1 is
    infinite; it enters with weight 0 (no death), and must leave the likelihood and its
    gradient finite (it was NaN). Same references as above."""
    lo, up, t, dd, arm = (np.array([3.0, 1.0, 0.0]), np.array([3.0, 2.0, np.inf]),
                          np.array([3.0, 5.0, 4.0]), np.array([0, 1, 1]), np.array([0, 1, 1]))
    d = bh.IllnessDeathData.from_arrays(arm=arm, site=None, prog_lower=lo, prog_upper=up,
                                        time=t, death=dd)
    params = PARAMS[kind]  # the death-after-progression Weibull shape is 0.9 < 1
    got = loglik_numpy(families(kind), [{k: np.atleast_1d(v)[None] if np.ndim(v) else
                                         np.array([v]) for k, v in p.items()} for p in params],
                       [(b * arm)[None, :].astype(float) for b in BETA],
                       layout(d, families(kind), scale), 3)[0]
    want = [reference(kind, params, [b * arm[i] for b in BETA], lo[i], up[i], t[i], dd[i],
                      scale) for i in range(3)]
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7)

    model = bh.IllnessDeath("weibull_ph" if kind == "weibull" else "piecewise_exponential",
                            time_scale=scale, site_effect="none",
                            cuts=CUTS if kind == "piecewise" else None)
    fams = model.families(d)
    priors = [model.priors_for(f, tr) for f, tr in zip(fams, TRANSITIONS)]
    m = model._build(fams, priors, model._data_arrays(d, fams, priors), d)
    point = m.initial_point(1)
    for name in point:
        if name.endswith("log_shape"):
            point[name] = np.asarray(np.log(0.7))
    fn = pytensor.function(m.value_vars, [m.logp(), *pytensor.grad(m.logp(), m.value_vars)],
                           mode="FAST_COMPILE")
    values = fn(*[point[v.name] for v in m.value_vars])
    assert all(np.isfinite(v).all() for v in values)
