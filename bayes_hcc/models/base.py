"""Survival models: a family plus arm, site and covariate terms; ``fit`` returns a Fit.

A model object is a spec (``ModelSpec``: its only settings) and the family it names; one
model class per registered family is made here from the registry. Fitting never mutates a
model. Compiled samplers are cached per graph structure (see ``models.sampling``), so refits with
new data of the same shape are cheap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayes_hcc.data.trial import TrialData, require_trial
from bayes_hcc.errors import ModelError, SpecError, bool_flags
from bayes_hcc.families.base import Family
from bayes_hcc.families.registry import FAMILIES
from bayes_hcc.models.design import active_priors
from bayes_hcc.models.sampling import sample_model
from bayes_hcc.spec.priors import DEFAULT_PRIORS, Prior

__all__ = ["SurvivalModel", "MODELS", "DEFAULT_PRIORS", "model_from_spec", "model_class",
           *(fam.model_name for fam in FAMILIES.values())]


class SurvivalModel:
    """A survival model: a :class:`~bayes_hcc.ModelSpec` (the one representation of its
    settings, validated once, when the model is made) and the family it names.

    The classes exported as ``bh.WeibullPH``, ``bh.PiecewiseExponential``, ... are made
    from the family registry (``models.base.MODELS``): each is this class with its family
    key; their constructors build a spec. A model object never changes; ``fit`` returns a
    :class:`Fit` that stores the spec (TOML and hash) it was made from.
    """

    #: registry key of the family (set on each registry-made subclass)
    family_key = ""
    #: family options the constructor also accepts positionally (e.g. ``cuts``)
    positional: tuple[str, ...] = ()

    def __init__(self, *args, site_effect: str | None = None, arm_by_site: str | None = None,
                 strata: str | None = None, pooling: str = "partial",
                 covariates=(), reference_levels: dict | None = None,
                 priors: dict | None = None,
                 site_parametrization: str = "auto", censoring: str = "interval", **options):
        name = type(self).__name__
        if len(args) > len(self.positional):
            raise TypeError(f"{name}() takes {len(self.positional)} positional argument(s) "
                            f"({', '.join(self.positional) or 'none'}); give the others by "
                            "name.")
        options.update(zip(self.positional, args))
        options = {k: _toml_value(v) for k, v in options.items() if v is not None}
        if priors is not None and not isinstance(priors, Mapping):
            raise ModelError(f"{name}: priors= is a dict of parameter name -> prior, e.g. "
                             "priors={'log_hr': bh.Prior('Normal', mu=0, sigma=1)}; got "
                             f"{priors!r}.")
        for k, v in (priors or {}).items():
            where = getattr(v, "applies_to", None)  # a MAP prior: one family's parameter
            if where is not None and (self.family_key, k) not in where:
                allowed = ", ".join(f"{p} of {f}" for f, p in sorted(where))
                kind = ("per-interval log hazards per month" if getattr(v, "per_interval",
                                                                        False)
                        else "constant log hazard per month")
                raise ModelError(f"{name}: priors[{k!r}] is a {type(v).__name__} of the "
                                 f"control arm's {kind}; it applies to {allowed}, not to "
                                 f"{k} of this model.")
            problem = (v.check_model(options, self.family_key) if hasattr(v, "check_model")
                       else None)
            if problem:
                raise ModelError(f"{name}: {problem}")
        #: where priors built from data came from (a MAP prior's history, ESS, ...): kept
        #: in every fit's attributes; the spec holds the priors themselves
        provenance = {k: v.to_dict() for k, v in (priors or {}).items()
                      if hasattr(v, "as_prior")}
        as_dicts = {}
        for k, v in (priors or {}).items():
            try:
                as_dicts[k] = v if isinstance(v, dict) else Prior.from_dict(v).to_dict()
            except SpecError as err:
                raise SpecError(f"{name}: priors[{k!r}]: {err}") from None
        priors = as_dicts
        site = {"parametrization": site_parametrization,
                "arm_by_site": "none" if arm_by_site is None else arm_by_site}
        if site_effect is not None:  # default "random"; "none" when stratified by site
            site["effect"] = site_effect
        d = {"name": name, "endpoint": "os", "family": self.family_key, "options": options,
             "site": site,
             "covariates": list(covariates) if not isinstance(covariates, str)
             else [covariates], "priors": priors, "censoring": censoring}
        if strata is not None:
            d["strata"] = {"column": strata, "pooling": pooling}
        elif pooling != "partial":
            raise ModelError(f"{name}: pooling={pooling!r} applies to a stratified baseline: "
                             "give strata= (a column, e.g. strata='site').")
        if reference_levels:
            d["reference_levels"] = {k: (v if isinstance(v, (str, int)) else str(v))
                                     for k, v in reference_levels.items()}
        self.spec = _model_spec(d, name)
        #: times in the options are in the data's unit (a spec states its own unit)
        self.times_in_data_unit = True
        self.prior_provenance = provenance

    @classmethod
    def from_spec(cls, spec) -> SurvivalModel:
        """The model a spec describes (its options' times in ``spec.time_unit``)."""
        from bayes_hcc.spec.model_spec import load_spec

        spec = load_spec(spec)
        model = object.__new__(MODELS_BY_KEY[spec.family])
        model.spec, model.times_in_data_unit, model.prior_provenance = spec, False, {}
        return model

    # -- the spec's settings, read-only --------------------------------------------------------
    @property
    def site_effect(self) -> str:
        return dict(self.spec.site)["effect"]

    @property
    def site_parametrization(self) -> str:
        return dict(self.spec.site)["parametrization"]

    @property
    def arm_by_site(self) -> str | None:
        v = dict(self.spec.site)["arm_by_site"]
        return None if v == "none" else v

    @property
    def covariates(self) -> tuple:
        return tuple(self.spec.covariates)

    @property
    def strata(self) -> str | None:
        """The column whose levels get their own baseline hazard (None: one baseline)."""
        return dict(self.spec.strata).get("column")

    @property
    def pooling(self) -> str | None:
        """How the strata's baselines are pooled ("partial" or "none"; None unstratified)."""
        return dict(self.spec.strata).get("pooling")

    @property
    def reference_levels(self) -> dict:
        """Reference level of each categorical covariate given (default: the first level)."""
        return dict(self.spec.reference_levels)

    @property
    def censoring(self) -> str:
        """How interval-censored events are analysed: "interval" (their likelihood, the
        default) or the imputations "midpoint", "upper", "lower" (sensitivity analyses)."""
        return self.spec.censoring

    @property
    def priors(self) -> dict:
        """The user's prior overrides (``resolved_priors`` layers them on the defaults)."""
        return dict(self.spec.priors)

    @property
    def options(self) -> dict:
        """The family options as given (defaults are the family's)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.spec.options}

    def __getattr__(self, name):
        # a family option not given reads as None (e.g. ``model.cuts`` for quantile cuts)
        fam = FAMILY_OF_MODEL.get(type(self).__name__)
        if fam is not None and name in fam.options and "spec" in self.__dict__:
            v = self.options.get(name)
            return tuple(v) if isinstance(v, list) else v
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def family_for(self, time, event, time_unit: str = "months") -> Family:
        """The baseline family for these data (cut points or knots may depend on the event
        times); time-valued options are moved from the spec's unit to ``time_unit``."""
        from bayes_hcc.families.registry import family_class
        from bayes_hcc.units import convert

        cls = family_class(self.family_key)
        opts = self.options
        if not self.times_in_data_unit and self.spec.time_unit != time_unit:
            for k, kind in cls.options.items():
                if k in opts and kind in ("cuts", "time"):
                    opts[k] = np.asarray(convert(np.asarray(opts[k], float),
                                                 self.spec.time_unit, time_unit)).tolist()
        return cls.for_data(time, event, time_unit, **opts)

    def data_dependent(self) -> bool:
        """True when the family's layout is chosen from the data (quantile cuts or knots)."""
        from bayes_hcc.families.registry import family_class

        return family_class(self.family_key).depends_on_data(self.options)

    def spec_for_fit(self, endpoint: str, time_unit: str, sampler: dict):
        """The spec a fit records: this model's, with the endpoint and sampler settings used
        (and, for a model made in code, the data's unit as the unit of its options)."""
        import dataclasses

        spec = self.spec
        changes = {"endpoint": endpoint,
                   "sampler": tuple(sorted({**dict(spec.sampler), **sampler}.items()))}
        if self.times_in_data_unit and time_unit != spec.time_unit:
            from bayes_hcc.units import convert

            changes["time_unit"] = time_unit
            # the report's landmarks and RMST horizon stay the same times
            changes["report"] = tuple(
                (k, tuple(float(convert(t, spec.time_unit, time_unit)) for t in v)
                 if k == "times" else float(convert(v, spec.time_unit, time_unit))
                 if k == "tau" and v is not None else v) for k, v in spec.report)
        return dataclasses.replace(spec, **changes)

    # -- settings ------------------------------------------------------------------------------
    def settings(self) -> dict:
        """A JSON-able view of the spec's model settings (not a second representation)."""
        return self.spec.model_settings()

    def _identity(self) -> dict:
        d = self.spec.to_dict()
        return {k: d.get(k) for k in ("family", "options", "site", "covariates", "priors",
                                      "censoring", "reference_levels", "strata")}

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return (f"{type(self).__name__}({extra + ', ' if extra else ''}site_effect="
                f"{self.site_effect!r}, arm_by_site={self.arm_by_site!r}, "
                f"covariates={self.covariates!r})")

    def __eq__(self, other):
        return isinstance(other, SurvivalModel) and self._identity() == other._identity()

    def __hash__(self):
        return hash(json.dumps(self._identity(), sort_keys=True))

    def resolved_priors(self, family: Family) -> dict:
        """Defaults layered with the user's overrides (their names, supports and the site
        effect's form were checked with the spec; what needs the data's family, e.g. one
        prior per interval of these cuts, is checked here).

        Priors of time-scaled parameters (log baseline rates, log time scales) are in
        months whatever the data's unit; the family moves them (``Family.unit_shift``)."""
        merged = {**DEFAULT_PRIORS, **family.default_priors(), **self.priors}
        for k, v in self.priors.items():
            problem = family.check_prior(k, v)
            if problem:
                raise ModelError(f"{type(self).__name__}: {problem}")
        return merged

    def prior_summary(self, trial: TrialData | None = None, endpoint: str = "os",
                      time_unit: str = "months") -> pd.DataFrame:
        """The priors as used (for a trial: with its cuts and time unit).

        Column ``prior`` is the prior as declared (time-scaled parameters per month);
        ``in_data_unit`` says what it is on the data's time unit (the same prior, moved
        exactly by the unit's length: ``Family.unit_shift``)."""
        from bayes_hcc.units import check_time_unit, log_unit_in_months

        if trial is not None:
            ep = require_trial(trial, "prior_summary").endpoint(endpoint)
            family, time_unit = self.family_for(ep.time, ep.event, ep.time_unit), ep.time_unit
        else:
            time_unit = check_time_unit(time_unit)
            family = self.family_for(None, None, time_unit)
        pri = self.resolved_priors(family)
        used = active_priors(pri, family, self.site_effect, self.arm_by_site,
                             bool(self.covariates), self.pooling)
        log_unit = log_unit_in_months(time_unit)
        one, two = (family.unit_shift({"shape": k}, log_unit) for k in (1.0, 2.0))
        moved = []
        for k in used:
            prior = pri[k]
            if k not in one:
                moved.append(f"{prior} (unit-free)")
            elif time_unit == "months":
                moved.append(f"{prior} (months)")
            elif one[k] != two[k]:  # the shift depends on the Weibull shape k
                moved.append(f"{k} per month + k x {log_unit:.4g} (k = shape)")
            elif prior.has_location:
                moved.append(f"{_moved(prior, float(one[k]))} (in {time_unit})")
            else:
                moved.append(f"{k} per month + {float(one[k]):.4g}")
        return pd.DataFrame({"prior": [str(pri[k]) for k in used], "in_data_unit": moved},
                            index=pd.Index(used, name="name"))

    # -- fitting --------------------------------------------------------------------------------
    @bool_flags(error=ModelError)
    def fit(self, trial: TrialData, endpoint: str = "os", *, draws: int | str = "auto",
            tune: int = 1000, chains: int = 4, cores: int | None = None, random_seed=None,
            sampler: str = "nutpie", target_accept: float = 0.95, check: bool = True,
            log_likelihood: bool = True, exploratory: bool = False):
        """Sample the posterior for one endpoint of ``trial``; returns a :class:`Fit`.

        Parameters
        ----------
        trial : TrialData
        endpoint : {"os", "pfs", "ttp"} or another endpoint of the data, default "os"
        draws, tune, chains : int
            Kept draws and tuning steps per chain, number of chains (defaults "auto", 1000,
            4: PyMC's own defaults, 1 core and 2 chains on a 2-core machine, gave R-hat
            failures). ``draws="auto"``
            draws 1000 per chain and, once, 2000 (same seed) when the chains fall short only
            on R-hat, ESS or Monte Carlo error; ``fit.datatree.attrs["draws_rule"]`` records
            what happened. An integer draws exactly that many.
        cores : int, optional
            Threads (nutpie) or processes (pymc); default min(chains, CPU count).
        random_seed : int, optional
            Same seed, data and model give identical draws. Drawn and recorded if omitted.
        sampler : {"nutpie", "pymc"}
        target_accept : float, default 0.95
            Higher than NUTS' usual 0.8: the hierarchical site effects gave 8-21 divergences
            per fit at 0.8 and an occasional one at 0.9 on the example trial, none in 16
            fits at 0.95 (sampling stays well under a second).
        check : bool, default True
            Warn (ConvergenceWarning) when basic convergence checks fail.
        log_likelihood : bool, default True
            Store the patient-level pointwise log-likelihood (draws x patients), which LOO,
            ``compare`` and ``psense`` need. ``False`` skips it: refits that only need
            posterior probabilities (PPoS, design simulations) save its assembly time, and at
            13,000 patients it is most of the fit (9 s of 26 s for the Weibull model).
        """
        require_trial(trial, f"{type(self).__name__}.fit")
        return sample_model(self, trial, endpoint, draws=draws, tune=tune, chains=chains,
                            cores=cores, random_seed=random_seed, sampler=sampler,
                            target_accept=target_accept, check=check,
                            log_likelihood=log_likelihood, exploratory=exploratory)


def _moved(prior, shift: float):
    """The same prior with its location moved by ``shift`` (every component of a mixture)."""
    from bayes_hcc.spec.priors import IntervalMixturePrior, MixturePrior

    if isinstance(prior, IntervalMixturePrior):
        return IntervalMixturePrior(prior.weights, prior.means + shift, prior.sds)
    if isinstance(prior, MixturePrior):
        return MixturePrior([_moved(c, shift) for c in prior.components], prior.weights)
    return Prior(prior.dist, **{**prior.params, "mu": prior.params["mu"] + shift})


def _toml_value(v):
    """A constructor argument as the spec stores it (tuples and arrays as lists)."""
    if isinstance(v, (tuple, list, np.ndarray)):
        return [x.item() if isinstance(x, np.generic) else x for x in np.asarray(v).tolist()]
    return v.item() if isinstance(v, np.generic) else v


#: spec locations -> the constructor argument a user typed
_ARGUMENTS = {"site.effect": "site_effect", "site.parametrization": "site_parametrization",
              "site.arm_by_site": "arm_by_site", "strata.pooling": "pooling"}


def _model_spec(d: dict, name: str):
    """Validate constructor arguments as a spec; errors name the argument."""
    from bayes_hcc.spec.model_spec import spec_from_dict

    try:
        return spec_from_dict(d, source=name)
    except SpecError as err:
        msg = str(err)
        for where, arg in _ARGUMENTS.items():  # (and "set site.effect = ...")
            msg = msg.replace(f": {where}: ", f": {arg}: ").replace(f"{where} = ", f"{arg}=")
        raise ModelError(msg.replace(": options.", ": ")) from None


def _make_model_class(fam: type[Family]) -> type[SurvivalModel]:
    return type(fam.model_name, (SurvivalModel,), {
        "family_key": fam.key, "positional": tuple(fam.positional),
        "__doc__": fam.model_doc or fam.__doc__, "__module__": __name__,
        "__qualname__": fam.model_name})


#: The model classes, one per registered family: ``bh.WeibullPH``, ``bh.GompertzPH``...
MODELS: dict[str, type[SurvivalModel]] = {fam.model_name: _make_model_class(fam)
                                          for fam in FAMILIES.values()}
MODELS_BY_KEY = {cls.family_key: cls for cls in MODELS.values()}
FAMILY_OF_MODEL = {name: FAMILIES[cls.family_key] for name, cls in MODELS.items()}
globals().update(MODELS)


def model_class(key: str) -> type[SurvivalModel]:
    """The model class of a registered family (``families.registry``)."""
    from bayes_hcc.families.registry import family_class

    family_class(key)  # an unknown key: the registry's error, listing the known ones
    return MODELS_BY_KEY[key]


def model_from_spec(spec) -> SurvivalModel:
    """The model a spec (object, TOML text, path or dict) describes."""
    return SurvivalModel.from_spec(spec)
