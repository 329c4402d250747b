"""Tables that go into a paper or a DMC report: DOCX (read back with python-docx) and
LaTeX, with the footnotes a reader needs; disposition by arm and site; look table."""

import dataclasses

import numpy as np
import pytest
from docx import Document

import bayes_hcc as bh


@pytest.fixture(scope="module")
def fit(example_trial):
    return bh.WeibullPH().fit(example_trial, "os", random_seed=20200228)


def _docx_rows(path):
    doc = Document(str(path))
    (table,) = doc.tables
    return [[c.text for c in row.cells] for row in table.rows], \
        [p.text for p in doc.paragraphs]


def test_headline_table_as_docx_and_latex(fit, example_trial, tmp_path):
    paths = bh.publication_tables(fit, tmp_path, trial=example_trial)
    names = sorted(p.name for p in paths)
    assert names == ["disposition.docx", "disposition.tex", "os_headline.docx",
                     "os_headline.tex"]
    table = bh.summarize(fit)
    rows, paragraphs = _docx_rows(tmp_path / "os_headline.docx")
    # the DOCX holds the table's rows: header plus one row per quantity, same labels
    assert len(rows) == len(table) + 1
    assert [r[0] for r in rows[1:]] == list(table.index)
    hr = rows[1 + list(table.index).index("HR")]
    assert hr[rows[0].index("median")] == f"{table.loc['HR', 'median']:.3f}"
    text = " ".join(paragraphs)
    for needle in ("Estimand", "standardized", "Times in months", "log_hr ~",
                   "conditional on site", "frequentist", "HR < 1 favours tace_sorafenib"):
        assert needle in text, needle
    tex = (tmp_path / "os_headline.tex").read_text()
    assert r"\begin{tabular}" in tex and "P(HR $<$ 1)" in tex
    assert tex.count(r" \\") == len(table) + 1
    with pytest.raises(FileExistsError):
        bh.publication_tables(fit, tmp_path)


def test_extrapolated_rows_are_named_in_the_footnotes(fit):
    table = bh.summarize(fit, times=[12, 60])
    notes = bh.fit_footnotes(fit, table)
    flagged = [n for n in notes if n.startswith("Extrapolated")]
    assert flagged and "S(60 months)" in flagged[0]


def test_disposition_by_arm_and_site(example_trial, tmp_path):
    d = bh.disposition(example_trial)
    assert list(d.index) == [*example_trial.endpoint("os").sites, "total"]
    ep = example_trial.endpoint("os")
    for i, a in enumerate(ep.arms):
        assert d.loc["total", f"{a}: randomized"] == int((ep.arm == i).sum())
        assert d.loc["total", f"{a}: OS events"] == int(ep.event[ep.arm == i].sum())
    site_sum = d.drop("total")[f"{ep.arms[0]}: randomized"].sum()
    assert site_sum == d.loc["total", f"{ep.arms[0]}: randomized"]
    path = bh.write_table(d, tmp_path / "d.docx", title="Disposition")
    rows, paragraphs = _docx_rows(path)
    assert len(rows) == len(d) + 1 and rows[-1][0] == "total"
    assert any("data cut" in p for p in paragraphs)


def test_sensitivity_like_table_drops_columns_and_refuses_bad_suffix(tmp_path):
    import pandas as pd

    t = pd.DataFrame({"variant": ["a", "b"], "hr_median": [0.71, np.nan],
                      "spec_toml": ["x", "y"]}).set_index("variant")
    path = bh.write_table(t, tmp_path / "s.tex", drop=["spec_toml"], footnotes=["n1"])
    tex = path.read_text()
    assert "spec" not in tex and "0.710" in tex and "n1" in tex
    with pytest.raises(ValueError, match="docx or .tex"):
        bh.write_table(t, tmp_path / "s.pdf")
    # drop="spec_toml" was iterated letter by letter and dropped nothing; a misspelt
    # column was kept in the published table without a word; a title 5 failed in docx
    tex = bh.write_table(t, tmp_path / "one.tex", drop="spec_toml").read_text()
    assert "spec" not in tex and "hr" in tex
    assert "spec" in bh.write_table(t, tmp_path / "all.tex", drop=()).read_text()
    with pytest.raises(bh.BayesHCCError, match=r"drop: unknown 'spec-toml' \(did you mean "
                       r"'spec_toml'\?\)"):
        bh.write_table(t, tmp_path / "x.tex", drop=["spec-toml"])
    with pytest.raises(bh.BayesHCCError, match="title=5 must be text"):
        bh.write_table(t, tmp_path / "x.docx", title=5)


