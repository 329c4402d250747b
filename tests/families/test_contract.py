"""The family contract, parametrised over the registry (a new family is tested without
touching this file): the censored log-likelihood of exact, right-censored, interval-censored
and left-truncated observations against scipy quadrature of the family's own hazard, and
PyTensor against numpy."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate

from bayes_hcc.families.registry import FAMILIES
from bayes_hcc.models.likelihood import EXACT, INTERVAL, RIGHT, log1mexp, loglik

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
                INTERVAL: np.log(np.exp(-Hq) - np.exp(-Hu))}
    for kind, ref in expected.items():
        got = loglik(np, fam, p, eta, time=lower, kind=np.full(len(TIMES), kind),
                     upper=upper)[0]
        np.testing.assert_allclose(got, ref, rtol=1e-7, err_msg=str(kind))
        truncated = loglik(np, fam, p, eta, time=lower, kind=np.full(len(TIMES), kind),
                           upper=upper, entry=entry)[0]
        np.testing.assert_allclose(truncated, ref + He, rtol=1e-7, atol=1e-9)


def test_pytensor_and_numpy_agree(family):
    fam, p = family
    kinds = np.array([EXACT, RIGHT, INTERVAL, EXACT, INTERVAL])
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
