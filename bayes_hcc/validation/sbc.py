"""Simulation-based calibration (Talts et al. 2018) of the survival models.

Each replication draws every parameter from the model's own priors, simulates a trial of the
given size from the model (random site effects, 1:1 randomization within site, uniform
accrual, administrative censoring), fits the same model to it, and records the rank of the
true value among thinned posterior draws. If the posterior is computed correctly, the ranks
are uniform on 0..L; departures show where it is not (too narrow: ranks pile at both ends;
biased: ranks pile at one end).

References
----------
Talts, Betancourt, Simpson, Vehtari, Gelman (2018). Validating Bayesian inference algorithms
with simulation-based calibration. arXiv:1804.06788.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import arviz_stats  # noqa: F401  (registers the .azstats accessor)
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from bayes_hcc.data.read import read_trial
from bayes_hcc.errors import BayesHCCError, bool_flags
from bayes_hcc.families.registry import FAMILIES
from bayes_hcc.models.base import MODELS_BY_KEY, SurvivalModel
from bayes_hcc.models.design import patient_groups, prior_sigma
from bayes_hcc.spec.model_spec import dump_spec
from bayes_hcc.spec.sampler import check_seed
from bayes_hcc.runner import default_workers, run_tasks

__all__ = ["sbc", "SBCResult", "SBC_MODELS", "simulate_from_prior"]

def _calibrated(key):
    return lambda: MODELS_BY_KEY[key](site_effect="random",
                                      **FAMILIES[key].calibration_options())


#: The models calibrated by default: every registered family, with random site effects at
#: its default priors and a layout that does not depend on the data
#: (``Family.calibration_options``: e.g. fixed cut points, since quantile cuts would).
SBC_MODELS = {key: _calibrated(key) for key in FAMILIES}

#: Site sizes of the example trial (130 patients, 6 sites).
TRIAL_SITE_SIZES = (34, 28, 23, 19, 15, 11)


def _draw(prior, rng, size=None):
    return prior.scipy().rvs(size=size, random_state=rng)


def check_simulable(model: SurvivalModel) -> None:
    """Refuse a model whose data the generator cannot draw from its prior: covariates (no
    distribution of them to draw), strata of a column other than the site (the simulated
    trials have no other column) and fixed site effects."""
    if model.covariates:
        raise BayesHCCError(f"SBC cannot calibrate a model with covariates "
                            f"({', '.join(model.covariates)}): the simulated trials have no "
                            "covariate values to draw. Calibrate the model without them.")
    if model.strata is not None and model.strata != "site":
        raise BayesHCCError(f"SBC stratifies by site only (strata={model.strata!r}): the "
                            "simulated trials have no other column. Use strata='site'.")
    if model.site_effect not in ("random", "none"):
        raise BayesHCCError("SBC supports site_effect='random' or 'none'.")


def draw_parameters(model: SurvivalModel, family, priors: dict, n_sites: int, rng) -> dict:
    """One draw of every parameter from the priors, in the model's parametrization: the
    arm effect (and its deviations by time), the baseline, the site and treatment-by-site
    effects, and each stratum's baseline deviations (strata by site)."""
    check_simulable(model)
    effect = family.arm_effect
    truth = {effect: float(_draw(priors[effect], rng))}
    drawn = family.draw_prior(priors, 1, rng)
    # priors as declared (months; a Weibull's perhaps at a reference time) -> the model's
    # parameters in months: the family's own shift at log unit 0 (zero for most families)
    shifts = family.unit_shift(drawn, 0.0)
    drawn = {k: v + shifts.get(k, 0.0) for k, v in drawn.items()}
    drawn.update(family.draw_effect_deviations(1, rng))
    truth.update({k: v[0] if v.ndim > 1 else float(v[0]) for k, v in drawn.items()})
    if model.site_effect == "random":
        truth["site_sd"] = float(_draw(priors["site_sd"], rng))
        truth["site_effect"] = truth["site_sd"] * rng.standard_normal(n_sites)
    if model.arm_by_site == "random":
        truth["arm_site_sd"] = float(_draw(priors["arm_site_sd"], rng))
        truth["arm_site_effect"] = truth["arm_site_sd"] * rng.standard_normal(n_sites)
    if model.strata is not None:  # by site (check_simulable): one stratum per site
        for p in family.params:
            shape = (*np.shape(truth[p]), n_sites)
            if model.pooling == "partial":  # as models.design.build_strata
                sd = float(_draw(priors["stratum_sd"], rng))
                truth[f"stratum_sd_{p}"] = sd
                truth[f"stratum_dev_{p}"] = sd * rng.standard_normal(shape)
            else:  # ZeroSumNormal(sigma): iid normal deviations less their mean
                dev = prior_sigma(priors, p) * rng.standard_normal(shape)
                truth[f"stratum_dev_{p}"] = dev - dev.mean(axis=-1, keepdims=True)
    return truth


