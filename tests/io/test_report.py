"""Plots, the HTML report (rendered in headless Chromium), tables and the CLI."""

import re
import shutil
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import bayes_hcc as bh
from bayes_hcc.cli import app
from bayes_hcc.io.plots import FIGURES


@pytest.fixture(scope="module")
def fit():
    return bh.WeibullPH().fit(bh.datasets.load_example_trial(), "os", random_seed=3)


def find_or_install_chromium():
    """Debian's chromium: use it, or install it when we may (root with apt-get)."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if shutil.which("apt-get") and hasattr(__import__("os"), "geteuid") and \
            __import__("os").geteuid() == 0:
        subprocess.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install "
                       "-y -qq chromium", shell=True, capture_output=True, timeout=900)
    return shutil.which("chromium")


@pytest.mark.parametrize("name", list(FIGURES))
def test_every_figure_draws(fit, name, tmp_path):
    fig = FIGURES[name](fit)
    fig.savefig(tmp_path / f"{name}.png")
    assert (tmp_path / f"{name}.png").stat().st_size > 5_000


def test_survival_and_hr_figures_draw_into_panels_of_a_users_figure(fit):
    """A paper's figure puts panels side by side; the plots made their own figures only.
    With ax= each draws into the given panel (the risk strip split off its bottom) and
    returns the user's figure, whose layout it leaves alone."""
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    assert bh.plot_survival(fit, ax=left) is fig and bh.plot_hazard_ratio(fit, ax=right) is fig
    assert len(fig.axes) == 3  # the two panels and the survival panel's numbers at risk
    assert left.get_title().startswith("OS: posterior survival")
    assert right.get_title() == "OS: posterior of the hazard ratio"
    strip = fig.axes[2]
    assert strip.get_title() == "numbers at risk"
    at_zero = {t.get_position()[1]: t.get_text() for t in strip.texts
               if t.get_position()[0] == 0}
    assert at_zero == {1: "67", 0: "63"}  # everyone at risk at time 0: control row on top
    plt.close(fig)
    # one number where a list is asked is one value; text is refused by name (they raised
    # "'float' object is not iterable" and "iteration over a 0-d array")
    assert bh.plot_hazard_ratio(fit, thresholds=0.8).axes[0].lines[-1].get_xdata()[0] == 0.8
    with pytest.raises(bh.BayesHCCError, match=r"plot_survival: risk_times='6' is text"):
        bh.plot_survival(fit, risk_times="6")
    # the figure's whole array of panels given as ax= failed inside matplotlib
    fig, axes = plt.subplots(1, 2)
    with pytest.raises(bh.BayesHCCError, match=r"plot_hazard_ratio: ax=ndarray \(the whole "
                       r"array of panels: give one, e.g. axes\[0\]\)"):
        bh.plot_hazard_ratio(fit, ax=axes)
    plt.close(fig)


def test_site_effects_forest_says_what_zero_is(fit):
    """The forest drew each chain apart with ArviZ's default 89% intervals, no zero line and
    no axis label. Now: chains combined, 95% intervals equal to the posterior's 2.5% and
    97.5% quantiles (ArviZ's equal-tailed intervals), 0 marked and named."""
    fig = bh.plot_site_effects(fit)
    ax = fig.axes[-1]
    assert "0: the random-effects mean, a typical site" in ax.get_xlabel()
    draws = fit.posterior["site_effect"].to_numpy().reshape(-1, len(fit.sites))
    twigs = sorted((tuple(line.get_xdata()) for line in ax.get_lines()
                    if line.get_linewidth() < 1), key=lambda x: x[0])
    assert len(twigs) == len(fit.sites)  # one interval per site, chains combined
    np.testing.assert_allclose(twigs, sorted(np.quantile(draws, [0.025, 0.975], axis=0).T
                                             .tolist()), rtol=1e-10)
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in ax.get_lines())


