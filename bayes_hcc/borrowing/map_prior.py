"""The meta-analytic-predictive (MAP) prior of the control arm's log hazard (Neuenschwander
et al. 2010; Schmidli et al. 2014, robust MAP), as RBesT builds it with ``gMAP``,
``automixfit``, ``robustify`` and ``ess``.

Model (historical arm h, events d_h over exposure E_h months, constant hazard):

    d_h ~ Poisson(E_h exp(theta_h)),  theta_h = mu + tau z_h,  z_h ~ Normal(0, 1),
    mu ~ Normal(-2.5, 2) (the package's log-rate prior per month),
    tau ~ HalfNormal(tau_scale)   (tau_scale = 0: no heterogeneity, theta_h = mu),

sampled by NUTS (nutpie; compiled once per number of historical arms, refitted with new
data). The MAP prior is the predictive distribution of a new trial's theta = mu + tau z_new;
its draws are approximated by a mixture of normals (scikit-learn's EM; the fewest
components whose quantiles from 2.5% to 97.5% lie within 0.02 of the draws', reported in
``accuracy``).

``robustify`` adds a weakly informative component, Normal(MAP median, 1): the information of
one event on the log hazard (its unit-information prior), so that borrowing backs off when
the trial's control arm disagrees. ``ess`` is the prior's effective sample size in events
by the expected local-information-ratio method (ELIR, Neuenschwander et al. 2020), which
RBesT uses for mixtures: the Fisher information of one event on the log hazard is 1, so
ESS = E_p[-d^2/dtheta^2 log p(theta)].
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import stats

from bayes_hcc.errors import (ConvergenceWarning, DataWarning, SpecError, one_number, warn,
                              whole_number)
from bayes_hcc.families.base import LOG_RATE_MU_MONTHS
from bayes_hcc.spec.priors import IntervalMixturePrior, MixturePrior, Prior
from bayes_hcc.spec.sampler import check_sampler_settings

__all__ = ["map_prior", "MAPPrior", "DEFAULT_TAU_SCALE", "ROBUST_SD"]

#: HalfNormal scale of the between-trial SD of the log hazard: 0.5 puts the median tau at
#: 0.34 and 95% below 0.98 ("moderate" to "substantial" heterogeneity in Neuenschwander et
#: al.'s terms); published sorafenib medians of 6.5 to 10.7 months are log-hazard
#: differences of about 0.5.
DEFAULT_TAU_SCALE = 0.5
#: SD of the robust component: the information of one event on the log hazard.
ROBUST_SD = 1.0
#: Where a MAP prior of a constant control log hazard (per month) may be used: the
#: exponential baseline, and the Weibull's with its prior on the average hazard up to a
#: reference time (``prior_reference_time``; a per-interval prior: the piecewise baseline,
#: ``MAPPrior.applies_to``).
APPLIES_TO = {("exponential_ph", "log_lambda"), ("weibull_ph", "log_lambda")}
QUANTILES = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)


def _build(n_hist: int, n_int: int, heterogeneity: bool):
    """The meta-analysis of ``n_hist`` arms in ``n_int`` intervals (one interval: a constant
    hazard): an independent MAP model per interval."""
    import pymc as pm

    with pm.Model() as m:
        d = pm.Data("events", np.ones((n_hist, n_int)))
        expo = pm.Data("exposure", np.ones((n_hist, n_int)))
        mu_loc, mu_sd = pm.Data("mu_loc", 0.0), pm.Data("mu_sd", 1.0)
        mu = pm.Normal("mu", mu_loc, mu_sd, shape=n_int)
        if heterogeneity:
            tau_scale = pm.Data("tau_scale", DEFAULT_TAU_SCALE)
            tau = pm.HalfNormal("tau", tau_scale, shape=n_int)
            z = pm.Normal("z", 0.0, 1.0, shape=(n_hist, n_int))
            theta = mu[None, :] + tau[None, :] * z
            z_new = pm.Normal("z_new", 0.0, 1.0, shape=n_int)
            pm.Deterministic("theta_new", mu + tau * z_new)
        else:
            theta = mu[None, :] + pm.math.zeros((n_hist, n_int))
            pm.Deterministic("theta_new", mu)
        # exposure 0 (no one at risk in an interval) carries no information: rate 0
        pm.Poisson("y", mu=expo * pm.math.exp(theta), observed=d)
    return m


_COMPILED: dict = {}


def _sample(events, exposure, tau_scale, mu_prior, draws, tune, chains, seed,
            target_accept):
    from bayes_hcc.models import _nutpie

    heterogeneity = tau_scale > 0
    key = (*events.shape, heterogeneity)
    if key not in _COMPILED:  # compiled once per structure, refitted with new data
        m = _build(*key)
        _COMPILED[key] = (m, _nutpie.compile_model(
            m, structure_key=f"map_prior|{key[0]}|{key[1]}|{int(heterogeneity)}"))
    m, compiled = _COMPILED[key]
    data = {"events": events, "exposure": exposure,
            "mu_loc": np.asarray(mu_prior.params["mu"], float),
            "mu_sd": np.asarray(mu_prior.params["sigma"], float)}
    if heterogeneity:
        data["tau_scale"] = np.asarray(float(tau_scale))
    return _nutpie.sample(_nutpie.with_data(compiled, m, data), draws=draws, tune=tune,
                          chains=chains, cores=min(chains, 2), seed=seed,
                          save_warmup=False, progress_bar=False,
                          target_accept=target_accept)


def _fit_mixture(x, max_components, seed, tolerance):
    """EM (scikit-learn) for 1, 2, ... normals: the fewest whose quantiles (``QUANTILES``)
    are all within ``tolerance`` of the draws' (else the closest)."""
    from sklearn.mixture import GaussianMixture

    x = np.asarray(x, float).reshape(-1, 1)
    emp = np.quantile(x[:, 0], QUANTILES)
    centre, spread = float(np.median(x)), float(np.std(x))
    best = None
    for k in range(1, max_components + 1):
        # started as a scale mixture (one centre, SDs from half to twice the draws'): the
        # shape of a predictive that integrates over the between-trial SD; EM from there
        # took a third of the iterations of a k-means start (measured), to the same accuracy
        sds = spread * np.geomspace(0.5, 2.0, k) if k > 1 else np.array([spread])
        gm = GaussianMixture(k, random_state=seed, tol=1e-6, max_iter=2000,
                             weights_init=np.full(k, 1.0 / k),
                             means_init=np.full((k, 1), centre),
                             precisions_init=(1.0 / sds ** 2).reshape(k, 1, 1)).fit(x)
        order = np.argsort(-gm.weights_)
        parts = (gm.weights_[order], gm.means_[order, 0],
                 np.sqrt(gm.covariances_.reshape(-1)[order]))
        miss = float(np.max(np.abs(mixture_quantile(_as_prior(*parts), QUANTILES) - emp)))
        if best is None or miss < best[0]:
            best = (miss, parts)
        if miss <= tolerance:
            break
    return best[1]


