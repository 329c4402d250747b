"""Tables for a paper or a DMC closed report: DOCX (python-docx) and LaTeX (pandas), with
footnotes that say what a reader needs to read the numbers (estimand, priors, time unit,
what was extrapolated, conditional or marginal HR); the patient disposition table; the
interim look table.

``write_table`` takes any of the package's tables (``summarize``, ``run_sensitivity``,
``subgroups``, ``look_table``, ``disposition``) or any DataFrame; ``fit_footnotes`` writes
the footnotes of a fit's table, ``publication_tables`` all of a fit's tables at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_hcc.errors import BayesHCCError, as_names, bool_flags, user_path
from bayes_hcc.models.design import active_priors
from bayes_hcc.models.from_spec import require_fit_data
from bayes_hcc.quantities.core import as_fit
from bayes_hcc.quantities.summary import conditional_statement, headline_table

__all__ = ["write_table", "fit_footnotes", "disposition", "look_table", "publication_tables"]

FORMATS = (".docx", ".tex")


def _fmt(v, digits: int = 3) -> str:
    """A cell as text: numbers to ``digits`` significant decimals, missing as blank."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.{digits}f}" if abs(v) >= 10 ** -digits or v == 0 else f"{v:.2g}"
    return str(v)


def _cells(table: pd.DataFrame, digits: int) -> tuple[list[str], list[list[str]]]:
    """Header and body as text, the index as the first column(s)."""
    flat = table.reset_index()
    header = [str(c) for c in flat.columns]
    body = [[_fmt(v, digits) for v in row] for row in flat.itertuples(index=False)]
    return header, body


#: Columns write_table leaves out by default: a sensitivity table's spec TOML and its
#: ``same_posterior_as`` (the note column says it in words; both stay in its CSV).
_DEFAULT_DROP = ("spec_toml", "same_posterior_as")


@bool_flags
def write_table(table: pd.DataFrame, path, *, title: str | None = None, footnotes=(),
                digits: int = 3, overwrite: bool = False,
                drop=_DEFAULT_DROP) -> Path:
    """Write ``table`` as DOCX or LaTeX, chosen by the suffix of ``path`` (``.docx``,
    ``.tex``), with ``title`` above and ``footnotes`` below (also read from
    ``table.attrs["footnotes"]`` when not given; a table of posterior summaries without
    them, such as ``bh.summarize``'s, gets at least its interval level, estimand and time
    unit: ``footnotes=bh.fit_footnotes(fit, table)`` gives the full ones). ``drop`` names
    columns to leave out
    (default: the spec TOML of a sensitivity table and its ``same_posterior_as``, which the
    note column says in words; both stay in its CSV). Refuses to overwrite unless asked."""
    path = user_path(path, "write_table", "the file to write (.csv, .md, .tex, .docx or .html)")
    if not isinstance(table, pd.DataFrame):
        raise BayesHCCError(f"write_table: takes a DataFrame, got {type(table).__name__}"
                            + (": a row or column of a table is a Series; keep it a table "
                               "(table.loc[[row]], table[[column]])"
                               if isinstance(table, pd.Series) else "") + ".")
    if path.suffix not in FORMATS:
        raise BayesHCCError(f"write_table: {path.name}: choose a .docx or .tex file name "
                            "(a CSV or Markdown table: table.to_csv, table.to_markdown).")
    if isinstance(digits, (bool, np.bool_)) or not isinstance(digits, (int, np.integer)) \
            or not 0 <= digits <= 15:
        raise BayesHCCError(f"write_table: digits={digits!r}: give the decimals shown as a "
                            "whole number from 0 to 15, e.g. digits=2.")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    if isinstance(footnotes, str):  # one footnote, not one per character
        footnotes = [footnotes]
    footnotes = list(footnotes) or list(table.attrs.get("footnotes", ())) or \
        _level_note(table.attrs)
    if title is not None and not isinstance(title, str):  # 5 failed inside python-docx
        raise BayesHCCError(f"write_table: title={title!r} must be text.")
    if drop is None or (not isinstance(drop, str) and len(drop) == 0):
        drop = []  # keep every column
    elif drop == _DEFAULT_DROP:  # a sensitivity table's machine columns, when present
        drop = [c for c in drop if c in table.columns]
    else:  # the user's: one text is one column, and a misspelt one is not kept silently
        drop = list(as_names(drop, "write_table", "drop", [str(c) for c in table.columns]))
    shown = table.drop(columns=[c for c in table.columns if str(c) in drop])
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".docx":
        _write_docx(shown, path, title, footnotes, digits)
    else:
        _write_latex(shown, path, title, footnotes, digits)
    return path


