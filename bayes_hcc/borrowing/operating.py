"""Operating characteristics of borrowing: the same monitoring plan run with and without a
(robust) MAP prior on simulated trials whose true control median ranges from well below to
well above the historical one (``simulate_design``: same seeds, so the two analyses see the
same trials). Type I error (HR 1) and power at every control median, bias of the posterior
median log HR and the posterior weight of the robust component, each with its Monte Carlo
95% interval.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bayes_hcc.errors import BayesHCCError, SpecError, as_numbers, bool_flags

__all__ = ["borrowing_design", "BorrowingDesign", "historical_median"]

TYPE1_POWER = "P(efficacy): type I error (HR 1) / power"
BIAS = "bias of posterior median log HR"
ROBUST = "posterior weight of the robust component"


@dataclass
class BorrowingDesign:
    """Two :class:`~bayes_hcc.monitoring.operating.DesignResult` on the same trials: with
    the MAP prior (``borrowing``) and without (``no_borrowing``)."""

    borrowing: object
    no_borrowing: object
    scenarios: pd.DataFrame  # name -> control median, HR
    prior: dict

    def table(self) -> pd.DataFrame:
        """One row per (scenario, measure, analysis): estimate, Monte Carlo 95% interval,
        with the scenario's true control median and HR as columns."""
        parts = []
        for label, res in (("borrowing", self.borrowing), ("no borrowing", self.no_borrowing)):
            t = res.table().reset_index()
            t.insert(2, "analysis", label)
            parts.append(t)
        t = pd.concat(parts, ignore_index=True)
        t = t.merge(self.scenarios, left_on="scenario", right_index=True)
        return t.set_index(["scenario", "measure", "analysis"]).sort_index(
            level=["scenario"], sort_remaining=False)

    def type_i_error(self) -> pd.DataFrame:
        """Type I error (declaring efficacy when HR = 1) at every true control median,
        with and without borrowing, with Monte Carlo intervals."""
        t = self.table().reset_index()
        t = t[(t["measure"] == TYPE1_POWER) & (t["hr"] == 1.0)]
        return t.pivot_table(index="control_median", columns="analysis",
                             values=["estimate", "mc_lower", "mc_upper"])

    def __repr__(self) -> str:
        return (f"BorrowingDesign({len(self.scenarios)} scenarios x "
                f"{self.borrowing.settings.get('n_trials')} trials, with and without "
                f"{self.prior.get('method', 'MAP')} borrowing)")


@bool_flags
def borrowing_design(plan, prior, *, control_medians=(4.0, 6.5, 9.0, 13.0, 20.0),
                     hrs=(1.0, 0.7), n_trials: int = 200, random_seed: int = 2024,
                     base: dict | None = None, refit: dict | None = None,
                     workers: int | None = None, client=None, progress: bool = True
                     ) -> BorrowingDesign:
    """Run ``plan`` on simulated trials with and without the MAP ``prior`` on the control
    log hazard (the plan's analysis spec must be a model the prior applies to: an
    exponential_ph spec, or for a per-interval prior a piecewise_exponential spec on its
    cuts with baseline_prior = "independent"), for every true control median in
    ``control_medians`` (months; constant hazards, ``os_shape`` 1 unless ``base`` says
    otherwise) and every HR in ``hrs``. Other arguments as for
    :func:`~bayes_hcc.simulate_design`."""
    from bayes_hcc.borrowing.map_prior import MAPPrior
    from bayes_hcc.monitoring.operating import DESIGN_BASE, simulate_design
    from bayes_hcc.monitoring.plan import load_plan
    from bayes_hcc.spec.model_spec import apply_overrides

    if not isinstance(prior, MAPPrior):
        raise BayesHCCError("borrowing_design: pass a MAPPrior (bh.map_prior(...).robustify()), "
                            f"got {type(prior).__name__}.")
    # one number is one scenario value (a scalar raised "not iterable"; text was split)
    control_medians = as_numbers(control_medians, "borrowing_design", "control_medians",
                                 "(4.0, 6.5, 9.0)")
    hrs = as_numbers(hrs, "borrowing_design", "hrs", "(1.0, 0.7)")
    if min(control_medians) <= 0 or min(hrs) <= 0:
        raise BayesHCCError(f"borrowing_design: control medians {list(control_medians)} and "
                            f"hazard ratios {list(hrs)} must be > 0.")
    plan = load_plan(plan)
    family = plan.spec.family
    targets = [p for f, p in prior.applies_to if f == family]
    if not targets:
        need = ("a piecewise_exponential analysis spec on the prior's cuts"
                if prior.per_interval else "an exponential_ph (or weibull_ph with "
                "prior_reference_time) analysis spec")
        raise SpecError(f"borrowing_design: the plan's analysis is a {family} model; this "
                        f"MAP prior needs {need}.")
    problem = prior.check_model(dict(plan.spec.options), family)
    if problem:
        raise SpecError(f"borrowing_design: the plan's analysis: {problem}")
    if plan.spec.endpoint != "os":
        raise SpecError("borrowing_design: the simulated scenarios vary the control OS "
                        f"median; the plan analyses {plan.spec.endpoint}.")
    borrowed = replace(plan, spec=apply_overrides(
        plan.spec, {f"priors.{targets[0]}": prior.mixture.to_dict()},
        name=f"{plan.spec.name} + MAP prior"))
    base = {**DESIGN_BASE, "os_shape": 1.0, **(base or {})}
    scenarios, rows = {}, {}
    for m in control_medians:
        for hr in hrs:
            name = f"control median {m:g}, HR {hr:g}"
            scenarios[name] = {"os_median": float(m), "hr_os": float(hr)}
            rows[name] = {"control_median": float(m), "hr": float(hr)}
    kw = dict(n_trials=n_trials, random_seed=random_seed, refit=refit, workers=workers,
              client=client, progress=progress, base=base)
    with_map = simulate_design(borrowed, scenarios, **kw)
    without = simulate_design(plan, scenarios, **kw)
    return BorrowingDesign(with_map, without, pd.DataFrame.from_dict(rows, orient="index"),
                           prior.to_dict())


def historical_median(prior: dict) -> float:
    """The constant-hazard median (months) at the MAP prior's median log hazard."""
    from bayes_hcc.borrowing.map_prior import mixture_quantile
    from bayes_hcc.spec.priors import Prior

    mix = Prior.from_dict(prior["prior"])
    return float(np.log(2) / np.exp(mixture_quantile(mix, 0.5)[0]))

