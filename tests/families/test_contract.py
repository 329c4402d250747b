"""The family contract, parametrised over the registry (a new family is tested without
touching this file): the censored log-likelihood of exact, right-censored, interval-censored
and left-truncated observations against scipy quadrature of the family's own hazard, and
PyTensor against numpy."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate

from bayes_hcc.families.base import Family
from bayes_hcc.families.registry import FAMILIES
from bayes_hcc.models.likelihood import EXACT, INTERVAL, LEFT, RIGHT, log1mexp, loglik

ETA = 0.3
TIMES = np.array([0.4, 2.0, 5.5, 13.0, 30.0])


@pytest.fixture(params=list(FAMILIES))
def family(request):
    fam = FAMILIES[request.param].example()
    return fam, fam.example_params()


def _hazard(fam, p, t):
    tf = fam.time_features(np.array([t]))
    return float(np.exp(fam.log_hazard_x(np, p, tf, np.array([[ETA]])))[0, 0])


def _cumhaz_quad(fam, p, t):
    """Integral of the hazard from 0 to t (scipy), split at the hazard's breakpoints."""
    points = [b for b in fam.breakpoints() if 0 < b < t]
    value, _ = integrate.quad(lambda u: _hazard(fam, p, u), 0.0, t, points=points or None,
                              limit=200, epsabs=1e-13, epsrel=1e-11)
    return value


def test_cumulative_hazard_is_the_integral_of_the_hazard(family):
    fam, p = family
    H = fam.cumhaz_x(np, p, fam.time_features(TIMES), np.full((1, len(TIMES)), ETA))[0]
    quad = np.array([_cumhaz_quad(fam, p, t) for t in TIMES])
    np.testing.assert_allclose(H, quad, rtol=1e-8)  # quadrature accuracy ~1e-10


def test_every_censoring_kind_against_quadrature(family):
    fam, p = family
    lower = TIMES
    upper = TIMES * 1.7
    entry = TIMES * 0.25
    eta = np.full((1, len(TIMES)), ETA)
    Hq = np.array([_cumhaz_quad(fam, p, t) for t in lower])
    Hu = np.array([_cumhaz_quad(fam, p, t) for t in upper])
    He = np.array([_cumhaz_quad(fam, p, t) for t in entry])
    logh = np.log([_hazard(fam, p, t) for t in lower])
    expected = {EXACT: logh - Hq, RIGHT: -Hq,
                INTERVAL: np.log(np.exp(-Hq) - np.exp(-Hu)),
                LEFT: np.log(-np.expm1(-Hu))}  # log(1 - S(R)): the lower bound is not read
    for kind, ref in expected.items():
        got = loglik(np, fam, p, eta, time=lower, kind=np.full(len(TIMES), kind),
                     upper=upper)[0]
        # atol: a log-likelihood near 0 (S(R) ~ 1e-10 for LEFT) carries the quadrature's
        # absolute error (~1e-16), not its relative one
        np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-12, err_msg=str(kind))
        truncated = loglik(np, fam, p, eta, time=lower, kind=np.full(len(TIMES), kind),
                           upper=upper, entry=entry)[0]
        np.testing.assert_allclose(truncated, ref + He, rtol=1e-7, atol=1e-9)


