"""Figures (matplotlib, headless-safe; arviz-plots for MCMC plots). Each returns a Figure."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bayes_hcc.diagnostics import ppc_km, psense
from bayes_hcc.errors import BayesHCCError, as_names, as_numbers, one_prob
from bayes_hcc.quantities.core import (_is_illness_death, _loaded, as_fit, hazard_ratio,
                                      prob_superiority, survival_curve)
from bayes_hcc.units import convert

__all__ = ["plot_survival", "plot_hazard_ratio", "plot_site_effects", "plot_trace",
           "plot_rank", "plot_ppc", "plot_psense", "plot_time_varying_hr", "plot_sensitivity",
           "plot_subgroups", "plot_reconstruction", "plot_map_prior",
           "plot_borrowing_design", "plot_state_probabilities", "plot_os_hazard_ratio",
           "FIGURES"]

COLORS = ("#1f77b4", "#d62728")


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")  # headless servers and CI have no display
    import matplotlib.pyplot as plt

    return plt


def _observed(fit):
    t = fit.datatree["observed_data"][fit.endpoint].to_numpy()
    d = fit.datatree["constant_data"][fit.endpoint].to_numpy()
    arm = fit.datatree["constant_data"]["arm"].to_numpy()
    return t, d, arm


def plot_survival(fit, *, estimand: str = "standardized", prob: float = 0.95,
                  risk_times=None, endpoint: str | None = None, ax=None):
    """Posterior survival per arm (median and ``prob`` band) over the Kaplan-Meier curves
    (Turnbull's NPMLE for interval-censored events), with a numbers-at-risk table at
    ``risk_times`` (default: every 6 months in the fit's unit, rounded: 200 days, 25 weeks,
    0.5 years; a longer step when more than 12 numbers would not fit).

    An illness-death fit takes ``endpoint`` ("os", "pfs" or "ttp"): that endpoint's curve
    from the joint model over the endpoint's own non-parametric estimate (OS: Kaplan-Meier;
    TTP and PFS: Turnbull, progression in its scan interval, PFS an event at a death
    without a progression seen, as ``bh.read_trial`` derives them), drawn to that
    endpoint's follow-up (``follow_up_by_arm``).

    ``ax``: a matplotlib Axes to draw into (a panel of your own figure, e.g. OS and PFS
    side by side); the numbers-at-risk strip is split off its bottom. Returns the figure
    (``ax``'s own when given)."""
    from lifelines import KaplanMeierFitter

    from bayes_hcc.data.km import turnbull

    prob = one_prob(prob, "plot_survival")
    plt = _plt()
    fit = _loaded(fit)
    grid = None
    if _is_illness_death(fit) and endpoint is not None:
        # to the endpoint's own follow-up: PFS and TTP are seen only up to the last scans,
        # and the joint model's curve past them is its extrapolation, not the data's
        grid = np.linspace(0.0, max(fit.follow_up_by_arm(endpoint).values()), 100)
    curve = survival_curve(fit, grid, estimand=estimand, endpoint=endpoint)
    if _is_illness_death(fit):
        name = {"progression": "ttp"}.get(curve.attrs["endpoint"], curve.attrs["endpoint"])
        arms, unit, arm = fit.data.arms, fit.data.time_unit, fit.data.arm
        t, d, bounds = fit.data.endpoint(name)
    else:
        fit = as_fit(fit)
        name, arms, unit = fit.endpoint, fit.arms, fit.time_unit
        t, d, arm = _observed(fit)
        c = fit.datatree["constant_data"]
        bounds = ((c["lower_bound"].to_numpy(), c["upper_bound"].to_numpy())
                  if "lower_bound" in c else None)
    ref = "Turnbull NPMLE" if bounds is not None else "Kaplan-Meier"
    own = _user_axes(ax, "plot_survival") is None
    fig, ax, tab = _survival_axes(plt, ax)
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    grid = curve["time"].values
    for i, a in enumerate(arms):
        c = curve.sel(arm=a)
        lo, mid, hi = (c.quantile(q, dim=("chain", "draw")).values for q in (lo_q, .5, hi_q))
        ax.fill_between(grid, lo, hi, color=COLORS[i], alpha=0.2, lw=0)
        ax.plot(grid, mid, color=COLORS[i], lw=2, label=f"{a}: posterior ({estimand})")
        if bounds is not None:  # interval-censored events: Turnbull's NPMLE
            sf = turnbull(bounds[0][arm == i], bounds[1][arm == i])["survival"]
            x, y = np.r_[0.0, sf.index.to_numpy()], np.r_[1.0, sf.to_numpy()]
        else:
            km = KaplanMeierFitter().fit(t[arm == i], d[arm == i])
            x, y = km.survival_function_.index, km.survival_function_.iloc[:, 0]
        ax.step(x, y, where="post", color=COLORS[i], lw=1, ls="--", label=f"{a}: {ref}")
    ax.set_ylabel(f"{name.upper()} survival probability")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="upper right")
    what = ("illness-death model" if _is_illness_death(fit) else "posterior survival")
    ax.set_title(f"{name.upper()}: {what} ({int(prob * 100)}% bands) and {ref}")
    risk_times = (_risk_times(grid.max(), unit) if risk_times is None
                  else np.asarray(as_numbers(risk_times, "plot_survival", "risk_times",
                                             "[0, 6, 12, 18]")))
    for i in range(len(arms)):
        n = [int(np.sum(t[arm == i] >= rt)) for rt in risk_times]
        for rt, k in zip(risk_times, n):
            tab.text(rt, 1 - i, str(k), ha="center", va="center", color=COLORS[i], fontsize=8)
    _risk_table_axes(tab, arms, f"time since randomization ({unit})", "numbers at risk")
    tab.set_xticks(risk_times)  # the numbers sit under the axis' ticks
    if own:
        fig.tight_layout()
    return fig


