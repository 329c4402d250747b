"""What a survival family declares: parameters with their priors, its log hazard and
cumulative hazard (written once for numpy and PyTensor), and how its arm effect reads.

Everything else is derived here, generically: the censored log-likelihood
(``models.likelihood``), survival, cumulative hazard and log hazard on numpy draws, event
times by inversion (the family's closed form when it gives one, bisection otherwise), prior
draws, and the log prior. No code outside a family's own file asks which family it is.

Conventions: ``params`` maps parameter name -> array with a leading sample axis (S, ...);
a linear predictor ``eta`` is (S, G) (G groups of patients, or one value per patient).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from dataclasses import dataclass

import numpy as np
import pymc as pm

from bayes_hcc.data.trial import INTERVAL, LEFT
from bayes_hcc.errors import ModelError


@dataclass(frozen=True)
class ArmEffect:
    """How a family's arm coefficient reads: the posterior variable, the ratio it is the
    log of, and which side of 1 favours the treatment arm."""

    #: posterior variable (the arm coefficient in eta)
    name: str
    #: short name of exp(coefficient), e.g. "HR"
    ratio: str
    #: the quantity function reporting it (``bh.hazard_ratio`` / ``bh.time_ratio``)
    quantity: str
    #: "below" (a ratio below 1 favours the treatment) or "above"
    favourable: str
    #: thresholds whose posterior probabilities a summary reports
    thresholds: tuple[float, ...] = (1.0,)

    def favours_treatment(self, log_ratio, threshold: float = 1.0):
        """Boolean draws: the ratio on the treatment's side of ``threshold``."""
        log_t = np.log(threshold)
        return log_ratio < log_t if self.favourable == "below" else log_ratio > log_t

    def event(self, threshold: float = 1.0) -> str:
        """The favourable event as text, e.g. "HR < 1"."""
        return f"{self.ratio} {'<' if self.favourable == 'below' else '>'} {threshold:g}"


#: Proportional hazards: the arm multiplies the hazard; a ratio below 1 favours treatment.
HAZARD_RATIO = ArmEffect("log_hr", "HR", "hazard_ratio", "below", (1.0, 0.8))
#: Accelerated failure time: the arm stretches time; a ratio above 1 favours treatment.
TIME_RATIO = ArmEffect("log_tr", "TR", "time_ratio", "above")


