"""Posterior quantities as labelled draws: xarray DataArrays with dims (chain, draw, ...)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import xarray as xr

from bayes_hcc.errors import (BayesHCCError, HorizonError, as_numbers, bool_flags, one_number,
                              whole_number)
from bayes_hcc.models.fit import Fit, load_fit
from bayes_hcc.quantities import _core
from bayes_hcc.quantities.population import arm_populations, check_estimand, posterior_params
from bayes_hcc.units import time_label

__all__ = ["hazard_ratio", "time_ratio", "survival", "survival_curve", "median_survival",
           "rmst", "Probability", "prob_superiority", "prob_time_ratio", "prob_median_gain",
           "prob_rmst_gain", "as_fit"]


def _loaded(fit):
    """A path to a saved fit, read (a single-endpoint or an illness-death fit); anything
    else as given."""
    if isinstance(fit, str) or hasattr(fit, "__fspath__"):
        return load_fit(fit)
    return fit


def _called_function() -> str:
    """The package function the user called (the outermost frame inside the package), for
    messages raised deep inside it; "this function" when there is none."""
    import os
    import sys

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    frame, name = sys._getframe(1), None
    while frame is not None and frame.f_code.co_filename.startswith(package):
        name = frame.f_code.co_name
        if name == "checked" and callable(frame.f_locals.get("func")):  # errors.bool_flags
            name = frame.f_locals["func"].__name__
        frame = frame.f_back
    package_api = sys.modules.get("bayes_hcc")  # loaded by now; not imported (no circle)
    return f"bh.{name}" if name and hasattr(package_api, name) else "this function"


def as_fit(fit) -> Fit:
    """Accept a Fit, a DataTree made by bayes_hcc, or a path to a saved fit."""
    fit = _loaded(fit)
    if isinstance(fit, Fit):
        return fit
    if isinstance(fit, xr.DataTree):
        return Fit(fit)
    if _is_illness_death(fit):
        raise BayesHCCError(f"{_called_function()} takes a single-endpoint fit; an "
                            "illness-death fit has its own: fit.summary() (transition HRs), "
                            "fit.endpoint_table() (OS, PFS, TTP medians and RMST), "
                            "fit.prob_superiority(), bh.check(fit), bh.report(fit, path), "
                            "bh.covariate_effects(fit), bh.loo(fit), bh.compare(fits), "
                            "bh.psense(fit); "
                            "survival, survival_curve, "
                            "median_survival, rmst, marginal_hazard_ratio, prob_median_gain, "
                            "prob_rmst_gain, plot_survival, ppc_km and plot_ppc take it "
                            "with endpoint=.")
    raise BayesHCCError(f"expected a Fit (from model.fit), got {type(fit).__name__}.")


def _is_illness_death(fit) -> bool:
    """An IllnessDeathFit (recognised by its curves, not imported: ``multistate`` builds on
    this module)."""
    return hasattr(fit, "state_probabilities") and hasattr(fit, "families")


#: endpoint name -> the illness-death fit's curve (TTP: progression with death removed)
#: an illness-death fit's curves by the names users give them (TTP: the progression curve,
#: death removed)
ID_CURVES = {"os": "os", "pfs": "pfs", "ttp": "progression", "progression": "progression"}
_CURVE_LABEL = {"os": "OS", "pfs": "PFS", "ttp": "TTP", "progression": "TTP"}


def _id_curve(fit, endpoint, what: str) -> str:
    if endpoint is None or str(endpoint).lower() not in ID_CURVES:
        called = _called_function()  # the function the user called, when it is bh.<name>
        raise BayesHCCError(f"{what if called == 'this function' else called}: an "
                            "illness-death fit gives OS, PFS and TTP from one "
                            f"model; pass endpoint='os', 'pfs' or 'ttp' (got {endpoint!r}).")
    return ID_CURVES[str(endpoint).lower()]


def _id_labelled(fit, values: np.ndarray, thin: int, extra_dims, extra_coords, *, name,
                 endpoint, estimand, units=None) -> xr.DataArray:
    """An illness-death fit's quantity on every ``thin``-th draw, labelled as the
    single-endpoint functions label theirs: (chain, draw, ...) when each chain keeps its
    own draws (draws divisible by thin), else one pooled chain."""
    post = fit.datatree["posterior"]
    c, d = post.sizes["chain"], post.sizes["draw"]
    values = np.asarray(values)
    shape = (c, d // thin) if d % thin == 0 else (1, values.shape[0])
    arr = values.reshape(shape + values.shape[1:])
    coords = {"chain": np.arange(shape[0]), "draw": np.arange(shape[1]), **extra_coords}
    da = xr.DataArray(arr, dims=("chain", "draw", *extra_dims), coords=coords, name=name)
    da.attrs.update(quantity=name, endpoint=endpoint.lower(), arms=list(fit.data.arms),
                    estimand=estimand, model="illness-death", thin=thin)
    if units is not None:
        da.attrs["units"] = units
    return da


def _single(fit, endpoint) -> Fit:
    """A single-endpoint fit; ``endpoint``, when given, must be the one it was fitted to."""
    fit = as_fit(fit)
    if endpoint is not None and str(endpoint).lower() != fit.endpoint:
        raise BayesHCCError(f"endpoint={endpoint!r}, but this fit is of {fit.endpoint!r}: "
                            "fit the other endpoint, or fit bh.IllnessDeath for OS, PFS and "
                            "TTP from one model.")
    return fit


def _sample_shape(fit: Fit):
    p = fit.datatree["posterior"]
    return p.sizes["chain"], p.sizes["draw"], p["chain"].values, p["draw"].values


def _labelled(fit, values, extra_dims=(), extra_coords=None, *, name, estimand=None,
              units=None) -> xr.DataArray:
    c, d, chains, draws = _sample_shape(fit)
    arr = np.asarray(values).reshape((c, d) + np.asarray(values).shape[1:])
    coords = {"chain": chains, "draw": draws, **(extra_coords or {})}
    da = xr.DataArray(arr, dims=("chain", "draw", *extra_dims), coords=coords, name=name)
    da.attrs.update(quantity=name, endpoint=fit.endpoint, arms=list(fit.arms))
    if estimand is not None:
        da.attrs["estimand"] = estimand
    if units is not None:
        da.attrs["units"] = units
    return da


def hazard_ratio(fit) -> xr.DataArray:
    """HR = hazard(treatment) / hazard(control) per draw, dims (chain, draw).

    Under proportional hazards the HR is the same for every site and covariate pattern
    (with ``arm_by_site="random"`` it is the HR at the typical site; with a time-varying
    HR it is the geometric mean over the intervals, see ``attrs["definition"]``).
    """
    fit = as_fit(fit)
    if fit.family.effect.quantity != "hazard_ratio":
        raise BayesHCCError(f"hazard_ratio: {fit.settings['model']} is not a proportional-hazards"
                            " model, so there is no single hazard ratio; use time_ratio, "
                            "median_survival, rmst or survival differences.")
    da = np.exp(fit.datatree["posterior"]["log_hr"])
    da = xr.DataArray(da.to_numpy(), dims=("chain", "draw"),
                      coords={"chain": da["chain"].values, "draw": da["draw"].values},
                      name="hazard_ratio")
    definition = f"hazard({fit.arms[1]}) / hazard({fit.arms[0]})"
    if "log_hr_dev" in fit.datatree["posterior"]:
        definition += ", geometric mean over intervals (time-varying HR model)"
    da.attrs.update(quantity="hazard_ratio", endpoint=fit.endpoint, arms=list(fit.arms),
                    definition=definition)
    return da


def time_ratio(fit) -> xr.DataArray:
    """Time ratio per draw (time scale of treatment relative to control, > 1 = longer
    survival), as the family defines it (``Family.time_ratio``): exp(log_tr) for AFT
    families, HR^(-1/k) for the Weibull; families whose arm effect is not a change of time
    scale (piecewise, Gompertz) have none."""
    fit = as_fit(fit)
    da = fit.family.time_ratio(fit.datatree["posterior"])
    if da is None:
        raise BayesHCCError(f"time_ratio: {fit.settings['model']} has no time ratio (its arm "
                            "effect does not rescale time); see the hazard ratio, medians "
                            "and RMST.")
    da = da.copy()
    da.attrs = {}
    da.attrs.update(quantity="time_ratio", endpoint=fit.endpoint, arms=list(fit.arms),
                    definition=f"time scale of {fit.arms[1]} relative to {fit.arms[0]}")
    return da.rename("time_ratio")


def effect_ratio(fit) -> xr.DataArray:
    """The ratio the family's arm effect is the log of: the hazard ratio (proportional
    hazards) or the time ratio (AFT), per draw (``Family.effect``)."""
    fit = as_fit(fit)
    return {"hazard_ratio": hazard_ratio, "time_ratio": time_ratio}[
        fit.family.effect.quantity](fit)


def prob_effect(fit, threshold: float = 1.0) -> Probability:
    """P(the arm effect favours the treatment beyond ``threshold``): P(HR < threshold) for
    proportional-hazards families, P(TR > threshold) for AFT families."""
    threshold = _check_threshold("prob_effect", threshold, ratio=True)
    fit = as_fit(fit)
    effect = fit.family.effect
    ratio = effect_ratio(fit)
    favourable = ratio < threshold if effect.favourable == "below" else ratio > threshold
    return _probability(favourable, effect.event(threshold))


def survival(fit, times, *, estimand: str = "standardized",
             endpoint: str | None = None) -> xr.DataArray:
    """Survival probability S(t) per arm at ``times``; dims (chain, draw, arm, time).

    A time beyond an arm's follow-up (its longest observed time) is the model's
    extrapolation: the coordinates ``follow_up`` (per arm) and ``beyond_follow_up`` (per arm
    and time) say so (``bh.summarize`` marks such landmarks).
    An illness-death fit (``bh.IllnessDeath``) gives OS, PFS and TTP from one model: say
    which with ``endpoint`` (its curves are computed on every 4th draw)."""
    fit = _loaded(fit)  # a saved fit of either kind
    times = np.asarray(as_numbers(times, "survival", "times", "[6, 12, 24]"), float)
    if np.any(times < 0):
        raise BayesHCCError(f"survival: times={times.tolist()} must be finite and >= 0.")
    if _is_illness_death(fit):
        check_estimand(estimand)
        key, thin = _id_curve(fit, endpoint, "survival"), 4
        ds = fit.state_probabilities(times, thin=thin, estimand=estimand)
        da = _id_labelled(fit, ds[key].values, thin, ("arm", "time"),
                          {"arm": list(fit.data.arms), "time": times}, name="survival",
                          endpoint=endpoint, estimand=estimand)
        return _beyond_follow_up(da, times, fit.follow_up_by_arm(key))
    fit = _single(fit, endpoint)
    params = posterior_params(fit)
    pops = arm_populations(fit, estimand, params)
    vals = np.stack([_core.population_survival(fit.family, p, eta, w, times)
                     for eta, w, p in pops], axis=1)
    return _by_arm_and_time(fit, vals, times, "survival", estimand)


def _by_arm_and_time(fit, vals, times, name: str, estimand: str) -> xr.DataArray:
    """A single-endpoint fit's per-draw values (S, arm, time) labelled, with where each
    time lies against each arm's follow-up."""
    da = _labelled(fit, vals, ("arm", "time"), {"arm": list(fit.arms), "time": times},
                   name=name, estimand=estimand)
    return _beyond_follow_up(da, times, fit.follow_up_by_arm())


