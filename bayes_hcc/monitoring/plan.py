"""A monitoring plan as data: looks, decision rules and the analysis model (a spec)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_hcc.data._checks import calendar_date
from bayes_hcc.errors import BayesHCCError, SpecError, TrialDataError, as_text, did_you_mean
from bayes_hcc.spec.kinds import kind_hint
from bayes_hcc.spec.model_spec import ModelSpec, dump_spec, read_document, spec_reference

__all__ = ["Look", "MonitoringPlan", "load_plan", "Prediction", "PREDICTION_DEFAULTS",
           "PPOS_METHODS"]

# The plan's [prediction] settings live with the plan (predict.py reads them): no import
# circle between plan and predict.
PPOS_METHODS = ("mcmc", "normal", "fast")

#: Assumptions about the trial's future (a plan's ``[prediction]`` table overrides them).
PREDICTION_DEFAULTS = {
    # Total planned sample size; None = accrual is complete (no further patients).
    "sample_size": None,
    # Probability of loss to follow-up within a year, for patients still followed.
    "dropout_per_year": 0.0,
    # A patient alive whose last follow-up is within this many days of the cut is still
    # followed (one 2-monthly assessment plus a month's slack); older contacts are lost.
    "followup_window_days": 91,
    # PPoS: number of completed trials, and how the final analysis is run on each.
    "n_sims": 200,
    "method": "mcmc",
    # Months between tumour assessments, for predicting when progression will be seen
    # (PFS and TTP plans whose data carry scan bounds); the trial scans every 2 months.
    "assessment_interval": 2.0,
}


@dataclass(frozen=True)
class Prediction:
    """Validated prediction settings (see :data:`PREDICTION_DEFAULTS`)."""

    sample_size: int | None = None
    dropout_per_year: float = 0.0
    followup_window_days: int = 91
    n_sims: int = 200
    method: str = "mcmc"
    assessment_interval: float = 2.0

    @classmethod
    def from_dict(cls, d: dict | None, where: str = "prediction") -> Prediction:
        d = dict(d or {})
        bad = sorted(set(d) - set(PREDICTION_DEFAULTS))
        if bad:
            raise SpecError(f"{where}: unknown key(s) {', '.join(bad)}; valid keys: "
                            f"{', '.join(PREDICTION_DEFAULTS)}.")
        out = {**PREDICTION_DEFAULTS, **d}
        n = out["sample_size"]
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 2):
            raise SpecError(f"{where}.sample_size = {n!r} must be a whole number >= 2.")
        p = out["dropout_per_year"]
        if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
            raise SpecError(f"{where}.dropout_per_year = {p!r} must be in [0, 1).")
        w = out["followup_window_days"]
        if not isinstance(w, int) or isinstance(w, bool) or w < 0:
            raise SpecError(f"{where}.followup_window_days = {w!r} must be a whole number "
                            ">= 0.")
        k = out["n_sims"]
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise SpecError(f"{where}.n_sims = {k!r} must be a positive whole number.")
        if out["method"] not in PPOS_METHODS:
            raise SpecError(f"{where}.method = {out['method']!r}; choose one of "
                            f"{', '.join(PPOS_METHODS)}.")
        a = out["assessment_interval"]
        if not isinstance(a, (int, float)) or isinstance(a, bool) or not a > 0:
            raise SpecError(f"{where}.assessment_interval = {a!r} must be a number of months "
                            "> 0.")
        return cls(sample_size=n, dropout_per_year=float(p), followup_window_days=w,
                   n_sims=k, method=out["method"], assessment_interval=float(a))



def _prediction_identity(prediction) -> dict:
    """The prediction settings in the plan's hash; the scan interval only when not the
    default (plans written before it existed keep their hash)."""
    d = asdict(prediction)
    if d["assessment_interval"] == PREDICTION_DEFAULTS["assessment_interval"]:
        del d["assessment_interval"]
    return d


#: Endpoints a plan can monitor: looks count the events of the analysis's endpoint
#: (progressions are counted when the scan that shows them is done).
MONITORED_ENDPOINTS = ("os", "pfs", "ttp")

PLAN_KEYS = ("name", "description", "analysis", "looks", "final", "prediction")
LOOK_KEYS = ("name", "events", "date", "efficacy", "futility", "futility_hr", "futility_ppos")
FINAL_KEYS = ("events", "date", "success")


@dataclass(frozen=True)
class Look:
    """One analysis time and its rules.

    Exactly one of ``events`` (the look happens when this many events of the analysis's
    endpoint are known) and ``date`` (a calendar date) is set. Interim rules: stop for
    efficacy when P(HR < 1) > ``efficacy``; stop for futility when P(HR < ``futility_hr``)
    < ``futility`` or when the predictive probability of success is below
    ``futility_ppos``. ``endpoint`` is the plan's analysis endpoint, whose events a look
    counts and whose fit it decides on (set by the plan; a Look made by hand may leave it
    None, counted as OS). Final analysis: success when P(HR < 1) > ``success``. Rules on
    the wrong side of 0.5 are refused (efficacy or success below it, futility on P(HR < 1)
    above it).
    """

    name: str
    events: int | None = None
    date: str | None = None
    efficacy: float | None = None
    futility: float | None = None
    futility_hr: float = 1.0
    futility_ppos: float | None = None
    success: float | None = None
    #: the endpoint of the plan's analysis, whose events ``events`` counts and whose fit
    #: the rules decide on (set by the plan; a Look made by hand may leave it None: OS)
    endpoint: str | None = None

    def __post_init__(self):
        # A Look made by hand (bh.decide takes one) is checked as a plan file's look is.
        as_text(self.name, "Look: name", "e.g. 'interim 1'", empty=True)
        if self.endpoint is not None:
            if not isinstance(self.endpoint, str) or not self.endpoint.strip():
                raise SpecError(f"look {self.name!r}: endpoint = {self.endpoint!r} must be an "
                                "endpoint's name (os, pfs, ttp).")
            object.__setattr__(self, "endpoint", self.endpoint.strip().lower())
        fields = {k: v for k, v in asdict(self).items()
                  if v is not None and k not in ("name", "endpoint")}
        checked = look_fields(fields, f"look {self.name!r}", ": ")
        object.__setattr__(self, "date", checked.get("date"))  # canonical YYYY-MM-DD

    @property
    def is_final(self) -> bool:
        return self.success is not None

    def when(self) -> str:
        return f"{self.events} events" if self.events is not None else f"date {self.date}"


def _look_identity(look: Look) -> dict:
    """A look's rules and timing, as plan hashes have always read them: its endpoint is the
    analysis spec's, hashed with the spec (so audit logs written before still verify)."""
    d = asdict(look)
    del d["endpoint"]
    return d


