"""``bh.IllnessDeath``: progression and death in one model.

Three transitions: progression (0->1), death without progression (0->2) and death after
progression (1->2), each with a baseline from the family registry (the same family for
all three, each with its own parameters), its own arm effect (a log hazard ratio per
transition) and site random effects (per transition, or one set shared by all three). The
likelihood (``multistate.likelihood``) integrates over progression times known only to lie
between scans, and over a progression that may have happened unseen after the last scan.

Time scale of the death hazard after progression: ``"markov"`` (clock forward: the hazard
depends on time since randomisation, a12(t)) is the default, because it is the model of
the trial literature on joint PFS/OS (Meller, Beyersmann and Rufibach 2019; R's simIDM),
the one whose transition hazards a maximum-likelihood fit estimates by Cox models with
delayed entry, and the one in which OS needs a single integral; ``"semi_markov"`` (clock
reset: a12(t - u), time since progression) when post-progression survival is thought to
restart at progression.

The model is compiled once per structure (family settings, time scale, site handling,
number of sites, the priors' distributions) and refitted with new data: the quadrature
layout and the priors' parameter values are data.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayes_hcc.errors import (DataWarning, ModelError, SpecError, bool_flags,
                              noted_data_warnings, repeated, warn,
                              whole_number)
from bayes_hcc.families.base import CENTRED_SUFFIX, HAZARD_RATIO
from bayes_hcc.families.piecewise import quantile_cuts
from bayes_hcc.families.registry import FAMILIES, family_class
from bayes_hcc.models.graph import packed_prior_data, unpacked_priors
from bayes_hcc.multistate.data import IllnessDeathData
from bayes_hcc.multistate.likelihood import TRANSITIONS, layout, loglik_terms
from bayes_hcc.spec.priors import DEFAULT_PRIORS, Prior, support_problem
from bayes_hcc.units import log_unit_in_months

__all__ = ["IllnessDeath", "TIME_SCALES", "SITE_EFFECTS"]

TIME_SCALES = ("markov", "semi_markov")
SITE_EFFECTS = ("random", "shared", "none")
ARM_EFFECTS = ("per_transition", "shared_death")
#: the groups with a quadrature (their log weights are stacked in this order)
#: a family's own likelihood data (``Family.data_arrays``), unused here
_LIKELIHOOD_DATA = ("event", "events", "exposure", "n_plain")


def _plain(value):
    """numpy numbers as Python ones (alone or in a sequence), so that they are checked as
    the numbers a spec file holds (``spec.model_spec._check_value``)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, (np.integer, np.floating)) else value


#: Intervals of the piecewise baseline at quantiles of the pooled transition times.
DEFAULT_N_INTERVALS = 4


def _checked_cuts(baseline: str, cuts, n_intervals) -> tuple:
    """The piecewise baseline's cut points and interval count, checked as a
    ``PiecewiseExponential``'s are (one number was "not iterable", text was split into
    characters, unsorted or negative cuts and 2.5 intervals were taken as given)."""
    from bayes_hcc.spec.model_spec import _check_value

    if cuts is not None and baseline != "piecewise_exponential":
        raise ModelError(f"cuts are for the piecewise baseline, not {baseline!r}.")
    if n_intervals is not None and baseline != "piecewise_exponential":  # (was ignored)
        raise ModelError(f"n_intervals is for the piecewise baseline, not {baseline!r}.")
    if cuts is not None and n_intervals is not None:  # (n_intervals was ignored)
        family_class(baseline).check_options({"cuts": cuts, "n_intervals": n_intervals})
    n_intervals = DEFAULT_N_INTERVALS if n_intervals is None else n_intervals
    try:
        if cuts is not None:
            cuts = tuple(_check_value("IllnessDeath", "cuts", "cuts", _plain(cuts)))
        n_intervals = _check_value("IllnessDeath", "n_intervals", "int", n_intervals)
    except SpecError as err:
        raise ModelError(str(err)) from None
    return cuts, n_intervals