def _beyond_follow_up(da: xr.DataArray, times, follow: dict) -> xr.DataArray:
    """Coordinates (kept by ``sel`` and netCDF) saying where the times lie against each
    arm's follow-up."""
    limit = np.array([follow[a] for a in da["arm"].values])
    return da.assign_coords(follow_up=("arm", limit), beyond_follow_up=(
        ("arm", "time"), np.asarray(times)[None, :] > limit[:, None]))


def ratio_beyond_follow_up(ratio: xr.DataArray, follow: dict) -> xr.DataArray:
    """A ratio of the two arms' curves at times (dim ``time``) with coordinate
    ``beyond_follow_up`` (per time): True beyond either arm's follow-up, where one of the
    curves is the model's extrapolation; ``attrs["follow_up"]`` the follow-up per arm."""
    limit = min(follow.values())
    ratio = ratio.assign_coords(beyond_follow_up=("time", ratio["time"].values > limit))
    ratio.attrs["follow_up"] = dict(follow)
    return ratio


def marginal_hazard_ratio(fit, times, *, estimand: str = "standardized",
                          endpoint: str | None = None) -> xr.DataArray:
    """The marginal (population-averaged) hazard ratio up to each of ``times``: the ratio of
    the arms' standardised cumulative hazards, log S_1(t) / log S_0(t), per draw; dims
    (chain, draw, time).

    With covariates or site terms the model's HR is conditional (on them); averaged over
    the trial's patients the arms' survival curves need not have proportional hazards, and
    this is the HR a reader of the two population curves sees (equal to the conditional HR
    when the model has neither). An illness-death fit gives it for the curve ``endpoint``
    names ("os", "pfs" or "ttp"; its ``os_hazard_ratio`` is the ratio of instantaneous OS
    hazards instead). Coordinate ``beyond_follow_up`` (per time) marks the times beyond
    either arm's follow-up (``attrs["follow_up"]``): there the ratio is the model's
    extrapolation."""
    fit = _loaded(fit)
    t = np.asarray(as_numbers(times, "marginal_hazard_ratio", "times", "[6, 12, 24]"), float)
    if np.any(t <= 0):  # both cumulative hazards are 0 at t = 0
        raise BayesHCCError(f"marginal_hazard_ratio: times={t.tolist()} must be > 0 (at "
                            "time 0 both arms' cumulative hazards are 0, so they have no "
                            "ratio).")
    if _is_illness_death(fit):
        with np.errstate(divide="ignore", invalid="ignore"):
            H = -np.log(survival(fit, t, estimand=estimand, endpoint=endpoint))
        follow = fit.follow_up_by_arm(_id_curve(fit, endpoint, "marginal_hazard_ratio"))
    else:
        # each arm's -log S(t) where it is accurate (S near 1, S underflowing)
        single = _single(fit, endpoint)
        pops = arm_populations(single, estimand, posterior_params(single))
        H = _by_arm_and_time(single, np.stack([
            _core.population_cumhaz(single.family, p, eta, w, t) for eta, w, p in pops],
            axis=1), t, "cumulative_hazard", estimand)
        follow = single.follow_up_by_arm()
    H = H.drop_vars(["follow_up", "beyond_follow_up"])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ratio_beyond_follow_up(H.isel(arm=1, drop=True) / H.isel(arm=0, drop=True),
                                       follow)
    ratio.name = "marginal_hazard_ratio"
    ratio.attrs.update(quantity="marginal_hazard_ratio", estimand=estimand,
                       definition="log S_treatment(t) / log S_control(t) of the standardised "
                       "survival curves")
    return ratio


