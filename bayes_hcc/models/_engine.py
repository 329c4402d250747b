"""Build, compile (once per graph structure) and sample; assemble the Fit's DataTree."""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
import time
import warnings

import numpy as np
import pymc as pm
import xarray as xr

from bayes_hcc._versions import provenance_versions
from bayes_hcc.errors import ConvergenceWarning, ModelError
from bayes_hcc.models.base import active_priors
from bayes_hcc.models.fit import flat_posterior
from bayes_hcc.models.design import (build_eta, centring_weights, eta_numpy,
                                     resolve_site_parametrization)
from bayes_hcc.families.base import CENTRED_SUFFIX
from bayes_hcc.spec.priors import pymc_variable
from bayes_hcc.spec.sampler import check_sampler_settings
from bayes_hcc.units import DAYS_PER_UNIT, log_unit_in_months

SAMPLERS = ("nutpie", "pymc")
_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()
_MAX_CACHE = 64


def standardize_covariates(trial, endpoint, names) -> tuple[np.ndarray, dict]:
    """Centred and scaled (mean 0, SD 1 over the trial's patients) covariate matrix."""
    frame = trial.to_frame()
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ModelError(f"covariate(s) {', '.join(missing)} not in the data; available: "
                         f"{', '.join(trial.covariates) or 'none'}.")
    cols, scale = [], {}
    for c in names:
        x = frame[c]
        if not np.issubdtype(x.dtype, np.number) or x.dtype == bool:
            raise ModelError(f"covariate {c!r} is not numeric (dtype {x.dtype}); encode it as "
                             "0/1 indicator columns.")
        bad = x.isna().to_numpy()
        if bad.any():
            rows = ", ".join(str(i + 1) for i in np.flatnonzero(bad)[:8])
            raise ModelError(f"covariate {c!r} is missing in row(s) {rows}; impute or drop "
                             "those patients explicitly before fitting.")
        m, s = float(x.mean()), float(x.std(ddof=0))
        if s == 0:
            raise ModelError(f"covariate {c!r} is constant; it cannot be estimated.")
        cols.append((x.to_numpy(float) - m) / s)
        scale[c] = {"mean": m, "sd": s}
    X = np.column_stack(cols) if cols else np.zeros((trial.n_patients, 0))
    return X, scale