def test_latex_special_characters_print_as_written(tmp_path):
    """Characters LaTeX reads as commands are escaped once each. They were replaced one
    after another, so a backslash (a Windows path in a footnote) became
    "\\textbackslash\\{\\}", which prints "\\{}"."""
    import pandas as pd

    t = pd.DataFrame({"site": [r"C:\sites\A {1}", "50% & #2_b", "~5 ^2 <1 >0 $3"],
                      "hr": [0.5, 0.6, 0.7]}).set_index("site")
    tex = bh.write_table(t, tmp_path / "t.tex", footnotes=[r"data: D:\trial.csv"]).read_text()
    for want in (r"C:\textbackslash{}sites\textbackslash{}A \{1\} & 0.500 \\",
                 r"50\% \& \#2\_b & 0.600 \\",
                 r"\textasciitilde{}5 \textasciicircum{}2 $<$1 $>$0 \$3 & 0.700 \\",
                 r"data: D:\textbackslash{}trial.csv\par"):
        assert want in tex, want
    assert r"\textbackslash\{" not in tex
    # never overwritten silently (found by a coverage run: untested)
    path = tmp_path / "t.tex"
    with pytest.raises(FileExistsError, match=r"t.tex exists; pass overwrite=True"):
        bh.write_table(t.iloc[:1], path)
    assert path.read_text() == tex
    assert bh.write_table(t.iloc[:1], path, overwrite=True).read_text() != tex


def test_interim_look_table_for_a_dmc(example_trial, tmp_path):
    from pathlib import Path

    plan = bh.load_plan(Path(__file__).resolve().parents[2] / "models" / "monitoring.toml")
    looks = [bh.interim_analysis(example_trial, plan, look=k, fast=True, random_seed=1)
             for k in (1, 2)]
    table = bh.look_table(looks)
    assert list(table.index) == [lk.look.name for lk in looks]
    for lk in looks:
        row = table.loc[lk.look.name]
        assert row["events"] == lk.n_events and row["decision"] == lk.decision
        assert row["P(HR < 1)"] == lk.probabilities["P(HR < 1)"]
        assert row["MCSE P(HR < 1)"] == lk.probabilities["MCSE P(HR < 1)"]
    # one look is a table too (it raised TypeError), and none is a clear error (KeyError)
    assert bh.look_table(looks[0]).equals(table.iloc[:1].dropna(axis=1, how="all"))
    with pytest.raises(bh.BayesHCCError, match="no looks given"):
        bh.look_table([])
    # the plan, or a single fit, is not a list of looks (TypeError: not iterable)
    with pytest.raises(bh.BayesHCCError, match=r"look_table: takes bh.interim_analysis "
                       r"results, got the plan; the plan's looks and rules are plan.table"):
        bh.look_table(plan)
    with pytest.raises(bh.BayesHCCError, match=r"look_table: .* got Fit\."):
        bh.look_table(looks[0].fit)
    # looks of two plans: the footnotes would name the first plan's rules for both
    other = dataclasses.replace(looks[1], plan_hash="0" * 16)
    with pytest.raises(bh.BayesHCCError, match="2 different monitoring plans"):
        bh.look_table([looks[0], other])
    # a look's name is not a look: decide failed with AttributeError
    with pytest.raises(bh.BayesHCCError, match=r"decide: look='interim 1' is not a Look.*"
                       r"plan.look\('interim 1'\)"):
        bh.decide(looks[0].fit, "interim 1")
    # the looks were fast (exploratory) fits: decide says so, and gives the rule's decision
    with pytest.warns(bh.ConvergenceWarning, match="decide: the fit is exploratory"):
        assert bh.decide(looks[0].fit, plan.look(1))[0] == looks[0].rule_decision
    rows, paragraphs = _docx_rows(bh.write_table(table, tmp_path / "looks.docx"))
    assert len(rows) == 3 and "decision" in rows[0]
    assert any("Plan" in p for p in paragraphs)
    assert any(p.startswith("c HR: conditional on site") for p in paragraphs)


