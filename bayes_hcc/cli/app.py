"""Typer application: ``bayes-hcc describe DATA`` (and the analysis commands as they land)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from bayes_hcc.datasets import LOADERS
from bayes_hcc.errors import BayesHCCError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Bayesian analysis of a randomized time-to-event trial.")


def load_data(data: str, control: str, treatment: str, adtte: bool = False):
    """A bundled dataset name (example, veteran, leukemia, rats) or a file path."""
    from bayes_hcc.data import read_adtte, read_trial

    if data in LOADERS and not Path(data).exists():
        return LOADERS[data]()
    if adtte:
        return read_adtte(data, control=control, treatment=treatment)
    return read_trial(data, control=control, treatment=treatment)


def fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def describe(
    data: str = typer.Argument(..., help="Path to a trial file (CSV, Parquet, Excel, ADTTE "
                               "with --adtte) or a bundled dataset: example, veteran, "
                               "leukemia, rats."),
    control: str = typer.Option("sorafenib", help="Control arm label."),
    treatment: str = typer.Option("tace_sorafenib", help="Treatment arm label."),
    adtte: bool = typer.Option(False, "--adtte", help="Read DATA as CDISC ADaM ADTTE."),
):
    """Describe a trial: counts, events, follow-up and Kaplan-Meier medians per endpoint."""
    try:
        trial = load_data(data, control, treatment, adtte)
    except (BayesHCCError, FileNotFoundError) as err:
        fail(err)
    typer.echo(repr(trial))
    with pd.option_context("display.width", 120, "display.float_format", "{:.2f}".format):
        for ep in trial.endpoints:
            typer.echo(f"\n== {ep.upper()} ({trial.time_unit}) ==")
            typer.echo(trial.summary(ep).to_string())
            typer.echo("\nKaplan-Meier median per arm (95% CI):")
            typer.echo(trial.kaplan_meier(ep).to_string())


@app.callback()
def _root():
    """Bayesian analysis of a randomized time-to-event trial (bayes_hcc)."""


def main() -> None:
    app()
