"""Prior: a small, serialisable description of a prior, usable in PyMC and in numpy.

The same object builds the PyMC variable and evaluates the log density in scipy, so the
``log_prior`` group of a fit (for power-scaling sensitivity) is computed independently of
the PyMC graph and a test checks the two agree.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
from scipy import stats

from bayes_hcc.errors import SpecError

__all__ = ["Prior", "MixturePrior", "IntervalMixturePrior", "DISTRIBUTIONS",
           "support_problem", "DEFAULT_PRIORS"]

# name -> (parameters, positive support?)
DISTRIBUTIONS = {
    "Normal": (("mu", "sigma"), False),
    "StudentT": (("nu", "mu", "sigma"), False),
    "HalfNormal": (("sigma",), True),
    "HalfStudentT": (("nu", "sigma"), True),
    "Exponential": (("lam",), True),
}


def _canonical_dist(dist) -> str:
    """A distribution's name as ``DISTRIBUTIONS`` spells it, read regardless of case,
    ``_`` and ``-`` (``"normal"``, ``"half_normal"``, ``"Student-T"``): TOML files are
    written by hand, and "normal" was refused with a list containing "Normal"."""
    key = str(dist).lower().replace("_", "").replace("-", "").replace(" ", "")
    for name in DISTRIBUTIONS:
        if name.lower() == key:
            return name
    if key == "intervalmixture":  # bh.Prior("IntervalMixture", ...): not a plain prior
        raise SpecError(f"{dist!r} is not a plain distribution: a per-interval mixture comes "
                        "from a per-interval MAP prior; pass it as the prior "
                        "(priors={\"log_baseline_hazard\": bh.map_prior(history, cuts=...)}).")
    if key == "mixture":  # bh.Prior("Mixture", ...): not a plain prior
        raise SpecError(f"{dist!r} is not a plain distribution: build a mixture with "
                        "bh.Prior.mixture([bh.Prior(\"Normal\", mu=0, sigma=0.2), "
                        "bh.Prior(\"Normal\", mu=0, sigma=2)], weights=[0.8, 0.2]) (in a "
                        "spec: {dist = \"Mixture\", weights = [...], components = [...]}).")
    raise SpecError(f"unknown prior distribution {dist!r}; choose one of "
                    f"{', '.join(DISTRIBUTIONS)}.")


@dataclass(frozen=True)
class Prior:
    """A univariate prior, for example ``Prior("Normal", mu=0.0, sigma=1.0)``."""

    dist: str
    params: dict = field(default_factory=dict)

    def __init__(self, dist: str, **params):
        dist = _canonical_dist(dist)
        names, _ = DISTRIBUTIONS[dist]
        unknown = set(params) - set(names)
        missing = set(names) - set(params)
        if unknown or missing:
            raise SpecError(f"{dist} prior takes parameters {', '.join(names)}; got "
                            f"{', '.join(sorted(params)) or 'none'}.")
        clean = {}
        for k in names:
            v = params[k]
            if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)) or \
                    not np.isfinite(v):
                raise SpecError(f"{dist} prior parameter {k}={v!r} must be a finite number.")
            if k in ("sigma", "nu", "lam") and v <= 0:
                raise SpecError(f"{dist} prior parameter {k}={v!r} must be > 0.")
            clean[k] = float(v)
        object.__setattr__(self, "dist", dist)
        object.__setattr__(self, "params", clean)

    def __hash__(self):
        return hash((self.dist, tuple(sorted(self.params.items()))))

    @property
    def positive(self) -> bool:
        return DISTRIBUTIONS[self.dist][1]

    @property
    def has_location(self) -> bool:
        """Whether ``shift`` can move it (a ``mu`` parameter)."""
        return "mu" in self.params

    @property
    def structure(self) -> str:
        """What fixes the compiled graph (parameter values do not: they are data)."""
        return self.dist

    def to_dict(self) -> dict:
        return {"dist": self.dist, **self.params}

    @classmethod
    def from_dict(cls, d) -> Prior | MixturePrior:
        if isinstance(d, (Prior, MixturePrior, IntervalMixturePrior)):
            return d
        if hasattr(d, "as_prior"):  # a prior built from data, e.g. a MAP prior
            return d.as_prior()
        if not isinstance(d, Mapping):
            raise SpecError(f"a prior is a table like {{dist = \"Normal\", mu = 0, sigma = "
                            f"1}} (in Python bh.Prior(\"Normal\", mu=0, sigma=1)), got {d!r}.")
        d = dict(d)
        if "dist" not in d:
            raise SpecError(f"prior {d} needs a 'dist' key (one of "
                            f"{', '.join([*DISTRIBUTIONS, 'Mixture', 'IntervalMixture'])}).")
        kind = str(d["dist"]).lower().replace("_", "").replace("-", "").replace(" ", "")
        if kind == "mixture":
            return MixturePrior.from_dict({**d, "dist": "Mixture"})
        if kind == "intervalmixture":
            return IntervalMixturePrior.from_dict({**d, "dist": "IntervalMixture"})
        return cls(d.pop("dist"), **d)

    @staticmethod
    def mixture(components, weights) -> MixturePrior:
        """A mixture prior, e.g. ``Prior.mixture([Prior("Normal", mu=0, sigma=0.2),
        Prior("Normal", mu=0, sigma=2)], weights=[0.8, 0.2])`` (a robust prior: an
        informative component and a vague one). Weights are positive and sum to 1."""
        return MixturePrior(components, weights)

    def pymc(self, name: str, shift=None, params=None, **kwargs):
        """Create the PyMC random variable (inside a model context); ``shift`` moves the
        location parameter ``mu`` (``families.base.centred_intercept``); ``params``
        replaces the parameter values (data containers, so values do not recompile)."""
        return pymc_variable(self.dist, self.params if params is None else params, name,
                             shift, **kwargs)

    def flat_params(self) -> dict:
        """Parameter values by name (what becomes data in the compiled model)."""
        return dict(self.params)

    def scipy(self):
        p = self.params
        if self.dist == "Normal":
            return stats.norm(p["mu"], p["sigma"])
        if self.dist == "StudentT":
            return stats.t(p["nu"], p["mu"], p["sigma"])
        if self.dist == "HalfNormal":
            return stats.halfnorm(0, p["sigma"])
        if self.dist == "HalfStudentT":
            return stats.halfcauchy(0, p["sigma"]) if p["nu"] == 1 else _HalfT(p["nu"], p["sigma"])
        return stats.expon(scale=1 / p["lam"])

    def logpdf(self, x):
        return self.scipy().logpdf(x)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.dist}({args})"


class MixturePrior:
    """A finite mixture of :class:`Prior` components with fixed weights.

    Its log density is logsumexp_i(log w_i + log p_i(x)) (scipy twin: ``logpdf``), its PyMC
    variable a ``pm.Mixture``; the weights and the components' parameters are data in the
    compiled model, so changing them (same number and kinds of components) reuses the
    compiled sampler. A shift (``centred_intercept``, time units) moves every component's
    ``mu``, so it needs components with a location.
    """

    dist = "Mixture"

    def __init__(self, components, weights):
        comps = tuple(Prior.from_dict(c) for c in components)
        if len(comps) < 2:
            raise SpecError("a Mixture prior needs at least two components.")
        if any(isinstance(c, MixturePrior) for c in comps):
            raise SpecError("Mixture components must be plain priors (no nested mixtures).")
        w = [float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else np.nan
             for x in weights]
        if len(w) != len(comps) or not all(np.isfinite(w)) or min(w) <= 0:
            raise SpecError(f"Mixture weights {list(weights)!r}: one positive number per "
                            f"component ({len(comps)}).")
        if abs(sum(w) - 1.0) > 1e-6:
            raise SpecError(f"Mixture weights {list(weights)!r} sum to {sum(w):.6g}; they must "
                            "sum to 1.")
        positive = {c.positive for c in comps}
        if len(positive) > 1:
            raise SpecError("Mixture components must share their support (all on the real "
                            "line, or all positive).")
        self.components = comps
        self.weights = tuple(x / sum(w) for x in w)

    def __eq__(self, other):
        return isinstance(other, MixturePrior) and self.components == other.components and \
            self.weights == other.weights

    def __hash__(self):
        return hash((self.components, self.weights))

    def __repr__(self):
        return f"MixturePrior({list(self.components)!r}, weights={list(self.weights)!r})"

    def __str__(self) -> str:
        return "Mixture(" + ", ".join(f"{w:g} x {c}" for w, c in
                                      zip(self.weights, self.components)) + ")"

    @property
    def positive(self) -> bool:
        return self.components[0].positive

    @property
    def has_location(self) -> bool:
        return all(c.has_location for c in self.components)

    @property
    def structure(self) -> str:
        return "Mixture[" + ",".join(c.dist for c in self.components) + "]"

    @property
    def params(self) -> dict:
        return self.flat_params()

    def flat_params(self) -> dict:
        out = {f"w{i}": w for i, w in enumerate(self.weights)}
        for i, c in enumerate(self.components):
            out.update({f"c{i}__{k}": v for k, v in c.params.items()})
        return out

    def to_dict(self) -> dict:
        return {"dist": "Mixture", "weights": list(self.weights),
                "components": [c.to_dict() for c in self.components]}

    @classmethod
    def from_dict(cls, d) -> MixturePrior:
        d = dict(d)
        d.pop("dist", None)
        unknown = set(d) - {"weights", "components"}
        if unknown or "weights" not in d or "components" not in d:
            raise SpecError("a Mixture prior is {dist = \"Mixture\", weights = [...], "
                            "components = [{dist = ...}, ...]}" +
                            (f"; unknown key(s) {', '.join(sorted(unknown))}" if unknown
                             else "") + ".")
        if not isinstance(d["components"], (list, tuple)):
            raise SpecError("Mixture components must be a list of priors.")
        return cls(d["components"], d["weights"])

    def pymc(self, name: str, shift=None, params=None, **kwargs):
        import pytensor.tensor as pt

        p = self.flat_params() if params is None else params
        k = len(self.components)
        w = pt.stack([pt.as_tensor(p[f"w{i}"]) for i in range(k)])
        comps = []
        for i, c in enumerate(self.components):
            cp = {name_: p[f"c{i}__{name_}"] for name_ in c.params}
            if shift is not None:
                cp["mu"] = cp["mu"] + shift
            comps.append(getattr(pm, c.dist).dist(**cp))
        return pm.Mixture(name, w=w, comp_dists=comps, **kwargs)

    def component_probabilities(self, x) -> np.ndarray:
        """P(component k | x) for each value of ``x`` (shape ``x.shape + (K,)``): the
        posterior membership of a draw, which does not depend on the data given x."""
        x = np.asarray(x, float)
        logs = np.stack([np.log(w) + c.logpdf(x) for w, c in zip(self.weights,
                                                                   self.components)], axis=-1)
        logs -= logs.max(axis=-1, keepdims=True)
        p = np.exp(logs)
        return p / p.sum(axis=-1, keepdims=True)

    def logpdf(self, x):
        from scipy.special import logsumexp

        x = np.asarray(x, float)
        parts = np.stack([np.log(w) + c.logpdf(x) for w, c in zip(self.weights,
                                                                    self.components)])
        return logsumexp(parts, axis=0)

    def scipy(self):
        return _MixtureDist(self)


class IntervalMixturePrior:
    """One normal mixture per element of a vector parameter (e.g. a per-interval MAP prior
    of the piecewise baseline's log hazards), all with the same number of components.

    ``weights`` is (J, K), ``means`` and ``sds`` (J, K). Its PyMC variable is one
    ``pm.Mixture`` of shape (J,) (weights and parameters are data: changing the numbers
    reuses the compiled model); its log density is elementwise (shape ``x.shape``); a shift
    moves every component's mean.
    """

    dist = "IntervalMixture"
    positive = False
    has_location = True

    def __init__(self, weights, means, sds):
        w, m, s = (np.asarray(a, float) for a in (weights, means, sds))
        if w.ndim != 2 or m.shape != w.shape or s.shape != w.shape:
            raise SpecError("an IntervalMixture prior needs weights, means and sds of one "
                            "shape (elements x components).")
        if not (np.isfinite(w).all() and np.isfinite(m).all() and np.isfinite(s).all()):
            raise SpecError("IntervalMixture prior parameters must be finite.")
        if (w <= 0).any() or (s <= 0).any():
            raise SpecError("IntervalMixture weights and sds must be > 0.")
        if np.abs(w.sum(axis=1) - 1).max() > 1e-6:
            raise SpecError("IntervalMixture weights must sum to 1 for every element.")
        # normalised only when needed, so that a dict round trip gives the same numbers
        total = w.sum(axis=1, keepdims=True)
        self.weights = w if np.abs(total - 1).max() < 1e-12 else w / total
        self.means, self.sds = m, s

    @classmethod
    def from_elements(cls, elements) -> IntervalMixturePrior:
        """From one Prior (Normal) or MixturePrior of normals per element; elements with
        fewer components get their heaviest component split into identical copies (the
        same distribution), so every element has as many components as the largest."""
        parts = []
        for e in elements:
            comps = e.components if isinstance(e, MixturePrior) else (e,)
            w = list(e.weights) if isinstance(e, MixturePrior) else [1.0]
            if any(c.dist != "Normal" for c in comps):
                raise SpecError("IntervalMixture elements must be normal (mixtures).")
            parts.append([[wi, c.params["mu"], c.params["sigma"]] for wi, c in zip(w, comps)])
        k = max(len(p) for p in parts)
        for p in parts:
            while len(p) < k:
                i = int(np.argmax([c[0] for c in p]))
                p[i][0] /= 2
                p.append(list(p[i]))
        arr = np.array(parts, float)  # (J, K, 3)
        return cls(arr[..., 0], arr[..., 1], arr[..., 2])

    @property
    def n_elements(self) -> int:
        return self.weights.shape[0]

    def element(self, j):
        comps = [Prior("Normal", mu=float(m), sigma=float(s))
                 for m, s in zip(self.means[j], self.sds[j])]
        if len(comps) == 1:
            return comps[0]
        return MixturePrior(comps, list(self.weights[j]))

    def __eq__(self, other):
        return isinstance(other, IntervalMixturePrior) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def __repr__(self):
        return (f"IntervalMixturePrior({self.n_elements} elements x "
                f"{self.weights.shape[1]} components)")

    def __str__(self) -> str:
        return "IntervalMixture(" + "; ".join(
            f"[{j + 1}] " + str(self.element(j)) for j in range(self.n_elements)) + ")"

    @property
    def structure(self) -> str:
        return f"IntervalMixture[{self.n_elements}x{self.weights.shape[1]}]"

    @property
    def params(self) -> dict:
        return self.flat_params()

    def flat_params(self) -> dict:
        return {"w": self.weights, "mu": self.means, "sigma": self.sds}

    def to_dict(self) -> dict:
        return {"dist": self.dist, "weights": self.weights.tolist(),
                "means": self.means.tolist(), "sds": self.sds.tolist()}

    @classmethod
    def from_dict(cls, d) -> IntervalMixturePrior:
        d = dict(d)
        d.pop("dist", None)
        if set(d) != {"weights", "means", "sds"}:
            raise SpecError("an IntervalMixture prior is {dist = \"IntervalMixture\", weights "
                            "= [[...], ...], means = [[...], ...], sds = [[...], ...]} (one "
                            "row per element).")
        return cls(d["weights"], d["means"], d["sds"])

    def pymc(self, name: str, shift=None, params=None, **kwargs):
        p = self.flat_params() if params is None else params
        mu = p["mu"] if shift is None else p["mu"] + shift
        k = self.weights.shape[1]
        comps = [pm.Normal.dist(mu=mu[:, i], sigma=p["sigma"][:, i]) for i in range(k)]
        return pm.Mixture(name, w=p["w"], comp_dists=comps, **kwargs)

    def logpdf(self, x):
        """Elementwise log density: ``x`` has the elements on its last axis."""
        from scipy.special import logsumexp

        x = np.asarray(x, float)[..., None]
        return logsumexp(np.log(self.weights) + stats.norm.logpdf(x, self.means, self.sds),
                         axis=-1)

    def component_probabilities(self, x) -> np.ndarray:
        x = np.asarray(x, float)[..., None]
        logs = np.log(self.weights) + stats.norm.logpdf(x, self.means, self.sds)
        logs -= logs.max(axis=-1, keepdims=True)
        p = np.exp(logs)
        return p / p.sum(axis=-1, keepdims=True)

    def scipy(self):
        return _IntervalMixtureDist(self)


class _IntervalMixtureDist:
    def __init__(self, prior):
        self.prior = prior

    def logpdf(self, x):
        return self.prior.logpdf(x)

    def rvs(self, size=None, random_state=None):
        """Draws with the elements on the last axis: ``size`` must end with the number of
        elements (or be an int: that many draws of the whole vector)."""
        rng = np.random.default_rng(random_state)
        p = self.prior
        j = p.n_elements
        shape = (size, j) if isinstance(size, int) else tuple(size or (j,))
        if shape[-1] != j:
            raise ValueError(f"IntervalMixture draws need a last axis of {j} elements.")
        u = rng.random(shape)[..., None]
        k = (u > np.cumsum(p.weights, axis=1)).sum(axis=-1)  # component per draw
        k = np.minimum(k, p.weights.shape[1] - 1)
        idx = np.arange(j)
        mu, sd = p.means[idx, k], p.sds[idx, k]
        return rng.normal(mu, sd)


class _MixtureDist:
    """The scipy-like twin of a MixturePrior: logpdf and rvs."""

    def __init__(self, prior: MixturePrior):
        self.prior = prior

    def logpdf(self, x):
        return self.prior.logpdf(x)

    def rvs(self, size=None, random_state=None):
        rng = np.random.default_rng(random_state)
        shape = () if size is None else (size if isinstance(size, tuple) else (size,))
        pick = rng.choice(len(self.prior.weights), size=shape, p=self.prior.weights)
        draws = np.stack([c.scipy().rvs(size=shape, random_state=rng)
                          for c in self.prior.components])
        out = np.take_along_axis(draws, np.asarray(pick)[None, ...], axis=0)[0]
        return float(out) if size is None else out


def pymc_variable(dist: str, params: dict, name: str, shift=None, **kwargs):
    """PyMC random variable ``name`` of distribution ``dist``; parameters may be numbers or
    PyTensor variables (data containers); ``shift`` is added to ``mu``."""
    params = dict(params)
    if shift is not None:
        params["mu"] = params["mu"] + shift
    return getattr(pm, dist)(name, **params, **kwargs)


class _HalfT:
    def __init__(self, nu, sigma):
        self._t = stats.t(nu, 0, sigma)

    def logpdf(self, x):
        x = np.asarray(x, float)
        return np.where(x >= 0, np.log(2) + self._t.logpdf(x), -np.inf)

    def ppf(self, q):
        return self._t.ppf(0.5 + np.asarray(q) / 2)


#: Priors of the arm, site and covariate terms (families add their baseline priors:
#: ``Family.default_priors``). Re-exported as ``bh.DEFAULT_PRIORS``.
DEFAULT_PRIORS = {
    # The arm effect's prior comes with the family: log HR ~ Normal(0, 1) for PH families
    # (HR within 0.14-7.1 with 95% probability; weakly informative: it rules out implausible
    # effects such as HR 0.05 yet is five times wider than the standard error of a
    # 130-patient trial's log HR, about 0.2, so the data dominate), log time ratio
    # ~ Normal(0, 1) for AFT families.
    # Site SD on the log hazard ~ HalfNormal(1): median 0.67, 95% mass below 1.96 (an SD of
    # 1 would put hospitals' hazards within a factor 7 of the typical site). Weakly
    # informative on purpose: with only 6 sites a tighter HalfNormal(0.5) drove the posterior
    # of the SD (power-scaling prior sensitivity 0.08 > 0.05 on the example trial), while
    # HalfNormal(1) leaves it to the data (0.04) and samples as cleanly. HalfNormal(0.25) and
    # HalfNormal(0.5) are in the sensitivity grid.
    "site_sd": Prior("HalfNormal", sigma=1.0),
    # Fixed (sum-to-zero) site effects: sigma of the ZeroSumNormal.
    "site_effect": Prior("Normal", mu=0.0, sigma=1.0),
    # Treatment-by-site SD on the log HR: HalfNormal(0.25), HRs across sites typically
    # within a factor 1.6 of the average.
    "arm_site_sd": Prior("HalfNormal", sigma=0.25),
    # Coefficients per SD of a centred and scaled covariate.
    "beta": Prior("Normal", mu=0.0, sigma=1.0),
    # Stratified baseline pooled partially: SD of each baseline parameter's deviations
    # between strata (log hazard scale for log rates), HalfNormal(1) as the site SD.
    "stratum_sd": Prior("HalfNormal", sigma=1.0),
}


def support_problem(name: str, prior, default) -> str | None:
    """What is wrong with the support of ``prior`` for the parameter ``name``, whose default
    prior is ``default`` (None: nothing). The defaults are right by construction: standard
    deviations have priors on the positive half-line, every other parameter (log ratios,
    log rates, coefficients) on the whole line. A half-line prior on a log HR would fix
    its sign (HR >= 1 on every draw, whatever the data); a whole-line prior on an SD
    would let it be negative."""
    mine, want = getattr(prior, "positive", None), getattr(default, "positive", None)
    if mine is None or want is None or mine == want:
        return None
    if mine:
        return (f"priors[{name!r}] = {prior} has no mass below 0, but {name} takes any real "
                "value (a log ratio, log rate or coefficient): the prior would fix its sign"
                + (" (HR >= 1 on every draw, whatever the data)" if name.endswith("log_hr")
                   else "")
                + ". Give a prior on the whole line (Normal, StudentT).")
    return (f"priors[{name!r}] = {prior} puts mass below 0, but {name} is a standard "
            "deviation (positive): give HalfNormal, HalfStudentT or Exponential.")