def survival_curve(fit, grid=None, *, estimand: str = "standardized",
                   n: int = 100, endpoint: str | None = None) -> xr.DataArray:
    """Survival on a time grid (default: n points from 0 to the longest follow-up);
    ``endpoint`` for an illness-death fit (see :func:`survival`)."""
    if grid is None:
        n = whole_number(n, "survival_curve", "n", 2, what=" (the number of grid points), "
                         "or give the times as grid=")
    fit = _loaded(fit)  # a saved fit of either kind
    if _is_illness_death(fit):
        if grid is None:
            grid = np.linspace(0.0, float(np.max(fit.data.time)), n)
        return survival(fit, grid, estimand=estimand, endpoint=endpoint).rename(
            "survival_curve")
    fit = as_fit(fit)
    grid = np.linspace(0.0, fit.max_follow_up, n) if grid is None else grid
    return survival(fit, grid, estimand=estimand, endpoint=endpoint).rename("survival_curve")


def _with_difference(fit, per_arm, name, estimand, units):
    with np.errstate(invalid="ignore"):  # two medians never reached: inf - inf is NaN
        diff = per_arm[:, 1] - per_arm[:, 0]
    vals = np.column_stack([per_arm, diff])
    da = _labelled(fit, vals, ("arm",), {"arm": [*fit.arms, "difference"]}, name=name,
                   estimand=estimand, units=units)
    da.attrs["difference"] = f"{fit.arms[1]} - {fit.arms[0]}"
    return da


