"""A Laplace approximation of a survival model's posterior: fast, and only as good as a
normal approximation of the posterior on the sampler's (unconstrained) scale.

The mode of the model's log density on the scale NUTS samples (every variable transformed to
the real line, the Jacobian included, so the site SD is on the log scale and the site effects
are the non-centred deviations the sampler moves) is found by a trust-region Newton method
with the exact Hessian; the posterior is approximated by a normal distribution there with
covariance the inverse of the negative Hessian. The site effects are integrated with the
rest (a joint Laplace approximation): the arm effect's approximate marginal is normal with
mean its value at the mode and variance J Sigma J' (J: its gradient on that scale; the arm
effect is linear in the sampled coordinates).

The model is the one ``model.fit`` samples (``models.sampling``: the same graph, compiled
once per structure and refitted with new data); the functions of the approximation are
compiled once per structure too. This is a screening tool (issue #27: decide the looks that
are far from a threshold without MCMC); its error against MCMC is what calibrates how far is
far enough.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import pymc as pm
import pytensor
from pytensor.graph import clone_replace
import pytensor.tensor as pt
from scipy import optimize, stats

from bayes_hcc.errors import ModelError
from bayes_hcc.models.graph import prepare
from bayes_hcc.models.sampling import _compiled, graph_builder

__all__ = ["laplace", "LaplaceResult"]

#: A mode is accepted when the Newton step from it is shorter than this, in posterior SDs.
NEWTON_DECREMENT_TOL = 1e-3

_FUNCTIONS: dict = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class LaplaceResult:
    """The approximate posterior of the arm effect (``effect``: log HR, or log time ratio
    for accelerated-failure-time families): normal with ``mean`` and ``sd``; ``converged``
    and ``message`` say whether the mode was found and the Hessian there is negative
    definite (when not, the numbers are not to be used)."""

    effect: str
    mean: float
    sd: float
    converged: bool
    message: str
    n_iterations: int

    def prob_below(self, threshold: float = 1.0) -> float:
        """P(exp(effect) < threshold): for a log HR, P(HR < threshold)."""
        return float(stats.norm.cdf((np.log(threshold) - self.mean) / self.sd))

    def prob_superiority(self, threshold: float = 1.0) -> float:
        """P(the treatment is better): P(HR < threshold) for a hazard-ratio family,
        P(TR > threshold) for a time-ratio one."""
        if self.effect == "log_hr":
            return self.prob_below(threshold)
        return 1.0 - self.prob_below(threshold)


def _functions(key, m, effect_name):
    """Compiled log density, gradient, Hessian and arm effect (with its gradient) of a flat
    vector of the sampler's coordinates; compiled once per structure."""
    with _LOCK:
        hit = _FUNCTIONS.get(key)
    if hit is not None:
        return hit
    point = m.initial_point()
    names = [v.name for v in m.value_vars]
    shapes = [np.shape(point[n]) for n in names]
    sizes = [int(np.prod(s)) for s in shapes]
    x = pt.vector("x")
    ends = np.cumsum(sizes)
    replace = {v: x[e - k:e].reshape(sh) for v, sh, k, e in zip(m.value_vars, shapes, sizes,
                                                                   ends)}
    logp = clone_replace(m.logp(jacobian=True), replace)
    grad = pt.grad(logp, x)
    hess = pytensor.gradient.jacobian(grad, x)
    effect = clone_replace(m.replace_rvs_by_values([m[effect_name]])[0], replace)
    effect_grad = pt.grad(effect, x)
    funcs = {"value_and_grad": pytensor.function([x], [logp, grad]),
             "hess": pytensor.function([x], hess),
             "effect": pytensor.function([x], [effect, effect_grad]),
             "x0": np.concatenate([np.ravel(point[n]) for n in names])}
    with _LOCK:
        _FUNCTIONS[key] = funcs
    return funcs


def laplace(model, trial, endpoint: str = "os") -> LaplaceResult:
    """Laplace approximation of ``model``'s posterior for ``trial`` (module docstring):
    the approximate marginal of the arm effect, in a fraction of a second once compiled.

    Examples
    --------
    >>> import bayes_hcc as bh
    >>> approx = bh.laplace(bh.WeibullPH(), bh.datasets.load_example_trial())  # doctest: +SKIP
    >>> approx.prob_superiority()                                               # doctest: +SKIP
    """
    ep, family, priors, X, scale, data, key = prepare(model, trial, endpoint)
    m, _ = _compiled(key, graph_builder(model, ep, family, priors, data, X, key), "pymc")
    funcs = _functions(key, m, family.arm_effect)
    with m:
        pm.set_data(data)

    def fun(x):
        v, g = funcs["value_and_grad"](x)
        return -float(v), -np.asarray(g, float)

    def hess(x):
        return -np.asarray(funcs["hess"](x), float)

    with np.errstate(all="ignore"):
        res = optimize.minimize(fun, funcs["x0"], jac=True, hess=hess, method="trust-exact",
                                options={"gtol": 1e-6, "maxiter": 200})
    H = hess(res.x)
    mean, jac = (np.asarray(a, float) for a in funcs["effect"](res.x))
    converged = bool(res.success and np.all(np.isfinite(H)))
    message = str(res.message)
    try:
        chol = np.linalg.cholesky(H)  # negative Hessian of the log density: positive definite
        w = np.linalg.solve(chol, jac)
        sd = float(np.sqrt(w @ w))
        if not res.success and np.all(np.isfinite(H)):
            # trust-exact can stop short of its gradient tolerance in the last steps
            # ("failure to predict improvement") when it is already at the mode to within
            # rounding: accepted when the Newton decrement sqrt(g' H^-1 g), the distance to
            # the mode in posterior SDs, is below 1e-3
            decrement = float(np.linalg.norm(np.linalg.solve(chol, fun(res.x)[1])))
            if decrement < NEWTON_DECREMENT_TOL:
                converged = True
                message += (f" (accepted: Newton decrement {decrement:.1e} < "
                            f"{NEWTON_DECREMENT_TOL:g} posterior SD)")
    except np.linalg.LinAlgError:
        converged, sd = False, float("nan")
        message += "; the Hessian at the mode is not negative definite"
    if not np.isfinite(mean) or not np.isfinite(sd):
        converged = False
    return LaplaceResult(family.arm_effect, float(mean), sd, converged, message,
                         int(res.nit))
