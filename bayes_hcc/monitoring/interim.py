"""An interim look: cut the data, fit the plan's model, apply the rules, log the record."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_hcc.data.trial import TrialData, require_trial
from bayes_hcc.diagnostics import check
from bayes_hcc.errors import (BayesHCCError, TrialDataError, bool_flags, only_data_warnings,
                              refuse_ignored, user_path)
from bayes_hcc.models.from_spec import fit_spec, population
from bayes_hcc.monitoring.plan import (PPOS_METHODS, Look, MonitoringPlan, load_plan,
                                      look_date, too_few_events)
from bayes_hcc.quantities.core import as_fit, prob_superiority

__all__ = ["look_date", "decide", "interim_analysis", "InterimResult", "verify_log"]

DECISIONS = ("stop for efficacy", "stop for futility", "continue", "success", "no success",
             "no decision: exploratory fit (fast mode)", "no decision: diagnostics failed")


@bool_flags
def decide(fit, look: Look, ppos=None, *, warn: bool = True) -> tuple[str, dict]:
    """Posterior probabilities the look's rules need, and the decision they give.

    ``ppos`` (a :class:`PPoSResult`) is needed when the look has a ``futility_ppos`` rule.
    The decision is the rules' on this posterior: a fit that failed its convergence checks,
    or an exploratory (fast-mode) fit, gets a ``ConvergenceWarning`` saying so
    (``bh.interim_analysis`` then reports "no decision"); ``warn=False`` for callers that
    judge the fit themselves.
    """
    fit = as_fit(fit)  # a saved fit's path is read once
    rule, probs = _rule_decision(fit, look, ppos)
    if warn:
        problems = fit.convergence_problems()
        if problems or fit.analysis_mode == "exploratory":
            from bayes_hcc.convergence import warn_convergence

            why = (f"failed its convergence checks ({'; '.join(problems)})" if problems
                   else "is exploratory (fast mode: short chains, loose thresholds)")
            warn_convergence(f"decide: the fit {why}, so {rule!r} is the rules' decision on "
                             "a posterior not fit for one (bh.interim_analysis reports 'no "
                             "decision' here). Refit with the analysis settings (more draws "
                             "or tune; bh.check(fit) explains each check).")
    return rule, probs


def _rule_decision(fit, look: Look, ppos=None) -> tuple[str, dict]:
    if not isinstance(look, Look):  # a name failed with AttributeError
        raise BayesHCCError(f"decide: look={look!r} is not a Look; a look is found in its "
                            f"plan, by number or name: bh.decide(fit, plan.look({look!r})).")
    fit = as_fit(fit)  # a saved fit's path is read once
    endpoint = fit.endpoint
    if look.endpoint is not None and endpoint != look.endpoint:
        raise BayesHCCError(f"decide: look {look.name!r} is a look of a "
                            f"{look.endpoint.upper()} analysis; this fit is of "
                            f"{str(endpoint).upper()}. Decide with a fit of the plan's "
                            "analysis (bh.interim_analysis fits it).")
    p_sup = prob_superiority(fit, 1.0)
    probs = {"P(HR < 1)": p_sup.probability, "MCSE P(HR < 1)": p_sup.mcse}
    if ppos is not None:
        probs["PPoS"], probs["MCSE PPoS"] = ppos.ppos, ppos.mcse
    if look.is_final:
        return ("success" if p_sup.probability > look.success else "no success"), probs
    if look.futility is not None:
        p_fut = prob_superiority(fit, look.futility_hr)
        probs[f"P(HR < {look.futility_hr:g})"] = p_fut.probability
        probs[f"MCSE P(HR < {look.futility_hr:g})"] = p_fut.mcse
    if look.efficacy is not None and p_sup.probability > look.efficacy:
        return "stop for efficacy", probs
    if look.futility is not None and probs[f"P(HR < {look.futility_hr:g})"] < look.futility:
        return "stop for futility", probs
    if look.futility_ppos is not None:
        if ppos is None:
            raise BayesHCCError(f"look {look.name!r} has a PPoS futility rule: pass the "
                                "predictive probability (bh.predictive_probability).")
        if ppos.ppos < look.futility_ppos:
            return "stop for futility", probs
    return "continue", probs


@dataclass
class InterimResult:
    """What a look found. ``decision`` is ``"no decision: diagnostics failed"`` when the fit
    did not pass ``bh.check``, or the illness-death completion model's fit (for the PPoS)
    failed its convergence checks (``completion_problems``): the probabilities are then
    shown but not acted on."""

    look: Look
    cut_date: pd.Timestamp
    n_patients: int
    n_events: int
    probabilities: dict
    decision: str
    rule_decision: str
    diagnostics: object
    fit: object = field(repr=False)
    plan_hash: str = ""
    record: dict = field(default_factory=dict, repr=False)
    data: TrialData | None = field(default=None, repr=False)
    plan: MonitoringPlan | None = field(default=None, repr=False)
    ppos_result: object = field(default=None, repr=False)
    #: failed convergence checks of the illness-death completion model's fit (empty: none)
    completion_problems: tuple = ()

    def ppos(self, **kwargs):
        """Predictive probability of success from this look (see
        :func:`bayes_hcc.predictive_probability`; keyword arguments are passed on)."""
        from bayes_hcc.monitoring.predict import predictive_probability

        return predictive_probability(self.data, self.plan, fit=self.fit, **kwargs)

    def later_looks(self) -> list:
        """The plan's looks still to come after this one: at an event count not yet
        reached, or at a date after this look's cut."""
        return [x for x in (*self.plan.looks, self.plan.final)
                if (x.events is not None and x.events > self.n_events)
                or (x.date is not None and pd.Timestamp(x.date) > self.cut_date)]

    def predict_dates(self, events=None, **kwargs) -> pd.DataFrame:
        """Predicted calendar dates of the later looks' and the final analysis's event
        counts (see :func:`bayes_hcc.predict_event_dates`)."""
        from bayes_hcc.monitoring.predict import predict_event_dates

        if events is None:
            events = [x.events for x in self.later_looks() if x.events is not None]
            if not events:
                later = [f"{x.name} ({x.date})" for x in self.later_looks()
                         if x.date is not None]
                raise BayesHCCError(
                    "no later look of the plan is defined by an event count, so there is no "
                    "date to predict" + (f" (at dates: {', '.join(later)}: predict_events() "
                                         "predicts their event counts)" if later else "")
                    + ". To predict when a number of events will be reached, give it: "
                    "predict_dates(events=[...]).")
        return predict_event_dates(self.data, self.fit, events,
                                   prediction=kwargs.pop("prediction", self.plan.prediction),
                                   **kwargs)

    def predict_events(self, dates=None, **kwargs) -> pd.DataFrame:
        """Predicted numbers of events by the later looks' and the final analysis's
        calendar dates, or by ``dates`` (see :func:`bayes_hcc.predict_event_counts`)."""
        from bayes_hcc.monitoring.predict import predict_event_counts

        if dates is None:
            dates = [x.date for x in self.later_looks() if x.date is not None]
            if not dates:
                raise BayesHCCError("no later look of the plan is at a calendar date: give "
                                    "the dates, predict_events(dates=[...]), or predict "
                                    "the dates of event counts with predict_dates().")
        return predict_event_counts(self.data, self.fit, dates,
                                    prediction=kwargs.pop("prediction", self.plan.prediction),
                                    **kwargs)

    def __repr__(self) -> str:
        p = self.probabilities["P(HR < 1)"]
        return (f"InterimResult({self.look.name}: cut {self.cut_date.date()}, "
                f"{self.n_patients} patients, {self.n_events} "
                f"{self.plan.spec.endpoint.upper()} events, P(HR < 1) = {p:.3f}; "
                f"decision: {self.decision})")

    def _repr_html_(self) -> str:
        """What a notebook shows: the line ``repr`` gives (with the decision), what
        :meth:`summary_lines` says, the verdict of the diagnostics the decision rests on
        and what the data at the cut warned of."""
        import html

        from bayes_hcc.notebook import fit_card

        lines = "".join(f"<li>{html.escape(line)}</li>" for line in self.summary_lines())
        return fit_card(repr(self), f"<ul>{lines}</ul>", self.diagnostics.explanations,
                        self.diagnostics.mode == "exploratory", self.fit.data_notes,
                        "<code>look.ppos()</code>, <code>look.predict_dates()</code>, "
                        "<code>look.predict_events()</code>; <code>look.fit</code> is the "
                        "analysis fit.")

    def summary_lines(self) -> list[str]:
        """What the console shows: HR with its 95% credible interval, patients and events
        by arm, every posterior probability with its MCSE, PPoS when computed."""
        rec = self.record
        lo, hi = rec["hr_95"]
        arms = ", ".join(f"{a} {rec['events_by_arm'][a]}/{rec['patients_by_arm'][a]}"
                         for a in rec["events_by_arm"])
        lines = [f"HR {rec['hr_median']:.3f} (95% CrI {lo:.3f}-{hi:.3f})",
                 f"{self.plan.spec.endpoint.upper()} events / patients by arm: {arms}"]
        for k, v in self.probabilities.items():
            if k.startswith("MCSE ") or k in ("PPoS",):
                continue
            mcse = self.probabilities.get(f"MCSE {k}")
            lines.append(f"{k} = {v:.4f}" + ("" if mcse is None else f" (MCSE {mcse:.4f})"))
        if rec.get("ppos"):
            pp = rec["ppos"]
            lo, hi = pp["interval_95"]
            lines.append(f"PPoS = {pp['ppos']:.3f} (MCSE {pp['mcse']:.3f}, 95% MC interval "
                         f"{lo:.3f}-{hi:.3f}; {pp['n_sims']} completed trials, method "
                         f"{pp['method']})")
        if self.completion_problems:
            lines.append("the completion model's fit failed convergence checks: "
                         + "; ".join(self.completion_problems))
        return lines


