"""An interim look: cut the data, fit the plan's model, apply the rules, log the record."""

from __future__ import annotations

import datetime as _dt
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_hcc.data.trial import TrialData
from bayes_hcc.diagnostics import check
from bayes_hcc.errors import BayesHCCError, TrialDataError
from bayes_hcc.models.from_spec import fit_spec
from bayes_hcc.monitoring.plan import Look, MonitoringPlan, load_plan
from bayes_hcc.quantities.core import prob_superiority

__all__ = ["look_date", "decide", "interim_analysis", "InterimResult", "verify_log"]

DECISIONS = ("stop for efficacy", "stop for futility", "continue", "success", "no success",
             "no decision: exploratory fit (fast mode)", "no decision: diagnostics failed")


def look_date(trial: TrialData, look: Look) -> pd.Timestamp:
    """Calendar date of a look: its date, or the day the ``events``-th OS event was known."""
    if look.date is not None:
        return pd.Timestamp(look.date)
    when = trial.events_by_date("os")
    if len(when) < look.events:
        cut = "unknown" if trial.cut_date is None else trial.cut_date.date()
        raise TrialDataError(f"look {look.name!r} is at {look.events} OS events, but the data "
                             f"hold {len(when)} (cut {cut}); the look has not happened yet.")
    return when.iloc[look.events - 1].normalize()


def decide(fit, look: Look, ppos=None) -> tuple[str, dict]:
    """Posterior probabilities the look's rules need, and the decision they give.

    ``ppos`` (a :class:`PPoSResult`) is needed when the look has a ``futility_ppos`` rule.
    """
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
    did not pass ``bh.check``: the probabilities are then shown but not acted on."""

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

    def ppos(self, **kwargs):
        """Predictive probability of success from this look (see
        :func:`bayes_hcc.predictive_probability`; keyword arguments are passed on)."""
        from bayes_hcc.monitoring.predict import predictive_probability

        return predictive_probability(self.data, self.plan, fit=self.fit, **kwargs)

    def predict_dates(self, events=None, **kwargs) -> pd.DataFrame:
        """Predicted calendar dates of the later looks' and the final analysis's event
        counts (see :func:`bayes_hcc.predict_event_dates`)."""
        from bayes_hcc.monitoring.predict import predict_event_dates

        if events is None:
            events = [x.events for x in (*self.plan.looks, self.plan.final)
                      if x.events is not None and x.events > self.n_events]
            if not events:
                raise BayesHCCError("no later look is defined by an event count.")
        return predict_event_dates(self.data, self.fit, events,
                                   prediction=kwargs.pop("prediction", self.plan.prediction),
                                   **kwargs)

    def __repr__(self) -> str:
        p = self.probabilities["P(HR < 1)"]
        return (f"InterimResult({self.look.name}: cut {self.cut_date.date()}, "
                f"{self.n_patients} patients, {self.n_events} OS events, P(HR < 1) = {p:.3f}; "
                f"decision: {self.decision})")

    def summary_lines(self) -> list[str]:
        """What the console shows: HR with its 95% credible interval, patients and events
        by arm, every posterior probability with its MCSE, PPoS when computed."""
        rec = self.record
        lo, hi = rec["hr_95"]
        arms = ", ".join(f"{a} {rec['events_by_arm'][a]}/{rec['patients_by_arm'][a]}"
                         for a in rec["events_by_arm"])
        lines = [f"HR {rec['hr_median']:.3f} (95% CrI {lo:.3f}-{hi:.3f})",
                 f"OS events / patients by arm: {arms}"]
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
        return lines


def _record(res: InterimResult, trial_cut: TrialData, plan: MonitoringPlan, seed: int,
            look_id, fast: bool) -> dict:
    from bayes_hcc.models._engine import _versions

    hr = np.exp(res.fit.posterior["log_hr"].to_numpy().ravel())
    ep = trial_cut.endpoint("os")
    ppos = res.ppos_result
    return {
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "look": look_id, "look_name": res.look.name, "cut_date": str(res.cut_date.date()),
        "data_fingerprint": trial_cut.fingerprint, "plan": plan.name,
        "plan_hash": plan.hash, "spec_hash": plan.spec.hash, "seed": int(seed), "fast": fast,
        "package_versions": _versions(), "n_patients": res.n_patients,
        "n_events": res.n_events, "decision": res.decision,
        "rule_decision": res.rule_decision, "diagnostics_ok": bool(res.diagnostics.ok),
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


def append_record(path, record: dict) -> None:
    """Append one JSON line; earlier records are never rewritten."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