def _user_axes(ax, caller: str):
    """``ax=`` checked: one matplotlib Axes (a figure's whole array of panels, or
    anything else, is refused by name instead of failing inside matplotlib)."""
    from matplotlib.axes import Axes

    if ax is not None and not isinstance(ax, Axes):
        hint = (" (the whole array of panels: give one, e.g. axes[0])"
                if hasattr(ax, "__len__") and not isinstance(ax, str) else "")
        raise BayesHCCError(f"{caller}: ax={type(ax).__name__}{hint}; give one matplotlib "
                            "Axes, or None for a figure of its own.")
    return ax


def _survival_axes(plt, ax):
    """(figure, curve axes, numbers-at-risk axes): a new figure, or ``ax`` with the strip
    split off its bottom (its figure's layout is the caller's)."""
    if ax is None:
        fig, (ax, tab) = plt.subplots(2, 1, figsize=(7.5, 5.8), height_ratios=(4, 1),
                                      sharex=True)
        return fig, ax, tab
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    tab = make_axes_locatable(ax).append_axes("bottom", size="25%", pad=0.6, sharex=ax)
    return ax.figure, ax, tab


def _risk_times(t_max: float, time_unit: str) -> np.ndarray:
    """Times of a numbers-at-risk table from 0 to ``t_max``: every 6 months (the usual
    step of an oncology figure) expressed in ``time_unit`` and rounded to a round number of
    it (200 days, 25 weeks, 0.5 years), doubled until at most 12 numbers fit."""
    step = float(convert(6.0, "months", time_unit))
    power = 10.0 ** np.floor(np.log10(step))
    step = power * min((1.0, 2.0, 2.5, 3.0, 5.0, 6.0, 10.0),
                       key=lambda m: abs(np.log(m * power / step)))
    while t_max / step >= 12:
        step *= 2
    return np.arange(0.0, t_max + 1e-9 * step, step)


def _risk_table_axes(tab, arms, xlabel: str, title: str) -> None:
    """The numbers-at-risk strip under a survival figure: one row per arm, no frame."""
    tab.set_yticks([1, 0], list(arms), fontsize=8)
    tab.set_ylim(-0.5, 1.5)
    tab.set_xlabel(xlabel)
    tab.set_title(title, fontsize=8)
    for side in ("top", "right", "left"):
        tab.spines[side].set_visible(False)


def plot_hazard_ratio(fit, *, thresholds=(1.0,), ax=None):
    """Posterior density of the HR with P(HR < 1) marked; ``ax``: a matplotlib Axes to
    draw into (returns its figure)."""
    from scipy.stats import gaussian_kde

    plt = _plt()
    fit = as_fit(fit)
    if fit.family.effect.quantity != "hazard_ratio":
        return _message_figure(f"{fit.settings['model']}: not proportional hazards, no single "
                               "HR (see the time ratio)")
    hr = hazard_ratio(fit).values.ravel()
    grid = np.linspace(np.quantile(hr, 0.001), np.quantile(hr, 0.999), 400)
    dens = gaussian_kde(np.log(hr))(np.log(grid)) / grid  # KDE on the log scale
    own = _user_axes(ax, "plot_hazard_ratio") is None
    fig, ax = plt.subplots(figsize=(6.5, 3.8)) if own else (ax.figure, ax)
    ax.plot(grid, dens, color="k")
    below = grid < 1.0
    ax.fill_between(grid[below], dens[below], color=COLORS[0], alpha=0.3)
    for d in as_numbers(thresholds, "plot_hazard_ratio", "thresholds", "[1.0, 0.8]"):
        ax.axvline(d, color="grey", ls="--", lw=1)
    p = prob_superiority(fit)
    ax.text(0.02, 0.95, f"P(HR < 1) = {p.probability:.3f}\nmedian HR = {np.median(hr):.2f} "
            f"({np.quantile(hr, .025):.2f} to {np.quantile(hr, .975):.2f})",
            transform=ax.transAxes, va="top", fontsize=9)
    ax.set_xlabel(f"hazard ratio, {fit.arms[1]} / {fit.arms[0]}")
    ax.set_ylabel("posterior density")
    ax.set_title(f"{fit.endpoint.upper()}: posterior of the hazard ratio")
    if own:
        fig.tight_layout()
    return fig


