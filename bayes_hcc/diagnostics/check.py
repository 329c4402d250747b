"""bh.check: convergence diagnostics with thresholds, explanations and remedies."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayes_hcc.errors import ConvergenceWarning
from bayes_hcc.quantities.core import (as_fit, hazard_ratio, median_survival, prob_superiority,
                                       prob_time_ratio, time_ratio)

__all__ = ["check", "DiagnosticReport", "THRESHOLDS"]

#: Documented thresholds. R-hat and ESS follow Vehtari et al. (2021, Bayesian Analysis
#: 16:667): rank-normalised R-hat <= 1.01 and bulk/tail ESS >= 100 per chain (400 for 4
#: chains). E-BFMI below 0.3 signals poor exploration of the energy distribution (Betancourt
#: 2016). Headline MCSE: at most 10% of the posterior SD (the Monte Carlo error is then small
#: next to the posterior uncertainty), and at most 0.01 for P(HR < 1).
THRESHOLDS = {"r_hat": 1.01, "ess_per_chain": 100, "ebfmi": 0.3, "mcse_over_sd": 0.1,
              "mcse_prob": 0.01, "divergences": 0, "max_treedepth_hits": 0}

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

    @property
    def ok(self) -> bool:
        return bool(self.table["ok"].all())

    @property
    def failed(self) -> list[str]:
        return list(self.table.index[~self.table["ok"]])

    def __repr__(self) -> str:
        head = "DiagnosticReport: OK" if self.ok else \
            f"DiagnosticReport: FAILED ({', '.join(self.failed)})"
        body = self.table.to_string()
        expl = "".join(f"\n- {e}" for e in self.explanations)
        return f"{head}\n{body}{expl}"

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.ok else "#cf222e"
        verdict = "OK" if self.ok else "FAILED"
        items = "".join(f"<li>{e}</li>" for e in self.explanations)
        return (f"<p><b style='color:{colour}'>Diagnostics: {verdict}</b></p>"
                f"{self.table.to_html()}<ul>{items}</ul>")


def _stat(sample_stats, *names):
    for n in names:
        if n in sample_stats:
            return sample_stats[n]
    return None


def check(fit, *, warn: bool = True) -> DiagnosticReport:
    """Convergence diagnostics of a fit (arviz-stats for the numbers).

    Checks, with thresholds in :data:`THRESHOLDS`: rank-normalised R-hat, bulk and tail ESS
    of every parameter, divergent transitions, maximum tree depth hits, E-BFMI per chain,
    and the MCSE of the headline quantities (log HR, medians per arm, P(HR < 1)).

    Warns
    -----
    ConvergenceWarning
        When any check fails (``warn=True``), naming the checks and remedies.
    """
    import arviz_stats as azs

    fit = as_fit(fit)
    dt = fit.datatree
    post = dt["posterior"].to_dataset()
    names = [n for n in post.data_vars if n not in ("hazard_ratio", "time_ratio")]
    n_chains = post.sizes["chain"]
    ss = dt["sample_stats"].to_dataset()
    rows = {}
    ess_min = THRESHOLDS["ess_per_chain"] * n_chains

    def worst(ds, fn):
        vals = {n: float(fn(ds[n])) for n in names}
        k = max(vals, key=vals.get) if fn is np.nanmax else min(vals, key=vals.get)
        return vals[k], k

    if n_chains > 1:
        rhat = azs.rhat(post[names])
        val, where = worst(rhat, np.nanmax)
        val = val if np.isfinite(val) else np.inf
        rows["r_hat"] = (val, f"<= {THRESHOLDS['r_hat']}", val <= THRESHOLDS["r_hat"], where)
    else:
        rows["r_hat"] = (np.nan, "needs >= 2 chains", False, "one chain: cannot assess")
    for method in ("bulk", "tail"):
        ess = azs.ess(post[names], method=method)
        val, where = worst(ess, np.nanmin)
        rows[f"ess_{method}"] = (val, f">= {ess_min}", val >= ess_min, where)
    div = _stat(ss, "diverging")
    n_div = int(div.sum()) if div is not None else 0
    rows["divergences"] = (n_div, "== 0", n_div == 0, f"of {div.size if div is not None else 0}")
    depth = _stat(ss, "maxdepth_reached", "reached_max_treedepth")
    n_depth = int(depth.sum()) if depth is not None else 0
    rows["max_treedepth"] = (n_depth, "== 0", n_depth == 0, "transitions")
    if "energy" in ss and ss.sizes.get("draw", 0) > 2:
        bfmi = azs.bfmi(dt)["energy"].to_numpy()  # DataTree node sample_stats: one per chain
        rows["ebfmi"] = (float(bfmi.min()), f">= {THRESHOLDS['ebfmi']}",
                         bool(bfmi.min() >= THRESHOLDS["ebfmi"]), "lowest chain")
    # Headline quantities.
    ph = fit.family.proportional_hazards
    heads = {"log HR": np.log(hazard_ratio(fit))} if ph else \
        {"log TR": np.log(time_ratio(fit))}
    med = median_survival(fit)
    for a in fit.arms:
        heads[f"median {a}"] = med.sel(arm=a)
    ratios = {}
    for k, da in heads.items():
        sd = float(da.std())
        ratios[k] = float(azs.mcse(da, method="mean")) / sd if sd > 0 else 0.0
    k = max(ratios, key=ratios.get)
    rows["mcse"] = (ratios[k], f"MCSE/SD <= {THRESHOLDS['mcse_over_sd']}",
                    ratios[k] <= THRESHOLDS["mcse_over_sd"], k)
    p = prob_superiority(fit) if ph else prob_time_ratio(fit)
    rows["mcse_prob"] = (p.mcse, f"<= {THRESHOLDS['mcse_prob']}",
                         p.mcse <= THRESHOLDS["mcse_prob"], f"P({p.statement})")
    table = pd.DataFrame.from_dict(rows, orient="index",
                                   columns=["value", "threshold", "ok", "where"])
    table["ok"] = table["ok"].astype(bool)
    table.index.name = "check"
    explanations = []
    for name, row in table[~table["ok"]].iterrows():
        remedy = REMEDIES["mcse" if name.startswith("mcse") else name]
        explanations.append(f"{name} = {row['value']:.4g} ({row['where']}), needs "
                            f"{row['threshold']}: {remedy}")
    report = DiagnosticReport(table, explanations)
    if warn and not report.ok:
        warnings.warn(f"{fit!r}: diagnostics failed ({', '.join(report.failed)}). "
                      + " ".join(explanations), ConvergenceWarning, stacklevel=2)
    return report