def _prob(value, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
        raise SpecError(f"{where} = {value!r} must be a probability strictly between 0 and 1.")
    return float(value)


#: A futility HR outside this range is not a rule anyone means (HR 0.01 or 100).
FUTILITY_HR_RANGE = (0.01, 100.0)


def _hr(value, where: str) -> float:
    """A finite hazard-ratio threshold in FUTILITY_HR_RANGE (inf would make a rule that can
    never fire; text is an error naming the key)."""
    lo, hi = FUTILITY_HR_RANGE
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
        raise SpecError(f"{where} = {value!r} must be a hazard ratio between {lo:g} and "
                        f"{hi:g} (1.0: futility when P(HR < 1) is low).")
    return float(value)


def _timing(d: dict, where: str, sep: str = ".") -> dict:
    has_e, has_d = "events" in d, "date" in d
    if has_e == has_d:
        raise SpecError(f"{where}: give exactly one of 'events' (number of events) or "
                        "'date' (YYYY-MM-DD).")
    if has_e:
        e = d["events"]
        if not isinstance(e, (int, np.integer)) or isinstance(e, bool) or e < 1:
            raise SpecError(f"{where}{sep}events = {e!r} must be a positive whole number.")
        return {"events": int(e)}
    try:
        return {"date": str(calendar_date(str(d["date"]), f"{where}{sep}date").date())}
    except TrialDataError as err:  # "2019-06" was June 1st, "June 2019" too
        raise SpecError(str(err)) from None


def _against_the_data(rules: dict, key) -> None:
    """Refuse a threshold on the wrong side of 0.5, which acts against what the posterior
    says: an efficacy or success threshold below 0.5 (it fires while the data favour
    control; typically a one-sided error rate written where the posterior probability
    goes), a futility threshold above 0.5 on P(HR < hr), hr >= 1 (it fires while the data
    favour the experimental arm). Below a clinically relevant HR (hr < 1) a futility
    threshold above 0.5 is a rule people mean (the effect worth having is unlikely)."""
    for name, verb in (("efficacy", "stop for efficacy"), ("success", "declare success")):
        v = rules.get(name)
        if v is not None and v < 0.5:
            raise SpecError(
                f"{key(name)} = {v:g} would {verb} when P(HR < 1) is only above {v:g}, even "
                f"when the data favour the control arm. The rule is P(HR < 1) > {name} "
                f"(e.g. 0.99): if {v:g} is a one-sided error rate, write {name} = {1 - v:g}.")
    v, hr = rules.get("futility"), rules.get("futility_hr", 1.0)
    if v is not None and v > 0.5 and hr >= 1:
        raise SpecError(
            f"{key('futility')} = {v:g} would stop for futility when P(HR < {hr:g}) is as "
            f"high as {v:g}, when the data favour the experimental arm. The rule is "
            f"P(HR < {hr:g}) < futility (e.g. 0.10): if you meant P(HR > {hr:g}) > {v:g}, "
            f"write futility = {1 - v:g}.")


def look_fields(d: dict, where: str, sep: str = ".") -> dict:
    """The checked fields of one look (timing and rules) from ``d``: a plan file's table
    (``where`` = ``"looks[0]"``, keys named ``looks[0].efficacy``) or a :class:`Look`'s own
    fields (``sep=": "``). A look with ``success`` is the final analysis and has no other
    rule; an interim look needs at least one."""
    def key(name):
        return f"{where}{sep}{name}"

    out = _timing(d, where, sep)
    final = "success" in d
    interim = [k for k in ("efficacy", "futility", "futility_ppos") if k in d]
    if final and interim:
        raise SpecError(f"{where}: a final look has only a success rule (P(HR < 1) > "
                        f"success); {', '.join(interim)} belong to interim looks.")
    if not final and not interim:
        raise SpecError(f"{where}: an interim look needs an 'efficacy', 'futility' or "
                        "'futility_ppos' rule.")
    for name in ("efficacy", "futility", "futility_ppos", "success"):
        if name in d:
            out[name] = _prob(d[name], key(name))
    if not final:
        out["futility_hr"] = _hr(d.get("futility_hr", 1.0), key("futility_hr"))
    _against_the_data(out, key)
    return out


@dataclass(frozen=True)
class MonitoringPlan:
    """Looks in order, the final analysis, and the analysis spec used at every look."""

    name: str
    spec: ModelSpec
    looks: tuple
    final: Look
    description: str = ""
    prediction: Prediction = Prediction()

    @property
    def hash(self) -> str:
        """SHA-256 of the plan's content (rules and the full analysis spec)."""
        d = {"name": self.name, "spec": dump_spec(self.spec),
             "looks": [_look_identity(x) for x in self.looks],
             "final": _look_identity(self.final),
             "prediction": _prediction_identity(self.prediction)}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def look(self, which) -> Look:
        """A look by number (1-based), by name, or ``"final"``."""
        if which == "final" or which == len(self.looks) + 1:
            return self.final
        if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
            if 1 <= which <= len(self.looks):
                return self.looks[int(which) - 1]
        for x in self.looks:
            if x.name == which:
                return x
        if isinstance(which, str):  # "Interim 1 " is the look "interim 1"
            same = [x for x in self.looks if x.name.casefold() == which.strip().casefold()]
            if len(same) == 1:
                return same[0]
            if which.strip().casefold() == "final":
                return self.final
            which = did_you_mean([which], [x.name for x in self.looks] + ["final"])
        else:
            which = repr(which)
        raise SpecError(f"plan {self.name!r} has no look {which}: looks are 1.."
                        f"{len(self.looks)} ({', '.join(x.name for x in self.looks)}) and "
                        "'final'.")

    def look_date(self, trial, which) -> pd.Timestamp:
        """Calendar date of the look ``which`` (number, name or ``"final"``) in ``trial``:
        its date, or the day its event count of the plan's endpoint was reached."""
        return look_date(trial, self.look(which), self.spec.endpoint)

    def table(self) -> pd.DataFrame:
        """One row per look and its rules; a rule the look does not have is empty (NaN),
        and so is the futility HR of a look without a futility rule on P(HR < hr)."""
        nan = float("nan")
        rows = [{"look": x.name, "when": x.when(),
                 "efficacy: P(HR<1) >": nan if x.efficacy is None else x.efficacy,
                 "futility: P(HR<hr) <": nan if x.futility is None else x.futility,
                 "futility hr": nan if x.futility is None else x.futility_hr,
                 "futility: PPoS <": nan if x.futility_ppos is None else x.futility_ppos,
                 "success: P(HR<1) >": nan if x.success is None else x.success}
                for x in (*self.looks, self.final)]
        return pd.DataFrame(rows).set_index("look")

    def __repr__(self) -> str:
        return (f"MonitoringPlan({self.name!r}: {len(self.looks)} interim look(s) + final; "
                f"analysis {self.spec.name!r}; hash {self.hash})")


def normal_rule_prior(spec) -> tuple[float, float]:
    """The mean and SD of the spec's Normal prior on log HR, after checking that the normal
    rule (an unadjusted, site-stratified Cox estimate with that prior) approximates the
    spec's analysis at all: a proportional-hazards family, a Normal log-HR prior, no
    covariates and no baseline strata. Otherwise a named error pointing to the methods
    that refit the spec itself."""
    from bayes_hcc.models.from_spec import build

    model = build(spec)
    family = model.family_for(None, None)
    fix = "use method='mcmc' (or 'fast'), which refit the spec's own model."
    if family.effect.name != "log_hr":
        raise BayesHCCError(f"method='normal' approximates a hazard ratio, and the spec "
                            f"{spec.name!r} ({spec.family}) estimates a "
                            f"{family.effect.ratio}: {fix}")
    if spec.covariates:
        raise BayesHCCError(f"method='normal' approximates an unadjusted Cox analysis, and "
                            f"the spec {spec.name!r} adjusts for "
                            f"{', '.join(map(str, spec.covariates))}: {fix}")
    if spec.strata:
        raise BayesHCCError(f"method='normal' stratifies by site only, and the spec "
                            f"{spec.name!r} stratifies its baseline by "
                            f"{dict(spec.strata)['column']!r}: {fix}")
    prior = model.resolved_priors(family)["log_hr"]
    if prior.dist != "Normal":
        raise BayesHCCError(f"method='normal' needs a Normal prior on log_hr (the spec "
                            f"{spec.name!r} has {prior.dist}): {fix}")
    return float(prior.params["mu"]), float(prior.params["sigma"])


def events_needed(spec) -> tuple[int, str]:
    """The fewest events of its endpoint the analysis spec can be fitted to, and why (a
    piecewise baseline cut at event-time quantiles needs one event per interval; every
    model needs one)."""
    from bayes_hcc.families.registry import family_class

    return family_class(spec.family).events_needed(dict(spec.options))


def too_few_events(spec, n_events: int) -> str | None:
    """Why ``n_events`` events of its endpoint are too few for the analysis spec (to follow
    "but"), or None when they are enough."""
    need, why = events_needed(spec)
    if n_events >= need:
        return None
    return (f"the analysis {spec.name!r} ({spec.family}) needs at least {need}: {why} in "
            "the analysis spec")


def plan_from_dict(d: dict, base_dir: Path = Path(".")) -> MonitoringPlan:
    unknown = sorted(set(d) - set(PLAN_KEYS))
    if unknown:
        raise SpecError(f"monitoring plan: unknown key(s) {', '.join(unknown)}; valid keys: "
                        f"{', '.join(PLAN_KEYS)}{kind_hint(d, 'bh.load_plan')}.")
    for k in ("analysis", "final"):
        if k not in d:
            raise SpecError(f"monitoring plan: missing {k!r}.")
    spec = spec_reference(d["analysis"], base_dir)
    if spec.endpoint not in MONITORED_ENDPOINTS:
        raise SpecError(f"monitoring plan: the analysis {spec.name!r} is for "
                        f"{spec.endpoint!r}; a plan monitors one of "
                        f"{', '.join(MONITORED_ENDPOINTS)} (its looks count that endpoint's "
                        "events).")
    if spec.illness_death:
        raise SpecError(f"monitoring plan: the analysis {spec.name!r} is an illness-death "
                        "model, which has no single hazard ratio for the looks' thresholds "
                        "to decide on. Monitor with a single-endpoint analysis spec and "
                        "complete trials with the illness-death model instead "
                        "(interim_analysis(..., completion_model=bh.IllnessDeath(...)), "
                        "predictive_probability(..., completion=...)).")
    looks = []
    raw_looks = d.get("looks", [])
    if not isinstance(raw_looks, list) or not all(isinstance(x, dict) for x in raw_looks):
        raise SpecError("monitoring plan: 'looks' must be a list of tables ([[looks]]).")
    for i, raw in enumerate(raw_looks):
        where = f"looks[{i}]"
        bad = sorted(set(raw) - set(LOOK_KEYS))
        if bad:
            raise SpecError(f"{where}: unknown key(s) {', '.join(bad)}; valid keys: "
                            f"{', '.join(LOOK_KEYS)}.")
        looks.append(Look(name=as_text(raw.get("name", f"interim {i + 1}"), f"{where}.name",
                                     'the look\'s name, e.g. "interim 1"'),
                          endpoint=spec.endpoint, **look_fields(raw, where)))
    raw = d["final"]
    if not isinstance(raw, dict):
        raise SpecError("monitoring plan: 'final' must be a table ([final]).")
    bad = sorted(set(raw) - set(FINAL_KEYS))
    if bad:
        raise SpecError(f"final: unknown key(s) {', '.join(bad)}; valid keys: "
                        f"{', '.join(FINAL_KEYS)}.")
    if "success" not in raw:
        raise SpecError("final: missing 'success' (P(HR < 1) needed to declare success).")
    final = Look(name="final", endpoint=spec.endpoint, **look_fields(raw, "final"))
    seq = [x for x in (*looks, final) if x.events is not None]
    if any(b.events <= a.events for a, b in zip(seq, seq[1:])):
        raise SpecError("monitoring plan: event counts of the looks must increase.")
    dates = [x.date for x in (*looks, final) if x.date is not None]
    if dates != sorted(dates) or len(set(dates)) != len(dates):
        raise SpecError("monitoring plan: look dates must increase.")
    names = [x.name for x in looks]
    if len(set(names)) != len(names) or "final" in names:
        raise SpecError("monitoring plan: look names must be unique and not 'final'.")
    for x in (*looks, final):
        problem = x.events is not None and too_few_events(spec, x.events)
        if problem:
            raise SpecError(f"look {x.name!r} is at {x.events} {spec.endpoint.upper()} "
                            f"events, but {problem}; or give the look at least "
                            f"{events_needed(spec)[0]} events.")
    prediction = Prediction.from_dict(d.get("prediction"))
    n = prediction.sample_size
    for x in (*looks, final):
        if n is not None and x.events is not None and x.events > n:
            raise SpecError(f"{x.name}: events = {x.events} exceeds prediction.sample_size = "
                            f"{n}: that many events can never be observed, so the look never "
                            "happens. Lower the event count or correct the sample size.")
    if prediction.method == "normal":
        try:
            normal_rule_prior(spec)
        except BayesHCCError as err:
            raise SpecError(f"prediction.method = 'normal': {err}") from None
    return MonitoringPlan(name=as_text(d.get("name", "monitoring"), "monitoring plan: name",
                                     "the plan's name"), spec=spec, looks=tuple(looks),
                          final=final, description=as_text(d.get("description", ""),
                                                         "monitoring plan: description",
                                                         "a sentence", empty=True),
                          prediction=prediction)


def load_plan(path) -> MonitoringPlan:
    """Read a monitoring plan: a TOML file (``models/monitoring.toml``; its ``analysis``
    spec path is relative to the plan), TOML text, or a dict (as in a notebook; its
    ``analysis`` is a spec, a dict, or a path relative to the current directory)."""
    if isinstance(path, MonitoringPlan):
        return path
    doc = read_document(path, "monitoring plan", "plan")
    try:
        return plan_from_dict(doc.table, doc.base_dir)
    except SpecError as err:
        raise SpecError(f"{doc.label}: {err}") from None


def look_date(trial: TrialData, look: Look, endpoint: str | None = None) -> pd.Timestamp:
    """Calendar date of a look: its date, or the day the ``events``-th event of its plan's
    endpoint was known (a progression: the day of the scan that showed it). A plan's look
    knows its endpoint; ``endpoint`` is for a look made by hand (default OS), and must agree
    with a plan's look."""
    if not isinstance(look, Look):
        raise BayesHCCError(f"look_date: look={look!r} is not a Look; a look is found in its "
                            "plan, by number or name: plan.look_date(trial, "
                            f"{look!r}) (or look_date(trial, plan.look({look!r})).")
    if endpoint is not None and look.endpoint is not None and \
            str(endpoint).strip().lower() != look.endpoint:
        raise BayesHCCError(f"look_date: look {look.name!r} counts {look.endpoint.upper()} "
                            f"events (its plan's endpoint), not {str(endpoint).upper()}; "
                            "leave endpoint out.")
    from bayes_hcc.data.trial import require_trial

    trial = require_trial(trial, "look_date")  # an int: "no attribute 'events_by_date'"
    endpoint = look.endpoint or endpoint or "os"
    if look.date is not None:
        return pd.Timestamp(look.date)
    when = trial.events_by_date(endpoint)
    if len(when) < look.events:
        cut = "unknown" if trial.cut_date is None else trial.cut_date.date()
        raise TrialDataError(f"look {look.name!r} is at {look.events} {endpoint.upper()} "
                             f"events, but the data hold {len(when)} (cut {cut}); the look "
                             "has not happened yet.")
    return when.iloc[look.events - 1].normalize()
