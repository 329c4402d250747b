"""Multi-state models: progression and death in one model (illness-death)."""

from bayes_hcc.multistate.data import IllnessDeathData
from bayes_hcc.multistate.fit import IllnessDeathFit
from bayes_hcc.multistate.likelihood import TRANSITIONS
from bayes_hcc.multistate.model import IllnessDeath
from bayes_hcc.models.fit import FIT_LOADERS
from bayes_hcc.multistate.saved import load_illness_death

FIT_LOADERS["illness_death"] = load_illness_death  # bh.load_fit reads a saved joint fit

__all__ = ["IllnessDeath", "IllnessDeathData", "IllnessDeathFit", "TRANSITIONS"]
