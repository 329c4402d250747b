"""Build a model from a ModelSpec and fit it: every fit records the spec and its hash."""

from __future__ import annotations

import numpy as np

from bayes_hcc.data.trial import TrialData
from bayes_hcc.errors import SpecError
from bayes_hcc.models.base import _MODELS
from bayes_hcc.spec.model_spec import ModelSpec, dump_spec, load_spec

__all__ = ["build", "fit_spec", "population", "FAST", "SIMULATED_REFIT"]

_CLASSES = _MODELS
#: Fast mode: a quick look, labelled exploratory and checked at the exploratory thresholds
#: (``bayes_hcc.convergence``); measured in docs/guide/diagnostics.md.
FAST = {"draws": 300, "tune": 400, "chains": 4}
#: Refits of simulated or completed trials (PPoS, design simulations): a fixed 1000 draws
#: per chain, not "auto" (their convergence is counted, and hundreds of refits should not
#: each pay for a second run).
SIMULATED_REFIT = {"draws": 1000}


def build(spec, time_unit: str | None = None):
    """The model object a spec describes (nothing is sampled). ``time_unit``: the unit of
    the data it will be fitted to; the spec's cut points (in ``spec.time_unit``) are
    converted to it."""
    from bayes_hcc.units import convert

    spec = load_spec(spec)
    site = dict(spec.site)
    opts = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.options}
    if "cuts" in opts and time_unit is not None:
        opts["cuts"] = [float(convert(c, spec.time_unit, time_unit)) for c in opts["cuts"]]
    return _CLASSES[spec.family](
        site_effect=site["effect"], site_parametrization=site["parametrization"],
        arm_by_site=None if site["arm_by_site"] == "none" else site["arm_by_site"],
        covariates=spec.covariates, priors=spec.prior_dict, **opts)


def population(spec: ModelSpec, trial: TrialData) -> TrialData:
    """The analysis population: all randomized (ITT) or the ``per_protocol`` patients."""
    if spec.population == "itt":
        return trial
    if "per_protocol" not in trial.covariates:
        raise SpecError(f"{spec.name}: population 'per_protocol' needs a per_protocol column "
                        "(1 = per protocol) in the data.")
    flag = trial.to_frame()["per_protocol"].to_numpy()
    if not np.isin(flag, [0, 1, True, False]).all():
        raise SpecError(f"{spec.name}: per_protocol must be 0/1 for every patient.")
    return trial.subset(flag.astype(bool), label="per-protocol")


def fit_spec(spec, trial: TrialData, *, fast: bool = False, check: bool = True, **overrides):
    """Fit a spec to a trial. ``fast``: a quick look (``FAST`` settings), labelled
    exploratory (``bayes_hcc.convergence``); keyword overrides replace the
    spec's sampler settings (draws, tune, chains, random_seed...). The fit's attrs carry
    ``spec_toml`` and ``spec_hash``."""
    spec = load_spec(spec)
    sampler = dict(spec.sampler)
    kwargs = {"draws": sampler["draws"], "tune": sampler["tune"], "chains": sampler["chains"],
              "target_accept": sampler["target_accept"], "random_seed": sampler["seed"],
              "sampler": sampler["sampler"]}
    if fast:
        kwargs.update(FAST)
        kwargs["exploratory"] = True
    kwargs.update(overrides)
    fit = build(spec, trial.time_unit).fit(population(spec, trial), spec.endpoint, check=check,
                                           **kwargs)
    fit.datatree.attrs["spec_toml"] = dump_spec(spec)
    fit.datatree.attrs["spec_hash"] = spec.hash
    fit.datatree.attrs["spec_name"] = spec.name
    return fit
