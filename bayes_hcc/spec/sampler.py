"""Sampler settings: one validation for the Python API, the analysis specs and the CLI.

Every limit here stops a setting that would otherwise crash deep inside the sampler (nutpie
panics with ``tune=0``; a 2**70 seed overflows; 10**9 chains or 10**12 draws abort the
process while allocating) with the package's own error.
"""

from __future__ import annotations

import numpy as np

from bayes_hcc.errors import ModelError

__all__ = ["check_sampler_settings", "check_refit", "check_seed", "REFIT_KEYS", "MAX_CHAINS",
           "MAX_TOTAL_DRAWS", "MAX_SEED", "MAX_TRACE_BYTES"]

#: nutpie runs chains as threads; more than this is a typo, not a plan.
MAX_CHAINS = 64
#: Draws kept in total (chains x draws): far beyond any analysis of this trial.
MAX_TOTAL_DRAWS = 2_000_000
#: Seeds are unsigned 64-bit integers (nutpie's range).
MAX_SEED = 2**64 - 1
#: Largest trace (posterior and pointwise log-likelihood, 8 bytes per value) allowed.
MAX_TRACE_BYTES = 8 * 2**30


def _int(name, v, lo, hi, error, where):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise error(f"{where}{name}={v!r} must be an integer (got {type(v).__name__}).")
    if not lo <= int(v) <= hi:
        raise error(f"{where}{name}={v!r} must be between {lo} and {hi:,}.")
    return int(v)


def check_seed(seed, caller: str, error=ModelError):
    """A random seed as numpy takes it: None, a whole number 0 .. 2**64 - 1, a
    ``numpy.random.Generator`` or ``SeedSequence``; else ``error`` naming ``caller``
    (``"1"`` failed inside numpy's SeedSequence)."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return seed
    return _int("random_seed", seed, 0, MAX_SEED, error, f"{caller}: ")


def check_sampler_settings(*, draws, tune, chains, seed=None, target_accept=None,
                           values_per_draw: int | None = None, error=ModelError,
                           where: str = "") -> dict:
    """Validate sampler settings; return them as plain ints/floats.

    Parameters
    ----------
    draws, tune, chains : int
        Kept draws per chain (>= 1, or "auto": 1000, extended once to 2000), tuning steps
        per chain (>= 1: nutpie's adaptation needs at least one), chains (1 to
        :data:`MAX_CHAINS`); chains x draws at most :data:`MAX_TOTAL_DRAWS`.
    seed : int, optional
        0 to 2**64 - 1.
    target_accept : float, optional
        Strictly between 0 and 1.
    values_per_draw : int, optional
        Values stored per draw (parameters plus patients for the pointwise
        log-likelihood): the trace must fit in :data:`MAX_TRACE_BYTES`.
    error : exception class
        Raised with the message (ModelError for the API, SpecError for a spec file).
    where : str
        Prefix naming the source ("models/primary_os.toml: sampler: ").
    """
    auto = isinstance(draws, str) and draws == "auto"
    if auto:
        draws = 2000  # the most "auto" draws (models.sampling.AUTO_DRAWS)
    out = {"draws": _int("draws", draws, 1, MAX_TOTAL_DRAWS, error, where),
           "tune": _int("tune", tune, 1, MAX_TOTAL_DRAWS, error, where),
           "chains": _int("chains", chains, 1, MAX_CHAINS, error, where)}
    total = out["draws"] * out["chains"]
    if total > MAX_TOTAL_DRAWS:
        raise error(f"{where}chains x draws = {total:,} is more than {MAX_TOTAL_DRAWS:,} draws "
                    "in total; the trace would not fit in memory. Use fewer draws (4 x 1000 "
                    "is plenty for this trial's quantities).")
    if values_per_draw is not None:
        size = total * int(values_per_draw) * 8
        if size > MAX_TRACE_BYTES:
            raise error(f"{where}chains x draws = {total:,} with {values_per_draw:,} values per "
                        f"draw needs about {size / 2**30:.1f} GiB (limit "
                        f"{MAX_TRACE_BYTES / 2**30:.0f} GiB); use fewer draws, or "
                        "log_likelihood=False when the pointwise log-likelihood is not needed.")
    if seed is not None and not isinstance(seed, np.random.Generator):
        out["seed"] = _int("seed", seed, 0, MAX_SEED, error, where)
    if target_accept is not None:
        if isinstance(target_accept, bool) or not isinstance(target_accept, (int, float)) \
                or not 0 < float(target_accept) < 1:
            raise error(f"{where}target_accept={target_accept!r} must be a number strictly "
                        "between 0 and 1.")
        out["target_accept"] = float(target_accept)
    if auto:
        out["draws"] = "auto"
    return out


#: What a ``refit=`` of simulated or completed trials may set (``fit``'s sampler settings,
#: and ``exploratory``: quick fits held to the exploratory thresholds; the seed comes from
#: the simulation, the pointwise log-likelihood is never needed).
REFIT_KEYS = ("draws", "tune", "chains", "target_accept", "cores", "sampler", "exploratory")


def check_refit(refit, where: str) -> dict:
    """``refit=`` (sampler overrides of every refit in a design simulation or a PPoS)
    checked before any trial runs: a dict of ``REFIT_KEYS`` with valid values. A typo
    (``draw``) raised TypeError from inside the first refit, after the simulation had
    started."""
    from bayes_hcc.errors import BayesHCCError, did_you_mean

    if refit is None:
        return {}
    if not isinstance(refit, dict):
        raise BayesHCCError(f"{where}: refit={refit!r} must be a dict of sampler settings, "
                            "e.g. refit={'draws': 500, 'chains': 2}.")
    unknown = [k for k in refit if k not in REFIT_KEYS]
    if unknown:
        raise BayesHCCError(f"{where}: refit has unknown key(s) "
                            f"{did_you_mean(unknown, REFIT_KEYS)}; valid keys: "
                            f"{', '.join(REFIT_KEYS)}.")
    check_sampler_settings(draws=refit.get("draws", 1000), tune=refit.get("tune", 1000),
                           chains=refit.get("chains", 4),
                           target_accept=refit.get("target_accept"), error=BayesHCCError,
                           where=f"{where}: refit ")
    if not isinstance(refit.get("exploratory", False), bool):
        raise BayesHCCError(f"{where}: refit exploratory={refit['exploratory']!r} must be "
                            "True or False.")
    if refit.get("sampler", "nutpie") not in ("nutpie", "pymc"):
        raise BayesHCCError(f"{where}: refit sampler={refit['sampler']!r}; choose 'nutpie' "
                            "or 'pymc'.")
    return dict(refit)
