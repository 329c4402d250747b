"""Diagnostics and model checking: convergence, LOO, prior sensitivity, predictive checks."""

from bayes_hcc.diagnostics.check import THRESHOLDS, DiagnosticReport, check
from bayes_hcc.diagnostics.model_check import compare, loo, ppc_km, prior_predictive, psense

__all__ = ["check", "DiagnosticReport", "THRESHOLDS", "loo", "compare", "psense", "ppc_km",
           "prior_predictive"]
