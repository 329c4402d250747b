"""Sampling: the compile cache (once per graph structure; refits swap the data), the
samplers (nutpie, PyMC), the ``draws="auto"`` rule, and the Fit it returns."""

from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pymc as pm

from bayes_hcc.errors import ModelError, noted_data_warnings
from bayes_hcc.families.base import CENTRED_SUFFIX
from bayes_hcc.models.assemble import assemble, spec_attrs
from bayes_hcc.models.fit import Fit
from bayes_hcc.models.graph import build_pymc, prepare, site_parametrization_for
from bayes_hcc.spec.sampler import check_sampler_settings

__all__ = ["sample_model", "SAMPLERS", "AUTO_DRAWS"]

SAMPLERS = ("nutpie", "pymc")
_CACHE: dict = {}
_CACHE_LOCK = threading.Lock()
_MAX_CACHE = 64


def _strict_math():
    """Compile without numba fastmath: with it, code compiled in this process and code
    loaded from the on-disk cache differ in the last bits (inlining changes how LLVM
    reassociates), so the same seed gave different draws on a cold and a warm cache.
    Measured cost: none at this trial's size; 1.7x per gradient for the Weibull model at
    13,000 patients (its exponentials over patients vectorise only with fastmath)."""
    import pytensor

    return pytensor.config.change_flags(numba__fastmath=False)


def _compiled(key, builder, sampler):
    with _CACHE_LOCK:
        hit = _CACHE.get((key, sampler))
    if hit is not None:
        return hit
    m = builder()
    compiled = None
    if sampler == "nutpie":
        from bayes_hcc.models._nutpie import compile_model

        with _strict_math():
            compiled = compile_model(m, structure_key=key)
    with _CACHE_LOCK:
        if len(_CACHE) >= _MAX_CACHE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[(key, sampler)] = (m, compiled)
    return m, compiled


def graph_builder(model, ep, family, priors, data, X, key):
    """A function building the PyMC model of these prepared data (``graph.prepare``): what
    ``_compiled`` calls once per structure key."""
    def builder():
        strata = json.loads(key)["strata"]
        return build_pymc(family, priors, data, site_effect=model.site_effect,
                          arm_by_site=model.arm_by_site, n_sites=len(ep.sites),
                          n_cov=X.shape[1],
                          site_parametrization=site_parametrization_for(model, ep),
                          n_strata=strata[0] if strata else 1,
                          pooling=strata[1] if strata else None)
    return builder


def _prepare_noting(model, trial, endpoint):
    """``prepare``, and what the data warn of for this fit, kept with it (``Fit.data_notes``:
    its report and footnotes say them): the data's own warnings for the endpoint (small
    sites, an arm without events: shown when they were read or cut, only recorded here)
    and the model's (a site without events under fixed site effects, cut points past the
    follow-up: still shown)."""
    with noted_data_warnings() as model_notes:
        prepared = prepare(model, trial, endpoint)
    notes = trial.data_notes([endpoint]) if hasattr(trial, "data_notes") else []
    return prepared, notes + [n for n in model_notes if n not in notes]


def _seed(random_seed) -> int:
    if random_seed is None:
        return int(np.random.SeedSequence().entropy % (2**32))
    if isinstance(random_seed, np.random.Generator):
        return int(random_seed.integers(2**32))
    return int(random_seed)


#: draws="auto": this many draws per chain, and once the second number when the chains
#: only fall short on R-hat, ESS or Monte Carlo error (not on divergences, tree depth or
#: E-BFMI, which more draws do not cure). Measured on the bundled rats data (50 litters of
#: 3): piecewise fits failed R-hat in 3 of 10 seeds at 1000 (R-hat 1.0101-1.0114 on the site
#: SD, ESS ~500), none at 2000 (R-hat <= 1.0044).
AUTO_DRAWS = (1000, 2000)
#: Checks that more draws can fix.
_MORE_DRAWS_FIX = ("r_hat", "ess_bulk", "ess_tail", "mcse_prob")