def _as_prior(weights, means, sds):
    comps = [Prior("Normal", mu=float(m), sigma=float(s)) for m, s in zip(means, sds)]
    if len(comps) == 1:
        return comps[0]
    w = np.asarray(weights, float)
    return MixturePrior(comps, list(w / w.sum()))


def _components(prior):
    if isinstance(prior, MixturePrior):
        comps, w = prior.components, np.asarray(prior.weights)
    else:
        comps, w = (prior,), np.ones(1)
    return (w, np.array([c.params["mu"] for c in comps]),
            np.array([c.params["sigma"] for c in comps]))


def mixture_cdf(prior, x):
    w, m, s = _components(prior)
    return np.sum(w * stats.norm.cdf((np.asarray(x)[..., None] - m) / s), axis=-1)


def mixture_quantile(prior, q):
    """Quantiles of a normal mixture (bisection on its CDF)."""
    from scipy.optimize import brentq

    w, m, s = _components(prior)
    lo, hi = float(np.min(m - 12 * s)), float(np.max(m + 12 * s))
    return np.array([brentq(lambda x: mixture_cdf(prior, x) - qq, lo, hi, xtol=1e-10)
                     for qq in np.atleast_1d(q)])


def elir_ess(prior, n_grid: int = 20001) -> float:
    """ESS in events by the ELIR method: E_p[-(log p)''] = integral of p'^2 / p (the
    Fisher information of one event on the log hazard is 1)."""
    w, m, s = _components(prior)
    grid = np.linspace(np.min(m - 12 * s), np.max(m + 12 * s), n_grid)
    phi = w * stats.norm.pdf(grid[:, None], m, s)
    p = phi.sum(axis=1)
    dp = (phi * (-(grid[:, None] - m) / s ** 2)).sum(axis=1)
    ok = p > 1e-300
    return float(np.trapezoid(np.where(ok, dp ** 2 / np.where(ok, p, 1.0), 0.0), grid))


