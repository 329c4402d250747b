"""Interim Bayesian monitoring: a plan as data, looks at data cuts, decisions, audit log,
predictions of the trial's future (PPoS, event timing)."""

from bayes_hcc.monitoring.interim import (InterimResult, decide, interim_analysis, look_date,
                                          verify_log)
from bayes_hcc.monitoring.operating import (DEFAULT_SCENARIOS, DESIGN_BASE, DesignResult,
                                            simulate_design)
from bayes_hcc.monitoring.plan import Look, MonitoringPlan, load_plan
from bayes_hcc.monitoring.predict import (PPoSResult, Prediction, predict_event_counts,
                                          predict_event_dates, predictive_probability)

__all__ = ["MonitoringPlan", "Look", "load_plan", "interim_analysis", "InterimResult",
           "decide", "look_date", "verify_log", "predictive_probability", "PPoSResult",
           "predict_event_dates", "predict_event_counts", "Prediction", "simulate_design",
           "DesignResult", "DEFAULT_SCENARIOS", "DESIGN_BASE"]
