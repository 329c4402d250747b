"""Survival models: a family plus arm, site and covariate terms; ``fit`` returns a Fit.

A model object holds settings only; fitting never mutates it. Compiled samplers are cached
per graph structure (see ``_engine``) so refits with new data of the same shape are cheap.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod

import pandas as pd

from bayes_hcc.data.trial import TrialData
from bayes_hcc.errors import ModelError
from bayes_hcc.models.design import ARM_BY_SITE, SITE_EFFECTS, SITE_PARAMETRIZATIONS
from bayes_hcc.families.base import Family
from bayes_hcc.families.piecewise import BASELINE_PRIORS, PiecewiseFamily, quantile_cuts
from bayes_hcc.families.aft import LogLogisticFamily, LogNormalFamily
from bayes_hcc.families.exponential import ExponentialFamily
from bayes_hcc.families.weibull import WeibullFamily
from bayes_hcc.spec.priors import Prior

__all__ = ["SurvivalModel", "PiecewiseExponential", "WeibullPH", "ExponentialPH", "LogNormalAFT",
           "LogLogisticAFT", "DEFAULT_PRIORS",
           "model_from_settings", "model_class"]

#: Priors of the arm, site and covariate terms (families add their baseline priors).
DEFAULT_PRIORS = {
    # The arm effect's prior comes with the family: log HR ~ Normal(0, 1) for PH families
    # (HR within 0.14-7.1 with 95% probability; weakly informative: it rules out implausible
    # effects such as HR 0.05 yet is five times wider than the standard error of a
    # 130-patient trial's log HR, about 0.2, so the data dominate), log time ratio
    # ~ Normal(0, 1) for AFT families.
    # Site SD on the log hazard ~ HalfNormal(1): median 0.67, 95% mass below 1.96 (an SD of
    # 1 would put hospitals' hazards within a factor 7 of the typical site). Weakly
    # informative on purpose: with only 6 sites a tighter HalfNormal(0.5) drove the posterior
    # of the SD (power-scaling prior sensitivity 0.08 > 0.05 on the example trial), while
    # HalfNormal(1) leaves it to the data (0.04) and samples as cleanly. HalfNormal(0.25) and
    # HalfNormal(0.5) are in the sensitivity grid.
    "site_sd": Prior("HalfNormal", sigma=1.0),
    # Fixed (sum-to-zero) site effects: sigma of the ZeroSumNormal.
    "site_effect": Prior("Normal", mu=0.0, sigma=1.0),
    # Treatment-by-site SD on the log HR: HalfNormal(0.25), HRs across sites typically
    # within a factor 1.6 of the average.
    "arm_site_sd": Prior("HalfNormal", sigma=0.25),
    # Coefficients per SD of a centred and scaled covariate.
    "beta": Prior("Normal", mu=0.0, sigma=1.0),
}


class SurvivalModel(ABC):
    """Common settings and fitting of the survival models (use a subclass)."""

    family_key = ""

    def __init__(self, *, site_effect: str = "random", arm_by_site: str | None = None,
                 covariates=(), priors: dict | None = None,
                 site_parametrization: str = "auto"):
        if site_effect not in SITE_EFFECTS:
            raise ModelError(f"site_effect={site_effect!r}; choose one of "
                             f"{', '.join(SITE_EFFECTS)}.")
        if arm_by_site not in ARM_BY_SITE:
            raise ModelError(f"arm_by_site={arm_by_site!r}; choose None or 'random'.")
        if site_parametrization not in SITE_PARAMETRIZATIONS:
            raise ModelError(f"site_parametrization={site_parametrization!r}; choose one of "
                             f"{', '.join(SITE_PARAMETRIZATIONS)}.")
        self.site_effect = site_effect
        self.site_parametrization = site_parametrization
        self.arm_by_site = arm_by_site
        self.covariates = tuple(covariates)
        self.priors = {k: Prior.from_dict(v) for k, v in (priors or {}).items()}

    # -- to be provided by subclasses --------------------------------------------------------
    @abstractmethod
    def family_for(self, time, event, time_unit: str = "months") -> Family:
        """The baseline family for these data (cut points may depend on the event times)."""

    def _settings_extra(self) -> dict:
        return {}

    # -- settings ------------------------------------------------------------------------------
    def settings(self) -> dict:
        return {"model": self.family_key, "site_effect": self.site_effect,
                "site_parametrization": self.site_parametrization,
                "arm_by_site": self.arm_by_site, "covariates": list(self.covariates),
                "priors": {k: v.to_dict() for k, v in sorted(self.priors.items())},
                **self._settings_extra()}

    def __repr__(self) -> str:
        extra = ", ".join(f"{k}={v!r}" for k, v in self._settings_extra().items())
        return (f"{type(self).__name__}({extra + ', ' if extra else ''}site_effect="
                f"{self.site_effect!r}, arm_by_site={self.arm_by_site!r}, "
                f"covariates={self.covariates!r})")

    def __eq__(self, other):
        return type(self) is type(other) and self.settings() == other.settings()

    def __hash__(self):
        return hash(json.dumps(self.settings(), sort_keys=True))

    def resolved_priors(self, family: Family) -> dict:
        """Defaults layered with the user's overrides; unknown keys are errors.

        Priors of time-scaled parameters (log baseline rates, log time scales) are in
        months whatever the data's unit; the family moves them (``Family.unit_shift``)."""
        merged = {**DEFAULT_PRIORS, **family.default_priors()}
        unknown = set(self.priors) - set(merged)
        if unknown:
            raise ModelError(f"unknown prior(s) {', '.join(sorted(unknown))}; "
                             f"{self.family_key} priors: {', '.join(sorted(merged))}.")
        merged.update(self.priors)
        site_effect = merged["site_effect"]
        if site_effect.dist != "Normal" or site_effect.params.get("mu", 0.0) != 0.0:
            raise ModelError(f"site_effect prior {site_effect}: fixed site effects are "
                             "sum-to-zero normal deviations; give Normal(mu=0, sigma=...).")
        return merged

    def prior_summary(self, trial: TrialData | None = None, endpoint: str = "os",
                      time_unit: str = "months") -> pd.DataFrame:
        """The priors as used (for a trial: with its cuts and time unit).

        Column ``prior`` is the prior as declared (time-scaled parameters per month);
        ``in_data_unit`` says what it is on the data's time unit (the same prior, moved
        exactly by the unit's length: ``Family.unit_shift``)."""
        from bayes_hcc.units import check_time_unit, log_unit_in_months

        if trial is not None:
            ep = trial.endpoint(endpoint)
            family, time_unit = self.family_for(ep.time, ep.event, ep.time_unit), ep.time_unit
        else:
            time_unit = check_time_unit(time_unit)
            family = self.family_for(None, None, time_unit)
        pri = self.resolved_priors(family)
        used = active_priors(pri, family, self.site_effect, self.arm_by_site,
                             bool(self.covariates))
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
            4: PyMC's own defaults, 1 core and 2 chains on a 2-core machine, gave R-hat failures). ``draws="auto"``
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
        from bayes_hcc.models._engine import sample_model

        return sample_model(self, trial, endpoint, draws=draws, tune=tune, chains=chains,
                            cores=cores, random_seed=random_seed, sampler=sampler,
                            target_accept=target_accept, check=check,
                            log_likelihood=log_likelihood, exploratory=exploratory)


