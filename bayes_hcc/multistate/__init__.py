"""Multi-state models: progression and death in one model (illness-death)."""

from bayes_hcc.multistate.data import IllnessDeathData
from bayes_hcc.multistate.fit import IllnessDeathFit
from bayes_hcc.multistate.likelihood import TRANSITIONS
from bayes_hcc.multistate.model import IllnessDeath

__all__ = ["IllnessDeath", "IllnessDeathData", "IllnessDeathFit", "TRANSITIONS"]
