"""Build a model from a ModelSpec and fit it: every fit records the spec and its hash."""

from __future__ import annotations

import numpy as np

from bayes_hcc.data.trial import TrialData, require_trial
from bayes_hcc.errors import BayesHCCError, SpecError, bool_flags, did_you_mean
from bayes_hcc.models.base import SurvivalModel
from bayes_hcc.spec.model_spec import ModelSpec, apply_overrides, dump_spec, load_spec

__all__ = ["build", "fit_spec", "population", "FAST", "SIMULATED_REFIT"]
#: Fast mode: a quick look, labelled exploratory and checked at the exploratory thresholds
#: (``bayes_hcc.convergence``); measured in docs/guide/diagnostics.md.
FAST = {"draws": 300, "tune": 400, "chains": 4}
#: Refits of simulated or completed trials (PPoS, design simulations): a fixed 1000 draws
#: per chain, not "auto" (their convergence is counted, and hundreds of refits should not
#: each pay for a second run).
SIMULATED_REFIT = {"draws": 1000}


def build(spec):
    """The model object a spec describes (nothing is sampled): the spec itself is its
    settings; times in its options (cut points, knots) are in ``spec.time_unit`` and are
    moved to the data's unit when fitted. A spec with an ``[illness_death]`` table gives a
    :class:`~bayes_hcc.IllnessDeath`."""
    spec = load_spec(spec)
    if spec.illness_death:
        from bayes_hcc.multistate.model import IllnessDeath

        return IllnessDeath.from_spec(spec)
    return SurvivalModel.from_spec(spec)


def _spec_like(model) -> bool:
    from pathlib import Path

    return isinstance(model, (ModelSpec, Path)) or (isinstance(model, str)
                                                    and model.endswith(".toml"))


def illness_death_analysis(spec, trial: TrialData):
    """(model, analysis population, {"progression", "death"}) of an illness-death spec
    (the model with its times, cut points, in the trial's unit, and the endpoints the spec
    names) or of an ``IllnessDeath`` model (the trial, and its default endpoints); None for
    anything else."""
    from bayes_hcc.multistate.model import IllnessDeath

    if isinstance(spec, IllnessDeath):
        return spec, trial, {}
    if not _spec_like(spec):
        return None
    spec = load_spec(spec)
    if not spec.illness_death:
        return None
    ms = dict(spec.illness_death)
    trial = population(spec, trial)
    return (IllnessDeath.from_spec(spec, trial.time_unit), trial,
            {"progression": ms["progression"], "death": ms["death"]})


def single_endpoint_model(model, trial: TrialData, endpoint: str | None, what: str):
    """(model, trial, endpoint) for a function that takes one single-endpoint model: a
    spec (or its path) gives its model, analysis population and, unless ``endpoint`` is
    given, its endpoint (default "os"). Anything else is refused by name, not left to fail
    deep inside with an AttributeError."""
    if _spec_like(model):
        spec = load_spec(model)
        trial = population(spec, trial)
        endpoint = endpoint or spec.endpoint
        model = build(spec)
    if isinstance(model, type):
        raise BayesHCCError(f"{what}: give a model, bh.{model.__name__}(...), not the class.")
    if not isinstance(model, SurvivalModel):
        raise BayesHCCError(f"{what} takes a single-endpoint model "
                            "(bh.PiecewiseExponential(), bh.WeibullPH(), ...) or an analysis "
                            f"spec, not {type(model).__name__} ({model!r}).")
    return model, trial, endpoint or "os"


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


def require_fit_data(fit, trial: TrialData, caller: str, consequence: str) -> None:
    """``trial`` must be the data ``fit`` was made on: the same data cut (its analysis
    population, for a per-protocol spec); else a :class:`BayesHCCError` saying what would go
    wrong (``consequence``). A fit on bare arrays has no fingerprint to compare."""
    require_trial(trial, caller)
    fingerprint = getattr(fit, "data_fingerprint", None)
    if not fingerprint or fingerprint == trial.fingerprint:
        return
    spec = getattr(fit, "spec", None)
    if spec is not None and getattr(spec, "population", "itt") != "itt":
        try:  # the randomized patients of a per-protocol analysis
            analysed = population(spec, trial).fingerprint
        except BayesHCCError:  # e.g. no per_protocol column: not the fit's data either
            analysed = None
        if analysed == fingerprint:
            return
    cut = "" if trial.cut_date is None else f" (cut {trial.cut_date.date()})"
    raise BayesHCCError(f"{caller}: trial{cut} is not the data the fit was made on "
                        f"(fingerprints {trial.fingerprint[:12]} and {fingerprint[:12]}): "
                        f"{consequence}. Pass the data cut the fit was made on.")


