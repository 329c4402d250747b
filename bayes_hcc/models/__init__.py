"""Bayesian survival models (one model class per registered family) and their fits."""

from bayes_hcc.models.base import DEFAULT_PRIORS, MODELS, SurvivalModel
from bayes_hcc.models.fit import Fit, load_fit
from bayes_hcc.models.from_spec import build, fit_spec
from bayes_hcc.spec.priors import Prior

globals().update(MODELS)  # bh.models.WeibullPH, bh.models.GompertzPH, ...

__all__ = ["SurvivalModel", "MODELS", "Fit", "load_fit", "Prior", "DEFAULT_PRIORS", "build",
           "fit_spec", *MODELS]
