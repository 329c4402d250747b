"""What an illness-death model implies for one group of patients (one arm at one site):
PFS, OS, the progression curve with death removed, and the OS density, on numpy draws.

S0(t) = exp(-H01(t) - H02(t)) is PFS; OS(t) = S0(t) + int_0^t S0(u) a01(u) S12(u, t) du;
the OS density is S0(t) a02(t) + int_0^t S0(u) a01(u) S12(u, t) a12(.) du, so the marginal
OS hazard is density / OS (not proportional between arms under this model, in general). The
integrals use the likelihood's quadrature (``multistate.likelihood``): pieces split at the
families' breakpoints and graded towards the ends where a hazard may be singular.
"""

from __future__ import annotations

import numpy as np

from bayes_hcc.multistate.likelihood import _nodes

__all__ = ["curves"]


def curves(families, params, etas, time_scale: str, times, *, density: bool = False) -> dict:
    """{"pfs", "os", "progression"[, "os_density"]}: (S, T) arrays at ``times`` (T,) for
    parameter draws ``params`` (per transition, each (S, ...)) and linear predictors
    ``etas`` (per transition, (S, 1))."""
    f01, f02, f12 = families
    times = np.asarray(times, float)
    if np.any(times < 0):
        raise ValueError("times must be >= 0.")
    markov = time_scale == "markov"
    tpos = np.where(times > 0, times, 1.0)
    e01, e02, e12 = etas
    out = {}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        H01 = f01.cumhaz_at(params[0], tpos, e01)[:, 0, :]
        H02 = f02.cumhaz_at(params[1], tpos, e02)[:, 0, :]
        pfs = np.where(times > 0, np.exp(-H01 - H02), 1.0)
        out["progression"] = np.where(times > 0, np.exp(-H01), 1.0)
        splits = np.concatenate([f.breakpoints() for f in families])
        nodes, weights = _nodes(np.zeros(len(times)), times, lambda i: splits,
                                grade_hi=not markov)
        S, q = pfs.shape[0], nodes.shape[1]
        u = nodes.ravel()
        up = np.where(u > 0, u, 1.0)
        log_f = (-f01.cumhaz_at(params[0], up, e01)[:, 0, :]
                 - f02.cumhaz_at(params[1], up, e02)[:, 0, :]
                 + f01.log_hazard_at(params[0], up, e01)[:, 0, :])
        t_rep = np.repeat(tpos, q)
        if markov:
            log_f = log_f - (f12.cumhaz_at(params[2], t_rep, e12)[:, 0, :]
                             - f12.cumhaz_at(params[2], up, e12)[:, 0, :])
            log_a12 = f12.log_hazard_at(params[2], t_rep, e12)[:, 0, :]
        else:
            gap = np.where(t_rep - u > 0, t_rep - u, 1.0)
            log_f = log_f - f12.cumhaz_at(params[2], gap, e12)[:, 0, :]
            log_a12 = f12.log_hazard_at(params[2], gap, e12)[:, 0, :]
        w = weights[None]

        def integral(log_g):
            g = np.exp(log_g).reshape(S, len(times), q) * w
            return np.where(w > 0, g, 0.0).sum(axis=2)

        out["pfs"] = pfs
        out["os"] = np.minimum(pfs + integral(log_f), 1.0)
        if density:
            a02 = np.exp(f02.log_hazard_at(params[1], tpos, e02)[:, 0, :])
            out["os_density"] = np.where(times > 0, pfs * a02 + integral(log_f + log_a12),
                                         np.nan)
    return out