def _level_note(attrs) -> list[str]:
    """A table of posterior summaries without footnotes of its own (``bh.summarize``,
    ``bh.covariate_effects``): at least what its intervals are (the full footnotes, model
    and priors included, are ``bh.fit_footnotes(fit)``, as ``bh.publication_tables``
    writes)."""
    if "prob" not in attrs:
        return []
    note = f"Posterior medians with {float(attrs['prob']):.0%} equal-tailed credible intervals"
    if attrs.get("estimand"):
        note += f"; estimand {attrs['estimand']}"
    if attrs.get("time_unit"):
        note += f"; times in {attrs['time_unit']}"
    return [note + "."]


def _write_docx(table, path, title, footnotes, digits):
    from docx import Document
    from docx.shared import Pt

    header, body = _cells(table, digits)
    doc = Document()
    if title:
        doc.add_heading(title, level=2)
    grid = doc.add_table(rows=1 + len(body), cols=len(header))
    grid.style = "Table Grid"
    for j, h in enumerate(header):
        cell = grid.cell(0, j)
        cell.text = h
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for i, row in enumerate(body, start=1):
        for j, v in enumerate(row):
            grid.cell(i, j).text = v
    for k, note in enumerate(footnotes):
        p = doc.add_paragraph(f"{_mark(k)} {note}")
        for run in p.runs:
            run.font.size = Pt(8)
    doc.save(str(path))


def _mark(k: int) -> str:
    return "abcdefghijklmnopqrstuvwxyz"[k] if k < 26 else str(k + 1)


#: LaTeX's special characters in text, each replaced in one pass (replacing them one after
#: another escaped the braces of an earlier replacement: a backslash became
#: "\textbackslash\{\}", which prints "\{}")
_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
          "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
          "^": r"\textasciicircum{}", "<": r"$<$", ">": r"$>$"}
_LATEX_SPECIAL = re.compile("|".join(map(re.escape, _LATEX)))


def _latex_escape(text: str) -> str:
    return _LATEX_SPECIAL.sub(lambda m: _LATEX[m.group()], text)


