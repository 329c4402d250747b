"""The Cox partial likelihood of one binary covariate (the arm), stratified, Efron ties:
the final rule of ``method="normal"`` fits it once per completed trial.

Why our own and not lifelines': a completed trial's fit costs lifelines' ``CoxPHFitter``
about 80 ms (statsmodels' ``PHReg`` about 30 ms), nearly all of it data-frame and
per-event-time overhead, and a predictive probability fits hundreds. With a 0/1 covariate
the whole likelihood is a function of four counts per (stratum, event time): patients at
risk and deaths in each arm. With ``n0, n1`` at risk and ``d0, d1`` deaths (``d = d0 + d1``),
Efron's approximation contributes, for ``l = 0 .. d - 1``,

    beta * d1 - log(A_l + B_l exp(beta)),  A_l = n0 - (l / d) d0,  B_l = n1 - (l / d) d1,

so with ``p_l = B_l exp(beta) / (A_l + B_l exp(beta))`` the score is ``sum d1 - sum p_l`` and
the information ``sum p_l (1 - p_l)``: one-dimensional Newton on whole arrays, well under a
millisecond. Tested against statsmodels' ``PHReg`` (ties, strata) to 1e-8, and against
lifelines within the tolerance at which its Newton iterations stop.

The estimate exists unless the likelihood is monotone: as beta -> +inf the score tends to
``D1 - #{terms with B > 0}``, as beta -> -inf to ``D1 - #{terms with A = 0}``, so a finite
maximum needs ``#{A = 0} < D1 < #{B > 0}`` (with 0/1 counts, ``A = 0`` exactly when no arm-0
patient is at risk). Otherwise (in practice: an arm without events) :func:`efron_log_hr`
returns an infinite estimate, and :func:`normal_prior_posterior` still has a mode: the
normal prior keeps it finite.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EfronTerms", "efron_terms", "efron_log_hr", "normal_prior_posterior"]


class EfronTerms:
    """The Efron terms ``A_l, B_l`` of every (stratum, event time) and the arm-1 death count:
    everything the partial likelihood of the arm reads."""

    def __init__(self, a: np.ndarray, b: np.ndarray, d1: float):
        self.a, self.b, self.d1 = a, b, float(d1)

    def loglik(self, beta: float) -> float:
        return beta * self.d1 - float(np.sum(np.log(self.a + self.b * np.exp(beta))))

    def score_info(self, beta: float) -> tuple[float, float]:
        e = self.b * np.exp(beta)
        p = e / (self.a + e)
        return self.d1 - float(p.sum()), float(np.sum(p * (1.0 - p)))

    def bounded(self) -> tuple[bool, bool]:
        """(finite maximum above -inf, finite maximum below +inf): whether the score turns
        negative as beta -> +inf and positive as beta -> -inf."""
        return (self.d1 > np.count_nonzero(self.a == 0),
                self.d1 < np.count_nonzero(self.b > 0))


def efron_terms(time, event, arm, strata=None) -> EfronTerms:
    """Build the terms from arrays (``arm`` 0/1, ``event`` 0/1, ``strata`` any labels)."""
    time = np.asarray(time, float)
    event = np.asarray(event, float) > 0
    arm = np.asarray(arm, int)
    if strata is None:
        codes = np.zeros(len(time), np.int64)
    else:
        codes = np.unique(np.asarray(strata), return_inverse=True)[1].ravel()
    a_all, b_all = [], []
    for s in np.unique(codes):
        m = codes == s
        t, e, x = time[m], event[m], arm[m]
        if not e.any():
            continue
        ut, inv = np.unique(t[e], return_inverse=True)
        d0 = np.bincount(inv, weights=(x[e] == 0), minlength=len(ut))
        d1 = np.bincount(inv, weights=(x[e] == 1), minlength=len(ut))
        # at risk at ut: time >= ut, in each arm
        t0, t1 = np.sort(t[x == 0]), np.sort(t[x == 1])
        n0 = len(t0) - np.searchsorted(t0, ut, side="left")
        n1 = len(t1) - np.searchsorted(t1, ut, side="left")
        d = (d0 + d1).astype(np.int64)
        j = np.repeat(np.arange(len(ut)), d)
        frac = (np.arange(d.sum()) - np.repeat(np.cumsum(d) - d, d)) / d[j]
        a_all.append(n0[j] - frac * d0[j])
        b_all.append(n1[j] - frac * d1[j])
    a = np.concatenate(a_all) if a_all else np.zeros(0)
    b = np.concatenate(b_all) if b_all else np.zeros(0)
    return EfronTerms(a, b, float(np.sum(event & (arm == 1))))


def _newton(objective, beta: float = 0.0, *, tol: float = 1e-10,
            max_iter: int = 100) -> tuple[float, float]:
    """Maximise a concave function of one variable given ``objective(beta) -> (value,
    slope, curvature)`` (curvature > 0 meaning concave); step halving keeps every step
    uphill. Returns (argmax, curvature there)."""
    value, slope, curv = objective(beta)
    for _ in range(max_iter):
        step = slope / curv
        for _ in range(60):
            new = objective(beta + step)
            if new[0] >= value - 1e-12 * abs(value):
                break
            step /= 2
        beta += step
        value, slope, curv = new
        if abs(step) < tol:
            break
    return beta, curv


def efron_log_hr(time, event, arm, strata=None) -> tuple[float, float]:
    """Cox log HR of arm 1 vs arm 0 (Efron ties, stratified by ``strata`` if given) and its
    SE from the observed information. When no finite maximum exists (an arm without
    events) the estimate is -inf or +inf and the SE inf; without any event it is nan."""
    terms = efron_terms(time, event, arm, strata)
    if terms.a.size == 0:
        return float("nan"), float("inf")
    lower_ok, upper_ok = terms.bounded()
    if not (lower_ok and upper_ok):
        return (float("-inf") if not lower_ok else float("inf")), float("inf")

    def objective(beta):
        return (terms.loglik(beta), *terms.score_info(beta))

    beta, info = _newton(objective)
    return float(beta), float(1.0 / np.sqrt(info))


def normal_prior_posterior(time, event, arm, strata, mu: float,
                           sigma: float) -> tuple[float, float]:
    """Mode and SD (from the curvature there) of the partial likelihood times a
    Normal(``mu``, ``sigma``) prior on the log HR: finite whatever the data."""
    terms = efron_terms(time, event, arm, strata)

    def objective(beta):
        score, info = terms.score_info(beta)
        return (terms.loglik(beta) - 0.5 * ((beta - mu) / sigma) ** 2,
                score - (beta - mu) / sigma**2, info + 1.0 / sigma**2)

    beta, curv = _newton(objective, mu)
    return float(beta), float(1.0 / np.sqrt(curv))
