"""Sensitivity grids: a base spec, variants by dotted-key overrides, one tidy table."""

from __future__ import annotations

import warnings
from concurrent.futures import as_completed
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_hcc.data.trial import require_trial
from bayes_hcc.diagnostics import check, loo
from bayes_hcc.errors import BayesHCCError, SpecError, as_text, bool_flags, data_notes
from bayes_hcc.models.from_spec import fit_spec, population
from bayes_hcc.quantities._core import quantiles
from bayes_hcc.quantities.summary import (TAU_MONTHS, conditional_statement, frequentist,
                                          horizon_status, shortened_tau, spec_tau)
from bayes_hcc.runner import check_workers, default_workers, spawn_pool
from bayes_hcc.units import convert, time_label
from bayes_hcc.quantities.core import (hazard_ratio, marginal_hazard_ratio, median_survival,
                                       prob_superiority, prob_time_ratio, rmst,
                                       rmst_horizon)
from bayes_hcc.spec.kinds import kind_hint
from bayes_hcc.spec.model_spec import (ModelSpec, apply_overrides, dump_spec, load_spec,
                                       overridden, read_document, spec_reference)

__all__ = ["GridSpec", "load_grid", "run_sensitivity", "variant_row", "OVERRIDES_FIX"]

GRID_KEYS = ("name", "base", "include_base", "variants")


#: How to change the base spec of every variant (the error of a grid none of whose variants
#: can be fitted to the data says it; the command line's says ``--override``).
OVERRIDES_FIX = ('overrides={"<dotted key>": value} changes the base spec of every variant '
                 '(e.g. overrides={"site.effect": "none"} for a single-centre trial)')


@dataclass(frozen=True)
class GridSpec:
    """A base spec and named variants (each a full, validated ModelSpec).

    ``overrides``: dotted-key overrides applied to the grid file's base spec before each
    variant's own (``load_grid(path, overrides=...)``, ``with_overrides``)."""

    name: str
    base: ModelSpec
    variants: tuple  # ((name, ModelSpec), ...)
    include_base: bool = True
    variant_overrides: tuple = ()  # ((name, {dotted key: value}), ...) as the file gives them
    overrides: tuple = ()  # ((dotted key, value), ...) applied to the base

    def __len__(self):
        return len(self.variants)

    def with_overrides(self, overrides: dict) -> GridSpec:
        """The same grid on a base spec changed by ``overrides`` (dotted keys, as a
        variant's): every variant is rebuilt on it, its own overrides applied last."""
        return _grid(self.name, self.base, self.variant_overrides, self.include_base,
                     _overrides(overrides, f"grid {self.name!r}"), where=f"grid {self.name!r}",
                     earlier=dict(self.overrides))


def _overrides(overrides, where: str) -> dict:
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):  # "family=weibull_ph" failed inside dict()
        raise SpecError(f"{where}: overrides={overrides!r} must be a dict of dotted keys, "
                        "e.g. {'family': 'weibull_ph', 'site.effect': 'none'} (the CLI's "
                        "--override key=value).")
    return dict(overrides)


def _variants(where: str, d: dict) -> list:
    """The file's variants as (name, overrides), each checked: an array of tables, each
    with a name (text, unique) and its overrides (a table)."""
    given = d.get("variants", [])
    example = ('[[variants]]\nname = "sites: none"\noverrides = { "site.effect" = "none" }')
    if not isinstance(given, list) or not all(isinstance(v, dict) for v in given):
        raise SpecError(f"{where}: variants must be an array of tables, each written as\n"
                        f"{example}")
    if not given:
        raise SpecError(f"{where}: no variants. Add them as\n{example}\n(to fit the base "
                        "spec alone: bh.fit_spec, or bayes-hcc fit).")
    raw = []
    for i, v in enumerate(given):
        name = v.get("name")
        if set(v) - {"name", "overrides"} or not isinstance(name, str) or not name.strip():
            raise SpecError(f"{where}: variants[{i}] needs 'name' (text) and 'overrides' "
                            f"(only), as\n{example}")
        if name in {n for n, _ in raw}:
            raise SpecError(f"{where}: duplicate variant name {name!r}.")
        own = v.get("overrides", {})
        if not isinstance(own, dict):
            raise SpecError(f"{where}: variant {name!r}: overrides = {own!r} must be a table "
                            'of dotted keys, e.g. { "site.effect" = "none" }.')
        raw.append((name, dict(own)))
    return raw