def test_site_effects_forest_shows_treatment_by_site_effects():
    """A model with treatment-by-site effects and no site effects on the baseline drew "no
    site effects in this model": its per-site deviations of the log HR were in no figure.
    They are drawn now (one interval per site, the posterior's 2.5% and 97.5% quantiles),
    with what 0 means and the SD."""
    from bayes_hcc.families.weibull import WeibullFamily
    from tests.helpers import fabricated_fit

    rng = np.random.default_rng(3)
    dev = rng.normal([0.3, -0.2, 0.0], 0.1, size=(2, 50, 3))
    fit = fabricated_fit(WeibullFamily(), {
        "log_lambda": np.full((2, 50), -2.3), "log_shape": np.full((2, 50), 0.3),
        "log_hr": rng.normal(-0.2, 0.1, (2, 50)), "arm_site_effect": dev,
        "arm_site_sd": np.abs(rng.normal(0.3, 0.05, (2, 50)))},
        arm=[0, 1] * 6, site=[0, 0, 1, 1, 2, 2] * 2, arm_by_site="random")
    fig = bh.plot_site_effects(fit)
    ax = fig.axes[-1]
    assert ax.get_xlabel() == "treatment-by-site effect on the log HR (0: a typical site)"
    assert ax.get_title().startswith("treatment-by-site SD posterior median 0.3")
    twigs = sorted((tuple(line.get_xdata()) for line in ax.get_lines()
                    if line.get_linewidth() < 1), key=lambda x: x[0])
    np.testing.assert_allclose(twigs, sorted(np.quantile(dev.reshape(-1, 3), [0.025, 0.975],
                                                         axis=0).T.tolist()), rtol=1e-10)


def test_a_notebook_shows_the_effect_and_the_verdict(fit):
    """``fit`` in a notebook: the arm effect's median and 95% interval (the same numbers as
    bh.hazard_ratio), P(HR < 1) with its MCSE (bh.prob_superiority) and the diagnostics'
    verdict (bh.check), what the HR is conditional on (bh.summarize's note), escaped."""
    hr = bh.hazard_ratio(fit).to_numpy()
    lo, med, hi = np.quantile(hr, [0.025, 0.5, 0.975])
    p = bh.prob_superiority(fit)
    shown = fit._repr_html_()
    assert f"<b>{med:.3g}</b> (95% CrI {lo:.3g} to {hi:.3g})" in shown
    assert f"P(HR &lt; 1) = {p.probability:.3f} (MCSE {p.mcse:.4f})" in shown
    assert bh.check(fit, warn=False).ok and "Diagnostics OK" in shown
    assert "conditional on site (random effects)" in bh.summarize(fit).loc["HR", "note"]
    assert "conditional on site (random effects)" in shown
    assert repr(fit) in shown and "FAILED" not in shown


def test_report_is_self_contained_and_complete(fit, tmp_path):
    path = bh.report(fit, tmp_path / "report.html")
    text = path.read_text()
    for needle in ("Data", "Model and priors as used", "Diagnostics: OK", "Headline results",
                   "P(HR &lt; 1)", "sorafenib", "Normal(mu=0, sigma=1)", "HalfNormal(sigma=1)"):
        assert needle in text, needle
    # No network: every image is embedded, no external scripts or stylesheets.
    assert not re.search(r'src="(?!data:)', text) and "<script" not in text
    # Every figure that applies: the per-interval HR plot only for a time-varying-HR fit
    # (it used to be a placeholder figure saying "fit ... for this plot").
    assert len(re.findall(r'src="data:image/png;base64,', text)) == len(FIGURES) - 1
    assert "for this plot" not in text
    for suffix in (".csv", ".md", ".tex"):
        assert (tmp_path / f"report_summary{suffix}").exists()
    csv = pd.read_csv(tmp_path / "report_summary.csv", index_col=0)
    assert csv.loc["P(HR < 1)", "mean"] == pytest.approx(bh.prob_superiority(fit).probability)
    assert "\\begin{tabular}" in (tmp_path / "report_summary.tex").read_text()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        bh.report(fit, path)


