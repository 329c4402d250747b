"""Decision-exact screening of a look with a fast approximation (issue #27, its rules).

A look compares posterior probabilities P(HR < h) with thresholds c (efficacy: h = 1; the
futility rule: h = ``futility_hr``; the final analysis: h = 1, c = ``success``). With an
approximate posterior of the log HR, normal with mean mu and SD s (``bh.laplace``), each
comparison is made on the probit scale: z = (log h - mu) / s against Phi^-1(c). The
approximation decides a look when every comparison is farther than a ``margin`` from its
threshold; otherwise MCMC decides.

The margin is calibrated, not guessed (``calibrate_margin``): on pilot looks fitted both
ways, the errors z_approx - z_MCMC (z_MCMC = Phi^-1 of the MCMC probability) are summarised
by their mean (the bias, systematic: with random site effects the Laplace mean of the log
HR sits a little low) and SD. Screening uses the bias-corrected probit z_approx - bias
(``MarginCalibration.corrected_mean`` shifts the approximate mean accordingly). Pilot
errors have had heavier tails than normal, so the error model's tail F(x) (the probability
that MCMC lands more than x beyond the corrected probit) is the larger of a normal's and a
Student t's fitted to the errors, both widened by sqrt(1 + 1/n) for the pilot's size.

A comparison at distance x from its threshold that the approximation decides flips with
probability F(x); the expected share of flipped decisions at margin m is the average over
looks of the sum of F(x) over their comparisons with x > m. The pilot looks are a sample of
the looks to come, so with their distances (``z_threshold`` and ``n_looks`` given) the
margin is the smallest m whose expected share is at most ``target``: near the thresholds,
where the pilot has few looks, the comparisons per look and probit unit are taken as flat
at the 95% upper Poisson bound of the pilot's count within m0 (below), so that the share
is not understated where the pilot happens to have no look; beyond m0 the pilot's own
comparisons are averaged. Without the distances the margin is m0 = the (1 - target / 2)
quantile of the error model: every screened comparison then flips with probability below
``target / 2`` (much more conservative: most screened looks are far beyond the margin).
Pilot pairs whose MCMC probability rests on fewer than 10 draws on its minority side (e.g.
P > 0.9975 from 4,000 draws) are left out of the error model: there the probit of the
MCMC estimate is mostly Monte Carlo noise (its SD is about 0.1 at 10 draws, as large as
the approximation's error, and grows fast below), and such looks are far from any
threshold a plan uses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from bayes_hcc.errors import BayesHCCError

__all__ = ["approximate", "usable_pairs", "check_target", "look_rules", "probit_distance", "approx_decision", "calibrate_margin",
           "MarginCalibration", "McmcShare", "MIN_TAIL_DRAWS"]


def approximate(spec, trial):
    """The Laplace approximation (``bh.laplace``) of the spec's model on the spec's
    population of ``trial`` (the patients its MCMC fit would use), or None when it cannot
    be used (did not converge, or failed: MCMC then decides, and the caller counts it)."""
    from bayes_hcc.models.from_spec import build, population
    from bayes_hcc.models.laplace import laplace

    try:
        approx = laplace(build(spec), population(spec, trial), spec.endpoint)
    except Exception:  # noqa: BLE001 - any failure sends the look to MCMC, counted
        return None
    return approx if approx.converged else None


def check_target(target) -> float:
    """The flip-share target, checked before any pilot is run."""
    if isinstance(target, bool) or not isinstance(target, (int, float)) or \
            not 0 < target < 0.5:
        raise BayesHCCError(f"target={target!r} must be a share between 0 and 0.5 (the "
                            "expected share of screened decisions MCMC would flip; default "
                            "0.001).")
    return float(target)


def usable_pairs(z_exact, n_draws=None) -> np.ndarray:
    """Which pilot pairs can calibrate: a finite MCMC probit resting on at least
    ``MIN_TAIL_DRAWS`` draws on its minority side (when ``n_draws`` is given)."""
    ze = np.asarray(z_exact, float)
    ok = np.isfinite(ze)
    if n_draws is not None:
        with np.errstate(invalid="ignore"):
            tail = stats.norm.cdf(-np.abs(ze)) * np.broadcast_to(np.asarray(n_draws, float),
                                                                  ze.shape)
        ok &= tail >= MIN_TAIL_DRAWS
    return ok


def look_rules(look) -> list[tuple[float, float]] | None:
    """The (HR threshold h, probability threshold c) pairs a look compares P(HR < h) with;
    None when the look has a rule the approximation cannot screen (a PPoS futility rule:
    its completions need the MCMC fit)."""
    if look.futility_ppos is not None:
        return None
    if look.is_final:
        return [(1.0, look.success)]
    rules = []
    if look.efficacy is not None:
        rules.append((1.0, look.efficacy))
    if look.futility is not None:
        rules.append((look.futility_hr, look.futility))
    return rules


def _z(mean: float, sd: float, hr: float) -> float:
    return (np.log(hr) - mean) / sd


def probit_distance(mean: float, sd: float, look) -> float:
    """The smallest distance, on the probit scale, between the approximation's P(HR < h)
    and its threshold over the look's rules (inf for a look without rules; nan when the
    look cannot be screened)."""
    rules = look_rules(look)
    if rules is None:
        return float("nan")
    if not rules:
        return float("inf")
    return float(min(abs(_z(mean, sd, h) - stats.norm.ppf(c)) for h, c in rules))


def approx_decision(mean: float, sd: float, look) -> str:
    """The decision the look's rules give with the approximate probabilities (the same
    rules, in the same order, as ``monitoring.interim.decide``)."""
    p = float(stats.norm.cdf(_z(mean, sd, 1.0)))
    if look.is_final:
        return "success" if p > look.success else "no success"
    if look.efficacy is not None and p > look.efficacy:
        return "stop for efficacy"
    if look.futility is not None and \
            stats.norm.cdf(_z(mean, sd, look.futility_hr)) < look.futility:
        return "stop for futility"
    if look.futility_ppos is not None:
        raise BayesHCCError(f"look {look.name!r} has a PPoS futility rule: it cannot be "
                            "decided from the approximation.")
    return "continue"


@dataclass(frozen=True)
class MarginCalibration:
    """Pilot errors of the approximation on the probit scale, their tail model and the
    margin they give (around the bias-corrected probit: see the module docstring)."""

    errors: np.ndarray
    bias: float
    sd: float
    margin: float
    target: float
    normality_p: float
    n_left_out: int = 0
    t_fit: tuple[float, float, float] | None = None  # (df, |loc - bias|, scale)
    margin_per_comparison: float | None = None  # m0: every comparison below target / 2
    near_density: float | None = None  # comparisons per look and probit unit near m0
    expected_flip_share: float | None = None  # at ``margin``

    @property
    def n_pilot(self) -> int:
        return len(self.errors)

    def corrected_mean(self, mean: float, sd: float) -> float:
        """The approximate posterior mean of the log HR with the pilot's probit bias
        removed: z - bias for every threshold is (log h - mean') / sd with
        mean' = mean + bias x sd."""
        return float(mean + self.bias * sd)

    def flip_probability(self, distance) -> np.ndarray:
        """F(x): under the error model (the larger of the normal and the Student t tails,
        widened for the pilot's size), the probability that a comparison at probit
        ``distance`` from its threshold (bias-corrected) is on the other side under MCMC."""
        d = np.abs(np.asarray(distance, float))
        inflate = np.sqrt(1 + 1 / self.n_pilot)
        tail = stats.norm.sf(d / (self.sd * inflate))
        if self.t_fit is not None:
            df, shift, scale = self.t_fit
            tail = np.maximum(tail, stats.t.sf((d - shift) / (scale * inflate), df))
        return tail

    def summary(self) -> dict:
        return {"n_pilot": self.n_pilot, "bias": self.bias, "sd": self.sd,
                "margin": self.margin, "target_flip_share": self.target,
                "expected_flip_share": self.expected_flip_share,
                "margin_per_comparison": self.margin_per_comparison,
                "near_threshold_density": self.near_density,
                "normality_p": self.normality_p, "pilot_left_out": self.n_left_out}


#: Pilot pairs need this many MCMC draws on the minority side of a probability.
MIN_TAIL_DRAWS = 10


def calibrate_margin(z_approx, z_exact, target: float = 0.001, n_draws=None,
                     z_threshold=None, n_looks: int | None = None) -> MarginCalibration:
    """The screening margin from pilot comparisons (module docstring). ``z_approx``,
    ``z_exact``: the probit of P(HR < h) by the approximation and by MCMC for every rule of
    every pilot look; pairs where MCMC's probability is 0 or 1 (infinite probit) are left
    out of the error model, and with ``n_draws`` (the MCMC draws behind each probability)
    those resting on fewer than ``MIN_TAIL_DRAWS`` draws on the minority side.
    ``z_threshold`` (the probit of each comparison's threshold) and ``n_looks`` (the pilot
    looks the approximation would have screened, comparisons or not): the margin keeps the
    expected share of flipped decisions per look below ``target``; without them every
    comparison's flip probability is kept below ``target / 2``. ``normality_p``:
    Shapiro-Wilk test of the errors (a small value says the normal error model should not
    be trusted; the Student t tail then usually takes over)."""
    target = check_target(target)
    za, ze = np.asarray(z_approx, float), np.asarray(z_exact, float)
    if za.shape != ze.shape:
        raise BayesHCCError("z_approx and z_exact must pair up (same length).")
    ok = np.isfinite(za) & usable_pairs(ze, n_draws)
    err = za[ok] - ze[ok]
    if len(err) < 20:
        raise BayesHCCError(f"{len(err)} usable pilot comparisons; the margin needs at "
                            "least 20 (run more pilot looks).")
    bias, sd = float(err.mean()), float(err.std(ddof=1))
    p_norm = float(stats.shapiro(err[:5000]).pvalue)
    df, loc, scale = stats.t.fit(err)
    cal = MarginCalibration(err, bias, sd, float("nan"), float(target), p_norm,
                            int(ok.size - ok.sum()), (float(df), abs(float(loc) - bias),
                                                      float(scale)))
    # m0: the (1 - target / 2) quantile of the error model's tail F
    grid = np.linspace(0.0, 20.0 * max(sd, float(scale)), 20001)
    m0 = float(grid[np.argmax(cal.flip_probability(grid) <= target / 2)])
    if z_threshold is None:
        return replace(cal, margin=m0, margin_per_comparison=m0)
    zt = np.broadcast_to(np.asarray(z_threshold, float), za.shape)
    if not (isinstance(n_looks, (int, np.integer)) and n_looks >= 1):
        raise BayesHCCError(f"n_looks={n_looks!r}: the pilot looks behind the comparisons "
                            "(a positive whole number) are needed with z_threshold.")
    dist = np.abs(za - bias - zt)[np.isfinite(za)]
    # flat density near the thresholds at the 95% upper Poisson bound of the pilot's count
    k = int((dist < m0).sum())
    density = float(stats.chi2.ppf(0.95, 2 * (k + 1)) / 2 / (n_looks * m0))
    x = np.linspace(0.0, m0, 2001)
    tail = cal.flip_probability(x)
    # integral of F from x to m0, for every x on the grid (trapezoids from the right)
    upper = np.r_[np.cumsum(((tail[1:] + tail[:-1]) / 2 * np.diff(x))[::-1])[::-1], 0.0]
    far = float(cal.flip_probability(dist[dist >= m0]).sum() / n_looks)
    share = density * upper + far
    i = int(np.argmax(share <= target)) if (share <= target).any() else len(x) - 1
    return replace(cal, margin=float(x[i]), margin_per_comparison=m0, near_density=density,
                   expected_flip_share=float(share[i]))


class McmcShare:
    """A progress bar's running share of screened looks (or completions) refitted by MCMC:
    called with each finished result's counts ``n_looks`` and ``n_mcmc`` (results without
    them add nothing)."""

    def __init__(self, what: str = "looks"):
        self.what = what
        self.looks = self.mcmc = 0

    def __call__(self, rec: dict) -> str:
        self.looks += rec.get("n_looks", 0)
        self.mcmc += rec.get("n_mcmc", 0)
        return f"MCMC at {self.mcmc / self.looks:.0%} of {self.what}" if self.looks else ""
