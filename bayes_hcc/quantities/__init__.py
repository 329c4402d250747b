"""Posterior quantities: pure functions of the posterior draws, as xarray DataArrays."""

from bayes_hcc.quantities.core import (Probability, effect_ratio, hazard_ratio,
                                       marginal_hazard_ratio, median_survival, prob_effect,
                                       prob_median_gain, prob_rmst_gain, prob_superiority,
                                       prob_time_ratio, rmst, survival, survival_curve,
                                       time_ratio)
from bayes_hcc.quantities.population import ESTIMANDS
from bayes_hcc.quantities.summary import covariate_effects, frequentist, summarize

__all__ = ["hazard_ratio", "time_ratio", "effect_ratio", "survival", "survival_curve",
           "median_survival", "rmst", "Probability", "prob_superiority", "prob_time_ratio",
           "prob_effect", "prob_median_gain", "prob_rmst_gain", "summarize", "frequentist",
           "covariate_effects", "marginal_hazard_ratio", "ESTIMANDS"]