def _record(res: InterimResult, trial_cut: TrialData, plan: MonitoringPlan, seed: int,
            look_id, fast: bool) -> dict:
    from bayes_hcc._versions import provenance_versions as _versions

    hr = np.exp(res.fit.posterior["log_hr"].to_numpy().ravel())
    ep = trial_cut.endpoint(plan.spec.endpoint)
    ppos = res.ppos_result
    return {
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "look": look_id, "look_name": res.look.name, "cut_date": str(res.cut_date.date()),
        "data_fingerprint": trial_cut.fingerprint, "plan": plan.name,
        "plan_hash": plan.hash, "spec_hash": plan.spec.hash, "seed": int(seed), "fast": fast,
        "package_versions": _versions(), "n_patients": res.n_patients,
        "n_events": res.n_events, "decision": res.decision,
        "rule_decision": res.rule_decision,
        "diagnostics_ok": bool(res.diagnostics.ok) and not res.completion_problems,
        # written only when there are some: records made before it existed still verify
        **({"completion_problems": list(res.completion_problems)}
           if res.completion_problems else {}),
        "probabilities": res.probabilities,
        "hr_median": float(np.median(hr)),
        "hr_95": [float(np.quantile(hr, 0.025)), float(np.quantile(hr, 0.975))],
        "events_by_arm": {a: int(ep.event[ep.arm == i].sum()) for i, a in enumerate(ep.arms)},
        "patients_by_arm": {a: int((ep.arm == i).sum()) for i, a in enumerate(ep.arms)},
        "ppos": None if ppos is None else {
            "ppos": ppos.ppos, "mcse": ppos.mcse, "n_sims": ppos.n_sims,
            "method": ppos.method, "interval_95": list(ppos.interval()),
            "random_seed": ppos.settings.get("random_seed")},
    }


