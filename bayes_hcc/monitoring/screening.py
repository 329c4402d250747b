"""Decision-exact screening of a look with a fast approximation (issue #27, its rules).

A look compares posterior probabilities P(HR < h) with thresholds c (efficacy: h = 1; the
futility rule: h = ``futility_hr``; the final analysis: h = 1, c = ``success``). With an
approximate posterior of the log HR (``bh.laplace``: a mixture of normals over the site
SD's grid), each comparison is made on the probit scale: z = Phi^-1(P(HR < h)) against
Phi^-1(c). The approximation decides a look when every comparison is farther than a
``margin`` from its threshold; otherwise MCMC decides.

The margin is calibrated, not guessed (``calibrate_margin``): on pilot looks fitted both
ways, the errors z_approx - z_MCMC (z_MCMC = Phi^-1 of the MCMC probability) are summarised
by their mean (the bias: systematic errors of the approximation, small since the site SD
is integrated) and SD. Screening uses the bias-corrected probit z_approx - bias
(``MarginCalibration.probability``, ``quantile`` and ``decision`` apply it). Pilot
errors have had heavier tails than normal, so the error model's tail F(x) (the probability
that MCMC lands more than x beyond the corrected probit) is the larger of a normal's and a
Student t's fitted to the errors, widened by sqrt(1 + 1/n) for the pilot's size
(``ErrorTail``); with the thresholds known, each threshold with 20 usable comparisons gets
its own (``MIN_GROUP``). An error is the approximation's own plus MCMC's Monte Carlo error
at the probability compared, which is far larger near an extreme threshold (0.995, 0.999:
a probability resting on a few dozen tail draws) than at the pilot's typical comparison;
with the pilot's MCSEs each error is standardized by its own spread before the tails are
fitted, and each threshold's spread carries MCMC's error there (``mcmc_probit_sd``).

A comparison at distance x from its threshold that the approximation decides flips with
probability F(x); the expected share of flipped decisions at margin m is the average over
looks of the sum of F(x) over their comparisons with x > m. The pilot looks are a sample of
the looks to come, so with their distances (``z_threshold`` and ``n_looks`` given) the
margin is the smallest m whose expected share is at most ``target``: near the thresholds,
where the pilot has few looks, the comparisons per look and probit unit are taken as flat
at the 95% upper Poisson bound of the pilot's count within m0 (below), so that the share
is not understated where the pilot happens to have no look; beyond m0 the pilot's own
comparisons are averaged. The target is split between the thresholds so that every
threshold's margin has the same flip probability F (the split that sends the fewest looks
to MCMC: moving a look to MCMC removes the most expected flips where F is largest).
Without the distances the margin is m0 = the (1 - target / 2)
quantile of the error model: every screened comparison then flips with probability below
``target / 2`` (much more conservative: most screened looks are far beyond the margin).
Pilot pairs whose MCMC probability rests on fewer than 10 draws on its minority side (e.g.
P > 0.9975 from 4,000 draws) are left out of the error model: there the probit of the
MCMC estimate is mostly Monte Carlo noise (its SD is about 0.1 at 10 draws, as large as
the approximation's error, and grows fast below), and such looks are far from any
threshold a plan uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import optimize, stats

from bayes_hcc.errors import BayesHCCError

__all__ = ["approximate", "usable_pairs", "check_target", "look_rules", "rule_distances",
           "approx_decision", "calibrate_margin", "mcmc_probit_sd", "pilot_ess",
           "MarginCalibration", "ErrorTail", "McmcShare", "MIN_TAIL_DRAWS", "MIN_GROUP"]


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


def look_rules(look, ppos_looks: bool = False) -> list[tuple[float, float]] | None:
    """The (HR threshold h, probability threshold c) pairs a look compares P(HR < h) with;
    None when the look has a rule the approximation cannot screen (a PPoS futility rule:
    its completions need the MCMC fit), unless ``ppos_looks`` (then its other rules)."""
    if look.futility_ppos is not None and not ppos_looks:
        return None
    if look.is_final:
        return [(1.0, look.success)]
    rules = []
    if look.efficacy is not None:
        rules.append((1.0, look.efficacy))
    if look.futility is not None:
        rules.append((look.futility_hr, look.futility))
    return rules


def rule_distances(approx, look) -> list[tuple[float, float]] | None:
    """(threshold probit, distance) for each of the look's comparisons: the distance, on
    the probit scale, between the approximation's P(HR < h) and its threshold (None when
    the look cannot be screened). ``approx``: a :class:`~bayes_hcc.LaplaceResult`."""
    rules = look_rules(look)
    if rules is None:
        return None
    return [(float(stats.norm.ppf(c)), float(abs(approx.probit(h) - stats.norm.ppf(c))))
            for h, c in rules]


def approx_decision(approx, look, bias: float = 0.0) -> str:
    """The decision the look's rules give with the approximate probabilities (the same
    rules, in the same order, as ``monitoring.interim.decide``): P(HR < h) is
    Phi(probit - ``bias``) of the approximation ``approx`` (a
    :class:`~bayes_hcc.LaplaceResult`)."""
    def p(h):
        return float(stats.norm.cdf(approx.probit(h) - bias))

    if look.is_final:
        return "success" if p(1.0) > look.success else "no success"
    if look.efficacy is not None and p(1.0) > look.efficacy:
        return "stop for efficacy"
    if look.futility is not None and p(look.futility_hr) < look.futility:
        return "stop for futility"
    if look.futility_ppos is not None:
        raise BayesHCCError(f"look {look.name!r} has a PPoS futility rule: it cannot be "
                            "decided from the approximation.")
    return "continue"


@dataclass(frozen=True)
class ErrorTail:
    """The error model of a group of comparisons around the pooled bias: F(x), the
    probability that MCMC's probit lies more than x beyond the corrected approximation's.

    An error is the approximation's own (SD ``sd``) plus MCMC's Monte Carlo error at the
    probability compared (SD ``noise``: at a threshold, ``mcmc_probit_sd``); its spread is
    s = sqrt(sd^2 (1 + 1/n) + noise^2) (the first term widened for the pilot's size n).
    F(x) is the larger of a normal tail (spread s, shifted by the group's mean's distance
    from the pooled bias) and a Student t's, fitted to the pilot's errors each divided by
    its own spread (``fit``: heavier tails than normal, if the pilot shows them, carry over
    to any threshold). Without MCSEs (``own_var`` None) every pilot error's MCMC part is
    taken as part of ``sd``."""

    sd: float
    shift: float
    t_fit: tuple[float, float, float]  # (df, |loc|, scale) of the standardized errors
    n: int
    noise: float = 0.0

    @classmethod
    def fit(cls, err: np.ndarray, bias: float, own_var=None) -> ErrorTail:
        """From pilot errors ``err`` (z_approx - z_MCMC) and, when known, each error's MCMC
        variance ``own_var`` (MCSE / phi(z_MCMC), squared): the approximation's SD is the
        errors' variance less the mean MCMC variance (never below a fifth of the errors'
        SD)."""
        err = np.asarray(err, float)
        raw = float(err.std(ddof=1))
        own = np.zeros(len(err)) if own_var is None else np.asarray(own_var, float)
        sd = float(np.sqrt(max(raw ** 2 - float(np.mean(own)), (raw / 5) ** 2)))
        df, loc, scale = stats.t.fit((err - bias) / np.sqrt(sd ** 2 + own))
        return cls(sd, abs(float(err.mean()) - bias), (float(df), abs(float(loc)),
                                                      float(scale)), len(err))

    def spread(self) -> float:
        return float(np.hypot(self.sd * np.sqrt(1 + 1 / self.n), self.noise))

    def sf(self, distance) -> np.ndarray:
        d = np.abs(np.asarray(distance, float))
        s = self.spread()
        df, loc, scale = self.t_fit
        return np.maximum(stats.norm.sf((d - self.shift) / s),
                          stats.t.sf((d / s - loc) / scale, df))

    def quantile(self, level: float) -> float:
        """The smallest distance whose tail probability is at most ``level``."""
        if self.sf(0.0) <= level:
            return 0.0
        hi = self.shift + self.spread() * (self.t_fit[1] + max(1.0, self.t_fit[2]))
        while self.sf(hi) > level:  # the t tail can be heavy: widen until past the level
            hi *= 2
        return float(optimize.brentq(lambda x: float(self.sf(x)) - level, 0.0, hi,
                                     xtol=1e-6))


def _key(z_threshold: float) -> float:
    return round(float(z_threshold), 9)


@dataclass(frozen=True)
class MarginCalibration:
    """Pilot errors of the approximation on the probit scale, their tail models and the
    margins they give (around the bias-corrected probit: see the module docstring).
    ``margins``: threshold probit -> margin (a threshold the pilot did not see gets the
    largest); ``margin``: the largest."""

    errors: np.ndarray
    bias: float
    sd: float
    margin: float
    target: float
    normality_p: float
    n_left_out: int = 0
    tail: ErrorTail | None = None  # pooled
    tails: dict = field(default_factory=dict)  # threshold probit -> ErrorTail
    margins: dict = field(default_factory=dict)  # threshold probit -> margin
    margin_per_comparison: float | None = None  # every comparison below target / 2
    expected_flip_share: float | None = None  # at ``margins``
    ess: float | None = None  # MCMC's effective sample size for a probability (pilot)

    @property
    def n_pilot(self) -> int:
        return len(self.errors)

    def probability(self, approx, threshold: float = 1.0) -> float:
        """P(HR < ``threshold``) by the approximation with the pilot's probit bias
        removed: Phi(probit - bias)."""
        return float(stats.norm.cdf(approx.probit(threshold) - self.bias))

    def quantile(self, approx, q: float) -> float:
        """The ``q`` quantile of the log HR by the approximation with the bias removed:
        the x where Phi(probit(exp(x)) - bias) = q, i.e. the approximation's own
        Phi(Phi^-1(q) + bias) quantile."""
        return approx.quantile(float(stats.norm.cdf(stats.norm.ppf(q) + self.bias)))

    def decision(self, approx, look) -> str:
        """The look's decision by the bias-corrected approximation (``approx_decision``)."""
        return approx_decision(approx, look, self.bias)

    def margin_for(self, z_threshold: float) -> float:
        return self.margins.get(_key(z_threshold), self.margin)

    def flip_probability(self, distance, z_threshold: float | None = None) -> np.ndarray:
        """F(x): the probability that a comparison at probit ``distance`` from its
        threshold (bias-corrected) is on the other side under MCMC (that threshold's error
        model when the pilot had one, else the pooled one)."""
        tail = self.tails.get(_key(z_threshold), self.tail) if z_threshold is not None \
            else self.tail
        return tail.sf(distance)

    def decides(self, approx, look) -> bool:
        """Whether the approximation ``approx`` (a :class:`~bayes_hcc.LaplaceResult`)
        decides the look: every comparison farther from its threshold than that
        threshold's margin, after the bias correction (False for a look without screenable
        rules)."""
        rules = look_rules(look)
        return rules is not None and all(self.screens(approx.probit(h), stats.norm.ppf(c))
                                         for h, c in rules)

    def screens(self, z: float, z_threshold: float) -> bool:
        """Whether one comparison is decided by the approximation: its raw probit ``z``,
        bias-corrected, farther from ``z_threshold`` than that threshold's margin."""
        return bool(abs(z - self.bias - z_threshold) > self.margin_for(z_threshold))

    def summary(self) -> dict:
        return {"n_pilot": self.n_pilot, "bias": self.bias, "sd": self.sd,
                "margin": self.margin, "target_flip_share": self.target,
                "expected_flip_share": self.expected_flip_share,
                "margins_by_threshold": {f"{stats.norm.cdf(z):.6g}": m
                                         for z, m in sorted(self.margins.items())},
                "sd_by_threshold": {f"{stats.norm.cdf(z):.6g}": t.sd
                                    for z, t in sorted(self.tails.items())},
                "mcmc_noise_by_threshold": {f"{stats.norm.cdf(z):.6g}": t.noise
                                            for z, t in sorted(self.tails.items())},
                "mcmc_ess": self.ess,
                "margin_per_comparison": self.margin_per_comparison,
                "normality_p": self.normality_p, "pilot_left_out": self.n_left_out}