def _write_latex(table, path, title, footnotes, digits):
    header, body = _cells(table, digits)
    cols = "l" * (1 if table.index.nlevels == 1 else table.index.nlevels) + \
        "r" * (len(header) - table.index.nlevels)
    lines = [r"\begin{table}[htbp]", r"\centering"]
    if title:
        lines.append(r"\caption{" + _latex_escape(title) + "}")
    lines += [r"\begin{tabular}{" + cols + "}", r"\hline",
              " & ".join(_latex_escape(h) for h in header) + r" \\", r"\hline"]
    lines += [" & ".join(_latex_escape(v) for v in row) + r" \\" for row in body]
    lines += [r"\hline", r"\end{tabular}"]
    if footnotes:
        lines.append(r"\par\smallskip\footnotesize")
        lines += [r"\textsuperscript{" + _mark(k) + "} " + _latex_escape(n) + r"\par"
                  for k, n in enumerate(footnotes)]
    lines.append(r"\end{table}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def fit_footnotes(fit, table: pd.DataFrame | None = None) -> list[str]:
    """What a reader of a fit's table must know: the comparison and its convention, the
    estimand, the model and the priors as used, the time unit, conditional or marginal HR,
    and which rows were extrapolated or not reached (of an illness-death fit too: its
    transitions, model and priors)."""
    from bayes_hcc.quantities.core import _is_illness_death, _loaded

    fit = _loaded(fit)
    if _is_illness_death(fit):
        return _illness_death_footnotes(fit, table)
    fit = as_fit(fit)
    ctrl, trt = fit.arms
    effect = fit.family.effect
    notes = [f"{effect.ratio} = {trt} relative to {ctrl}; "
             + ("HR < 1 favours " if effect.ratio == "HR" else "TR > 1 favours ") + trt + "."]
    estimand = (table.attrs.get("estimand") if table is not None else None) or "standardized"
    # the table's own level; without a table, the level the spec pre-specifies
    prob = (table.attrs.get("prob") if table is not None else None) or \
        float(dict(fit.spec.report).get("prob", 0.95))
    notes.append(f"Estimand of medians, survival and RMST: {estimand} (posterior medians "
                 f"with {prob:.0%} equal-tailed credible intervals; MCSE = Monte Carlo "
                 "standard error).")
    notes.append(f"{effect.ratio}: {conditional_statement(fit)}.")
    used = active_priors(fit.priors, fit.family, fit.site_effect, fit.arm_by_site,
                         bool(fit.settings["covariates"]), fit.pooling)
    notes.append(f"Model: {fit.family.label}, site effect {fit.site_effect}"
                 + (f", baseline stratified by {fit.settings['strata']} ({len(fit.strata)} "
                    f"strata, pooling {fit.pooling})" if fit.strata else "")
                 + ". Priors (time-scaled ones per month): "
                 + "; ".join(f"{k} ~ {fit.priors[k]}" for k in used) + ".")
    notes.append(f"Times in {fit.time_unit}; data cut {fit.datatree.attrs.get('cut_date') or 'n/a'}"
                 f"; longest follow-up by arm: "
                 + ", ".join(f"{a} {v:.3g}" for a, v in fit.follow_up_by_arm().items()) + ".")
    if fit.reconstruction:
        notes.append(reconstruction_statement(fit.reconstruction) + ".")
    notes += _data_notes_footnote(fit)
    for name, where in fit.prior_provenance.items():
        ess = where.get("ess_elir")
        ess_text = (f"{ess:.0f}" if isinstance(ess, (int, float))
                    else ", ".join(f"{x:.0f}" for x in ess or []))
        notes.append(f"Prior of {name}: {where.get('method', 'MAP')} prior from "
                     f"{len(where.get('studies', []))} historical control arms "
                     f"({', '.join(where.get('studies', []))}; between-trial SD ~ "
                     f"HalfNormal({where.get('tau_scale', float('nan')):g}), robust weight "
                     f"{where.get('robust_weight', 0):g}, ESS {ess_text} events by ELIR; "
                     f"history {str(where.get('history_fingerprint', ''))[:12]}).")
    if table is not None and "note" in table.columns:
        notes.append(_extrapolation_note(table))
    if table is not None and "estimand" in table.columns and \
            (table["estimand"] == "frequentist").any():
        notes.append("Rows with estimand 'frequentist': log-rank test (statsmodels), Cox "
                     "model (lifelines, Efron ties, Wald CI), Kaplan-Meier medians (lifelines,"
                     " log-log CI), on the same data.")
    notes.append(f"bayes-hcc; spec {fit.spec.name} ({fit.datatree.attrs['spec_hash'][:12]}); "
                 f"data fingerprint {fit.data_fingerprint[:12]}; seed {fit.random_seed}.")
    return _verdict_notes(fit) + notes


def reconstruction_statement(provenance: dict) -> str:
    """One sentence for data rebuilt from published curves (a fit's ``reconstruction``)."""
    arms = provenance.get("arms", {})
    fidelity = "; ".join(f"{a}: {v['patients']} patients, {v['events']} events, max |KM - "
                         f"digitised| {v['max_abs_diff']:.3f}" for a, v in arms.items())
    return ("Data RECONSTRUCTED from published Kaplan-Meier curves and numbers at risk "
            f"({provenance.get('method', 'Guyot 2012')}): approximate patient-level data, "
            f"without site information, censoring assumed uniform within at-risk intervals "
            f"({fidelity})")


def disposition(trial, endpoints=None) -> pd.DataFrame:
    """Patient disposition by site and arm: randomized, events and censored per endpoint
    (deaths for OS; progressions for TTP), with a total row; the data cut in attrs."""
    from bayes_hcc.data.trial import require_trial

    require_trial(trial, "disposition")
    if isinstance(endpoints, str):  # one endpoint, not one per letter
        endpoints = [endpoints]
    endpoints = [trial.endpoint(e).name for e in (endpoints or trial.endpoints)]
    first = trial.endpoint(endpoints[0])
    rows = []
    for s_i, site in [*enumerate(first.sites), (None, "total")]:
        row = {"site": site}
        for a_i, arm in enumerate(first.arms):
            m = (first.arm == a_i) & (np.ones(len(first), bool) if s_i is None
                                      else first.site == s_i)
            row[(arm, "randomized")] = int(m.sum())
            for e in endpoints:
                ep = trial.endpoint(e)
                row[(arm, f"{ep.name.upper()} events")] = int(ep.event[m].sum())
                row[(arm, f"{ep.name.upper()} censored")] = int((ep.event[m] == 0).sum())
        rows.append(row)
    out = pd.DataFrame(rows).set_index("site")
    out.columns = pd.MultiIndex.from_tuples(out.columns)
    out.columns = [f"{a}: {k}" for a, k in out.columns]
    cut = "" if trial.cut_date is None else str(trial.cut_date.date())
    out.attrs["footnotes"] = [
        f"Patients randomized by site and arm; events and censored per endpoint "
        f"({', '.join(e.upper() for e in endpoints)}); data cut {cut or 'n/a'}.",
        "OS event = death; PFS event = progression or death; TTP event = progression (death "
        "without progression censors TTP)."]
    return out


def look_table(results) -> pd.DataFrame:
    """One row per interim look (``bh.interim_analysis`` results, or one result): cut,
    patients and events by arm, HR with its 95% CrI, the posterior probabilities with their
    MCSE, PPoS with its MCSE when computed, the rule's decision and the decision taken
    (after diagnostics)."""
    from bayes_hcc.monitoring.interim import InterimResult
    from bayes_hcc.monitoring.plan import MonitoringPlan

    if isinstance(results, InterimResult):
        results = [results]
    if isinstance(results, MonitoringPlan):  # 'MonitoringPlan' object is not iterable
        raise BayesHCCError("look_table: takes bh.interim_analysis results, got the plan; "
                            "the plan's looks and rules are plan.table().")
    if isinstance(results, (str, bytes, dict)) or not hasattr(results, "__iter__"):
        raise BayesHCCError(f"look_table: takes bh.interim_analysis results (a list, or "
                            f"one), got {type(results).__name__}.")
    results = list(results)
    if not results:
        raise BayesHCCError("look_table: no looks given; pass the results of "
                            "bh.interim_analysis (a list, or one).")
    bad = [type(r).__name__ for r in results if not isinstance(r, InterimResult)]
    if bad:
        raise BayesHCCError(f"look_table: takes bh.interim_analysis results, got "
                            f"{', '.join(sorted(set(bad)))}.")
    plans = {r.plan_hash for r in results}
    if len(plans) > 1:  # its footnotes name one plan, its rules and endpoint
        raise BayesHCCError(f"look_table: these looks come from {len(plans)} different "
                            f"monitoring plans (hashes {', '.join(sorted(h[:12] for h in plans))}"
                            "); make one table per plan.")
    rows = []
    for r in results:
        rec = r.record
        row = {"look": r.look.name, "cut date": rec["cut_date"],
               "patients": rec["n_patients"], "events": rec["n_events"]}
        for a, n in rec["events_by_arm"].items():
            row[f"events {a}"] = n
        row.update({"HR": rec["hr_median"], "HR lower 95%": rec["hr_95"][0],
                    "HR upper 95%": rec["hr_95"][1]})
        for k, v in r.probabilities.items():
            if not k.startswith("MCSE ") and k != "PPoS":
                row[k] = v
                if f"MCSE {k}" in r.probabilities:
                    row[f"MCSE {k}"] = r.probabilities[f"MCSE {k}"]
        if rec.get("ppos"):
            row["PPoS"] = rec["ppos"]["ppos"]
            row["MCSE PPoS"] = rec["ppos"]["mcse"]
        row.update({"rule": rec["rule_decision"], "decision": rec["decision"],
                    "diagnostics": "ok" if rec["diagnostics_ok"] else "FAILED"})
        rows.append(row)
    out = pd.DataFrame(rows).set_index("look")
    plan = results[0].plan
    out.attrs["footnotes"] = [
        f"Plan {plan.name} ({plan.hash[:12]}), endpoint {plan.spec.endpoint.upper()}, "
        f"model {plan.spec.family}; HR = {results[0].fit.arms[1]} relative to "
        f"{results[0].fit.arms[0]} (posterior median, 95% credible interval).",
        "Decision: the rule's verdict, withheld ('no decision') when the diagnostics "
        "failed; probabilities are posterior probabilities at the look.",
        f"HR: {conditional_statement(results[0].fit)}."]
    return out


@bool_flags
def publication_tables(fit, directory, *, trial=None, formats=(".docx", ".tex"),
                       overwrite: bool = False) -> list[Path]:
    """The headline table of ``fit`` (and the disposition table of ``trial`` when given)
    in each of ``formats``, with footnotes, into ``directory``. An illness-death fit gives
    its OS, PFS and TTP table (medians, their difference, RMST difference: ``fit.report``'s
    table) and its transition hazard ratios."""
    from bayes_hcc.quantities.core import _is_illness_death, _loaded

    directory = user_path(directory, "publication_tables", "the folder to write the tables in")
    if directory.exists() and not directory.is_dir():
        raise BayesHCCError(f"{directory} is a file; publication_tables writes several "
                            "tables: give a directory (created if missing).")
    formats = _formats(formats)
    fit = _loaded(fit)
    if trial is not None:
        require_fit_data(fit, trial, "publication_tables", "the disposition table would "
                         "describe other patients than the results")
    if _is_illness_death(fit):
        names = ["illness_death_endpoints", "illness_death_transitions"]
    else:
        fit = as_fit(fit)
        names = [f"{fit.endpoint}_headline"]
    names += ["disposition"] if trial is not None else []
    # every file is checked before any is written: no half-written set of tables
    _refuse_existing([directory / f"{n}{s}" for s in formats for n in names], overwrite)
    if _is_illness_death(fit):
        return _illness_death_tables(fit, directory, trial, formats, overwrite)
    table = headline_table(fit)  # as the spec's [report] pre-specifies it, like the report
    notes = fit_footnotes(fit, table)
    out = []
    title = f"{fit.endpoint.upper()}: {fit.arms[1]} vs {fit.arms[0]}"
    for suffix in formats:
        out.append(write_table(table, directory / f"{fit.endpoint}_headline{suffix}",
                               title=title, footnotes=notes, overwrite=overwrite))
        if trial is not None:
            out.append(write_table(disposition(trial), directory / f"disposition{suffix}",
                                   title="Patient disposition", overwrite=overwrite))
    return out


def _formats(formats) -> list[str]:
    """``publication_tables``' formats as suffixes (``"docx"`` or ``".DOCX"`` is
    ``".docx"``; one text is one format); an unknown one is refused before anything is
    written."""
    given = [formats] if isinstance(formats, str) else list(formats)
    out = []
    for f in given:
        suffix = "." + str(f).strip().lower().lstrip(".")
        if suffix not in FORMATS:
            raise BayesHCCError(f"publication_tables: format {f!r} is not one of "
                                f"{', '.join(FORMATS)} (a CSV: table.to_csv).")
        if suffix not in out:
            out.append(suffix)
    if not out:
        raise BayesHCCError(f"publication_tables: no formats given; choose from "
                            f"{', '.join(FORMATS)}.")
    return out


def _refuse_existing(paths, overwrite: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(str(p) for p in existing)} "
                              f"{'exists' if len(existing) == 1 else 'exist'}; pass "
                              "overwrite=True to replace "
                              f"{'it' if len(existing) == 1 else 'them'}.")