@bool_flags
def fit_spec(spec, trial: TrialData, *, fast: bool = False, check: bool = True, **overrides):
    """Fit a spec to a trial. ``fast``: a quick look (``FAST`` settings), labelled
    exploratory (``bayes_hcc.convergence``); keyword overrides replace the
    spec's sampler settings (draws, tune, chains, random_seed...). The fit's attrs carry
    ``spec_toml`` and ``spec_hash`` (the spec as run: its sampler table says what was used)
    and ``analysis_spec_hash`` (the hash of ``spec`` as given)."""
    spec = load_spec(spec)
    require_trial(trial, "fit_spec")
    _check_fit_keywords(spec, overrides)
    sampler = dict(spec.sampler)
    kwargs = {"draws": sampler["draws"], "tune": sampler["tune"], "chains": sampler["chains"],
              "target_accept": sampler["target_accept"], "random_seed": sampler["seed"],
              "sampler": sampler["sampler"]}
    if fast:
        kwargs.update(FAST)
        kwargs["exploratory"] = True
    kwargs.update(overrides)
    if spec.illness_death:
        return _fit_illness_death(spec, trial, check, kwargs)
    fit = build(spec).fit(population(spec, trial), spec.endpoint, check=check, **kwargs)
    # The fit's spec records the sampler settings it ran with (fast mode, overrides); the
    # pre-specified analysis it came from is kept by its own hash.
    fit.datatree.attrs["analysis_spec_hash"] = spec.hash
    return fit


def _check_fit_keywords(spec: ModelSpec, given: dict) -> None:
    """``fit_spec``'s keyword overrides: those the model's ``fit`` takes, less what the spec
    or ``fit_spec`` itself sets (a TypeError from inside named neither the call nor the
    choices; ``sampler="pymc"`` for an illness-death spec was dropped without a word)."""
    import inspect

    if spec.illness_death:
        from bayes_hcc.multistate.model import IllnessDeath as target
    else:
        target = SurvivalModel
    allowed = [n for n, p in inspect.signature(target.fit).parameters.items()
               if p.kind is p.KEYWORD_ONLY and n not in ("check", "progression", "death")]
    if spec.illness_death:
        allowed.append("sampler")
        if given.get("sampler", "nutpie") != "nutpie":
            raise BayesHCCError(f"fit_spec: sampler={given['sampler']!r}: an illness-death "
                                "model samples with nutpie; leave sampler out.")
    if "endpoint" in given:
        raise BayesHCCError(f"fit_spec: endpoint={given['endpoint']!r}: a spec fits its own "
                            f"endpoint ({spec.endpoint}); for another, fit a spec naming it: "
                            "bh.apply_overrides(spec, {'endpoint': ...}), or "
                            "models/secondary_pfs.toml and secondary_ttp.toml.")
    unknown = [k for k in given if k not in allowed]
    if unknown:
        seed = " (the spec's seed is the keyword random_seed)" if "seed" in unknown else ""
        raise BayesHCCError(f"fit_spec: unknown keyword(s) {did_you_mean(unknown, allowed)}"
                            f"{seed}; it takes fast, check and {', '.join(allowed)} (these "
                            "replace the spec's [sampler] settings).")


def _fit_illness_death(spec: ModelSpec, trial: TrialData, check: bool, kwargs: dict):
    """An illness-death spec's fit; its attrs carry the spec as run (sampler settings as
    used), its hash, and the hash of the spec as given."""
    kwargs = dict(kwargs)
    kwargs.pop("sampler", None)  # nutpie (the spec says so)
    model, trial, ends = illness_death_analysis(spec, trial)
    fit = model.fit(trial, **ends, check=check, **kwargs)
    ran = {"sampler.draws": kwargs["draws"], "sampler.tune": kwargs["tune"],
           "sampler.chains": kwargs["chains"], "sampler.target_accept":
           kwargs["target_accept"], "sampler.seed": int(fit.random_seed)}
    as_run = apply_overrides(spec, ran) if any(
        dict(spec.sampler)[k.split(".")[1]] != v for k, v in ran.items()) else spec
    fit.datatree.attrs.update(spec_toml=dump_spec(as_run), spec_hash=as_run.hash,
                              analysis_spec_hash=spec.hash, endpoint=spec.endpoint,
                              spec_name=spec.name)
    fit.spec = as_run
    return fit
