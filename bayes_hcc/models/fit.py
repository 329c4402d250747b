"""Fit: the result of ``model.fit`` (a DataTree with provenance), save and load."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import xarray as xr

from bayes_hcc.errors import BayesHCCError, bool_flags, user_path
from bayes_hcc.families.registry import family_from_settings
from bayes_hcc.spec.model_spec import recorded_spec
from bayes_hcc.spec.priors import Prior

__all__ = ["Fit", "load_fit", "write_tree", "FIT_LOADERS"]

def flat_posterior(posterior: xr.Dataset, names) -> dict:
    """Posterior variables as arrays with one leading sample axis (chain * draw)."""
    out = {}
    for n in names:
        if n in posterior:
            a = posterior[n].to_numpy()
            # (chain * draw) spelled out: -1 cannot be inferred for a zero-length variable
            # (a one-interval piecewise model's random-walk steps)
            out[n] = a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:])
    return out


#: the attributes every fit carries (what produced it); more are optional (strata, ...)
FIT_ATTRS = ("spec_toml", "spec_hash", "bayes_hcc_family", "bayes_hcc_priors", "endpoint",
             "arms", "sites", "time_unit", "random_seed")


class Fit:
    """A fitted model: ``.datatree`` holds posterior, sample_stats, log_likelihood,
    log_prior, observed_data and constant_data, with provenance in its attrs."""

    def __init__(self, datatree: xr.DataTree):
        missing = [k for k in FIT_ATTRS if k not in datatree.attrs]
        if missing or "posterior" not in datatree.children:
            lacks = (f"its attributes lack {', '.join(missing)}" if missing else
                     "it has no posterior group")
            # (a KeyError 'spec_toml' from inside, for an ArviZ tree of another model)
            raise BayesHCCError(f"not a fit made by bayes_hcc ({lacks}): pass the Fit that "
                                "model.fit or bh.fit_spec returned, or bh.load_fit(path) "
                                "of one saved with fit.save.")
        self.datatree = datatree
        attrs = datatree.attrs
        #: the spec that produced the fit: its only record of the model's settings
        self.spec = recorded_spec(str(attrs["spec_toml"]))
        if self.spec.hash != attrs["spec_hash"]:
            raise BayesHCCError("the fit's stored spec does not match its hash (spec_hash): "
                                "the spec was edited after fitting. Refit from the spec.")
        self.family = family_from_settings(json.loads(attrs["bayes_hcc_family"]))
        #: a JSON-able view of the spec's model settings, with the resolved family
        self.settings = {**self.spec.model_settings(), "family": self.family.settings()}
        self.priors = {k: Prior.from_dict(v)
                       for k, v in json.loads(attrs["bayes_hcc_priors"]).items()}
        self.endpoint = attrs["endpoint"]
        self.arms = tuple(json.loads(attrs["arms"]))
        self.sites = tuple(json.loads(attrs["sites"]))
        #: labels of the strata of a stratified baseline (empty: one baseline)
        self.strata = tuple(json.loads(attrs.get("strata", "[]")))
        self.time_unit = attrs["time_unit"]
        self.random_seed = int(attrs["random_seed"])

    @property
    def posterior(self) -> xr.Dataset:
        return self.datatree["posterior"].to_dataset()

    @property
    def site_effect(self) -> str:
        return self.settings["site_effect"]

    @property
    def arm_by_site(self):
        return self.settings["arm_by_site"]

    @property
    def pooling(self):
        """How a stratified baseline's strata are pooled ("partial", "none"; None if the
        baseline is not stratified)."""
        return self.settings.get("pooling")

    def stratum(self):
        """Each patient's stratum index (None when the baseline is not stratified)."""
        c = self.datatree["constant_data"]
        return c["stratum"].to_numpy() if "stratum" in c else None

    def strata_labels(self):
        """Each patient's stratum label (None when the baseline is not stratified): what a
        stratified log-rank test or Cox model of the same data uses."""
        st = self.stratum()
        return None if st is None else np.asarray(self.strata, dtype=object)[st]

    @property
    def data_fingerprint(self) -> str:
        return self.datatree.attrs["data_fingerprint"]

    def mixture_weights(self) -> dict:
        """For each parameter with a mixture prior (e.g. a robust MAP prior of the control
        log hazard): the posterior weight of each component, the average over the draws of
        P(component | draw), with the draws moved to the months scale the prior is declared
        on. A vector parameter with one mixture per element (a per-interval MAP prior) gives
        one row per element. {} when no prior is a mixture."""
        from bayes_hcc.spec.priors import IntervalMixturePrior, MixturePrior
        from bayes_hcc.units import log_unit_in_months

        post = self.datatree["posterior"]
        scalars = {k: post[k].to_numpy().reshape(-1) for k in post.data_vars
                   if set(post[k].dims) == {"chain", "draw"}}
        out = {}
        for name, prior in self.priors.items():
            if name not in post:
                continue
            dims = set(post[name].dims) - {"chain", "draw"}
            if isinstance(prior, MixturePrior) and not dims:
                x = scalars[name]
            elif isinstance(prior, IntervalMixturePrior) and len(dims) == 1:
                x = post[name].to_numpy().reshape(-1, prior.n_elements)
            else:
                continue
            shift = np.asarray(self.family.unit_shift(
                scalars, log_unit_in_months(self.time_unit)).get(name, 0.0))
            if x.ndim == 2 and shift.ndim == 1:  # a shift per draw (e.g. a Weibull shape)
                shift = shift[:, None]
            out[name] = prior.component_probabilities(x - shift).mean(axis=0)
        return out

    @property
    def prior_provenance(self) -> dict:
        """Where priors built from data came from (a MAP prior: method, studies, history
        fingerprint, ESS, robust weight, tau scale, seed), by parameter; {} if none."""
        text = self.datatree.attrs.get("prior_provenance")
        return json.loads(text) if text else {}

    @property
    def reconstruction(self) -> dict | None:
        """When the data were reconstructed from published Kaplan-Meier curves
        (``bh.reconstruct_trial``): the method and each arm's fidelity; else None."""
        text = self.datatree.attrs.get("data_reconstructed")
        return json.loads(text) if text else None

    @property
    def max_follow_up(self) -> float:
        return float(self.datatree.attrs["max_follow_up"])

    def follow_up_by_arm(self) -> dict:
        """Longest observed time (event or censoring) in each arm, in ``time_unit``: beyond
        it a median or a survival probability is the model's extrapolation."""
        t = self.datatree["observed_data"][self.endpoint].to_numpy()
        arm = self.datatree["constant_data"]["arm"].to_numpy()
        return {a: float(t[arm == i].max()) if (arm == i).any() else 0.0
                for i, a in enumerate(self.arms)}

    def design(self):
        """Per-patient arm, site index and standardized covariates (from constant_data)."""
        c = self.datatree["constant_data"]
        return (c["arm"].to_numpy(), c["site"].to_numpy(), c["X"].to_numpy())

    @property
    def n_draws(self) -> int:
        p = self.datatree["posterior"]
        return int(p.sizes["chain"] * p.sizes["draw"])

    def __repr__(self) -> str:
        p = self.datatree["posterior"]
        c = self.datatree["constant_data"]
        par = self.datatree.attrs.get("site_parametrization_used")
        site = (f"{self.site_effect} ({par})" if par and self.site_effect == "random"
                else self.site_effect)
        strata = (f" | strata {self.settings['strata']} ({len(self.strata)}, "
                  f"pooling {self.pooling})" if self.strata else "")
        return (f"Fit | {self.settings['model']} | {self.endpoint.upper()} | site_effect="
                f"{site}{strata} | {c.sizes['patient']} patients, "
                f"{int(c[self.endpoint].sum())} events | {p.sizes['chain']} chains x "
                f"{p.sizes['draw']} draws | seed {self.random_seed}"
                + (" | RECONSTRUCTED data" if self.reconstruction else ""))

    def _repr_html_(self) -> str:
        """What a notebook shows for a fit: the line ``repr`` gives, the arm effect's
        posterior (median, 95% equal-tailed interval, the probability of the treatment's
        side of 1 with its Monte Carlo error), the convergence verdict and what the data
        warned of; ``bh.summarize`` has the rest."""
        import html

        from bayes_hcc.convergence import probability_mcse
        from bayes_hcc.notebook import fit_card

        effect = self.family.effect
        log_ratio = self.datatree["posterior"][effect.name]
        lower, median, upper = np.quantile(np.exp(log_ratio.to_numpy()), [0.025, 0.5, 0.975])
        p, mcse, bound = probability_mcse(effect.favours_treatment(log_ratio))
        trt, ctrl = (html.escape(a) for a in self.arms[::-1])
        if effect.ratio == "HR":
            label = f"HR = hazard({trt}) / hazard({ctrl})"
            if "log_hr_dev" in self.datatree["posterior"]:
                label += ", geometric mean over intervals"
        else:
            label = f"time ratio ({trt} / {ctrl}; no single HR)"
        on = self.conditioned_on()
        label += (f"; conditional on {html.escape(' and '.join(on))}" if on else "")
        mc = f"MCSE &lt; {mcse:.2g}" if bound else f"MCSE {mcse:.4f}"
        headline = (f"<p>{label}: <b>{median:.3g}</b> (95% CrI {lower:.3g} to {upper:.3g}); "
                    f"P({html.escape(effect.event())}) = {p:.3f} ({mc})</p>")
        return fit_card(repr(self), headline, self.convergence_problems(),
                        self.analysis_mode == "exploratory", self.data_notes,
                        "<code>bh.summarize(fit)</code>: medians, survival at landmarks, "
                        "RMST, the marginal HR and the frequentist companion.")

    def conditioned_on(self) -> list[str]:
        """What the model's arm effect is conditional on, in words: covariates and site
        terms (a treatment-by-site effect makes it the effect at a typical site, even
        without site effects on the baseline) and strata. Empty: the effect is marginal."""
        out = []
        if self.settings.get("covariates"):
            out.append("covariates " + ", ".join(self.settings["covariates"]))
        if self.site_effect != "none":
            out.append(f"site ({self.site_effect} effects)")
        if self.arm_by_site:
            out.append("a typical site's treatment-by-site effect (0)")
        if self.strata:
            out.append(f"stratum ({self.settings['strata']}: a baseline hazard per stratum)")
        return out

    @property
    def data_notes(self) -> list[str]:
        """What the data warned of for this fit (``bh.DataWarning`` texts, recorded when it
        was fitted): a site with fewer than 3 patients, an arm without events, a site
        without events under fixed site effects... Its report and table footnotes say
        them. Empty for a fit saved before they were recorded."""
        return list(json.loads(self.datatree.attrs.get("data_notes", "[]")))

    # -- convergence check at fit time (bh.check adds the headline MCSE of the medians) ------
    @property
    def analysis_mode(self) -> str:
        """"confirmatory" or "exploratory" (a fit made in fast mode: a quick look)."""
        return self.datatree.attrs.get("analysis_mode", "confirmatory")

    def convergence_problems(self) -> list[str]:
        """The failed checks, as sentences: the sampler rows of ``bh.check`` (same code,
        ``bayes_hcc.convergence``: every sampled variable, NaN fails) and the Monte Carlo
        error of P(HR < 1) (or P(TR > 1)), at the thresholds of the fit's mode."""
        return list(self.failed_checks().values())

    def failed_checks(self) -> dict[str, str]:
        """``convergence_problems`` by check name (``r_hat``, ``ess_bulk``, ``mcse_prob``,
        ...), as ``bh.check``'s table names them."""
        from bayes_hcc.convergence import probability_row, sampler_rows, thresholds_for

        limits, _ = thresholds_for(self.datatree)
        rows = sampler_rows(self.datatree, limits)
        effect = self.family.effect
        rows["mcse_prob"] = probability_row(
            effect.favours_treatment(self.datatree["posterior"][effect.name]), effect.event(),
            limits)
        return {name: f"{name} = {value:.4g} ({where}), needs {threshold}"
                for name, (value, threshold, ok, where) in rows.items() if not ok}

    def warn_if_unreliable(self, problems: list[str] | None = None) -> None:
        from bayes_hcc.convergence import warn_convergence

        problems = self.convergence_problems() if problems is None else problems
        if problems:
            mode = " (exploratory thresholds: fast mode)" if \
                self.analysis_mode == "exploratory" else ""
            warn_convergence(f"{self}: {'; '.join(problems)}{mode}. The posterior may be "
                             "unreliable: run more draws/tune, raise target_accept, or "
                             "simplify the model (bh.check(fit) explains each check).")

    # -- save / load -----------------------------------------------------------------------
    @bool_flags
    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write the DataTree (with provenance attrs) to netCDF; refuses to overwrite.

        The file carries ``content_sha256``, a digest of every array and attribute, which
        :func:`load_fit` checks: an edited or damaged fit is refused."""
        return write_tree(self.datatree, path, overwrite=overwrite)


#: Root attribute holding the content digest of a saved fit.
DIGEST_ATTR = "content_sha256"
#: Root attribute naming a saved fit's kind when it is not a single-endpoint ``Fit``.
KIND_ATTR = "bayes_hcc_kind"
#: kind -> function(DataTree, path) rebuilding that kind of fit; registered by the module
#: that defines it (``bayes_hcc.multistate``), so this module does not import it.
FIT_LOADERS: dict = {}


def write_tree(dt: xr.DataTree, path, *, overwrite: bool = False) -> Path:
    """Write a fit's DataTree to netCDF with its content digest; refuses to overwrite."""
    path = user_path(path, "save", "the file to write (e.g. 'fit.nc')")
    if path.is_dir():
        raise BayesHCCError(f"{path} is a directory; give a file name such as fit.nc.")
    if path.suffix.lower() != ".nc":  # fit.json or fit.csv would hold netCDF
        raise BayesHCCError(f"{path.name}: a fit is saved as netCDF, so its file name ends in "
                            f".nc (e.g. {path.stem or 'fit'}.nc); for a table of results, "
                            "bh.summarize(fit).to_csv(...) or bh.write_table.")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    dt = _storable(dt)
    dt.attrs[DIGEST_ATTR] = content_digest(dt)
    dt.to_netcdf(path, engine="h5netcdf")
    return path


