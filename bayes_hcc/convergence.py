"""The numeric core of the convergence checks, shared by the fit-time warning
(``Fit.warn_if_unreliable``) and ``bh.check``, so the two can never disagree.

Rules: every sampled variable is checked (the sampler's standard-normal deviations such as
``site_z`` included; deterministic functions of them are not); a diagnostic that cannot be
computed (NaN: too few draws, one chain) is a failure, never a pass; elements that are
exactly constant across all draws (for example a zero-sum element fixed by the others) carry
no convergence information and are left out.

Two sets of thresholds: confirmatory (:data:`THRESHOLDS`, the default for every fit) and
exploratory (:data:`EXPLORATORY_THRESHOLDS`, for fits made in fast mode, which are labelled
as such and are not for inference).
"""

from __future__ import annotations


import numpy as np
import xarray as xr

from bayes_hcc.errors import ConvergenceWarning, warn

__all__ = ["THRESHOLDS", "EXPLORATORY_THRESHOLDS", "MIN_DRAWS_PER_CHAIN", "thresholds_for",
           "sampler_rows", "probability_row", "probability_mcse", "checked_names",
           "warn_convergence"]

#: Documented thresholds. R-hat and ESS follow Vehtari et al. (2021, Bayesian Analysis
#: 16:667): rank-normalised R-hat <= 1.01 and bulk/tail ESS >= 100 per chain (400 for 4
#: chains). E-BFMI below 0.3 signals poor exploration of the energy distribution (Betancourt
#: 2016). Headline MCSE: at most 10% of the posterior SD (the Monte Carlo error is then small
#: next to the posterior uncertainty), and at most 0.01 for P(HR < 1).
THRESHOLDS = {"r_hat": 1.01, "ess_per_chain": 100, "ebfmi": 0.3, "mcse_over_sd": 0.1,
              "mcse_prob": 0.01, "divergences": 0, "max_treedepth_hits": 0}

#: Fast mode (a quick look: 4 chains x 300 draws): chains must agree to R-hat <= 1.05 (the
#: classic rule of Gelman et al., BDA3, for short runs, where the rank-normalised R-hat's own
#: sampling variability exceeds 0.01), at least 50 effective draws per chain, MCSE <= 20% of
#: the posterior SD and <= 0.03 for probabilities. Divergences, tree-depth hits and E-BFMI
#: are held to the same rule as confirmatory fits: they signal a sampler problem that more
#: draws do not cure. Measured on the example trial's 16-variant sensitivity grid, 2 seeds:
#: docs/guide/diagnostics.md.
EXPLORATORY_THRESHOLDS = {**THRESHOLDS, "r_hat": 1.05, "ess_per_chain": 25,
                          "mcse_over_sd": 0.2, "mcse_prob": 0.03}

#: Fewer draws per chain than this cannot be assessed (R-hat and ESS are then unreliable).
MIN_DRAWS_PER_CHAIN = 20

#: Derived summaries with their own rows elsewhere (exp of a checked variable).
_SKIP = ("hazard_ratio", "time_ratio")


def thresholds_for(datatree) -> tuple[dict, str]:
    """The thresholds a fit is held to and their name: exploratory for fits made in fast
    mode (``attrs["analysis_mode"] == "exploratory"``), confirmatory otherwise."""
    mode = datatree.attrs.get("analysis_mode", "confirmatory")
    return (EXPLORATORY_THRESHOLDS if mode == "exploratory" else THRESHOLDS), mode


def checked_names(posterior, attrs=None) -> list[str]:
    """The variables the sampler moved (``attrs["sampled_variables"]``, recorded at fit
    time; an intercept's sampler coordinate under the intercept's name); for a fit without
    that record, every posterior variable but the exp-transformed summaries. Deterministic
    expansions (site effects = SD x deviation, the random walk's levels) are functions of
    these and are not checked separately: that tripled the cost for no new information."""
    import json

    recorded = (attrs or {}).get("sampled_variables")
    if recorded:
        names = [n for n in json.loads(recorded) if n in posterior.data_vars]
        if names:
            return names
    return [str(n) for n in posterior.data_vars if n not in _SKIP]


def _informative(da) -> np.ndarray:
    """Mask over the non-sample dims: elements that vary across draws (or hold a
    non-finite draw, which must fail, not be skipped as constant)."""
    arr = da.to_numpy()
    flat = arr.reshape(arr.shape[0] * arr.shape[1], -1)
    return ~np.isfinite(flat).all(axis=0) | (np.ptp(flat, axis=0) > 0)