def median_survival(fit, *, estimand: str = "standardized",
                    endpoint: str | None = None) -> xr.DataArray:
    """Median survival time per arm and their difference (treatment - control).

    Dims (chain, draw, arm) with arm = [control, treatment, "difference"]. A median beyond
    the follow-up is an extrapolation of the model: the coordinate ``status`` says where
    each arm's lies against its follow-up (coordinate ``follow_up``): "reached", "upper"
    (only the upper 97.5% limit beyond) or "beyond" (``bh.summarize`` prints "not reached"
    then); the difference's is the less mature of the two. An illness-death fit needs
    ``endpoint`` ("os", "pfs" or "ttp"; its medians are computed on every 4th draw). The
    attributes are plain strings and numbers, so the result saves to netCDF as it is.
    """
    fit = _loaded(fit)  # a saved fit of either kind
    if _is_illness_death(fit):
        check_estimand(estimand)
        key, thin = _id_curve(fit, endpoint, "median_survival"), 4
        med = fit.medians(thin=thin, estimand=estimand)
        da = _id_labelled(fit, med[key].values, thin, ("arm",),
                          {"arm": list(med["arm"].values)}, name="median_survival",
                          endpoint=endpoint, estimand=estimand,
                          units=fit.data.time_unit)
        da.attrs["difference"] = f"{fit.data.arms[1]} - {fit.data.arms[0]}"
        return _median_status(da, med.attrs["follow_up"][key])
    fit = _single(fit, endpoint)
    params = posterior_params(fit)
    per_arm = np.column_stack([_core.population_median(fit.family, p, eta, w)
                               for eta, w, p in arm_populations(fit, estimand, params)])
    da = _with_difference(fit, per_arm, "median_survival", estimand, fit.time_unit)
    return _median_status(da, fit.follow_up_by_arm())