def _checked_spline(baseline: str, given: dict) -> dict:
    """The M-spline baseline's options that were given (None: the default), checked as an
    ``MSplinePH``'s are (the kinds of ``MSplineFamily.options``); refused for another
    baseline."""
    from bayes_hcc.families.mspline import MSplineFamily
    from bayes_hcc.spec.model_spec import _check_value

    given = {k: v for k, v in given.items() if v is not None}
    if given and baseline != "mspline_ph":
        raise ModelError(f"{', '.join(given)}: for the M-spline baseline, not {baseline!r}.")
    try:
        out = {name: _check_value("IllnessDeath", name, MSplineFamily.options[name],
                                  _plain(value)) for name, value in given.items()}
        MSplineFamily.check_options(out)
    except SpecError as err:
        raise ModelError(str(err)) from None
    if "knots" in out:
        out["knots"] = tuple(out["knots"])
        if "boundary" in out and out["knots"] and out["knots"][-1] >= out["boundary"]:
            raise ModelError(f"IllnessDeath: knots {list(out['knots'])}: every knot must be "
                             f"before the boundary {out['boundary']:g}.")
    return out


def _prior(value):
    if hasattr(value, "pymc") and hasattr(value, "to_dict"):  # a Prior or a mixture
        return value
    if isinstance(value, dict):
        return Prior.from_dict(value)
    raise ModelError(f"a prior must be a bh.Prior or its dict form, got {value!r}.")


