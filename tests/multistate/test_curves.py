"""Derived quantities of the illness-death model against closed forms and independent
computations (no MCMC: the curves are functions of parameter draws)."""

import numpy as np
import pytest
from scipy import integrate

from bayes_hcc.families.weibull import WeibullFamily
from bayes_hcc.multistate.curves import curves

FAM = [WeibullFamily()] * 3


def params(lam, k):
    return [{"log_lambda": np.array([np.log(a)]), "log_shape": np.array([np.log(b)])}
            for a, b in zip(lam, k)]


def etas(beta, arm):
    return [np.array([[b * arm]]) for b in beta]


@pytest.mark.parametrize("scale", ["markov", "semi_markov"])
def test_death_hazard_unchanged_by_progression_gives_weibull_os(scale):
    """Markov with a12 = a02: OS = exp(-H02), so the OS hazard ratio is exactly the
    death HR at every time; the progression curve is exp(-H01) and PFS their product."""
    lam, k, beta = (0.2, 0.05, 0.05), (1.3, 1.1, 1.1), (-0.5, -0.3, -0.3)
    t = np.array([0.5, 2.0, 6.0, 15.0])
    if scale == "semi_markov":  # a constant death hazard is the same on both clocks
        k = (1.3, 1.0, 1.0)
    c = [curves(FAM, params(lam, k), etas(beta, arm), scale, t, density=True)
         for arm in (0, 1)]
    for arm in (0, 1):
        e = np.exp(np.array(beta) * arm)
        # quadrature: 1e-7 relative (the likelihood's accuracy)
        np.testing.assert_allclose(c[arm]["os"][0], np.exp(-lam[1] * e[1] * t ** k[1]),
                                   rtol=1e-7)
        np.testing.assert_allclose(c[arm]["pfs"][0], np.exp(-(lam[0] * e[0] * t ** k[0]
                                                              + lam[1] * e[1] * t ** k[1])),
                                   rtol=1e-12)
    hr = (c[1]["os_density"] / c[1]["os"]) / (c[0]["os_density"] / c[0]["os"])
    np.testing.assert_allclose(hr[0], np.exp(beta[1]), rtol=1e-6)


@pytest.mark.parametrize("scale", ["markov", "semi_markov"])
def test_os_density_is_minus_the_derivative_of_os_and_hr_varies(scale):
    """Death hazard 3x higher after progression: the OS density equals -dOS/dt (central
    differences, 1e-5), and the marginal OS HR moves over time although no transition HR
    does."""
    lam, k, beta = (0.2, 0.03, 0.09), (1.3, 1.1, 1.1), (-0.5, -0.3, -0.3)
    t = np.array([1.0, 3.0, 6.0, 12.0])
    h = 1e-4
    c = curves(FAM, params(lam, k), etas(beta, 0), scale, t, density=True)
    up = curves(FAM, params(lam, k), etas(beta, 0), scale, t + h)["os"]
    down = curves(FAM, params(lam, k), etas(beta, 0), scale, t - h)["os"]
    np.testing.assert_allclose(c["os_density"], -(up - down) / (2 * h), rtol=1e-5)
    c1 = curves(FAM, params(lam, k), etas(beta, 1), scale, t, density=True)
    hr = (c1["os_density"] / c1["os"]) / (c["os_density"] / c["os"])
    assert np.ptp(hr) > 0.03  # not proportional hazards on the OS scale


def test_rmst_against_quadrature_of_the_closed_form():
    """OS = exp(-lam t^k) when progression does not change the death hazard: the
    trapezoid RMST on the fit's grid is checked in test_fit; here the curve itself
    integrates to scipy's quad of the closed form."""
    lam, k = (0.2, 0.05, 0.05), (1.3, 1.1, 1.1)
    grid = np.linspace(0, 24, 400)
    os_ = curves(FAM, params(lam, k), etas((0, 0, 0), 0), "markov", grid)["os"][0]
    want = integrate.quad(lambda s: np.exp(-lam[1] * s ** k[1]), 0, 24)[0]
    assert np.trapezoid(os_, grid) == pytest.approx(want, abs=1e-4)