class MAPPrior:
    """A MAP prior of the control arm's log hazard per month (module docstring): one normal
    mixture for a constant hazard, or one per interval of ``cuts`` for the piecewise
    baseline.

    Use it as a model prior: ``bh.ExponentialPH(priors={"log_lambda": map})``, or, made
    with ``cuts``, ``bh.PiecewiseExponential(cuts=map.cuts, baseline_prior="independent",
    priors={"log_baseline_hazard": map})``. ``mixture`` is what the model samples (a
    :class:`~bayes_hcc.Prior`, :class:`~bayes_hcc.spec.priors.MixturePrior` or, per
    interval, :class:`~bayes_hcc.spec.priors.IntervalMixturePrior`); ``elements`` the
    mixture of each interval; ``draws`` the MCMC draws (``theta_new``: the predictive, per
    interval); ``accuracy`` the mixtures' quantiles against the draws'; ``diagnostics`` the
    sampler checks. ``robust_weight`` is 0 until :meth:`robustify`.
    """

    def __init__(self, history, elements, draws, *, tau_scale, mu_prior, accuracy,
                 diagnostics, seed, cuts=None, robust_weight: float = 0.0,
                 robust_components=None):
        self.history = history
        self.elements = tuple(elements)
        self.cuts = None if cuts is None else tuple(float(c) for c in cuts)
        self.draws = draws
        self.tau_scale = float(tau_scale)
        self.mu_prior = mu_prior
        self.accuracy = accuracy
        self.diagnostics = diagnostics
        self.seed = seed
        self.robust_weight = float(robust_weight)
        self.robust_components = robust_components

    # -- where it goes -----------------------------------------------------------------------
    @property
    def per_interval(self) -> bool:
        return self.cuts is not None

    @property
    def applies_to(self) -> set:
        return ({("piecewise_exponential", "log_baseline_hazard")} if self.per_interval
                else APPLIES_TO)

    @property
    def reference_time(self) -> float:
        """The constant-hazard median of the MAP prior's median (months): the reference
        time a Weibull model should put the prior at (``prior_reference_time``), so that
        the historical median is what is borrowed."""
        mid = mixture_quantile(self.informative if not self.per_interval
                               else self.informative[0], 0.5)[0]
        return float(np.log(2) / np.exp(mid))

    def check_model(self, options: dict, family: str | None = None) -> str | None:
        """What is wrong with using this prior in a ``family`` model with these family
        ``options`` (None when nothing is)."""
        if family == "weibull_ph" and "prior_reference_time" not in options:
            return (f"a MAP prior of a constant hazard is a prior of the average hazard over "
                    f"a time span: give the Weibull model prior_reference_time (months; "
                    f"this prior's median implies {self.reference_time:.3g}), so that the "
                    "control median up to then is borrowed whatever the shape.")
        if not self.per_interval:
            return None
        cuts = tuple(float(c) for c in options.get("cuts") or ())
        if cuts != self.cuts:
            return (f"a per-interval MAP prior is made on the cuts {list(self.cuts)}; give the "
                    f"model the same cuts (cuts={list(self.cuts)}), not "
                    f"{list(cuts) if cuts else 'cut points from the data'}.")
        if options.get("baseline_prior", "rw1") != "independent":
            return ("a per-interval MAP prior gives each interval its own prior: use "
                    "baseline_prior='independent' (the random walk puts a prior on the first "
                    "interval only).")
        return None

    @property
    def mixture(self):
        """The prior the model samples."""
        if not self.per_interval:
            return self.elements[0]
        return IntervalMixturePrior.from_elements(self.elements)

    def as_prior(self):
        return self.mixture

    @property
    def informative(self):
        """The MAP mixture(s) without the robust component (per interval: a list)."""
        if not self.robust_weight:
            parts = list(self.elements)
        else:
            parts = []
            for e in self.elements:
                w, m, s = _components(e)
                parts.append(_as_prior(w[:-1] / w[:-1].sum(), m[:-1], s[:-1]))
        return parts if self.per_interval else parts[0]

    def robustify(self, weight: float = 0.2, *, mean=None, sd: float = ROBUST_SD) -> MAPPrior:
        """The robust MAP prior: (1 - weight) x MAP + weight x Normal(mean, sd) (per interval
        for a per-interval prior), the robust component last. ``mean`` defaults to the MAP
        median (of each interval); ``sd`` to 1, the information of one event on the log
        hazard."""
        if self.robust_weight:
            raise SpecError("this MAP prior is already robust; robustify the MAP prior it "
                            "came from.")
        if not 0 < weight < 1:
            raise SpecError(f"robustify: weight = {weight!r} must lie in (0, 1).")
        if not sd > 0:
            raise SpecError(f"robustify: sd = {sd!r} must be > 0.")
        means = (np.array([mixture_quantile(e, 0.5)[0] for e in self.elements])
                 if mean is None else np.broadcast_to(np.asarray(mean, float),
                                                      (len(self.elements),)))
        elements, robust = [], []
        for e, mu in zip(self.elements, means):
            w, m, s = _components(e)
            elements.append(_as_prior(np.r_[(1 - weight) * w, weight], np.r_[m, mu],
                                      np.r_[s, sd]))
            robust.append(Prior("Normal", mu=float(mu), sigma=float(sd)))
        return MAPPrior(self.history, elements, self.draws, tau_scale=self.tau_scale,
                        mu_prior=self.mu_prior, accuracy=self.accuracy,
                        diagnostics=self.diagnostics, seed=self.seed, cuts=self.cuts,
                        robust_weight=weight, robust_components=robust)

    def ess(self, method: str = "elir"):
        """Prior effective sample size in events (ELIR: the module docstring); per interval
        an array."""
        if method != "elir":
            raise SpecError(f"ess: method {method!r}; only 'elir' (expected local "
                            "information ratio, Neuenschwander et al. 2020) is provided.")
        values = np.array([elir_ess(e) for e in self.elements])
        return values if self.per_interval else float(values[0])

    # -- reading it --------------------------------------------------------------------------
    def quantiles(self, q=QUANTILES) -> np.ndarray:
        """Quantiles of the prior (per interval: one row each)."""
        rows = np.array([mixture_quantile(e, q) for e in self.elements])
        return rows if self.per_interval else rows[0]

    def interval_labels(self) -> list[str]:
        if not self.per_interval:
            return ["constant"]
        edges = [0.0, *self.cuts, np.inf]
        return [f"[{a:g}, {b:g})" for a, b in zip(edges[:-1], edges[1:])]

    def summary(self) -> pd.DataFrame:
        """The historical arms and the MAP predictive (log hazard per month, its 95% interval
        and the constant-hazard median), with tau and the ESS (per interval)."""
        if self.per_interval:
            rows = []
            theta = self.draws["theta_new"].to_numpy().reshape(-1, len(self.elements))
            for j, label in enumerate(self.interval_labels()):
                lo, mid, hi = mixture_quantile(self.elements[j], (0.025, 0.5, 0.975))
                rows.append({"interval": label, "log_hazard": mid, "lower": lo, "upper": hi,
                             "ess_events": elir_ess(self.elements[j]),
                             "draws_median": float(np.median(theta[:, j]))})
            out = pd.DataFrame(rows).set_index("interval")
            out.attrs.update(tau=self.tau_summary())
            return out
        rows = self.history.table()[["form", "events", "exposure_months", "log_hazard",
                                     "lower", "upper", "median_months"]].copy()
        theta = self.draws["theta_new"].to_numpy().ravel()
        lo, mid, hi = self.quantiles((0.025, 0.5, 0.975))
        label = "MAP prior" + (f" (robust, weight {self.robust_weight:g})"
                               if self.robust_weight else "")
        rows.loc[label] = {"form": "predictive", "events": self.ess(),
                           "exposure_months": np.nan, "log_hazard": mid, "lower": lo,
                           "upper": hi, "median_months": np.log(2) / np.exp(mid)}
        rows.loc["MAP draws"] = {"form": "MCMC", "events": np.nan, "exposure_months": np.nan,
                                 "log_hazard": np.median(theta),
                                 "lower": np.quantile(theta, 0.025),
                                 "upper": np.quantile(theta, 0.975),
                                 "median_months": np.log(2) / np.exp(np.median(theta))}
        rows = rows.rename(columns={"events": "events (ESS for the prior)"})
        rows.attrs.update(tau=self.tau_summary(), method="robust MAP" if self.robust_weight
                          else "MAP")
        return rows

    def tau_summary(self) -> dict:
        if "tau" not in self.draws:
            return {"tau": "fixed at 0 (no heterogeneity)"}
        t = self.draws["tau"].to_numpy().reshape(-1, len(self.elements))
        med = np.median(t, axis=0)
        lo, hi = np.quantile(t, 0.025, axis=0), np.quantile(t, 0.975, axis=0)
        one = (lambda a: float(a[0])) if not self.per_interval else (lambda a: a.tolist())
        return {"median": one(med), "lower": one(lo), "upper": one(hi),
                "prior": f"HalfNormal({self.tau_scale:g})"}

    def to_dict(self) -> dict:
        """What produced it (for a fit's provenance)."""
        ess = self.ess()
        return {"method": "robust MAP" if self.robust_weight else "MAP",
                "prior": self.mixture.to_dict(), "robust_weight": self.robust_weight,
                "tau_scale": self.tau_scale,
                "ess_elir": ess.tolist() if self.per_interval else ess,
                "cuts": None if self.cuts is None else list(self.cuts),
                "history_fingerprint": self.history.fingerprint,
                "studies": [a.study for a in self.history.arms], "seed": self.seed}

    def __repr__(self) -> str:
        kind = (f"robust MAP prior (weight {self.robust_weight:g} on Normal(MAP median, "
                f"{self.robust_components[0].params['sigma']:g}))" if self.robust_weight
                else "MAP prior")
        n = len(self.history)
        head = (f"{kind} of the control log hazard per month | {n} historical "
                f"arm{'s' if n != 1 else ''}")
        if self.per_interval:
            t = self.summary()
            body = "; ".join(f"{i}: {r.log_hazard:.2f} ({r.lower:.2f} to {r.upper:.2f}), ESS "
                             f"{r.ess_events:.0f}" for i, r in t.iterrows())
            return f"{head} | per interval: {body} | tau prior HalfNormal({self.tau_scale:g})"
        tau = self.tau_summary()
        tau_text = (f"tau median {tau['median']:.2f} (95% {tau['lower']:.2f}-"
                    f"{tau['upper']:.2f}), prior {tau['prior']}" if "median" in tau
                    else tau["tau"])
        lo, mid, hi = self.quantiles((0.025, 0.5, 0.975))
        return (f"{head} | median {mid:.3f} (95% {lo:.3f} to {hi:.3f}); constant-hazard "
                f"median {np.log(2) / np.exp(mid):.3g} months | {tau_text} | ESS "
                f"{self.ess():.0f} events (ELIR) | {self.mixture}")