def test_time_varying_report_table_and_sensitivity_row(example_trial, tmp_path):
    """With a time-varying HR the table gives the HR of every interval and says what the
    single HR averages; the report has the per-interval figure."""
    fit = bh.PiecewiseExponential(n_intervals=3, time_varying_hr=True).fit(
        example_trial, "os", random_seed=2, draws=500, tune=500, chains=2, check=False)
    table = bh.summarize(fit)
    per = [q for q in table.index if q.startswith("HR in [")]
    assert len(per) == 3 and "geometric mean" in table.loc["HR", "note"]
    lhi = fit.posterior["log_hr_interval"]
    for q, label in zip(per, lhi["interval"].values):
        assert table.loc[q, "median"] == pytest.approx(float(np.exp(lhi.sel(interval=label))
                                                             .median()))
    path = bh.report(fit, tmp_path / "tv.html", figures=None)
    text = path.read_text()
    assert len(re.findall(r'src="data:image/png;base64,', text)) == len(FIGURES)
    assert "for this plot" not in text


def test_report_renders_in_headless_chromium(fit, tmp_path):
    chromium = find_or_install_chromium()
    if chromium is None:
        pytest.skip("Debian's chromium is not installed and could not be installed "
                    "(needs root and apt-get): install it with `apt-get install chromium`.")
    path = bh.report(fit, tmp_path / "report.html")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "report.png"
    run = subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,4000",
                          path.as_uri()], capture_output=True, text=True, timeout=180)
    assert shot.exists() and shot.stat().st_size > 50_000, run.stderr[-2000:]
    dom = subprocess.run([chromium, *flags, "--dump-dom", path.as_uri()], capture_output=True,
                         text=True, timeout=180).stdout
    # Rendered DOM carries the headline table and every embedded figure.
    assert "Headline results" in dom and dom.count("data:image/png;base64,") == len(FIGURES) - 1
    shutil.copy(shot, tmp_path / "report_screenshot.png")


def test_cli_report_and_strict(tmp_path, fit):
    runner = CliRunner()
    fit.save(tmp_path / "fit.nc")
    res = runner.invoke(app, ["report", str(tmp_path / "fit.nc"), "--out",
                              str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").exists()
    # --strict: a starved run fails its diagnostics and exits 1.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.ConvergenceWarning)
        res = runner.invoke(app, ["fit", "example", "--model", "weibull", "--draws", "20",
                                  "--tune", "5", "--out", str(tmp_path / "bad"), "--strict"])
    assert res.exit_code == 1, res.output
    assert "diagnostics: FAILED" in res.output


def test_a_report_path_ending_in_a_separator_is_a_folder(fit, tmp_path):
    """``--out reports/`` (a folder that does not exist yet) wrote the HTML to a file named
    ``reports`` and the tables to ``reports_summary.*`` beside it; it is refused like an
    existing folder, with the file name to give."""
    target = str(tmp_path / "reports") + "/"
    with pytest.raises(bh.BayesHCCError, match=r"reports is a directory; give the report's "
                       r"file name, e.g. .*reports/report\.html"):
        bh.report(fit, target)
    assert list(tmp_path.iterdir()) == []
    saved = fit.save(tmp_path / "fit.nc")
    res = CliRunner().invoke(app, ["report", str(saved), "--out", target])
    assert res.exit_code == 2 and "is a directory" in res.output, res.output
    assert [p.name for p in tmp_path.iterdir()] == ["fit.nc"]


def test_a_report_is_an_html_file(fit, tmp_path):
    """``bh.report(fit, "report.pdf")`` wrote an HTML page under a PDF's name (and
    ``"report"`` one without a suffix); both are refused before anything is written."""
    for name in ("report.pdf", "report"):
        with pytest.raises(bh.BayesHCCError, match=r"the report is an HTML page; give a file "
                           r"name ending in .html, e.g. .*report\.html"):
            bh.report(fit, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_report_figures_as_a_user_names_them(fit, tmp_path):
    """``figures="survival"`` asked for the figures 's', 'u', ... and a misspelt name raised
    KeyError after the report's tables were written (a second try then found them there).
    One text is one figure, and a name is checked before anything is written."""
    with pytest.raises(bh.BayesHCCError, match=r"report: figures: unknown 'survivals' \(did "
                       r"you mean 'survival'\?\)"):
        bh.report(fit, tmp_path / "r.html", figures=["survivals"])
    assert list(tmp_path.iterdir()) == []
    text = bh.report(fit, tmp_path / "r.html", figures="survival").read_text()
    assert text.count("data:image/png;base64,") == 1
