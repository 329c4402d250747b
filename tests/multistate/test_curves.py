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