#: prev_sha256 of the first record of a log.
GENESIS = "0" * 64
#: Fields every record carries (what verify_log compares or needs to re-run it).
REQUIRED = ("look", "cut_date", "data_fingerprint", "plan_hash", "seed", "fast", "n_patients",
            "n_events", "decision", "rule_decision", "diagnostics_ok", "probabilities",
            "hr_median", "prev_sha256", "record_sha256")


def record_digest(record: dict) -> str:
    """SHA-256 of a record's canonical JSON without its own digest."""
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def append_record(path, record: dict) -> dict:
    """Append one record to the audit log, chained to the one before it: the record holds
    the digest of the previous record (``prev_sha256``) and its own (``record_sha256``), so
    a deleted, reordered or edited record breaks the chain. Earlier records are never
    rewritten; an exclusive lock keeps concurrent writers from forking the chain. A record
    made with another plan than the log's last record is refused (one log, one plan).
    Returns the record as written."""
    import fcntl

    path = user_path(path, "the audit log", "a JSON-lines log file")
    if path.is_dir():
        raise BayesHCCError(f"{path} is a directory; give the audit log's file name "
                            "(e.g. monitoring/audit.jsonl).")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.seek(0)
            lines = [x for x in fh.read().splitlines() if x.strip()]
            prev = GENESIS
            if lines:
                last = _last_record(path, lines)
                prev = last["record_sha256"]
                _refuse_other_plan(path, len(lines), last, record.get("plan_hash"))
            out = {k: v for k, v in record.items() if k not in ("prev_sha256",
                                                                 "record_sha256")}
            out["prev_sha256"] = prev
            out["record_sha256"] = record_digest(out)
            fh.seek(0, 2)
            fh.write(json.dumps(out, sort_keys=True) + "\n")
            fh.flush()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
    return out