def simulate_from_prior(model: SurvivalModel, *, site_sizes=TRIAL_SITE_SIZES,
                        accrual: float = 24.0, min_follow_up: float = 12.0, random_seed=None,
                        assessment_interval: float | None = None):
    """Draw parameters from ``model``'s priors and a trial from the model given them.

    Patients are randomized 1:1 within site and accrue uniformly over ``accrual`` months;
    the data cut falls ``min_follow_up`` months after the last possible entry, so the
    administrative censoring time is Uniform(min_follow_up, min_follow_up + accrual).
    With ``assessment_interval``, the event is seen only at scans every that many months
    (the first at a uniform fraction of the interval, so patients' grids differ): it is
    interval-censored between the last scan before it and the first at or after it, and a
    patient without an event by the cut is censored at the last scan.

    Every term of the model is drawn from its prior (``draw_parameters``): the site and
    treatment-by-site effects, a time-varying HR's deviations, each stratum's baseline
    (strata by site), and the times from each arm's and stratum's baseline.

    Returns
    -------
    (TrialData, dict)
        The trial (times layout, endpoint ``os``) and the true parameter values.
    """
    rng = np.random.default_rng(random_seed)
    sizes = np.asarray(site_sizes, int)
    n_sites, n = len(sizes), int(sizes.sum())
    family = model.family_for(None, None)
    if model.data_dependent():
        raise BayesHCCError("SBC needs a model whose settings do not depend on the data "
                            "(give the cut points or knots explicitly: quantile ones depend "
                            "on the simulated events, so they are not part of the prior).")
    priors = model.resolved_priors(family)
    truth = draw_parameters(model, family, priors, n_sites, rng)
    site = np.repeat(np.arange(n_sites), sizes)
    arm = np.concatenate([rng.permutation(np.arange(s) % 2) for s in sizes])
    eta = truth[family.arm_effect] * arm
    if "site_effect" in truth:
        eta = eta + truth["site_effect"][site]
    if "arm_site_effect" in truth:
        eta = eta + arm * truth["arm_site_effect"][site]
    # one draw (S = 1) of everything the baseline reads, per arm and stratum as a fit's
    params = {k: np.asarray(v, float)[None, ...] for k, v in truth.items()
              if k != "site_effect" and k != "arm_site_effect"}
    strata = (site, n_sites) if model.strata is not None else (None, 1)
    # T with H(T | eta) = E, E ~ Exp(1): exact draws from the model (inversion).
    e = rng.exponential(size=n)
    t_event = np.empty(n)
    for mask, p in patient_groups(family, params, arm, *strata):
        t_event[mask] = family.time_at_cumhaz(p, e[mask][None], eta[mask][None])[0]
    admin = min_follow_up + accrual * rng.uniform(size=n)
    frame = pd.DataFrame({"patient_id": [f"SBC-{i + 1:04d}" for i in range(n)],
                          "site": [f"site{s + 1}" for s in site],
                          "arm": np.where(arm == 1, "tace_sorafenib", "sorafenib")})
    if assessment_interval is None:
        frame["os_time"] = np.minimum(t_event, admin)
        frame["os_event"] = (t_event <= admin).astype(int)
    else:
        step = float(assessment_interval)
        first = step * rng.uniform(size=n)  # scans at first + k * step, k >= 0
        k_up = np.ceil(np.maximum(t_event - first, 0.0) / step)  # first scan at or after T
        upper = first + k_up * step
        k_admin = np.floor((admin - first) / step)  # last scan before the cut
        last_scan = np.where(k_admin >= 0, first + k_admin * step, 0.0)
        seen = upper <= admin
        lower = np.where(seen, np.where(k_up >= 1, upper - step, 0.0), last_scan)
        frame["os_lower"] = lower
        frame["os_upper"] = np.where(seen, upper, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny sites or arms are part of the prior's range
        trial = read_trial(frame)
    return trial, truth


def resolve_model(model, registry: dict) -> tuple[str, SurvivalModel]:
    """A model given by name (from ``registry``) or as an object: (name, model)."""
    if not isinstance(model, str):
        return model.family_key, model
    if model not in registry:
        raise BayesHCCError(f"unknown model {model!r}; choose one of {', '.join(registry)} "
                            "or pass a model object.")
    return model, registry[model]()


def monitored(truth: dict) -> list[str]:
    """The parameters whose ranks are recorded: the arm effect (and its deviations by
    time), the SDs of the site, treatment-by-site and stratum effects, the baseline's own
    parameters and fixed strata's deviations (not the random effects of each site or
    stratum, which their SDs summarise)."""
    partial = {k.replace("stratum_sd_", "stratum_dev_") for k in truth
               if k.startswith("stratum_sd_")}
    return [k for k in truth if k not in ("site_effect", "arm_site_effect") and k not in partial]


def _replication(payload) -> dict:
    """One SBC replication (runs in a worker): thinned draws of the monitored parameters."""
    spec_toml, seed, site_sizes, fit_kw, n_keep, fit_priors, scans = payload
    from bayes_hcc.models.base import model_from_spec
    from bayes_hcc.spec.model_spec import load_spec, spec_from_dict

    spec = load_spec(spec_toml)
    model = model_from_spec(spec)
    trial, truth = simulate_from_prior(model, site_sizes=site_sizes, random_seed=seed,
                                       assessment_interval=scans)
    fit_model = model if fit_priors is None else model_from_spec(
        spec_from_dict({**spec.to_dict(), "priors": fit_priors}))
    ep = trial.endpoint("os")
    out = {"truth": {k: np.asarray(truth[k]).tolist() for k in monitored(truth)},
           "n_events": int(ep.n_events), "seed": int(seed)}
    if ep.n_events == 0:  # cannot be fitted; counted and reported, never resampled
        return {**out, "failed": "no events"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_model.fit(trial, "os", random_seed=seed, check=False,
                            **{"log_likelihood": False, **fit_kw})
    post = fit.posterior
    total = post.sizes["chain"] * post.sizes["draw"]
    # Equally spaced draws: thinning makes neighbouring kept draws nearly independent, the
    # condition for uniform ranks.
    idx = np.linspace(0, total - 1, n_keep).round().astype(int)
    draws = {}
    for k in out["truth"]:
        a = post[k].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()
        draws[k] = a[idx].tolist()
    stats_ = fit.datatree["sample_stats"]
    out.update(draws=draws, divergences=int(stats_["diverging"].sum()), failed="")
    return out


@dataclass
class SBCResult:
    """Draws and truths of an SBC run; ranks, uniformity tests and plots derive from them.

    Attributes
    ----------
    name : str
    draws : xarray.Dataset
        Thinned posterior draws, dims ``replication``, ``sample`` (and ``interval``, the
        element of the baseline's vector parameter, intervals or basis coefficients, and of
        a time-varying HR's deviations; ``<name>_element`` for the flattened elements of
        strata's deviations).
    truth : xarray.Dataset
        True values, dim ``replication``.
    info : pandas.DataFrame
        Per replication: seed, events, divergences, failure reason.
    """

    name: str
    draws: xr.Dataset
    truth: xr.Dataset
    info: pd.DataFrame
    seed: int

    @property
    def n_draws(self) -> int:
        return self.draws.sizes["sample"]

    def ranks(self) -> xr.Dataset:
        """Rank of the truth among the L thinned draws: integers 0..L."""
        return (self.draws < self.truth).sum("sample")

    def pit(self) -> xr.Dataset:
        """Ranks made continuous: (rank + U) / (L + 1), U ~ Uniform(0, 1). Exactly uniform
        on (0, 1) when the ranks are uniform, so tests for continuous data apply."""
        rng = np.random.default_rng(self.seed)
        r = self.ranks()
        return r.map(lambda a: (a + rng.uniform(size=a.shape)) / (self.n_draws + 1))

    def tests(self, bins: int = 10) -> pd.DataFrame:
        """Uniformity test per parameter (and interval).

        ``p_value``: ArviZ's pointwise order test with Cauchy combination (``pot_c``) on the
        PIT values, the decision statistic. ``p_chi2``: the classic chi-square test of the
        rank histogram in ``bins`` bins (Talts et al.), for reference.
        """
        pit = self.pit()
        p_pot = pit.azstats.uniformity_test(dim="replication", method="pot_c")[0]
        rows = []
        for name, da in pit.data_vars.items():
            extra = [d for d in da.dims if d != "replication"]
            keys = [()] if not extra else [(i,) for i in range(da.sizes[extra[0]])]
            for key in keys:
                sel = {extra[0]: key[0]} if key else {}
                u = da.isel(sel).to_numpy()
                counts = np.histogram(u, bins=bins, range=(0, 1))[0]
                label = name if not key else f"{name}[{key[0]}]"
                rows.append({"parameter": label, "replications": len(u),
                             "p_value": float(p_pot[name].isel(sel)),
                             "p_chi2": float(stats.chisquare(counts).pvalue),
                             "mean_pit": float(u.mean())})
        return pd.DataFrame(rows).set_index("parameter")

    def ok(self, alpha: float = 0.01) -> bool:
        """No parameter rejects uniformity at level ``alpha``."""
        return bool((self.tests()["p_value"] > alpha).all())

    def narrowed(self, factor: float = 0.5) -> SBCResult:
        """The same run with every posterior artificially narrowed around its mean by
        ``factor``: a deliberately miscalibrated posterior the tests should reject."""
        mean = self.draws.mean("sample")
        return SBCResult(f"{self.name} (narrowed x{factor:g})",
                         mean + factor * (self.draws - mean), self.truth, self.info, self.seed)

    def to_datatree(self) -> xr.DataTree:
        dt = xr.DataTree.from_dict({"/pit": self.pit(), "/ranks": self.ranks(),
                                    "/truth": self.truth})
        dt.attrs.update(name=self.name, n_draws=self.n_draws, seed=self.seed)
        return dt

    def plot(self, **kwargs):
        """Delta-ECDF of the PIT values with simultaneous bands (arviz-plots)."""
        from arviz_plots import plot_ecdf_pit

        return plot_ecdf_pit(self.to_datatree(), group="pit", sample_dims=["replication"],
                             **kwargs)

    def summary(self) -> str:
        bad = self.info["failed"].astype(bool).sum()
        div = int((self.info["divergences"] > 0).sum())
        return (f"{self.name}: {len(self.info)} replications ({bad} could not be fitted), "
                f"{self.n_draws} thinned draws each; {div} replications had divergences.")


def replication_datasets(ok: list, names: dict, dim_of) -> tuple[xr.Dataset, xr.Dataset]:
    """The thinned draws (replication, sample) and truths (replication) of the fitted
    replications ``ok`` for :class:`SBCResult`; ``names`` maps each recorded key to its
    variable's name. A parameter with elements (a vector baseline, strata's deviations) is
    flattened into one more dim, ``dim_of(name)``, numbered from 0."""
    draws_ds, truth_ds = {}, {}
    for key, name in names.items():
        d = np.array([r["draws"][key] for r in ok])
        t = np.array([r["truth"][key] for r in ok])
        extra = ()
        if d.ndim > 2:
            d, t = d.reshape(*d.shape[:2], -1), t.reshape(t.shape[0], -1)
            extra = (dim_of(name),)
        draws_ds[name] = (("replication", "sample") + extra, d)
        truth_ds[name] = (("replication",) + extra, t)
    draws_x, truth_x = xr.Dataset(draws_ds), xr.Dataset(truth_ds)
    coords = {dim: np.arange(n) for dim, n in draws_x.sizes.items()
              if dim not in ("replication", "sample")}
    return draws_x.assign_coords(coords), truth_x.assign_coords(coords)


def check_sbc_settings(n_reps, n_keep, draws, chains, site_sizes) -> None:
    """An SBC's settings, refused now when they would distort the ranks or the data:
    more kept draws than each fit has repeats draws (ties in the ranks), and an empty site
    had the data say "1 site"."""
    if n_reps < 2 or n_keep < 1:
        raise BayesHCCError("n_reps must be >= 2 and n_keep >= 1.")
    sizes = np.atleast_1d(np.asarray(site_sizes, dtype=object))
    if not all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x >= 1
               for x in sizes) or len(sizes) < 1:
        raise BayesHCCError(f"site_sizes={site_sizes!r}: give the patients of each site, "
                            "whole numbers >= 1 (e.g. (34, 28, 23, 19, 15, 11)).")
    if n_keep > draws * chains:  # kept draws repeated: tied ranks, a false alarm or none
        raise BayesHCCError(f"n_keep={n_keep} exceeds the draws of each fit ({chains} chains "
                            f"x {draws} = {draws * chains}): the kept draws would repeat and "
                            "tie the ranks. Lower n_keep (default 99) or raise draws.")


@bool_flags
def sbc(model: SurvivalModel | str, n_reps: int = 200, *, site_sizes=TRIAL_SITE_SIZES,
        draws: int = 500, tune: int = 500, chains: int = 2, n_keep: int = 99,
        fit_priors: dict | None = None, random_seed: int = 2018, workers: int | None = None,
        progress: bool = True, store=None,
        assessment_interval: float | None = None) -> SBCResult:
    """Simulation-based calibration of ``model`` at the trial's size.

    Parameters
    ----------
    model : SurvivalModel or a family key (``SBC_MODELS``: every registered family)
        The model (with its priors) to calibrate; a name takes ``SBC_MODELS[name]``. Random
        or no site effects, a treatment-by-site effect, a time-varying HR and strata by site
        are drawn from their priors; covariates, other strata and fixed site effects are
        refused (``check_simulable``).
    n_reps : int, default 200
        Replications (1,000 for a stricter check).
    site_sizes : sequence of int
        Patients per site (default: the example trial's 130 patients in 6 sites).
    draws, tune, chains : int
        Sampler settings per fit (defaults 2 x 500 after 500 tuning steps).
    n_keep : int, default 99
        Thinned draws kept per fit, so ranks take n_keep + 1 values.
    fit_priors : dict, optional
        Fit with these priors instead of the generating ones (a deliberately wrong prior:
        the calibration check should then fail).
    random_seed : int
        Replication r uses seed ``SeedSequence(random_seed).spawn`` r: the same results on
        any number of workers.
    workers : int, optional
        Processes (default: all cores). Each compiles the model once and reuses it.
    store : path, optional
        JSON Lines file of finished replications; an interrupted run resumes from it.
    assessment_interval : float, optional
        Events seen only at scans this many months apart: calibrates the interval-censored
        likelihood (``simulate_from_prior``).
    """
    name, model = resolve_model(model, SBC_MODELS)
    check_simulable(model)
    check_sbc_settings(n_reps, n_keep, draws, chains, site_sizes)
    check_seed(random_seed, "sbc", BayesHCCError)
    seeds = [int(s.generate_state(1)[0]) for s in
             np.random.SeedSequence(random_seed).spawn(n_reps)]
    fit_kw = dict(draws=draws, tune=tune, chains=chains, cores=1)
    fp = None if fit_priors is None else {k: v.to_dict() for k, v in fit_priors.items()}
    settings = model.settings()
    spec_toml = dump_spec(model.spec)
    tasks = [(f"rep{r:05d}", (spec_toml, seeds[r], tuple(site_sizes), fit_kw, n_keep, fp,
                              assessment_interval))
             for r in range(n_reps)]
    meta = {"kind": "sbc", "model": settings, "fit_priors": fp, "site_sizes": list(site_sizes),
            "fit": fit_kw, "n_keep": n_keep, "random_seed": random_seed,
            **({"assessment_interval": assessment_interval} if assessment_interval else {})}
    res = run_tasks(_replication, tasks, workers=workers or default_workers(),
                    progress=progress, desc=f"SBC {name}", store=store, meta=meta)
    reps = [res[k] for k, _ in tasks]
    ok = [r for r in reps if not r["failed"]]
    if not ok:
        raise BayesHCCError("SBC: no replication could be fitted.")
    # the family's vectors (and a time-varying HR's deviations) share the dim "interval";
    # any other parameter with elements (strata's deviations) has its own, flattened
    per_interval = {*model.family_for(None, None).params, "log_hr_dev"}
    draws_x, truth_x = replication_datasets(
        ok, {k: k for k in ok[0]["truth"]},
        lambda k: "interval" if k in per_interval else f"{k}_element")
    info = pd.DataFrame([{"seed": r["seed"], "n_events": r["n_events"],
                          "divergences": r.get("divergences", 0), "failed": r["failed"]}
                         for r in reps])
    return SBCResult(name, draws_x, truth_x, info, random_seed)
