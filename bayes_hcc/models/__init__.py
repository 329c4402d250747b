"""Bayesian survival models (piecewise exponential, Weibull PH) and their fits."""

from bayes_hcc.models.base import DEFAULT_PRIORS, PiecewiseExponential, SurvivalModel, WeibullPH
from bayes_hcc.models.fit import Fit, load_fit
from bayes_hcc.models.priors import Prior

__all__ = ["SurvivalModel", "PiecewiseExponential", "WeibullPH", "Fit", "load_fit", "Prior",
           "DEFAULT_PRIORS"]
