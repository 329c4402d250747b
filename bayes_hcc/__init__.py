"""bayes_hcc: Bayesian analysis of a randomized time-to-event trial.

Sorafenib (control) vs TACE-sorafenib (treatment) in hepatocellular carcinoma with
extrahepatic metastasis. Hazard ratios are hazard(treatment) / hazard(control); time is in
months unless said otherwise.
"""

# Imported first on purpose: arviz_base looks for jax/numpyro with lazy_loader, which walks the
# whole call stack (inspect.stack) when they are absent; that walk costs ~0.1-0.2 s when it
# happens deep inside our imports with pandas, scipy and PyMC loaded, far less here.
import arviz_base  # noqa: F401, I001

from bayes_hcc import datasets
from bayes_hcc.borrowing import (BorrowingDesign, History, MAPPrior, borrowing_design,
                                 borrowing_report, map_prior, read_history)
from bayes_hcc.data import (Endpoint, TrialData, read_adtte, read_trial, reconstruct_ipd,
                            reconstruct_trial, reconstruction_fidelity, to_adtte, write_adtte)
from bayes_hcc.diagnostics import (THRESHOLDS, DiagnosticReport, check, compare, loo, ppc_km,
                                   prior_predictive, psense)
from bayes_hcc.errors import (ADaMError, BayesHCCError, ConvergenceWarning, DataWarning,
                              HorizonError, ModelError, SpecError, TrialDataError)
from bayes_hcc.io import (disposition, fit_footnotes, look_table, plot_hazard_ratio, plot_ppc,
                          plot_psense, plot_rank, plot_sensitivity, plot_site_effects,
                          plot_borrowing_design, plot_map_prior, plot_reconstruction,
                          plot_subgroups, plot_state_probabilities, plot_os_hazard_ratio,
                          plot_survival, plot_time_varying_hr, plot_trace, publication_tables,
                          report, write_table)
from bayes_hcc.models import (DEFAULT_PRIORS, MODELS, Fit, Prior, SurvivalModel, build,
                              fit_spec, load_fit)
from bayes_hcc.models.laplace import LaplaceResult, laplace
from bayes_hcc.quantities import (ESTIMANDS, Probability, covariate_effects, effect_ratio,
                                  frequentist, hazard_ratio, marginal_hazard_ratio,
                                  median_survival, prob_effect, prob_median_gain,
                                  prob_rmst_gain, prob_superiority, prob_time_ratio, rmst,
                                  summarize, survival, survival_curve, time_ratio)
from bayes_hcc.monitoring import (DEFAULT_SCENARIOS, DesignResult, InterimResult, Look,
                                  MonitoringPlan, PPoSResult,
                                  Prediction, decide, interim_analysis, load_plan, look_date,
                                  predict_event_counts, predict_event_dates,
                                  predictive_probability, simulate_design, verify_log)
from bayes_hcc.multistate import IllnessDeath, IllnessDeathData, IllnessDeathFit
from bayes_hcc.sensitivity import GridSpec, load_grid, run_sensitivity, subgroups
from bayes_hcc.spec import ModelSpec, apply_overrides, dump_spec, load_spec
from bayes_hcc.simulate import (FamilyHazard, PiecewiseHazard, SimulationTruth,
                                WeibullHazard, simulate_trial)
from bayes_hcc.validation import (CoverageResult, SBCResult, agreement, coverage_study, sbc,
                                  validation_report)

__version__ = "0.1.0"

# One model class per registered family (bh.WeibullPH, bh.PiecewiseExponential,
# bh.GompertzPH, bh.MSplinePH, ...): made from the family registry, see models.base.
globals().update(MODELS)

__all__ = [
    "TrialData", "Endpoint", "read_trial", "read_adtte", "to_adtte", "write_adtte",
    "reconstruct_ipd", "reconstruct_trial", "reconstruction_fidelity",
    "History", "read_history", "map_prior", "MAPPrior", "borrowing_report",
    "borrowing_design", "BorrowingDesign",
    "IllnessDeath", "IllnessDeathData", "IllnessDeathFit",
    "simulate_trial", "SimulationTruth", "WeibullHazard", "PiecewiseHazard", "FamilyHazard",
    "datasets",
    "SurvivalModel", *MODELS, "Fit", "load_fit", "Prior", "DEFAULT_PRIORS", "build",
    "fit_spec",
    "laplace",
    "LaplaceResult",
    "prob_time_ratio", "prob_effect", "effect_ratio", "ModelSpec", "load_spec", "dump_spec",
    "apply_overrides", "hazard_ratio", "time_ratio", "survival", "survival_curve",
    "median_survival", "rmst", "Probability", "prob_superiority", "prob_median_gain",
    "prob_rmst_gain", "summarize", "frequentist", "covariate_effects",
    "marginal_hazard_ratio", "ESTIMANDS", "check", "DiagnosticReport", "THRESHOLDS",
    "loo", "compare", "psense", "ppc_km", "prior_predictive", "report", "plot_survival",
    "plot_hazard_ratio", "plot_site_effects", "plot_trace", "plot_rank", "plot_ppc",
    "plot_psense", "plot_time_varying_hr", "plot_sensitivity", "plot_subgroups",
    "plot_reconstruction", "plot_map_prior", "plot_borrowing_design",
    "plot_state_probabilities", "plot_os_hazard_ratio",
    "subgroups", "write_table",
    "fit_footnotes",
    "disposition", "look_table", "publication_tables", "run_sensitivity", "load_grid",
    "GridSpec", "sbc", "SBCResult", "coverage_study", "CoverageResult", "agreement",
    "validation_report", "MonitoringPlan", "Look", "load_plan", "interim_analysis",
    "DEFAULT_SCENARIOS",
    "InterimResult", "decide", "look_date", "verify_log", "predictive_probability",
    "PPoSResult", "predict_event_dates", "predict_event_counts", "Prediction",
    "simulate_design", "DesignResult",
    "BayesHCCError", "TrialDataError", "ADaMError", "SpecError", "ModelError", "HorizonError",
    "DataWarning", "ConvergenceWarning", "__version__",
]