def test_a_fit_that_failed_its_diagnostics_says_so_in_its_tables(fit, example_trial,
                                                                 tmp_path):
    """The convergence warning is given once, when the fit is made; a table printed or
    exported later used to look like any other. Now the headline table's first row and
    attrs, and the footnotes of every exported table, say what failed."""
    assert bh.summarize(fit).attrs["diagnostics"] == "ok"  # the 4 x 1000 fit passes
    assert not any("FAILED" in n or "Exploratory" in n for n in bh.fit_footnotes(fit))
    with pytest.warns(bh.ConvergenceWarning):  # 2 chains x 30 draws after 10 tuning steps
        short = bh.WeibullPH().fit(example_trial, "os", draws=30, tune=10, chains=2,
                                   random_seed=1)
    failed = [p.split(" ")[0] for p in short.convergence_problems()]
    assert "r_hat" in failed
    table = bh.summarize(short)
    assert table.attrs["diagnostics"].startswith("MCMC diagnostics FAILED (" + failed[0])
    assert table.loc["HR", "note"].endswith("see bh.check(fit)")
    notes = bh.fit_footnotes(short, table)
    assert notes[0].startswith("MCMC DIAGNOSTICS FAILED: r_hat = ")
    bh.publication_tables(short, tmp_path)
    _, paragraphs = _docx_rows(tmp_path / "os_headline.docx")
    assert any("MCMC DIAGNOSTICS FAILED: r_hat" in p for p in paragraphs)
    quick = bh.fit_spec("models/primary_os.toml", example_trial, fast=True, check=False)
    assert bh.fit_footnotes(quick)[0].startswith("Exploratory fit (fast mode")
    assert bh.summarize(quick).attrs["diagnostics"].startswith("exploratory (fast) fit")


def test_paper_tables_follow_the_specs_report_settings(example_trial, tmp_path):
    """A spec pre-specifies its table ([report]: 90% intervals, the typical site, 6- and
    12-month landmarks). The report and `bayes-hcc fit` showed that table, but the paper
    tables were `bh.summarize`'s defaults (95%, standardized, 12 and 24 months), and the
    footnote said 95% whatever the table's level."""
    spec = bh.apply_overrides(bh.load_spec("models/primary_os.toml"), {
        "report.prob": 0.9, "report.estimand": "typical_site", "report.times": [6, 12]})
    fit = bh.fit_spec(spec, example_trial, fast=True, check=False)
    bh.publication_tables(fit, tmp_path)
    rows, paragraphs = _docx_rows(tmp_path / "os_headline.docx")
    # RMST to the spec's 24 months, shortened to the 23 whole months that the shorter
    # arm's follow-up (23.3) covers, as the report does
    want = bh.summarize(fit, prob=0.9, estimand="typical_site", times=[6, 12], tau=23.0)
    assert [r[0] for r in rows[1:]] == list(want.index)
    assert "S(6 months) sorafenib" in want.index
    lower = rows[1 + list(want.index).index("HR")][rows[0].index("lower")]
    assert lower == f"{want.loc['HR', 'lower']:.3f}"
    text = " ".join(paragraphs)
    assert "typical_site (posterior medians with 90% equal-tailed credible intervals" in text
    assert "95% equal-tailed" not in text
    assert any("with 90% equal-tailed" in n for n in bh.fit_footnotes(fit))  # no table


def test_a_summary_table_written_alone_says_what_its_intervals_are(fit, tmp_path):
    """``write_table(bh.summarize(fit, prob=0.9), ...)`` wrote no footnote at all: a reader
    could not tell 90% intervals from 95% ones. Without footnotes of its own the table says
    its level, estimand and unit; given footnotes replace that."""
    table = bh.summarize(fit, prob=0.9, estimand="typical_site")
    _, paragraphs = _docx_rows(bh.write_table(table, tmp_path / "t.docx"))
    want = ("Posterior medians with 90% equal-tailed credible intervals; estimand "
            "typical_site; times in months.")
    assert any(p.endswith(want) for p in paragraphs)  # footnote a
    tex = bh.write_table(table, tmp_path / "t.tex").read_text()
    assert want.replace("%", r"\%").replace("_", r"\_") in tex  # LaTeX-escaped
    _, paragraphs = _docx_rows(bh.write_table(table, tmp_path / "u.docx",
                                              footnotes=["Mine."]))
    assert any(p.endswith("Mine.") for p in paragraphs)
    assert not any(want in p for p in paragraphs)
    effects_attrs = {"prob": 0.95, "ratio": "HR"}  # bh.covariate_effects' attrs
    from bayes_hcc.io.tables import _level_note
    assert _level_note(effects_attrs) == [
        "Posterior medians with 95% equal-tailed credible intervals."]