def load_grid(path, overrides: dict | None = None) -> GridSpec:
    """Read a sensitivity grid: a TOML file (``models/sensitivity_os.toml``; its ``base``
    spec path is relative to the grid), TOML text, or a dict (as in a notebook; its
    ``base`` is a spec, a dict, or a path relative to the current directory).
    ``overrides`` (dotted keys) change its base spec, and so every variant, before the
    variants' own overrides."""
    doc = read_document(path, "grid")
    d, where = doc.table, doc.label
    unknown = sorted(set(d) - set(GRID_KEYS))
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: "
                        f"{', '.join(GRID_KEYS)}{kind_hint(d, 'bh.load_grid')}.")
    base = d.get("base")
    if not isinstance(base, (str, dict, ModelSpec)):
        raise SpecError(f"{where}: base = {base!r}: give the path of the spec file "
                        'the variants modify, e.g. base = "primary_os.toml".')
    name, include_base = d.get("name", doc.stem or "grid"), d.get("include_base", True)
    as_text(name, f"{where}: name", "the grid's name")
    if not isinstance(include_base, bool):  # "no" would have been read as true
        raise SpecError(f"{where}: include_base = {include_base!r} must be true or false.")
    try:
        base = spec_reference(base, doc.base_dir)
    except SpecError as err:
        raise SpecError(f"{where}: base: {err}") from None
    raw = _variants(where, d)
    return _grid(name, base, tuple(raw), include_base, _overrides(overrides, where),
                 where=where)


def _grid(name: str, base: ModelSpec, raw: tuple, include_base: bool, overrides: dict, *,
          where: str, earlier: dict | None = None) -> GridSpec:
    """The grid's specs: ``base`` changed by ``overrides``, then each variant's own."""
    original = base
    if overrides:
        try:
            base = apply_overrides(base, overrides, name=base.name)
        except SpecError as err:
            raise SpecError(f"{where}: overrides: {err}") from None
    variants = [("primary: " + base.name, base)] if include_base else []
    for vname, own in raw:
        try:
            if overrides:  # the variant as written is refused if it contradicts itself;
                # what the grid's overrides make unused in it (a site SD prior, when they
                # remove the site effects) is dropped, and its row marked "same posterior"
                apply_overrides(original, own, name=vname)
            spec = overridden(base, own, name=vname, own_give_way=bool(overrides))
        except SpecError as err:
            raise SpecError(f"{where}: variant {vname!r}: {err}") from None
        variants.append((vname, spec))
    applied = {**(earlier or {}), **overrides}
    return GridSpec(name, base, tuple(variants), include_base, raw, tuple(applied.items()))


#: ``likelihood_of`` of an illness-death variant: each patient's progression and death
#: together (whatever its headline endpoint), so its ELPD compares only with other
#: illness-death variants'
PROGRESSION_AND_DEATH = "progression and death"


def _row_tau(fit, tau: float, unit: str, note: list, curve: str | None = None) -> float:
    """A row's RMST horizon: ``tau``, or, beyond the follow-up of either arm (where one
    arm's RMST would be extrapolated), ``shortened_tau``, said in ``note``; 0 when an arm
    has no follow-up of the endpoint (``curve`` of an illness-death fit) at all."""
    arm, horizon = rmst_horizon(fit, curve)
    if tau <= horizon:
        return tau
    tau = shortened_tau(fit, tau, curve)
    note.append(f"RMST tau shortened to follow-up ({time_label(tau, unit)})" if tau > 0 else
                f"RMST not estimable: arm {arm!r} has no follow-up (every patient censored "
                "at time 0)")
    return tau


def _loo_note(elpd) -> list[str]:
    """A row's note on its LOO: how many patients' Pareto k exceed arviz-stats' limit."""
    n_bad = int(np.sum(np.asarray(elpd.pareto_k) > elpd.good_k))
    return [f"LOO: {n_bad} Pareto k > {elpd.good_k:.2f}"] if n_bad else []


