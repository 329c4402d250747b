"""A fitted illness-death model: transition hazard ratios and, on every draw, the OS, PFS and
progression curves they imply (coherent by construction) and the state occupation
probabilities."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from bayes_hcc.errors import (BayesHCCError, as_numbers, bool_flags, one_number, one_prob,
                              whole_number)
from bayes_hcc.families.base import CENTRED_SUFFIX
from bayes_hcc.multistate.curves import curves
from bayes_hcc.multistate.likelihood import TRANSITIONS
from bayes_hcc.quantities._core import quantiles
from bayes_hcc.quantities.core import (ID_CURVES, check_rmst_horizon, median_gain_note,
                                       ratio_beyond_follow_up)
from bayes_hcc.quantities.summary import (horizon_status, mark_median,
                                           mark_median_difference, note_diagnostics,
                                           shortened_tau)
from bayes_hcc.units import time_label

__all__ = ["IllnessDeathFit", "ESTIMANDS", "NEW_SITE_DRAWS"]

#: Whose curves: ``typical_site`` (site effects 0: a hospital of average level),
#: ``standardized`` (the trial's hospitals weighted by their patients: each site's curve
#: with its posterior site effects, averaged) or ``new_site`` (a hospital drawn from the
#: site-effect distribution: averaged over ``NEW_SITE_DRAWS`` draws of it per posterior
#: draw, from a fixed seed). Covariates are at the trial's average (X = 0) throughout.
ESTIMANDS = ("typical_site", "standardized", "new_site")
NEW_SITE_DRAWS = 16


#: how many calls of ``IllnessDeathFit._curves`` a fit keeps (each up to about 30 MB for
#: the medians' 600-time grid on 1000 draws)
_CURVE_CACHE = 8
#: A median the medians' grid does not reach is looked for on a geometric grid from its end
#: to this many times further (``_FAR_POINTS`` times, steps of 1.6%); inf only beyond.
_FAR = 100.0
_FAR_POINTS = 300


class IllnessDeathFit:
    """Posterior draws of an :class:`~bayes_hcc.IllnessDeath` model (``datatree``: the
    posterior and sample stats, with what produced them in ``attrs``)."""

    def __init__(self, datatree, model, data, families, priors):
        self.datatree, self.model, self.data = datatree, model, data
        self.families, self.priors = tuple(families), priors

    @classmethod
    def from_trace(cls, trace, *, model, data, families, priors, settings, sampled, timing):
        from bayes_hcc._versions import provenance_versions

        post = trace["posterior"]
        post = post.drop_vars([v for v in post.data_vars if str(v).endswith(CENTRED_SUFFIX)
                               or str(v).endswith("::log_hr")])
        if "log_hr" in post:
            post = post.assign_coords(transition=list(TRANSITIONS))
        dt = xr.DataTree.from_dict({"posterior": post, "sample_stats": trace["sample_stats"]})
        dt.attrs.update({
            "model": repr(model), "baseline": model.baseline, "time_scale": model.time_scale,
            "site_effect": model.site_effect,
            "families": json.dumps([f.settings() for f in families]),
            "priors": json.dumps([{k: p.to_dict() for k, p in pr.items()} for pr in priors]),
            "sampler_settings": json.dumps(settings), "time_unit": data.time_unit,
            "sampled_variables": json.dumps(sampled), "analysis_mode": "confirmatory",
            "timing_seconds": json.dumps(timing), "patterns": json.dumps(data.counts()),
            "package_versions": json.dumps(provenance_versions()),
        })
        if data.covariate_info:
            dt.attrs["covariate_scaling"] = json.dumps(dict(data.covariate_info))
        return cls(dt, model, data, families, priors)

    # -- save ---------------------------------------------------------------------------
    #: the DataTree group holding the patients' progression and death data of a saved fit
    DATA_GROUP = "illness_death_data"

    @bool_flags
    def save(self, path, *, overwrite: bool = False):
        """Write the fit to netCDF (refuses to overwrite unless ``overwrite=True``), with
        what rebuilds it: the patients' progression and death data, the model's settings,
        and the spec it ran from; ``bh.load_fit(path)`` reads it back (checking its content
        digest, and that the saved settings rebuild the families and priors the draws came
        from)."""
        from bayes_hcc.models.fit import KIND_ATTR, write_tree

        d = self.data
        arrays = {"arm": d.arm, "site": d.site, "prog_lower": d.prog_lower,
                  "prog_upper": d.prog_upper, "time": d.time, "death": d.death,
                  "patient_id": np.asarray([str(x) for x in d.patient_id])}
        ds = xr.Dataset({k: ("patient", np.asarray(v)) for k, v in arrays.items()})
        if d.X is not None:
            ds["X"] = (("patient", "covariate"), np.asarray(d.X, float))
        if d.admin_time is not None:
            ds["admin_time"] = ("patient", np.asarray(d.admin_time, float))
        ds.attrs.update(arms=json.dumps([str(a) for a in d.arms]),
                        sites=json.dumps([str(x) for x in d.sites]), time_unit=d.time_unit,
                        covariate_info=json.dumps(dict(d.covariate_info)),
                        covariate_labels=json.dumps(list(d.covariate_labels)))
        dt = self.datatree.copy()
        dt[self.DATA_GROUP] = ds
        dt.attrs[KIND_ATTR] = "illness_death"
        dt.attrs["model_settings"] = json.dumps(self.model.settings(), sort_keys=True)
        return write_tree(dt, path, overwrite=overwrite)

    def __getstate__(self):  # to worker processes without the curve and likelihood caches
        return {k: v for k, v in self.__dict__.items()
                if k not in ("_curve_cache", "_log_likelihood")}

    def __repr__(self) -> str:
        post = self.datatree["posterior"]
        n = post.sizes["chain"] * post.sizes["draw"]
        hr = self.hazard_ratio()
        parts = ", ".join(f"{t.replace('_', ' ')} HR {float(hr.sel(transition=t).median()):.2f}"
                          for t in TRANSITIONS)
        return (f"IllnessDeathFit | {self.model.baseline}, {self.model.time_scale}, "
                f"{len(self.data)} patients | {n} draws | {parts}")

    def _repr_html_(self) -> str:
        """What a notebook shows: the line ``repr`` gives, each transition's HR (median,
        95% interval, P(HR < 1)), the diagnostics' verdict and what the data warned of."""
        from bayes_hcc.notebook import fit_card

        table = self.summary().to_html(float_format=lambda x: f"{x:.3g}")
        return fit_card(repr(self), table, self.convergence_problems(),
                        self.analysis_mode == "exploratory", self.data_notes,
                        "<code>fit.medians()</code>, <code>fit.state_probabilities(times)</code>"
                        ", <code>fit.rmst(tau)</code>, <code>fit.prob_superiority()</code>: "
                        "OS, PFS and TTP from this one model.")

    # -- draws ----------------------------------------------------------------------------
    def _post(self):
        return self.datatree["posterior"].to_dataset()

    #: the spec it was fitted from (``bh.fit_spec``), else None
    spec = None

    @property
    def analysis_mode(self) -> str:
        """"confirmatory" or "exploratory" (a fit made in fast mode: a quick look)."""
        return self.datatree.attrs.get("analysis_mode", "confirmatory")

    @property
    def data_notes(self) -> list[str]:
        """What the data warned of for this fit, recorded when it was fitted (a transition
        without events in an arm, progression recorded at death, small sites), as
        ``Fit.data_notes``; its report and footnotes say them."""
        return list(json.loads(self.datatree.attrs.get("data_notes", "[]")))

    @property
    def random_seed(self) -> int:
        return int(json.loads(self.datatree.attrs["sampler_settings"])["seed"])

    @property
    def time_unit(self) -> str:
        """The unit of the data's times (as a single-endpoint ``Fit``'s)."""
        return self.data.time_unit

    @property
    def n_draws(self) -> int:
        post = self.datatree["posterior"]
        return int(post.sizes["chain"] * post.sizes["draw"])

    @property
    def data_fingerprint(self) -> str | None:
        """The fingerprint of the TrialData fitted (None for arrays)."""
        return self.datatree.attrs.get("data_fingerprint")

    def draw_params(self, s: int) -> tuple[list, np.ndarray, np.ndarray]:
        """Posterior draw ``s`` (flattened over chains): each transition's baseline
        parameters (leading axis 1), the log HRs (3,) and the site effects (3, sites)."""
        post = self._post()
        params = [{k: v[s:s + 1] for k, v in p.items()} for p in self.transition_params()]
        log_hr = post["log_hr"].values.reshape(-1, 3)[s]
        if "site_effect" in post:
            site = post["site_effect"].values.reshape((-1,) + post["site_effect"].shape[2:])[s]
        else:
            site = np.zeros((3, len(self.data.sites)))
        return params, log_hr, site

    def draw_betas(self, s: int) -> np.ndarray:
        """Posterior draw ``s`` (flattened over chains) of each transition's covariate
        coefficients (per standardized column of ``data.X``): (3, covariate columns);
        (3, 0) without covariates."""
        d = self.data
        k = 0 if d.X is None else d.X.shape[1]
        if not k:
            return np.zeros((3, 0))
        post = self._post()
        return np.stack([post[f"{t}::beta"].values.reshape(-1, k)[s] for t in TRANSITIONS])

    #: draws per block of the pointwise log-likelihood (its quadrature rows are held for
    #: one block at a time: about 40 MB at 130 patients)
    LOGLIK_BLOCK = 250

    def log_likelihood(self) -> xr.DataArray:
        """Each patient's log-likelihood on every draw, dims (chain, draw, patient): the
        probability (density) of what was seen of their progression and death, the terms
        whose sum is the model's likelihood (``multistate.likelihood``), with each draw's
        transition parameters, log HRs, site effects and covariate effects. What
        ``bh.loo`` and ``bh.compare`` read; computed on first use and kept."""
        cached = getattr(self, "_log_likelihood", None)
        if cached is not None:
            return cached
        from bayes_hcc.multistate.likelihood import layout, loglik_numpy

        post, d = self._post(), self.data
        S, n = self.n_draws, len(d)
        params = self.transition_params()
        etas = self._patient_etas()
        lay = layout(d, self.families, self.model.time_scale)
        out = np.empty((S, n))
        for a in range(0, S, self.LOGLIK_BLOCK):
            b = min(a + self.LOGLIK_BLOCK, S)
            out[a:b] = loglik_numpy(self.families,
                                    [{k: v[a:b] for k, v in p.items()} for p in params],
                                    [e[a:b] for e in etas], lay, n)
        chains, draws = post.sizes["chain"], post.sizes["draw"]
        da = xr.DataArray(out.reshape(chains, draws, n), dims=("chain", "draw", "patient"),
                          coords={"chain": post["chain"].values, "draw": post["draw"].values,
                                  "patient": [str(x) for x in d.patient_id]},
                          name="progression_and_death")
        self._log_likelihood = da
        return da

    def log_prior(self) -> xr.Dataset:
        """Log prior density of each sampled variable on every draw, dims (chain, draw):
        each transition's baseline parameters (``{transition}::{name}``, evaluated on the
        months scale their priors are declared on, as a single-endpoint fit's), its log HR
        (``{transition}::log_hr``; ``death::log_hr`` when the death HR is shared), the
        site SD and the standard-normal site deviations (``site_z``), the covariate
        effects. The model's prior, as ``bh.psense`` power-scales it (tested against
        PyMC's own log density of the model's free variables)."""
        from scipy import stats

        from bayes_hcc.units import log_unit_in_months

        post = self._post()
        chains, draws = post.sizes["chain"], post.sizes["draw"]
        S = chains * draws

        def flat(name):
            v = post[name].values
            return v.reshape((S,) + v.shape[2:])

        def total(v):
            return np.asarray(v).reshape(S, -1).sum(axis=1)

        log_unit = log_unit_in_months(self.data.time_unit)
        out = {}
        for t, fam, pr in zip(TRANSITIONS, self.families, self.priors):
            mine = {name[len(t) + 2:]: flat(name) for name in post.data_vars
                    if name.startswith(f"{t}::")}
            for k, v in fam.log_prior(mine, pr, fam.unit_shift(mine, log_unit)).items():
                out[f"{t}::{k}"] = v
            if "beta" in mine:
                out[f"{t}::beta"] = total(pr["beta"].logpdf(mine["beta"]))
        log_hr = flat("log_hr")
        if self.model.arm_effect == "shared_death":
            out[f"{TRANSITIONS[0]}::log_hr"] = self.priors[0]["log_hr"].logpdf(log_hr[:, 0])
            out["death::log_hr"] = self.priors[1]["log_hr"].logpdf(log_hr[:, 1])
        else:
            for j, t in enumerate(TRANSITIONS):
                out[f"{t}::log_hr"] = self.priors[j]["log_hr"].logpdf(log_hr[:, j])
        if "site_sd" in post:
            out["site_sd"] = total(self.model.site_sd_prior().logpdf(flat("site_sd")))
            out["site_z"] = total(stats.norm.logpdf(flat("site_z")))
        coords = {"chain": post["chain"].values, "draw": post["draw"].values}
        return xr.Dataset({k: (("chain", "draw"), np.asarray(v, float).reshape(chains, draws))
                           for k, v in out.items()}, coords=coords)

    def _patient_etas(self, draws=None) -> list[np.ndarray]:
        """Each transition's linear predictor (arm, site and covariate terms) of every
        patient on the posterior draws ``draws`` (flat indices; default all): three
        arrays (draws, patients)."""
        post, d = self._post(), self.data
        S = self.n_draws
        take = slice(None) if draws is None else np.asarray(draws, int)
        log_hr = post["log_hr"].values.reshape(S, 3)[take]
        site = (post["site_effect"].values.reshape(S, 3, -1)[take] if "site_effect" in post
                else np.zeros((len(log_hr), 3, len(d.sites))))
        etas = [log_hr[:, j, None] * np.asarray(d.arm, float)[None] + site[:, j, d.site]
                for j in range(3)]
        if d.X is not None and d.X.shape[1]:
            for j, t in enumerate(TRANSITIONS):
                beta = post[f"{t}::beta"].values.reshape(S, -1)[take]
                etas[j] = etas[j] + beta @ np.asarray(d.X, float).T
        return etas

    def simulate_paths(self, draws, rng) -> tuple[np.ndarray, np.ndarray]:
        """Latent progression and death times (time unit) of every patient from
        randomization, one path per patient on each posterior draw in ``draws`` (flat
        indices): (progression time, inf when death comes first; death time), each
        (draws, patients). From the progression-free state the two competing transitions
        by inversion of their cumulative hazards; after a progression at u, death from the
        progression-to-death transition on the model's time scale (clock-forward: given
        alive at u; clock-reset: u plus a time from 0). The replicates of the posterior
        predictive check (``bh.ppc_km``). ``rng``: a numpy Generator or a seed."""
        given = np.atleast_1d(np.asarray(draws))
        if given.size == 0 or not np.issubdtype(given.dtype, np.integer) or \
                given.min() < 0 or given.max() >= self.n_draws:
            raise BayesHCCError(f"simulate_paths: draws must be whole numbers from 0 to "
                                f"{self.n_draws - 1} (flat indices of this fit's "
                                f"{self.n_draws} posterior draws), got {draws!r}.")
        draws, rng = given.astype(int), np.random.default_rng(rng)
        params = [{k: v[draws] for k, v in p.items()} for p in self.transition_params()]
        etas = self._patient_etas(draws)
        f01, f02, f12 = self.families
        shape = etas[0].shape
        t01 = f01.time_at_cumhaz(params[0], rng.exponential(size=shape), etas[0])
        t02 = f02.time_at_cumhaz(params[1], rng.exponential(size=shape), etas[1])
        e12 = rng.exponential(size=shape)
        prog = t01 < t02
        u = np.where(prog, t01, 0.0)
        if self.model.time_scale == "markov":
            start = f12.cumhaz_at(params[2], u, etas[2])
            after = f12.time_at_cumhaz(params[2], start + e12, etas[2])
        else:
            after = u + f12.time_at_cumhaz(params[2], e12, etas[2])
        return np.where(prog, t01, np.inf), np.where(prog, after, t02)

    def hazard_ratio(self) -> xr.DataArray:
        """HR (treatment / control) of each transition, on every draw."""
        return np.exp(self._post()["log_hr"]).rename("hazard_ratio")

    def covariate_effects(self, prob: float = 0.95) -> pd.DataFrame:
        """Per transition and covariate term: the hazard ratio per unit of a numeric
        covariate, or of each level against the reference level of a categorical one
        (posterior median, equal-tailed ``prob`` interval, P(HR < 1)); conditional on the
        arm, the site and the other covariates."""
        from bayes_hcc.models.covariates import covariate_effects

        info = json.loads(self.datatree.attrs.get("covariate_scaling", "{}"))
        if not info:
            raise BayesHCCError("covariate_effects: this fit has no covariates.")
        post = self._post()
        a = (1 - one_prob(prob, "covariate_effects")) / 2
        rows = []
        for t in TRANSITIONS:
            beta = post[f"{t}::beta"].values.reshape(-1, post[f"{t}::beta"].shape[-1])
            for term, x in covariate_effects(beta, info).items():
                hr = np.exp(x)
                rows.append({"transition": t, "term": term, "hr_median": float(np.median(hr)),
                             "lower": float(np.quantile(hr, a)),
                             "upper": float(np.quantile(hr, 1 - a)),
                             "P(HR < 1)": float(np.mean(hr < 1))})
        return pd.DataFrame(rows).set_index(["transition", "term"])

    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        """Per transition: posterior median HR, its equal-tailed interval, P(HR < 1) and
        that probability's Monte Carlo standard error (``convergence.probability_mcse``:
        1 / draws, a bound, when every draw agrees)."""
        from bayes_hcc.convergence import probability_mcse

        a = (1 - one_prob(prob, "IllnessDeathFit.summary")) / 2
        hr = self.hazard_ratio()
        rows = []
        for t in TRANSITIONS:
            draws = hr.sel(transition=t)
            x = draws.values.ravel()
            p, mcse, _ = probability_mcse(draws < 1)
            rows.append({"transition": t, "hr_median": float(np.median(x)),
                         "lower": float(np.quantile(x, a)), "upper": float(np.quantile(x, 1 - a)),
                         "P(HR < 1)": p, "P(HR < 1) MCSE": mcse})
        return pd.DataFrame(rows).set_index("transition")

    def transition_params(self, thin: int = 1) -> list[dict]:
        """Each transition's baseline parameters as numpy draws (S, ...)."""
        thin = _check_thin(thin)
        post = self._post()
        out = []
        for t, fam in zip(TRANSITIONS, self.families):
            p = {}
            for name in fam.params:
                v = post[f"{t}::{name}"]
                p[name] = v.values.reshape((-1,) + v.shape[2:])[::thin]
            out.append(p)
        return out

    # -- derived curves --------------------------------------------------------------------
    def state_probabilities(self, times, *, thin: int = 4,
                            estimand: str = "typical_site") -> xr.Dataset:
        """On every ``thin``-th draw, per arm (for the ``estimand``'s patients: typical
        site by default, see ``ESTIMANDS``), at
        ``times``: P(alive progression-free) = PFS(t), P(alive after progression), P(dead);
        OS(t) = PFS(t) + int_0^t S0(u) a01(u) S12(u, t) du (quadrature as in the
        likelihood); and the progression curve exp(-H01(t)) (progression with death
        removed, the TTP estimand: death censors). Coherent on every draw:
        PFS <= min(OS, progression curve)."""
        times = np.asarray(as_numbers(times, "state_probabilities", "times", "[6, 12]"), float)
        per_arm = [self._curves(times, thin, arm, estimand=estimand) for arm in (0, 1)]
        S = per_arm[0]["os"].shape[0]
        out = {k: np.stack([c[k] for c in per_arm], axis=1) for k in ("pfs", "os",
                                                                       "progression")}
        arms = list(self.data.arms)
        coords = {"draw": np.arange(S), "arm": arms, "time": times}
        ds = xr.Dataset({k: (("draw", "arm", "time"), v) for k, v in out.items()},
                        coords=coords)
        ds["alive_progressed"] = ds["os"] - ds["pfs"]
        ds["dead"] = 1 - ds["os"]
        ds.attrs["estimand"] = estimand
        return ds

    def _site_offsets(self, thin: int, estimand: str) -> tuple[np.ndarray, np.ndarray]:
        """Site effects to average the curves over, (K, S, 3), and their weights (K,)."""
        if estimand not in ESTIMANDS:
            raise BayesHCCError(f"estimand={estimand!r}; choose one of {', '.join(ESTIMANDS)}.")
        post = self._post()
        S = len(post["log_hr"].values.reshape(-1, 3)[::thin])
        if estimand == "typical_site" or "site_effect" not in post:
            return np.zeros((1, S, 3)), np.ones(1)
        if estimand == "standardized":
            eff = post["site_effect"].values  # (chain, draw, 3, sites)
            eff = eff.reshape((-1,) + eff.shape[2:])[::thin]
            counts = np.bincount(self.data.site, minlength=eff.shape[-1]).astype(float)
            keep = counts > 0
            return np.moveaxis(eff[..., keep], -1, 0), counts[keep] / counts.sum()
        sd = post["site_sd"].values
        sd = sd.reshape((-1,) + sd.shape[2:])[::thin]  # (S,) shared or (S, 3)
        sd = np.broadcast_to(sd[:, None] if sd.ndim == 1 else sd, (S, 3))
        rng = np.random.default_rng(20200228)
        shared = self.model.site_effect == "shared"
        z = rng.standard_normal((NEW_SITE_DRAWS, 1 if shared else 3))
        z = np.broadcast_to(z, (NEW_SITE_DRAWS, 3))
        return z[:, None, :] * sd[None], np.full(NEW_SITE_DRAWS, 1.0 / NEW_SITE_DRAWS)

    def _curves(self, times, thin: int, arm: int, density: bool = False,
                estimand: str = "typical_site") -> dict:
        """The curves of one arm (``multistate.curves``) for the estimand's patients: at
        each site effect of ``_site_offsets``, averaged with its weights (survival curves
        and densities average; the marginal hazard is the averaged density over the
        averaged OS).

        Kept for the fit's last few calls (``_CURVE_CACHE``; read-only arrays): a report
        or a grid asks for the same curves several times (the medians for the table and
        for P(superiority), the RMST for both), and each costs seconds for the
        standardized estimand (one set of curves per site)."""
        times = np.asarray(times, float)
        thin = _check_thin(thin)
        key = (times.shape, times.tobytes(), int(thin), int(arm), bool(density), estimand)
        tree, cache = self.__dict__.get("_curve_cache", (None, None))
        if tree is not self.datatree:  # first call, or the draws were replaced
            cache = {}
            self._curve_cache = (self.datatree, cache)
        if key in cache:
            return cache[key]
        log_hr = self._post()["log_hr"].values.reshape(-1, 3)[::thin]
        params = self.transition_params(thin)
        offsets, weights = self._site_offsets(thin, estimand)
        out = None
        for off, w in zip(offsets, weights):
            etas = [(log_hr[:, j] * arm + off[:, j])[:, None] for j in range(3)]
            c = curves(self.families, params, etas, self.model.time_scale, times,
                       density=density)
            out = {k: w * v for k, v in c.items()} if out is None else \
                {k: out[k] + w * c[k] for k in out}
        for v in out.values():
            v.setflags(write=False)
        if len(cache) >= _CURVE_CACHE:
            cache.pop(next(iter(cache)))  # the oldest
        cache[key] = out
        return out

    def os_hazard_ratio(self, times, *, thin: int = 4,
                        estimand: str = "typical_site") -> xr.DataArray:
        """The marginal OS hazard ratio (treatment / control) at ``times`` on every
        ``thin``-th draw: the ratio of the arms' OS hazards, density / OS. Under an
        illness-death model it is not constant even when every transition's HR is: it
        moves from the death-without-progression HR towards a mixture as patients
        progress. Coordinate ``beyond_follow_up`` (per time) marks the times beyond either
        arm's OS follow-up (``attrs["follow_up"]``): there it is the model's
        extrapolation."""
        times = np.asarray(as_numbers(times, "os_hazard_ratio", "times", "[6, 12]"), float)
        if np.any(times <= 0):
            raise BayesHCCError("os_hazard_ratio: times must be > 0 (the hazard ratio at 0 "
                                "is a limit).")
        c0, c1 = (self._curves(times, thin, arm, density=True, estimand=estimand)
                  for arm in (0, 1))
        ratio = (c1["os_density"] / c1["os"]) / (c0["os_density"] / c0["os"])
        return ratio_beyond_follow_up(xr.DataArray(
            ratio, dims=("draw", "time"), coords={"draw": np.arange(ratio.shape[0]),
                                                  "time": times}, name="os_hazard_ratio"),
            self.follow_up_by_arm("os"))

    @bool_flags
    def rmst(self, tau: float, *, thin: int = 4, n_grid: int = 400,
             estimand: str = "typical_site", extrapolate: bool = False) -> xr.Dataset:
        """Restricted mean OS, PFS and progression-free time (death removed) up to ``tau``
        per arm and the difference, on every ``thin``-th draw (trapezoid rule on
        ``n_grid`` times: error below 1e-4 months for these smooth curves).

        A ``tau`` beyond the OS follow-up of either arm is refused (``HorizonError``, as
        ``bh.rmst``) unless ``extrapolate=True``: one arm's RMST would be the model's
        extrapolation. Progression is seen only up to the last scans, so the PFS and TTP
        follow-up is shorter (``follow_up_by_arm("pfs")``): a curve whose follow-up ``tau``
        exceeds is NaN (not estimable from the data; ``attrs["not_estimable"]`` gives its
        follow-up) unless ``extrapolate=True``."""
        tau = one_number(tau, "rmst", "tau", "18")
        if not tau > 0:
            raise BayesHCCError(f"rmst: tau={tau!r} must be > 0.")
        if not extrapolate:
            check_rmst_horizon(self, tau)
        grid = np.linspace(0.0, float(tau), n_grid)
        ds = self.state_probabilities(grid, thin=thin, estimand=estimand)
        res = xr.Dataset({k: (("draw", "arm"), np.trapezoid(ds[k].values, grid, axis=-1))
                          for k in ("os", "pfs", "progression")},
                         coords={"draw": ds["draw"], "arm": ds["arm"]})
        diff = res.isel(arm=1) - res.isel(arm=0)
        res = xr.concat([res, diff.expand_dims(arm=["difference"])], dim="arm")
        beyond = {}
        for k in ("pfs", "progression"):
            horizon = min(self.follow_up_by_arm(k).values())
            if tau > horizon and not extrapolate:
                res[k] = xr.full_like(res[k], np.nan)
                beyond[k] = horizon
        res.attrs.update(tau=float(tau), not_estimable=beyond)
        return res

    @bool_flags
    def prob_superiority(self, *, tau: float | None = None, thin: int = 4,
                         estimand: str = "typical_site", extrapolate: bool = False
                         ) -> pd.Series:
        """P(TACE-sorafenib better) on every scale the model gives: each transition's
        HR < 1, the OS and PFS median differences > 0 and, with ``tau`` (within the OS
        follow-up unless ``extrapolate=True``; for PFS shortened to its follow-up, as the
        label says), the RMST differences > 0. ``attrs["notes"]`` says which median
        probabilities rest partly on the model's extrapolation (a median not reached within
        its arm's follow-up)."""
        out = {f"HR {t.replace('_', ' ')} < 1": float((self.hazard_ratio().sel(
            transition=t) < 1).mean()) for t in TRANSITIONS}
        medians = self.medians(thin=thin, estimand=estimand)
        med = medians.sel(arm="difference")
        out.update({f"median {k.upper()} difference > 0": float((med[k] > 0).mean())
                    for k in ("os", "pfs")})
        # a median past its arm's follow-up: the probability leans on the extrapolation
        notes = {f"median {k.upper()} difference > 0": median_gain_note(
            medians.attrs["status"][k], medians.attrs["follow_up"][k], self.data.time_unit,
            med[k], out[f"median {k.upper()} difference > 0"]) for k in ("os", "pfs")}
        for k in ("os", "pfs"):
            if bool(np.isnan(med[k]).all()):  # neither median finite on any draw
                out[f"median {k.upper()} difference > 0"] = np.nan
        if tau is not None:
            if not extrapolate:
                check_rmst_horizon(self, tau)
            for k in ("os", "pfs"):
                t = self._curve_tau(tau, k, extrapolate)  # the label gives the tau used
                if not t > 0:  # an arm without a scan after randomization
                    out[f"RMST {k.upper()} difference > 0"] = np.nan
                    continue
                r = self.rmst(t, thin=thin, estimand=estimand, extrapolate=True)
                out[f"RMST {k.upper()} ({t:g}) difference > 0"] = float(
                    (r[k].sel(arm="difference") > 0).mean())
        series = pd.Series(out, name="probability")
        series.attrs["notes"] = {k: v for k, v in notes.items() if v}
        return series

    def _curve_tau(self, tau: float, endpoint: str, extrapolate: bool) -> float:
        """The RMST horizon of one curve: ``tau``, or, past the curve's follow-up (PFS and
        TTP are seen only up to the last scans) and without ``extrapolate``, that
        follow-up in whole months (``shortened_tau``; 0 when an arm has none)."""
        if extrapolate or tau <= min(self.follow_up_by_arm(endpoint).values()):
            return float(tau)
        return shortened_tau(self, tau, endpoint)

    def follow_up_by_arm(self, endpoint: str = "os") -> dict:
        """Longest time each arm's ``endpoint`` curve is observed, in the data's unit: for
        OS the longest time to death or censoring; for PFS and TTP (``"ttp"`` or
        ``"progression"``) the longest time a patient's progression status is known, as
        the trial's own PFS and TTP endpoints count it (the scan that showed progression,
        else the last scan without it; for PFS also a death without a progression seen).
        Beyond it a median, a survival probability or an RMST of that curve is the model's
        extrapolation (as ``Fit.follow_up_by_arm``): the progression hazard after the
        last scans is not seen in the data, however long the patients are followed for
        death."""
        d = self.data
        key = ID_CURVES.get(str(endpoint).lower())
        if key is None:
            raise BayesHCCError(f"follow_up_by_arm: endpoint={endpoint!r}; choose 'os', "
                                "'pfs' or 'ttp'.")
        known = d.endpoint({"progression": "ttp"}.get(key, key))[0]
        return {a: float(np.max(np.asarray(known, float)[d.arm == i]))
                for i, a in enumerate(d.arms)}

    def medians(self, *, thin: int = 4, horizon: float | None = None,
                n_grid: int = 600, estimand: str = "typical_site") -> xr.Dataset:
        """Median OS, PFS and time to progression (death removed) per arm and their
        difference (treatment - control), on every ``thin``-th draw: where each curve of
        :meth:`state_probabilities` crosses 0.5, by linear interpolation on ``n_grid``
        times up to ``horizon`` (default 3x the longest follow-up). With the default grid
        the interpolation error is below 0.01 months for curves like these (tested against
        root-finding). A curve still above 0.5 at ``horizon`` (an immature arm at an
        interim look) is followed on a geometric grid to 100x ``horizon`` (steps of 1.6%),
        so its median is the model's extrapolation, as a single-endpoint fit's, not a
        missing value; inf only beyond that.

        ``attrs["status"][endpoint][arm]`` says where each median lies against the arm's
        longest follow-up of that curve (``attrs["follow_up"][endpoint][arm]``, from
        :meth:`follow_up_by_arm`: shorter for PFS and TTP, seen only up to the last scans):
        "reached", "upper" (only its upper 97.5% limit lies beyond) or "beyond" (the model's
        extrapolation, not an estimate from the data: report it as such)."""
        horizon = float(horizon or 3 * np.max(self.data.time))
        names = ("os", "pfs", "progression")
        grid = np.linspace(0.0, horizon, n_grid)
        ds = self.state_probabilities(grid, thin=thin, estimand=estimand)
        med = {name: _crossing(ds[name].values, grid) for name in names}
        if any(np.isinf(m).any() for m in med.values()):
            far = np.concatenate([grid, np.geomspace(horizon, _FAR * horizon,
                                                     _FAR_POINTS + 1)[1:]])
            ds = self.state_probabilities(far, thin=thin, estimand=estimand)
            med = {name: np.where(np.isinf(m), _crossing(ds[name].values, far), m)
                   for name, m in med.items()}
        res = xr.Dataset({name: (("draw", "arm"), m) for name, m in med.items()},
                         coords={"draw": ds["draw"], "arm": ds["arm"]})
        diff = res.isel(arm=1) - res.isel(arm=0)
        res = xr.concat([res, diff.expand_dims(arm=["difference"])], dim="arm")
        # where each arm's median lies against that arm's follow-up: "reached", "upper"
        # (only the upper 97.5% limit beyond) or "beyond" (an extrapolation of the model)
        follow = {name: self.follow_up_by_arm(name) for name in names}
        res.attrs["follow_up"] = follow
        res.attrs["estimand"] = estimand
        res.attrs["status"] = {
            name: {a: horizon_status(float(res[name].sel(arm=a).median()),
                                     float(quantiles(res[name].sel(arm=a).values, 0.975)),
                                     follow[name][a])
                   for a in self.data.arms} for name in names}
        return res

    @bool_flags
    def endpoint_table(self, *, tau: float | None = None, prob: float = 0.95,
                       thin: int = 4, estimand: str = "typical_site",
                       extrapolate: bool = False) -> pd.DataFrame:
        """The headline table of the curves: per endpoint (OS, PFS, TTP = progression with
        death removed) each arm's median, the median difference and, with ``tau``, the RMST
        difference, with posterior median, equal-tailed ``prob`` interval and P(> 0) for
        differences; ``status`` says where a median lies against the arm's follow-up.

        As ``bh.summarize``: a median beyond the arm's follow-up is the model's
        extrapolation, not an estimate from the data, so unless ``extrapolate=True`` it is
        left blank ("not reached", with the lower limit when that lies within follow-up),
        an upper limit beyond follow-up too, and the difference of a median not reached
        ("not estimable"); ``note`` says which. ``extrapolate=True`` shows them, noted.
        A ``tau`` beyond follow-up is refused unless ``extrapolate=True``."""
        a = (1 - one_prob(prob, "endpoint_table")) / 2
        if tau is not None:  # -1 gave a table of "not estimable" RMST rows
            tau = one_number(tau, "endpoint_table", "tau", "18")
            if tau <= 0:
                raise BayesHCCError(f"endpoint_table: tau={tau:g} must be > 0.")
        med = self.medians(thin=thin, estimand=estimand)
        if tau is not None and not extrapolate:
            check_rmst_horizon(self, tau)  # OS: the longest follow-up of the three
        rmsts: dict = {}  # by tau: PFS and TTP may need a shorter one

        def rmst_at(t):
            if t not in rmsts:
                rmsts[t] = self.rmst(t, thin=thin, estimand=estimand, extrapolate=True)
            return rmsts[t]

        unit = self.data.time_unit
        follow = med.attrs["follow_up"]
        names = {"os": "OS", "pfs": "PFS", "progression": "TTP"}
        rows = []
        for key, label in names.items():
            status = med.attrs["status"][key]
            for arm in list(self.data.arms) + ["difference"]:
                x = med[key].sel(arm=arm).values.ravel()
                lo, hi = quantiles(x, [a, 1 - a])  # a median never reached is +inf
                row = {"endpoint": label, "quantity": f"median {arm}",
                       "median": float(np.median(x)), "lower": float(lo), "upper": float(hi),
                       "P(> 0)": float(np.mean(x > 0)) if arm == "difference" else np.nan,
                       "status": status.get(arm, ""), "note": ""}
                if arm == "difference":
                    mark_median_difference(row, status.values(), extrapolate)
                else:
                    mark_median(row, status[arm], follow[key][arm], unit, extrapolate)
                rows.append(row)
            if tau is not None:
                # PFS and TTP are seen only up to the last scans: their RMST to the OS
                # horizon would be the model's extrapolation; shortened, and said so
                horizon, t_key, note = min(follow[key].values()), self._curve_tau(
                    tau, key, extrapolate), ""
                if t_key < tau:
                    note = (f"tau shortened to the {label} follow-up ({horizon:.3g} {unit}: "
                            "progression is seen only up to the last scans)")
                elif tau > horizon:
                    note = (f"extrapolated: tau beyond the {label} follow-up "
                            f"({horizon:.3g} {unit})")
                if not t_key > 0:  # an arm without a scan after randomization
                    rows.append({"endpoint": label, "quantity": "RMST difference",
                                 "median": np.nan, "lower": np.nan, "upper": np.nan,
                                 "P(> 0)": np.nan, "status": "",
                                 "note": f"not estimable: no {label} follow-up in an arm"})
                    continue
                x = rmst_at(t_key)[key].sel(arm="difference").values.ravel()
                rows.append({"endpoint": label,
                             "quantity": f"RMST difference ({time_label(t_key, unit)})",
                             "median": float(np.median(x)), "lower": float(np.quantile(x, a)),
                             "upper": float(np.quantile(x, 1 - a)),
                             "P(> 0)": float(np.mean(x > 0)), "status": "", "note": note})
        out = pd.DataFrame(rows).set_index(["endpoint", "quantity"])
        verdict = note_diagnostics(out, self)  # as bh.summarize: failed checks in the table
        out.attrs.update(prob=prob, time_unit=unit, estimand=estimand, tau=tau,
                         diagnostics=verdict)
        return out

    # -- convergence ------------------------------------------------------------------------
    def convergence_problems(self) -> list[str]:
        """The failed sampler checks (R-hat, ESS, divergences, tree depth, E-BFMI of every
        sampled variable: ``bayes_hcc.convergence``), as sentences."""
        from bayes_hcc.convergence import sampler_rows, thresholds_for

        limits, _ = thresholds_for(self.datatree)
        rows = sampler_rows(self.datatree, limits)
        return [f"{name} = {value:.4g} ({where}), needs {threshold}"
                for name, (value, threshold, ok, where) in rows.items() if not ok]

    def warn_if_unreliable(self) -> None:
        from bayes_hcc.convergence import warn_convergence

        problems = self.convergence_problems()
        if problems:
            warn_convergence(f"{self}: {'; '.join(problems)}. The posterior may be unreliable: "
                             "run more draws/tune or raise target_accept.")


def _crossing(y: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Where decreasing curves ``y`` (..., T) on ``grid`` (T,) first reach 0.5, by linear
    interpolation; inf where they stay above it."""
    below = y <= 0.5
    j = np.where(below.any(axis=-1), below.argmax(axis=-1), -1)  # first at/below
    jj = np.clip(j, 1, None)
    y0 = np.take_along_axis(y, (jj - 1)[..., None], -1)[..., 0]
    y1 = np.take_along_axis(y, jj[..., None], -1)[..., 0]
    t0, t1 = grid[jj - 1], grid[jj]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = t0 + (y0 - 0.5) / (y0 - y1) * (t1 - t0)
    return np.where(j < 0, np.inf, t)


def _check_thin(thin) -> int:
    """Every ``thin``-th draw: a whole number >= 1 (0 failed inside a slice, 2.5 too)."""
    return whole_number(thin, "IllnessDeathFit", "thin", 1,
                        what=" (the curves are computed on every thin-th draw)")
