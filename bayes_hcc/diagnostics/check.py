"""bh.check: convergence diagnostics with thresholds, explanations and remedies."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_hcc.convergence import (EXPLORATORY_THRESHOLDS, THRESHOLDS, probability_row,
                                   sampler_rows, thresholds_for)
from bayes_hcc.errors import ConvergenceWarning, bool_flags
from bayes_hcc.errors import warn as warn_user
from bayes_hcc.quantities.core import as_fit, effect_ratio, median_survival

__all__ = ["check", "DiagnosticReport", "THRESHOLDS", "EXPLORATORY_THRESHOLDS"]

REMEDIES = {
    "r_hat": "chains disagree: run longer (more tune and draws), check for multimodality, or "
             "reparametrise (site_parametrization='centered' when sites are large).",
    "ess_bulk": "too few effective draws for the centre of the posterior: increase draws "
                "(and tune); strong posterior correlations may need another parametrisation.",
    "ess_tail": "too few effective draws in the tails, so credible intervals are unreliable: "
                "increase draws.",
    "divergences": "the sampler hit regions it cannot integrate (usually a funnel in the site "
                   "effects): raise target_accept (e.g. 0.99), use a tighter site-SD prior, or "
                   "switch site_parametrization.",
    "max_treedepth": "trajectories were cut at the maximum tree depth: the posterior is badly "
                     "scaled or strongly correlated; reparametrise or accept slower sampling.",
    "ebfmi": "low E-BFMI: the momentum resampling explores the energy poorly, typical of heavy "
             "tails or funnels; reparametrise the site effects or tighten priors.",
    "mcse": "Monte Carlo error of a headline quantity is large next to its uncertainty: "
            "increase draws.",
}


@dataclass
class DiagnosticReport:
    """Result of :func:`check`: ``.ok``, ``.table`` and an explanation per failed check."""

    table: pd.DataFrame
    explanations: list[str] = field(default_factory=list)
    #: "confirmatory" (the documented thresholds) or "exploratory" (a fast-mode fit, held
    #: to the exploratory thresholds: a quick look, not for inference)
    mode: str = "confirmatory"

    @property
    def ok(self) -> bool:
        return bool(self.table["ok"].all())

    @property
    def verdict(self) -> str:
        """"OK", "OK (exploratory: fast mode, not for inference)" or "FAILED (...)"."""
        if not self.ok:
            return f"FAILED ({', '.join(self.failed)})"
        return "OK" if self.mode == "confirmatory" else \
            "OK (exploratory: fast mode, not for inference)"

    @property
    def failed(self) -> list[str]:
        return list(self.table.index[~self.table["ok"]])

    def __repr__(self) -> str:
        head = f"DiagnosticReport: {self.verdict}"
        if self.mode == "exploratory" and not self.ok:
            head += " at the exploratory thresholds of fast mode"
        body = self.table.to_string()
        expl = "".join(f"\n- {e}" for e in self.explanations)
        return f"{head}\n{body}{expl}"

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        verdict = self.verdict
        items = "".join(f"<li>{e}</li>" for e in self.explanations)
        return (f"<p><b style='color:{colour}'>Diagnostics: {verdict}</b></p>"
                f"{self.table.to_html()}<ul>{items}</ul>")


@bool_flags
def check(fit, *, warn: bool = True) -> DiagnosticReport:
    """Convergence diagnostics of a fit (arviz-stats for the numbers).

    Checks, with thresholds in :data:`THRESHOLDS` (:data:`EXPLORATORY_THRESHOLDS` for a fit
    made in fast mode, which the report says): rank-normalised R-hat, bulk and tail ESS
    of every sampled variable (a value that cannot be computed fails), divergent
    transitions, maximum tree depth hits, E-BFMI per chain, and the MCSE of the headline
    quantities (log HR, medians per arm, P(HR < 1); for an illness-death fit each
    transition's log HR and P(HR < 1)). The sampler rows are computed by the same code as
    the fit-time warning (``bayes_hcc.convergence``).

    Warns
    -----
    ConvergenceWarning
        When any check fails (``warn=True``), naming the checks and remedies.
    """
    import arviz_stats as azs

    if hasattr(fit, "state_probabilities"):  # an illness-death fit: its three log HRs
        limits, mode = thresholds_for(fit.datatree)
        rows = sampler_rows(fit.datatree, limits)
        log_hr = fit.datatree["posterior"]["log_hr"]
        heads = {f"log HR {t}": log_hr.sel(transition=t) for t in log_hr["transition"].values}
        probs = {f"HR {t} < 1": (log_hr.sel(transition=t) < 0).astype(float)
                 for t in log_hr["transition"].values}
    else:
        fit = as_fit(fit)
        limits, mode = thresholds_for(fit.datatree)
        rows = sampler_rows(fit.datatree, limits)
        # Headline quantities.
        effect = fit.family.effect
        ratio = effect_ratio(fit)
        heads = {f"log {effect.ratio}": np.log(ratio)}
        med = median_survival(fit)
        for a in fit.arms:
            heads[f"median {a}"] = med.sel(arm=a)
        probs = {effect.event(): effect.favours_treatment(np.log(ratio))}
    ratios = {}
    for k, da in heads.items():
        sd = float(da.std())
        r = float(azs.mcse(da, method="mean")) / sd if sd > 0 else 0.0
        ratios[k] = r if np.isfinite(r) else np.inf  # not computable: fails
    k = max(ratios, key=ratios.get)
    rows["mcse"] = (ratios[k], f"MCSE/SD <= {limits['mcse_over_sd']}",
                    bool(np.isfinite(ratios[k]) and ratios[k] <= limits["mcse_over_sd"]), k)
    # the headline probability with the largest Monte Carlo error
    rows["mcse_prob"] = max((probability_row(ind, what, limits) for what, ind in probs.items()),
                            key=lambda row: row[0] if np.isfinite(row[0]) else np.inf)
    table = pd.DataFrame.from_dict(rows, orient="index",
                                   columns=["value", "threshold", "ok", "where"])
    table["ok"] = table["ok"].astype(bool)
    table.index.name = "check"
    explanations = []
    for name, row in table[~table["ok"]].iterrows():
        remedy = REMEDIES["mcse" if name.startswith("mcse") else name]
        explanations.append(f"{name} = {row['value']:.4g} ({row['where']}), needs "
                            f"{row['threshold']}: {remedy}")
    report = DiagnosticReport(table, explanations, mode)
    if warn and not report.ok:
        at = " at the exploratory thresholds of fast mode" if mode == "exploratory" else ""
        warn_user(f"{fit!r}: diagnostics failed{at} ({', '.join(report.failed)}). "
                      + " ".join(explanations), ConvergenceWarning)
    return report