_MATURITY = ("reached", "upper", "beyond")


def horizon_status(median: float, upper: float, limit: float) -> str:
    """Where a time-valued estimate lies against the follow-up ``limit`` of its arm:
    "reached", "upper" (only the upper credible limit lies beyond) or "beyond"."""
    if not median <= limit:
        return "beyond"
    return "upper" if not upper <= limit else "reached"


def _median_status(da: xr.DataArray, follow: dict) -> xr.DataArray:
    """Coordinates ``follow_up`` and ``status`` of each arm's median (the difference: the
    less mature of the two)."""
    status = [horizon_status(float(da.sel(arm=a).median()),
                             float(_core.quantiles(da.sel(arm=a).values, 0.975)), limit)
              for a, limit in follow.items()]
    worst = max(status, key=_MATURITY.index)
    return da.assign_coords(follow_up=("arm", [*follow.values(), np.nan]),
                            status=("arm", [*status, worst]))


@bool_flags
def rmst(fit, tau: float, *, estimand: str = "standardized",
         extrapolate: bool = False, endpoint: str | None = None) -> xr.DataArray:
    """Restricted mean survival time up to ``tau`` per arm and the difference.

    Raises
    ------
    HorizonError
        If ``tau`` exceeds the follow-up of either arm (the longest observed time of the arm
        whose longest time is shorter: the usual rule for comparing RMSTs), unless
        ``extrapolate=True``.

    An illness-death fit needs ``endpoint`` ("os", "pfs" or "ttp"; computed on every 4th
    draw).
    """
    fit = _loaded(fit)  # a saved fit of either kind
    tau = one_number(tau, "rmst", "tau", "18")
    if not tau > 0:
        raise BayesHCCError(f"rmst: tau={tau} must be > 0.")
    ill = _is_illness_death(fit)
    if not ill:
        fit = _single(fit, endpoint)
    else:
        key = _id_curve(fit, endpoint, "rmst")
    if not extrapolate:
        check_rmst_horizon(fit, tau, key if ill else None)
    if ill:
        check_estimand(estimand)
        thin = 4
        res = fit.rmst(tau, thin=thin, estimand=estimand, extrapolate=True)
        da = _id_labelled(fit, res[key].values, thin, ("arm",),
                          {"arm": list(res["arm"].values)}, name="rmst",
                          endpoint=endpoint, estimand=estimand, units=fit.data.time_unit)
        da.attrs.update(tau=tau, difference=f"{fit.data.arms[1]} - {fit.data.arms[0]}")
        return da
    params = posterior_params(fit)
    per_arm = np.column_stack([_core.population_rmst(fit.family, p, eta, w, tau)
                               for eta, w, p in arm_populations(fit, estimand, params)])
    da = _with_difference(fit, per_arm, "rmst", estimand, fit.time_unit)
    da.attrs["tau"] = tau
    return da