def _per_draw(params: dict) -> dict:
    """Parameters (S, ...) -> (S, 1, ...): a batch (S, 1) that broadcasts against eta (S, G)."""
    return {k: np.expand_dims(np.asarray(v, float), 1) for k, v in params.items()}


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
    #: the model class made from this family (``bh.<model_name>``), its docstring, and the
    #: options its constructor takes positionally
    model_name: str = ""
    model_doc: str = ""
    positional: tuple[str, ...] = ()
    #: spec option name -> kind ("cuts" and "time" are times: moved between units)
    options: dict = {}
    #: groups of options of which a spec gives at most one (``cuts`` or ``n_intervals``)
    exclusive_options: tuple[tuple[str, ...], ...] = ()
    headline: tuple[str, ...] = ()
    #: posterior variables holding the baseline parameters
    params: tuple[str, ...] = ()
    #: the arm coefficient: a log hazard ratio (default) or a log time ratio
    effect: ArmEffect = HAZARD_RATIO
    #: the graph reads per-cell sufficient statistics instead of patients when the model
    #: has no patient-level covariates (``data_arrays`` then receives cell indices)
    aggregates: bool = False
    #: the hazard is constant between its ``breakpoints`` (piecewise exponential,
    #: exponential): every integrand of the illness-death likelihood is then exp(linear)
    #: between them, which its Gauss-Legendre pieces integrate without grading towards an
    #: end (``multistate.likelihood``); a hazard that may be singular at 0 (Weibull) needs it
    constant_between_breakpoints: bool = False
    #: dims of the baseline parameters that are vectors (e.g. {"log_baseline_hazard":
    #: ("interval",)}); scalars are not listed. A stratified baseline gives each of them a
    #: stratum axis (``stratum_params``).
    param_dims: dict = {}

    @property
    def arm_effect(self) -> str:
        """Posterior name of the arm coefficient (``effect.name``)."""
        return self.effect.name

    # -- numpy functions of draws, derived from cumhaz_x / log_hazard_x ---------------------
    def _at(self, fn, params, t, eta):
        """fn(t | eta) for t (T,) shared by all draws -> (S, G, T), or for t (S, G), one
        time per draw and group -> (S, G). ``eta`` (S, G), default 0 (G = 1)."""
        first = np.asarray(next(iter(params.values())))
        eta = np.zeros((first.shape[0], 1)) if eta is None else np.asarray(eta, float)
        t = np.asarray(t, float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if t.ndim == 1:
                return fn(np, _per_draw(params), self.time_features(t), eta[..., None])
            shape = np.broadcast_shapes(t.shape, eta.shape)
            # features of the distinct times only (t (S, 1) against eta (S, G): S, not S x G)
            tf = {k: np.asarray(v).reshape(t.shape + (1,) + np.shape(v)[1:])
                  for k, v in self.time_features(t.ravel()).items()}
            return np.broadcast_to(fn(np, _per_draw(params), tf, eta[..., None])[..., 0],
                                   shape)

    def cumhaz_at(self, params: dict, t, eta=None) -> np.ndarray:
        """H(t | eta): (S, G, T) for times (T,), (S, G) for one time per draw and group."""
        return self._at(self.cumhaz_x, params, t, eta)

    def log_hazard_at(self, params: dict, t, eta=None) -> np.ndarray:
        """log h(t | eta), shaped as :meth:`cumhaz_at`."""
        return self._at(self.log_hazard_x, params, t, eta)

    def cumhaz(self, params: dict, t) -> np.ndarray:
        """Baseline (eta = 0) cumulative hazard at times (T,): (S, T)."""
        return self.cumhaz_at(params, t)[:, 0, :]

    def log_hazard(self, params: dict, t) -> np.ndarray:
        """Baseline log hazard at times (T,): (S, T)."""
        return self.log_hazard_at(params, t)[:, 0, :]

    def time_at_cumhaz(self, params: dict, h, eta) -> np.ndarray:
        """t with H(t | eta) = h, for h and eta (S, G): event times by inversion (h ~ Exp(1)),
        medians (h = log 2). inf where H never reaches h. Bisection on log t; families with
        a closed form override this."""
        h, eta = np.broadcast_arrays(np.asarray(h, float), np.asarray(eta, float))
        lo, hi = np.full(h.shape, -10.0), np.full(h.shape, 2.0)
        for _ in range(40):  # raise the upper end until H(e^hi) >= h (up to e^162)
            short = self.cumhaz_at(params, np.exp(hi), eta) < h
            if not short.any():
                break
            hi = np.where(short, hi + 4.0, hi)
        for _ in range(40):  # lower the lower end until H(e^lo) <= h
            high = self.cumhaz_at(params, np.exp(lo), eta) > h
            if not high.any():
                break
            lo = np.where(high, lo - 10.0, lo)
        for _ in range(80):  # 2^-80 of the bracket: below double precision of log t
            mid = 0.5 * (lo + hi)
            below = self.cumhaz_at(params, np.exp(mid), eta) < h
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        never = self.cumhaz_at(params, np.exp(hi), eta) < h  # H levels off below h
        return np.where(never, np.inf, np.where(h <= 0, 0.0, np.exp(0.5 * (lo + hi))))

    def draw_prior(self, priors: dict, size: int, rng) -> dict:
        """Draws of the baseline parameters from their priors (as declared: in months),
        one array (size, ...) per parameter."""
        return {k: np.asarray(priors[k].scipy().rvs(size=size, random_state=rng), float)
                for k in self.params}

    def draw_effect_deviations(self, size: int, rng) -> dict:
        """Draws of the arm effect's deviations by time from their prior (a time-varying
        HR's ``log_hr_dev``, read by ``params_for_arm``), one array (size, ...) each; {} for
        a family whose arm effect is constant."""
        return {}

    def log_prior(self, post: dict, priors: dict, shifts: dict) -> dict:
        """Log prior density of the family's sampled baseline variables, one (S,) array per
        variable; ``shifts`` (from ``unit_shift``) move the draws back to months."""
        out = {}
        for k in self.params:
            v = priors[k].logpdf(post[k] - shifts.get(k, 0.0))
            out[k] = v.reshape(v.shape[0], -1).sum(axis=1)
        return out

    def time_ratio(self, post):
        """The time ratio (treatment / control time scale) from posterior draws (an xarray
        Dataset), or None where the family has none."""
        return None

    def derived(self, post) -> dict:
        """Variables derived from the posterior draws (an xarray Dataset) that a fit keeps
        beside them: name -> DataArray."""
        return {}

    def coords(self) -> dict:
        """Labels of the family's own dimensions (e.g. the intervals): dim -> labels."""
        return {}

    def constant_data(self) -> dict:
        """Settings kept beside the draws: name -> (dim, values)."""
        return {}

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
        # A hook, not a stub: families either declare their parameters here (the default
        # ``build`` uses them) or override ``build`` (the piecewise family: sufficient
        # statistics). A new family that does neither learns it here.
        raise NotImplementedError(f"{type(self).__name__}: define build_params (the family's "
                                  "PyMC parameters) or override build.")

    # -- stratified baselines: each stratum's parameters ------------------------------------
    def stratum_value(self, xp, name: str, base, dev):
        """A baseline parameter of one stratum from the typical stratum's value ``base``
        and the stratum's deviation ``dev`` (same shape). Additive by default; a family
        whose parameter is constrained (a simplex) overrides this."""
        return base + dev

    def stratum_params(self, xp, params: dict, devs: dict, log_unit) -> dict:
        """The baseline parameters of one stratum: ``devs`` (name -> deviation) applied to
        the typical stratum's ``params`` (numpy draws or PyTensor variables).

        The deviations are defined on the months scale the priors are declared on, so a
        stratified fit does not depend on the time unit: a time-scaled parameter (its
        ``unit_shift``) moves by its own stratum's shift, e.g. a Weibull stratum's log scale
        by its own shape times the log unit."""
        base_shift = self.unit_shift(params, log_unit)
        out = dict(params)
        for k, d in devs.items():
            if k not in base_shift:
                out[k] = self.stratum_value(xp, k, params[k], d)
        new_shift = self.unit_shift(out, log_unit)
        for k, d in devs.items():
            if k in base_shift:
                out[k] = params[k] + d + (new_shift[k] - base_shift[k])
        return out

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

    def check_prior(self, name: str, prior) -> str | None:
        """What is wrong with ``prior`` for parameter ``name`` (None: nothing). Priors with
        one distribution per element of a vector parameter fit only where the family says
        so (the piecewise baseline's independent intervals)."""
        if getattr(prior, "dist", "") == "IntervalMixture":
            return (f"priors[{name!r}] gives one distribution per interval; only the "
                    "piecewise-exponential baseline with baseline_prior='independent' takes "
                    "that.")
        return None

    def unit_shift(self, params: dict, log_unit) -> dict:
        """How the time-scaled parameters move with the time unit: prior key -> shift, with
        value in the data's unit = value in months + shift.

        ``log_unit`` is ``units.log_unit_in_months(time_unit)`` (0 for months); ``params``
        holds the family's other parameters (numpy arrays or PyTensor variables: the same
        expression serves the graph and the numpy log prior). Priors are declared in months
        and moved by exactly this shift, so the posterior does not depend on the unit.
        """
        return {}

    def build(self, priors: dict, data: dict, eta, dims: dict, offset=0.0, strata=None):
        """Create the family's variables and return the total log-likelihood (PyTensor).

        ``data`` holds the pm.Data containers the family asked for in ``data_arrays``;
        ``offset`` (``design.build_eta``) is what the intercept is sampled relative to
        (``centred_intercept``). By default the likelihood is ``models.likelihood``'s,
        from ``build_params`` and the time features; a family with sufficient statistics
        (the piecewise model) overrides this.
        """
        import pytensor.tensor as pt

        from bayes_hcc.models.likelihood import loglik

        from bayes_hcc.models.likelihood import interval_loglik

        params = self.build_params(priors, data, dims, offset)
        tf = {k[len(TF_PREFIX):]: v for k, v in data.items() if k.startswith(TF_PREFIX)}
        lower = {k[len(TFL_PREFIX):]: v for k, v in data.items() if k.startswith(TFL_PREFIX)}
        upper = {k[len(TFU_PREFIX):]: v for k, v in data.items() if k.startswith(TFU_PREFIX)}
        interval = "n_plain" in data
        n = data["n_plain"] if interval else None
        # interval-censored data: patients ordered exact/right first (data_arrays), each
        # group evaluated on its own slice, the cheap terms for the first
        eta_plain, eta_ic = (eta[:n], eta[n:]) if interval else (eta, None)

        def total(p, rows=None, ic_rows=None):
            def take(x, r):
                return x if r is None else x[r]

            out = loglik(pt, self, p, take(eta_plain, rows),
                         time={k: take(v, rows) for k, v in tf.items()},
                         kind=take(data["event"], rows)).sum()
            if interval:
                out = out + interval_loglik(
                    pt, self, p, take(eta_ic, ic_rows),
                    lower={k: take(v, ic_rows) for k, v in lower.items()},
                    upper={k: take(v, ic_rows) for k, v in upper.items()},
                    has_lower=take(data["ic_has_lower"], ic_rows)).sum()
            return out

        if strata is None:
            return total(params)
        # a baseline per stratum: each stratum's patients with its own parameters
        return sum(total(p, data[f"{STRATUM_ROWS}{s}"],
                         data.get(f"{STRATUM_IC_ROWS}{s}"))
                   for s, p in enumerate(strata(params)))

    def data_arrays(self, time, event, unit_index, n_units: int, upper=None) -> dict:
        """numpy arrays for the pm.Data containers (see ``build``): the time features and
        the event indicator. Times are > 0 here (the engine leaves patients censored at
        time 0 out of the graph: they contribute exactly 0).

        With ``upper`` (some event interval-censored), ``event`` holds the observation kinds
        (``Endpoint.kind``), ``time`` the lower bounds, and the patients come exact and
        right-censored first (``graph.prepare`` orders them): ``tf__``/``event`` describe
        those (``n_plain``), ``tfl__``/``tfu__`` the lower and upper bounds of the
        interval-censored ones. A left-censored patient's lower bound (0) is replaced by its
        upper bound, so that no gradient meets log 0, and masked out (``ic_has_lower``)."""
        time, event = np.asarray(time, float), np.asarray(event, float)
        if upper is None:
            out = {TF_PREFIX + k: v for k, v in self.time_features(time).items()}
            out["event"] = event
            return out
        bounded = np.isin(event, (INTERVAL, LEFT))
        n = int((~bounded).sum())
        if bounded[:n].any() or not bounded[n:].all():
            raise ValueError("data_arrays: interval-censored patients must come last.")
        upper = np.asarray(upper, float)[n:]
        lower = np.where(event[n:] == LEFT, upper, time[n:])
        out = {TF_PREFIX + k: v for k, v in self.time_features(time[:n]).items()}
        out.update({TFL_PREFIX + k: v for k, v in self.time_features(lower).items()})
        out.update({TFU_PREFIX + k: v for k, v in self.time_features(upper).items()})
        out.update(event=event[:n], n_plain=np.asarray(n, dtype=np.int64),
                   ic_has_lower=(event[n:] == INTERVAL).astype(float))
        return out

    def settings(self) -> dict:
        """JSON-able settings that reconstruct this family (:meth:`from_settings`)."""
        return {"name": self.name}

    #: settings that reach the graph only as data (cut points, knots): left out of the
    #: compile-cache key, so refits on new data reuse the compiled sampler
    data_settings: tuple[str, ...] = ()

    def structure(self) -> dict:
        """What fixes the compiled graph: the settings without ``data_settings``, with the
        sizes those imply (``sizes``)."""
        return {**{k: v for k, v in self.settings().items() if k not in self.data_settings},
                **self.sizes()}

    def sizes(self) -> dict:
        """Dimension sizes the graph depends on (e.g. the number of intervals)."""
        return {}

    @classmethod
    def for_data(cls, time, event, time_unit: str = "months", **options) -> Family:
        """The family for these data and options (``time`` is None for a summary of the
        priors without data). Families whose layout depends on the data (quantile cut
        points, knots) override this."""
        return cls(**options)

    @classmethod
    def check_options(cls, options: dict) -> None:
        """Checks across options (types are the spec's); raise ModelError. Families with
        checks of their own call this first."""
        for group in cls.exclusive_options:
            if sum(k in options for k in group) > 1:
                raise ModelError(f"give {' or '.join(group)}, not both.")

    @classmethod
    def unused_options(cls, options: dict) -> dict[str, str]:
        """Options given that the other options leave unused: {name: why, and the way
        out}. A spec refuses them (a setting without effect must not look like one); a grid
        variant drops those it inherited from its base spec (``apply_overrides``)."""
        return {}

    @classmethod
    def calibration_options(cls) -> dict:
        """Options giving a layout independent of the data (simulation-based calibration
        draws data from the prior, so cut points or knots cannot come from the data)."""
        return {}

    @classmethod
    def depends_on_data(cls, options: dict) -> bool:
        """Whether ``for_data`` chooses the layout from the data for these options."""
        return False

    @classmethod
    def events_needed(cls, options: dict) -> tuple[int, str]:
        """The fewest events of the endpoint ``for_data`` can lay these options out on, and
        why (with the option to change): a plan's looks are checked against it before
        anything is fitted. Every fit needs one event; families whose layout needs no more
        keep this."""
        return 1, "there is nothing to estimate without an event"

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


#: Data containers of a stratified graph: the rows (exact/right-censored patients) and
#: the interval-censored rows of stratum s are ``f"{STRATUM_ROWS}{s}"`` and
#: ``f"{STRATUM_IC_ROWS}{s}"``; aggregated units carry their stratum in ``stratum_idx``.
STRATUM_ROWS, STRATUM_IC_ROWS = "stratum_rows__", "stratum_ic_rows__"

#: Prefix of the data containers holding time features (of the upper bounds: TFU_PREFIX).
TF_PREFIX = "tf__"
TFL_PREFIX, TFU_PREFIX = "tfl__", "tfu__"

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


def log_hr_prior():
    """The default prior of a log hazard ratio: Normal(0, 1), HR within 0.14-7.1 (95%)."""
    from bayes_hcc.spec.priors import Prior

    return Prior("Normal", mu=0.0, sigma=1.0)


def log_rate_prior():
    """The default prior of a log baseline rate per month: Normal(-2.5, 2), a monthly hazard of
    0.08 (median ~8 months at a constant hazard), +-2 SD covering medians from days to
    decades."""
    from bayes_hcc.spec.priors import Prior

    return Prior("Normal", mu=LOG_RATE_MU_MONTHS, sigma=2.0)
