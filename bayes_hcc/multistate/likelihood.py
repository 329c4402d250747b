"""The illness-death likelihood, written once for numpy and PyTensor from the families'
cumulative and log hazards (``Family.cumhaz_x``, ``Family.log_hazard_x``).

Transitions 0->1 (progression), 0->2 (death without progression) and 1->2 (death after
progression), with cumulative hazards H01, H02, H12 and hazards a01, a02, a12 (each with its
own linear predictor). S0(u) = exp(-H01(u) - H02(u)) is the probability of being alive and
progression-free at u. After a progression at u the death hazard at t is a12(t) on the
clock-forward (Markov) scale, a12(t - u) on the clock-reset (semi-Markov) scale; S12(u, t)
is the probability of surviving from u to t after progressing at u:
exp(-(H12(t) - H12(u))) or exp(-H12(t - u)).

Each patient's contribution, with L, R, T, death d (``multistate.data``):

* progression seen exactly at R:      S0(R) a01(R) S12(R, T) a12(.)^d
* progression seen in (L, R]:          int_L^R S0(u) a01(u) S12(u, T) a12(.)^d du
* no progression seen (last free at L): S0(T) a02(T)^d
                                        + int_L^T S0(u) a01(u) S12(u, T) a12(.)^d du
  (the patient may have progressed, unseen, between the last scan and T).

The integrals use Gauss-Legendre quadrature on pieces split at every time where a hazard is
not smooth (the families' ``breakpoints``: the piecewise baseline's cuts; on the clock-reset
scale the 1->2 cuts are moved to u = T - c). Between breakpoints a piecewise-exponential
integrand is exp(linear in u), which 8 nodes integrate to double precision (tested against
the closed form), so those pieces are not graded (half the nodes of the example trial). A
Weibull integrand is smooth inside the interval but may be singular at its ends (u^(k-1) at
u = 0; (T - u)^(k-1) at u = T on the clock-reset scale): the pieces are graded
geometrically towards those ends (hp-quadrature), and agree with adaptive quadrature (scipy)
to 1e-7 relative (tested).

The quadrature layout (nodes, weights, the time features of every time the hazards are read
at) depends only on the data and the families' breakpoints: it is computed once in numpy and
enters the graph as data.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TRANSITIONS", "GROUPS", "QUAD_WIDTHS", "TIMES", "layout", "loglik_terms",
           "loglik_numpy", "N_NODES"]

#: transition keys: 0->1, 0->2, 1->2
TRANSITIONS = ("progression", "death_without_progression", "death_after_progression")
#: Gauss-Legendre nodes per piece
N_NODES = 8
#: every integration interval is split in at least this many equal pieces (before the
#: breakpoints): Weibull integrands near t = 0 vary fast on the log scale
MIN_PIECES = 2

_GL_X, _GL_W = np.polynomial.legendre.leggauss(N_NODES)


#: pieces graded geometrically (ratio GRADE, GRADE_LEVELS of them) towards an end where the
#: integrand may be singular: u = 0 (a Weibull hazard ~ u^(k-1)) and, on the clock-reset
#: scale, u = T (the death hazard ~ (T - u)^(k-1)): hp-quadrature, exponentially convergent
#: for algebraic singularities
GRADE, GRADE_LEVELS = 0.15, 6


def _pieces(lo: float, hi: float, splits, grade_lo: bool, grade_hi: bool,
            n_even: int = MIN_PIECES) -> np.ndarray:
    inner = [s for s in splits if lo < s < hi]
    even = np.linspace(lo, hi, n_even + 1)[1:-1]
    width = (hi - lo) / n_even
    levels = GRADE ** np.arange(1, GRADE_LEVELS + 1) * width
    graded = ([lo + levels] if grade_lo else []) + ([hi - levels] if grade_hi else [])
    return np.unique(np.concatenate([[lo, hi], even, inner] + graded))


def _nodes(lo, hi, splits_for, grade_hi=False, max_width=None, graded=True):
    """Nodes and weights (n, Q) of int_lo^hi, split at ``splits_for(i)`` for patient i and
    graded towards lo = 0 (and towards hi when ``grade_hi``); padded with zero-weight nodes
    inside the interval (where the integrand is finite), or at lo / 2 when it is empty.
    Each interval is cut in ``MIN_PIECES`` equal pieces, or with ``max_width`` in as few
    as keep every piece at most that wide. ``graded=False``: no grading at either end,
    for integrands that are exp(linear) between the splits (hazards constant there: the
    families' ``constant_between_breakpoints``), where it adds nodes and no accuracy."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    n_even = (np.full(len(lo), MIN_PIECES) if max_width is None else
              np.maximum(np.ceil((hi - lo) / max_width), 1).astype(int))
    edges = [_pieces(a, b, splits_for(i), graded and a == 0, graded and grade_hi, n_even[i])
             if b > a
             else np.array([a, b]) for i, (a, b) in enumerate(zip(lo, hi))]
    n_pieces = max((len(e) - 1 for e in edges), default=1)
    q = n_pieces * N_NODES
    pad = np.where(hi > lo, (lo + hi) / 2, lo / 2)
    nodes = np.repeat(pad[:, None], q, axis=1)
    weights = np.zeros((len(lo), q))
    for i, e in enumerate(edges):
        if e[-1] <= e[0]:
            continue
        a, b = e[:-1, None], e[1:, None]
        half = (b - a) / 2
        u = (a + b) / 2 + half * _GL_X[None, :]
        w = half * _GL_W[None, :]
        nodes[i, :u.size] = u.ravel()
        weights[i, :w.size] = w.ravel()
    return nodes, weights


