"""M-spline baseline hazard (rstanarm's default survival baseline): a smooth, flexible hazard.

h0(t) = exp(log_scale) sum_j c_j M_j(t), H0(t) = exp(log_scale) sum_j c_j I_j(t), where the
M_j are M-splines (B-splines normalised to integrate to 1) of degree ``degree`` on the knots
0 < k_1 < ... < k_m < boundary, the I_j their integrals from 0 (I-splines), and c a simplex
(Dirichlet prior). Since every I_j reaches 1 at the boundary knot, exp(log_scale) is the
baseline cumulative hazard at the boundary: H0(boundary) = exp(log_scale). Beyond the
boundary the hazard stays at its boundary value (constant extrapolation).

Degree 0 gives indicator functions over the intervals between knots: the piecewise-
exponential model with the knots as cut points, log rate_j = log_scale + log c_j - log w_j
(w_j the interval's width), intervals closed on the right as there.

References: Ramsay (1988) Monotone regression splines in action, Statistical Science 3;
Brilleman et al. (2020) Bayesian survival analysis using the rstanarm R package,
arXiv:2002.09633.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
from scipy import stats
from scipy.interpolate import BSpline

from bayes_hcc.errors import ModelError
from bayes_hcc.families.base import Family, centred_intercept, log_hr_prior
from bayes_hcc.families.piecewise import quantile_cuts
from bayes_hcc.spec.priors import Prior


class MSplineFamily(Family):
    """M-spline PH. Parameters ``log_scale`` (log baseline cumulative hazard at the boundary
    knot: unit-free) and ``coefficients`` (simplex over the basis functions, Dirichlet with
    every concentration ``concentration``)."""

    key, name, label, cli_name = "mspline_ph", "mspline", "M-spline PH", "mspline"
    model_name = "MSplinePH"
    positional = ("knots",)
    model_doc = """M-spline proportional-hazards model: a smooth baseline hazard (rstanarm's
    default survival baseline), with arm, site and covariate effects.

    Parameters
    ----------
    knots : sequence of float, optional
        Interior knots in the data's time unit. Default: ``n_knots`` knots at quantiles of
        the observed event times.
    n_knots : int, default 3
    degree : int, default 3
        Degree of the M-splines (3: cubic, a smooth hazard; 0: piecewise-constant, the
        piecewise-exponential model with the knots as cut points).
    boundary : float, optional
        The boundary knot (default: the longest observed time); the hazard is constant
        beyond it.
    concentration : float, default 1.0
        Dirichlet concentration of the basis coefficients (1: uniform on the simplex).
    site_effect, arm_by_site, covariates, priors, site_parametrization
        As for :class:`WeibullPH`.
    """
    options = {"knots": "cuts", "n_knots": "int0", "degree": "int0", "boundary": "time",
               "concentration": "positive"}
    exclusive_options = (("knots", "n_knots"),)
    headline = ("log_scale",)
    params = ("log_scale", "coefficients")
    param_dims = {"coefficients": ("basis",)}
    data_settings = ("knots", "boundary")  # they reach the graph as basis matrices (data)

    def __init__(self, knots, boundary: float, degree: int = 3, concentration: float = 1.0):
        knots = np.asarray(knots, float)
        if knots.ndim != 1 or np.any(knots <= 0) or np.any(np.diff(knots) <= 0):
            raise ModelError(f"knots must be increasing positive times, got {list(knots)}.")
        if not boundary > (knots[-1] if len(knots) else 0.0):
            raise ModelError(f"boundary={boundary} must be beyond the last knot "
                             f"({knots[-1] if len(knots) else 0.0}).")
        if not (isinstance(degree, (int, np.integer)) and 0 <= degree <= 5):
            raise ModelError(f"degree={degree!r} must be an integer from 0 to 5.")
        if not concentration > 0:
            raise ModelError(f"concentration={concentration} must be > 0.")
        self.knots, self.boundary = knots, float(boundary)
        self.degree, self.concentration = int(degree), float(concentration)
        d = self.degree
        self._t = np.concatenate([np.zeros(d + 1), knots, np.full(d + 1, self.boundary)])
        self.n_basis = len(self._t) - d - 1
        if d:
            widths = self._t[d + 1:] - self._t[:self.n_basis]
            scale = (d + 1) / widths  # M_j = B_j (d + 1) / (t_{j+d+1} - t_j)
            self._m = BSpline(self._t, np.diag(scale), d, extrapolate=False)
            self._i = self._m.antiderivative()
            self._m_end = self._m(self.boundary)  # hazard basis at (and beyond) the boundary
        else:
            self._edges = np.concatenate([[0.0], knots, [self.boundary]])

    @classmethod
    def for_data(cls, time, event, time_unit="months", *, knots=None, n_knots=None,
                 degree=3, boundary=None, concentration=1.0):
        """Knots at quantiles of the event times (``n_knots`` of them, default 3 for a cubic
        basis, or as given), boundary at the longest observed time."""
        if knots is not None and n_knots is not None:
            raise ModelError("give knots or n_knots, not both.")
        if time is None:  # prior summaries without data: a placeholder layout
            knots = knots if knots is not None else tuple(range(1, (n_knots or 3) + 1))
            boundary = boundary or float(max(knots, default=0.0) + 1.0)
        else:
            boundary = boundary or float(np.max(time))
            if knots is None:  # quantiles of the event times: always inside the boundary
                knots = quantile_cuts(time, event, (3 if n_knots is None else n_knots) + 1,
                                      time_unit) if (n_knots is None or n_knots) else ()
                knots = [k for k in knots if k < boundary]
            elif any(k >= boundary for k in knots):
                raise ModelError(f"knots {list(knots)}: every knot must be before the boundary "
                                 f"knot {boundary:g} (the longest observed time unless given);"
                                 " remove the later knots or give a larger boundary.")
        return cls(tuple(knots), boundary, degree, concentration)

    @classmethod
    def check_options(cls, options):
        super().check_options(options)
        if options.get("degree", 3) > 5:
            raise ModelError(f"degree={options['degree']} must be at most 5.")

    @classmethod
    def depends_on_data(cls, options):
        return "knots" not in options or "boundary" not in options

    @classmethod
    def events_needed(cls, options):
        n_knots = options.get("n_knots", 3)
        if "knots" in options or not n_knots:
            return super().events_needed(options)
        return n_knots + 1, (f"its {n_knots} knots are placed at quantiles of the event "
                             f"times (options.n_knots = {n_knots}"
                             f"{'' if 'n_knots' in options else ', the default'}): lower "
                             "n_knots or give options.knots")

    @classmethod
    def calibration_options(cls):
        return {"knots": [3.0, 8.0], "boundary": 36.0}

    @classmethod
    def default_priors(cls):
        # log_scale: Normal(0, 2): the baseline cumulative hazard at the end of follow-up
        # between 0.02 and 55 (95%), i.e. from 2% to essentially all patients with an event
        # by the last follow-up time; unit-free (a cumulative hazard at a fixed time).
        return {"log_hr": log_hr_prior(),
                "log_scale": Prior("Normal", mu=0.0, sigma=2.0)}

    def settings(self):
        return {"name": self.name, "knots": self.knots.tolist(), "boundary": self.boundary,
                "degree": self.degree, "concentration": self.concentration}

    @classmethod
    def from_settings(cls, s):
        return cls(s["knots"], s["boundary"], s.get("degree", 3), s.get("concentration", 1.0))

    @classmethod
    def example(cls):
        return cls((2.0, 6.0), 20.0, degree=3)

    def example_params(self):
        c = np.linspace(1.0, 2.0, self.n_basis)
        return {"log_scale": np.array([0.4]), "coefficients": (c / c.sum())[None, :]}

    def breakpoints(self):
        return np.concatenate([self.knots, [self.boundary]])

    def sizes(self):
        return {"n_basis": self.n_basis}

    def coords(self):
        return {"basis": [f"M{j + 1}" for j in range(self.n_basis)]}

    def constant_data(self):
        return {"knots": ("knot", self.knots)}

    def describe(self):
        return f"{self.name} (degree {self.degree}, {len(self.knots)} knots)"

    # -- the basis: the time features --------------------------------------------------------
    def time_features(self, t):
        """M-spline (hazard) and I-spline (cumulative hazard) basis at each time, (n, J)."""
        t = np.asarray(t, float)
        if self.degree == 0:
            e, w = self._edges, np.diff(self._edges)
            j = np.minimum(np.searchsorted(e[1:-1], t, side="left"), self.n_basis - 1)
            m = np.zeros((len(t), self.n_basis))
            m[np.arange(len(t)), j] = 1.0 / w[j]
            expo = np.clip(t[:, None] - e[:-1], 0.0, w)
            expo[:, -1] = np.maximum(t - e[-2], 0.0)  # the last interval goes on
            return {"m": m, "i": expo / w}
        inside = np.clip(t, 0.0, self.boundary)
        m = np.nan_to_num(self._m(inside))
        i = np.nan_to_num(self._i(inside))
        beyond = np.maximum(t - self.boundary, 0.0)[:, None]
        return {"m": np.where(beyond > 0, self._m_end, m), "i": i + beyond * self._m_end}

    # basis (n, J) @ coefficients B + (J, 1): a matrix product per batch
    def log_hazard_x(self, xp, params, tf, eta):
        c = params["coefficients"][..., :, None]  # B + (J, 1)
        return params["log_scale"][..., None] + eta + xp.log((tf["m"] @ c)[..., 0])

    def cumhaz_x(self, xp, params, tf, eta):
        c = params["coefficients"][..., :, None]
        return xp.exp(params["log_scale"][..., None] + eta) * (tf["i"] @ c)[..., 0]

    def draw_prior(self, priors, size, rng):
        return {"log_scale": np.asarray(priors["log_scale"].scipy().rvs(
                    size=size, random_state=rng), float),
                "coefficients": rng.dirichlet(np.full(self.n_basis, self.concentration),
                                              size=size)}

    def log_prior(self, post, priors, shifts):
        c = np.asarray(post["coefficients"], float)
        alpha = np.full(self.n_basis, self.concentration)
        # Dirichlet density on the simplex (scipy's, vectorised over draws)
        log_dir = stats.dirichlet.logpdf(np.clip(c, 1e-300, None).T, alpha) \
            if self.n_basis > 1 else np.zeros(len(c))
        return {"log_scale": priors["log_scale"].logpdf(post["log_scale"]),
                "coefficients": np.atleast_1d(log_dir)}

    def stratum_value(self, xp, name, base, dev):
        """A stratum's spline coefficients stay on the simplex: the deviation moves their
        logs, then they are normalised again (a softmax of log c + dev)."""
        if name != "coefficients":
            return base + dev
        w = base * xp.exp(dev)
        return w / w.sum(axis=-1, keepdims=True)

    def build_params(self, priors, data, dims, offset=0.0):
        log_scale = centred_intercept(priors["log_scale"], "log_scale", offset)
        if self.n_basis > 1:
            coef = pm.Dirichlet("coefficients", a=np.full(self.n_basis, self.concentration),
                                dims="basis")
        else:
            coef = pm.Deterministic("coefficients", pm.math.ones(1), dims="basis")
        return {"log_scale": log_scale, "coefficients": coef}