def _illness_death_tables(fit, directory: Path, trial, formats, overwrite) -> list[Path]:
    """``publication_tables`` of an illness-death fit: the endpoint table (as the report's:
    RMST to the spec's tau, shortened to the follow-up) and the transition HRs."""
    table = headline_table(fit)
    hrs = fit.summary(prob=table.attrs["prob"])
    notes = _illness_death_footnotes(fit, table)
    ctrl, trt = fit.data.arms
    out = []
    for suffix in formats:
        out.append(write_table(table, directory / f"illness_death_endpoints{suffix}",
                               title=f"OS, PFS and TTP from one illness-death model: {trt} "
                               f"vs {ctrl}", footnotes=notes, overwrite=overwrite))
        out.append(write_table(hrs, directory / f"illness_death_transitions{suffix}",
                               title=f"Transition hazard ratios: {trt} vs {ctrl}",
                               footnotes=notes, overwrite=overwrite))
        if trial is not None:
            out.append(write_table(disposition(trial), directory / f"disposition{suffix}",
                                   title="Patient disposition", overwrite=overwrite))
    return out


def _data_notes_footnote(fit) -> list[str]:
    """The footnote of what the data warned of when ``fit`` was made (``data_notes``), or
    none."""
    return ["The data warned: " + "; ".join(fit.data_notes) + "."] if fit.data_notes else []