#: the patient groups: progression seen exactly, progression seen in an interval, no
#: progression seen with time between the last scan and T (an integral), and no
#: progression seen up to T itself (progression-free at death or censoring: no integral).
#: Each integral group is split by where its intervals start: at 0 (never scanned before:
#: graded towards 0 where a hazard may be singular there, many more nodes) or later; each
#: part is padded to its own widest row, so the many later-starting rows do not carry the
#: graded rows' nodes.
GROUPS = ("exact", "interval", "interval_from_0", "free", "free_from_0", "direct")
#: the integral groups, padded to one width per tuple (two matrices of log weights)
QUAD_WIDTHS = (("interval", "free"), ("interval_from_0", "free_from_0"))
#: what each integral group integrates: progression in (L, R], or unseen progression in
#: (L, T) beside no progression at all
QUAD_KIND = {"interval": "interval", "interval_from_0": "interval", "free": "free",
             "free_from_0": "free"}
_TIMES = {"markov": {"exact": ("R", "T"), "interval": ("u", "T_node"),
                     "free": ("u", "T_node", "T"), "direct": ("T",)},
          "semi_markov": {"exact": ("R", "T-R"), "interval": ("u", "T-u"),
                          "free": ("u", "T-u", "T"), "direct": ("T",)}}
#: the times each group's hazards are read at (``layout``'s ``tf`` keys), per time scale
TIMES = {scale: {g: times[QUAD_KIND.get(g, g)] for g in GROUPS}
         for scale, times in _TIMES.items()}


def check_families(families) -> None:
    """The three transitions read the same time features (one family class; the
    piecewise baseline on one set of cuts): the layout computes them once per time."""
    first = families[0]
    for f in families[1:]:
        if type(f) is not type(first) or f.structure() != first.structure() or \
                not np.array_equal(f.breakpoints(), first.breakpoints()):
            raise ValueError("the three transitions need the same baseline family and layout")


def layout(data, families, time_scale: str) -> dict:
    """numpy arrays of the likelihood for these data and families, per group (``GROUPS``):
    the patient indices, deaths, quadrature log weights (n, Q) with the same Q in the
    integral groups padded together (``QUAD_WIDTHS``), and the time features of every time
    the hazards are read at (``tf``: {which: features}; ``TIMES``). The three transitions
    share the features (``check_families``)."""
    check_families(families)
    f01 = families[0]
    L, R, T = data.prog_lower, data.prog_upper, data.time
    d = data.death.astype(float)
    b01, b02, b12 = (np.asarray(f.breakpoints(), float) for f in families)
    fixed = np.unique(np.concatenate([b01, b02] + ([b12] if time_scale == "markov" else [])))

    def splits(t_end):
        if time_scale == "markov":
            return lambda i: fixed
        return lambda i: np.concatenate([fixed, t_end[i] - b12])

    out = {"time_scale": time_scale}
    i1 = np.flatnonzero(data.exact)
    times = {"R": R[i1], "T": T[i1], "T-R": T[i1] - R[i1]}
    out["exact"] = {"idx": i1, "death": d[i1],
                    "tf": {w: f01.time_features(times[w]) for w in TIMES[time_scale]["exact"]}}
    # integrals: progression in (L, R], and unseen progression in (L, T); clock reset:
    # a12(T - u) may be singular where the interval reaches T
    free = ~data.progressed
    # followed for no time at all (randomised at the cut): contribute exactly 0, left out
    i4 = np.flatnonzero(free & (L >= T) & (T > 0))
    out["direct"] = {"idx": i4, "death": d[i4], "tf": {"T": f01.time_features(T[i4])}}
    quad = {}
    for name, rows, hi in (("interval", np.flatnonzero(data.interval), R),
                           ("free", np.flatnonzero(free & (L < T)), T)):
        for part, keep in ((name, L[rows] > 0), (f"{name}_from_0", L[rows] == 0)):
            sub = rows[keep]
            quad[part] = (sub, *_nodes(L[sub], hi[sub], splits(T[sub]),
                                       grade_hi=time_scale != "markov",
                                       graded=not f01.constant_between_breakpoints))
    for together in QUAD_WIDTHS:  # same width in each: pad with zero weights
        q = max(quad[g][1].shape[1] for g in together)
        for name in together:
            rows, nodes, weights = quad[name]
            extra = q - nodes.shape[1]
            nodes = np.concatenate([nodes, np.repeat(nodes[:, :1], extra, axis=1)], axis=1)
            weights = np.concatenate([weights, np.zeros((len(rows), extra))], axis=1)
            u = nodes.ravel()
            t_rep = np.repeat(T[rows], q)
            times = {"u": u, "T_node": t_rep, "T-u": t_rep - u, "T": T[rows]}
            out[name] = {"idx": rows, "death": d[rows], "death_node": np.repeat(d[rows], q),
                         "node_idx": np.repeat(rows, q),
                         # log weights: -inf where padded (0 weight)
                         "log_weight": np.where(weights > 0, np.log(np.where(
                             weights > 0, weights, 1.0)), -np.inf),
                         "tf": {w: f01.time_features(times[w])
                                for w in TIMES[time_scale][name]}}
    return out


