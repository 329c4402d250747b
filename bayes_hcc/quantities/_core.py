"""numpy core of the posterior quantities: arrays with a leading sample axis (S, ...).

A population is a set of groups g with weights w_g and linear predictors eta_g (S, G) per
arm; population survival is S(t) = sum_g w_g exp(-exp(eta_g) H0(t)).
"""

from __future__ import annotations

import numpy as np

LOG2 = float(np.log(2.0))
_CHUNK = 64


def population_survival(family, params, eta, w, t) -> np.ndarray:
    """S(t) for times t (T,): returns (S, T). eta (S, G), w (G,)."""
    t = np.asarray(t, float)
    if not family.proportional_hazards:  # AFT: S(t | eta) directly
        out = np.zeros((eta.shape[0], len(t)))
        for g0 in range(0, eta.shape[1], _CHUNK):
            e = eta[:, g0:g0 + _CHUNK, None]
            out += np.einsum("sgt,g->st", np.exp(family.log_survival(params, t[None, None, :],
                                                                     e)), w[g0:g0 + _CHUNK])
        return out
    H0 = family.cumhaz(params, t)  # (S, T)
    out = np.zeros_like(H0)
    for g0 in range(0, eta.shape[1], _CHUNK):
        e = np.exp(eta[:, g0:g0 + _CHUNK])  # (S, g)
        out += np.einsum("sgt,g->st", np.exp(-e[:, :, None] * H0[:, None, :]),
                         w[g0:g0 + _CHUNK])
    return out


def population_survival_each(family, params, eta, w, t) -> np.ndarray:
    """S at one time per draw: t (S,) -> (S,)."""
    if not family.proportional_hazards:
        return np.exp(family.log_survival(params, np.asarray(t, float)[:, None], eta)) @ w
    H0 = family.cumhaz_each(params, t)  # (S,)
    return np.exp(-np.exp(eta) * H0[:, None]) @ w


def population_median(family, params, eta, w, *, iterations: int = 80) -> np.ndarray:
    """Median of the population survival per draw, (S,), by bisection.

    The mixture median lies between the medians of the groups with the largest and the
    smallest eta, which the family gives in closed form.
    """
    if family.proportional_hazards:
        lo = family.inverse_cumhaz(params, LOG2 / np.exp(eta.max(axis=1, keepdims=True)))[:, 0]
        hi = family.inverse_cumhaz(params, LOG2 / np.exp(eta.min(axis=1, keepdims=True)))[:, 0]
    else:  # AFT: a larger eta means longer times
        lo = family.median(params, eta.min(axis=1, keepdims=True))[:, 0]
        hi = family.median(params, eta.max(axis=1, keepdims=True))[:, 0]
    if eta.shape[1] == 1 or np.allclose(lo, hi, rtol=1e-13, atol=0):
        return lo
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = population_survival_each(family, params, eta, w, mid) > 0.5
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return 0.5 * (lo + hi)


def quadrature_nodes(tau: float, breakpoints, n: int = 32):
    """Gauss-Legendre nodes and weights on [0, tau], split at the hazard's breakpoints and
    geometrically near 0 (where a Weibull with shape < 1 has a singular derivative)."""
    edges = {0.0, tau, *(tau * 10.0 ** -k for k in range(1, 7))}
    edges |= {float(b) for b in breakpoints if 0 < b < tau}
    edges = np.array(sorted(edges))
    x, wx = np.polynomial.legendre.leggauss(n)
    nodes, weights = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        nodes.append(0.5 * (b - a) * x + 0.5 * (b + a))
        weights.append(0.5 * (b - a) * wx)
    return np.concatenate(nodes), np.concatenate(weights)


def population_rmst(family, params, eta, w, tau: float) -> np.ndarray:
    """Restricted mean survival time up to tau: integral of S(t) over [0, tau], (S,)."""
    nodes, weights = quadrature_nodes(tau, family.breakpoints())
    return population_survival(family, params, eta, w, nodes) @ weights