def _illness_death_footnotes(fit, table: pd.DataFrame | None = None) -> list[str]:
    """What a reader of an illness-death fit's tables must know: the HR convention per
    transition and why OS and PFS have none, the estimand, the model and its priors as
    used, the time unit and follow-up, what lies beyond follow-up, and the provenance."""
    ctrl, trt = fit.data.arms
    model = fit.model
    transitions = [str(t) for t in fit.hazard_ratio()["transition"].values]
    attrs = table.attrs if table is not None else {}
    prob = attrs.get("prob", 0.95)
    notes = [f"HR = hazard of {trt} relative to {ctrl} for each transition of the "
             f"illness-death model ({', '.join(t.replace('_', ' ') for t in transitions)}); "
             f"HR < 1 favours {trt}. OS and PFS hazards are not proportional under this "
             "model: OS, PFS and TTP are compared by medians and RMST; P(> 0) is the "
             f"posterior probability that the difference ({trt} - {ctrl}) is positive.",
             f"Estimand of medians and RMST: {attrs.get('estimand', 'standardized')} "
             f"(posterior medians with {prob:.0%} equal-tailed credible intervals).",
             f"Model: illness-death, {model.baseline} baseline per transition, "
             f"{model.time_scale.replace('_', '-')} time scale, site effect "
             f"{model.site_effect}. Priors (time-scaled ones per month): "
             + "; ".join(f"{t.replace('_', ' ')}: " + ", ".join(f"{k} ~ {p}"
                                                               for k, p in pr.items())
                         for t, pr in zip(transitions, fit.priors))
             + (f"; site SD ~ {model.site_sd_prior()}" if model.site_effect != "none"
                else "") + ".",
             f"Times in {fit.data.time_unit}; longest follow-up by arm (OS; PFS and TTP "
             "are seen only up to the last scans): "
             + "; ".join(f"{ep.upper()} " + ", ".join(
                 f"{a} {v:.3g}" for a, v in fit.follow_up_by_arm(ep).items())
                 for ep in ("os", "pfs", "ttp")) + "."]
    notes += _data_notes_footnote(fit)
    if table is not None and "note" in table.columns:
        notes.append(_extrapolation_note(table))
    notes.append(f"Data fingerprint {str(fit.data_fingerprint or 'arrays')[:12]}; seed "
                 f"{fit.random_seed}.")
    return _verdict_notes(fit) + notes


def _extrapolation_note(table: pd.DataFrame) -> str:
    """The footnote naming the rows whose note says they lie beyond follow-up (not reached,
    extrapolated, not estimable), a row label or an (endpoint, quantity) pair."""
    flagged = [" ".join(map(str, q)) if isinstance(q, tuple) else str(q)
               for q, n in table["note"].items() if isinstance(n, str) and any(
                   w in n for w in ("not reached", "extrapolated", "beyond follow-up",
                                    "not estimable"))]
    return ("Extrapolated or not reached (beyond follow-up, see the note column): "
            + ", ".join(flagged) + "." if flagged else
            "Nothing extrapolated: every estimate lies within follow-up.")


def _verdict_notes(fit) -> list[str]:
    """The footnotes that open a table of a fit made in fast mode or failing its checks
    (either kind of fit), where a reader cannot miss them."""
    notes = (["Exploratory fit (fast mode, fewer draws): not for inference."]
             if fit.analysis_mode == "exploratory" else [])
    problems = fit.convergence_problems()
    if problems:
        notes.append("MCMC DIAGNOSTICS FAILED: " + "; ".join(problems) + ". The posterior "
                     "may be unreliable; do not report these numbers before the fit passes "
                     "(bh.check(fit)).")
    return notes