def _lse_rows(xp, terms, log_weight, extra=None):
    """log( exp(extra) + sum_k exp(terms_k + log_weight_k) ) per patient: ``terms``
    B + (n q,) flattened by patient, ``log_weight`` (n, q) (-inf where padded), ``extra``
    B + (n,) or None."""
    if xp is np:
        x = terms.reshape(terms.shape[:-1] + log_weight.shape) + log_weight
    else:
        x = terms.reshape(log_weight.shape) + log_weight
    if extra is not None:
        x = xp.concatenate([x, extra[..., None]], axis=-1)
    m = x.max(axis=-1, keepdims=True)
    if xp is np:
        m = np.where(np.isfinite(m), m, 0.0)
    return m[..., 0] + xp.log(xp.exp(x - m).sum(axis=-1))


def loglik_terms(xp, families, params, etas, lay) -> list:
    """Per-patient log-likelihood of each group (``GROUPS``), each B + (n_g,),
    with the patient indices of each group. ``params`` and ``etas`` are per transition
    (etas B + (n,)); ``lay`` is :func:`layout`'s output (numpy, or graph data of the same
    structure)."""
    f01, f02, f12 = families
    p01, p02, p12 = params
    e01, e02, e12 = etas
    markov = lay["time_scale"] == "markov"

    def take(e, idx):
        return e[..., idx]

    def H(f, p, x, e):
        return f.cumhaz_x(xp, p, x, e)

    def logh(f, p, x, e):
        return f.log_hazard_x(xp, p, x, e)

    def progressed_at(tf, at, end, gap, death, rows):
        """log of S0(x) a01(x) S12(x, T) a12^d: progression at x (the times ``at``), then
        death (d = 1) or censoring at T (``end``; ``gap`` = T - x on the clock-reset
        scale)."""
        a, b, c = take(e01, rows), take(e02, rows), take(e12, rows)
        x = tf[at]
        out = -H(f01, p01, x, a) - H(f02, p02, x, b) + logh(f01, p01, x, a)
        if markov:
            return out - (H(f12, p12, tf[end], c) - H(f12, p12, x, c)) \
                + death * logh(f12, p12, tf[end], c)
        return out - H(f12, p12, tf[gap], c) + death * logh(f12, p12, tf[gap], c)

    out = []
    g = lay["exact"]
    out.append((progressed_at(g["tf"], "R", "T", "T-R", g["death"], g["idx"]), g["idx"]))
    for name, kind in QUAD_KIND.items():
        g = lay[name]
        i, tf = g["idx"], g["tf"]
        log_f = progressed_at(tf, "u", "T_node", "T-u", g["death_node"], g["node_idx"])
        extra = None
        if kind == "free":  # no progression before T: S0(T) a02(T)^d
            a, b = take(e01, i), take(e02, i)
            extra = -H(f01, p01, tf["T"], a) - H(f02, p02, tf["T"], b) \
                + g["death"] * logh(f02, p02, tf["T"], b)
        out.append((_lse_rows(xp, log_f, g["log_weight"], extra), i))
    g = lay["direct"]  # progression-free up to T: S0(T) a02(T)^d
    i, tf = g["idx"], g["tf"]
    a, b = take(e01, i), take(e02, i)
    out.append((-H(f01, p01, tf["T"], a) - H(f02, p02, tf["T"], b)
                + g["death"] * logh(f02, p02, tf["T"], b), i))
    return out


def loglik_numpy(families, params, etas, lay, n_patients: int) -> np.ndarray:
    """Per-patient log-likelihood (S, n) from numpy draws (S, ...) and etas (S, n)."""
    first = np.asarray(etas[0])
    out = np.zeros(first.shape[:-1] + (n_patients,))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for ll, idx in loglik_terms(np, families, params, etas, lay):
            out[..., idx] = ll
    return out
