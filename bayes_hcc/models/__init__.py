"""Bayesian survival models (piecewise exponential, Weibull PH) and their fits."""

from bayes_hcc.models.base import (DEFAULT_PRIORS, ExponentialPH, LogLogisticAFT, LogNormalAFT,
                                   PiecewiseExponential, SurvivalModel, WeibullPH)
from bayes_hcc.models.fit import Fit, load_fit
from bayes_hcc.models.from_spec import build, fit_spec
from bayes_hcc.spec.priors import Prior

__all__ = ["SurvivalModel", "PiecewiseExponential", "WeibullPH", "Fit", "load_fit", "Prior",
           "DEFAULT_PRIORS", "build", "fit_spec", "ExponentialPH", "LogNormalAFT", "LogLogisticAFT"]