def _os_by_quad(H, log_a, t, kinks=()):
    """OS(t) on the clock-forward scale, scipy quad of the definition (H, log_a: per
    transition functions of u; ``kinks``: where the hazards jump)."""
    def f(u):
        return np.exp(-H[0](u) - H[1](u) + log_a[0](u) - (H[2](t) - H[2](u)))
    inside = [c for c in kinks if 0 < c < t] or None
    return np.exp(-H[0](t) - H[1](t)) + integrate.quad(f, 0, t, epsabs=1e-13, epsrel=1e-11,
                                                       limit=200, points=inside)[0]


@pytest.mark.parametrize("case", ["weibull falling hazard", "weibull steep after progression",
                                  "piecewise"])
def test_markov_os_accumulated_along_the_times_equals_the_direct_integral(case):
    """On the clock-forward scale the OS integral is accumulated between neighbouring times
    (``curves._markov_integral``) instead of integrated from 0 for each time. Against scipy
    quad of the definition, on a dense grid as the medians use and on a few unsorted and
    repeated times with 0: within 1e-8, except with a progression hazard singular at 0
    (Weibull shape 0.6), where the graded first piece (the likelihood's quadrature) leaves
    about 1e-6 (the direct quadrature: 7e-6), so 2e-6 there. Against the direct quadrature
    (``direct=True``): within 1e-5 (the direct one's own error). The other cases: a death
    hazard after progression rising to 2 per month (exp(H12) reaches e^60) and a piecewise
    hazard with its cuts between and on the times."""
    from bayes_hcc.families.piecewise import PiecewiseFamily

    cuts = np.array([2.0, 5.0, 9.0])
    if case == "piecewise":
        fam = [PiecewiseFamily(cuts)] * 3
        rates = np.array([[0.30, 0.20, 0.15, 0.10], [0.02, 0.03, 0.04, 0.05],
                          [0.10, 0.20, 0.40, 0.30]])
        par = [{"log_baseline_hazard": np.log(r)[None]} for r in rates]
        edges = np.concatenate([[0.0], cuts])

        def Hj(j):
            return lambda u: float(sum(rates[j][i] * max(0.0, min(u, hi) - lo) for i, (lo, hi)
                                       in enumerate(zip(edges, [*cuts, np.inf]))))
        H = [Hj(j) for j in range(3)]
        log_a = [lambda u, j=j: np.log(rates[j][np.searchsorted(cuts, u, side="right")])
                 for j in range(3)]
    else:
        lam, k = ((0.3, 0.04, 0.1), (0.6, 1.1, 1.2)) if case == "weibull falling hazard" \
            else ((0.2, 0.03, 0.5), (1.3, 1.1, 1.3))
        fam, par = FAM, params(lam, k)
        H = [lambda u, j=j: lam[j] * u ** k[j] for j in range(3)]
        log_a = [lambda u, j=j: np.log(lam[j] * k[j]) + (k[j] - 1) * np.log(u)
                 for j in range(3)]
    tol = 2e-6 if case == "weibull falling hazard" else 1e-8
    eta = etas((0, 0, 0), 0)
    dense = np.linspace(0.0, 40.0, 600)
    few = np.array([12.0, 0.0, 5.0, 5.0, 30.0, 1e-3, 0.2, 2.0, 9.0])
    for t in (dense, few):
        got = curves(fam, par, eta, "markov", t, density=True)
        direct = curves(fam, par, eta, "markov", t, density=True, direct=True)
        for key in got:
            np.testing.assert_allclose(got[key], direct[key], rtol=0, atol=1e-5,
                                       err_msg=f"{case}: {key}")
        some = np.flatnonzero(t > 0)[::15]
        want = [_os_by_quad(H, log_a, x, cuts if case == "piecewise" else ()) for x in t[some]]
        np.testing.assert_allclose(got["os"][0, some], want, rtol=0, atol=tol, err_msg=case)