def check_rmst_horizon(fit, tau: float, endpoint: str | None = None) -> None:
    """Refuse an RMST ``tau`` beyond :func:`rmst_horizon` (``HorizonError``)."""
    arm, limit = rmst_horizon(fit, endpoint)
    if tau > limit:
        unit = fit_unit(fit)
        what = f"{_CURVE_LABEL[endpoint]} " if endpoint and _is_illness_death(fit) else ""
        raise HorizonError(f"rmst: tau = {tau:g} {unit} exceeds the {what}follow-up of the "
                           f"data ({limit:.1f} {unit}, the longest follow-up in arm "
                           f"{arm}, the shorter of the two); pass extrapolate=True to allow "
                           "it.")


def rmst_horizon(fit, endpoint: str | None = None) -> tuple[str, float]:
    """The largest tau the data support: the longest follow-up of the arm whose longest
    follow-up is shorter (beyond it one arm's RMST is the model's extrapolation). For an
    illness-death fit, of the ``endpoint`` curve (default OS; PFS and TTP are seen only up
    to the last scans)."""
    if _is_illness_death(fit):
        fu = fit.follow_up_by_arm(endpoint or "os")
    else:
        fu = fit.follow_up_by_arm()
    arm = min(fu, key=fu.get)
    return arm, fu[arm]


@dataclass(frozen=True)
class Probability:
    """A posterior probability with its Monte Carlo standard error.

    When every draw agrees (probability 0 or 1) the draws cannot estimate their own error;
    ``mcse`` is then the bound 1 / n_draws (``mcse_is_bound`` is True): with n independent
    draws all agreeing, the probability of the other outcome is below about 3 / n at 95%
    confidence, so a table does not show a Monte Carlo error of exactly 0.
    """

    statement: str
    probability: float
    mcse: float
    estimand: str | None = None
    mcse_is_bound: bool = False
    note: str | None = None

    def __float__(self) -> float:
        return self.probability

    def __repr__(self) -> str:
        if self.mcse_is_bound:
            text = (f"P({self.statement}) = {self.probability:.4f} (MCSE < {self.mcse:.2g}: "
                    "every draw agrees)")
        else:
            text = f"P({self.statement}) = {self.probability:.4f} (MCSE {self.mcse:.4f})"
        return text + (f"; {self.note}" if self.note else "")


def _probability(indicator: xr.DataArray, statement: str, estimand=None,
                 note: str | None = None) -> Probability:
    from bayes_hcc.convergence import probability_mcse

    p, mcse, bound = probability_mcse(indicator)
    return Probability(statement, p, mcse, estimand, mcse_is_bound=bound, note=note)


def extrapolation_note(status: dict, follow_up: dict, unit: str) -> str | None:
    """What a probability about medians rests on when a median is not reached within its
    arm's follow-up (``status`` and ``follow_up`` per arm, as ``median_survival`` gives
    them): None when every median is reached."""
    parts = [f"{arm}'s median {'lies' if st == 'beyond' else 'has its upper limit'} beyond "
             f"its follow-up ({follow_up[arm]:.3g} {unit})"
             for arm, st in status.items() if st != "reached"]
    if not parts:
        return None
    return ("; ".join(parts) + ": this probability rests partly on the model's "
            "extrapolation")


def undefined_gain_note(diff, probability: float) -> str | None:
    """The draws on which a median difference is undefined (both medians infinite: the
    survival of neither arm reaches 0.5, so inf - inf), which a probability of a gain counts
    as no gain: their share and the probability were they counted as gains. None when
    there are none."""
    share = float(np.mean(np.isnan(np.asarray(diff, float))))
    if share == 0.0:
        return None
    return (f"in {share:.1%} of draws neither arm's median is finite (survival stays above "
            f"0.5): counted as no gain; counted as gains, P = {probability + share:.4f}")


def median_gain_note(status: dict, follow_up: dict, unit: str, diff,
                     probability: float) -> str | None:
    """The note of a probability of a median gain (single-endpoint and illness-death
    fits alike): medians past follow-up (``extrapolation_note``) and draws whose difference
    is undefined (``undefined_gain_note``); None when neither applies."""
    kept = [n for n in (extrapolation_note(status, follow_up, unit),
                        undefined_gain_note(diff, probability)) if n]
    return "; ".join(kept) if kept else None