def plot_site_effects(fit):
    """Forest plot of the site effects on the log hazard and, with ``arm_by_site``, of the
    treatment-by-site effects on the log HR (arviz-plots; chains combined, median with 50%
    and 95% intervals), with 0 marked and what 0 means: the random-effects mean (a typical
    site) or, for fixed effects, the average of the sites (they sum to zero)."""
    import arviz_plots as azp

    _plt()
    fit = as_fit(fit)
    post = fit.datatree["posterior"]
    names = [v for v in ("site_effect", "arm_site_effect") if v in post]
    if not names:
        return _message_figure("no site effects in this model (site_effect='none')")
    pc = azp.plot_forest(fit.datatree, var_names=names, combined=True,
                         point_estimate="median", ci_probs=(0.5, 0.95),
                         backend="matplotlib")
    fig = pc.get_viz("figure")
    ax = fig.axes[-1]  # the intervals' column; the others hold the labels
    ax.axvline(0.0, color="grey", ls="--", lw=1)
    random = fit.settings.get("site_effect") == "random"
    labels, titles = [], []
    if "site_effect" in names:
        labels.append("site effect on the log hazard (0: " + (
            "the random-effects mean, a typical site)" if random
            else "the average of the sites, which sum to zero)"))
        if random:
            titles.append(f"site SD posterior median {float(post['site_sd'].median()):.2f}")
    if "arm_site_effect" in names:  # a typical site's treatment effect is the model's HR
        labels.append("treatment-by-site effect on the log HR (0: a typical site)")
        titles.append("treatment-by-site SD posterior median "
                      f"{float(post['arm_site_sd'].median()):.2f}")
    ax.set_xlabel("; ".join(labels))
    if titles:
        ax.set_title("; ".join(titles), fontsize="medium")
    return fig


def plot_trace(fit, var_names=None):
    """ArviZ trace and density plot of the main parameters (``_main_vars``) of a fit, an
    illness-death fit included, or of ``var_names``."""
    import arviz_plots as azp

    _plt()
    tree, names = _main_vars(fit, var_names, "plot_trace")
    return azp.plot_trace_dist(tree, var_names=names, backend="matplotlib").get_viz("figure")


def plot_rank(fit, var_names=None):
    """ArviZ rank plot of the main parameters (as ``plot_trace``)."""
    import arviz_plots as azp

    _plt()
    tree, names = _main_vars(fit, var_names, "plot_rank")
    chains = tree["posterior"].sizes["chain"]
    if chains < 2:  # arviz-plots' uniformity test failed inside ("at least 2 chains")
        return _message_figure("a rank plot compares chains, and this fit has 1:\n"
                               "refit with chains >= 2 (bh.plot_trace shows its draws)")
    return azp.plot_rank(tree, var_names=names, backend="matplotlib").get_viz("figure")


def _main_vars(fit, var_names, caller: str) -> tuple:
    """The fit's DataTree and the variables its diagnostic plots show by default: the arm
    effect, the site SDs and the baseline's headline parameters (of each transition, for an
    illness-death fit)."""
    fit = _loaded(fit)
    if _is_illness_death(fit):
        post = fit.datatree["posterior"]
        transitions = [str(t) for t in post["log_hr"]["transition"].values]
        wanted = ["log_hr", "site_sd", *(f"{t}::{h}" for t, fam in
                                         zip(transitions, fit.families) for h in fam.headline)]
    else:
        fit = as_fit(fit)
        post = fit.datatree["posterior"]
        wanted = [fit.family.arm_effect, "site_sd", *fit.family.headline, "arm_site_sd"]
    if var_names is not None:
        return fit.datatree, list(as_names(var_names, caller, "var_names", list(post.data_vars),
                                           f'["{wanted[0]}"]'))
    return fit.datatree, [v for v in wanted if v in post]


