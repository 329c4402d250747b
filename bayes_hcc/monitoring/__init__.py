"""Interim Bayesian monitoring: a plan as data, looks at data cuts, decisions, audit log."""

from bayes_hcc.monitoring.interim import (InterimResult, decide, interim_analysis, look_date,
                                          verify_log)
from bayes_hcc.monitoring.plan import Look, MonitoringPlan, load_plan

__all__ = ["MonitoringPlan", "Look", "load_plan", "interim_analysis", "InterimResult",
           "decide", "look_date", "verify_log"]