def _moved(prior, shift: float):
    """The same prior with its location moved by ``shift`` (every component of a mixture)."""
    from bayes_hcc.spec.priors import MixturePrior

    if isinstance(prior, MixturePrior):
        return MixturePrior([_moved(c, shift) for c in prior.components], prior.weights)
    return Prior(prior.dist, **{**prior.params, "mu": prior.params["mu"] + shift})


def active_priors(priors: dict, family: Family, site_effect, arm_by_site, has_cov) -> list:
    keys = list(family.default_priors())
    if site_effect == "random":
        keys.append("site_sd")
    elif site_effect == "fixed":
        keys.append("site_effect")
    if arm_by_site == "random":
        keys.append("arm_site_sd")
    if has_cov:
        keys.append("beta")
    return keys


class WeibullPH(SurvivalModel):
    """Weibull proportional-hazards model with arm, site and covariate effects.

    h(t) = lambda k t^(k-1) exp(eta); the hazard ratio is exp(log_hr) and the AFT time
    ratio exp(-log_hr / k) is derived on every draw.

    Examples
    --------
    >>> import bayes_hcc as bh
    >>> model = bh.WeibullPH(site_effect="random")
    >>> model
    WeibullPH(site_effect='random', arm_by_site=None, covariates=())
    """

    family_key = "weibull_ph"

    def family_for(self, time, event, time_unit="months") -> Family:
        return WeibullFamily()


