"""Subgroup analyses with hierarchical shrinkage: the Bayesian answer to over-read subgroup
forest plots.

For each subgroup variable ``by`` (a column with a few levels, or "site"):

* **shrunk**: one model of all patients with the subgroup's main effect (sum-to-zero level
  effects on the log hazard: subgroups may differ in prognosis) and a treatment-by-subgroup
  interaction with hierarchical shrinkage: log HR_g = log_hr + d_g, d_g = sd * z_g,
  sd ~ HalfNormal(0.25) (``arm_site_sd``: HRs of subgroups typically within a factor 1.6 of
  the average). The model's own machinery for treatment-by-site heterogeneity, with the
  subgroup in the role of the site; the trial's sites, when the analysis models them, stay
  in the model as a categorical covariate.
* **unshrunk**: the analysis model fitted to each subgroup's patients on their own (the
  classical forest plot's estimate).

Both come from the same spec (family, priors, sampler), so they differ only by the
shrinkage.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from bayes_hcc.data.trial import TrialData, require_trial
from bayes_hcc.errors import (BayesHCCError, ConvergenceWarning, ModelError, bool_flags, data_notes,
                              one_prob)
from bayes_hcc.models.base import DEFAULT_PRIORS, SurvivalModel
from bayes_hcc.models.covariates import (AliasedCovariates, check_group_aliasing,
                                         covariate_design, grouping_column)
from bayes_hcc.models.fit import Fit
from bayes_hcc.models.from_spec import build, fit_spec, population, require_fit_data
from bayes_hcc.models.graph import fixed_group_terms
from bayes_hcc.spec.model_spec import apply_overrides, load_spec

__all__ = ["subgroups", "MAX_LEVELS"]

#: more levels than this is a continuous variable: cut it into groups first (pd.cut)
MAX_LEVELS = 12
TRIAL_SITE = "trial_site"


def _levels(trial: TrialData, column: str) -> tuple[np.ndarray, list]:
    values, labels = grouping_column(trial, column, f"subgroups: by={column!r}")
    if len(labels) > MAX_LEVELS:
        raise BayesHCCError(f"subgroups: {column!r} has {len(labels)} levels (more than "
                            f"{MAX_LEVELS}): cut a continuous variable into a few groups "
                            "first (pandas.cut) and pass that column.")
    if len(labels) < 2:
        raise BayesHCCError(f"subgroups: {column!r} has a single level; nothing to compare.")
    return values, list(labels)


def _regrouped(trial: TrialData, column: str, values) -> TrialData:
    """The trial with the subgroup in the site column; the trial's sites kept as the
    ``trial_site`` covariate."""
    frame = trial.to_frame().copy()
    frame[TRIAL_SITE] = frame["site"]
    frame["site"] = values
    return TrialData(frame, endpoints=trial.endpoints, control=trial.control,
                     treatment=trial.treatment, time_unit=trial.time_unit,
                     layout=trial.layout, cut_date=trial.cut_date, truth=trial.truth,
                     source=f"{trial.source} [subgroups by {column}]",
                     assessments=trial.assessments)


def _shrunk_spec(spec, column: str, n_sites: int):
    cov = list(spec.covariates)
    strata = dict(spec.strata)
    models_sites = spec.model_settings()["site_effect"] != "none" or \
        strata.get("column") == "site"
    if column != "site" and models_sites and n_sites > 1:
        cov.append(TRIAL_SITE)  # the trial's sites, as a categorical covariate
    if strata.get("column") in ("site", column):
        strata = {}
    return apply_overrides(spec, {"site.effect": "fixed", "site.arm_by_site": "random",
                                  "covariates": [c for c in cov if c != column],
                                  "strata": strata},
                           name=f"{spec.name} [subgroups by {column}]")


def _alone_spec(spec, sub: TrialData, column: str):
    """The analysis spec for one subgroup's patients (site terms and strata only where the
    subgroup has at least two sites / strata), and notes on the covariates left out."""
    ep = sub.endpoint(spec.endpoint)
    over = {}
    if len(np.unique(ep.site)) < 2 or column == "site":
        over.update({"site.effect": "none", "site.arm_by_site": "none"})
    strata = dict(spec.strata)
    if strata:
        col = strata["column"]
        vals = ep.site if col == "site" else sub.to_frame()[col].astype(str).to_numpy()
        if col == column or len(np.unique(vals)) < 2:
            over["strata"] = {}
    cov = [c for c in spec.covariates if c != column and
           sub.to_frame()[c].nunique() > 1]
    # in a small subgroup a covariate can coincide with the arm (or with another one, or
    # with the fixed site or stratum terms kept here) by chance: left out of this
    # subgroup's fit, and said in its note
    kept, dropped = _separable(apply_overrides(spec, over) if over else spec, sub, cov)
    notes = [f"covariate {c!r} left out of the unshrunk fit (determined by the arm, the "
             "other covariates or the fixed site/stratum terms in this subgroup)"
             for c in dropped]
    if kept != list(spec.covariates):
        over["covariates"] = kept
        over["reference_levels"] = {k: v for k, v in dict(spec.reference_levels).items()
                                    if k in kept}
    return (apply_overrides(spec, over) if over else spec), notes


def _separable(spec, trial: TrialData, names) -> tuple[list, list]:
    """Of the covariates ``names``, in order, those the model of ``spec`` can separate on
    ``trial`` (``covariate_design``'s check, and ``check_group_aliasing`` against the
    model's fixed site and stratum terms), and those it cannot."""
    refs = dict(spec.reference_levels)
    groups = fixed_group_terms(build(spec), trial, spec.endpoint)
    kept, dropped = [], []
    for c in names:
        try:
            design = covariate_design(trial, kept + [c], {k: v for k, v in refs.items()
                                                          if k in kept + [c]})
            for g in groups:
                check_group_aliasing(design.X, design.info(), *g)
            kept.append(c)
        except AliasedCovariates:
            dropped.append(c)
    return kept, dropped


def _summary(log_hr, prob):
    hr = np.exp(np.asarray(log_hr, float).ravel())
    lo, hi = np.quantile(hr, [(1 - prob) / 2, (1 + prob) / 2])
    return float(np.median(hr)), float(lo), float(hi), float(np.mean(hr < 1))


def _quiet_fit(spec, trial, fast, seed):
    """A fit whose warnings (small subgroups, arms without events, convergence) become the
    table's note instead of being printed once per subgroup."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_spec(spec, trial, fast=fast, random_seed=seed)
    notes = data_notes(caught)  # the model's on this subgroup (a fixed site without events)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        notes.append("convergence warning (see bh.check)")
    return fit, notes


@bool_flags
def subgroups(fit_or_spec, trial: TrialData, by, *, prob: float = 0.95, fast: bool = False,
              random_seed: int | None = None) -> pd.DataFrame:
    """Subgroup HRs, shrunk (treatment-by-subgroup interaction with a hierarchical prior)
    and unshrunk (each subgroup alone), for every column in ``by``.

    Parameters
    ----------
    fit_or_spec : Fit, ModelSpec or path to a spec
        The analysis: its family, priors and sampler settings are used throughout (a Fit
        gives the overall row; a spec is fitted to ``trial`` for it).
    trial : TrialData
    by : str or list of str
        Subgroup columns ("site" or columns of the data with at most ``MAX_LEVELS``
        levels).
    fast : bool
        Exploratory fits (``FAST`` settings).

    Returns
    -------
    DataFrame indexed by (by, level), with an ``overall`` row first: patients, events per
    arm, shrunk HR (median, ``prob`` credible interval, P(HR < 1)), unshrunk HR (same),
    and a note (small subgroups, arms without events, a subgroup without any event:
    no unshrunk HR, failed diagnostics). ``attrs``
    carries footnotes for :func:`bayes_hcc.write_table` and the shrinkage prior.
    """
    from bayes_hcc.diagnostics import check

    require_trial(trial, "subgroups")
    prob = one_prob(prob, "subgroups")
    by = [by] if isinstance(by, str) or not np.iterable(by) else list(by)
    if not by or not all(isinstance(c, str) for c in by):
        raise BayesHCCError(f"subgroups: by={by!r}; give a column name or a list of them, "
                            "e.g. by='site' or by=['site', 'ecog'].")
    by = list(dict.fromkeys(by))  # a column named twice is one set of subgroups
    if isinstance(fit_or_spec, SurvivalModel):
        raise ModelError(f"subgroups takes a fit or an analysis spec, not a model "
                         f"({type(fit_or_spec).__name__}: it has no endpoint yet); fit it "
                         "first, bh.subgroups(model.fit(trial, 'os'), trial, by=...), or "
                         "give a spec such as 'models/primary_os.toml'.")
    if hasattr(fit_or_spec, "state_probabilities") or (
            not isinstance(fit_or_spec, Fit) and load_spec(fit_or_spec).illness_death):
        raise ModelError("subgroups: an illness-death analysis has no single hazard ratio per "
                         "subgroup (one per transition); give the single-endpoint analysis "
                         "of the endpoint (e.g. models/primary_os.toml, or its fit).")
    if isinstance(fit_or_spec, Fit):
        spec, overall = fit_or_spec.spec, fit_or_spec
        require_fit_data(overall, trial, "subgroups", "its overall row would describe other "
                         "patients than its subgroups")
    else:
        spec = load_spec(fit_or_spec)
        overall, _ = _quiet_fit(spec, trial, fast, random_seed)
    if overall.family.effect.ratio != "HR":
        raise ModelError("subgroups: the analysis model has no hazard ratio (an AFT family); "
                         "use a proportional-hazards family.")
    seed = overall.random_seed if random_seed is None else random_seed
    # the analysis population (a per-protocol spec's): the subgroups' patients and events
    # are counted in it, as the overall fit's are (the fits below select it again: a no-op)
    trial = population(spec, trial)
    ep = trial.endpoint(spec.endpoint)
    arms = ep.arms
    rows = []
    med, lo, hi, p = _summary(overall.posterior["log_hr"], prob)
    rows.append({"by": "overall", "level": "all", "patients": len(ep),
                 **{f"events {a}": int(ep.event[ep.arm == i].sum()) for i, a in enumerate(arms)},
                 "HR shrunk": med, "lower shrunk": lo, "upper shrunk": hi,
                 "P(HR < 1) shrunk": p, "HR unshrunk": med, "lower unshrunk": lo,
                 "upper unshrunk": hi, "P(HR < 1) unshrunk": p, "note": "the analysis"})
    sd_notes = {}
    for column in by:
        values, labels = _levels(trial, column) if column != "site" else \
            (np.asarray(ep.sites, dtype=object)[ep.site].astype(str), list(ep.sites))
        regrouped = _regrouped(trial, column, values)
        shrunk_spec = _shrunk_spec(spec, column, len(ep.sites))
        # the subgroups' own (fixed) effects absorb a covariate that is the same within each
        # subgroup (the trial's sites when every site lies in one subgroup): left out
        kept, absorbed = _separable(shrunk_spec, regrouped, shrunk_spec.covariates)
        if absorbed:
            shrunk_spec = apply_overrides(shrunk_spec, {
                "covariates": kept, "reference_levels": {
                    k: v for k, v in dict(shrunk_spec.reference_levels).items() if k in kept}})
        shrunk_notes = [f"{'the trial sites' if c == TRIAL_SITE else f'covariate {c!r}'} "
                        f"left out of the shrunk fit (the same within each {column} "
                        "subgroup: the subgroups' own effects adjust for it)"
                        for c in absorbed]
        shrunk, _ = _quiet_fit(shrunk_spec, regrouped, fast, seed)
        post = shrunk.posterior
        sd = post["arm_site_sd"].to_numpy().ravel()
        sd_notes[column] = (float(np.median(sd)), bool(check(shrunk, warn=False).ok))
        for level in labels:
            mask = values == level
            g = list(shrunk.sites).index(level)
            s_med, s_lo, s_hi, s_p = _summary(
                post["log_hr"] + post["arm_site_effect"].isel(site=g), prob)
            note = list(shrunk_notes)
            ev = {a: int(ep.event[mask & (ep.arm == i)].sum()) for i, a in enumerate(arms)}
            if min(int((mask & (ep.arm == i)).sum()) for i in range(2)) == 0:
                u = (np.nan,) * 4
                note.append("one arm has no patients: no subgroup estimate")
            elif sum(ev.values()) == 0:
                # an early cut or a small subgroup: nothing for a fit of it alone to
                # estimate (its shrunk HR above is the model's, borrowed from the others)
                u = (np.nan,) * 4
                note.append("no events: no unshrunk estimate")
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sub = trial.subset(mask, label=f"{column} = {level}")
                alone_spec, dropped = _alone_spec(spec, sub, column)
                alone, alone_notes = _quiet_fit(alone_spec, sub, fast, seed)
                alone_notes = dropped + alone_notes
                u = _summary(alone.posterior["log_hr"], prob)
                if 0 in ev.values():
                    note.append("an arm without events: its unshrunk HR is the prior's")
                if not check(alone, warn=False).ok:
                    note.append("unshrunk fit failed diagnostics")
                note += alone_notes
            rows.append({"by": column, "level": level, "patients": int(mask.sum()),
                         **{f"events {a}": v for a, v in ev.items()},
                         "HR shrunk": s_med, "lower shrunk": s_lo, "upper shrunk": s_hi,
                         "P(HR < 1) shrunk": s_p, "HR unshrunk": u[0], "lower unshrunk": u[1],
                         "upper unshrunk": u[2], "P(HR < 1) unshrunk": u[3],
                         "note": "; ".join(note + ([] if sd_notes[column][1] else
                                                   ["shrunk fit failed diagnostics"]))})
    out = pd.DataFrame(rows).set_index(["by", "level"])
    level = int(round(100 * prob))
    out.attrs.update(prob=prob, endpoint=spec.endpoint, arms=list(arms),
                     interaction_sd={k: v[0] for k, v in sd_notes.items()})
    out.attrs["footnotes"] = [
        f"HR = {arms[1]} relative to {arms[0]} (posterior median, {level}% credible "
        f"interval); endpoint {spec.endpoint.upper()}; model {spec.family} (spec "
        f"{spec.name}).",
        "Shrunk: one model of all patients with the subgroup's main effect and a "
        "treatment-by-subgroup interaction with a hierarchical prior (SD ~ "
        f"{shrunk_spec.prior_dict.get('arm_site_sd', DEFAULT_PRIORS['arm_site_sd'])}); "
        "posterior "
        "median interaction SD: " + ", ".join(f"{k} {v[0]:.2f}" for k, v in sd_notes.items())
        + ". Unshrunk: the same analysis fitted to each subgroup alone.",
        "HRs are conditional: on the subgroup's main effect (shrunk) and on the analysis's "
        "own covariates and site terms (both).",
        "Subgroup analyses are exploratory; read the shrunk HRs first: they borrow from the "
        "other subgroups as much as the data support."]
    return out