def _worst(stats, posterior, names, largest: bool) -> tuple[float, str]:
    """Worst value over every informative element; NaN counts as the worst possible."""
    worst_val, where = (-np.inf if largest else np.inf), ""
    for n in names:
        if not np.isfinite(posterior[n].to_numpy()).all():
            return np.nan, f"{n} (non-finite draws)"
        vals = np.asarray(stats[n].to_numpy(), float).ravel()
        mask = _informative(posterior[n])
        vals = vals[mask] if vals.size == mask.size else vals
        if vals.size == 0:
            continue
        if np.isnan(vals).any():
            return np.nan, n
        v = float(vals.max() if largest else vals.min())
        if (v > worst_val) if largest else (v < worst_val):
            worst_val, where = v, n
    return worst_val, where


def sampler_rows(datatree, thresholds: dict) -> dict:
    """Rows (value, threshold text, ok, where) for R-hat, bulk and tail ESS, divergences,
    tree-depth hits and E-BFMI of every sampled variable."""
    import arviz_stats as azs

    post = datatree["posterior"].to_dataset()
    names = checked_names(post, datatree.attrs)
    n_chains, n_draws = post.sizes["chain"], post.sizes["draw"]
    # a tree without sampler statistics (made by hand, or trimmed) cannot show that the
    # sampler behaved: its rows fail, where they read as 0 divergences (or a KeyError)
    ss = (datatree["sample_stats"].to_dataset() if "sample_stats" in datatree.children
          else xr.Dataset())
    unrecorded = "not recorded in the fit's sample_stats: cannot assess"
    rows = {}
    ess_min = thresholds["ess_per_chain"] * n_chains
    if n_draws < MIN_DRAWS_PER_CHAIN:
        why = f"{n_draws} draws per chain: too few to assess (need >= {MIN_DRAWS_PER_CHAIN})"
        rows["r_hat"] = (np.nan, f"<= {thresholds['r_hat']}", False, why)
        rows["ess_bulk"] = (np.nan, f">= {ess_min}", False, why)
        rows["ess_tail"] = (np.nan, f">= {ess_min}", False, why)
    else:
        if n_chains > 1:
            val, where = _worst(azs.rhat(post[names]), post, names, largest=True)
            ok = bool(np.isfinite(val) and val <= thresholds["r_hat"])
            rows["r_hat"] = (val, f"<= {thresholds['r_hat']}", ok,
                             where if np.isfinite(val) else f"{where}: not computable")
        else:
            rows["r_hat"] = (np.nan, ">= 2 chains", False, "one chain: cannot assess")
        for method in ("bulk", "tail"):
            val, where = _worst(azs.ess(post[names], method=method), post, names,
                                largest=False)
            ok = bool(np.isfinite(val) and val >= ess_min)
            rows[f"ess_{method}"] = (val, f">= {ess_min}", ok,
                                     where if np.isfinite(val) else f"{where}: not computable")
    if "diverging" in ss:
        n_div = int(ss["diverging"].sum())
        rows["divergences"] = (n_div, "== 0", n_div == 0, f"of {ss['diverging'].size}")
    else:
        rows["divergences"] = (np.nan, "== 0", False, unrecorded)
    depth = next((ss[n] for n in ("maxdepth_reached", "reached_max_treedepth") if n in ss), None)
    if depth is not None:
        n_depth = int(depth.sum())
        rows["max_treedepth"] = (n_depth, "== 0", n_depth == 0, "transitions")
    else:
        rows["max_treedepth"] = (np.nan, "== 0", False, unrecorded)
    if "energy" in ss and ss.sizes.get("draw", 0) > 2:
        bfmi = azs.bfmi(datatree)["energy"].to_numpy()  # DataTree node sample_stats: per chain
        low = float(np.min(bfmi))
        rows["ebfmi"] = (low, f">= {thresholds['ebfmi']}",
                         bool(np.isfinite(low) and low >= thresholds["ebfmi"]), "lowest chain")
    return rows


def probability_mcse(indicator) -> tuple[float, float, bool]:
    """(probability, MCSE, is_bound) of a boolean DataArray over (chain, draw).

    When every draw agrees the draws cannot estimate their own error: the MCSE is then the
    bound 1 / n_draws (``is_bound``)."""
    import arviz_stats as azs

    ind = indicator.astype(float)
    p = float(ind.mean())
    if p in (0.0, 1.0):
        return p, 1.0 / ind.size, True
    return p, float(azs.mcse(ind, method="mean")), False


def probability_row(indicator, statement: str, thresholds: dict) -> tuple:
    """The row for the Monte Carlo error of a headline probability (NaN fails)."""
    _, mcse, _ = probability_mcse(indicator)
    ok = bool(np.isfinite(mcse) and mcse <= thresholds["mcse_prob"])
    return (mcse, f"<= {thresholds['mcse_prob']}", ok, f"P({statement})")


def warn_convergence(message: str) -> None:
    """Issue a ConvergenceWarning pointing at the user's call (fit, refit, look)."""
    warn(message, ConvergenceWarning)
