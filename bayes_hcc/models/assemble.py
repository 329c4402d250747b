"""The Fit's DataTree: posterior with labelled dims and derived ratios, the patient-level
log-likelihood, the log prior, the observed and constant data, and the provenance attrs (the
spec as run, the resolved family, data fingerprint, package versions)."""

from __future__ import annotations

import datetime as _dt
import json

import numpy as np
import xarray as xr

from bayes_hcc._versions import provenance_versions
from bayes_hcc.families.base import CENTRED_SUFFIX
from bayes_hcc.models.covariates import column_labels, covariate_effects
from bayes_hcc.models.design import active_priors, eta_numpy, patient_groups
from bayes_hcc.models.fit import flat_posterior
from bayes_hcc.models.graph import site_parametrization_for, stratum_index
from bayes_hcc.units import DAYS_PER_UNIT, log_unit_in_months

__all__ = ["assemble", "pointwise_loglik", "log_prior", "administrative_follow_up",
           "spec_attrs"]


#: Draws per block of the pointwise log-likelihood: blocks of about 2**20 values keep every
#: temporary small (8 MB) instead of one (draws x patients) array per operation. At 13,000
#: patients and 4,000 draws: 6.3 s and +1.8 GB before, 2.0 s and +0.4 GB (the result) after;
#: the values are the same (elementwise operations, each on its own draw; tested).
_LL_BLOCK_VALUES = 2**20