def _last_record(path, lines: list[str]) -> dict:
    """The log's last record, which a new record is chained to."""
    try:
        last = json.loads(lines[-1])
    except json.JSONDecodeError:
        last = None
    if isinstance(last, dict) and "record_sha256" in last:
        return last
    raise BayesHCCError(f"{path}: the last record (line {len(lines)}) is not a chained "
                        "audit record; verify_log shows what is wrong. Start a new log file.")


def _refuse_other_plan(path, line: int, last: dict, plan_hash) -> None:
    """One audit log holds the looks of one plan: ``verify_log`` checks every record
    against the plan it is given, so a look appended under another plan (an amended
    threshold, another endpoint) could never verify beside the earlier ones."""
    theirs = last.get("plan_hash")
    if plan_hash is None or theirs is None or theirs == plan_hash:
        return
    raise BayesHCCError(
        f"{path}: its records were made with plan {last.get('plan', '?')!r} (hash "
        f"{theirs[:12]}, line {line}), this look with another plan (hash {plan_hash[:12]}). "
        "One audit log holds the looks of one plan, which verify_log checks them against. "
        "If this is the plan the earlier looks were run under, pass that plan file; if the "
        "plan was amended, give the amended plan's looks a new log file (e.g. "
        "monitoring/audit_amendment1.jsonl).")


def _check_log_plan(log, plan_hash: str) -> None:
    """Before a look's fit: refuse a log of another plan (the same check as at the
    append, made here so that the fit is not run for nothing)."""
    path = user_path(log, "interim_analysis: log", "a JSON-lines log file")
    if path.is_dir():
        raise BayesHCCError(f"{log} is a directory; give the audit log's file name "
                            "(e.g. monitoring/audit.jsonl).")
    if not path.is_file():
        return
    try:
        lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    except UnicodeDecodeError:
        raise BayesHCCError(f"{path} is not an audit log (not UTF-8 text).") from None
    if lines:
        _refuse_other_plan(path, len(lines), _last_record(path, lines), plan_hash)