def sample_model(model, trial, endpoint, *, draws, tune, chains, cores, random_seed, sampler,
                 target_accept, check, log_likelihood=True, exploratory=False):
    if isinstance(draws, str) and draws == "auto":
        if random_seed is None:  # both runs need the same seed
            random_seed = _seed(None)
        kw = dict(tune=tune, chains=chains, cores=cores, random_seed=random_seed,
                  sampler=sampler, target_accept=target_accept, check=False,
                  log_likelihood=log_likelihood, exploratory=exploratory)
        fit = sample_model(model, trial, endpoint, draws=AUTO_DRAWS[0], **kw)
        problems = fit.convergence_problems()
        rule = {"rule": "auto", "draws": AUTO_DRAWS[0], "extended": False}
        if problems and not exploratory and all(p.split(" ")[0] in _MORE_DRAWS_FIX and
                                                "too few" not in p for p in problems):
            first = problems
            fit = sample_model(model, trial, endpoint, draws=AUTO_DRAWS[1], **kw)
            problems = fit.convergence_problems()
            rule = {"rule": "auto", "draws": AUTO_DRAWS[1], "extended": True,
                    "because": first}
        fit.datatree.attrs["draws_rule"] = json.dumps(rule, sort_keys=True)
        # the spec records what was asked ("auto"); draws_rule what it resolved to
        fit.datatree.attrs.update(spec_attrs(model, trial.endpoint(endpoint), {
            "draws": "auto", "tune": tune, "chains": chains, "target_accept": target_accept,
            "sampler": sampler}, random_seed))
        fit = Fit(fit.datatree)
        if check and problems:
            fit.warn_if_unreliable(problems)
        return fit
    if sampler not in SAMPLERS:
        raise ModelError(f"sampler={sampler!r}; choose one of {', '.join(SAMPLERS)}.")
    n_patients = trial.n_patients if hasattr(trial, "n_patients") else 0
    check_sampler_settings(draws=draws, tune=tune, chains=chains, seed=random_seed,
                           target_accept=target_accept,
                           values_per_draw=(n_patients if log_likelihood else 0) + 100)
    if not isinstance(log_likelihood, (bool, np.bool_)):
        raise ModelError(f"log_likelihood={log_likelihood!r} must be True or False (a string "
                         "such as 'false' would count as True).")
    (ep, family, priors, X, scale, data, key), notes = _prepare_noting(model, trial, endpoint)
    seed = _seed(random_seed)
    cores = cores or max(1, min(chains, os.cpu_count() or 1))
    t0 = time.perf_counter()
    with _CACHE_LOCK:
        reused = (key, sampler) in _CACHE
    m, compiled = _compiled(key, graph_builder(model, ep, family, priors, data, X, key),
                            sampler)
    t1 = time.perf_counter()
    if reused:
        # a cache hit is recorded as no compile at all (its microseconds of lookup could
        # round to 0.0001 s on a busy machine, and "compile": 0 is what says "reused")
        t0 = t1
    if sampler == "nutpie":
        from bayes_hcc.models import _nutpie

        trace = _nutpie.sample(_nutpie.with_data(compiled, m, data), draws=draws, tune=tune,
                               chains=chains, cores=cores, seed=seed, save_warmup=False,
                               progress_bar=False, target_accept=target_accept)
    else:
        with m, _strict_math():
            pm.set_data(data)
            trace = pm.sample(draws=draws, tune=tune, chains=chains, cores=cores,
                              random_seed=seed, nuts_sampler="pymc", progressbar=False,
                              target_accept=target_accept, compute_convergence_checks=False,
                              quiet=True)
        trace = {g: trace[g].to_dataset() for g in ("posterior", "sample_stats")}
    t2 = time.perf_counter()
    dt = assemble(trace, model, trial, ep, family, priors, X, scale, seed,
                  dict(draws=draws, tune=tune, chains=chains, sampler=sampler,
                       target_accept=target_accept), log_likelihood=bool(log_likelihood))
    # The variables the sampler moves (an intercept's sampler coordinate is recorded under
    # the intercept's name): what the convergence checks look at.
    dt.attrs["sampled_variables"] = json.dumps(sorted(
        v.name[:-len(CENTRED_SUFFIX)] if v.name.endswith(CENTRED_SUFFIX) else v.name
        for v in m.free_RVs))
    # Wall times of this fit: building and compiling (0 when the compiled sampler was
    # reused), sampling, and assembling the DataTree (log-likelihood, log prior).
    dt.attrs["timing_seconds"] = json.dumps({"compile": round(t1 - t0, 4),
                                             "sampling": round(t2 - t1, 4),
                                             "assemble": round(time.perf_counter() - t2, 4)})
    dt.attrs["analysis_mode"] = "exploratory" if exploratory else "confirmatory"
    dt.attrs["data_notes"] = json.dumps(notes)
    fit = Fit(dt)
    if check:
        fit.warn_if_unreliable()
    return fit