def prepare(model, trial, endpoint):
    """Everything that defines the graph structure and the data for pm.Data."""
    ep = trial.endpoint(endpoint)
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
    X, scale = standardize_covariates(trial, endpoint, model.covariates)
    aggregate = family.aggregates and X.shape[1] == 0
    if aggregate:
        # Units are the arm x site cells: sufficient statistics (exact).
        unit = ep.arm.astype(np.int64) * n_sites + ep.site
        n_units = 2 * n_sites
        u_arm = np.repeat([0.0, 1.0], n_sites)
        u_site = np.tile(np.arange(n_sites), 2)
        u_X = np.zeros((n_units, 0))
        data = family.data_arrays(ep.time, ep.event, unit, n_units)
    else:
        # Patients censored at time 0 contribute exactly 0 to the likelihood; leaving them
        # out of the graph avoids 0 * log(0) in the gradient (they stay in log_likelihood).
        keep = ep.time > 0
        n_units = int(keep.sum())
        u_arm, u_site, u_X = ep.arm[keep].astype(float), ep.site[keep].astype(np.int64), X[keep]
        data = family.data_arrays(ep.time[keep], ep.event[keep], np.arange(n_units), n_units)
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
    key = json.dumps({"family": {k: v for k, v in family.settings().items() if k != "cuts"},
                      "n_intervals": getattr(family, "n_intervals", None),
                      "site_effect": model.site_effect, "arm_by_site": model.arm_by_site,
                      "site_parametrization": parametrization, "n_sites": n_sites,
                      "n_cov": X.shape[1], "aggregate": aggregate,
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


def _strict_math():
    """Compile without numba fastmath: with it, code compiled in this process and code
    loaded from the on-disk cache differ in the last bits (inlining changes how LLVM
    reassociates), so the same seed gave different draws on a cold and a warm cache.
    Measured cost: none at this trial's size; 1.7x per gradient for the Weibull model at
    13,000 patients (its exponentials over patients vectorise only with fastmath)."""
    import pytensor

    return pytensor.config.change_flags(numba__fastmath=False)


def _compiled(key, builder, sampler):
    with _CACHE_LOCK:
        hit = _CACHE.get((key, sampler))
    if hit is not None:
        return hit
    m = builder()
    compiled = None
    if sampler == "nutpie":
        from bayes_hcc.models._nutpie import compile_model

        with _strict_math():
            compiled = compile_model(m, structure_key=key)
    with _CACHE_LOCK:
        if len(_CACHE) >= _MAX_CACHE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[(key, sampler)] = (m, compiled)
    return m, compiled


def _seed(random_seed) -> int:
    if random_seed is None:
        return int(np.random.SeedSequence().entropy % (2**32))
    if isinstance(random_seed, np.random.Generator):
        return int(random_seed.integers(2**32))
    return int(random_seed)


#: draws="auto": this many draws per chain, and once the second number when the chains
#: only fall short on R-hat, ESS or Monte Carlo error (not on divergences, tree depth or
#: E-BFMI, which more draws do not cure). Measured on the bundled rats data (50 litters of
#: 3): piecewise fits failed R-hat in 3 of 10 seeds at 1000 (R-hat 1.0101-1.0114 on the site
#: SD, ESS ~500), none at 2000 (R-hat <= 1.0044).
AUTO_DRAWS = (1000, 2000)
#: Checks that more draws can fix.
_MORE_DRAWS_FIX = ("r_hat", "ess_bulk", "ess_tail", "mcse_prob")


def sample_model(model, trial, endpoint, *, draws, tune, chains, cores, random_seed, sampler,
                 target_accept, check, log_likelihood=True, exploratory=False):
    from bayes_hcc.models.fit import Fit

    if isinstance(draws, str) and draws == "auto":
        if random_seed is None:  # both runs need the same seed
            random_seed = _seed(None)
        kw = dict(tune=tune, chains=chains, cores=cores, random_seed=random_seed,
                  sampler=sampler, target_accept=target_accept, check=False,
                  log_likelihood=log_likelihood, exploratory=exploratory)
        fit = sample_model(model, trial, endpoint, draws=AUTO_DRAWS[0], **kw)
        problems = fit.convergence_problems()
        rule = {"rule": "auto", "draws": AUTO_DRAWS[0], "extended": False}
        if problems and not exploratory and all(p.split(" ")[0] in _MORE_DRAWS_FIX and
                                                "too few" not in p for p in problems):
            first = problems
            fit = sample_model(model, trial, endpoint, draws=AUTO_DRAWS[1], **kw)
            problems = fit.convergence_problems()
            rule = {"rule": "auto", "draws": AUTO_DRAWS[1], "extended": True,
                    "because": first}
        fit.datatree.attrs["draws_rule"] = json.dumps(rule, sort_keys=True)
        # the spec records what was asked ("auto"); draws_rule what it resolved to
        fit.datatree.attrs.update(spec_attrs(model, trial.endpoint(endpoint), {
            "draws": "auto", "tune": tune, "chains": chains, "target_accept": target_accept,
            "sampler": sampler}, random_seed))
        fit = Fit(fit.datatree)
        if check and problems:
            fit.warn_if_unreliable(problems)
        return fit
    if sampler not in SAMPLERS:
        raise ModelError(f"sampler={sampler!r}; choose one of {', '.join(SAMPLERS)}.")
    n_patients = trial.n_patients if hasattr(trial, "n_patients") else 0
    check_sampler_settings(draws=draws, tune=tune, chains=chains, seed=random_seed,
                           target_accept=target_accept,
                           values_per_draw=(n_patients if log_likelihood else 0) + 100)
    if not isinstance(log_likelihood, (bool, np.bool_)):
        raise ModelError(f"log_likelihood={log_likelihood!r} must be True or False (a string "
                         "such as 'false' would count as True).")
    ep, family, priors, X, scale, data, key = prepare(model, trial, endpoint)
    n_sites, n_cov = len(ep.sites), X.shape[1]
    seed = _seed(random_seed)
    cores = cores or max(1, min(chains, os.cpu_count() or 1))

    def builder():
        return build_pymc(family, priors, data, site_effect=model.site_effect,
                          arm_by_site=model.arm_by_site, n_sites=n_sites, n_cov=n_cov,
                          site_parametrization=site_parametrization_for(model, ep))

    t0 = time.perf_counter()
    m, compiled = _compiled(key, builder, sampler)
    t1 = time.perf_counter()
    if sampler == "nutpie":
        from bayes_hcc.models import _nutpie

        trace = _nutpie.sample(_nutpie.with_data(compiled, m, data), draws=draws, tune=tune,
                               chains=chains, cores=cores, seed=seed, save_warmup=False,
                               progress_bar=False, target_accept=target_accept)
    else:
        with m, _strict_math():
            pm.set_data(data)
            trace = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores,
                              random_seed=seed, nuts_sampler="pymc", progressbar=False,
                              target_accept=target_accept, compute_convergence_checks=False,
                              quiet=True)
        trace = {g: trace[g].to_dataset() for g in ("posterior", "sample_stats")}
    t2 = time.perf_counter()
    dt = assemble(trace, model, trial, ep, family, priors, X, scale, seed,
                  dict(draws=draws, tune=tune, chains=chains, sampler=sampler,
                       target_accept=target_accept), log_likelihood=bool(log_likelihood))
    # The variables the sampler moves (an intercept's sampler coordinate is recorded under
    # the intercept's name): what the convergence checks look at.
    dt.attrs["sampled_variables"] = json.dumps(sorted(
        v.name[:-len(CENTRED_SUFFIX)] if v.name.endswith(CENTRED_SUFFIX) else v.name
        for v in m.free_RVs))
    # Wall times of this fit: building and compiling (0 when the compiled sampler was
    # reused), sampling, and assembling the DataTree (log-likelihood, log prior).
    dt.attrs["timing_seconds"] = json.dumps({"compile": round(t1 - t0, 4),
                                             "sampling": round(t2 - t1, 4),
                                             "assemble": round(time.perf_counter() - t2, 4)})
    dt.attrs["analysis_mode"] = "exploratory" if exploratory else "confirmatory"
    fit = Fit(dt)
    if check:
        fit.warn_if_unreliable()
    return fit


#: Draws per block of the pointwise log-likelihood: blocks of about 2**20 values keep every
#: temporary small (8 MB) instead of one (draws x patients) array per operation. At 13,000
#: patients and 4,000 draws: 6.3 s and +1.8 GB before, 2.0 s and +0.4 GB (the result) after;
#: the values are the same (elementwise operations, each on its own draw; tested).
_LL_BLOCK_VALUES = 2**20


def pointwise_loglik(family, post, time, event, arm, site, X, *, site_effect, arm_by_site):
    """Patient-level log-likelihood (``models.likelihood``, the same function for every
    family): exact events log h(t) - H(t), censored -H(t). Shape (S, n)."""
    from bayes_hcc.models.likelihood import loglik

    time, arm, event = np.asarray(time, float), np.asarray(arm), np.asarray(event, float)
    n_draws = len(next(iter(post.values())))
    out = np.empty((n_draws, len(time)))
    step = max(1, _LL_BLOCK_VALUES // max(len(time), 1))
    masks = [arm == a for a in (0, 1)]
    for s0 in range(0, n_draws, step):
        block = {k: v[s0:s0 + step] for k, v in post.items()}
        eta = eta_numpy(block, arm, site, X, site_effect=site_effect, arm_by_site=arm_by_site,
                        arm_effect=family.arm_effect)
        for a, m in enumerate(masks):  # an arm may see its own baseline (time-varying HR)
            out[s0:s0 + step, m] = loglik(np, family, family.params_for_arm(block, a),
                                          eta[:, m], time=time[m], kind=event[m])
    return out


def log_prior(post, priors, family, site_effect, arm_by_site, has_cov,
              time_unit: str = "months") -> dict:
    """Log prior density of each free variable (scipy), summed over its own dims: (S,).

    Time-scaled parameters are evaluated on the months scale their prior is declared on
    (value in the data's unit minus ``Family.unit_shift``)."""
    from scipy import stats

    shifts = family.unit_shift(post, log_unit_in_months(time_unit))
    out = family.log_prior(post, priors, shifts)  # the baseline's own variables
    for key in active_priors(priors, family, site_effect, arm_by_site, has_cov):
        p = priors[key]
        shift = shifts.get(key, 0.0)
        if key in family.params:
            continue
        if key == "site_effect":  # ZeroSumNormal: normal density up to a constant
            out[key] = stats.norm(0, p.params["sigma"]).logpdf(post[key]).sum(axis=1)
        elif key == "site_sd" and "site_z" not in post:  # centred site effects
            out[key] = p.logpdf(post[key])
            out["site_effect"] = stats.norm.logpdf(
                post["site_effect"] / post[key][:, None]).sum(axis=1) \
                - post["site_effect"].shape[1] * np.log(post[key])
        else:
            v = p.logpdf(post[key] - shift)
            out[key] = v.reshape(v.shape[0], -1).sum(axis=1)
    for z in ("site_z", "arm_site_z"):
        if z in post:
            out[z] = stats.norm.logpdf(post[z]).reshape(post[z].shape[0], -1).sum(axis=1)
    return out


def administrative_follow_up(trial, ep) -> np.ndarray:
    """Time from randomization to the data cut per patient; without dates (or without a
    cut), the longest observed follow-up in the trial (documented approximation)."""
    if trial.has_dates and trial.cut_date is not None:
        rand = trial.to_frame()["randomization_date"]
        days = ((trial.cut_date - rand) / np.timedelta64(1, "D")).to_numpy(float)
        return np.maximum(days / DAYS_PER_UNIT[trial.time_unit], np.asarray(ep.time, float))
    return np.full(len(ep), float(np.max(ep.time)))


def assemble(trace: dict, model, trial, ep, family, priors, X, scale, seed, run, *,
             log_likelihood=True) -> xr.DataTree:
    post_ds = trace["posterior"]
    # The sampler's coordinates for intercepts (centred_intercept): the intercepts are kept.
    post_ds = post_ds.drop_vars([v for v in post_ds.data_vars
                                 if str(v).endswith(CENTRED_SUFFIX)])
    coords = {"site": list(ep.sites), "covariate": list(model.covariates), **family.coords()}
    post_ds = post_ds.assign_coords({k: v for k, v in coords.items() if k in post_ds.dims})
    effect = family.effect
    post_ds[effect.quantity] = np.exp(post_ds[effect.name])
    time_ratio = family.time_ratio(post_ds)
    if time_ratio is not None:
        post_ds["time_ratio"] = time_ratio
    if "log_hr_dev" in post_ds:
        post_ds["log_hr_interval"] = post_ds["log_hr"] + post_ds["log_hr_dev"]
    shape = (post_ds.sizes["chain"], post_ds.sizes["draw"])
    names = list(post_ds.data_vars)
    post = flat_posterior(post_ds, names)
    pid = list(ep.patient_id)
    name = ep.name
    sd = ("chain", "draw")
    ll_ds = None
    if log_likelihood:
        ll = pointwise_loglik(family, post, ep.time, ep.event, ep.arm, ep.site, X,
                              site_effect=model.site_effect, arm_by_site=model.arm_by_site)
        ll_ds = xr.Dataset({name: (sd + ("patient",), ll.reshape(shape + (-1,)))},
                           coords={"patient": pid, "chain": post_ds["chain"],
                                   "draw": post_ds["draw"]})
    lp = log_prior(post, priors, family, model.site_effect, model.arm_by_site, X.shape[1] > 0,
                   ep.time_unit)
    lp_ds = xr.Dataset({k: (sd, v.reshape(shape)) for k, v in lp.items()},
                       coords={"chain": post_ds["chain"], "draw": post_ds["draw"]})
    obs = xr.Dataset({name: ("patient", np.asarray(ep.time, float))}, coords={"patient": pid})
    admin = administrative_follow_up(trial, ep)
    const = xr.Dataset({
        # ArviZ survival tools read the event indicator under the observed variable's name.
        name: ("patient", np.asarray(ep.event, np.int64)),
        "arm": ("patient", np.asarray(ep.arm, np.int64)),
        "site": ("patient", np.asarray(ep.site, np.int64)),
        "X": (("patient", "covariate"), X),
        # Longest follow-up each patient could have had (randomization to data cut): the
        # censoring time of a replicated event in posterior predictive checks.
        "admin_time": ("patient", admin),
    }, coords={"patient": pid, "covariate": list(model.covariates)})
    for k, v in family.constant_data().items():
        const[k] = v
    attrs = {
        **spec_attrs(model, ep, run, seed),
        # the family as resolved for these data (quantile cut points, knots): derived from
        # the spec and the data, kept so that the fit can be read without refitting
        "bayes_hcc_family": json.dumps(family.settings(), sort_keys=True),
        "bayes_hcc_priors": json.dumps({k: v.to_dict() for k, v in sorted(priors.items())},
                                       sort_keys=True),
        "covariate_scaling": json.dumps(scale, sort_keys=True),
        "endpoint": name,
        "arms": json.dumps(list(ep.arms)),
        "sites": json.dumps(list(ep.sites)),
        "time_unit": ep.time_unit,
        "max_follow_up": float(np.max(ep.time)),
        "data_fingerprint": trial.fingerprint,
        "data_source": trial.source,
        "cut_date": "" if trial.cut_date is None else str(trial.cut_date.date()),
        "random_seed": int(seed),
        "sampler_settings": json.dumps(run, sort_keys=True),
        # what "auto" resolved to for these data (the model settings keep what was asked)
        "site_parametrization_used": site_parametrization_for(model, ep),
        "package_versions": json.dumps(provenance_versions(), sort_keys=True),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    groups = {"posterior": post_ds, "sample_stats": trace["sample_stats"],
              "log_likelihood": ll_ds, "log_prior": lp_ds, "observed_data": obs,
              "constant_data": const}
    groups = {k: v for k, v in groups.items() if v is not None}
    dt = xr.DataTree.from_dict({f"/{k}": v for k, v in groups.items()})
    dt.attrs = attrs
    return dt


def spec_attrs(model, ep, run: dict, seed) -> dict:
    """The spec a fit records (the model's, with the endpoint, the data's unit for a model
    made in code, and the sampler settings used), as TOML with its hash."""
    from bayes_hcc.spec.model_spec import dump_spec

    spec = model.spec_for_fit(ep.name, ep.time_unit, {
        "draws": run["draws"], "tune": run["tune"], "chains": run["chains"],
        "target_accept": float(run["target_accept"]), "sampler": run["sampler"],
        "seed": int(seed)})
    return {"spec_toml": dump_spec(spec), "spec_hash": spec.hash, "spec_name": spec.name}


def warn_convergence(message: str) -> None:
    warnings.warn(message, ConvergenceWarning, stacklevel=4)