@bool_flags
def interim_analysis(trial: TrialData, plan, look=1, *, fast: bool = False,
                     random_seed: int | None = None, log=None, ppos: bool = False,
                     ppos_method: str | None = None, progress: bool = False,
                     completion_model=None) -> InterimResult:
    """Run one look of a monitoring plan.

    Parameters
    ----------
    trial : TrialData
        The data as of today (dates layout: a look needs calendar dates).
    plan : MonitoringPlan, or a plan file (``models/monitoring.toml``), TOML text or dict
    look : int, str
        Look number (1-based), look name, or ``"final"``.
    fast : bool
        A quick look (``FAST`` settings, exploratory): the rules' verdict is recorded but
        the decision is "no decision: exploratory fit (fast mode)".
    random_seed : int, optional
        Default: the analysis spec's seed. Same data, plan and seed give the same numbers.
    log : path, optional
        Audit log (JSON Lines): one record per look is appended.
    ppos : bool, default False
        Also compute the predictive probability of success (the plan's ``[prediction]``
        settings; ``ppos_method`` overrides its method) before the record is written, so
        the record carries it. A look with a PPoS futility rule always computes it.
    completion_model : IllnessDeath, optional
        Complete the trial for the PPoS with this illness-death model, fitted to the cut
        (same seed), so that each patient's progression status is used
        (``bh.predictive_probability(completion=...)``); recorded in the audit record.

    Returns
    -------
    InterimResult
        Probabilities with MCSEs, the decision and the diagnostics report. A fit that fails
        ``bh.check`` gives ``decision = "no decision: diagnostics failed"`` (the rule's
        verdict is kept in ``rule_decision`` for the record).
    """
    plan = load_plan(plan)
    require_trial(trial, "interim_analysis")
    if log is not None:
        _check_log_plan(log, plan.hash)
    if completion_model is not None:  # checked before the look's fit, not after it
        from bayes_hcc.multistate import IllnessDeath

        if not isinstance(completion_model, IllnessDeath):
            raise BayesHCCError(f"interim_analysis: completion_model={completion_model!r} is "
                                "not an illness-death model; give one, e.g. "
                                "bh.IllnessDeath('weibull_ph', site_effect='shared') (it is "
                                "fitted to the look's data cut).")
        from bayes_hcc.monitoring.predict import check_completion_covariates

        check_completion_covariates(plan.spec, completion_model, "completion_model")
    lk = plan.look(look)
    if not _computes_ppos(lk, ppos):  # the PPoS settings given would be ignored silently
        given = [k for k, v in (("ppos=True", ppos), ("ppos_method", ppos_method),
                                ("completion_model", completion_model))
                 if v is not None and v is not False]
        if lk.is_final:
            refuse_ignored("interim_analysis", given, "the predictive probability of "
                           "success, and the final analysis has none (its decision is the "
                           "final rule on the data)")
        refuse_ignored("interim_analysis", given, "the predictive probability of success, "
                       f"and look {lk.name!r} computes none (it has no PPoS futility rule)",
                       "pass ppos=True (--ppos) too")
    if ppos_method is not None and ppos_method not in PPOS_METHODS:  # before the fit
        raise BayesHCCError(f"interim_analysis: ppos_method={ppos_method!r}; choose one of "
                            f"{', '.join(PPOS_METHODS)}.")
    date = look_date(trial, lk, plan.spec.endpoint)
    if trial.cut_date is not None and date > trial.cut_date:
        raise TrialDataError(f"look {lk.name!r} is on {lk.date}, after the data cut "
                             f"{trial.cut_date.date()}; the look has not happened yet.")
    cut = trial.cut(date, warn=False)
    n_events = population(plan.spec, cut).endpoint(plan.spec.endpoint).n_events
    problem = too_few_events(plan.spec, n_events)
    if problem:  # a look by date, or a population narrower than the events counted
        raise TrialDataError(f"look {lk.name!r} (cut {date.date()}) has {n_events} "
                             f"{plan.spec.endpoint.upper()} events in the analysis "
                             f"population, but {problem}; or hold the look later.")
    cut.data_warnings([plan.spec.endpoint])  # only the endpoint this plan analyses
    seed = int(dict(plan.spec.sampler)["seed"] if random_seed is None else random_seed)
    with only_data_warnings():  # the verdict below reports convergence
        fit = fit_spec(plan.spec, cut, fast=fast, check=False, random_seed=seed)
        diag = check(fit, warn=False)
    pp = completion = None
    if _computes_ppos(lk, ppos):
        from bayes_hcc.monitoring.predict import predictive_probability

        if completion_model is not None:
            with only_data_warnings():  # e.g. a transition without events
                completion = completion_model.fit(
                    cut, random_seed=seed, check=False,
                    **(dict(draws=300, tune=400, exploratory=True) if fast else {}))
        pp = predictive_probability(cut, plan, fit=fit, random_seed=seed, method=ppos_method,
                                    progress=progress, completion=completion)
    rule, probs = decide(fit, lk, pp, warn=False)  # judged by bh.check below
    ep = cut.endpoint(plan.spec.endpoint)
    # the PPoS is drawn from the completion model's posterior: it must have converged too
    failed = completion.convergence_problems() if completion is not None else []
    res = InterimResult(look=lk, cut_date=date, n_patients=cut.n_patients,
                        n_events=int(ep.n_events), probabilities=probs,
                        decision=DECISIONS[-1] if not diag.ok or failed else DECISIONS[-2]
                        if fast else rule, rule_decision=rule,
                        diagnostics=diag, fit=fit, plan_hash=plan.hash, data=cut, plan=plan,
                        ppos_result=pp, completion_problems=tuple(failed))
    res.record = _record(res, cut, plan, seed, look, fast)
    res.record["ppos_requested"] = {"ppos": bool(ppos), "method": ppos_method,
                                    **({"completion_model": completion_model.settings()}
                                       if completion_model is not None else {})}
    if log is not None:
        res.record = append_record(log, res.record)
    return res


def _computes_ppos(look: Look, ppos: bool) -> bool:
    """Whether a look computes the PPoS: its PPoS futility rule needs it, or it was asked
    for at an interim look (the final analysis has none)."""
    return look.futility_ppos is not None or bool(ppos and not look.is_final)