def map_prior(history, *, cuts=None, tau_scale: float = DEFAULT_TAU_SCALE, mu_prior=None,
              draws: int = 5000, tune: int = 1000, chains: int = 4, random_seed: int = 1,
              max_components: int = 4, mixture_tolerance: float = 0.02,
              target_accept: float = 0.995) -> MAPPrior:
    """The MAP prior of the control log hazard per month from historical control arms
    (:class:`~bayes_hcc.borrowing.history.History`, or records for it).

    ``cuts`` (months): a per-interval MAP prior for the piecewise-exponential baseline, one
    meta-analysis per interval [0, c1), [c1, c2), ..., [ck, inf) of each arm's events and
    exposure in it (arms given per interval on these cuts, or as patient-level data);
    without cuts, a constant hazard. ``tau_scale``: HalfNormal scale of the between-trial
    SD (0: no heterogeneity); ``mu_prior``: prior of the mean log hazard (default
    Normal(-2.5, 2), the package's log-rate prior per month). The predictive is sampled
    (``chains`` x ``draws``) and approximated by the fewest normals (up to
    ``max_components``) whose 2.5% ... 97.5% quantiles lie within ``mixture_tolerance``
    (log hazard) of the draws' (``accuracy``). ``target_accept`` is high by default: with
    informative historical arms (100+ events) the between-trial SD has a funnel that gave a
    few divergences in 40,000 draws at 0.95 and 0.99 and none at 0.995 (measured, 8 seeds);
    the model is tiny, so this costs little. Non-convergence of the sampler is a
    ConvergenceWarning and is kept in ``diagnostics``.
    """
    from bayes_hcc.borrowing.history import History
    from bayes_hcc.convergence import THRESHOLDS, sampler_rows

    if not isinstance(history, History):
        history = History(history)
    settings = check_sampler_settings(draws=draws, tune=tune, chains=chains, seed=random_seed,
                                      target_accept=target_accept, error=SpecError,
                                      where="map_prior: ")
    draws, tune, chains = settings["draws"], settings["tune"], settings["chains"]
    if draws == "auto":
        raise SpecError("map_prior: draws='auto' is for model fits; give a number of draws "
                        "per chain (default 5000).")
    max_components = whole_number(max_components, "map_prior", "max_components", 1,
                                  what=" (the most normals in the mixture)", error=SpecError)
    mixture_tolerance = one_number(mixture_tolerance, "map_prior", "mixture_tolerance", "0.02")
    if mixture_tolerance <= 0:
        raise SpecError(f"map_prior: mixture_tolerance={mixture_tolerance:g} must be > 0 (the "
                        "largest difference, in log hazard, between the mixture's quantiles "
                        "and the draws').")
    tau_scale = float(tau_scale)
    if not (np.isfinite(tau_scale) and tau_scale >= 0):
        raise SpecError(f"map_prior: tau_scale = {tau_scale!r} must be >= 0.")
    mu_prior = Prior("Normal", mu=LOG_RATE_MU_MONTHS, sigma=2.0) if mu_prior is None \
        else Prior.from_dict(mu_prior)
    if mu_prior.dist != "Normal":
        raise SpecError("map_prior: mu_prior must be a Normal prior.")
    if cuts is None:
        events, exposure = history.events[:, None], history.exposure[:, None]
    else:
        try:
            cuts = np.asarray(cuts, float).ravel()
        except (TypeError, ValueError):  # text ("3,6"): not split into characters
            raise SpecError(f"map_prior: cuts={cuts!r} must be increasing positive times in "
                            "months, e.g. cuts=[3, 6, 12].") from None
        if len(cuts) == 0 or not (np.all(np.isfinite(cuts)) and np.all(cuts > 0)
                                  and np.all(np.diff(cuts) > 0)):
            raise SpecError(f"map_prior: cuts {cuts.tolist()} must be increasing positive "
                            "times in months.")
        events, exposure = history.per_interval(np.r_[0.0, cuts, np.inf])
    if tau_scale > 0 and len(history) < 2:
        warn("map_prior: one historical arm cannot inform the between-trial SD: "
             "the MAP prior's width comes from its HalfNormal prior alone.", DataWarning)
    trace = _sample(events, exposure, tau_scale, mu_prior, draws, tune, chains, random_seed,
                    target_accept)
    import xarray as xr

    dt = xr.DataTree.from_dict({"/posterior": trace["posterior"],
                                "/sample_stats": trace["sample_stats"]})
    sampled = ["mu"] + (["tau", "z", "z_new"] if tau_scale > 0 else [])
    dt.attrs["sampled_variables"] = json.dumps(sampled)
    rows = sampler_rows(dt, THRESHOLDS)
    diagnostics = pd.DataFrame(rows, index=["value", "threshold", "ok", "where"]).T
    if not diagnostics["ok"].all():
        failed = ", ".join(diagnostics.index[~diagnostics["ok"].astype(bool)])
        warn(f"map_prior: the sampler's checks failed ({failed}); the MAP prior may "
                      "be unreliable: see .diagnostics.", ConvergenceWarning)
    theta = dt["posterior"]["theta_new"].to_numpy().reshape(-1, events.shape[1])
    elements, tables = [], []
    for j in range(theta.shape[1]):
        w, m, s = _fit_mixture(theta[:, j], max_components, random_seed, mixture_tolerance)
        mixture = _as_prior(w, m, s)
        emp = np.quantile(theta[:, j], QUANTILES)
        fitted = mixture_quantile(mixture, QUANTILES)
        tables.append(pd.DataFrame({"interval": j, "quantile": QUANTILES, "draws": emp,
                                    "mixture": fitted, "difference": fitted - emp}))
        elements.append(mixture)
    accuracy = pd.concat(tables, ignore_index=True)
    accuracy = (accuracy.drop(columns="interval").set_index("quantile") if cuts is None
                else accuracy.set_index(["interval", "quantile"]))
    accuracy.attrs["max_abs_difference"] = float(accuracy["difference"].abs().max())
    return MAPPrior(history, elements, dt["posterior"].to_dataset(), tau_scale=tau_scale,
                    mu_prior=mu_prior, accuracy=accuracy, diagnostics=diagnostics,
                    seed=random_seed, cuts=None if cuts is None else cuts.tolist())