def variant_row(name: str, spec: ModelSpec, trial, *, fast: bool = False) -> dict:
    """Fit one variant and summarise it as a table row (never raises for a fit problem:
    the row says what went wrong)."""
    row = {"variant": name, "family": spec.family, "endpoint": spec.endpoint,
           "censoring": spec.censoring, "population": spec.population,
           # what the variant's likelihood (and so its ELPD) is of
           "likelihood_of": PROGRESSION_AND_DEATH if spec.illness_death else spec.endpoint,
           "spec_hash": spec.hash, "spec_toml": dump_spec(spec)}
    try:
        population(spec, trial)
    except SpecError as err:
        return {**row, "note": f"skipped: {err}"}
    if spec.illness_death:
        return _illness_death_row(row, spec, trial, fast)
    with warnings.catch_warnings(record=True) as caught:
        # the verdict column reports convergence; what the data warn of goes to the note
        warnings.simplefilter("always")
        try:
            fit = fit_spec(spec, trial, fast=fast, check=False)
        except BayesHCCError as err:  # a model these data cannot carry (one site...)
            return {**row, "note": f"skipped: {err}"}
        diag = check(fit, warn=False)
        elpd = loo(fit)
    rep = dict(spec.report)
    note = data_notes(caught)
    row["_posterior"] = _draws_digest(fit.datatree["posterior"][fit.family.arm_effect], spec)
    effect = fit.family.effect
    if effect.quantity == "hazard_ratio":
        hr = hazard_ratio(fit).values.ravel()
        row.update(hr_median=float(np.median(hr)), hr_lower=float(np.quantile(hr, 0.025)),
                   hr_upper=float(np.quantile(hr, 0.975)))
        for d in rep["hr_thresholds"]:
            row[f"P(HR < {d:g})"] = prob_superiority(fit, d).probability
        if "log_hr_dev" in fit.datatree["posterior"]:
            lhi = np.exp(fit.datatree["posterior"]["log_hr_interval"].median(("chain", "draw")))
            note.append("time-varying HR: HR is the geometric mean over intervals; per "
                        "interval " + ", ".join(f"{x:.2f}" for x in lhi.to_numpy()))
    else:  # say so rather than print a misleading HR
        note.append("not proportional hazards: no single HR; see time ratio, medians, RMST")
    tr = fit.family.time_ratio(fit.datatree["posterior"])
    if tr is not None:
        tr = tr.values.ravel()
        row.update(tr_median=float(np.median(tr)), tr_lower=float(np.quantile(tr, 0.025)),
                   tr_upper=float(np.quantile(tr, 0.975)),
                   **{"P(TR > 1)": prob_time_ratio(fit).probability})
    med = median_survival(fit, estimand=rep["estimand"])
    follow_up = fit.follow_up_by_arm()
    reached = True
    for a in fit.arms:
        m = med.sel(arm=a).values.ravel()
        status = horizon_status(float(np.median(m)), float(quantiles(m, 0.975)),
                                follow_up[a])
        row[f"median {a}"] = float(np.median(m)) if status != "beyond" else np.nan
        if status == "beyond":
            reached = False
            note.append(f"median {a} not reached (beyond follow-up, {follow_up[a]:.3g} "
                        f"{fit.time_unit})")
    diff = med.sel(arm="difference").values.ravel()
    if reached:
        lo, hi = quantiles(diff, [0.025, 0.975])  # +inf draws (a median never reached)
        row.update(median_diff=float(np.median(diff)), median_diff_lower=float(lo),
                   median_diff_upper=float(hi))
    else:
        row.update(median_diff=np.nan, median_diff_lower=np.nan, median_diff_upper=np.nan)
    # The spec's tau is in its own time unit (months by default): expressed in the data's.
    tau = spec_tau(spec, fit.time_unit) or convert(TAU_MONTHS, "months", fit.time_unit)
    tau = _row_tau(fit, tau, fit.time_unit, note)
    r = rmst(fit, tau, estimand=rep["estimand"]).sel(arm="difference").values.ravel() \
        if tau > 0 else np.nan
    row.update(rmst_tau=tau, rmst_diff=float(np.median(r)))
    if "log_hr_dev" in fit.datatree["posterior"] and tau > 0:
        m = marginal_hazard_ratio(fit, [tau], estimand=rep["estimand"]).values.ravel()
        note.append(f"HR averaged over time (cumulative hazards' ratio) to "
                    f"{time_label(tau, fit.time_unit)}: {np.median(m):.2f}")
    note += _loo_note(elpd)
    if spec.censoring != "interval" and trial.endpoint(spec.endpoint).has_bounds:
        # imputed event times are other data: their ELPD is not comparable with the others'
        where = {"midpoint": "the midpoint of its scan interval",
                 "upper": "the scan that showed it (the interval's upper end)",
                 "lower": "the last scan without it (the interval's lower end)"}
        note.append(f"progression imputed at {where.get(spec.censoring, spec.censoring)}: "
                    "ELPD not comparable with interval-censored variants")
    # the frequentist companion on the same data (as stratified as the variant)
    freq = frequentist(fit)
    cox = freq.iloc[1]
    row.update(cox_hr=float(cox["estimate"]), cox_lower=float(cox["lower"]),
               cox_upper=float(cox["upper"]),
               logrank_p=float(freq.loc["log-rank test", "p_value"]))
    row["hr_type"] = conditional_statement(fit)
    row.update(elpd_loo=float(elpd.elpd), elpd_se=float(elpd.se),
               diagnostics="ok" if diag.ok else "FAILED: " + ", ".join(diag.failed),
               estimand=rep["estimand"], note="; ".join(note))
    return row