def test_table_arguments_as_a_user_types_them(fit, example_trial, tmp_path):
    """One format as text, a format without its dot, one footnote as text, one endpoint
    as text: each means one thing, not one per character (``formats=".docx"`` tried to
    write ``os_headline.``, ``footnotes="n"`` gave one footnote per letter)."""
    paths = bh.publication_tables(fit, tmp_path / "one", formats="DOCX")
    assert [p.name for p in paths] == ["os_headline.docx"]
    paths = bh.publication_tables(fit, tmp_path / "two", formats=("docx", ".tex"))
    assert sorted(p.name for p in paths) == ["os_headline.docx", "os_headline.tex"]
    with pytest.raises(bh.BayesHCCError, match=r"format '\.xlsx' is not one of \.docx, \.tex"):
        bh.publication_tables(fit, tmp_path / "three", formats=(".docx", ".xlsx"))
    assert not (tmp_path / "three").exists()  # refused before anything was written
    table = bh.summarize(fit)
    tex = bh.write_table(table, tmp_path / "t.tex", footnotes="Data cut 2020-02-28.")
    assert tex.read_text().count(r"\textsuperscript") == 1
    assert "Data cut 2020-02-28." in tex.read_text()
    one = bh.disposition(example_trial, "OS")
    assert [c for c in one.columns if "events" in c] == [f"{a}: OS events" for a in
                                                         example_trial.arms]
    with pytest.raises(bh.BayesHCCError, match="endpoint 'death' is not in these data"):
        bh.disposition(example_trial, "death")
    for digits in ("2", -1, 2.5):
        with pytest.raises(bh.BayesHCCError, match=r"digits=.*whole number from 0 to 15"):
            bh.write_table(table, tmp_path / "d.tex", digits=digits)
    with pytest.raises(bh.BayesHCCError, match=r"takes a DataFrame, got Series.*"
                       r"table\.loc\[\[row\]\]"):
        bh.write_table(table.loc["HR"], tmp_path / "s.tex")
    assert bh.write_table(table.loc[["HR"]], tmp_path / "s.tex").exists()


def test_paper_tables_refuse_another_data_cut_and_half_written_sets(fit, example_trial,
                                                                    tmp_path):
    """The disposition table must describe the patients analysed: another data cut is
    refused. A set of tables is written whole or not at all: a file already there is
    named before any file is written."""
    with pytest.raises(bh.BayesHCCError, match=r"trial \(cut 2018-06-30\) is not the data "
                       "the fit was made on"):
        bh.publication_tables(fit, tmp_path, trial=example_trial.cut("2018-06-30"))
    assert not tmp_path.joinpath("os_headline.docx").exists()
    (tmp_path / "disposition.tex").write_text("mine")
    with pytest.raises(FileExistsError, match="disposition.tex exists"):
        bh.publication_tables(fit, tmp_path, trial=example_trial)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disposition.tex"]
    assert (tmp_path / "disposition.tex").read_text() == "mine"


def test_a_per_protocol_analysis_s_tables_take_the_randomized_patients(example_trial,
                                                                       tmp_path):
    """A per-protocol fit was made on a subset; its disposition table describes the trial it
    was given (every randomized patient), which the check recognises through the spec's
    population. The same trial without its per_protocol column is not that trial."""
    from pathlib import Path

    frame = example_trial.to_frame()
    frame["per_protocol"] = (np.arange(len(frame)) % 10 != 0).astype(int)
    trial = bh.read_trial(frame.drop(columns=[c for c in frame
                                              if c.endswith(("_time", "_event", "_lower"))]))
    models = Path(__file__).resolve().parents[2] / "models"
    spec = bh.apply_overrides(bh.load_spec(models / "primary_os.toml"),
                              {"population": "per_protocol", "family": "exponential_ph",
                               "site.effect": "none"})
    fit = bh.fit_spec(spec, trial, fast=True, check=False)
    assert len(fit.data_fingerprint) and fit.data_fingerprint != trial.fingerprint
    paths = bh.publication_tables(fit, tmp_path / "pp", trial=trial, formats="tex")
    assert sorted(p.name for p in paths) == ["disposition.tex", "os_headline.tex"]
    assert bh.disposition(trial).loc["total"].filter(like="randomized").sum() == len(frame)
    with pytest.raises(bh.BayesHCCError, match="is not the data the fit was made on"):
        bh.publication_tables(fit, tmp_path / "itt", trial=example_trial)