def read_log(path) -> list[tuple[int, object]]:
    """(line number, parsed JSON or None for invalid JSON) for every non-blank line."""
    path = user_path(path, "the audit log", "a JSON-lines log file")
    if not path.exists():
        raise BayesHCCError(f"{path}: no such audit log.")
    if path.is_dir():
        raise BayesHCCError(f"{path} is a directory, not an audit log.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BayesHCCError(f"{path} is not an audit log (not UTF-8 text).") from None
    out = []
    for i, line in enumerate(text.splitlines()):
        if line.strip():
            try:
                out.append((i + 1, json.loads(line)))
            except json.JSONDecodeError:
                out.append((i + 1, None))
    if not out:
        raise BayesHCCError(f"{path}: the audit log has no records.")
    return out


def check_chain(entries) -> tuple[list[str], list[int]]:
    """Problems of the log's structure, by line: invalid or incomplete records, edited
    records (content vs its digest), and breaks of the chain (a record deleted before it,
    records reordered, or one inserted). Returns (problems, lines of intact records)."""
    problems, good = [], []
    hashes = {}
    expected = GENESIS
    for line, rec in entries:
        if not isinstance(rec, dict):
            problems.append(f"line {line}: not a record (invalid JSON or not an object)")
            expected = None
            continue
        missing = [k for k in REQUIRED if k not in rec]
        if missing:
            problems.append(f"line {line}: incomplete record (missing {', '.join(missing)})")
            expected = rec.get("record_sha256")
            continue
        if record_digest(rec) != rec["record_sha256"]:
            problems.append(f"line {line}: edited (its content does not match its digest)")
            expected = rec["record_sha256"]
            continue
        if expected is not None and rec["prev_sha256"] != expected:
            if rec["prev_sha256"] in hashes:
                problems.append(f"line {line}: out of order (it follows the record on line "
                                f"{hashes[rec['prev_sha256']]}, not the one before it)")
            elif rec["prev_sha256"] == GENESIS:
                problems.append(f"line {line}: a first record in the middle of the log "
                                "(records inserted or logs concatenated)")
            else:
                problems.append(f"line {line}: chain broken (the record it follows was "
                                "deleted or edited)")
        hashes[rec["record_sha256"]] = line
        expected = rec["record_sha256"]
        good.append(line)
    return problems, good


def _compare(rec: dict, new: dict) -> dict:
    diffs = {}
    for k in ("cut_date", "data_fingerprint", "n_patients", "n_events", "decision",
              "rule_decision", "diagnostics_ok"):
        if rec.get(k) != new.get(k):
            diffs[k] = (rec.get(k), new.get(k))
    old_p, new_p = rec.get("probabilities") or {}, new["probabilities"]
    if set(old_p) != set(new_p):
        diffs["probabilities (keys)"] = (sorted(old_p), sorted(new_p))
    for k in set(old_p) & set(new_p):
        if not isinstance(old_p[k], (int, float)) or not np.isclose(old_p[k], new_p[k],
                                                                    rtol=0, atol=1e-12):
            diffs[k] = (old_p[k], new_p[k])
    if not isinstance(rec.get("hr_median"), (int, float)) or not np.isclose(
            rec["hr_median"], new["hr_median"], rtol=1e-12, atol=0):
        diffs["hr_median"] = (rec.get("hr_median"), new["hr_median"])
    if (rec.get("ppos") or None) != (new.get("ppos") or None):
        diffs["ppos"] = (rec.get("ppos"), new.get("ppos"))
    return diffs


def _not_reproduced(line: int, diffs: dict) -> str:
    """The sentence for a record that does not reproduce, saying first when the trial or
    the plan given is not the one the record was made with (then every number differs for
    that reason, not because the record was edited)."""
    if "plan_hash" in diffs:
        logged, given = diffs["plan_hash"]
        return (f"line {line}: made with another plan (hash {str(logged)[:12]} in the log, "
                f"{given[:12]} given): pass the plan the look was run under")
    text = f"line {line}: does not reproduce ({', '.join(map(str, diffs))})"
    if "data_fingerprint" in diffs:
        logged, given = diffs["data_fingerprint"]
        text += (f"; the data differ (fingerprint {str(logged)[:12]} in the log, "
                 f"{str(given)[:12]} from the trial given): another data transfer, or the "
                 "same data in another time unit or layout, gives other numbers")
    return text


def _repeated_looks(by_line: dict, good: list, order: list) -> list[str]:
    """What a data monitoring committee should see of the log's confirmatory (not fast)
    records beyond their integrity: a look run more than once, and a look run after a later
    one. Legitimate reasons exist (a corrected data transfer); the log keeps every run, and
    these notes point at them. ``order``: the plan's look names, the final last."""
    runs: dict = {}
    notes, done = [], []   # done: (line, name, rank) of the confirmatory records so far
    for line in good:
        rec = by_line[line]
        if rec.get("fast"):
            continue
        name = rec.get("look_name")
        rank = order.index(name) if name in order else -1
        runs.setdefault(name, []).append(line)
        later = [(ln, n) for ln, n, r in done if r > rank]
        if later:
            notes.append(f"line {line}: look {name!r} was run after the later look "
                         f"{later[-1][1]!r} (line {later[-1][0]})")
        done.append((line, name, rank))
    return [f"look {name!r} has {len(lines)} confirmatory records (lines "
            f"{', '.join(map(str, lines))}): say which one decided, and why it was re-run"
            for name, lines in runs.items() if len(lines) > 1] + notes


@bool_flags
def verify_log(path, trial: TrialData, plan, *, record: int | None = None,
               rerun: bool = True) -> dict:
    """Check an audit log: its chain (every record, by line number), then re-run the
    records (all by default; ``record=k`` for the k-th, 0-based, negative from the end)
    and compare with what they say.

    Reports deleted, reordered, inserted, edited and incomplete records by line, and
    records that do not reproduce (a forged record with no probabilities does not).

    Returns
    -------
    dict
        ``reproduced`` (True only if the chain is intact and every re-run record
        reproduces), ``problems`` (sentences by line), ``records`` (one entry per re-run
        record: line, reproduced, differences), ``notes`` (a confirmatory look run more
        than once, or after a later look: not integrity problems, but what a committee
        should see), and for a single record its ``differences`` and ``record``.
    """
    plan = load_plan(plan)
    require_trial(trial, "verify_log")
    entries = read_log(path)
    problems, good = check_chain(entries)
    by_line = dict(entries)
    lines = [line for line, _ in entries]
    if record is not None:
        if isinstance(record, bool) or not isinstance(record, int) or \
                not -len(lines) <= record < len(lines):
            raise BayesHCCError(f"record={record!r}: the log has {len(lines)} record(s): use "
                                f"0..{len(lines) - 1}, or a negative number from the end.")
        chosen = [lines[record]]
    else:
        chosen = lines
    results = []
    for line in chosen if rerun else ():
        rec = by_line[line]
        if line not in good and not (isinstance(rec, dict) and not
                                     [k for k in REQUIRED if k not in rec]):
            results.append({"line": line, "reproduced": False,
                            "differences": {"record": "not a complete record"}})
            continue
        if rec["plan_hash"] != plan.hash:
            results.append({"line": line, "reproduced": False,
                            "differences": {"plan_hash": (rec["plan_hash"], plan.hash)}})
            continue
        asked = rec.get("ppos_requested") or {}
        flags = {"fast": rec["fast"], "ppos": asked.get("ppos", False)}
        bad = {k: (v, "True or False") for k, v in flags.items() if not isinstance(v, bool)}
        if bad:  # a look is run with True or False: this record was not written by one
            results.append({"line": line, "reproduced": False, "differences": bad})
            continue
        completion = asked.get("completion_model")
        if completion is not None:
            from bayes_hcc.multistate import IllnessDeath

            completion = IllnessDeath.from_settings(completion)
        # PPoS settings recorded at a look that computed none had no effect (a look
        # refuses them now): re-run without them
        used = _computes_ppos(plan.look(rec["look"]), flags["ppos"])
        res = interim_analysis(trial, plan, rec["look"], fast=rec["fast"],
                               random_seed=rec["seed"],
                               ppos=flags["ppos"] and not plan.look(rec["look"]).is_final,
                               ppos_method=asked.get("method") if used else None,
                               completion_model=completion if used else None)
        diffs = _compare(rec, res.record)
        results.append({"line": line, "reproduced": not diffs, "differences": diffs})
    for r in results:
        if not r["reproduced"]:
            problems.append(_not_reproduced(r["line"], r["differences"]))
    out = {"reproduced": not problems, "problems": problems, "records": results,
           "notes": _repeated_looks(by_line, good,
                                    [x.name for x in plan.looks] + [plan.final.name])}
    if record is not None:
        out["differences"] = results[0]["differences"] if results else {}
        out["record"] = by_line[chosen[0]]
    return out
