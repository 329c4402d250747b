"""Trial data: validated TrialData, readers for patient tables and CDISC ADaM ADTTE."""

from bayes_hcc.data.adam import read_adtte, to_adtte, write_adtte
from bayes_hcc.data.read import read_trial
from bayes_hcc.data.reconstruct import (reconstruct_ipd, reconstruct_trial,
                                        reconstruction_fidelity)
from bayes_hcc.data.trial import Endpoint, TrialData

__all__ = ["TrialData", "Endpoint", "read_trial", "read_adtte", "to_adtte", "write_adtte",
           "reconstruct_ipd", "reconstruct_trial", "reconstruction_fidelity"]
