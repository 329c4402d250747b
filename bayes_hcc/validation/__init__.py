"""Statistical validation: simulation-based calibration, coverage, agreement with lifelines
and statsmodels, and the validation report (``make validate``)."""

from bayes_hcc.validation.agreement import agreement
from bayes_hcc.validation.coverage import CoverageResult, coverage_study, interval_bias_study
from bayes_hcc.validation.report import validation_report
from bayes_hcc.validation.sbc import SBCResult, sbc, simulate_from_prior

__all__ = ["sbc", "SBCResult", "simulate_from_prior", "coverage_study", "CoverageResult",
           "agreement", "validation_report", "interval_bias_study"]