class PiecewiseExponential(SurvivalModel):
    """Piecewise-exponential proportional-hazards model.

    Parameters
    ----------
    cuts : sequence of float, optional
        Interval cut points in the data's time unit (months).
    n_intervals : int, optional
        Instead of ``cuts``: that many intervals, cut at the quantiles j / n_intervals of
        the observed event times (each interval holds about the same number of events).
        Default when neither is given: 6 intervals.
    baseline_prior : {"rw1", "independent"}, default "rw1"
        First-order random walk on the log baseline hazards (smoothing), or independent.
    rw_sd : float, default 0.3
        Step SD of the random walk (fixed smoothing scale, log hazard per interval).
    time_varying_hr : bool, default False
        A log HR per interval (random walk, step SD ``tv_sd``, centred so that ``log_hr`` is
        the average): the proportional-hazards check. ``hazard_ratio`` then returns the
        average HR; ``bh.plot_time_varying_hr`` shows the HR per interval.
    site_effect, arm_by_site, covariates, priors
        As for :class:`WeibullPH`.
    """

    family_key = "piecewise_exponential"

    def __init__(self, cuts=None, *, n_intervals: int | None = None,
                 baseline_prior: str = "rw1", rw_sd: float = 0.3,
                 time_varying_hr: bool = False, tv_sd: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        if cuts is not None and n_intervals is not None:
            raise ModelError("give cuts or n_intervals, not both.")
        if baseline_prior not in BASELINE_PRIORS:
            raise ModelError(f"baseline_prior={baseline_prior!r}; choose one of "
                             f"{', '.join(BASELINE_PRIORS)}.")
        self.cuts = None if cuts is None else tuple(float(c) for c in cuts)
        if self.cuts is not None:
            PiecewiseFamily(self.cuts)  # validates
        self.n_intervals = None if cuts is not None else (n_intervals or 6)
        self.baseline_prior = baseline_prior
        if not rw_sd > 0:
            raise ModelError(f"rw_sd={rw_sd} must be > 0.")
        self.rw_sd = float(rw_sd)
        self.time_varying_hr = bool(time_varying_hr)
        self.tv_sd = float(tv_sd)

    def _settings_extra(self):
        return {"cuts": None if self.cuts is None else list(self.cuts),
                "n_intervals": self.n_intervals, "baseline_prior": self.baseline_prior,
                "rw_sd": self.rw_sd, "time_varying_hr": self.time_varying_hr,
                "tv_sd": self.tv_sd}

    def family_for(self, time, event, time_unit="months") -> Family:
        if self.cuts is not None:
            cuts = self.cuts
        elif time is None:
            cuts = tuple(range(1, self.n_intervals))  # placeholder for prior summaries
        else:
            cuts = quantile_cuts(time, event, self.n_intervals, time_unit)
        return PiecewiseFamily(cuts, self.baseline_prior, self.rw_sd, self.time_varying_hr,
                               self.tv_sd)


class ExponentialPH(SurvivalModel):
    """Exponential proportional-hazards model (constant hazard): a sensitivity analysis."""

    family_key = "exponential_ph"

    def family_for(self, time, event, time_unit="months") -> Family:
        return ExponentialFamily()


class LogNormalAFT(SurvivalModel):
    """Log-normal accelerated failure time model (not proportional hazards).

    log T = log_scale + eta + sigma Z, Z ~ N(0, 1); the arm effect is ``log_tr`` (log time
    ratio, TR > 1 = longer survival on treatment). There is no single hazard ratio.
    """

    family_key = "lognormal_aft"

    def family_for(self, time, event, time_unit="months") -> Family:
        return LogNormalFamily()


class LogLogisticAFT(SurvivalModel):
    """Log-logistic accelerated failure time model (not proportional hazards); as
    :class:`LogNormalAFT` with a standard logistic Z."""

    family_key = "loglogistic_aft"

    def family_for(self, time, event, time_unit="months") -> Family:
        return LogLogisticFamily()


_MODELS = {"weibull_ph": WeibullPH, "piecewise_exponential": PiecewiseExponential,
           "exponential_ph": ExponentialPH, "lognormal_aft": LogNormalAFT,
           "loglogistic_aft": LogLogisticAFT}


def model_class(key: str) -> type[SurvivalModel]:
    """The model class of a registered family (``families.registry``)."""
    from bayes_hcc.families.registry import family_class

    family_class(key)  # an unknown key: the registry's error, listing the known ones
    return _MODELS[key]


def model_from_settings(settings: dict) -> SurvivalModel:
    s = dict(settings)
    cls = _MODELS[s.pop("model")]
    return cls(**{k: v for k, v in s.items()})
