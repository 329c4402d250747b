"""What borrowing did in a fit: the posterior weight of each MAP component (above all the
robust one), Box's prior-predictive check of the trial's own control data against the MAP
prior, and the control hazard with and without borrowing.

Posterior component weights: with the mixture prior sum_k w_k N(theta; m_k, s_k) on the
control log hazard theta, the posterior probability of component k is
E_post[w_k N(theta; m_k, s_k) / sum_j w_j N(theta; m_j, s_j)] (the component given theta
does not depend on the data), averaged over the fit's draws of theta.

Box's p-value (Box 1980): the control arm's events d over its exposure E (months) under a
constant hazard have prior predictive m(y) = integral Poisson(y; E exp(theta)) p(theta)
dtheta with p the informative MAP prior (without its robust component: the prior being
checked); p = sum of m(y) over the y with m(y) <= m(d). Small values say the trial's
control arm is surprising under what was borrowed.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import stats

from bayes_hcc.borrowing.map_prior import MAPPrior, _components
from bayes_hcc.errors import ModelError
from bayes_hcc.spec.priors import MixturePrior
from bayes_hcc.units import convert

__all__ = ["borrowing_report", "box_p_value", "predictive_pmf", "component_weights",
           "control_data"]


def control_data(fit, cuts=None) -> tuple[np.ndarray, np.ndarray]:
    """Events and exposure (months) of the fit's control arm: overall (arrays of one), or
    per interval of ``cuts`` (months)."""
    from bayes_hcc.borrowing.history import events_exposure

    c = fit.datatree["constant_data"]
    if "lower_bound" in c:
        raise ModelError("borrowing_report: the endpoint is interval-censored; the conflict "
                         "check needs exact or right-censored times.")
    t = np.asarray(convert(fit.datatree["observed_data"][fit.endpoint].to_numpy(),
                           fit.time_unit, "months"), float)
    d = c[fit.endpoint].to_numpy()
    ctrl = c["arm"].to_numpy() == 0
    edges = np.r_[0.0, np.asarray(cuts if cuts is not None else [], float), np.inf]
    return events_exposure(t[ctrl], d[ctrl], edges)


def _mixture_pdf(prior, x):
    w, m, s = _components(prior)
    return (w * stats.norm.pdf(np.asarray(x)[..., None], m, s)).sum(axis=-1)


def predictive_pmf(prior, exposure: float, ys, n_nodes: int = 64) -> np.ndarray:
    """Prior predictive probability of ``ys`` events over ``exposure`` months under a normal
    mixture prior of the log hazard per month. With lambda = exposure x exp(theta),
    m(y) = integral Poisson(y; lambda) p_lambda(lambda) dlambda = E[p_theta(log(lambda /
    exposure)) / lambda] for lambda ~ Gamma(y + 1, 1), written as lambda = Q(Phi(z)) with
    z standard normal (Q the gamma's quantile function; Wilson-Hilferty's cube above 30
    events) and integrated over z by Gauss-Hermite quadrature with ``n_nodes`` nodes."""
    ys = np.asarray(ys, float)
    z, wz = np.polynomial.hermite_e.hermegauss(n_nodes)
    wz = wz / wz.sum()
    a = ys[:, None] + 1.0
    lam = a * (1 - 1 / (9 * a) + z[None, :] / (3 * np.sqrt(a))) ** 3
    small = ys < 30
    if small.any():
        lam[small] = stats.gamma.ppf(stats.norm.cdf(z)[None, :], a[small])
    lam = np.maximum(lam, 1e-300)
    return (_mixture_pdf(prior, np.log(lam / exposure)) / lam) @ wz


def box_p_value(prior, events: float, exposure: float) -> float:
    """Box's prior-predictive p-value of ``events`` over ``exposure`` months under a normal
    mixture prior of the log hazard per month (module docstring)."""
    from bayes_hcc.borrowing.map_prior import mixture_quantile

    hi = float(mixture_quantile(prior, 1 - 1e-9)[0])
    y_max = int(max(stats.poisson.ppf(1 - 1e-9, exposure * np.exp(hi)), events)) + 1
    ys = np.arange(y_max + 1)
    mass = predictive_pmf(prior, exposure, ys)
    observed = mass[int(round(events))]
    return float(mass[mass <= observed * (1 + 1e-9)].sum() / mass.sum())


def component_weights(prior, theta) -> np.ndarray:
    """Posterior weight of each mixture component given draws ``theta`` of the log hazard
    per month."""
    if not isinstance(prior, MixturePrior):
        return np.ones(1)
    return prior.component_probabilities(np.asarray(theta, float).ravel()).mean(axis=0)


def _numbers(d) -> tuple[str, list]:
    """A prior's dict form as (its text without numbers, its numbers in order)."""
    nums = []

    def walk(x):
        if isinstance(x, dict):
            return {k: walk(v) for k, v in sorted(x.items())}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            nums.append(float(x))
            return "#"
        return x

    return json.dumps(walk(d), sort_keys=True), nums