#: Pilot pairs need this many MCMC draws on the minority side of a probability.
MIN_TAIL_DRAWS = 10
#: A threshold gets its own error model with at least this many usable pilot comparisons.
MIN_GROUP = 20

#: Screening's defaults (design simulations' mode="fast", PPoS's method="fast"): the
#: trials or completions run both ways to calibrate the margin, and the expected share of
#: screened decisions MCMC would flip, at most.
FAST_MODE_PILOT, FAST_MODE_TARGET = 50, 0.001


def mcmc_probit_sd(c: float, ess: float) -> float:
    """SD, on the probit scale, of an MCMC estimate of a probability near ``c`` resting on
    ``ess`` effective draws (delta method: sqrt(c (1 - c) / ess) / phi(Phi^-1(c))). It
    grows fast in the tails: about 0.03 at c = 0.1, 0.06 at 0.975, 0.11 at 0.995 and 0.21
    at 0.999 with 2,000 effective draws."""
    z = stats.norm.ppf(c)
    return float(np.sqrt(c * (1 - c) / ess) / stats.norm.pdf(z))


def pilot_ess(z_exact, mcse) -> float | None:
    """The pilot's typical effective sample size for a probability: the median over the
    pairs of p (1 - p) / MCSE^2 (p = Phi(z_exact)); None without usable values."""
    p = stats.norm.cdf(np.asarray(z_exact, float))
    m = np.asarray(mcse, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ess = p * (1 - p) / m ** 2
    ess = ess[np.isfinite(ess) & (ess > 0)]
    return float(np.median(ess)) if len(ess) else None


def calibrate_margin(z_approx, z_exact, target: float = 0.001, n_draws=None,
                     z_threshold=None, n_looks: int | None = None,
                     mcse=None) -> MarginCalibration:
    """The screening margins from pilot comparisons (module docstring). ``z_approx``,
    ``z_exact``: the probit of P(HR < h) by the approximation and by MCMC for every rule of
    every pilot look; pairs where MCMC's probability is 0 or 1 (infinite probit) are left
    out of the error model, and with ``n_draws`` (the MCMC draws behind each probability)
    those resting on fewer than ``MIN_TAIL_DRAWS`` draws on the minority side.
    ``z_threshold`` (the probit of each comparison's threshold) and ``n_looks`` (the pilot
    looks the approximation would have screened, comparisons or not): each threshold with
    ``MIN_GROUP`` usable comparisons gets its own error model, and the margins keep the
    expected share of flipped decisions per look below ``target``; without them one margin
    keeps every comparison's flip probability below ``target / 2``. ``normality_p``:
    Shapiro-Wilk test of the pooled errors (a small value says the normal error model should
    not be trusted; the Student t tail then usually takes over). ``mcse``: the Monte Carlo
    standard error of each pair's MCMC probability; with it, every threshold's error model
    also carries MCMC's own Monte Carlo error at that threshold (``mcmc_probit_sd`` at the
    pilot's median effective sample size, ``pilot_ess``): near an extreme threshold (0.995,
    0.999) a probability MCMC estimates from a few dozen tail draws moves by 0.1-0.2 on the
    probit scale from one seed to another, far more than at the pilot's typical
    comparison, and a look decided there can come out the other way in an MCMC run with
    its seed. The pilot's errors hold MCMC's error at their own probabilities: each is
    divided by its own spread before the tails are fitted (``ErrorTail``)."""
    target = check_target(target)
    za, ze = np.asarray(z_approx, float), np.asarray(z_exact, float)
    if za.shape != ze.shape:
        raise BayesHCCError("z_approx and z_exact must pair up (same length).")
    ok = np.isfinite(za) & usable_pairs(ze, n_draws)
    err = za[ok] - ze[ok]
    if len(err) < MIN_GROUP:
        raise BayesHCCError(f"{len(err)} usable pilot comparisons; the margin needs at "
                            f"least {MIN_GROUP} (run more pilot looks).")
    bias = float(err.mean())
    pooled = ErrorTail.fit(err, bias)
    m0 = pooled.quantile(target / 2)
    cal = MarginCalibration(err, bias, pooled.sd, m0, float(target),
                            float(stats.shapiro(err[:5000]).pvalue),
                            int(ok.size - ok.sum()), pooled, margin_per_comparison=m0)
    if z_threshold is None:
        return cal
    if not (isinstance(n_looks, (int, np.integer)) and n_looks >= 1):
        raise BayesHCCError(f"n_looks={n_looks!r}: the pilot looks behind the comparisons "
                            "(a positive whole number) are needed with z_threshold.")
    try:
        zt = np.broadcast_to(np.asarray(z_threshold, float), za.shape)
    except ValueError:
        raise BayesHCCError(f"z_threshold has shape {np.shape(z_threshold)}: give one "
                            f"threshold probit, or one per comparison ({za.size})."
                            ) from None
    keys = np.array([_key(z) for z in zt])
    seen = np.isfinite(za)
    dist = np.abs(za - bias - zt)
    ess, own = None, None
    if mcse is not None:
        try:
            m = np.broadcast_to(np.asarray(mcse, float), za.shape)
        except ValueError:
            raise BayesHCCError(f"mcse has shape {np.shape(mcse)}: give the Monte Carlo "
                                f"standard error of each comparison's MCMC probability "
                                f"({za.size}).") from None
        ess = pilot_ess(ze[ok], m[ok])
        with np.errstate(invalid="ignore", divide="ignore"):
            own = (m / stats.norm.pdf(ze)) ** 2  # each pair's MCMC probit variance
        pooled = ErrorTail.fit(err, bias, own[ok])
    tails, groups = {}, []
    for k in sorted(set(keys[seen].tolist())):
        mine = keys == k
        use = mine & ok
        tail = (ErrorTail.fit(za[use] - ze[use], bias, None if own is None else own[use])
                if use.sum() >= MIN_GROUP else pooled)
        if ess is not None:  # MCMC's own error at this threshold
            tail = replace(tail, noise=mcmc_probit_sd(float(stats.norm.cdf(k)), ess))
        tails[k] = tail
        groups.append((k, tail, dist[mine & seen]))

    def expected(level):
        """Margins where every threshold's flip probability is ``level`` (the cheapest
        split of the target: a look moved to MCMC buys the most where F is largest), and
        the expected share of flipped decisions per look with them."""
        margins, share = {}, 0.0
        for k, tail, d in groups:
            m_max = tail.quantile(target / 2)
            m = min(tail.quantile(level), m_max)
            margins[k] = m
            # flat density near the threshold (95% upper Poisson bound of the pilot's
            # count within m_max); beyond m_max the pilot's own comparisons
            density = stats.chi2.ppf(0.95, 2 * ((d < m_max).sum() + 1)) / 2 / (
                n_looks * m_max)
            x = np.linspace(m, m_max, 401)
            f = tail.sf(x)
            share += density * float(((f[1:] + f[:-1]) / 2 * np.diff(x)).sum())
            share += float(tail.sf(d[d >= m_max]).sum()) / n_looks
        return margins, share

    # the largest common level whose expected share is within the target (bisection on
    # log level; the share grows with the level)
    lo, hi = np.log(target / 2), np.log(0.5)
    margins, share = expected(target / 2)
    if share <= target:
        for _ in range(30):  # the level to 1e-4 of its log
            mid = (lo + hi) / 2
            m_mid, s_mid = expected(np.exp(mid))
            if s_mid <= target:
                lo, margins, share = mid, m_mid, s_mid
            else:
                hi = mid
    return replace(cal, tails=tails, margins=margins, margin=max(margins.values()),
                   expected_flip_share=float(share), ess=ess)


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