def test_pytensor_and_numpy_agree(family, python_linker):
    fam, p = family
    kinds = np.array([EXACT, RIGHT, INTERVAL, LEFT, INTERVAL])
    upper = TIMES * 1.5
    symbols = {k: pt.tensor(k, shape=np.asarray(v).shape[1:], dtype="float64")
               for k, v in p.items()}
    eta = pt.vector("eta")
    def features(t):  # in the graph, times enter as their features (data)
        return {k: pt.as_tensor(v) for k, v in fam.time_features(t).items()}

    out = loglik(pt, fam, symbols, eta, time=features(TIMES), kind=pt.as_tensor(kinds),
                 upper=features(upper), entry=features(TIMES * 0.1))
    fn = pytensor.function([*symbols.values(), eta], out)
    got = fn(*[np.asarray(v)[0] for v in p.values()], np.full(len(TIMES), ETA))
    ref = loglik(np, fam, p, np.full((1, len(TIMES)), ETA), time=TIMES, kind=kinds,
                 upper=upper, entry=TIMES * 0.1)[0]
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_interval_term_is_stable(family):
    """Narrow intervals and intervals deep in the tail, where log(S(L) - S(R)) computed
    directly loses every digit, stay finite and match the analytic limit."""
    fam, p = family
    t = np.array([3.0])
    eta = np.array([[ETA]])
    narrow = loglik(np, fam, p, eta, time=t, kind=np.array([INTERVAL]), upper=t * (1 + 1e-9))
    # (L, L + d]: log(S(L) h(L) d) to first order
    d = 3e-9
    tf = fam.time_features(t)
    first_order = -fam.cumhaz_x(np, p, tf, eta) + fam.log_hazard_x(np, p, tf, eta) + np.log(d)
    np.testing.assert_allclose(narrow, first_order, rtol=1e-6)
    far = loglik(np, fam, p, eta + 8.0, time=np.array([200.0]), kind=np.array([INTERVAL]),
                 upper=np.array([400.0]))
    assert np.isfinite(far).all()


def test_log1mexp():
    small = np.array([1e-12, 1e-3, 0.5, np.log(2.0)])
    np.testing.assert_allclose(log1mexp(np, small), np.log(-np.expm1(-small)), rtol=1e-12)
    large = np.array([5.0, 20.0, 50.0])  # log(1 - e^-x) = -e^-x - e^-2x / 2 - ... exactly
    series = -sum(np.exp(-k * large) / k for k in range(1, 40))
    np.testing.assert_allclose(log1mexp(np, large), series, rtol=1e-9)
    np.testing.assert_allclose(log1mexp(np, np.array([800.0])), [-np.exp(-800.0)],
                               rtol=0, atol=1e-300)


# -- derived quantities: survival, median and RMST of a population, against quadrature --------

def _population_reference(fam, p, etas, w):
    """S(t) = sum_g w_g exp(-H(t | eta_g)) with H by quadrature of the family's hazard."""
    def surv(t):
        return sum(wg * np.exp(-_cumhaz_quad_eta(fam, p, t, e)) for wg, e in zip(w, etas))
    return surv


def _cumhaz_quad_eta(fam, p, t, eta):
    def h(u):
        tf = fam.time_features(np.array([u]))
        return float(np.exp(fam.log_hazard_x(np, p, tf, np.array([[eta]])))[0, 0])
    points = [b for b in fam.breakpoints() if 0 < b < t]
    return integrate.quad(h, 0.0, t, points=points or None, limit=200, epsabs=1e-13,
                          epsrel=1e-11)[0] if t > 0 else 0.0


def test_survival_median_and_rmst_of_a_population(family):
    """Two groups (weights 0.3 / 0.7, linear predictors 0.3 and -0.5): the generic numpy
    survival, median (bisection between the groups' medians) and RMST (Gauss-Legendre)
    against scipy quadrature and root finding on the family's hazard."""
    from scipy import optimize

    from bayes_hcc.quantities import _core

    fam, p = family
    etas, w = np.array([ETA, -0.5]), np.array([0.3, 0.7])
    ref = _population_reference(fam, p, etas, w)
    times = np.array([0.5, 3.0, 8.0, 25.0])
    got = _core.population_survival(fam, p, etas[None, :], w, times)[0]
    np.testing.assert_allclose(got, [ref(t) for t in times], rtol=1e-8)
    each = _core.population_survival_each(fam, p, etas[None, :], w, np.array([8.0]))
    np.testing.assert_allclose(each, [ref(8.0)], rtol=1e-8)
    median = _core.population_median(fam, p, etas[None, :], w)[0]
    root = optimize.brentq(lambda t: ref(t) - 0.5, 1e-6, 1e4, xtol=1e-12)
    assert median == pytest.approx(root, rel=1e-8)
    tau = 18.0
    rmst = _core.population_rmst(fam, p, etas[None, :], w, tau)[0]
    points = [b for b in fam.breakpoints() if 0 < b < tau]
    quad = integrate.quad(ref, 0.0, tau, points=points or None, limit=200)[0]
    assert rmst == pytest.approx(quad, rel=1e-7)


