"""ModelSpec: one pre-specified analysis as a frozen object, read from and written to TOML.

A spec names the endpoint, the model family and its options, the site handling, every prior,
the sampler settings and what to report. Unknown keys, wrong types and impossible values are
errors that name the file, the key and the valid choices.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tomli_w

from bayes_hcc.errors import BayesHCCError, SpecError, repeated
from bayes_hcc.spec.kinds import kind_hint
from bayes_hcc.spec.priors import DEFAULT_PRIORS, Prior, support_problem

__all__ = ["ModelSpec", "load_spec", "dump_spec", "spec_from_dict", "spec_families",
           "apply_overrides"]


def spec_families() -> dict:
    """Family key -> its spec option types and default priors (the keys are the prior names
    a spec may give), from the family registry (the one list of families; imported here
    when first needed, since the families import ``spec.priors``)."""
    from bayes_hcc.families.registry import FAMILIES as REGISTRY

    return {key: {"options": dict(cls.options), "check": cls.check_options,
                  "exclusive": cls.exclusive_options, "unused": cls.unused_options,
                  "priors": {**DEFAULT_PRIORS, **cls.default_priors()}}
            for key, cls in REGISTRY.items()}


TOP_KEYS = ("name", "description", "endpoint", "family", "population", "time_unit",
            "censoring", "options", "site", "strata", "covariates", "reference_levels",
            "illness_death", "priors", "sampler", "report")
#: An illness-death analysis (``bh.IllnessDeath``): ``family`` is every transition's
#: baseline, ``endpoint`` the curve its report and grid row headline (os, pfs or ttp),
#: ``progression`` and ``death`` the data's endpoints it reads; written to TOML only when
#: given (the hashes of single-endpoint specs are unchanged).
ILLNESS_DEATH_KEYS = {"time_scale": ("markov", "semi_markov"), "shared_site_effect": "bool",
                      "shared_death_effect": "bool", "progression": "str", "death": "str"}
ILLNESS_DEATH_DEFAULTS = {"time_scale": "markov", "shared_site_effect": False,
                          "progression": "ttp", "death": "os"}
#: The transitions a prior of an illness-death spec may name (``<transition>.<prior>``).
TRANSITION_NAMES = ("progression", "death_without_progression", "death_after_progression")
#: A stratified baseline: the column whose levels get their own baseline hazard, and how
#: the strata's baselines are pooled (``models.design.build_strata``).
STRATA_KEYS = {"column": "str", "pooling": ("partial", "none")}
#: How interval-censored events are analysed (``data.trial.CENSORING``); written to TOML
#: only when not the default, so the hashes of specs written before it existed stay valid.
CENSORING = ("interval", "midpoint", "upper", "lower")
SITE_KEYS = {"effect": ("random", "fixed", "none"),
             "parametrization": ("auto", "noncentered", "centered"),
             "arm_by_site": ("none", "random")}
SAMPLER_KEYS = {"draws": "draws", "tune": "int0", "chains": "int", "target_accept": "prob",
                "seed": "int0", "sampler": ("nutpie", "pymc")}
REPORT_KEYS = {"estimand": ("standardized", "typical_site", "new_site"),
               "hr_thresholds": "positives", "times": "positives", "tau": "positive",
               "prob": "prob"}
POPULATIONS = ("itt", "per_protocol")
DEFAULTS = {
    "description": "", "population": "itt", "options": {}, "covariates": [],
    "site": {"effect": "random", "parametrization": "auto", "arm_by_site": "none"},
    "priors": {},
    "sampler": {"draws": "auto", "tune": 1000, "chains": 4, "target_accept": 0.95,
                "seed": 20200228, "sampler": "nutpie"},
    "report": {"estimand": "standardized", "hr_thresholds": [1.0, 0.8], "times": [12.0, 24.0],
               "prob": 0.95},
}


def _fail(src, where, msg):
    raise SpecError(f"{src}: {where}: {msg}")


def _check_value(src, where, kind, v):
    """Validate ``v`` against ``kind`` and return it normalised."""
    if isinstance(kind, tuple):
        if v not in kind:
            _fail(src, where, f"{v!r} is not valid; choose one of {', '.join(kind)}.")
        return v
    isnum = isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "draws":
        if v == "auto":
            return v
        kind = "int"
    if kind in ("int", "int0"):
        if not isinstance(v, int) or isinstance(v, bool):
            _fail(src, where, f"must be an integer, got {v!r} ({type(v).__name__}).")
        lo = 1 if kind == "int" else 0
        if v < lo:
            _fail(src, where, f"must be >= {lo}, got {v}.")
        return v
    if kind == "str":
        if not isinstance(v, str) or not v:
            _fail(src, where, f"must be a non-empty string, got {v!r}.")
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            _fail(src, where, f"must be true or false, got {v!r}.")
        return v
    if kind in ("positive", "time"):
        if not isnum or not v > 0:
            _fail(src, where, f"must be a number > 0, got {v!r}.")
        return float(v)
    if kind == "prob":
        if not isnum or not 0 < v < 1:
            _fail(src, where, f"must be a number strictly between 0 and 1, got {v!r}.")
        return float(v)
    if kind in ("positives", "cuts"):
        if not isinstance(v, list) or not all(isinstance(x, (int, float)) and
                                              not isinstance(x, bool) and x > 0 for x in v):
            _fail(src, where, f"must be a list of numbers > 0, got {v!r}.")
        if kind == "cuts" and any(b <= a for a, b in zip(v, v[1:])):
            _fail(src, where, f"cut points must increase, got {v!r}.")
        return [float(x) for x in v]
    raise AssertionError(kind)  # pragma: no cover - registry typo


def _check_table(src, where, d, spec):
    if not isinstance(d, dict):
        _fail(src, where, f"must be a table, got {d!r}.")
    unknown = sorted(set(d) - set(spec))
    if unknown:
        _fail(src, where, f"unknown key(s) {', '.join(unknown)}; valid keys: "
                          f"{', '.join(spec) or 'none'}.")
    return {k: _check_value(src, f"{where}.{k}", spec[k], v) for k, v in d.items()}


@dataclass(frozen=True)
class ModelSpec:
    """A validated analysis specification (see ``models/*.toml``)."""

    name: str
    endpoint: str
    family: str
    description: str = ""
    population: str = "itt"
    #: Unit of every time in the spec (cut points, report times, tau); converted to the
    #: data's unit when fitted. Priors of time-scaled parameters are always per month.
    time_unit: str = "months"
    #: Interval-censored events: their likelihood ("interval") or an imputation
    #: ("midpoint", "upper", "lower") as a sensitivity analysis. No effect on exact data.
    censoring: str = "interval"
    options: tuple = ()
    site: tuple = ()
    covariates: tuple = ()
    #: reference level of categorical covariates (column -> level); written to TOML only
    #: when given (the hashes of specs without categorical covariates are unchanged)
    reference_levels: tuple = ()
    #: a stratified baseline (column, pooling); written to TOML only when given
    strata: tuple = ()
    #: an illness-death model's settings (``ILLNESS_DEATH_KEYS``); empty for the
    #: single-endpoint models
    illness_death: tuple = ()
    priors: tuple = ()
    sampler: tuple = ()
    report: tuple = ()
    source: str = field(default="", compare=False)

    def to_dict(self) -> dict:
        out = {"name": self.name, "description": self.description, "endpoint": self.endpoint,
               "family": self.family, "population": self.population,
               "time_unit": self.time_unit,
               "options": {k: _plain(v) for k, v in self.options}, "site": dict(self.site),
               "covariates": list(self.covariates),
               "priors": {k: v.to_dict() for k, v in self.priors},
               "sampler": dict(self.sampler),
               "report": {k: _plain(v) for k, v in self.report}}
        if self.censoring != "interval":
            out["censoring"] = self.censoring
        if self.reference_levels:
            out["reference_levels"] = dict(self.reference_levels)
        if self.strata:
            out["strata"] = dict(self.strata)
        if self.illness_death:
            out["illness_death"] = dict(self.illness_death)
        return copy.deepcopy(out)

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical TOML (what every fit made from the spec records)."""
        return hashlib.sha256(dump_spec(self).encode()).hexdigest()

    @property
    def prior_dict(self) -> dict:
        return dict(self.priors)

    def model_settings(self) -> dict:
        """The model part of the spec as a flat JSON-able dict (family key as ``model``, site
        handling, covariates, priors, family options): a view, for tables and records."""
        site = dict(self.site)
        return {"model": self.family, "site_effect": site["effect"],
                "site_parametrization": site["parametrization"],
                "arm_by_site": None if site["arm_by_site"] == "none" else site["arm_by_site"],
                "covariates": list(self.covariates), "censoring": self.censoring,
                **({"reference_levels": dict(self.reference_levels)}
                   if self.reference_levels else {}),
                **({"strata": dict(self.strata)["column"],
                    "pooling": dict(self.strata)["pooling"]} if self.strata else {}),
                "priors": {k: v.to_dict() for k, v in self.priors},
                **({"illness_death": dict(self.illness_death)} if self.illness_death
                   else {}),
                **{k: _plain(v) for k, v in self.options}}

    def __repr__(self) -> str:
        kind = "illness-death " if self.illness_death else ""
        return (f"ModelSpec({self.name!r}: {kind}{self.family}, {self.endpoint.upper()}, site "
                f"{dict(self.site)['effect']}, hash {self.hash[:12]})")


def spec_from_dict(d: dict, *, source: str = "spec", inherited: frozenset = frozenset(),
                   droppable: frozenset | None = None, keep_unused: bool = False) -> ModelSpec:
    """Validate a dict (as read from TOML) into a ModelSpec.

    A setting the model would not use (a site SD prior without random site effects,
    ``tv_sd`` without a time-varying HR) or one excluding another (``cuts`` and
    ``n_intervals``) is refused, unless it is among ``inherited`` (dotted keys a grid
    variant took from its base spec, ``apply_overrides``): those give way to what the
    variant sets, and are dropped. ``droppable`` (default ``inherited``): the keys dropped
    rather than refused when unused. ``keep_unused``: neither (:func:`recorded_spec`)."""
    droppable = inherited if droppable is None else droppable
    if not isinstance(d, dict):
        raise SpecError(f"{source}: a spec is a table of keys, got {type(d).__name__}.")
    unknown = sorted(set(d) - set(TOP_KEYS))
    if unknown:
        _fail(source, "top level", f"unknown key(s) {', '.join(unknown)}; valid keys: "
                                   f"{', '.join(TOP_KEYS)}{kind_hint(d, 'bh.load_spec')}.")
    for req in ("name", "endpoint", "family"):
        if req not in d:
            _fail(source, "top level", f"missing required key '{req}'.")
    for key in ("name", "endpoint", "description"):
        if key in d and not isinstance(d[key], str):
            _fail(source, key, f"must be a string, got {d[key]!r}.")
    families = spec_families()
    fam = _check_value(source, "family", tuple(families), d["family"])
    pop = _check_value(source, "population", POPULATIONS, d.get("population", "itt"))
    from bayes_hcc.units import TIME_UNITS

    unit = _check_value(source, "time_unit", TIME_UNITS, d.get("time_unit", "months"))
    censoring = _check_value(source, "censoring", CENSORING, d.get("censoring", "interval"))
    if d.get("illness_death") is not None:  # its own, narrower set of options (named)
        _illness_death_options(source, fam, d.get("options", {}))
    options = _check_table(source, "options", d.get("options", {}), families[fam]["options"])
    for group in families[fam]["exclusive"]:  # an inherited one yields to one given
        present = [k for k in group if k in options]
        if any(f"options.{k}" not in inherited for k in present):
            for k in present:
                if f"options.{k}" in inherited:
                    del options[k]
    try:
        families[fam]["check"](options)
    except BayesHCCError as err:
        _fail(source, "options", str(err))
    site = {**DEFAULTS["site"], **_check_table(source, "site", d.get("site", {}), SITE_KEYS)}
    strata = d.get("strata", {})
    if strata:
        if not isinstance(strata, dict) or not isinstance(strata.get("column"), str):
            _fail(source, "strata", "must be a table with a column name, e.g. {column = "
                                    f"\"site\", pooling = \"partial\"}}, got {strata!r}.")
        unknown_keys = sorted(set(strata) - set(STRATA_KEYS))
        if unknown_keys:
            _fail(source, "strata", f"unknown key(s) {', '.join(unknown_keys)}; valid: "
                                    "column, pooling.")
        strata = {"column": strata["column"],
                  "pooling": _check_value(source, "strata.pooling", STRATA_KEYS["pooling"],
                                          strata.get("pooling", "partial"))}
        if strata["column"] == "site":
            if "effect" not in d.get("site", {}):
                site["effect"] = "none"  # each site's own baseline holds its level
            elif site["effect"] != "none":
                _fail(source, "strata", "column = \"site\" gives every site its own "
                      f"baseline hazard; a {site['effect']} site effect on top of it is not "
                      "identifiable: set site.effect = \"none\" (or stratify by another "
                      "column).")
    cov = d.get("covariates", [])
    if not isinstance(cov, list) or not all(isinstance(c, str) for c in cov):
        _fail(source, "covariates", f"must be a list of column names, got {cov!r}.")
    twice = repeated(cov)
    if twice:  # (the fit refused it later, as linearly dependent covariates)
        _fail(source, "covariates", f"{twice} listed more than once: give each column once.")
    refs = d.get("reference_levels", {})
    if not isinstance(refs, dict) or not all(isinstance(v, (str, int)) and not
                                             isinstance(v, bool) for v in refs.values()):
        _fail(source, "reference_levels", "must be a table of covariate = level (text or "
                                          f"integer), got {refs!r}.")
    stray = sorted(set(refs) - set(cov))
    if stray:
        _fail(source, "reference_levels", f"{', '.join(stray)} not among the covariates "
                                          f"({', '.join(cov) or 'none'}).")
    priors_in = d.get("priors", {})
    if not isinstance(priors_in, dict):
        _fail(source, "priors", f"must be a table, got {priors_in!r}.")
    defaults = families[fam]["priors"]  # a transition's prior (progression.log_hr) too
    valid = tuple(defaults)
    ms = d.get("illness_death")
    if ms is not None:
        ms, priors_in, valid = _illness_death(source, d, ms, fam, site, strata, cov,
                                              censoring, priors_in, valid)
    priors = {}
    for k, v in priors_in.items():
        if k not in valid:
            _fail(source, f"priors.{k}", f"unknown prior {k!r}; {fam} priors: "
                                         f"{', '.join(valid)}.")
        try:
            priors[k] = Prior.from_dict(v)
        except SpecError as err:
            _fail(source, f"priors.{k}", str(err))
        except TypeError:
            _fail(source, f"priors.{k}", f"must be a table like {{dist = \"Normal\", mu = 0, "
                                         f"sigma = 1}}, got {v!r}.")
        # a half-line prior on a log HR (or a whole-line one on an SD) is refused here, not
        # when the variant is fitted: the 20th fit of a grid is too late to hear of it
        problem = support_problem(k, priors[k], defaults.get(k.rpartition(".")[2]))
        if problem:
            _fail(source, f"priors.{k}", problem)
    unused = {f"options.{k}": f"{why}."
              for k, why in families[fam]["unused"](options).items()}
    unused.update(_unused_priors(priors, site, strata, cov))
    for key, why in ({} if keep_unused else unused).items():
        if key not in droppable:
            _fail(source, key, why)
        table, _, name = key.partition(".")
        (options if table == "options" else priors).pop(name)
    effect = priors.get("site_effect")
    if effect is not None and (effect.dist != "Normal" or effect.params.get("mu", 0.0) != 0):
        _fail(source, "priors.site_effect", f"{effect}: fixed site effects are sum-to-zero "
                                            "normal deviations; give Normal(mu=0, sigma=...).")
    sampler = {**DEFAULTS["sampler"],
               **_check_table(source, "sampler", d.get("sampler", {}), SAMPLER_KEYS)}
    from bayes_hcc.spec.sampler import check_sampler_settings

    check_sampler_settings(draws=sampler["draws"], tune=sampler["tune"],
                           chains=sampler["chains"], seed=sampler["seed"],
                           target_accept=sampler["target_accept"], error=SpecError,
                           where=f"{source}: sampler: ")
    given_report = _check_table(source, "report", d.get("report", {}), REPORT_KEYS)
    report = {**DEFAULTS["report"], **given_report}
    if "times" not in given_report and unit != "months":
        # the default landmarks are 12 and 24 months, whatever unit the spec is written in
        from bayes_hcc.units import convert

        report["times"] = [float(convert(t, "months", unit))
                           for t in DEFAULTS["report"]["times"]]
    if ms is not None and sampler["sampler"] != "nutpie":
        _fail(source, "sampler.sampler", "an illness-death model samples with nutpie.")

    return ModelSpec(
        name=d["name"], endpoint=d["endpoint"].lower(), family=fam,
        description=d.get("description", ""), population=pop, time_unit=unit,
        censoring=censoring,
        options=tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                             for k, v in options.items())),
        site=tuple(sorted(site.items())), covariates=tuple(cov),
        reference_levels=tuple(sorted((k, str(v)) for k, v in refs.items())),
        strata=tuple(sorted(strata.items())),
        illness_death=tuple(sorted(ms.items())) if ms is not None else (),
        priors=tuple(sorted(priors.items())), sampler=tuple(sorted(sampler.items())),
        report=tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                            for k, v in report.items())),
        source=source)


def _unused_priors(priors: dict, site: dict, strata: dict, cov: list) -> dict[str, str]:
    """Priors of terms these settings leave out of the model ({"priors.<name>": why}); an
    illness-death transition's (``progression.beta``) by its last part."""
    effect, by_site = site["effect"], site["arm_by_site"]
    pooling = strata.get("pooling") if strata else None
    by_site_strata = bool(strata) and strata.get("column") == "site"
    needs = {"site_sd": (effect == "random", f"site.effect is \"{effect}\"",
                         "set site.effect = \"random\"") if not by_site_strata else
             (False, "each site has its own baseline: strata.column = \"site\"",
              "stratify by another column"),
             "site_effect": (effect == "fixed", f"site.effect is \"{effect}\"",
                             "set site.effect = \"fixed\""),
             "arm_site_sd": (by_site == "random", f"site.arm_by_site is \"{by_site}\"",
                             "set site.arm_by_site = \"random\""),
             "stratum_sd": (pooling == "partial",
                            "there are no strata" if not strata else
                            f"strata.pooling is \"{pooling}\"",
                            "give strata = {column = ..., pooling = \"partial\"}"),
             "beta": (bool(cov), "there are no covariates", "list them in covariates")}
    out = {}
    for k in priors:
        used, because, way = needs.get(k.rpartition(".")[2], (True, "", ""))
        if not used:
            out[f"priors.{k}"] = (f"the model has no such term ({because}), so this prior "
                                  f"would not be used: {way}, or remove the prior.")
    return out


#: the family options an illness-death model takes (one layout for its three transitions)
ILLNESS_DEATH_OPTIONS = {"piecewise_exponential": ("cuts", "n_intervals"),
                         "mspline_ph": ("boundary", "degree", "knots", "n_knots")}


def _illness_death_options(source, fam, options) -> None:
    allowed = ILLNESS_DEATH_OPTIONS.get(fam, ())
    extra = sorted(set(options) - set(allowed)) if isinstance(options, dict) else []
    if extra:
        _fail(source, "options", f"{', '.join(extra)} not available in an illness-death "
              f"model; its {fam} transitions take {', '.join(allowed) or 'no options'}.")


def _illness_death(source, d, ms, fam, site, strata, cov, censoring, priors_in,
                   valid):
    """Validate an illness-death spec: its table, what the model supports, and priors that
    may name a transition (``progression.log_lambda``, flat or as a nested table).
    Returns (settings, flat priors, valid prior names)."""
    from bayes_hcc.families.base import HAZARD_RATIO
    from bayes_hcc.families.registry import family_class

    ms = {**ILLNESS_DEATH_DEFAULTS,
          **_check_table(source, "illness_death", ms, ILLNESS_DEATH_KEYS)}
    if family_class(fam).effect is not HAZARD_RATIO:
        _fail(source, "family", f"{fam!r} is an accelerated-failure-time family; an "
              "illness-death model needs proportional-hazards transitions (weibull_ph, "
              "piecewise_exponential, exponential_ph, gompertz_ph, mspline_ph).")
    if d.get("endpoint", "").lower() not in ("os", "pfs", "ttp"):
        _fail(source, "endpoint", f"{d.get('endpoint')!r}: an illness-death spec headlines "
              "one of its curves: os, pfs or ttp.")
    if site["effect"] == "fixed":
        _fail(source, "site.effect", "an illness-death model has random site effects "
              "(per transition, or shared: illness_death.shared_site_effect = true) or "
              "none; \"fixed\" is not available.")
    if ms["progression"].strip().lower() == ms["death"].strip().lower():
        _fail(source, "illness_death.progression", f"{ms['progression']!r} is also the "
              "death endpoint: the progression endpoint is the one whose events are "
              "progressions (the data's \"ttp\"), the death endpoint OS (\"os\").")
    if ms["shared_site_effect"] and site["effect"] == "none":
        _fail(source, "illness_death.shared_site_effect", "true needs site.effect = "
              "\"random\" (there are no site effects to share).")
    for key, given, ok in (("strata", strata, not strata),
                           ("censoring", censoring, censoring == "interval"),
                           ("site.arm_by_site", site["arm_by_site"],
                            site["arm_by_site"] == "none")):
        if not ok:
            _fail(source, key, f"{given!r} is not available in an illness-death model "
                  "(remove it).")
    flat = {}  # (its options were checked before the family's: _illness_death_options)
    for k, v in priors_in.items():
        if k in TRANSITION_NAMES and isinstance(v, dict) and "dist" not in v:
            flat.update({f"{k}.{name}": p for name, p in v.items()})
        else:
            flat[k] = v
    # one arm effect for both death transitions (IllnessDeath(arm_effect="shared_death"));
    # kept only when true, so specs written before it existed keep their hash
    shared_death = ms.pop("shared_death_effect", False)
    if shared_death and "death_after_progression.log_hr" in flat:
        _fail(source, "priors.death_after_progression.log_hr", "with "
              "illness_death.shared_death_effect = true the two death transitions share one "
              "log HR, whose prior is death_without_progression.log_hr (or log_hr).")
    if shared_death:
        ms["shared_death_effect"] = True
    base = tuple(p for p in valid if p in ("site_sd", "beta") or p not in
                 ("site_effect", "arm_site_sd", "stratum_sd"))
    return ms, flat, base + tuple(f"{t}.{p}" for t in TRANSITION_NAMES for p in base
                                  if p != "site_sd")


def _plain(v):
    return [_plain(x) for x in v] if isinstance(v, (list, tuple)) else v


def dump_spec(spec: ModelSpec) -> str:
    """Canonical TOML text of a spec (load_spec(dump_spec(s)) == s); ``spec`` as
    :func:`load_spec` takes it (a ModelSpec, a path, TOML text or a dict)."""
    return tomli_w.dumps(load_spec(spec).to_dict())


def read_toml(path, what: str = "spec") -> dict:
    """A TOML file as a dict; a missing file or invalid TOML is a SpecError naming the file."""
    if not isinstance(path, (str, os.PathLike)):
        raise SpecError(f"expected the path of a {what} file (TOML), got "
                        f"{type(path).__name__}.")
    path = Path(path).expanduser()
    if not path.exists():
        # "primary_os" for models/primary_os.toml: say where the file is
        near = [c for c in (path.with_suffix(".toml"), Path("models") / path.name,
                            Path("models") / path.with_suffix(".toml").name)
                if c != path and c.is_file()]
        raise SpecError(f"{path}: no such {what} file"
                        + (f"; did you mean {near[0]}?" if near else
                           f" in {Path.cwd()} (a relative path is read from the current "
                           "directory)." if not path.is_absolute() else "."))
    return parse_toml(path.read_text(), str(path))


def parse_toml(text: str, label: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{label}: not valid TOML ({err}).") from None


@dataclass(frozen=True)
class Document:
    """A TOML document as the user gave it: its table, its name in messages (the file, or
    ``"<what> text"``, or ``what`` for a dict), the folder the paths in it are read from,
    and the file's stem (a default name; None for text or a dict)."""

    table: dict
    label: str
    base_dir: Path
    stem: str | None = None


def read_document(source, what: str, short: str | None = None) -> Document:
    """A spec, plan or grid (``what``, as a missing file's message says it; ``short`` in the
    label of text or a dict) given as the path of a TOML file, TOML text or a dict (as in a
    notebook). Paths inside a file are read from the file's folder; inside text or a dict,
    from the current directory."""
    short = short or what
    if isinstance(source, dict):
        return Document(source, short, Path.cwd())
    if isinstance(source, str) and "\n" in source:
        return Document(parse_toml(source, f"{short} text"), f"{short} text", Path.cwd())
    table = read_toml(source, what)  # a wrong type, a missing file: named there
    path = Path(source).expanduser()
    return Document(table, str(path), path.parent, path.stem)


def spec_reference(value, base_dir) -> ModelSpec:
    """The spec a plan's ``analysis`` or a grid's ``base`` names: the path of a spec file
    (relative to ``base_dir``, ``~`` expanded), TOML text, a dict or a ModelSpec."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and "\n" not in value):
        return load_spec(Path(base_dir) / Path(value).expanduser())
    return load_spec(value)


def load_spec(source) -> ModelSpec:
    """Read a spec from a TOML file (``models/*.toml``), TOML text, or a dict."""
    if isinstance(source, ModelSpec):
        return source
    if not isinstance(source, (dict, str, os.PathLike)):
        raise SpecError("expected an analysis spec (a ModelSpec, a dict, TOML text or the path "
                        f"of a TOML file, e.g. 'models/primary_os.toml'), got "
                        f"{type(source).__name__}.")
    doc = read_document(source, "spec")
    return spec_from_dict(doc.table, source=doc.label)


def recorded_spec(text: str) -> ModelSpec:
    """The spec a result records (a saved fit's ``spec_toml``), read as it was written: a
    setting the model does not use, accepted before such settings were refused, is kept,
    so that the record still matches its hash."""
    doc = read_document(text, "spec")
    return spec_from_dict(doc.table, source=doc.label, keep_unused=True)


def apply_overrides(spec: ModelSpec, overrides: dict, *, name: str | None = None) -> ModelSpec:
    """A new spec with dotted-key overrides, e.g. ``{"site.effect": "fixed",
    "priors.log_hr": {...}}``; validated like a loaded spec. ``spec`` as :func:`load_spec`
    takes it (a ModelSpec, a path, TOML text or a dict).

    An option or prior of ``spec`` that the overrides leave unused (the site SD prior
    with ``site.effect = "none"``) or exclude (``n_intervals`` beside ``options.cuts``) is
    dropped; one the overrides give is refused."""
    return overridden(spec, overrides, name=name)


def overridden(spec, overrides: dict, *, name: str | None = None,
               own_give_way: bool = False) -> ModelSpec:
    """:func:`apply_overrides`; with ``own_give_way`` the overrides' own options and
    priors are dropped too when unused (a grid's variant on a base the grid's overrides
    changed: the variant was checked on its own base)."""
    spec = load_spec(spec)  # an int failed with "'int' object has no attribute 'to_dict'"
    if not isinstance(overrides, Mapping):
        raise SpecError(f"apply_overrides: overrides={overrides!r} must be a dict of dotted "
                        "keys and values, e.g. {'site.effect': 'fixed', 'family': "
                        "'weibull_ph'}.")
    d = spec.to_dict()
    for key, value in overrides.items():
        if not isinstance(key, str) or not all(p.strip() for p in key.split(".")):
            # "site..effect" was read as site's key "" ("unknown key(s) ;")
            raise SpecError(f"apply_overrides: key {key!r} must be a dotted name such as "
                            "'site.effect'.")
        parts = key.split(".")
        target = d
        for p in parts[:-1]:
            if not isinstance(target.get(p, {}), dict):
                raise SpecError(f"override {key!r}: {p!r} is not a table.")
            target = target.setdefault(p, {})
        target[parts[-1]] = copy.deepcopy(value)
    # options and priors given by the overrides (a prior's whole name: progression.beta)
    given = {table: {k.partition(".")[2] for k in overrides if k.startswith(f"{table}.")}
             | (set(overrides[table]) if isinstance(overrides.get(table), dict) else set())
             for table in ("options", "priors")}
    # the base spec's options and priors the overrides did not set: one the variant leaves
    # unused (a site SD prior in "sites: none") or excludes (n_intervals beside the cuts
    # it gives) is dropped, where the same key given by the overrides is refused
    mine = {table: d[table] if isinstance(d.get(table), dict) else {}
            for table in ("options", "priors")}
    inherited = frozenset(f"{table}.{k}" for table, keys in mine.items() for k in keys
                          if not _names(k, given[table]))
    droppable = frozenset(f"{table}.{k}" for table, keys in mine.items() for k in keys
                          ) if own_give_way else inherited
    if d["family"] != spec.family:
        # the base spec's family options and priors do not carry over to another family;
        # those given with the new family are kept, so that one it does not take is refused
        # below (it was dropped without a word)
        new = spec_families().get(d["family"], {})
        d["options"] = {k: v for k, v in d["options"].items()
                        if k in new.get("options", {}) or _names(k, given["options"])}
        d["priors"] = {k: v for k, v in d["priors"].items()
                       if k in new.get("priors", ()) or _names(k, given["priors"])}
    if name is not None:
        d["name"] = name
    if d.get("time_unit") != spec.time_unit:
        _move_times(d, spec.time_unit, given=set(overrides))
    return spec_from_dict(d, source=f"{spec.source or spec.name} + overrides {sorted(overrides)}",
                          inherited=inherited, droppable=droppable)


def _names(key: str, given: set) -> bool:
    """Whether overrides naming ``given`` set ``key``: itself, a part of it
    (``log_hr.sigma`` sets ``log_hr``) or a table holding it (``progression`` sets
    ``progression.beta``)."""
    return any(key == g or g.startswith(f"{key}.") or key.startswith(f"{g}.") for g in given)


def _move_times(d: dict, old_unit: str, given: set) -> None:
    """The times of spec dict ``d`` (report landmarks and tau, family options that are
    times) moved from ``old_unit`` to its new ``time_unit``, except those ``given`` in the
    same overrides (read in the new unit): a spec's unit says what its times mean, so a new
    unit alone must not turn 24 months into 24 days."""
    from bayes_hcc.units import TIME_UNITS, convert

    new_unit = d.get("time_unit")
    if new_unit not in TIME_UNITS:
        return  # refused, with its key named, when the spec is validated

    def move(v):
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, (list, tuple)):
            return [move(x) for x in v]
        return float(convert(float(v), old_unit, new_unit)) if isinstance(
            v, (int, float, np.integer, np.floating)) else v  # text: refused later

    kinds = spec_families().get(d.get("family"), {}).get("options", {})
    tables = {"report": {k: True for k in ("times", "tau")},
              "options": {k: kind in ("cuts", "time") for k, kind in kinds.items()}}
    for table, keys in tables.items():
        if table in given or not isinstance(d.get(table), dict):
            continue
        for key, is_time in keys.items():
            if is_time and key in d[table] and f"{table}.{key}" not in given:
                d[table][key] = move(d[table][key])
