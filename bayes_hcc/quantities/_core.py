"""numpy core of the posterior quantities: arrays with a leading sample axis (S, ...).

A population is a set of groups g with weights w_g and linear predictors eta_g (S, G) per
arm; population survival is S(t) = sum_g w_g exp(-H(t | eta_g)) (``Family.cumhaz_at``).
"""

from __future__ import annotations

import numpy as np

LOG2 = float(np.log(2.0))
_CHUNK = 64


def quantiles(x, q) -> np.ndarray:
    """``np.quantile`` (linear interpolation) of draws some of which may be infinite (a
    median whose survival curve never reaches 0.5 is +inf, a difference with it +-inf):
    the infinity where the quantile's interpolation touches such a draw, instead of
    numpy's NaN (inf - inf) and its RuntimeWarning."""
    xs = np.sort(np.asarray(x, float).ravel())
    h = (len(xs) - 1) * np.asarray(q, float)
    lo = np.floor(h).astype(int)
    a, b, frac = xs[lo], xs[np.ceil(h).astype(int)], h - lo
    with np.errstate(invalid="ignore"):
        out = np.where(frac == 0, a, a + (b - a) * frac)
    out = np.where(np.isposinf(b) & (frac > 0), np.inf, out)
    return np.where(np.isinf(a), a, out)   # from -inf (or +inf) the value stays there


def population_survival(family, params, eta, w, t) -> np.ndarray:
    """S(t) for times t (T,): returns (S, T). eta (S, G), w (G,). ``params`` may be a list
    of components instead (``mixture``), with eta and w None."""
    t = np.asarray(t, float)
    out = 0.0
    for params, eta, w in mixture(params, eta, w):
        part = np.zeros((eta.shape[0], len(t)))
        for g0 in range(0, eta.shape[1], _CHUNK):
            H = family.cumhaz_at(params, t, eta[:, g0:g0 + _CHUNK])  # (S, g, T)
            part += np.einsum("sgt,g->st", np.exp(-H), w[g0:g0 + _CHUNK])
        out = out + part
    return out


def population_cumhaz(family, params, eta, w, t) -> np.ndarray:
    """-log S(t) of the population for times t (T,): (S, T), accurate where S(t) rounds to 1
    (-log1p of sum_g w_g expm1(-H_g)) and where it underflows (a log-sum-exp of
    log w_g - H_g, accumulated over chunks of groups); ``-log(population_survival)`` is 0 or
    inf there."""
    t = np.asarray(t, float)
    near = 0.0                # sum_g w_g (S_g(t) - 1), accurate while S(t) >= 1/2
    top = acc = None          # running max of log w_g - H_g and sum of exp(. - max)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for params, eta, w in mixture(params, eta, w):
            for g0 in range(0, eta.shape[1], _CHUNK):
                H = family.cumhaz_at(params, t, eta[:, g0:g0 + _CHUNK])  # (S, g, T)
                wg = np.asarray(w[g0:g0 + _CHUNK], float)
                near = near + np.einsum("sgt,g->st", np.expm1(-H), wg)
                x = np.log(wg)[None, :, None] - H
                m = x.max(axis=1)
                if top is None:
                    top, acc = m, np.zeros_like(m)
                new = np.maximum(top, m)
                ref = np.where(np.isfinite(new), new, 0.0)  # all -inf so far: S = 0
                acc = acc * np.exp(top - ref) + np.exp(x - ref[:, None, :]).sum(axis=1)
                top = new
        log_s = np.log(acc) + np.where(np.isfinite(top), top, 0.0)
        return np.where(near > -0.5, -np.log1p(near), -log_s)


def mixture(params, eta, w) -> list:
    """A population as components (params, eta (S, G), w (G,)) whose weights sum to 1
    over all of them: groups with their own baseline parameters (strata) are components
    of their own. One component when ``params`` is a dict."""
    return [(params, eta, w)] if isinstance(params, dict) else list(params)


def population_survival_each(family, params, eta, w, t) -> np.ndarray:
    """S at one time per draw: t (S,) -> (S,)."""
    return sum(np.exp(-family.cumhaz_at(p, np.asarray(t, float)[:, None], e)) @ wc
               for p, e, wc in mixture(params, eta, w))


def population_median(family, params, eta, w, *, iterations: int = 80) -> np.ndarray:
    """Median of the population survival per draw, (S,), by bisection.

    Each group's median is monotone in its eta, so the mixture median lies between the
    medians of the groups with the largest and the smallest eta (``time_at_cumhaz``); with
    several components (strata), between the smallest and largest of theirs.
    """
    comps = mixture(params, eta, w)
    ends = [family.time_at_cumhaz(p, LOG2, ex)[:, 0] for p, e, _ in comps
            for ex in (e.min(axis=1, keepdims=True), e.max(axis=1, keepdims=True))]
    lo, hi = np.min(ends, axis=0), np.max(ends, axis=0)
    if (len(comps) == 1 and comps[0][1].shape[1] == 1) or np.allclose(lo, hi, rtol=1e-13,
                                                                      atol=0):
        return lo
    # bisection on log t (a group whose survival levels off above 1/2 has an infinite
    # median: the bracket is then capped, and a mixture median at the cap is infinite)
    cap = np.log(np.finfo(float).max) - 1.0
    with np.errstate(divide="ignore"):
        lo, hi = np.log(lo), np.minimum(np.log(hi), cap)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = population_survival_each(family, params, eta, w, np.exp(mid)) > 0.5
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.where(lo >= cap - 1e-9, np.inf, np.exp(0.5 * (lo + hi)))


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