#: the illness-death curve of each endpoint (``IllnessDeathFit.medians``)
_CURVE = {"os": "os", "pfs": "pfs", "ttp": "progression"}


def _illness_death_row(row: dict, spec: ModelSpec, trial, fast: bool) -> dict:
    """A grid row of an illness-death variant: its headline endpoint's medians, median and
    RMST differences, the three transition HRs, and (for TTP, whose hazard is the
    progression transition's) the HR columns; OS and PFS hazards are not proportional under
    this model, so their HR columns stay empty and the note says why."""
    from bayes_hcc.data.km import classical_comparison

    try:
        with warnings.catch_warnings(record=True) as caught:
            # the verdict column reports convergence; what the data warn of, the note
            warnings.simplefilter("always")
            fit = fit_spec(spec, trial, fast=fast, check=False)
            elpd = loo(fit)
    except BayesHCCError as err:
        return {**row, "note": f"skipped: {err}"}
    rep = dict(spec.report)
    ms = dict(spec.illness_death)
    note = data_notes(caught) + [
        f"illness-death model ({ms['time_scale'].replace('_', '-')}, {spec.family} "
        "transitions): transition HRs in columns hr_progression, "
        "hr_death_without_progression, hr_death_after_progression; ELPD of progression "
        "and death together (comparable with illness-death variants only)"]
    note += _loo_note(elpd)
    hr = fit.hazard_ratio()
    row["_posterior"] = _draws_digest(hr, spec)
    for t in hr["transition"].values:
        row[f"hr_{t}"] = float(hr.sel(transition=t).median())
    ep = spec.endpoint
    if ep == "ttp":
        x = hr.sel(transition="progression").values.ravel()
        row.update(hr_median=float(np.median(x)), hr_lower=float(np.quantile(x, 0.025)),
                   hr_upper=float(np.quantile(x, 0.975)))
        for d in rep["hr_thresholds"]:
            row[f"P(HR < {d:g})"] = float(np.mean(x < d))
    else:
        note.append(f"{ep.upper()} hazards not proportional under this model: no single "
                    "HR (see the transition HRs, medians, RMST)")
    curve = _CURVE[ep]
    med = fit.medians(estimand=rep["estimand"])
    status = med.attrs["status"][curve]
    reached = True
    for a in fit.data.arms:
        m = med[curve].sel(arm=a).values.ravel()
        if status[a] == "beyond":
            reached = False
            row[f"median {a}"] = np.nan
            note.append(f"median {a} not reached (beyond follow-up, "
                        f"{med.attrs['follow_up'][curve][a]:.3g} {fit.data.time_unit})")
        else:
            row[f"median {a}"] = float(np.median(m))
    diff = med[curve].sel(arm="difference").values.ravel()
    row.update(median_diff=float(np.median(diff)) if reached else np.nan,
               median_diff_lower=float(quantiles(diff, 0.025)) if reached else np.nan,
               median_diff_upper=float(quantiles(diff, 0.975)) if reached else np.nan)
    tau = spec_tau(spec, fit.data.time_unit) or convert(TAU_MONTHS, "months",
                                                        fit.data.time_unit)
    tau = _row_tau(fit, tau, fit.data.time_unit, note, curve)
    r = fit.rmst(tau, estimand=rep["estimand"]).sel(arm="difference")[curve].values.ravel() \
        if tau > 0 else np.nan
    row.update(rmst_tau=tau, rmst_diff=float(np.median(r)))
    e = trial.endpoint(ep)
    freq = classical_comparison(np.asarray(e.time, float), np.asarray(e.event),
                                np.asarray(e.arm), trial.arms, time_unit=trial.time_unit)
    cox = freq.iloc[1]
    row.update(cox_hr=float(cox["estimate"]), cox_lower=float(cox["lower"]),
               cox_upper=float(cox["upper"]),
               logrank_p=float(freq.loc["log-rank test", "p_value"]),
               hr_type="transition-specific, conditional on site")
    problems = fit.convergence_problems()
    row.update(elpd_loo=float(elpd.elpd), elpd_se=float(elpd.se),
               diagnostics="ok" if not problems else "FAILED: " + ", ".join(
                   p.split(" ")[0] for p in problems),
               estimand=rep["estimand"], note="; ".join(note))
    return row


