"""The censored log-likelihood, once, for every family and both backends.

Each family declares its log hazard and cumulative hazard given the linear predictor
(``Family.log_hazard_x`` / ``cumhaz_x``, written once over an array namespace ``xp``: numpy
or pytensor.tensor); every kind of observation follows from them:

* exact event at t:            log h(t) - H(t)
* right-censored at t:         -H(t)
* interval-censored in (L, R]: log(S(L) - S(R)) = -H(L) + log1mexp(H(R) - H(L))
* left truncation (entry e):   + H(e)  (conditioning on survival to entry)

The interval term is computed as a log-difference of survivals through ``log1mexp``, never
as ``log(S(L) - S(R))`` directly, which loses all precision when both are tiny or close.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EXACT", "RIGHT", "INTERVAL", "log1mexp", "loglik"]

#: Observation kinds (``kind`` array): an exact event, right censoring, interval censoring.
RIGHT, EXACT, INTERVAL = 0, 1, 2
_LOG2 = float(np.log(2.0))


def log1mexp(xp, x):
    """log(1 - exp(-x)) for x >= 0, accurate for small and large x (Maechler 2012: expm1
    below log 2, log1p above)."""
    small = xp.less(x, _LOG2)
    x_small = xp.where(small, x, _LOG2)   # each branch sees only values it handles well
    x_large = xp.where(small, _LOG2, x)
    return xp.where(small, xp.log(-xp.expm1(-x_small)), xp.log1p(-xp.exp(-x_large)))


def loglik(xp, family, params, eta, *, time, kind=None, upper=None, entry=None):
    """Log-likelihood contribution of each patient, shape B + (n,).

    Parameters
    ----------
    xp : module
        numpy or pytensor.tensor.
    family : Family
    params : dict
        The family's parameters with a batch shape B (see ``Family.log_hazard_x``).
    eta : array
        Linear predictor, B + (n,).
    time : array (n,)
        Event or censoring time; the lower bound L for interval-censored patients.
    kind : array (n,), optional
        RIGHT (0), EXACT (1) or INTERVAL (2) per patient; default all exact. A 0/1 event
        indicator is a valid ``kind``.
    upper : array (n,), optional
        Upper bound R of interval-censored patients (ignored elsewhere; needed when any
        kind is INTERVAL).
    entry : array (n,), optional
        Delayed entry (left truncation) times; default none.
    """
    if xp is np:  # log(0) and 0 * inf at t = 0 are handled by where(), not errors
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _loglik(xp, family, params, eta, time, kind, upper, entry)
    return _loglik(xp, family, params, eta, time, kind, upper, entry)


def _loglik(xp, family, params, eta, time, kind, upper, entry):
    n_kind = kind
    H = family.cumhaz_x(xp, params, time, eta)
    exact = family.log_hazard_x(xp, params, time, eta) - H
    if n_kind is None:
        out = exact
    else:
        is_exact = xp.equal(n_kind, EXACT)
        # where() evaluates both branches: an exact-event term at a censoring time may be
        # -inf or nan (log hazard at t = 0); it is discarded, never multiplied by 0.
        out = xp.where(is_exact, exact, -H)
        if upper is not None:
            is_interval = xp.equal(n_kind, INTERVAL)
            H_upper = family.cumhaz_x(xp, params, upper, eta)
            gap = xp.where(is_interval, H_upper - H, 1.0)
            out = xp.where(is_interval, -H + log1mexp(xp, gap), out)
    if entry is not None:
        out = out + family.cumhaz_x(xp, params, entry, eta)
    return out
