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

__all__ = ["TRANSITIONS", "N_BLOCKS", "layout", "loglik_terms", "loglik_numpy", "N_NODES"]

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


def _nodes(lo, hi, splits, grade_hi=False, max_width=None, graded=True):
    """Nodes and weights (n, Q) of int_lo^hi, split at ``splits`` (one array for every
    interval, or one row per interval: (n, k), NaN where a row has fewer) and graded towards
    lo = 0 (and towards hi when ``grade_hi``); padded with zero-weight nodes inside the
    interval (where the integrand is finite), or at lo / 2 when it is empty. Each interval
    is cut in ``MIN_PIECES`` equal pieces, or with ``max_width`` in as few as keep every
    piece at most that wide. ``graded=False``: no grading at either end, for integrands that
    are exp(linear) between the splits (hazards constant there: the families'
    ``constant_between_breakpoints``), where it adds nodes and no accuracy.

    All intervals at once: each row's candidate edges (its ends, the equal cuts, the splits
    inside it, the graded points) sorted, repeats dropped, and Gauss-Legendre nodes put on
    every piece between neighbouring edges (a row at a time, the medians' 600-time grid
    took 36 ms instead of 1.2: a tenth to a fifth of the medians' time)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    n = len(lo)
    n_even = (np.full(n, MIN_PIECES) if max_width is None else
              np.maximum(np.ceil((hi - lo) / max_width), 1).astype(int))
    splits = np.asarray(splits, float)
    splits = np.broadcast_to(splits, (n, splits.shape[-1])) if splits.ndim == 1 else splits
    open_ = hi > lo
    with np.errstate(invalid="ignore", divide="ignore"):
        width = (hi - lo) / n_even
        k = np.arange(1, max(int(n_even.max(initial=1)), 1), dtype=float)
        even = np.where(k[None, :] < n_even[:, None], k[None, :] * width[:, None]
                        + lo[:, None], np.nan)
        inner = np.where((splits > lo[:, None]) & (splits < hi[:, None]), splits, np.nan)
        levels = GRADE ** np.arange(1, GRADE_LEVELS + 1) * width[:, None]
        at_0 = (graded & (lo == 0))[:, None]
        graded_lo = np.where(at_0, lo[:, None] + levels, np.nan)
        graded_hi = np.where(graded and grade_hi, hi[:, None] - levels, np.nan)
    edges = np.sort(np.concatenate([lo[:, None], hi[:, None], even, inner, graded_lo,
                                    graded_hi], axis=1), axis=1)
    repeat = np.zeros(edges.shape, bool)
    repeat[:, 1:] = edges[:, 1:] == edges[:, :-1]
    edges = np.sort(np.where(repeat, np.nan, edges), axis=1)  # NaN sorts last
    n_edges = np.where(open_, (~np.isnan(edges)).sum(axis=1), 2)
    n_pieces = int(n_edges.max(initial=2)) - 1
    a, b = edges[:, :n_pieces], edges[:, 1:n_pieces + 1]
    piece = open_[:, None] & (np.arange(n_pieces)[None, :] < (n_edges - 1)[:, None])
    half = np.where(piece, (b - a) / 2, 0.0)
    pad = np.where(open_, (lo + hi) / 2, lo / 2)
    u = np.where(piece[..., None], ((a + b) / 2)[..., None] + half[..., None] * _GL_X,
                 pad[:, None, None])
    w = np.where(piece[..., None], half[..., None] * _GL_W, 0.0)
    return u.reshape(n, n_pieces * N_NODES), w.reshape(n, n_pieces * N_NODES)


#: The rows of the likelihood, in three blocks. Every row is one term of a patient's
#: likelihood: a progression at a time x (seen exactly, or a quadrature node of an
#: integral) or no progression up to T (x = T). Block 0 holds the patients with one term:
#: progression seen exactly, and progression-free up to T itself (no integral). Blocks 1 and
#: 2 hold the patients with an integral, as matrices (patients, nodes + 1): the quadrature
#: nodes of progression in (L, R] or unseen in (L, T), then one no-progression term (the
#: patient progression-free at T: weight 1 when no progression was seen, 0 when one was).
#: Block 2 holds the intervals that start at 0 (never scanned before: graded towards 0 where
#: a hazard may be singular there, many more nodes), block 1 the later-starting ones, so
#: that those many rows do not carry the graded rows' nodes. Every transition's hazards are
#: then read once, on all rows together: the graph holds one evaluation per transition and
#: time (seven), not one per group.
N_BLOCKS = 3


def check_families(families) -> None:
    """The three transitions read the same time features (one family class; the
    piecewise baseline on one set of cuts): the layout computes them once per time."""
    first = families[0]
    for f in families[1:]:
        if type(f) is not type(first) or f.structure() != first.structure() or \
                not np.array_equal(f.breakpoints(), first.breakpoints()):
            raise ValueError("the three transitions need the same baseline family and layout")


def layout(data, families, time_scale: str) -> dict:
    """numpy arrays of the likelihood for these data and families (see ``N_BLOCKS``): per
    row, the patient (``pid``), whether it is a progression term (``prog``), the patient's
    death indicator, the time features where progression and death without progression are
    read (``x``: the progression time, or T) and where death after progression is read
    (``y``: T on the clock-forward scale, T - x on the clock-reset scale; T on the rows
    that are not progression terms, where it is multiplied by 0); and the log quadrature
    weights of blocks 1 and 2 (``log_weight``: matrices, -inf where a row is padded or a
    weight is 0). The three transitions share the features (``check_families``)."""
    check_families(families)
    f01 = families[0]
    L, R, T = data.prog_lower, data.prog_upper, data.time
    d = data.death.astype(float)
    markov = time_scale == "markov"
    b01, b02, b12 = (np.asarray(f.breakpoints(), float) for f in families)
    fixed = np.unique(np.concatenate([b01, b02] + ([b12] if markov else [])))

    def splits(t_end):
        if markov:
            return fixed
        return np.concatenate([np.broadcast_to(fixed, (len(t_end), len(fixed))),
                               t_end[:, None] - b12[None, :]], axis=1)

    # block 0: progression seen exactly at R; progression-free up to T itself (followed for
    # no time at all, randomised at the cut: contributes exactly 0, left out)
    free = ~data.progressed
    i1 = np.flatnonzero(data.exact)
    i4 = np.flatnonzero(free & (L >= T) & (T > 0))
    pid = [i1, i4]
    x = [R[i1], T[i4]]
    prog = [np.ones(len(i1)), np.zeros(len(i4))]
    log_weight = []
    # blocks 1 and 2: progression in (L, R], unseen progression in (L, T); on the clock-reset
    # scale a12(T - u) may be singular where the interval reaches T
    interval, unseen = np.flatnonzero(data.interval), np.flatnonzero(free & (L < T))
    for from_0 in (False, True):
        parts = []
        for rows, hi, seen in ((interval, R, True), (unseen, T, False)):
            sub = rows[(L[rows] == 0) == from_0]
            parts.append((sub, seen, *_nodes(L[sub], hi[sub], splits(T[sub]),
                                              grade_hi=not markov,
                                              graded=not f01.constant_between_breakpoints)))
        q = max(p[2].shape[1] for p in parts)
        weights = []
        for sub, seen, nodes, w in parts:  # pad to one width; the last column: no progression
            extra = q - nodes.shape[1]
            nodes = np.concatenate([nodes, np.repeat(nodes[:, :1], extra, axis=1),
                                    T[sub, None]], axis=1)
            w = np.concatenate([w, np.zeros((len(sub), extra)),
                                np.full((len(sub), 1), 0.0 if seen else 1.0)], axis=1)
            pid.append(np.repeat(sub, q + 1))
            x.append(nodes.ravel())
            prog.append(np.tile(np.r_[np.ones(q), 0.0], len(sub)))
            weights.append(w)
        with np.errstate(divide="ignore"):
            log_weight.append(np.log(np.concatenate(weights)))
    pid = np.concatenate(pid).astype(np.int64)
    x, prog = np.concatenate(x), np.concatenate(prog)
    y = T[pid]
    if not markov:
        # T - x; 0 only for a progression seen exactly at T and censored that day, whose
        # death hazard (infinite there for a Weibull shape < 1) enters times 0, and where
        # the gradient of a Weibull H12 is 0 * log(0): read at the smallest positive number
        # instead (2.2e-308), where the hazard and every gradient are finite and H12 is 0
        # to double precision for any shape above 0.05 (lambda * 2.2e-308^k)
        y = np.where(prog > 0, np.maximum(T[pid] - x, np.finfo(float).tiny), y)
    return {"time_scale": time_scale, "pid": pid, "prog": prog, "death": d[pid],
            "x": f01.time_features(x), "y": f01.time_features(y),
            "log_weight": log_weight}


def _lse_rows(xp, terms, log_weight):
    """log sum_k exp(terms_k + log_weight_k) per patient: ``terms`` B + (n q,) flattened by
    patient, ``log_weight`` (n, q) (-inf where a weight is 0)."""
    if xp is np:
        x = terms.reshape(terms.shape[:-1] + log_weight.shape) + log_weight
    else:
        x = terms.reshape(log_weight.shape) + log_weight
    m = x.max(axis=-1, keepdims=True)
    if xp is np:
        m = np.where(np.isfinite(m), m, 0.0)
    return m[..., 0] + xp.log(xp.exp(x - m).sum(axis=-1))


def loglik_terms(xp, families, params, etas, lay) -> list:
    """Per-patient log-likelihood of each block (``N_BLOCKS``), each B + (n_b,), with the
    patient indices of each block. ``params`` and ``etas`` are per transition (etas
    B + (n,)); ``lay`` is :func:`layout`'s output (numpy, or graph data of the same
    structure).

    On every row: log S0(x) + a01(x) if a progression term, else + a02(x)^d; a progression
    term adds log S12(x, T) + a12(.)^d (read at y). A row that is not a progression term
    has the progression and post-progression parts multiplied by 0, so every hazard is read
    once on all rows."""
    f01, f02, f12 = families
    p01, p02, p12 = params
    pid, prog, d, x, y = (lay[k] for k in ("pid", "prog", "death", "x", "y"))
    e01, e02, e12 = (e[..., pid] for e in etas)
    ll = (-f01.cumhaz_x(xp, p01, x, e01) - f02.cumhaz_x(xp, p02, x, e02)
          + prog * f01.log_hazard_x(xp, p01, x, e01)
          + (1.0 - prog) * d * f02.log_hazard_x(xp, p02, x, e02))
    after = -f12.cumhaz_x(xp, p12, y, e12) + d * f12.log_hazard_x(xp, p12, y, e12)
    if lay["time_scale"] == "markov":  # survival from x to T: H12(T) - H12(x)
        after = after + f12.cumhaz_x(xp, p12, x, e12)
    ll = ll + prog * after
    sizes = [w.shape[0] * w.shape[1] for w in lay["log_weight"]]
    start = ll.shape[-1] - sizes[0] - sizes[1]
    out = [(ll[..., :start], pid[:start])]
    for w, size in zip(lay["log_weight"], sizes):
        out.append((_lse_rows(xp, ll[..., start:start + size], w),
                    pid[start:start + size][::w.shape[1]]))
        start = start + size
    return out


def loglik_numpy(families, params, etas, lay, n_patients: int) -> np.ndarray:
    """Per-patient log-likelihood (S, n) from numpy draws (S, ...) and etas (S, n)."""
    first = np.asarray(etas[0])
    out = np.zeros(first.shape[:-1] + (n_patients,))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for ll, idx in loglik_terms(np, families, params, etas, lay):
            out[..., idx] = ll
    return out
