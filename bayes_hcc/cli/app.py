"""Typer application: the ``bayes-hcc`` commands (thin layers over the package).

Exit codes: 0 success; 1 checks failed (diagnostics under ``--strict``, validation);
2 bad input (data, specification, settings, files), with a message and no traceback;
3 an internal error (a bug: the message asks for a report); 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from bayes_hcc.cli.reading import message, reads_trial
from bayes_hcc.errors import BayesHCCError, SpecError, TrialDataError, refuse_ignored

EXIT_CHECKS_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 3, 130

# rich_markup_mode=None: help texts are plain text (Rich markup ate "[prediction]").
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="Bayesian analysis of a randomized time-to-event trial.")

def fail(err: Exception, extra: dict | None = None) -> None:
    """Exit 2 with the error's message, its fixes as options (``extra``: the command's own
    keyword -> option pairs, as ``cli.reading.as_options``)."""
    typer.secho(f"error: {message(err, extra)}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=EXIT_BAD_INPUT)


@app.command()
@reads_trial
def describe(
    data: str = typer.Argument(..., help="Path to a trial file (CSV, Parquet, Excel, ADTTE "
                               "with --adtte) or a bundled dataset: example, veteran, "
                               "leukemia, rats."),
    read=None,
):
    """Describe a trial: counts, events, follow-up and Kaplan-Meier medians per endpoint
    (Turnbull's NPMLE for interval-censored progression)."""
    try:
        trial = read(data)
    except (BayesHCCError, FileNotFoundError) as err:
        fail(err)
    typer.echo(repr(trial))
    with pd.option_context("display.width", 120, "display.float_format", "{:.2f}".format):
        for ep in trial.endpoints:
            typer.echo(f"\n== {ep.upper()} ({trial.time_unit}) ==")
            table = trial.summary(ep)
            typer.echo(table.to_string())
            for note in table.attrs.get("footnotes", []):
                typer.echo(f"Note: {note}")
            km = trial.kaplan_meier(ep)
            typer.echo("\nTurnbull NPMLE median per arm (in (median_from, median]; no CI):"
                       if km.attrs.get("estimator") == "turnbull"
                       else "\nKaplan-Meier median per arm (95% CI):")
            typer.echo(km.to_string())


def model_choices() -> dict[str, str]:
    """``--model`` name -> family registry key (the registry is the one list)."""
    from bayes_hcc.families.registry import cli_choices

    return cli_choices()


def _model_help() -> str:
    """The ``--model`` help, from the registry: every family's CLI name and label."""
    from bayes_hcc.families.registry import FAMILIES

    names = [f"{cls.cli_name} ({cls.label})" for cls in FAMILIES.values() if cls.cli_name]
    return "Family: " + ", ".join(names) + "; pwe is the primary analysis."


@app.command()
@reads_trial
def fit(
    data: str = typer.Argument(..., help="Trial file or bundled dataset name (see describe)."),
    model: str = typer.Option(None, help=_model_help() + " Default pwe."),
    endpoint: str = typer.Option(None, help="os (default), pfs or ttp."),
    out: Path = typer.Option(..., help="Output folder for fit.nc and the summary tables."),
    spec: Path = typer.Option(None, "--spec", help="A pre-specified analysis (models/*.toml, "
                              "illness-death ones included): its endpoint, model, sites, "
                              "priors, sampler and [report] table. --draws, --tune, "
                              "--chains, --seed and --fast override its sampler; the "
                              "model options below are the spec's to set."),
    site_effect: str = typer.Option(None, help="random (default), fixed or none (the "
                                    "default with --strata site, and for data from one "
                                    "site)."),
    strata: str = typer.Option(None, "--strata", help="A baseline hazard per stratum of "
                               "this column (e.g. site)."),
    pooling: str = typer.Option(None, "--pooling", help="Strata's baselines: partial "
                                "(hierarchical; default) or none (separate)."),
    draws: str = typer.Option(None, help="Draws per chain, or 'auto' (the default: 1000; "
                              "2000 with the same seed when R-hat, ESS or MCSE fall short)."),
    tune: int = typer.Option(None, help="Tuning steps per chain (default 1000)."),
    chains: int = typer.Option(None, help="Chains (default 4)."),
    seed: int = typer.Option(None, help="Random seed (default 20200228)."),
    fast: bool = typer.Option(False, "--fast", help="Quick look: 4 chains x 300 draws, "
                              "labelled exploratory (not for inference) and checked at the "
                              "exploratory thresholds."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    strict: bool = typer.Option(False, "--strict",
                                help="Exit with status 1 when the diagnostics fail."),
    with_report: bool = typer.Option(False, "--report", help="Also write report.html."),
    censoring: str = typer.Option(None, "--censoring", help="Progression between "
                                  "scans: interval (its likelihood; default), or the "
                                  "imputations midpoint, upper (the scan showing it), lower."),
    extrapolate: bool = typer.Option(False, "--extrapolate", help="Show medians and "
                                     "landmarks beyond follow-up (marked extrapolated) "
                                     "instead of 'not reached'."),
    read=None,
):
    """Fit a survival model, or run a pre-specified analysis (--spec), and write the fit
    (netCDF) and the headline table."""
    import bayes_hcc as bh
    from bayes_hcc.models.from_spec import FAST
    from bayes_hcc.models.from_spec import population
    from bayes_hcc.quantities.summary import headline_table, require_data_follow_up
    from bayes_hcc.spec.sampler import check_sampler_settings

    given = {"--model": model, "--endpoint": endpoint, "--site-effect": site_effect,
             "--strata": strata, "--pooling": pooling, "--censoring": censoring}
    try:
        if spec is not None:
            set_by_spec = [k for k, v in given.items() if v is not None]
            if set_by_spec:
                raise bh.ModelError(f"{', '.join(set_by_spec)}: the spec {spec} sets the model "
                                    "and endpoint; edit the spec (or a copy), or leave "
                                    f"{'it' if len(set_by_spec) == 1 else 'them'} out.")
            analysis = bh.load_spec(spec)
            defaults = dict(analysis.sampler)
        else:
            choices = model_choices()
            model = model or "pwe"
            if model not in choices:
                raise bh.ModelError(f"--model {model!r}; choose one of {', '.join(choices)}.")
            defaults = {"draws": "auto", "tune": 1000, "chains": 4, "seed": 20200228}
        if draws is not None and draws != "auto":
            try:
                draws = int(draws)
            except ValueError:
                raise bh.ModelError(f"--draws {draws!r} must be a whole number or "
                                    "'auto'.") from None
        asked = {k: v for k, v in {"draws": draws, "tune": tune, "chains": chains,
                                   "seed": seed}.items() if v is not None}
        run = {**{k: defaults[k] for k in ("draws", "tune", "chains", "seed")}, **asked}
        if fast:
            both = [f"--{k}" for k in asked if k in FAST]
            if both:  # (they were overridden by --fast without a word)
                raise bh.ModelError(f"--fast sets {', '.join(f'--{k}' for k in FAST)} "
                                    f"({', '.join(f'{k} {v}' for k, v in FAST.items())}); "
                                    f"leave {', '.join(both)} out, or leave --fast out to "
                                    "choose them.")
            run.update(FAST)
        # before anything is read or printed: a bad setting is the whole message
        check_sampler_settings(draws=run["draws"], tune=run["tune"], chains=run["chains"],
                               seed=run["seed"])
        trial = read(data)
        targets = [out / "fit.nc", out / "summary.csv", out / "summary.md"]
        existing = [str(p) for p in targets if p.exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{', '.join(existing)} exist; pass --overwrite to replace.")
        typer.echo(repr(trial))
        shown = "1000 (2000 if needed)" if run["draws"] == "auto" else run["draws"]
        if spec is not None and not analysis.illness_death:  # its table would refuse
            require_data_follow_up(population(analysis, trial), analysis.endpoint)
        if spec is not None:
            typer.echo(f"fitting the spec {analysis.name!r} ({spec}) to "
                       f"{analysis.endpoint.upper()} ({run['chains']} chains x {shown} draws, "
                       f"seed {run['seed']}) ...")
            # --fast sets draws, tune and chains, with a spec as without one
            overrides = {("random_seed" if k == "seed" else k): v for k, v in asked.items()
                         if not (fast and k in FAST)}
            # check=False: the full diagnostics verdict is printed below instead
            result = bh.fit_spec(analysis, trial, fast=fast, check=False, **overrides)
        else:
            from bayes_hcc.models.base import model_class

            if site_effect is None and strata is None and len(trial.sites) < 2:
                site_effect = "none"  # random site effects need two sites at least
                typer.echo("one site: no site effects (--site-effect none)")
            m = model_class(model_choices()[model])(
                site_effect=site_effect, censoring=censoring or "interval", strata=strata,
                pooling=pooling or "partial")
            endpoint = endpoint or "os"
            require_data_follow_up(trial, endpoint)  # and an unknown endpoint: said before
            typer.echo(f"fitting {m!r} to {endpoint.upper()} ({run['chains']} chains x "
                       f"{shown} draws, seed {run['seed']}) ...")
            result = m.fit(trial, endpoint, draws=run["draws"], tune=run["tune"],
                           chains=run["chains"], random_seed=run["seed"], check=False,
                           exploratory=fast)
        table = headline_table(result, extrapolate=extrapolate)
    except (BayesHCCError, FileNotFoundError, FileExistsError) as err:
        # the model options are this command's unless a spec sets them
        fail(err, None if spec is not None else {"site_effect": "--site-effect"})
    out.mkdir(parents=True, exist_ok=True)
    result.save(out / "fit.nc", overwrite=overwrite)
    table.to_csv(out / "summary.csv")
    (out / "summary.md").write_text(table.to_markdown(floatfmt=".3f") + "\n")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the verdict is printed below
        diag = bh.check(result, warn=False)
    if with_report:
        bh.report(result, out / "report.html", overwrite=overwrite)
    joint = hasattr(result, "state_probabilities")  # an illness-death fit
    typer.echo(f"\n{result!r}")
    typer.echo(f"Hazard ratio = hazard({trial.treatment}) / hazard({trial.control})"
               f"{' of each transition' if joint else ''}; times in "
               f"{trial.time_unit}; estimand {table.attrs['estimand']}; "
               f"{table.attrs['prob']:.0%} equal-tailed credible intervals.\n")
    with pd.option_context("display.width", 140, "display.float_format", "{:.3f}".format):
        if joint:
            typer.echo(result.summary(prob=table.attrs["prob"]).to_string() + "\n")
        typer.echo(table.drop(columns=["estimand"], errors="ignore").to_string())
    typer.echo("\ndiagnostics: " + diag.verdict + ("" if diag.ok else "\n" + "\n".join(
        f"- {e}" for e in diag.explanations)))
    typer.echo(f"wrote {out / 'fit.nc'}, {out / 'summary.csv'}, {out / 'summary.md'}"
               + (f", {out / 'report.html'}" if with_report else ""))
    if strict and not diag.ok:
        raise typer.Exit(code=1)


@app.command()
def report(
    fit_path: Path = typer.Argument(..., help="A fit saved by `bayes-hcc fit` (fit.nc)."),
    # text, not a Path: a trailing "/" (a folder, refused) would be dropped by Path
    out: str = typer.Option(..., help="HTML file to write."),
    overwrite: bool = typer.Option(False, "--overwrite"),
):
    """Write a self-contained HTML report (and the table as CSV, Markdown, LaTeX)."""
    import bayes_hcc as bh

    try:
        path = bh.report(bh.load_fit(fit_path), out, overwrite=overwrite)
    except (BayesHCCError, FileNotFoundError, FileExistsError) as err:
        fail(err)
    typer.echo(f"wrote {path}")


def _plan(path: Path, load_plan):
    """The monitoring plan at ``path``. The default ``models/monitoring.toml`` is the
    repository's, read from the current directory: a missing one (``read_toml`` says where
    it looked) also says how to point at another."""
    try:
        return load_plan(path)
    except SpecError as err:
        if path.exists():
            raise
        raise SpecError(f"{str(err).rstrip('.')}: run from the repository root, or pass "
                        "--plan PATH.") from None


@app.command()
@reads_trial
def sensitivity(
    grid: Path = typer.Argument(..., help="Grid spec, e.g. models/sensitivity_os.toml."),
    data: str = typer.Argument(..., help="Trial file or bundled dataset name."),
    out: Path = typer.Option(..., help="Output folder for the table and forest plot."),
    fast: bool = typer.Option(False, "--fast", help="Quick look: 4 chains x 300 draws per "
                              "variant, labelled exploratory."),
    workers: int = typer.Option(1, help="Processes (1 = reuse compiled models in-process)."),
    override: list[str] = typer.Option(None, "--override", help="KEY=VALUE: a dotted key of "
                                       "the base spec changed before every variant's own "
                                       "(repeatable; VALUE as in TOML), e.g. "
                                       "site.effect=none for a single-centre trial."),
    overwrite: bool = typer.Option(False, "--overwrite"),
    read=None,
):
    """Fit every variant of a sensitivity grid; write the table (CSV, Markdown, LaTeX) and a
    forest plot."""
    import bayes_hcc as bh
    from bayes_hcc.cli.reading import toml_pairs
    from bayes_hcc.io.report import write_tables

    try:
        trial = read(data)
        grid_spec = bh.load_grid(grid, overrides=toml_pairs("--override", override))
        fig_path = out / "forest.png"
        # every output, before the grid runs (the tables' were found after every fit)
        existing = [str(p) for p in (*(out / f"sensitivity{s}" for s in (".csv", ".md",
                                                                         ".tex")), fig_path)
                    if p.exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{', '.join(existing)} exist; pass --overwrite to replace.")
        out.mkdir(parents=True, exist_ok=True)
        table = bh.run_sensitivity(grid_spec, trial, fast=fast, workers=workers)
        shown = table.drop(columns=["spec_toml"])
        write_tables(shown, out / "sensitivity", overwrite=overwrite)
        (out / "specs").mkdir(exist_ok=True)
        for h, toml_text in zip(table["spec_hash"], table["spec_toml"]):
            (out / "specs" / f"{h[:16]}.toml").write_text(toml_text)
        bh.plot_sensitivity(table).savefig(fig_path, dpi=110)
    except (BayesHCCError, FileNotFoundError, FileExistsError) as err:
        fail(err)
    cols = ["family", "hr_median", "hr_lower", "hr_upper", "P(HR < 1)", "diagnostics"]
    with pd.option_context("display.width", 160, "display.float_format", "{:.3f}".format):
        typer.echo(table[[c for c in cols if c in table]].to_string())
    for name, row in table.iterrows():  # rows the numbers alone would misrepresent
        if str(row["note"]).startswith("skipped: "):
            typer.echo(f"{name}: {message(row['note'])}")
        elif row.get("same_posterior_as"):
            typer.echo(f"{name}: same posterior as {row['same_posterior_as']!r} (identical "
                       "draws: it changes nothing the model uses on these data)")
    typer.echo(f"wrote {out / 'sensitivity.csv'} (.md, .tex), {fig_path}, {out / 'specs'}/")


@app.command()
def reconstruct(
    files: list[Path] = typer.Argument(..., help="Pairs of CSV files, one pair per arm: the "
                                       "digitised curve (time, survival in 0-1 or percent; "
                                       "header optional) then the numbers at risk (time, "
                                       "count). One pair gives one arm; two pairs give a trial "
                                       "(control first)."),
    out: Path = typer.Option(..., "--out", help="Output CSV: time, event for one arm; the "
                             "times layout (patient_id, site, arm, <endpoint>_time, "
                             "<endpoint>_event) for two, ready for 'bayes-hcc fit'."),
    events: list[int] = typer.Option(None, "--events", help="Published total events, once per "
                                     "arm in the order of the pairs (optional, all or none)."),
    control: str = typer.Option("sorafenib", help="Label of the first pair's arm."),
    treatment: str = typer.Option("tace_sorafenib", help="Label of the second pair's arm."),
    endpoint: str = typer.Option("os", help="Endpoint name of the output columns."),
    time_unit: str = typer.Option("months", "--time-unit", help="Unit of the figure's time "
                                  "axis."),
    plot: Path = typer.Option(None, "--plot", help="Also write the overlay figure (PNG) of "
                              "the reconstructed curves on the digitised points (two arms)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """Reconstruct patient-level data from digitised Kaplan-Meier curves and their numbers
    at risk (Guyot et al. 2012), and print how faithfully they reproduce the publication."""
    import bayes_hcc as bh
    from bayes_hcc.data.reconstruct import Fidelity, read_points, reconstruct_arm

    try:
        if len(files) not in (2, 4):
            raise TrialDataError(f"reconstruct: give one (curve, at-risk) pair of files per "
                                 f"arm, 2 or 4 files; got {len(files)}.")
        n_arms = len(files) // 2
        if events and len(events) != n_arms:
            raise TrialDataError(f"reconstruct: --events given {len(events)} time(s) for "
                                 f"{n_arms} arm(s): give it once per arm or not at all.")
        if plot is not None and n_arms == 1:
            raise TrialDataError("reconstruct: --plot needs both arms (two pairs of files).")
        targets = [out] + ([plot] if plot is not None else [])
        existing = [str(p) for p in targets if p.exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{', '.join(existing)} exist; pass --overwrite to replace.")
        labels = [control, treatment][:n_arms]
        inputs = {}
        for k, label in enumerate(labels):
            curve, at_risk = read_points(files[2 * k]), read_points(files[2 * k + 1])
            inputs[label] = (curve, at_risk, events[k] if events else None)
        if n_arms == 1:
            rec = reconstruct_arm(control, *inputs[control])
            fidelity = Fidelity.of([rec], time_unit=time_unit)
            changes = {control: rec.curve.changes}
            out.parent.mkdir(parents=True, exist_ok=True)
            rec.ipd.to_csv(out, index=False)
        else:
            trial = bh.reconstruct_trial(inputs, control=control, treatment=treatment,
                                         endpoint=endpoint, time_unit=time_unit)
            fidelity = bh.reconstruction_fidelity(trial)
            changes = {a: r.curve.changes for a, r in trial.reconstruction.items()}
            cols = ["patient_id", "site", "arm", f"{endpoint}_time", f"{endpoint}_event"]
            out.parent.mkdir(parents=True, exist_ok=True)
            trial.to_frame()[cols].to_csv(out, index=False)
            if plot is not None:
                bh.plot_reconstruction(trial).savefig(plot, dpi=110)
    except (BayesHCCError, FileNotFoundError, FileExistsError) as err:
        fail(err)
    for arm, done in changes.items():
        if done:
            typer.echo(f"{arm}: curve cleaned: {'; '.join(done)}")
    typer.echo(repr(fidelity))
    typer.echo(f"wrote {out}" + (f", {plot}" if plot is not None else "")
               + " (RECONSTRUCTED data: approximate, no site information)")


@app.command("map-prior")
def map_prior_command(
    history: Path = typer.Argument(..., help="Historical control arms: CSV (one row per arm, "
                                   "or per arm and interval) or TOML ([[arm]] tables), with "
                                   "study and source columns; 'sorafenib' for the bundled "
                                   "SHARP and Asia-Pacific sorafenib arms."),
    out: Path = typer.Option(..., "--out", help="TOML file with the prior as a [priors.*] "
                             "table, to paste into an analysis spec (models/*.toml)."),
    robust: float = typer.Option(0.2, "--robust", help="Weight of the robust component "
                                 "(0 for none)."),
    tau_scale: float = typer.Option(0.5, "--tau-scale", help="HalfNormal scale of the "
                                    "between-trial SD of the log hazard (0: none)."),
    cuts: list[float] = typer.Option(None, "--cut", help="Interval cut points in months "
                                     "(repeat): a per-interval prior for the piecewise "
                                     "baseline."),
    time_unit: str = typer.Option("months", "--time-unit", help="Unit of the file's "
                                  "exposures, medians and intervals."),
    seed: int = typer.Option(1, "--seed", help="Random seed of the meta-analysis."),
    plot: Path = typer.Option(None, "--plot", help="Also write the forest plot (PNG)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
):
    """Build a (robust) meta-analytic-predictive prior of the control log hazard from
    historical control arms, and write it as a spec prior table."""
    import tomli_w

    import bayes_hcc as bh

    try:
        existing = [str(p) for p in [out] + ([plot] if plot else []) if p.exists()]
        if existing and not overwrite:
            raise FileExistsError(f"{', '.join(existing)} exist; pass --overwrite to replace.")
        if not 0 <= robust < 1:
            raise BayesHCCError(f"--robust {robust}: a weight in [0, 1).")
        if str(history) == "sorafenib" and not history.exists():  # the bundled history
            if time_unit != "months":  # (it was ignored, an unknown unit too)
                raise BayesHCCError(f"--time-unit {time_unit}: the unit of a history file's "
                                    "numbers; the bundled sorafenib history is in months. "
                                    "Leave --time-unit out.")
            hist = bh.datasets.load_sorafenib_history()
            history = Path("sorafenib_history.toml")
        else:
            hist = bh.read_history(history, time_unit=time_unit)
        prior = bh.map_prior(hist, cuts=cuts or None, tau_scale=tau_scale, random_seed=seed)
        if robust > 0:
            prior = prior.robustify(robust)
        name = "log_baseline_hazard" if prior.per_interval else "log_lambda"
        ess = np.atleast_1d(prior.ess())
        use = (f"PiecewiseExponential with cuts = {list(prior.cuts)} and baseline_prior = "
               "\"independent\"" if prior.per_interval else
               f"ExponentialPH, or WeibullPH with prior_reference_time = "
               f"{prior.reference_time:.4g}")
        header = "\n".join([
            f"# {'robust ' if robust else ''}MAP prior of the control log hazard per month from "
            f"{history.name} (history fingerprint {hist.fingerprint[:16]})",
            f"# studies: {', '.join(a.study for a in hist.arms)}",
            f"# tau ~ HalfNormal({tau_scale:g}); robust weight {robust:g}; seed {seed}; "
            f"ESS (ELIR, events): {', '.join(f'{x:.1f}' for x in ess)}",
            f"# mixture vs MCMC draws: largest quantile difference "
            f"{prior.accuracy.attrs['max_abs_difference']:.4f}",
            f"# use in: {use}"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(header + "\n" + tomli_w.dumps({"priors": {name:
                                                                 prior.mixture.to_dict()}}))
        if plot is not None:
            bh.plot_map_prior(prior).savefig(plot, dpi=110)
    except (BayesHCCError, FileNotFoundError, FileExistsError) as err:
        fail(err)
    typer.echo(repr(prior))
    typer.echo(f"wrote {out}" + (f", {plot}" if plot is not None else ""))


cache_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                        help="The compile cache (compiled code and signed graph entries).")
app.add_typer(cache_app, name="cache")


def _cache_locations():
    from pytensor import config

    root = Path(config.compiledir)
    return root, root / "bayes_hcc_graphs"


@cache_app.command("info")
def cache_info():
    """Where the compile cache is, how many signed graph entries it holds, and whether its
    directory is safe to use."""
    from bayes_hcc.models._nutpie import cache_key_file, unsafe_directory

    root, graphs = _cache_locations()
    entries = list(graphs.glob("*.pkl")) if graphs.exists() else []
    typer.echo(f"compile cache: {root}")
    typer.echo(f"graph entries: {len(entries)} in {graphs}")
    typer.echo(f"signing key: {cache_key_file()}")
    problem = unsafe_directory(graphs) if graphs.exists() else unsafe_directory(root)
    typer.echo(f"safe: {'no: ' + problem if problem else 'yes'}")


@cache_app.command("clear")
def cache_clear(
    everything: bool = typer.Option(False, "--all", help="Also remove PyTensor's compiled "
                                    "code (the next fit of each model recompiles, ~20 s)."),
):
    """Remove the graph cache (and with --all the whole compile cache). Nothing else."""
    import shutil

    root, graphs = _cache_locations()
    target = root if everything else graphs
    if target.exists():
        shutil.rmtree(target)
        typer.echo(f"removed {target}")
    else:
        typer.echo(f"nothing to remove: {target} does not exist")


@app.callback()
def _root():
    """Bayesian analysis of a randomized time-to-event trial (bayes_hcc)."""


def _show_warning(msg, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line on stderr, not the source line that raised them."""
    typer.secho(f"warning ({category.__name__}): {message(msg)}",
                fg=typer.colors.YELLOW, err=True)


def main(argv=None) -> None:
    """Entry point of ``bayes-hcc``: one top-level handler, so no input error ever shows a
    traceback (exit codes in the module docstring)."""
    import warnings

    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        code = _run(argv)
    sys.exit(code if isinstance(code, int) else 0)


def _run(argv):
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Exit as done:
        code = done.exit_code
    except typer.Abort:
        typer.secho("interrupted", fg=typer.colors.RED, err=True)
        code = EXIT_INTERRUPTED
    except typer.TyperException as err:  # usage errors: the parser's own message, exit 2
        err.show()
        code = getattr(err, "exit_code", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        typer.secho("interrupted", fg=typer.colors.RED, err=True)
        code = EXIT_INTERRUPTED
    except (BayesHCCError, OSError, UnicodeError) as err:
        typer.secho(f"error: {message(err)}", fg=typer.colors.RED, err=True)
        code = EXIT_BAD_INPUT
    except Exception as err:  # noqa: BLE001 - the last line of defence, reported as a bug
        typer.secho(f"internal error ({type(err).__name__}: {err}). This is a bug in "
                    "bayes-hcc: please report it with the command you ran.",
                    fg=typer.colors.RED, err=True)
        code = EXIT_INTERNAL
    return code


@app.command()
def validate(
    out: Path = typer.Option(Path("docs/validation"), help="Directory for validation.md, "
                             "figures and CSV tables."),
    reps: int = typer.Option(200, help="SBC replications per family (1000 for a stricter "
                             "check)."),
    trials: int = typer.Option(200, help="Simulated trials per family in the coverage study."),
    workers: int = typer.Option(0, help="Worker processes (0: all cores)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
):
    """Statistical validation: SBC, coverage study and agreement with lifelines/statsmodels;
    writes a Markdown report with figures. Exit code 1 when a check fails or is not judged
    (too few --reps or --trials for it)."""
    from bayes_hcc.validation import validation_report

    try:
        path = validation_report(out, n_reps=reps, n_trials=trials, workers=workers or None,
                                 overwrite=overwrite)
    except BayesHCCError as err:
        fail(err)
    text = path.read_text()
    summary = text.split("## Summary", 1)[1].split("## 1.", 1)[0]
    typer.echo(f"wrote {path}\n{summary.strip()}")
    if "FAIL" in summary:
        typer.secho("some validation checks FAILED (see the report)", fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(code=1)
    if "not judged" in summary:
        typer.secho("some validation checks were not judged: too few replications or "
                    "trials (see the report); nothing is validated until every check "
                    "passes", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(code=1)


@app.command()
@reads_trial
def monitor(
    data: str = typer.Argument(..., help="Trial file (dates layout) or bundled dataset name."),
    plan: Path = typer.Option(Path("models/monitoring.toml"), help="Monitoring plan."),
    look: str = typer.Option("1", help="Look number (1, 2, ...), look name, or 'final'."),
    log: Path = typer.Option(Path("monitoring/audit.jsonl"),
                             help="Audit log (JSON Lines) the look's record is appended to."),
    fast: bool = typer.Option(False, "--fast", help="Quick look (4 chains x 300 draws): "
                              "exploratory, so the look makes no decision."),
    seed: int = typer.Option(None, help="Random seed (default: the analysis spec's)."),
    ppos: bool = typer.Option(False, "--ppos", help="Also compute the predictive "
                              "probability of success (the plan's [prediction] settings)."),
    method: str = typer.Option(None, help="PPoS method: 'mcmc' (refits), 'normal' "
                               "(approximation) or 'fast' (MCMC only where a Laplace "
                               "approximation is near the success threshold); default: the "
                               "plan's."),
    read=None,
):
    """Run one interim look of a monitoring plan: cut, fit, decision, audit record, and
    the predicted dates of the later looks' event counts, or the events predicted by the
    later looks' dates (and, with --ppos, the PPoS)."""
    from bayes_hcc.monitoring import interim_analysis, load_plan

    try:
        p = _plan(plan, load_plan)  # before the data: a wrong --plan fails at once
        trial = read(data)
        which = int(look) if look.isdigit() else look
        res = interim_analysis(trial, p, which, fast=fast, random_seed=seed, log=log,
                               ppos=ppos, ppos_method=method, progress=True)
    except (BayesHCCError, FileNotFoundError) as err:
        fail(err)
    typer.echo(repr(p))
    typer.echo(p.table().to_string())
    typer.echo(f"\n{res.look.name}: data cut {res.cut_date.date()}, {res.n_patients} patients, "
               f"{res.n_events} {res.plan.spec.endpoint.upper()} events")
    for line in res.summary_lines():
        typer.echo(f"  {line}")
    typer.echo(f"diagnostics: {res.diagnostics.verdict}")
    typer.echo(f"decision: {res.decision}")
    if not res.diagnostics.ok:
        typer.echo(f"  (the rules alone would say: {res.rule_decision}; refit with more "
                   "draws before acting)")
    typer.echo(f"audit record appended to {log}")
    if res.look.is_final:
        return
    later = res.later_looks()
    try:
        if any(x.events is not None for x in later):
            typer.echo("\npredicted dates of the later looks' event counts (posterior "
                       "predictive quantiles):")
            typer.echo(res.predict_dates().to_string())
        if any(x.date is not None for x in later):
            typer.echo("\npredicted events by the later looks' dates (posterior predictive "
                       "mean and quantiles):")
            typer.echo(res.predict_events().to_string())
    except BayesHCCError as err:
        fail(err)


@app.command()
def design(
    plan: Path = typer.Option(Path("models/monitoring.toml"), help="Monitoring plan."),
    trials: int = typer.Option(200, help="Simulated trials per scenario."),
    scenario: list[str] = typer.Option(
        None, help="Scenario, repeatable: 'hr_os=0.7' or 'name: hr_os=0.7,site_sd=0.3' "
        "(default: HR 1.00, 0.85, 0.70, 0.60)."),
    workers: int = typer.Option(None, help="Local processes (default: every core)."),
    scheduler: str = typer.Option(None, help="Dask scheduler address, or 'local' to start "
                                  "a LocalCluster with one worker per core."),
    store: Path = typer.Option(None, help="JSON Lines store of finished trials: an "
                               "interrupted run resumes from it."),
    out: Path = typer.Option(None, help="Directory for the records and the OC table (CSV)."),
    seed: int = typer.Option(2024, help="Random seed of the whole study."),
    fast: bool = typer.Option(False, "--fast", help="4 chains x 300 draws per look "
                              "(exploratory thresholds for the convergence counts)."),
    mode: str = typer.Option("exact", help="'exact' (MCMC at every look) or 'fast' (the "
                             "Laplace approximation decides looks far from every threshold, "
                             "MCMC the rest; decisions as exact mode's)."),
    pilot: int = typer.Option(None, help="--mode fast: trials per scenario run exactly to "
                              "calibrate the screening margin (default 50)."),
    target: float = typer.Option(None, help="--mode fast: expected share of screened "
                                 "decisions that MCMC would flip, at most (default 0.001)."),
    settle_draws: int = typer.Option(None, help="Refit an MCMC look whose probability is "
                                     "within 2 MCSE of a threshold with this many draws per "
                                     "chain (same seed); it then decides."),
):
    """Operating characteristics of a monitoring plan by simulating whole trials."""
    from bayes_hcc.models.from_spec import FAST
    from bayes_hcc.monitoring import load_plan, simulate_design
    from bayes_hcc.runner import default_workers

    client = cluster = None
    try:
        given = [f"--{k}" for k, v in (("pilot", pilot), ("target", target)) if v is not None]
        if mode == "exact":  # (simulate_design refuses them too, in its words)
            refuse_ignored("", given, "the screening of --mode fast; --mode exact fits MCMC "
                           "at every look and has none", "pass --mode fast")
        p = _plan(plan, load_plan)
        if out is not None and out.exists() and any(out.iterdir()):
            raise BayesHCCError(f"{out} is not empty; results are never overwritten.")
        if scheduler:
            try:
                from dask.distributed import Client, LocalCluster
            except ImportError:
                raise BayesHCCError("--scheduler needs Dask, an optional engine: install it "
                                    "with pip install 'bayes-hcc[cluster]', or leave "
                                    "--scheduler out to use a local process pool "
                                    "(--workers).") from None

            if scheduler == "local":
                cluster = LocalCluster(n_workers=workers or default_workers(),
                                       threads_per_worker=1)
                client = Client(cluster)
            else:
                try:
                    client = Client(scheduler, timeout="20s")
                except (OSError, TimeoutError) as err:
                    raise BayesHCCError(f"cannot reach the Dask scheduler {scheduler!r} "
                                        f"({err}); check the address (tcp://host:8786) or "
                                        "use --scheduler local.") from None
        res = simulate_design(p, scenario or None, trials, random_seed=seed,
                              refit={**FAST, "exploratory": True} if fast else None,
                              workers=None if client is not None else workers,
                              client=client,
                              store=store, mode=mode, pilot=pilot, target=target,
                              settle_draws=settle_draws)
    except (BayesHCCError, FileNotFoundError) as err:
        fail(err)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    typer.echo(repr(res))
    typer.echo(res.summary().to_string())
    screening = res.settings.get("screening")
    if screening:
        typer.echo(f"screening: margin {screening['margin']:.3f} (probit scale; pilot bias "
                   f"{screening['bias']:.3f}, SD {screening['sd']:.3f}), "
                   f"{screening['share_sent_to_mcmc']:.1%} of screened looks sent to MCMC")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        res.records.to_csv(out / "design_trials.csv", index=False)
        res.table().to_csv(out / "design_oc.csv")
        written = [out / "design_trials.csv", out / "design_oc.csv"]
        if screening:
            (out / "design_screening.json").write_text(json.dumps(screening, indent=2,
                                                                  default=float))
            written.append(out / "design_screening.json")
        typer.echo("written: " + ", ".join(str(w) for w in written))
