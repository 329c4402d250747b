"""What a survival family declares: parameters, numpy hazard functions and a PyMC builder.

Survival, median, RMST and the patient-level log-likelihood are derived generically from
``cumhaz`` / ``log_hazard`` / ``inverse_cumhaz``; a test checks the numpy functions and the
PyMC graph give the same log-likelihood.

Conventions: ``params`` maps parameter name -> array with a leading sample axis (S, ...);
times ``t`` are 1-d arrays (T,); results are (S, T). The linear predictor multiplies the
baseline cumulative hazard (proportional hazards): H(t | eta) = exp(eta) * H0(t).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Family(ABC):
    """A baseline hazard family under proportional hazards."""

    #: registry key and label
    name: str = ""
    #: posterior variables holding the baseline parameters
    params: tuple[str, ...] = ()
    proportional_hazards: bool = True
    #: posterior name of the arm coefficient in eta: log hazard ratio (PH) or log time
    #: ratio (AFT families)
    arm_effect: str = "log_hr"

    @abstractmethod
    def cumhaz(self, params: dict, t: np.ndarray) -> np.ndarray:
        """Baseline cumulative hazard H0(t), shape (S, T)."""

    @abstractmethod
    def cumhaz_each(self, params: dict, t: np.ndarray) -> np.ndarray:
        """H0 at one time per draw: t of shape (S,) -> (S,)."""

    @abstractmethod
    def log_hazard(self, params: dict, t: np.ndarray) -> np.ndarray:
        """Baseline log hazard log h0(t), shape (S, T)."""

    @abstractmethod
    def inverse_cumhaz(self, params: dict, h: np.ndarray) -> np.ndarray:
        """t such that H0(t) = h, for h of shape (S, G); returns (S, G)."""

    def params_for_arm(self, params: dict, arm: int) -> dict:
        """Baseline parameters seen by one arm (differ only with a time-varying HR)."""
        return params

    def breakpoints(self) -> np.ndarray:
        """Times where the hazard is not smooth (used to split quadrature)."""
        return np.empty(0)

    @abstractmethod
    def default_priors(self, time_unit: str) -> dict:
        """Prior objects for the baseline parameters."""

    @abstractmethod
    def build(self, priors: dict, data: dict, eta, dims: dict):
        """Create the baseline variables and return the total log-likelihood (PyTensor).

        ``data`` holds the pm.Data containers the family asked for in ``data_arrays``.
        """

    @abstractmethod
    def data_arrays(self, time, event, unit_index, n_units: int) -> dict:
        """numpy arrays for the pm.Data containers (see ``build``)."""

    def settings(self) -> dict:
        """JSON-able settings that reconstruct this family."""
        return {"name": self.name}

    def describe(self) -> str:
        return self.name


def log_baseline_mu(time_unit: str) -> float:
    """Prior centre of a log baseline rate: 0.082 per month (median about 8 months at
    shape 1), moved to the data's time unit."""
    from bayes_hcc.data._build import DAYS_PER_UNIT

    return -2.5 + float(np.log(DAYS_PER_UNIT["months"] / DAYS_PER_UNIT[time_unit]))
