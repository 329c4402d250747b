"""The PyMC graph of a model for a trial: the data arrays (``prepare``), the graph's
structure key (what the compile cache is keyed on) and ``build_pymc``."""

from __future__ import annotations

import json

import numpy as np
import pymc as pm

from bayes_hcc.data.trial import INTERVAL, LEFT
from bayes_hcc.errors import ModelError
from bayes_hcc.models.covariates import covariate_design
from bayes_hcc.models.design import build_eta, centring_weights, resolve_site_parametrization
from bayes_hcc.units import log_unit_in_months

__all__ = ["prepare", "build_pymc", "prior_data", "standardize_covariates",
           "site_parametrization_for"]


def standardize_covariates(trial, endpoint, names, reference_levels=None):
    """The design matrix of the covariates (``models.covariates``): numeric columns centred
    and scaled, categorical ones as centred sum-to-zero contrasts; returns (X, info)."""
    design = covariate_design(trial, names, reference_levels)
    return design.X, design.info()


def prepare(model, trial, endpoint):
    """Everything that defines the graph structure and the data for pm.Data."""
    # the endpoint as the model's censoring setting sees it (bounds, or imputed times)
    ep = trial.endpoint(endpoint).with_censoring(model.censoring)
    n_sites = len(ep.sites)
    if model.site_effect != "none" and n_sites < 2:
        raise ModelError(f"site_effect={model.site_effect!r} needs at least 2 sites; these "
                         f"data have {n_sites}. Use site_effect='none'.")
    if model.arm_by_site and n_sites < 2:
        raise ModelError("arm_by_site='random' needs at least 2 sites.")
    if ep.n_events == 0:
        raise ModelError(f"{ep.name}: no events at all; nothing to estimate.")
    family = model.family_for(ep.time, ep.event, ep.time_unit)
    priors = model.resolved_priors(family)
    X, scale = standardize_covariates(trial, endpoint, model.covariates,
                                      model.reference_levels)
    aggregate = family.aggregates and X.shape[1] == 0
    # Interval-censored events: observation kinds, lower bounds as the times, upper bounds
    # (models.likelihood); otherwise the event indicator and the times, as always.
    interval = ep.has_bounds
    kind = ep.kind if interval else ep.event
    upper = ep.upper if interval else None
    if aggregate:
        # Units are the arm x site cells: sufficient statistics (exact).
        unit = ep.arm.astype(np.int64) * n_sites + ep.site
        n_units = 2 * n_sites
        u_arm = np.repeat([0.0, 1.0], n_sites)
        u_site = np.tile(np.arange(n_sites), 2)
        u_X = np.zeros((n_units, 0))
        data = family.data_arrays(ep.lower, kind, unit, n_units, upper)
    else:
        # Patients censored at time 0 contribute exactly 0 to the likelihood; leaving them
        # out of the graph avoids 0 * log(0) in the gradient (they stay in log_likelihood).
        # (A left-censored patient, event in (0, R], has L = 0 and stays.)
        keep = np.flatnonzero((ep.lower > 0) | (kind != 0))
        if interval:
            # exact and right-censored patients first, then the interval-censored ones: the
            # likelihood evaluates each group on its own slice (``Family.build``)
            keep = keep[np.argsort(np.isin(kind[keep], (INTERVAL, LEFT)), kind="stable")]
        n_units = len(keep)
        u_arm, u_site, u_X = ep.arm[keep].astype(float), ep.site[keep].astype(np.int64), X[keep]
        data = family.data_arrays(ep.lower[keep], kind[keep], np.arange(n_units), n_units,
                                  None if upper is None else upper[keep])
    # Time-scaled priors are in months; the family moves them by the unit (exact).
    data = {"arm": u_arm, **data, "log_unit": np.asarray(log_unit_in_months(ep.time_unit))}
    if model.site_effect != "none" or model.arm_by_site:
        data["site_idx"] = u_site  # only what the graph uses: nutpie knows no other names
    # Centring of the arm and random site terms (exact; design.build_eta)
    weights = centring_weights(ep.arm, ep.site, ep.event, n_sites)
    data["arm_centre"] = weights["arm_centre"]
    if model.site_effect == "random":
        data["site_weight"] = weights["site_weight"]
    if model.arm_by_site == "random":
        data["arm_site_weight"] = weights["arm_site_weight"]
    if X.shape[1]:
        data["X"] = u_X
    # Prior parameters are data too (see build_pymc), so prior variants share a compile.
    data.update(prior_data(priors))
    parametrization = site_parametrization_for(model, ep)
    key = json.dumps({"family": family.structure(),
                      "site_effect": model.site_effect, "arm_by_site": model.arm_by_site,
                      "site_parametrization": parametrization, "n_sites": n_sites,
                      "n_cov": X.shape[1], "aggregate": aggregate, "interval": interval,
                      "priors": {k: v.structure for k, v in sorted(priors.items())}},
                     sort_keys=True)
    return ep, family, priors, X, scale, data, key


def site_parametrization_for(model, ep) -> str:
    """The site parametrization this fit uses ("auto" resolved from the events per site)."""
    return resolve_site_parametrization(model.site_parametrization, model.site_effect, ep.site,
                                        ep.event, len(ep.sites))


def prior_data(priors) -> dict:
    """Each prior parameter as a named data value: ``prior__<name>__<parameter>``."""
    return {f"prior__{k}__{p}": np.asarray(v, float)
            for k, pr in priors.items() for p, v in pr.flat_params().items()}


class _DataPrior:
    """A prior whose parameters are pm.Data containers (changeable without recompiling)."""

    def __init__(self, prior, containers):
        self.prior, self.dist, self.params = prior, prior.dist, containers
        self.has_location = prior.has_location

    def pymc(self, name, shift=None, **kwargs):
        return self.prior.pymc(name, shift, params=self.params, **kwargs)


def build_pymc(family, priors, data, *, site_effect, arm_by_site, n_sites, n_cov,
               site_parametrization="noncentered"):
    coords = {"site": np.arange(n_sites), "covariate": np.arange(n_cov),
              **{k: np.arange(len(v)) for k, v in family.coords().items()}}
    with pm.Model(coords=coords) as m:
        containers = {k: pm.Data(k, v) for k, v in data.items()}
        priors = {k: _DataPrior(pr, {p: containers[f"prior__{k}__{p}"]
                                     for p in pr.flat_params()})
                  for k, pr in priors.items()}
        eta, offset = build_eta(priors, containers, site_effect=site_effect,
                                arm_by_site=arm_by_site, n_cov=n_cov,
                                site_parametrization=site_parametrization,
                                arm_effect=family.arm_effect)
        pm.Potential("loglik", family.build(priors, containers, eta, coords, offset))
    return m