def interim_analysis(trial: TrialData, plan, look=1, *, fast: bool = False,
                     random_seed: int | None = None, log=None, ppos: bool = False,
                     ppos_method: str | None = None, progress: bool = False) -> InterimResult:
    """Run one look of a monitoring plan.

    Parameters
    ----------
    trial : TrialData
        The data as of today (dates layout: a look needs calendar dates).
    plan : MonitoringPlan or path to ``models/monitoring.toml``
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

    Returns
    -------
    InterimResult
        Probabilities with MCSEs, the decision and the diagnostics report. A fit that fails
        ``bh.check`` gives ``decision = "no decision: diagnostics failed"`` (the rule's
        verdict is kept in ``rule_decision`` for the record).
    """
    plan = load_plan(plan)
    lk = plan.look(look)
    date = look_date(trial, lk)
    cut = trial.cut(date, warn=False)
    cut.data_warnings([plan.spec.endpoint])  # only the endpoint this plan analyses
    seed = int(dict(plan.spec.sampler)["seed"] if random_seed is None else random_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the verdict below reports convergence
        fit = fit_spec(plan.spec, cut, fast=fast, check=False, random_seed=seed)
        diag = check(fit, warn=False)
    pp = None
    if lk.futility_ppos is not None or (ppos and not lk.is_final):
        from bayes_hcc.monitoring.predict import predictive_probability

        pp = predictive_probability(cut, plan, fit=fit, random_seed=seed, method=ppos_method,
                                    progress=progress)
    rule, probs = decide(fit, lk, pp)
    ep = cut.endpoint("os")
    res = InterimResult(look=lk, cut_date=date, n_patients=cut.n_patients,
                        n_events=int(ep.n_events), probabilities=probs,
                        decision=DECISIONS[-1] if not diag.ok else DECISIONS[-2] if fast
                        else rule, rule_decision=rule,
                        diagnostics=diag, fit=fit, plan_hash=plan.hash, data=cut, plan=plan,
                        ppos_result=pp)
    res.record = _record(res, cut, plan, seed, look, fast)
    res.record["ppos_requested"] = {"ppos": bool(ppos), "method": ppos_method}
    if log is not None:
        append_record(log, res.record)
    return res


def read_log(path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        raise BayesHCCError(f"{path}: no such audit log.")
    out = []
    for i, line in enumerate(path.read_text().splitlines()):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                raise BayesHCCError(f"{path}: line {i + 1} is not a valid record.") from None
    return out


def verify_log(path, trial: TrialData, plan, *, record: int = -1) -> dict:
    """Re-run one audit-log record (default: the last) and confirm it reproduces: same
    data fingerprint at the cut, same plan hash, same decision and posterior numbers.

    Returns a dict with ``reproduced`` (bool) and the fields that differ.
    """
    plan = load_plan(plan)
    rec = read_log(path)[record]
    if rec["plan_hash"] != plan.hash:
        return {"reproduced": False, "differences": {"plan_hash": (rec["plan_hash"],
                                                                   plan.hash)}}
    asked = rec.get("ppos_requested") or {}
    res = interim_analysis(trial, plan, rec["look"], fast=rec["fast"], random_seed=rec["seed"],
                           ppos=asked.get("ppos", False), ppos_method=asked.get("method"))
    new = res.record
    diffs = {}
    for k in ("cut_date", "data_fingerprint", "n_patients", "n_events", "decision",
              "rule_decision", "diagnostics_ok"):
        if rec[k] != new[k]:
            diffs[k] = (rec[k], new[k])
    for k, v in rec["probabilities"].items():
        if not np.isclose(v, new["probabilities"].get(k, np.nan), rtol=0, atol=1e-12):
            diffs[k] = (v, new["probabilities"].get(k))
    if not np.isclose(rec["hr_median"], new["hr_median"], rtol=1e-12, atol=0):
        diffs["hr_median"] = (rec["hr_median"], new["hr_median"])
    return {"reproduced": not diffs, "differences": diffs, "record": rec}