def pointwise_loglik(family, post, time, event, arm, site, X, *, site_effect, arm_by_site,
                     upper=None, entry=None, stratum=None, n_strata: int = 1, log_unit=0.0):
    """Patient-level log-likelihood (``models.likelihood``, the same function for every
    family): exact events log h(t) - H(t), censored -H(t); with ``upper`` (event kinds as
    ``Endpoint.kind`` in ``event``) interval-censored log(S(L) - S(R)), with ``entry`` left
    truncation; with ``stratum`` each patient's stratum's baseline. Shape (S, n)."""
    from bayes_hcc.models.likelihood import loglik

    time, arm, event = np.asarray(time, float), np.asarray(arm), np.asarray(event, float)
    extra = {}
    if upper is not None:
        extra["upper"] = np.asarray(upper, float)
    if entry is not None:
        extra["entry"] = np.asarray(entry, float)
    n_draws = len(next(iter(post.values())))
    out = np.empty((n_draws, len(time)))
    step = max(1, _LL_BLOCK_VALUES // max(len(time), 1))
    for s0 in range(0, n_draws, step):
        block = {k: v[s0:s0 + step] for k, v in post.items()}
        eta = eta_numpy(block, arm, site, X, site_effect=site_effect, arm_by_site=arm_by_site,
                        arm_effect=family.arm_effect)
        # each group with its own baseline: arm (time-varying HR) x stratum
        for m, params in patient_groups(family, block, arm, stratum, n_strata, log_unit):
            out[s0:s0 + step, m] = loglik(np, family, params, eta[:, m], time=time[m],
                                          kind=event[m], **{k: v[m] for k, v in extra.items()})
    return out


def log_prior(post, priors, family, site_effect, arm_by_site, has_cov,
              time_unit: str = "months", pooling: str | None = None) -> dict:
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
    if pooling is not None:  # the stratified baseline's deviations (models.design)
        for p in family.params:
            if pooling == "partial":
                sd, z = post[f"stratum_sd_{p}"], post[f"stratum_z_{p}"]
                out[f"stratum_sd_{p}"] = priors["stratum_sd"].logpdf(sd)
                out[f"stratum_z_{p}"] = stats.norm.logpdf(z).reshape(z.shape[0], -1).sum(1)
            else:  # ZeroSumNormal: normal density up to a constant
                dev = post[f"stratum_dev_{p}"]
                sigma = priors[p].params.get("sigma", 1.0) if p in priors else 1.0
                out[f"stratum_dev_{p}"] = stats.norm(0, sigma).logpdf(dev).reshape(
                    dev.shape[0], -1).sum(axis=1)
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
    columns = column_labels(scale)
    stratum, strata_labels = (stratum_index(trial, ep, model.strata) if model.strata
                              else (None, ()))
    coords = {"site": list(ep.sites), "covariate": columns, "stratum": list(strata_labels),
              **family.coords()}
    post_ds = post_ds.assign_coords({k: v for k, v in coords.items() if k in post_ds.dims})
    effect = family.effect
    post_ds[effect.quantity] = np.exp(post_ds[effect.name])
    time_ratio = family.time_ratio(post_ds)
    if time_ratio is not None:
        post_ds["time_ratio"] = time_ratio
    for k, v in family.derived(post_ds).items():  # the family's own derived variables
        post_ds[k] = v
    if columns:
        # covariate effects as a reader wants them: per unit, or level vs reference level
        beta = post_ds["beta"].to_numpy()
        effects = covariate_effects(beta.reshape(-1, beta.shape[-1]), scale)
        post_ds["covariate_effect"] = xr.DataArray(
            np.stack([v.reshape(beta.shape[:2]) for v in effects.values()], axis=-1),
            dims=("chain", "draw", "term"), coords={"term": list(effects)},
            attrs={"scale": f"log {family.effect.ratio}", "conditional": "on the other "
                   "covariates, the arm and the site terms of the model"})
    shape = (post_ds.sizes["chain"], post_ds.sizes["draw"])
    names = list(post_ds.data_vars)
    post = flat_posterior(post_ds, names)
    pid = list(ep.patient_id)
    name = ep.name
    sd = ("chain", "draw")
    ll_ds = None
    if log_likelihood:
        # the Endpoint's likelihood view; bounds and entry times only when some patient
        # needs them (right-censored data keep the plain path)
        kind = ep.kind
        ll = pointwise_loglik(family, post, ep.lower, kind, ep.arm, ep.site, X,
                              site_effect=model.site_effect, arm_by_site=model.arm_by_site,
                              upper=ep.upper if ep.has_bounds else None,
                              entry=ep.entry if (ep.entry > 0).any() else None,
                              stratum=stratum, n_strata=len(strata_labels),
                              log_unit=log_unit_in_months(ep.time_unit))
        ll_ds = xr.Dataset({name: (sd + ("patient",), ll.reshape(shape + (-1,)))},
                           coords={"patient": pid, "chain": post_ds["chain"],
                                   "draw": post_ds["draw"]})
    lp = log_prior(post, priors, family, model.site_effect, model.arm_by_site, X.shape[1] > 0,
                   ep.time_unit, model.pooling)
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
    }, coords={"patient": pid, "covariate": columns})
    if stratum is not None:
        const["stratum"] = ("patient", np.asarray(stratum, np.int64))
    if ep.has_bounds:
        # interval-censored events: the bounds (upper = inf when censored) and the scans,
        # which the posterior predictive check replicates the assessment process with
        const["lower_bound"] = ("patient", np.asarray(ep.lower, float))
        const["upper_bound"] = ("patient", np.asarray(ep.upper, float))
        scans = trial.scan_times()
        if scans is not None:
            const["scan_time"] = (("patient", "scan"), scans)
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
        "strata": json.dumps(list(strata_labels)),
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
    if getattr(trial, "is_reconstructed", False):
        attrs["data_reconstructed"] = reconstruction_provenance(trial)
    if getattr(model, "prior_provenance", None):  # e.g. a MAP prior's history and ESS
        attrs["prior_provenance"] = json.dumps(model.prior_provenance, sort_keys=True)
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


def reconstruction_provenance(trial) -> str:
    """What a fit of reconstructed data records about them (JSON): the method and, per arm,
    the patients, events and the fidelity of the reconstruction."""
    from bayes_hcc.data.reconstruct import METHOD, reconstruction_fidelity

    summary = reconstruction_fidelity(trial).summary
    arms = {str(a): {k: (None if v is None or (isinstance(v, float) and not np.isfinite(v))
                         else (round(float(v), 6) if isinstance(v, float) else int(v)))
                     for k, v in row.items()} for a, row in summary.iterrows()}
    return json.dumps({"method": METHOD, "arms": arms}, sort_keys=True)
