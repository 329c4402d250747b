"""The censored log-likelihood, once, for every family and both backends.

Each family declares its log hazard and cumulative hazard given the linear predictor
(``Family.log_hazard_x`` / ``cumhaz_x``, written once over an array namespace ``xp``: numpy
or pytensor.tensor); every kind of observation follows from them:

* exact event at t:            log h(t) - H(t)
* right-censored at t:         -H(t)
* interval-censored in (L, R]: log(S(L) - S(R)) = -H(L) + log1mexp(H(R) - H(L))
* left-censored in (0, R]:      log(1 - S(R)) = log1mexp(H(R))
* left truncation (entry e):   + H(e)  (conditioning on survival to entry)

The interval term is computed as a log-difference of survivals through ``log1mexp``, never
as ``log(S(L) - S(R))`` directly, which loses all precision when both are tiny or close.
"""

from __future__ import annotations

import numpy as np

# Observation kinds (``kind`` array, ``Endpoint.kind``): right censoring (0), an exact event
# (1), interval censoring (2), left censoring (3); defined with the data.
from bayes_hcc.data.trial import EXACT, INTERVAL, LEFT, RIGHT

__all__ = ["EXACT", "RIGHT", "INTERVAL", "LEFT", "log1mexp", "loglik", "interval_loglik",
           "interval_term"]

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
    time : array (n,) or dict
        Event or censoring time; the lower bound L for interval-censored patients (ignored
        for LEFT ones: in the graph it holds any finite time, so that no gradient meets
        log 0). An array (numpy) or its ``family.time_features`` (a dict; data containers
        in the graph).
    kind : array (n,), optional
        RIGHT (0), EXACT (1), INTERVAL (2) or LEFT (3) per patient; default all exact. A
        0/1 event indicator is a valid ``kind``.
    upper : array (n,), optional
        Upper bound R of interval- and left-censored patients (ignored elsewhere, where it
        must still be finite in the graph; needed when any kind is INTERVAL or LEFT).
    entry : array (n,), optional
        Delayed entry (left truncation) times; default none.
    """
    if xp is np:  # log(0) and 0 * inf at t = 0 are handled by where(), not errors
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return _loglik(xp, family, params, eta, time, kind, upper, entry)
    return _loglik(xp, family, params, eta, time, kind, upper, entry)


def _features(family, t):
    """Time features: given (a dict, e.g. data containers in the graph) or computed."""
    return t if isinstance(t, dict) else family.time_features(np.asarray(t, float))


def _loglik(xp, family, params, eta, time, kind, upper, entry):
    time = _features(family, time)
    H = family.cumhaz_x(xp, params, time, eta)
    log_h = family.log_hazard_x(xp, params, time, eta)
    if kind is None:
        out = log_h - H
    elif xp is not np and upper is None:
        # In the graph times are > 0 (patients censored at 0 are left out), so the event
        # indicator can weight the log hazard: cheaper to differentiate than a switch.
        out = kind * log_h - H
    else:
        # where() evaluates both branches: the log hazard at a censoring time may be -inf or
        # nan (t = 0); it is discarded, never multiplied by 0.
        out = xp.where(xp.equal(kind, EXACT), log_h - H, -H)
        if upper is not None:
            is_interval, is_left = xp.equal(kind, INTERVAL), xp.equal(kind, LEFT)
            H_upper = family.cumhaz_x(xp, params, _features(family, upper), eta)
            gap = xp.where(is_interval, H_upper - H, 1.0)
            out = xp.where(is_interval, -H + log1mexp(xp, gap), out)
            out = xp.where(is_left, log1mexp(xp, xp.where(is_left, H_upper, 1.0)), out)
    if entry is not None:
        out = out + family.cumhaz_x(xp, params, _features(family, entry), eta)
    return out


def interval_loglik(xp, family, params, eta, *, lower, upper, has_lower):
    """log(S(L) - S(R)) = -H(L) + log1mexp(H(R) - H(L)) for patients whose event lies in
    (L, R], each term once: the graph's form for interval-censored patients (``loglik``
    handles every kind in one array, with a branch per kind). ``lower`` and ``upper`` are
    time features (dicts); ``has_lower`` is 0 where L = 0 (left censoring: H(L) = 0, and the
    lower features then hold any finite time)."""
    H_lower = family.cumhaz_x(xp, params, _features(family, lower), eta) * has_lower
    H_upper = family.cumhaz_x(xp, params, _features(family, upper), eta)
    return interval_term(xp, H_lower, H_upper)


def interval_term(xp, H_lower, H_upper):
    """log(S(L) - S(R)) from the cumulative hazards at L and R, for the graph: log(1 - e^-x)
    by its expm1 branch alone. Relative accuracy at small x (narrow or early intervals) is
    what matters; for large x it is exact to an absolute 1e-16 in the log-likelihood (the
    log1p branch of ``log1mexp`` only refines values below that), and one branch halves the
    cost of the term and its gradient."""
    return -H_lower + xp.log(-xp.expm1(H_lower - H_upper))
