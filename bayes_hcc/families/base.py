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
import pymc as pm


class Family(ABC):
    """A survival family: what ``families.registry`` lists and everything else reads.

    Registry metadata (class attributes): ``key`` (the spec's ``family`` value and the
    registry key), ``label`` (tables and plots), ``cli_name`` (the CLI's ``--model`` choice,
    or None), ``options`` (spec option name -> type, validated by the spec), ``headline``
    (shape-type parameters shown in trace and rank plots beside the arm effect and site SD).
    """

    #: registry key: the spec's family value
    key: str = ""
    #: name stored in a fit's family settings (kept for saved fits)
    name: str = ""
    label: str = ""
    cli_name: str | None = None
    options: dict = {}
    headline: tuple[str, ...] = ()
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

    # -- written once for numpy and PyTensor: the censored likelihood is derived from these --
    # ``xp`` is numpy or pytensor.tensor; parameters have a batch shape B (numpy: (S,) draws,
    # PyTensor: ()), vector parameters B + (J,); times enter as their features ``tf``
    # (``time_features``: computed once in numpy, data in the graph, so no log of the data
    # is taken at every gradient), each (n,) or (n, J); ``eta`` is B + (n,) (or
    # broadcastable); results are B + (n,). Families add the trailing axis themselves
    # (``x[..., None]``, ``v[..., None, :]``), so one expression serves both backends.
    def time_features(self, t) -> dict:
        """What the hazard functions read of the times (numpy, once per dataset)."""
        t = np.asarray(t, float)
        with np.errstate(divide="ignore"):
            return {"t": t, "log_t": np.log(t)}

    @abstractmethod
    def log_hazard_x(self, xp, params: dict, tf: dict, eta):
        """log h(t | eta) for each patient (see the conventions above)."""

    @abstractmethod
    def cumhaz_x(self, xp, params: dict, tf: dict, eta):
        """H(t | eta) = -log S(t | eta) for each patient; 0 at t = 0."""

    # -- the PyMC graph: parameters here, likelihood from models.likelihood ------------------
    def build_params(self, priors: dict, data: dict, dims: dict, offset=0.0) -> dict:
        """Create the family's PyMC variables; return them for the likelihood."""
        raise NotImplementedError(f"{type(self).__name__} builds its own graph")

    def params_for_arm(self, params: dict, arm: int) -> dict:
        """Baseline parameters seen by one arm (differ only with a time-varying HR)."""
        return params

    def breakpoints(self) -> np.ndarray:
        """Times where the hazard is not smooth (used to split quadrature)."""
        return np.empty(0)

    @classmethod
    @abstractmethod
    def default_priors(cls) -> dict:
        """Prior objects for the arm effect and the baseline parameters, in months."""

    def unit_shift(self, params: dict, log_unit) -> dict:
        """How the time-scaled parameters move with the time unit: prior key -> shift, with
        value in the data's unit = value in months + shift.

        ``log_unit`` is ``units.log_unit_in_months(time_unit)`` (0 for months); ``params``
        holds the family's other parameters (numpy arrays or PyTensor variables: the same
        expression serves the graph and the numpy log prior). Priors are declared in months
        and moved by exactly this shift, so the posterior does not depend on the unit.
        """
        return {}

    def build(self, priors: dict, data: dict, eta, dims: dict, offset=0.0):
        """Create the family's variables and return the total log-likelihood (PyTensor).

        ``data`` holds the pm.Data containers the family asked for in ``data_arrays``;
        ``offset`` (``design.build_eta``) is what the intercept is sampled relative to
        (``centred_intercept``). By default the likelihood is ``models.likelihood``'s,
        from ``build_params`` and the time features; a family with sufficient statistics
        (the piecewise model) overrides this.
        """
        import pytensor.tensor as pt

        from bayes_hcc.models.likelihood import loglik

        params = self.build_params(priors, data, dims, offset)
        tf = {k[len(TF_PREFIX):]: v for k, v in data.items() if k.startswith(TF_PREFIX)}
        return loglik(pt, self, params, eta, time=tf, kind=data["event"]).sum()

    def data_arrays(self, time, event, unit_index, n_units: int) -> dict:
        """numpy arrays for the pm.Data containers (see ``build``): the time features and
        the event indicator. Times are > 0 here (the engine leaves patients censored at
        time 0 out of the graph: they contribute exactly 0)."""
        out = {TF_PREFIX + k: v for k, v in self.time_features(time).items()}
        out["event"] = np.asarray(event, float)
        return out

    def settings(self) -> dict:
        """JSON-able settings that reconstruct this family (:meth:`from_settings`)."""
        return {"name": self.name}

    @classmethod
    def example(cls) -> Family:
        """An instance for the contract tests (families with options choose typical ones)."""
        return cls()

    @abstractmethod
    def example_params(self) -> dict:
        """Typical parameter values, batch shape (1,): what the contract tests evaluate."""

    @classmethod
    def from_settings(cls, settings: dict) -> Family:
        """The family a fit's stored settings describe."""
        return cls()

    def describe(self) -> str:
        return self.name


#: Prefix of the data containers holding time features.
TF_PREFIX = "tf__"

#: Suffix of the sampler's coordinate for an intercept (``centred_intercept``); these
#: variables are dropped from the posterior (the intercept itself is kept).
CENTRED_SUFFIX = "__centred"


def centred_intercept(prior, name: str, offset, unit_shift=0.0, **kwargs):
    """The intercept ``name`` (a log baseline rate or log scale; also the arm effect, see
    ``design.build_eta``), sampled as ``name + offset``.

    ``unit_shift`` moves a prior declared in months to the data's unit
    (``Family.unit_shift``): b has density p(b - unit_shift), so c = b + offset has density
    p(c - offset - unit_shift) (still an exact change of coordinates).

    ``offset`` is a scalar function of other parameters that the data determine only
    together with the intercept b (the log hazard level moves with b + offset), so b and
    offset are strongly correlated in the posterior. Sampling c = b + offset instead of b
    is an exact change of coordinates: b has prior p(b), so c given the other parameters has
    density p(c - offset), the location prior moved by ``offset``, and the Jacobian of
    (c, others) -> (b, others) is 1. The posterior is the same; the sampler no longer moves
    along a ridge. Returns b (recorded under ``name``) for the family's likelihood, which is
    written in b as before. A prior without a location parameter samples b itself.
    """
    no_offset = isinstance(offset, float) and offset == 0.0
    no_shift = isinstance(unit_shift, float) and unit_shift == 0.0
    if not prior.has_location:
        if no_shift:
            return prior.pymc(name, **kwargs)
        # No location to move: sample the value in months, add the shift (Jacobian 1).
        b_months = prior.pymc(name + CENTRED_SUFFIX, **kwargs)
        return pm.Deterministic(name, b_months + unit_shift, dims=kwargs.get("dims"))
    if no_offset:
        return prior.pymc(name, shift=None if no_shift else unit_shift, **kwargs)
    c = prior.pymc(name + CENTRED_SUFFIX, shift=offset + unit_shift, **kwargs)
    return pm.Deterministic(name, c - offset, dims=kwargs.get("dims"))


#: Prior centre of a log baseline rate, per month: 0.082 per month (median about 8 months
#: at shape 1). Families move it to the data's unit (``Family.unit_shift``).
LOG_RATE_MU_MONTHS = -2.5