def test_inversion_returns_the_requested_cumulative_hazard(family):
    """time_at_cumhaz (a closed form, or the generic bisection) inverts H(t | eta); targets
    span 1e-6 to 20 (1e-6: first events; 20: far in the tail)."""
    fam, p = family
    h = np.array([[1e-6, 0.01, 0.3, np.log(2.0), 2.0, 20.0]])
    eta = np.full(h.shape, ETA)
    t = fam.time_at_cumhaz(p, h, eta)
    finite = np.isfinite(t)  # a hazard that levels off never reaches some targets: inf
    np.testing.assert_allclose(fam.cumhaz_at(p, t[finite][None, :], eta[finite][None, :]),
                               h[finite][None, :], rtol=1e-9)
    assert finite[0, :4].all()
    # and the generic bisection agrees with the family's own inversion
    np.testing.assert_allclose(Family.time_at_cumhaz(fam, p, h, eta)[finite], t[finite],
                               rtol=1e-9)


def test_simulation_by_inversion_reproduces_the_survival_function(family):
    """20,000 event times by inversion (H(T | eta) = E, E ~ Exp(1)) follow the family's own
    survival function: Kolmogorov-Smirnov p > 0.001 (a correct sampler fails 1 in 1000)."""
    from scipy import stats

    fam, p = family
    rng = np.random.default_rng(20260)
    n = 20_000
    times = fam.time_at_cumhaz(p, rng.exponential(size=(1, n)), np.full((1, n), ETA))[0]
    cure = np.exp(-fam.cumhaz_at(p, np.array([1e6]), np.array([[ETA]]))[0, 0, 0])
    times = times[np.isfinite(times)]

    def cdf(t):
        return (1.0 - np.exp(-fam.cumhaz_at(p, np.asarray(t, float), np.array([[ETA]]))[0, 0])) \
            / (1.0 - cure)

    assert stats.kstest(times, cdf).pvalue > 1e-3


def test_prior_draws_reproduce_the_prior_predictive_survival(family):
    """Event times simulated from 20,000 prior draws of the baseline (one time per draw)
    follow the prior-predictive survival function E[S(t | theta)], estimated on another
    20,000 prior draws. The test uses 2,000 of the times: it detects a CDF error of about
    0.04, ten times the Monte Carlo error of the reference (<= 0.5 / sqrt(20,000)), which
    4,000 reference draws did not leave room for. KS p > 0.001."""
    from scipy import stats

    fam, _ = family
    priors = fam.default_priors()
    rng = np.random.default_rng(7)
    n = 20_000
    sim = fam.draw_prior(priors, n, rng)
    t = fam.time_at_cumhaz(sim, rng.exponential(size=(n, 1)), np.zeros((n, 1)))[:, 0]
    ref = fam.draw_prior(priors, n, rng)
    tail = np.exp(-fam.cumhaz_at(ref, np.array([1e12]))[:, 0, 0]).mean()
    t = t[np.isfinite(t) & (t < 1e12)]

    def cdf(x):
        x = np.atleast_1d(np.asarray(x, float))
        out = np.empty(len(x))
        for i in range(0, len(x), 50):  # (draws, 50 times) at a time
            out[i:i + 50] = (1.0 - np.exp(-fam.cumhaz_at(ref, x[i:i + 50])[:, 0, :])).mean(0)
        return out / (1.0 - tail)

    assert stats.kstest(t[:2000], cdf).pvalue > 1e-3
