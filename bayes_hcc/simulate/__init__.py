"""Simulated trials with a known truth."""

from bayes_hcc.simulate.hazards import FamilyHazard, PiecewiseHazard, WeibullHazard
from bayes_hcc.simulate.trial import SimulationTruth, simulate_trial

__all__ = ["simulate_trial", "SimulationTruth", "WeibullHazard", "PiecewiseHazard",
           "FamilyHazard"]
