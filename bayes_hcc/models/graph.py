"""The PyMC graph of a model for a trial: the data arrays (``prepare``), the graph's
structure key (what the compile cache is keyed on) and ``build_pymc``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pymc as pm

from bayes_hcc.data.trial import INTERVAL, LEFT
from bayes_hcc.errors import DataWarning, ModelError, warn
from bayes_hcc.models.covariates import check_group_aliasing, covariate_design, grouping_column
from bayes_hcc.models.design import (build_eta, build_strata, centring_weights,
                                     resolve_site_parametrization)
from bayes_hcc.units import log_unit_in_months

__all__ = ["prepare", "build_pymc", "prior_data", "packed_prior_data", "unpacked_priors",
           "standardize_covariates", "site_parametrization_for", "fixed_group_terms"]


def standardize_covariates(trial, endpoint, names, reference_levels=None):
    """The design matrix of the covariates (``models.covariates``): numeric columns centred
    and scaled, categorical ones as centred sum-to-zero contrasts; returns (X, info)."""
    design = covariate_design(trial, names, reference_levels)
    return design.X, design.info()


def stratum_index(trial, ep, column) -> tuple[np.ndarray, tuple]:
    """Each patient's stratum (index) and the strata's labels, for a stratified baseline on
    ``column`` ("site" or any column of the data). Missing values are refused by name."""
    if column == "site":
        return np.asarray(ep.site, np.int64), tuple(ep.sites)
    text, labels = grouping_column(trial, column, f"strata={column!r}")
    return pd.Categorical(text, categories=labels).codes.astype(np.int64), labels


def fixed_group_terms(model, trial, endpoint) -> list[tuple]:
    """The model's fixed per-group terms: fixed site effects, and separate stratum
    baselines (``pooling="none"``). Each as (each patient's group, then the wording of
    ``check_group_aliasing``'s error): a covariate that is the same within every group of
    one is absorbed by it."""
    ep = trial.endpoint(endpoint)
    terms = []
    if model.site_effect == "fixed":
        terms.append((ep.site, "each site", "the fixed site effects (site_effect='fixed')",
                      "Use site_effect='random' (in a spec: [site] effect = \"random\"; a "
                      "site-level covariate is then estimated from the differences between "
                      "sites, shrunk), or leave them out: the fixed site effects already "
                      "adjust for them."))
    if model.strata is not None and model.pooling == "none":
        terms.append((stratum_index(trial, ep, model.strata)[0],
                      f"each stratum of strata={model.strata!r}",
                      "the strata's separate baselines (pooling='none')",
                      "Use pooling='partial' (in a spec: [strata] pooling = \"partial\"), "
                      "or leave them out: the stratified baselines already adjust for them."))
    return terms


def _warn_groups_without_events(ep, group, labels, what: str, setting: str,
                                remedy: str) -> None:
    """A fixed per-group term (a fixed site effect, a separate stratum baseline) of a group
    without events is the prior's alone (nothing shrinks it towards the other groups), and
    it enters the standardized estimand through that group's patients."""
    events = np.bincount(group, weights=ep.event, minlength=len(labels))
    empty = [str(labels[i]) for i in np.flatnonzero(events == 0)]
    if empty:
        warn(f"{ep.name}: {what} {', '.join(map(repr, empty))} have no events: with "
             f"{setting} their {'effects' if what == 'site(s)' else 'baselines'} are "
             "informed by the prior only (and enter the standardized estimand through their "
             f"patients). Consider {remedy}.", DataWarning)


def prepare(model, trial, endpoint):
    """Everything that defines the graph structure and the data for pm.Data."""
    # the endpoint as the model's censoring setting sees it (bounds, or imputed times)
    ep = trial.endpoint(endpoint).with_censoring(model.censoring)
    n_sites = len(ep.sites)
    if model.site_effect != "none" and n_sites < 2:
        raise ModelError(f"site_effect={model.site_effect!r} needs at least 2 sites; these "
                         f"data have {n_sites}. Use site_effect='none' (in a spec: "
                         "[site] effect = \"none\").")
    if model.arm_by_site and n_sites < 2:
        raise ModelError("arm_by_site='random' needs at least 2 sites.")
    empty = [a for i, a in enumerate(ep.arms) if not np.any(ep.arm == i)]
    if empty:
        raise ModelError(f"{ep.name}: arm {empty[0]!r} has no patients in these data (a "
                         "subset of one arm?): the arms cannot be compared. Describe one "
                         "arm with trial.summary() or trial.kaplan_meier(); fit both.")
    if ep.n_events == 0:
        raise ModelError(f"{ep.name}: no events at all; nothing to estimate.")
    if model.site_effect == "fixed":
        _warn_groups_without_events(ep, ep.site, ep.sites, "site(s)", "site_effect='fixed'",
                                    "site_effect='random' (shrunk towards the other sites) "
                                    "or pooling small sites")
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
    strata = model.strata
    if strata is not None:
        stratum, strata_labels = stratum_index(trial, ep, strata)
        n_strata = len(strata_labels)
        if n_strata < 2:
            raise ModelError(f"strata={strata!r} has a single level ({strata_labels[0]!r}): "
                             "nothing to stratify; leave strata out.")
        if model.pooling == "none":
            _warn_groups_without_events(ep, stratum, strata_labels,
                                        f"stratum/strata of {strata!r}", "pooling='none'",
                                        "pooling='partial' (shrunk towards the other strata)")
    else:
        stratum, n_strata = np.zeros(len(ep), np.int64), 1
    for groups in fixed_group_terms(model, trial, endpoint):
        check_group_aliasing(X, scale, *groups)
    if aggregate:
        # Units are the arm x site (x stratum) cells: sufficient statistics (exact).
        unit = (ep.arm.astype(np.int64) * n_sites + ep.site) * n_strata + stratum
        n_units = 2 * n_sites * n_strata
        cells = np.arange(n_units)
        u_arm = (cells // (n_sites * n_strata)).astype(float)
        u_site = (cells // n_strata) % n_sites
        u_stratum = cells % n_strata
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
        u_stratum = stratum[keep]
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
    if strata is not None:
        data.update(strata_rows(u_stratum, n_strata, family.aggregates,
                                int(data["n_plain"]) if "n_plain" in data else None))
    # Prior parameters are data too (see build_pymc), so prior variants share a compile.
    data.update(prior_data(priors))
    parametrization = site_parametrization_for(model, ep)
    key = json.dumps({"family": family.structure(),
                      "site_effect": model.site_effect, "arm_by_site": model.arm_by_site,
                      "site_parametrization": parametrization, "n_sites": n_sites,
                      "n_cov": X.shape[1], "aggregate": aggregate, "interval": interval,
                      "strata": None if strata is None else [n_strata, model.pooling],
                      "priors": {k: v.structure for k, v in sorted(priors.items())}},
                     sort_keys=True)
    return ep, family, priors, X, scale, data, key


def strata_rows(u_stratum, n_strata: int, aggregate: bool, n_plain) -> dict:
    """Data telling the graph which units belong to which stratum: ``stratum_idx`` (per
    unit, for a family with its own stratified build: the piecewise model) or each
    stratum's rows (``Family.build``'s patient-level likelihood; with interval-censored
    patients, rows among the first ``n_plain`` and among the rest)."""
    from bayes_hcc.families.base import STRATUM_IC_ROWS, STRATUM_ROWS

    u_stratum = np.asarray(u_stratum, np.int64)
    if aggregate:
        return {"stratum_idx": u_stratum}
    out = {}
    plain = u_stratum if n_plain is None else u_stratum[:n_plain]
    for s in range(n_strata):
        out[f"{STRATUM_ROWS}{s}"] = np.flatnonzero(plain == s).astype(np.int64)
        if n_plain is not None:
            out[f"{STRATUM_IC_ROWS}{s}"] = np.flatnonzero(u_stratum[n_plain:] == s).astype(
                np.int64)
    return out


def site_parametrization_for(model, ep) -> str:
    """The site parametrization this fit uses ("auto" resolved from the events per site)."""
    return resolve_site_parametrization(model.site_parametrization, model.site_effect, ep.site,
                                        ep.event, len(ep.sites))


def prior_data(priors) -> dict:
    """Each prior parameter as a named data value: ``prior__<name>__<parameter>``."""
    return {f"prior__{k}__{p}": np.asarray(v, float)
            for k, pr in priors.items() for p, v in pr.flat_params().items()}


def packed_prior_data(prior_sets) -> np.ndarray:
    """Every parameter value of the priors in ``prior_sets`` (dicts: name -> prior) as one
    vector, in the order ``unpacked_priors`` reads it back. For a model with many priors
    (the illness-death model's three transitions): one data array instead of one per
    parameter (the compiled sampler takes at most about 30 data arrays)."""
    values = [np.ravel(np.asarray(v, float)) for priors in prior_sets for k in sorted(priors)
              for v in priors[k].flat_params().values()]
    return np.concatenate(values) if values else np.zeros(0)


def unpacked_priors(prior_sets, vector) -> list[dict]:
    """``prior_sets`` with their parameters read from ``vector``, a data container holding
    ``packed_prior_data(prior_sets)``: prior values then change without recompiling (the
    layout depends only on the priors' structures, which the compile key holds)."""
    out, i = [], 0
    for priors in prior_sets:
        wrapped = {}
        for k in sorted(priors):
            params = {}
            for p, v in priors[k].flat_params().items():
                shape = np.shape(v)
                n = int(np.prod(shape))
                params[p] = vector[i] if shape == () else vector[i:i + n].reshape(shape)
                i += n
            wrapped[k] = _DataPrior(priors[k], params)
        out.append(wrapped)
    return out


class _DataPrior:
    """A prior whose parameters are pm.Data containers (changeable without recompiling)."""

    def __init__(self, prior, containers):
        self.prior, self.dist, self.params = prior, prior.dist, containers
        self.has_location = prior.has_location

    def pymc(self, name, shift=None, **kwargs):
        return self.prior.pymc(name, shift, params=self.params, **kwargs)


def build_pymc(family, priors, data, *, site_effect, arm_by_site, n_sites, n_cov,
               site_parametrization="noncentered", n_strata: int = 1,
               pooling: str | None = None):
    coords = {"site": np.arange(n_sites), "covariate": np.arange(n_cov),
              **{k: np.arange(len(v)) for k, v in family.coords().items()}}
    if pooling is not None:
        coords["stratum"] = np.arange(n_strata)
    with pm.Model(coords=coords) as m:
        containers = {k: pm.Data(k, v) for k, v in data.items()}
        priors = {k: _DataPrior(pr, {p: containers[f"prior__{k}__{p}"]
                                     for p in pr.flat_params()})
                  for k, pr in priors.items()}
        eta, offset = build_eta(priors, containers, site_effect=site_effect,
                                arm_by_site=arm_by_site, n_cov=n_cov,
                                site_parametrization=site_parametrization,
                                arm_effect=family.arm_effect)
        strata = None if pooling is None else build_strata(
            family, priors, n_strata, pooling, containers["log_unit"])
        pm.Potential("loglik", family.build(priors, containers, eta, coords, offset,
                                            strata=strata))
    return m