def _draws_digest(draws, spec: ModelSpec) -> str:
    """A fingerprint of a variant's arm-effect draws and of what its row reports (the
    spec's ``[report]`` table: estimand, tau...): two variants with the same one have the
    same posterior (same seed, same model for these data) and the same row."""
    import hashlib

    h = hashlib.sha256(np.ascontiguousarray(np.asarray(draws, float)).tobytes())
    h.update(repr(sorted(dict(spec.report).items())).encode())
    return h.hexdigest()


def _mark_same_posteriors(table: pd.DataFrame) -> None:
    """A variant whose draws are those of an earlier row changed nothing the model uses on
    these data (a site-SD prior without site effects, ``sites: none`` when the base already
    has none): column ``same_posterior_as`` names that row and the note says so, so that
    the table does not count it as a separate check."""
    first = {}
    table["same_posterior_as"] = ""
    for name, digest in table["_posterior"].items():
        if not isinstance(digest, str):
            continue
        if digest in first:
            table.at[name, "same_posterior_as"] = first[digest]
            same = (f"same posterior as {first[digest]!r} (identical draws: this variant "
                    "changes nothing the model uses on these data)")
            note = table.at[name, "note"]
            table.at[name, "note"] = f"{same}; {note}" if note else same
        else:
            first[digest] = name


def _worker(args):
    name, spec_toml, trial, fast = args
    return variant_row(name, load_spec(spec_toml), trial, fast=fast)