def _check_threshold(name: str, threshold, *, ratio: bool) -> float:
    """A probability's threshold: a real number, and positive for a ratio (an HR or a time
    ratio is never <= 0, so P(HR < 0) = 0 would answer a mistyped question)."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise BayesHCCError(f"{name}: threshold={threshold!r} must be a number.") from None
    if not np.isfinite(value) or (ratio and value <= 0):
        what = ("a ratio > 0 (1: any benefit; 0.8: a 20% reduction; for a log HR "
                "threshold pass its exp)" if ratio else "a finite number")
        raise BayesHCCError(f"{name}: threshold={threshold!r} must be {what}.")
    return value


# One name for the threshold of every posterior probability: ``threshold``.
def prob_superiority(fit, threshold: float = 1.0) -> Probability:
    """P(HR < threshold): the probability that TACE-sorafenib lowers the hazard that much
    (``threshold`` 1: any benefit; 0.8: at least a 20% reduction)."""
    threshold = _check_threshold("prob_superiority", threshold, ratio=True)
    fit = as_fit(fit)
    if fit.family.effect.quantity != "hazard_ratio":
        raise BayesHCCError(
            f"prob_superiority: {fit.settings['model']} is not a proportional-hazards model, "
            "so there is no hazard ratio to compare with a threshold. Superiority on its own "
            "arm effect is bh.prob_effect(fit) (P(time ratio > 1)); on medians or RMST, "
            "bh.prob_median_gain(fit) or bh.prob_rmst_gain(fit, tau).")
    return _probability(hazard_ratio(fit) < threshold, f"HR < {threshold:g}")


def prob_time_ratio(fit, threshold: float = 1.0) -> Probability:
    """P(time ratio > threshold): for AFT families, the probability of longer survival."""
    threshold = _check_threshold("prob_time_ratio", threshold, ratio=True)
    return _probability(time_ratio(fit) > threshold, f"TR > {threshold:g}")


def prob_median_gain(fit, threshold: float = 0.0, *,
                     estimand: str = "standardized",
                     endpoint: str | None = None) -> Probability:
    """P(median(treatment) - median(control) > threshold), threshold in the fit's time
    unit (``endpoint`` for an illness-death fit)."""
    fit = _loaded(fit)  # a saved fit of either kind
    threshold = _check_threshold("prob_median_gain", threshold, ratio=False)
    check_estimand(estimand)
    med = median_survival(fit, estimand=estimand, endpoint=endpoint)
    arms = [a for a in med["arm"].values if a != "difference"]
    diff = med.sel(arm="difference")
    statement = f"{_prefix(fit, endpoint)}median gain > {threshold:g} {fit_unit(fit)}"
    if bool(diff.isnull().all()):
        return Probability(statement, np.nan, np.nan, estimand, note=(
            "not estimable: on every draw neither arm's median is finite (survival stays "
            "above 0.5); compare RMST or survival at a landmark instead"))
    p = _probability(diff > threshold, statement, estimand)
    return replace(p, note=median_gain_note(
        {a: str(med["status"].sel(arm=a).item()) for a in arms},
        {a: float(med["follow_up"].sel(arm=a)) for a in arms}, fit_unit(fit), diff,
        p.probability))


@bool_flags
def prob_rmst_gain(fit, tau: float, threshold: float = 0.0, *, estimand: str = "standardized",
                   extrapolate: bool = False, endpoint: str | None = None) -> Probability:
    """P(RMST(treatment) - RMST(control) > threshold), RMST up to tau (both in the fit's
    time unit; ``endpoint`` for an illness-death fit)."""
    fit = _loaded(fit)  # a saved fit of either kind
    threshold = _check_threshold("prob_rmst_gain", threshold, ratio=False)
    tau = one_number(tau, "prob_rmst_gain", "tau", "18")
    diff = rmst(fit, tau, estimand=estimand, extrapolate=extrapolate,
                endpoint=endpoint).sel(arm="difference")
    unit = fit_unit(fit)
    return _probability(diff > threshold, f"{_prefix(fit, endpoint)}RMST({time_label(tau, unit)})"
                        f" gain > {threshold:g} {unit}", estimand)


def _prefix(fit, endpoint) -> str:
    return f"{endpoint.upper()} " if _is_illness_death(fit) else ""


def fit_unit(fit) -> str:
    if _is_illness_death(fit):
        return fit.data.time_unit
    return as_fit(fit).time_unit