def _same_prior(a: dict, b: dict) -> bool:
    """The same prior up to rounding: a fit stores its priors through their dict form, and
    mixture weights are normalised again on the way back (last-bit differences)."""
    (ta, na), (tb, nb) = _numbers(a), _numbers(b)
    return ta == tb and np.allclose(na, nb, rtol=1e-9, atol=1e-12)


def _log_hazard_months(fit, name) -> np.ndarray:
    """Draws of the control log hazard per month, (draws,) or (draws, intervals): the fit's
    parameter is per unit of its data."""
    from bayes_hcc.units import log_unit_in_months

    post = fit.datatree["posterior"]
    x = post[name].to_numpy()
    x = x.reshape(-1, *x.shape[2:])
    scalars = {k: post[k].to_numpy().reshape(-1) for k in post.data_vars
               if set(post[k].dims) == {"chain", "draw"}}
    shift = np.asarray(fit.family.unit_shift(scalars, log_unit_in_months(fit.time_unit))
                       .get(name, 0.0))
    if x.ndim == 2 and shift.ndim == 1:
        shift = shift[:, None]
    return x - shift


def borrowing_report(fit, prior: MAPPrior, *, reference=None) -> pd.DataFrame:
    """What borrowing did in ``fit`` (made with the MAP ``prior``): the prior's ESS, the
    prior and posterior weight of the robust component, Box's p-value of the trial's control
    data under the informative MAP prior, and the control log hazard per month (posterior
    median, 95% interval, SD). ``reference`` (a fit of the same data without borrowing) adds
    its control log hazard and the ratio of posterior SDs. One column (``value``) for a
    constant-hazard prior; one per interval for a per-interval prior. For a Weibull model
    (prior on the average hazard up to ``prior_reference_time``) the control log hazard is
    that average, and Box's check uses the control events and exposure up to that time."""
    if not isinstance(prior, MAPPrior):
        raise TypeError("borrowing_report: pass the MAPPrior the fit was made with.")
    targets = [p for f, p in prior.applies_to if f == fit.family.key]
    if not targets or targets[0] not in fit.priors:
        raise ModelError(f"borrowing_report: this fit is a {fit.family.label} model; this MAP "
                         f"prior is used by {', '.join(f for f, _ in prior.applies_to)} "
                         "models.")
    name = targets[0]
    used = fit.priors[name]
    if not _same_prior(used.to_dict(), prior.mixture.to_dict()):
        raise ModelError("borrowing_report: the fit's prior of "
                         f"{name} is not this MAP prior (the fit used {used}).")
    theta = _log_hazard_months(fit, name).reshape(-1, len(prior.elements))
    weights = np.asarray(fit.mixture_weights().get(name, np.ones(1))).reshape(
        len(prior.elements), -1)
    t_ref = getattr(fit.family, "prior_reference_months", None)
    if t_ref is not None:  # Weibull: the average hazard up to the reference time
        d, e = (a[:1] for a in control_data(fit, [t_ref]))
    else:
        d, e = control_data(fit, prior.cuts)
    ref = None if reference is None else _log_hazard_months(reference, name).reshape(
        -1, len(prior.elements))
    informative = prior.informative if prior.per_interval else [prior.informative]
    ess = np.atleast_1d(prior.ess())
    columns = {}
    for j, label in enumerate(prior.interval_labels() if prior.per_interval else ["value"]):
        th = theta[:, j]
        rows = {"prior ESS (events, ELIR)": float(ess[j]),
                "robust weight: prior": prior.robust_weight,
                "robust weight: posterior": float(weights[j, -1]) if prior.robust_weight
                else 0.0,
                "Box prior-predictive p-value": box_p_value(informative[j], d[j], e[j]),
                "control events": float(d[j]), "control exposure (months)": float(e[j]),
                "control log hazard /month: median": float(np.median(th)),
                "control log hazard /month: 2.5%": float(np.quantile(th, 0.025)),
                "control log hazard /month: 97.5%": float(np.quantile(th, 0.975)),
                "control log hazard /month: SD": float(np.std(th))}
        if ref is not None:
            rows["without borrowing: median"] = float(np.median(ref[:, j]))
            rows["without borrowing: SD"] = float(np.std(ref[:, j]))
            rows["posterior SD ratio (with / without)"] = float(np.std(th)
                                                                / np.std(ref[:, j]))
        columns[label] = rows
    table = pd.DataFrame(columns)
    table.attrs.update(method="robust MAP" if prior.robust_weight else "MAP",
                       component_weights=weights.tolist(), parameter=name)
    return table