@bool_flags
def run_sensitivity(grid, trial, *, fast: bool = False, workers: int = 1,
                    progress: bool = True, overrides: dict | None = None) -> pd.DataFrame:
    """Fit every variant of a grid and return the tidy table (one row per variant).

    Parameters
    ----------
    grid : GridSpec, or a grid TOML file, TOML text or dict (:func:`load_grid`)
    trial : TrialData
    fast : bool
        A quick look per variant (``FAST`` settings, labelled exploratory: the diagnostics
        column uses the exploratory thresholds).
    workers : int, default 1
        1 runs in this process (reusing compiled samplers: variants that differ only in prior
        values share one compile); more uses a process pool (spawned workers reuse the
        on-disk compile cache); None, one per core. Same seeds, same numbers, either way.
    overrides : dict, optional
        Dotted-key overrides of the grid's base spec, applied before each variant's own
        (``{"site.effect": "none"}`` runs the grid of a multi-centre analysis on a
        single-centre trial); recorded in ``attrs["overrides"]`` and the footnotes.

    A variant these data cannot carry (random site effects on one site, a per-protocol
    population without its column...) is a row whose note says ``skipped:`` and why; when
    no variant can be fitted, the error lists the reasons.

    LOO ELPD is comparable only between rows of the same endpoint and population (same
    patients) and, for an endpoint seen between scans, the same ``censoring`` (an imputed
    event time is another observation); an illness-death variant's ELPD is of progression
    and death together (column ``likelihood_of``), comparable with other illness-death
    variants only. ``elpd_comparable`` marks the rows comparable with the first row.
    """
    from tqdm.auto import tqdm

    require_trial(trial, "run_sensitivity")
    workers = check_workers(workers) or default_workers()
    grid = grid if isinstance(grid, GridSpec) else load_grid(grid)
    if overrides is not None:
        grid = grid.with_overrides(overrides)
    jobs = [(name, dump_spec(spec), trial, fast) for name, spec in grid.variants]
    rows = [None] * len(jobs)
    bar = tqdm(total=len(jobs), desc=grid.name, disable=not progress)
    if workers <= 1:
        for i, job in enumerate(jobs):
            rows[i] = _worker(job)
            bar.update()
    else:
        with spawn_pool(workers) as ex:
            futures = {ex.submit(_worker, job): i for i, job in enumerate(jobs)}
            for fut in as_completed(futures):
                rows[futures[fut]] = fut.result()
                bar.update()
    bar.close()
    table = pd.DataFrame(rows).set_index("variant")
    if "_posterior" in table:
        _mark_same_posteriors(table)
        table = table.drop(columns="_posterior")
    skipped = table["note"].fillna("").str.startswith("skipped: ")
    if skipped.all():
        reasons = table["note"].str.removeprefix("skipped: ").value_counts()
        raise SpecError(f"grid {grid.name!r}: no variant can be fitted to these data ("
                        f"{trial.source}): "
                        + "; ".join(f"{n} variant(s): {r}" for r, n in reasons.items())
                        + f" {OVERRIDES_FIX}.")
    first = table.iloc[0]
    # Where the endpoint is seen between scans, an imputed event time is another
    # observation than the interval (a density at a chosen time, not a probability): only
    # rows that handle the intervals as the first row does are comparable with it.
    bounded = [ep for ep in table["endpoint"].unique()
               if ep in trial.endpoints and trial.endpoint(ep).has_bounds]
    same_observations = ((table["censoring"] == first["censoring"])
                         | ~table["endpoint"].isin(bounded)
                         | (table["likelihood_of"] == PROGRESSION_AND_DEATH))
    table["elpd_comparable"] = (table["likelihood_of"] == first["likelihood_of"]) & (
        table["population"] == first["population"]) & same_observations & table.get(
        "elpd_loo", pd.Series(np.nan, index=table.index)).notna()
    table.attrs.update(grid=grid.name, fast=fast, data_fingerprint=trial.fingerprint,
                       overrides=dict(grid.overrides))
    table.attrs["footnotes"] = [
        f"Sensitivity grid {grid.name}: one row per pre-specified variant (its spec, with "
        "its priors, in column spec_toml of the CSV); HR = treatment relative to control "
        "(posterior median, 95% credible interval); medians and RMST on each variant's "
        "estimand (column estimand); times in the data's unit"
        + (f" ({trial.time_unit})" if hasattr(trial, "time_unit") else "") + ".",
        "cox_hr, cox_lower, cox_upper, logrank_p: the frequentist companion on the same data "
        "(lifelines Cox, statsmodels log-rank; stratified as the variant is). hr_type: "
        "whether the variant's HR is conditional (on covariates, site, stratum) or "
        "marginal.",
        "A median beyond follow-up is left blank and named in the note column (not "
        "extrapolated)." + (" Exploratory (fast) fits." if fast else ""),
        f"Data fingerprint {trial.fingerprint[:12]}."]
    if grid.overrides:
        table.attrs["footnotes"].insert(1, "The grid's base spec was changed for these data "
                                        "before every variant: " + ", ".join(
                                            f"{k} = {v!r}" for k, v in grid.overrides))
    return table