def _storable(dt: xr.DataTree) -> xr.DataTree:
    """A copy whose arrays survive a netCDF round trip unchanged (object arrays, such as
    nutpie's divergence messages, become text with "" for none)."""
    dt = dt.copy()
    for node in dt.subtree:
        if not node.has_data:
            continue
        ds = node.to_dataset()
        changed = False
        for name in list(ds.data_vars):
            if ds[name].dtype == object:
                ds[name] = ds[name].copy(data=np.array(
                    ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                     for v in ds[name].values.ravel()], dtype=str).reshape(ds[name].shape))
                changed = True
        if changed:
            dt[node.path] = ds
    return dt


def _plain(value):
    """Attribute values as plain JSON (numpy scalars and arrays read back from netCDF)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def content_digest(dt: xr.DataTree) -> str:
    """SHA-256 of a fit's content: every group's variables and coordinates (name, dims,
    dtype, values) and every attribute except the digest itself, in a canonical order."""
    h = hashlib.sha256()
    for node in sorted(dt.subtree, key=lambda n: n.path):
        h.update(f"\x00group {node.path}".encode())
        attrs = {k: _plain(v) for k, v in node.attrs.items() if k != DIGEST_ATTR}
        h.update(json.dumps(attrs, sort_keys=True, default=str).encode())
        if not node.has_data and not node.variables:
            continue
        ds = node.to_dataset()
        for name in sorted(map(str, ds.variables)):
            values = np.asarray(ds[name].values)
            h.update(f"\x00var {name} {ds[name].dims} {values.shape}".encode())
            if values.dtype.kind in "fiub":
                h.update(values.dtype.newbyteorder("<").str.encode())
                h.update(np.ascontiguousarray(values, values.dtype.newbyteorder("<")).tobytes())
            elif values.dtype.kind in "mM":
                h.update(np.ascontiguousarray(values.astype("datetime64[ns]")
                                              .view(np.int64)).tobytes())
            else:  # text and objects: their string forms
                h.update(json.dumps([str(v) for v in values.ravel()]).encode())
    return h.hexdigest()


@bool_flags
def load_fit(path, *, verify: bool = True):
    """Load a fit saved by :meth:`Fit.save` (or by ``IllnessDeathFit.save``: an
    illness-death fit comes back as one).

    Parameters
    ----------
    verify : bool, default True
        Check the file's content digest: a fit whose draws or attributes were edited, or
        whose bytes were damaged, is refused (BayesHCCError naming the file).
        ``verify=False`` reads it anyway, for forensic work only.
    """
    path = user_path(path, "load_fit", "a saved fit (fit.save(path); bayes-hcc fit --out DIR: "
                     "DIR/fit.nc)")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file.")
    if path.is_dir():
        raise BayesHCCError(f"{path} is a directory, not a saved fit (fit.nc).")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as dt:
            dt = dt.load()
    except Exception as err:  # h5py/h5netcdf raise OSError, ValueError, KeyError...
        raise BayesHCCError(f"{path} cannot be read as a saved fit (truncated, damaged or not "
                            f"a netCDF/HDF5 file: {type(err).__name__}: {err}).") from None
    kind = dt.attrs.get(KIND_ATTR)
    if kind is not None and kind not in FIT_LOADERS:
        raise BayesHCCError(f"{path} holds a {kind!r} fit, which this version of bayes_hcc "
                            "cannot read.")
    if kind is None and ("spec_toml" not in dt.attrs or "bayes_hcc_family" not in dt.attrs):
        raise BayesHCCError(f"{path} is not a bayes_hcc fit of this version (no spec_toml / "
                            "bayes_hcc_family attributes: not a fit, or saved before 0.2; "
                            "refit it).")
    if verify:
        stored = dt.attrs.get(DIGEST_ATTR)
        if stored is None:
            raise BayesHCCError(f"{path} has no content digest (saved by an older version, or "
                                "the attribute was removed); load_fit(path, verify=False) "
                                "reads it without the check.")
        if content_digest(dt) != stored:
            raise BayesHCCError(f"{path}: the content does not match its digest: the draws or "
                                "attributes were edited, or the file is damaged. Refit, or "
                                "load_fit(path, verify=False) for a forensic read only.")
    spec = stored_spec(dt, path)
    if kind is not None:
        return FIT_LOADERS[kind](dt, path, spec)
    try:
        return Fit(dt)
    except (KeyError, ValueError, TypeError) as err:
        raise BayesHCCError(f"{path}: not a readable bayes_hcc fit ({type(err).__name__}: "
                            f"{err}).") from None


def stored_spec(dt: xr.DataTree, path):
    """The spec a saved fit records (``spec_toml``), checked against its hash; None when it
    records none (an illness-death model fitted directly)."""
    if "spec_toml" not in dt.attrs:
        return None
    try:
        spec = recorded_spec(str(dt.attrs["spec_toml"]))
    except BayesHCCError as err:
        raise BayesHCCError(f"{path}: its stored spec cannot be read ({err}).") from None
    if spec.hash != dt.attrs.get("spec_hash"):
        raise BayesHCCError(f"{path}: the stored spec does not match its hash (spec_hash): the "
                            "spec was edited after fitting. Refit from the spec; the file is "
                            "not used.")
    return spec