def plot_ppc(fit, *, by: str = "arm", random_seed=0, endpoint: str | None = None):
    """Censoring-aware posterior predictive KM bands against the observed KM (Turnbull
    NPMLEs for progression seen at scans); an illness-death fit's ``endpoint``: "os"
    (default), "pfs" or "ttp" (``bh.ppc_km``)."""
    plt = _plt()
    table = ppc_km(fit, by=by, random_seed=random_seed, endpoint=endpoint)
    groups = list(dict.fromkeys(table["group"]))
    ncol = min(3, len(groups))
    nrow = -(-len(groups) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4 * ncol, 3 * nrow), squeeze=False,
                             sharey=True)
    for ax, g in zip(axes.ravel(), groups):
        part = table[table["group"] == g]
        ax.fill_between(part["time"], part["lower"], part["upper"], color="grey", alpha=0.3,
                        step="post", label="replicated 95%")
        ax.step(part["time"], part["observed"], where="post", color="k", label="observed")
        ax.set_title(str(g), fontsize=9)
        ax.set_ylim(0, 1.02)
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    curve = "KM" if table.attrs["estimator"] == "kaplan-meier" else "Turnbull NPMLE"
    fig.suptitle(f"{table.attrs['endpoint'].upper()}: posterior predictive {curve} by {by} "
                 f"(coverage {table.attrs['coverage']:.0%})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_psense(fit):
    """Power-scaling sensitivity: prior and likelihood sensitivity per quantity (of an
    illness-death fit too, ``bh.psense``)."""
    plt = _plt()
    fit = _loaded(fit)
    if not _is_illness_death(fit) and "log_likelihood" not in as_fit(fit).datatree.children:
        return _message_figure("Power-scaling sensitivity needs the pointwise log-likelihood;\n"
                               "this fit was made with log_likelihood=False.")
    table = psense(fit)
    fig, ax = plt.subplots(figsize=(6.5, 0.5 + 0.45 * len(table)))
    y = np.arange(len(table))
    ax.barh(y - 0.2, table["prior"], height=0.4, label="prior")
    ax.barh(y + 0.2, table["likelihood"], height=0.4, label="likelihood")
    ax.axvline(0.05, color="grey", ls="--", lw=1, label="threshold 0.05")
    ax.set_yticks(y, list(table.index))
    ax.set_xlabel("power-scaling sensitivity (CJS distance gradient)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_time_varying_hr(fit):
    """Posterior HR per interval (PiecewiseExponential(time_varying_hr=True))."""
    plt = _plt()
    fit = as_fit(fit)
    post = fit.datatree["posterior"]
    if "log_hr_interval" not in post:
        return _message_figure("fit PiecewiseExponential(time_varying_hr=True) for this plot")
    hr = np.exp(post["log_hr_interval"])
    q = hr.quantile([0.025, 0.5, 0.975], dim=("chain", "draw")).values
    x = np.arange(q.shape[1])
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.errorbar(x, q[1], yerr=[q[1] - q[0], q[2] - q[1]], fmt="o", color="k", capsize=3)
    ax.axhline(1.0, color="grey", ls="--")
    ax.set_xticks(x, [_short_numbers(str(v)) for v in hr["interval"].values], rotation=30,
                  fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("hazard ratio (95% CrI)")
    ax.set_xlabel(f"interval ({fit.time_unit})")
    ax.set_title(f"{fit.endpoint.upper()}: HR per interval (proportional-hazards check)")
    fig.tight_layout()
    return fig


def _short_numbers(label: str) -> str:
    """An interval label's numbers to 3 significant digits ("[57.5269, 115.054)" of cuts in
    days reads "[57.5, 115)"; months' "[1.54, 2.83)" is unchanged)."""
    return re.sub(r"\d+\.\d+", lambda m: f"{float(m.group()):.3g}", label)


def _require(obj, kind, caller: str, what: str) -> None:
    """``obj`` is a ``kind``, else a :class:`BayesHCCError` saying what ``caller`` draws
    (another object failed inside with AttributeError or KeyError)."""
    if not isinstance(obj, kind):
        raise BayesHCCError(f"{caller} draws {what}, not a {type(obj).__name__}.")


def _message_figure(text):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 1.2))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.axis("off")
    return fig


FIGURES = {"survival": plot_survival, "hazard_ratio": plot_hazard_ratio,
           "site_effects": plot_site_effects, "trace": plot_trace, "rank": plot_rank,
           "ppc": plot_ppc, "psense": plot_psense, "time_varying_hr": plot_time_varying_hr}


def plot_sensitivity(table):
    """Forest plot of the HR (median and 95% CrI) across sensitivity variants.

    Every variant has a row: one without a single HR (an AFT family, or a variant that was
    skipped) says so in place of the interval. The legend sits below the axes, never on a
    row; the HR axis is logarithmic with plain tick labels (0.5, 1, 2)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    if not isinstance(table, pd.DataFrame):
        raise BayesHCCError("plot_sensitivity: takes the table bh.run_sensitivity returns "
                            "(a saved one: pd.read_csv(path, index_col='variant')), got "
                            f"{type(table).__name__}.")
    missing = [c for c in ("hr_median", "hr_lower", "hr_upper", "diagnostics")
               if c not in table.columns]
    if len(missing) == 4:
        raise BayesHCCError(f"plot_sensitivity: the table has none of the grid's columns "
                            f"({', '.join(missing)}); pass the table bh.run_sensitivity "
                            "returns.")
    plt = _plt()
    n = len(table)
    fig, ax = plt.subplots(figsize=(7.5, 1.4 + 0.38 * max(n, 1)))
    y = np.arange(n)[::-1]
    hr = table["hr_median"] if "hr_median" in table else pd.Series(np.nan, index=table.index)
    has = hr.notna().to_numpy()
    t = table[has]
    ok = t["diagnostics"].eq("ok").to_numpy() if len(t) else np.array([], bool)
    yy = y[has]
    # arrays, not Series: matplotlib calls float() on a one-row Series (deprecated)
    med, low, up = (t[c].to_numpy(float) for c in ("hr_median", "hr_lower", "hr_upper"))
    ax.errorbar(med, yy, xerr=[med - low, up - med], fmt="none", ecolor="k", capsize=2)
    ax.scatter(med[ok], yy[ok], color="k", zorder=3, label="diagnostics ok")
    ax.scatter(med[~ok], yy[~ok], color="#cf222e", marker="x", zorder=3,
               label="diagnostics failed")
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.set_xscale("log")
    lo = float(np.nanmin(t["hr_lower"])) if len(t) else 0.5
    hi = float(np.nanmax(t["hr_upper"])) if len(t) else 2.0
    lo, hi = min(lo, 0.9), max(hi, 1.1)
    ax.set_xlim(lo / 1.15, hi * 1.15)
    nice = [0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0]
    ax.xaxis.set_major_locator(FixedLocator([v for v in nice if lo / 1.15 <= v <= hi * 1.15]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    for yi, (name, row) in zip(y[~has], table[~has].iterrows()):
        if "note" in row and isinstance(row["note"], str) and row["note"].startswith("skipped"):
            why = "skipped (see the table)"
        elif str(row.get("family", "")).endswith("_aft"):
            tr = row.get("tr_median", np.nan)
            why = "AFT model: no single HR" + (f" (time ratio {tr:.2f})" if np.isfinite(tr)
                                                else "")
        elif "illness-death" in str(row.get("note", "")):
            why = "illness-death: no single HR (transition HRs in the table)"
        else:
            why = "no HR (see the table)"
        ax.text(lo / 1.12, yi, why, va="center", ha="left", fontsize=7, color="#57606a")
    ax.set_yticks(y, list(table.index), fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("hazard ratio (median, 95% CrI)")
    ax.set_title(f"Sensitivity analyses: {table.attrs.get('grid', '')}", fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, fontsize=7, loc="upper center", ncol=2, frameon=False,
              bbox_to_anchor=(0.5, -0.5 / (1.0 + 0.38 * max(n, 1))))
    fig.tight_layout()
    return fig


def plot_subgroups(table):
    """The subgroup forest plot (``bh.subgroups``): one row per subgroup level, with its
    patients and events per arm; the shrunk HR (filled, median and credible interval) above
    the unshrunk one (open); P(HR < 1) of both at the right; the overall HR as a dotted line.
    The HR axis is logarithmic with plain tick labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    _require(table, pd.DataFrame, "plot_subgroups", "the table of bh.subgroups")
    if "HR shrunk" not in table.columns:  # failed with KeyError
        raise BayesHCCError("plot_subgroups: draws the table of bh.subgroups (its 'HR shrunk' "
                            "and 'HR unshrunk' columns); this table has neither.")
    plt = _plt()
    arms = table.attrs.get("arms") or [c[len("events "):] for c in table.columns
                                       if c.startswith("events ")]
    n = len(table)
    fig, ax = plt.subplots(figsize=(9.5, 1.5 + 0.42 * n))
    y = np.arange(n)[::-1].astype(float)
    off = 0.14
    for kind, dy, face in (("shrunk", off, "k"), ("unshrunk", -off, "white")):
        med = table[f"HR {kind}"].to_numpy(float)
        lo, hi = table[f"lower {kind}"].to_numpy(float), table[f"upper {kind}"].to_numpy(float)
        ok = np.isfinite(med)
        ax.errorbar(med[ok], y[ok] + dy, xerr=[med[ok] - lo[ok], hi[ok] - med[ok]],
                    fmt="none", ecolor="k" if kind == "shrunk" else "#57606a", capsize=2,
                    lw=1)
        ax.scatter(med[ok], y[ok] + dy, facecolor=face, edgecolor="k", zorder=3, s=22,
                   label=f"{kind} (median, {int(100 * table.attrs.get('prob', 0.95))}% CrI)")
    overall = float(table["HR shrunk"].iloc[0])
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.axvline(overall, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    finite = table[["lower shrunk", "upper shrunk", "lower unshrunk",
                    "upper unshrunk"]].to_numpy(float)
    lo = min(float(np.nanmin(finite)), 0.9)
    hi = max(float(np.nanmax(finite)), 1.1)
    ax.set_xlim(lo / 1.15, hi * 1.15)
    nice = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0]
    ax.xaxis.set_major_locator(FixedLocator([v for v in nice if lo / 1.15 <= v <= hi * 1.15]))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    labels = []
    for (by, level), row in table.iterrows():
        ev = "/".join(str(int(row[f"events {a}"])) for a in arms)
        name = "Overall" if by == "overall" else f"{by}: {level}"
        labels.append(f"{name}  (n={int(row['patients'])}, events {ev})")
    ax.set_yticks(y, labels, fontsize=8)
    for yi, (_, row) in zip(y, table.iterrows()):
        ps = row["P(HR < 1) shrunk"]
        pu = row["P(HR < 1) unshrunk"]
        text = f"{ps:.2f}" + ("" if not np.isfinite(pu) else f" / {pu:.2f}")
        ax.annotate(text, (1.01, yi), xycoords=("axes fraction", "data"), va="center",
                    fontsize=8)
    ax.annotate("P(HR<1)\nshrunk / alone", (1.01, n - 0.4), xycoords=("axes fraction", "data"),
                va="bottom", fontsize=7, color="#57606a")
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(f"hazard ratio ({arms[1]} / {arms[0]}); events per arm: "
                  f"{' / '.join(arms)}" if len(arms) == 2 else "hazard ratio")
    ax.set_title(f"Subgroups: {table.attrs.get('endpoint', '').upper()}", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", ncol=2, frameon=False,
              bbox_to_anchor=(0.5, -0.55 / (1.0 + 0.42 * n)))
    fig.tight_layout()
    return fig


def plot_reconstruction(trial):
    """A reconstructed trial (``bh.reconstruct_trial``) over what it came from: per arm the
    digitised points (markers) and the Kaplan-Meier curve of the reconstructed patients
    (steps), with the numbers at risk below as published (reconstructed in brackets when
    they differ), and the largest curve difference in the legend."""
    from bayes_hcc.data.reconstruct import _km, reconstruction_fidelity

    plt = _plt()
    fid = reconstruction_fidelity(trial)  # refuses data that were not reconstructed
    fig, (ax, tab) = plt.subplots(2, 1, figsize=(7.5, 5.8), height_ratios=(4, 1),
                                  sharex=True)
    for i, arm in enumerate(trial.arms):
        rec = trial.reconstruction[arm]
        kt, ks = _km(rec.ipd["time"].to_numpy(float), rec.ipd["event"].to_numpy(int))
        kt, ks = np.r_[kt, rec.ipd["time"].max()], np.r_[ks, ks[-1]]
        row = fid.summary.loc[arm]
        ax.step(kt, ks, where="post", color=COLORS[i], lw=1.5,
                label=f"{arm}: reconstructed KM (n={int(row['patients'])}, "
                      f"{int(row['events'])} events; max |diff| {row['max_abs_diff']:.3f})")
        ax.plot(rec.curve.time, rec.curve.survival, "o", ms=3, mfc="none", color=COLORS[i],
                label=f"{arm}: digitised points")
        sub = fid.intervals[fid.intervals["arm"] == arm]
        for _, r in sub.iterrows():
            pub, got = int(r["at_risk_published"]), int(r["at_risk_reconstructed"])
            text = str(pub) if pub == got else f"{pub} ({got})"
            tab.text(r["start"], 1 - i, text, ha="center", va="center", color=COLORS[i],
                     fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel(f"{trial.endpoints[0].upper()} survival probability")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("Reconstructed patients (Guyot 2012) over the digitised curves")
    _risk_table_axes(tab, trial.arms, f"time ({trial.time_unit})",
                     "numbers at risk: published (reconstructed, when different)")
    fig.tight_layout()
    return fig


def plot_map_prior(prior, *, trial=None, endpoint: str = "os"):
    """The MAP prior's forest plot: each historical control arm's log hazard per month with
    its 95% interval (events and form in the label), the MAP predictive (and the robust MAP
    when robustified) as its 95% interval, and optionally the trial's own control arm
    (``trial``). A constant-hazard prior is drawn on the scale of the median it implies
    (months, logarithmic: log 2 / hazard); a per-interval prior as one panel per interval
    on the log hazard."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from bayes_hcc.borrowing.history import events_exposure
    from bayes_hcc.borrowing.map_prior import MAPPrior, elir_ess, mixture_quantile
    from bayes_hcc.data.trial import require_trial

    _require(prior, MAPPrior, "plot_map_prior", "a MAP prior (bh.map_prior)")
    if trial is not None:
        require_trial(trial, "plot_map_prior(trial=...)")
    plt = _plt()
    per = prior.per_interval
    labels = prior.interval_labels()
    edges = np.r_[0.0, prior.cuts or [], np.inf]
    informative = prior.informative if per else [prior.informative]
    if per:
        d_hist, e_hist = prior.history.per_interval(edges)
    else:
        d_hist, e_hist = prior.history.events[:, None], prior.history.exposure[:, None]
    own = None
    if trial is not None:
        ep = trial.endpoint(endpoint)
        c = ep.arm == 0
        own = events_exposure(np.asarray(convert(ep.time[c], trial.time_unit, "months")),
                              ep.event[c], edges)
    n_rows = len(prior.history) + (own is not None) + 1 + bool(prior.robust_weight)
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels) + 3.5 * (not per),
                                                        1.2 + 0.45 * n_rows),
                             sharey=True, squeeze=False)
    for j, ax in enumerate(axes[0]):
        rows = []
        for i, a in enumerate(prior.history.arms):
            d, e = d_hist[i, j], e_hist[i, j]
            lh = np.log(d / e) if d > 0 else np.nan
            half = 1.96 / np.sqrt(d) if d > 0 else np.nan
            rows.append((f"{a.study}  ({d:.0f} ev.; {a.form})", lh, lh - half, lh + half,
                         "k", "s"))
        if own is not None:
            d, e = own[0][j], own[1][j]
            lh, half = (np.log(d / e), 1.96 / np.sqrt(d)) if d > 0 else (np.nan, np.nan)
            rows.append((f"this trial: {trial.control}  ({d:.0f} ev.)", lh, lh - half,
                         lh + half, COLORS[1], "D"))
        q = mixture_quantile(informative[j], (0.025, 0.5, 0.975))
        rows.append((f"MAP prior (ESS {elir_ess(informative[j]):.0f})", q[1], q[0], q[2],
                     COLORS[0], "o"))
        if prior.robust_weight:
            q = mixture_quantile(prior.elements[j], (0.025, 0.5, 0.975))
            rows.append((f"robust MAP (weight {prior.robust_weight:g}; ESS "
                         f"{elir_ess(prior.elements[j]):.0f})", q[1], q[0], q[2], COLORS[0],
                         "o"))
        n = len(rows)
        for i, (label, m, lo, hi, color, marker) in enumerate(rows):
            if not np.isfinite(m):
                continue
            x = (m, lo, hi) if per else tuple(np.log(2) / np.exp([m, hi, lo]))
            ax.errorbar(x[0], n - 1 - i, xerr=[[x[0] - x[1]], [x[2] - x[0]]], fmt=marker,
                        color=color, capsize=3, ms=6)
        ax.set_yticks(np.arange(n)[::-1], [r[0] for r in rows], fontsize=8)
        ax.axhline(1.5 + bool(prior.robust_weight) - 1, color="grey", lw=0.5)
        if per:
            ax.set_title(f"interval {labels[j]} months", fontsize=9)
            ax.set_xlabel("log hazard per month (95% interval)")
        else:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("control median under a constant hazard (months; 95% interval)")
    tau = prior.tau_summary()
    fig.suptitle("Historical control arms and the MAP prior"
                 + (f" (tau prior {tau['prior']})" if "prior" in tau
                    else " (no heterogeneity)"), fontsize=10)
    fig.tight_layout()
    return fig


def plot_borrowing_design(design):
    """Operating characteristics of borrowing on one figure (``bh.borrowing_design``):
    against the true control median, the type I error (HR 1), the power (the other HR),
    the bias of the posterior median log HR and the posterior weight of the robust
    component, with and without the MAP prior, each with its Monte Carlo 95% interval; the
    historical median (the MAP prior's) as a dotted line."""
    from bayes_hcc.borrowing.operating import (BIAS, ROBUST, TYPE1_POWER, BorrowingDesign,
                                               historical_median)

    _require(design, BorrowingDesign, "plot_borrowing_design", "the result of "
             "bh.borrowing_design")
    plt = _plt()
    table = design.table().reset_index()
    hrs = sorted(table["hr"].unique(), reverse=True)
    alt = next((h for h in hrs if h != 1.0), None)
    panels = [(TYPE1_POWER, 1.0, "type I error (HR 1)"),
              (TYPE1_POWER, alt, f"power (HR {alt:g})" if alt is not None else None),
              (BIAS, 1.0, "bias of posterior median log HR (HR 1)"),
              (ROBUST, None, "posterior weight of the robust component")]
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 6.5), sharex=True)
    hist = historical_median(design.prior)
    styles = {"borrowing": (COLORS[1], "o", "-"), "no borrowing": ("#57606a", "s", "--")}
    for ax, (measure, hr, title) in zip(axes.ravel(), panels):
        if title is None:
            ax.set_visible(False)
            continue
        for analysis, (color, marker, ls) in styles.items():
            t = table[(table["measure"] == measure) & (table["analysis"] == analysis)]
            for h in ([hr] if hr is not None else hrs):
                u = t[t["hr"] == h].sort_values("control_median")
                if u.empty:
                    continue
                x, y = u["control_median"].to_numpy(), u["estimate"].to_numpy()
                err = [y - u["mc_lower"].to_numpy(), u["mc_upper"].to_numpy() - y]
                label = analysis + (f", HR {h:g}" if hr is None else "")
                ax.errorbar(x, y, yerr=err, color=color, marker=marker, ls=ls, capsize=2,
                            ms=4, lw=1, label=label, alpha=1.0 if h == (hr or hrs[0]) else 0.55)
        ax.axvline(hist, color="grey", ls=":", lw=1)
        if measure == BIAS:
            ax.axhline(0.0, color="grey", lw=0.5)
        ax.set_title(title, fontsize=9)
        ax.set_xscale("log")
        ax.legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("true control median (months; dotted: the MAP prior's)")
    n = design.borrowing.settings.get("n_trials")
    fig.suptitle(f"Borrowing: operating characteristics ({n} trials per scenario; bars: "
                 "Monte Carlo 95% intervals)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_state_probabilities(fit, *, times=None, thin: int = 4,
                             estimand: str = "typical_site"):
    """Illness-death model: the posterior mean probability of being alive without
    progression, alive after progression and dead over time, stacked, one panel per arm
    (``IllnessDeathFit.state_probabilities``, for the ``estimand``'s patients); the OS
    curve is the top of the second band."""
    plt = _plt()
    horizon = float(np.max(fit.data.time))
    times = np.linspace(0.0, horizon, 121) if times is None else np.asarray(times, float)
    ds = fit.state_probabilities(times, thin=thin, estimand=estimand).mean("draw")
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), sharey=True)
    colors = ("#4c956c", "#f4a259", "#bc4b51")
    labels = ("alive, progression-free", "alive after progression", "dead")
    for ax, arm in zip(axes, ds["arm"].values):
        sub = ds.sel(arm=arm)
        ax.stackplot(times, sub["pfs"], sub["alive_progressed"], sub["dead"], colors=colors,
                     labels=labels, alpha=0.85)
        ax.set_title(str(arm))
        ax.set_xlabel(f"time since randomisation ({fit.data.time_unit})")
        ax.set_xlim(times[0], times[-1])
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("probability (posterior mean)")
    axes[1].legend(loc="upper right", fontsize=8, framealpha=0.9)
    fig.suptitle(f"State occupation: illness-death model ({fit.model.baseline}, "
                 f"{fit.model.time_scale}; {estimand.replace('_', ' ')})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_os_hazard_ratio(fit, *, times=None, thin: int = 4, prob: float = 0.95,
                         estimand: str = "typical_site"):
    """Illness-death model: the marginal OS hazard ratio over time (posterior median and
    equal-tailed band): not constant under this model even when no transition HR varies.
    Times beyond either arm's OS follow-up (the model's extrapolation) are shaded."""
    prob = one_prob(prob, "plot_os_hazard_ratio")
    plt = _plt()
    horizon = float(np.max(fit.data.time))
    times = np.linspace(horizon / 60, horizon, 60) if times is None else np.asarray(times)
    hr = fit.os_hazard_ratio(times, thin=thin, estimand=estimand)
    a = (1 - prob) / 2
    q = hr.quantile([a, 0.5, 1 - a], dim="draw").values
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    ax.fill_between(times, q[0], q[2], color=COLORS[0], alpha=0.25,
                    label=f"{100 * prob:g}% interval")
    ax.plot(times, q[1], color=COLORS[0], label="posterior median")
    ax.axhline(1.0, color="grey", ls="--")
    if bool(hr["beyond_follow_up"].any()):  # one arm's OS curve is extrapolated there
        ax.axvspan(min(hr.attrs["follow_up"].values()), float(np.max(times)), color="grey",
                   alpha=0.12, lw=0, label="beyond an arm's follow-up")
    ax.set_yscale("log")
    ticks = [t for t in (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.4, 2.0, 3.0, 5.0, 10.0)
             if q[0].min() / 1.3 <= t <= q[2].max() * 1.3]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel(f"time since randomisation ({fit.data.time_unit})")
    ax.set_ylabel("OS hazard ratio (treatment / control)")
    ax.set_title("Marginal OS hazard ratio implied by the illness-death model", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