class IllnessDeath:
    """Illness-death model of progression and death (see the module docstring).

    Parameters
    ----------
    baseline : str, default "weibull_ph"
        Registry key of the baseline family of every transition: a proportional-hazards
        family (``weibull_ph``, ``piecewise_exponential``, ``exponential_ph``,
        ``gompertz_ph``, ``mspline_ph``). The piecewise and M-spline baselines use one
        layout for the three transitions: cuts, or a cubic basis with 3 knots at
        quantiles of the pooled transition times and its boundary at the longest time.
    time_scale : {"markov", "semi_markov"}, default "markov"
        Clock of the death hazard after progression (module docstring: why Markov).
    site_effect : {"random", "shared", "none"}, default "random"
        Site random effects on each transition's log hazard: one SD and one set per
        transition (random), one set for all three (shared), or none.
    arm_effect : {"per_transition", "shared_death"}, default "per_transition"
        The arm's log HR: one per transition, or one for progression and one shared by
        the two death transitions (the treatment's effect on the death hazard the same
        before and after progression; its prior is death_without_progression's).
    cuts, n_intervals
        Piecewise baseline: the cut points (in the data's time unit) shared by the three
        transitions (on the clock-reset scale the third counts time since progression), or
        that many intervals at quantiles of the observed transition times (default 4).
    knots, n_knots, degree, boundary
        M-spline baseline, one basis shared by the three transitions: its interior knots (in
        the data's time unit), or that many at quantiles of the pooled transition times
        (default 3); the degree (default 3, cubic); the boundary knot, beyond which the
        hazard is constant (default the longest follow-up).
    priors : dict
        Overrides by name: ``"log_hr"`` or a baseline parameter (every transition), or
        ``"<transition>.<name>"`` for one (transitions: progression,
        death_without_progression, death_after_progression); ``"site_sd"``; ``"beta"``
        (covariate coefficients, default Normal(0, 1) per SD or contrast).
    covariates : sequence of str
        Columns of the data in every transition's linear predictor, each transition with
        its own coefficients, encoded as the single-endpoint models encode them
        (``models.covariates``: numeric centred and scaled, categorical as centred
        sum-to-zero contrasts); the curves are then those of a patient with the trial's
        average covariates (X = 0). ``reference_levels``: the level each categorical
        covariate's effects are reported against.

    Examples
    --------
    >>> import bayes_hcc as bh
    >>> bh.IllnessDeath("weibull_ph", time_scale="markov")
    IllnessDeath(baseline='weibull_ph', time_scale='markov', site_effect='random')
    """

    def __init__(self, baseline: str = "weibull_ph", *, time_scale: str = "markov",
                 site_effect: str = "random", cuts=None, n_intervals: int | None = None,
                 priors: dict | None = None, covariates=(), reference_levels=None,
                 arm_effect: str = "per_transition", knots=None, n_knots=None, degree=None,
                 boundary=None):
        if not isinstance(baseline, str):  # a list (one per transition) was unhashable
            raise ModelError(f"IllnessDeath: baseline={baseline!r}; give one family name, the "
                             "baseline of all three transitions (e.g. 'weibull_ph').")
        if baseline not in FAMILIES:
            raise ModelError(f"baseline={baseline!r}; known families: {', '.join(FAMILIES)}.")
        cls = family_class(baseline)
        if cls.effect is not HAZARD_RATIO:
            raise ModelError(f"baseline={baseline!r} is an accelerated-failure-time family; "
                             "an illness-death model needs proportional-hazards transitions "
                             "(weibull_ph, piecewise_exponential, exponential_ph, "
                             "gompertz_ph, mspline_ph).")
        if time_scale not in TIME_SCALES:
            raise ModelError(f"time_scale={time_scale!r}; choose one of "
                             f"{', '.join(TIME_SCALES)}.")
        if site_effect not in SITE_EFFECTS:
            raise ModelError(f"site_effect={site_effect!r}; choose one of "
                             f"{', '.join(SITE_EFFECTS)}.")
        if arm_effect not in ARM_EFFECTS:
            raise ModelError(f"arm_effect={arm_effect!r}; choose one of "
                             f"{', '.join(ARM_EFFECTS)}.")
        self.baseline, self.time_scale, self.site_effect = baseline, time_scale, site_effect
        self.arm_effect = arm_effect
        self.cuts, self.n_intervals = _checked_cuts(baseline, cuts, n_intervals)
        self.spline = _checked_spline(baseline, {"knots": knots, "n_knots": n_knots,
                                                 "degree": degree, "boundary": boundary})
        if isinstance(covariates, str):
            covariates = [covariates]
        self.covariates = tuple(covariates)
        twice = repeated(self.covariates)
        if twice:
            raise ModelError(f"IllnessDeath: covariates {twice} listed more than once: give "
                             "each column once.")
        self.reference_levels = dict(reference_levels or {})
        self.priors = {}
        for name, value in (priors or {}).items():
            tr, _, par = name.rpartition(".")
            if tr and tr not in TRANSITIONS:
                raise ModelError(f"priors[{name!r}]: unknown transition {tr!r}; the "
                                 f"transitions are {', '.join(TRANSITIONS)}.")
            self.priors[name] = _prior(value)
        self._check_priors(cls)
        if arm_effect == "shared_death" and "death_after_progression.log_hr" in self.priors:
            raise ModelError("priors['death_after_progression.log_hr']: with "
                             "arm_effect='shared_death' the two death transitions share one "
                             "log HR, whose prior is 'death_without_progression.log_hr' (or "
                             "'log_hr').")

    def __repr__(self) -> str:
        return (f"IllnessDeath(baseline={self.baseline!r}, time_scale={self.time_scale!r}, "
                f"site_effect={self.site_effect!r}"
                + ("" if self.arm_effect == "per_transition" else
                   f", arm_effect={self.arm_effect!r}") + ")")

    def settings(self) -> dict:
        """JSON-able settings that rebuild this model (:meth:`from_settings`)."""
        return {"baseline": self.baseline, "time_scale": self.time_scale,
                "site_effect": self.site_effect,
                "cuts": None if self.cuts is None else list(self.cuts),
                "n_intervals": self.n_intervals,
                "priors": {k: p.to_dict() for k, p in self.priors.items()},
                **({"covariates": list(self.covariates),
                    "reference_levels": dict(self.reference_levels)}
                   if self.covariates else {}),
                # only when not the default: settings written before it existed still match
                **({"arm_effect": self.arm_effect}
                   if self.arm_effect != "per_transition" else {}),
                **{k: list(v) if k == "knots" else v for k, v in self.spline.items()}}

    @classmethod
    def from_spec(cls, spec, time_unit: str | None = None) -> IllnessDeath:
        """The model an illness-death spec (a ModelSpec with an ``illness_death`` table)
        describes; its times (cut points, M-spline knots and boundary) move from the spec's
        time unit to ``time_unit`` (the data's; default the spec's own)."""
        from bayes_hcc.spec.model_spec import ILLNESS_DEATH_OPTIONS
        from bayes_hcc.units import convert

        ms = dict(spec.illness_death)
        if not ms:
            raise ModelError(f"spec {spec.name!r} has no [illness_death] table.")
        options = dict(spec.options)
        site = dict(spec.site)["effect"]
        kinds = family_class(spec.family).options
        given = {k: options[k] for k in ILLNESS_DEATH_OPTIONS.get(spec.family, ())
                 if k in options}
        if time_unit is not None:  # the options that are times (cut points, knots, boundary)
            given.update({k: np.asarray(convert(np.asarray(v, float), spec.time_unit,
                                                time_unit), float).tolist()
                          for k, v in given.items() if kinds[k] in ("cuts", "time")})
        return cls(spec.family, time_scale=ms["time_scale"],
                   site_effect="none" if site == "none" else
                   ("shared" if ms["shared_site_effect"] else "random"),
                   n_intervals=given.pop("n_intervals", None),
                   priors=dict(spec.priors), covariates=spec.covariates,
                   reference_levels=dict(spec.reference_levels),
                   arm_effect="shared_death" if ms.get("shared_death_effect") else
                   "per_transition", **given)

    @classmethod
    def from_settings(cls, settings: dict) -> IllnessDeath:
        s = dict(settings)
        if s["baseline"] != "piecewise_exponential" or s.get("cuts") is not None:
            s.pop("n_intervals", None)  # settings carry the default for all
        if s.get("site_effect") == "none" and "site_sd" in (s.get("priors") or {}):
            # a fit saved before an unused site SD prior was refused: it had no effect
            s["priors"] = {k: v for k, v in s["priors"].items() if k != "site_sd"}
        return cls(s.pop("baseline"), **s)

    # -- the families and priors for these data ----------------------------------------
    def families(self, data: IllnessDeathData) -> tuple:
        cls = family_class(self.baseline)
        if self.baseline == "piecewise_exponential":
            if self.cuts is not None:
                cuts = self.cuts
            else:
                times, events = _transition_times(data, self.time_scale)
                pooled = np.concatenate([t[e > 0] for t, e in zip(times, events)])
                cuts = quantile_cuts(pooled, np.ones_like(pooled), self.n_intervals,
                                     data.time_unit)
            fam = cls(cuts)
            return (fam, fam, fam)
        if self.baseline == "mspline_ph":
            # one basis for the three transitions (as the piecewise baseline's cuts): knots
            # at quantiles of the pooled transition times, the boundary at the longest time
            times, events = _transition_times(data, self.time_scale)
            pooled = np.concatenate([t[e > 0] for t, e in zip(times, events)])
            opts = {"degree": 3, "boundary": float(np.max(data.time)), **self.spline}
            fam = cls.for_data(pooled, np.ones_like(pooled), data.time_unit, **opts)
            return (fam, fam, fam)
        if self.cuts is not None:
            raise ModelError(f"cuts are for the piecewise baseline, not {self.baseline!r}.")
        fams = []
        for t, e in zip(*_transition_times(data, self.time_scale)):
            fams.append(cls.for_data(t, e, data.time_unit))
        return tuple(fams)

    def _defaults(self, cls) -> dict:
        """A transition's default priors (the family's, and beta with covariates)."""
        out = dict(cls.default_priors())
        if self.covariates:
            out["beta"] = DEFAULT_PRIORS["beta"]
        return out

    def _check_priors(self, cls) -> None:
        """Every prior names a parameter of the transitions (or site_sd) and has its
        support (a half-line prior on a log HR would fix its sign): refused when the model
        is made, before any fit."""
        defaults = self._defaults(cls)
        unknown = [k for k in self.priors if k.rpartition(".")[2] not in defaults
                   and k != "site_sd"]
        if unknown:
            raise ModelError(f"priors: unknown parameter(s) {', '.join(unknown)}; the "
                             f"{self.baseline} transitions have {', '.join(defaults)} (and "
                             "site_sd).")
        if "site_sd" in self.priors and self.site_effect == "none":
            # accepted before, and without effect (a spec refuses it the same way)
            raise ModelError("IllnessDeath: priors.site_sd: the model has no such term "
                             "(site_effect='none'), so this prior would not be used: set "
                             "site_effect='random' (or 'shared'), or remove the prior.")
        defaults["site_sd"] = DEFAULT_PRIORS["site_sd"]
        for key, prior in self.priors.items():
            problem = support_problem(key, prior, defaults[key.rpartition(".")[2]])
            if problem:
                raise ModelError(f"IllnessDeath: {problem}")

    def priors_for(self, family, transition: str) -> dict:
        """The priors of one transition: its defaults, then ``name``, then
        ``transition.name`` as given (checked when the model was made)."""
        out = self._defaults(type(family))
        for name in list(out):
            for key in (name, f"{transition}.{name}"):
                if key in self.priors:
                    out[name] = self.priors[key]
        return out

    def site_sd_prior(self) -> Prior:
        return self.priors.get("site_sd", DEFAULT_PRIORS["site_sd"])

    # -- fitting -------------------------------------------------------------------------
    @bool_flags(error=ModelError)
    def fit(self, trial, *, progression: str = "ttp", death: str = "os",
            draws: int | str = 1000, tune: int = 1000, chains: int = 4,
            cores: int | None = None, random_seed=None, target_accept: float = 0.95,
            check: bool = True, exploratory: bool = False):
        """Sample the posterior (nutpie) for ``trial`` (a TrialData with a progression
        endpoint, TTP, and a death endpoint, OS; or an IllnessDeathData); returns an
        :class:`~bayes_hcc.multistate.fit.IllnessDeathFit`.

        ``draws="auto"``: 1000 per chain, and once 2000 with the same seed when the chains
        fall short only on R-hat, ESS or Monte Carlo error (the single-endpoint models'
        rule, ``models.sampling.AUTO_DRAWS``); ``attrs["draws_rule"]`` says what it
        resolved to. ``exploratory``: a quick look, held to the exploratory thresholds."""
        import os

        from bayes_hcc.models import _nutpie
        from bayes_hcc.models.sampling import AUTO_DRAWS, _MORE_DRAWS_FIX, _compiled, _seed
        from bayes_hcc.multistate.fit import IllnessDeathFit

        from bayes_hcc.spec.sampler import check_sampler_settings

        if isinstance(draws, str):
            if draws != "auto":
                raise ModelError(f"draws={draws!r}: give a number of draws per chain or "
                                 "'auto'.")
            seed = _seed(random_seed)  # both runs need the same seed
            kw = dict(progression=progression, death=death, tune=tune, chains=chains,
                      cores=cores, random_seed=seed, target_accept=target_accept,
                      check=False, exploratory=exploratory)
            fit = self.fit(trial, draws=AUTO_DRAWS[0], **kw)
            problems = fit.convergence_problems()
            rule = {"rule": "auto", "draws": AUTO_DRAWS[0], "extended": False}
            if problems and not exploratory and all(p.split(" ")[0] in _MORE_DRAWS_FIX
                                                    and "too few" not in p
                                                    for p in problems):
                fit = self.fit(trial, draws=AUTO_DRAWS[1], **kw)
                rule = {"rule": "auto", "draws": AUTO_DRAWS[1], "extended": True,
                        "because": problems}
            fit.datatree.attrs["draws_rule"] = json.dumps(rule, sort_keys=True)
            if check:
                fit.warn_if_unreliable()
            return fit
        check_sampler_settings(draws=draws, tune=tune, chains=chains, seed=random_seed,
                               target_accept=target_accept)
        with noted_data_warnings() as model_notes:  # kept with the fit (data_notes)
            data = self._data(trial, progression, death, "IllnessDeath.fit")
            fams = self.families(data)
        notes = (trial.data_notes([progression, death]) if hasattr(trial, "data_notes")
                 else [])
        notes += [n for n in model_notes if n not in notes]
        n_sites = len(data.sites)
        priors = [self.priors_for(f, t) for f, t in zip(fams, TRANSITIONS)]
        arrays = self._data_arrays(data, fams, priors)
        # prior values are data (``prior_values``): prior variants share one compile
        key = json.dumps({"model": "illness_death", "families": [f.structure() for f in fams],
                          "arm_effect": self.arm_effect,
                          "time_scale": self.time_scale, "site_effect": self.site_effect,
                          "n_sites": n_sites, "covariates": list(data.covariate_labels),
                          "priors": [{k: p.structure for k, p in pr.items()}
                                     for pr in self._prior_sets(priors)],
                          "data": sorted(arrays)}, sort_keys=True)
        seed = _seed(random_seed)
        cores = cores or max(1, min(chains, os.cpu_count() or 1))
        t0 = time.perf_counter()
        m, compiled = _compiled(key, lambda: self._build(fams, priors, arrays, data),
                                "nutpie")
        t1 = time.perf_counter()
        trace = _nutpie.sample(_nutpie.with_data(compiled, m, arrays), draws=draws,
                               tune=tune, chains=chains, cores=cores, seed=seed,
                               save_warmup=False, progress_bar=False,
                               target_accept=target_accept)
        t2 = time.perf_counter()
        sampled = sorted(v.name[:-len(CENTRED_SUFFIX)] if v.name.endswith(CENTRED_SUFFIX)
                         else v.name for v in m.free_RVs)
        fit = IllnessDeathFit.from_trace(
            trace, model=self, data=data, families=fams, priors=priors,
            settings=dict(draws=draws, tune=tune, chains=chains, seed=seed,
                          target_accept=target_accept),
            sampled=sampled, timing={"compile": round(t1 - t0, 4),
                                     "sampling": round(t2 - t1, 4)})
        if exploratory:
            fit.datatree.attrs["analysis_mode"] = "exploratory"
        fit.datatree.attrs["data_notes"] = json.dumps(notes)
        if not isinstance(trial, IllnessDeathData):
            fit.datatree.attrs["data_fingerprint"] = trial.fingerprint
            fit.datatree.attrs["endpoints"] = json.dumps({"progression": progression,
                                                          "death": death})
        if check:
            fit.warn_if_unreliable()
        return fit

    def prior_predictive(self, trial, *, progression: str = "ttp", death: str = "os",
                         draws: int = 1000, random_seed=None) -> pd.DataFrame:
        """What the priors imply for ``trial``'s patients: quantiles (2.5, 25, 50, 75,
        97.5%) of the three transition HRs and of the median OS, PFS and time to
        progression per arm (typical site). The prior draws come from the model itself
        (PyMC's forward sampling of the same graph the fit samples, its likelihood left
        out), and the medians from them as from posterior draws
        (:meth:`IllnessDeathFit.medians`); a median past 100 times the horizon of the
        curves is inf. ``bh.prior_predictive(model, trial)`` calls it."""
        import logging
        import warnings

        from bayes_hcc.models.sampling import _seed
        from bayes_hcc.multistate.fit import IllnessDeathFit
        from bayes_hcc.quantities._core import quantiles

        whole_number(draws, "prior_predictive", "draws", 2, noun="an integer", error=ModelError)
        data = self._data(trial, progression, death, "prior_predictive")
        fams = self.families(data)
        priors = [self.priors_for(f, t) for f, t in zip(fams, TRANSITIONS)]
        m = self._build(fams, priors, self._data_arrays(data, fams, priors), data)
        quiet = logging.getLogger("pymc")
        level = quiet.level
        quiet.setLevel(logging.WARNING)  # "Sampling: [...]", every call
        try:
            with warnings.catch_warnings():
                # the likelihood (a Potential) is left out on purpose: these are the priors
                warnings.filterwarnings("ignore", message="The effect of Potentials")
                prior = pm.sample_prior_predictive(draws=int(draws), model=m,
                                                   random_seed=_seed(random_seed))
        finally:
            quiet.setLevel(level)
        fit = IllnessDeathFit.from_trace(
            {"posterior": prior["prior"].to_dataset(), "sample_stats": xr.Dataset()},
            model=self, data=data, families=fams, priors=priors, settings={}, sampled=[],
            timing={})
        med = fit.medians(thin=1)
        probs = (0.025, 0.25, 0.5, 0.75, 0.975)
        rows = {}
        hr = fit.hazard_ratio()
        for t in TRANSITIONS:
            rows[f"HR {t.replace('_', ' ')}"] = quantiles(hr.sel(transition=t).values.ravel(),
                                                          probs)
        for name, label in (("os", "OS"), ("pfs", "PFS"), ("progression", "TTP")):
            for a in data.arms:
                rows[f"median {label} {a}"] = quantiles(med[name].sel(arm=a).values, probs)
        out = pd.DataFrame(rows, index=[f"q{100 * q:g}" for q in probs]).T
        out.attrs.update(model=repr(self), time_unit=data.time_unit, draws=int(draws),
                         estimand="typical_site")
        out.attrs["footnotes"] = [
            f"Prior predictive of {self!r}: quantiles of {int(draws)} draws from the "
            f"priors (no data), HRs = {data.arms[1]} relative to {data.arms[0]} per "
            f"transition; medians in {data.time_unit} at the typical site (inf: past 100 "
            "times the curves' horizon)."]
        return out

    def _data(self, trial, progression: str, death: str, what: str) -> IllnessDeathData:
        """The patients' progression and death data of ``trial``, checked for what the
        model needs (both arms, two sites for site effects, a progression and a death
        seen); transitions without events are warned of."""
        if isinstance(trial, IllnessDeathData):
            data = trial
            if self.covariates and data.X is None:
                raise ModelError("covariates need the trial (a TrialData) or an "
                                 "IllnessDeathData made with from_trial(..., covariates=).")
        else:
            from bayes_hcc.data.trial import require_trial

            data = IllnessDeathData.from_trial(require_trial(trial, what),
                                               progression, death,
                                               covariates=self.covariates,
                                               reference_levels=self.reference_levels)
        empty = [a for i, a in enumerate(data.arms) if not np.any(np.asarray(data.arm) == i)]
        if empty:
            raise ModelError(f"IllnessDeath: arm {empty[0]!r} has no patients in these data (a "
                             "subset of one arm?): the arms cannot be compared.")
        n_sites = len(data.sites)
        if self.site_effect != "none" and n_sites < 2:
            raise ModelError(f"site_effect={self.site_effect!r} needs at least 2 sites; these "
                             f"data have {n_sites}. Use site_effect='none' (in a spec: "
                             "[site] effect = \"none\").")
        counts = data.counts()
        if counts["progression then death"] + counts["progression, alive"] == 0:
            raise ModelError("no progression seen in any patient: the progression and "
                             "post-progression transitions cannot be estimated. Fit OS "
                             "alone (e.g. bh.WeibullPH().fit(trial, \"os\")), or check that "
                             "the progression dates (or the assessments) were read.")
        if data.death.sum() == 0:
            raise ModelError("no deaths at all: the death transitions cannot be estimated. "
                             "Fit TTP alone (e.g. bh.WeibullPH().fit(trial, \"ttp\")), or "
                             "check that the death dates were read.")
        empty = data.empty_transitions()
        if empty:
            listed = "; ".join(f"{t} in arm {a!r}" for t, a in empty)
            warn(f"no events seen for: {listed}. That transition's hazard in that arm, and "
                 "its hazard ratio, are informed by the prior only, so read those posteriors "
                 "(and the curves built on them) with care.", DataWarning)
        return data

    def _prior_sets(self, priors) -> list[dict]:
        """The transitions' priors, then the site SD's when the model has one."""
        return [*priors, *([{"site_sd": self.site_sd_prior()}]
                           if self.site_effect != "none" else [])]

    def _data_arrays(self, data: IllnessDeathData, fams, priors) -> dict:
        """The likelihood layout as graph data (the compiled sampler reads each data array
        as an argument, and numba takes at most about 30): the rows' patients, kinds and
        deaths, their time features (``x__``, ``y__``), the two matrices of quadrature log
        weights, the transitions' own data stacked, and every prior parameter in one
        vector (``prior_values``: prior variants refit without recompiling)."""
        lay = layout(data, fams, self.time_scale)
        out = {"arm": data.arm.astype(float), "site_idx": data.site.astype(np.int64),
               "row_pid": lay["pid"], "row_prog": lay["prog"], "row_death": lay["death"],
               **{f"log_weight_{j}": w for j, w in enumerate(lay["log_weight"])},
               **{f"{t}__{k}": v for t in ("x", "y") for k, v in lay[t].items()}}
        times, events = _transition_times(data, self.time_scale)
        extras = []
        for fam, t, e in zip(fams, times, events):
            extra = fam.data_arrays(np.maximum(t, 1e-9), e, np.zeros(len(t), np.int64), 1)
            # what the family's parameters read besides the times (reference times of
            # intercepts, random-walk weights): not its likelihood's data
            extras.append({k: np.asarray(v, float) for k, v in extra.items()
                           if not k.startswith(("tf", "ic_")) and k not in _LIKELIHOOD_DATA})
        for name in extras[0]:
            out[f"trans__{name}"] = np.stack([x[name] for x in extras])
        out["log_unit"] = np.asarray(log_unit_in_months(data.time_unit), float)
        if self.covariates:
            out["X"] = np.asarray(data.X, float)
        out["prior_values"] = packed_prior_data(self._prior_sets(priors))
        return out

    def _unpack(self, d) -> dict:
        """The layout (``multistate.likelihood.layout``'s structure) from the graph data."""
        return {"time_scale": self.time_scale, "pid": d["row_pid"], "prog": d["row_prog"],
                "death": d["row_death"],
                "log_weight": [d["log_weight_0"], d["log_weight_1"]],
                **{t: {k[len(t) + 2:]: v for k, v in d.items() if k.startswith(f"{t}__")}
                   for t in ("x", "y")}}

    def _build(self, fams, priors, arrays, data):
        coords = {"transition": list(TRANSITIONS), "site": list(data.sites)}
        if self.covariates:
            coords["covariate"] = list(data.covariate_labels)
        for fam in fams:
            coords.update({k: list(v) for k, v in fam.coords().items()})
        with pm.Model(coords=coords) as m:
            d = {k: pm.Data(k, v) for k, v in arrays.items()}
            lay = self._unpack(d)
            read = unpacked_priors(self._prior_sets(priors), d["prior_values"])
            priors = read[:3]
            if self.arm_effect == "shared_death":
                death = priors[1]["log_hr"].pymc("death::log_hr")
                log_hr = pt.stack([priors[0]["log_hr"].pymc(f"{TRANSITIONS[0]}::log_hr"),
                                   death, death])
            else:
                log_hr = pt.stack([pr["log_hr"].pymc(f"{t}::log_hr")
                                   for t, pr in zip(TRANSITIONS, priors)])
            pm.Deterministic("log_hr", log_hr, dims="transition")
            params = []
            for j, (t, fam, pr) in enumerate(zip(TRANSITIONS, fams, priors)):
                fdata = {name[len("trans__"):]: v[j] for name, v in d.items()
                         if name.startswith("trans__")}
                fdata["log_unit"] = d["log_unit"]
                with pm.Model(name=t):
                    params.append(fam.build_params(pr, fdata, coords, 0.0))
            n_sites = len(data.sites)
            if self.site_effect == "random":
                sd = read[3]["site_sd"].pymc("site_sd", dims="transition")
                z = pm.Normal("site_z", 0.0, 1.0, dims=("transition", "site"))
                site = pm.Deterministic("site_effect", sd[:, None] * z,
                                        dims=("transition", "site"))
            elif self.site_effect == "shared":
                sd = read[3]["site_sd"].pymc("site_sd")
                z = pm.Normal("site_z", 0.0, 1.0, dims="site")
                site = pm.Deterministic("site_effect", pt.stack([sd * z] * 3),
                                        dims=("transition", "site"))
            else:
                site = pt.zeros((3, n_sites))
            etas = [log_hr[j] * d["arm"] + site[j][d["site_idx"]] for j in range(3)]
            if self.covariates:
                etas = [eta + pt.dot(d["X"], pr["beta"].pymc(f"{t}::beta", dims="covariate"))
                        for eta, t, pr in zip(etas, TRANSITIONS, priors)]
            total = 0.0
            for ll, _ in loglik_terms(pt, fams, params, etas, lay):
                total = total + ll.sum()
            pm.Potential("loglik", total)
        return m


def _transition_times(data: IllnessDeathData, time_scale: str):
    """Approximate event times and indicators of each transition (progression at the
    middle of its interval): for layouts that need them (quantile cuts, the Weibull
    reference time, random-walk weights), never for the likelihood."""
    prog = data.progressed
    u = np.where(prog, (data.prog_lower + np.where(prog, data.prog_upper, 0.0)) / 2,
                 data.time)
    d = data.death.astype(float)
    t01, e01 = u, prog.astype(float)
    t02, e02 = u, np.where(prog, 0.0, d)
    if time_scale == "markov":
        t12 = data.time[prog]
    else:
        t12 = np.maximum(data.time[prog] - u[prog], 1e-9)
    e12 = d[prog]
    return (t01, t02, t12), (e01, e02, e12)
