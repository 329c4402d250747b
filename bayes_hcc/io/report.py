"""bh.report: a self-contained HTML report of a fit (figures embedded, no network)."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_hcc.diagnostics import check
from bayes_hcc.errors import BayesHCCError, as_names, bool_flags, user_path
from bayes_hcc.io.plots import FIGURES
from bayes_hcc.io.tables import reconstruction_statement
from bayes_hcc.models.design import active_priors
from bayes_hcc.notebook import data_notes_html
from bayes_hcc.quantities.core import _loaded, as_fit
from bayes_hcc.quantities.summary import headline_table

__all__ = ["report", "write_tables", "data_summary"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1000px;
margin:2em auto;padding:0 1em;color:#1f2328}
h1{font-size:1.6em}h2{font-size:1.25em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:right}
th{background:#f6f8fa}.ok{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}code{font-size:.85em}
.note{color:#57606a;font-size:.85em}
"""


def data_summary(fit) -> pd.DataFrame:
    """Patients, events, censored and median follow-up (reverse KM) by arm and by site."""
    from lifelines import KaplanMeierFitter

    fit = as_fit(fit)
    c = fit.datatree["constant_data"]
    t = fit.datatree["observed_data"][fit.endpoint].to_numpy()
    d = c[fit.endpoint].to_numpy()
    arm, site = c["arm"].to_numpy(), c["site"].to_numpy()
    groups = [("overall", "all", np.ones(len(t), bool))]
    groups += [("arm", a, arm == i) for i, a in enumerate(fit.arms)]
    groups += [("site", s, site == i) for i, s in enumerate(fit.sites)]
    rows = []
    for by, label, m in groups:
        fu = float(KaplanMeierFitter().fit(t[m], 1 - d[m]).median_survival_time_) \
            if m.any() else np.nan
        rows.append({"by": by, "group": label, "patients": int(m.sum()),
                     "events": int(d[m].sum()), "censored": int((1 - d[m]).sum()),
                     f"median follow-up ({fit.time_unit})": fu if np.isfinite(fu) else np.nan})
    return pd.DataFrame(rows).set_index(["by", "group"])


def write_tables(table: pd.DataFrame, stem: Path, *, overwrite: bool = False) -> list[Path]:
    """The table as CSV, Markdown and LaTeX (``stem.csv``, ``stem.md``, ``stem.tex``)."""
    paths = [stem.with_suffix(s) for s in (".csv", ".md", ".tex")]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} exist; pass overwrite=True.")
    table.to_csv(paths[0])
    paths[1].write_text(table.to_markdown(floatfmt=".3f") + "\n")
    paths[2].write_text(table.to_latex(float_format="%.3f", na_rep="") + "\n")
    return paths


def _horizon_note(table: pd.DataFrame) -> str:
    """A sentence above the table when some rows are not reached or extrapolated."""
    flagged = [q for q, n in table["note"].items() if n and ("follow-up" in n
                                                            or "not reached" in n)]
    if not flagged:
        return ""
    return ("<p class='fail'>Beyond follow-up: " + html.escape(", ".join(flagged)) +
            ". A median beyond the longest follow-up in its arm is reported as not reached "
            "(the model's extrapolation is not an estimate from these data); see the note "
            "column.</p>")


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _figures_and_provenance(figs, attrs) -> str:
    """The end of a report: its figures (name, base64 PNG) and what produced it."""
    images = "".join(f'<h3>{html.escape(n)}</h3><img alt="{html.escape(n)}" '
                     f'src="data:image/png;base64,{b}">' for n, b in figs)
    provenance = json.dumps({k: attrs[k] for k in sorted(attrs)}, indent=1, default=str)
    return (f"<h2>Figures</h2>\n{images}\n<h2>Provenance</h2><pre>{html.escape(provenance)}"
            "</pre>\n</body></html>\n")


@bool_flags
def report(fit, path, *, overwrite: bool = False, figures=None, random_seed: int = 0) -> Path:
    """Write a self-contained HTML report of ``fit`` and its headline table.

    Contents: data summary (counts, events, censoring by arm and site), the model and its
    priors as used, the diagnostics verdict with explanations, the headline table
    (:func:`bayes_hcc.summarize`) and the figures (embedded PNG). The table is also written
    next to the report as CSV, Markdown and LaTeX (``<name>_summary.*``).
    Refuses to overwrite existing files unless ``overwrite=True``.
    """
    # a trailing separator means a folder, though it does not exist yet (Path drops it, and
    # the report was written to a file named as the folder)
    folder = isinstance(path, str) and path.endswith(("/", os.sep))
    path = user_path(path, "report", "the HTML file to write (e.g. 'report.html')")
    if path.is_dir() or folder:
        raise BayesHCCError(f"{path} is a directory; give the report's file name, e.g. "
                            f"{path / 'report.html'}.")
    if path.suffix.lower() not in (".html", ".htm"):  # "report.pdf" was HTML named PDF
        raise BayesHCCError(f"{path}: the report is an HTML page; give a file name ending in "
                            f".html, e.g. {path.with_suffix('.html')} (print it to PDF from "
                            "a browser).")
    fit = _loaded(fit)  # a saved fit of either kind
    if hasattr(fit, "state_probabilities"):  # an illness-death fit
        return _illness_death_report(fit, path, overwrite=overwrite)
    fit = as_fit(fit)
    if figures is not None:  # checked before anything is written; one text is one figure
        figures = as_names(figures, "report", "figures", FIGURES, '["survival", "ppc"]')
    stem = path.with_name(path.stem + "_summary")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the verdict is shown in the report itself
        diag = check(fit, warn=False)
    table = headline_table(fit)  # as the spec's [report] pre-specifies
    write_tables(table, stem, overwrite=overwrite)
    attrs = fit.datatree.attrs
    used = active_priors(fit.priors, fit.family, fit.site_effect, fit.arm_by_site,
                         bool(fit.settings["covariates"]), fit.pooling)
    priors = pd.DataFrame({"prior": {k: str(fit.priors[k]) for k in used}})
    model = {k: v for k, v in fit.settings.items() if k != "priors"}
    figs = []
    if figures is None:  # every figure that applies to this fit (no placeholder figures)
        figures = [n for n in FIGURES if n != "time_varying_hr"
                   or "log_hr_dev" in fit.datatree["posterior"]]
    for name in figures:
        kwargs = {"random_seed": random_seed} if name == "ppc" else {}
        figs.append((name, _png(FIGURES[name](fit, **kwargs))))
    verdict = ("<p class='ok'>Diagnostics: OK</p>" if diag.ok else
               "<p class='fail'>Diagnostics FAILED: the posterior may be unreliable.</p>")
    expl = "".join(f"<li>{html.escape(e)}</li>" for e in diag.explanations)
    versions = json.loads(attrs.get("package_versions", "{}"))
    recon = (f"<p class='fail'>{html.escape(reconstruction_statement(fit.reconstruction))}."
             "</p>" if fit.reconstruction else "")
    recon += data_notes_html(fit.data_notes)
    body = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>bayes-hcc report: {html.escape(fit.endpoint.upper())}</title><style>{_CSS}</style></head>
<body><h1>Bayesian analysis of {html.escape(fit.endpoint.upper())}:
{html.escape(fit.arms[1])} vs {html.escape(fit.arms[0])}</h1>
<p class="note">Hazard ratio = hazard({html.escape(fit.arms[1])}) /
hazard({html.escape(fit.arms[0])}); superiority means HR &lt; 1. Times in
{html.escape(fit.time_unit)}. Created {html.escape(attrs.get('created', ''))} with bayes-hcc
{html.escape(versions.get('bayes-hcc', '?'))}; data fingerprint
<code>{html.escape(fit.data_fingerprint[:16])}</code>; seed {fit.random_seed}.</p>
<h2>Data</h2>{recon}{data_summary(fit).to_html(float_format=lambda x: f'{x:.2f}', na_rep='n.e.')}
<p class="note">Median follow-up by the reverse Kaplan-Meier method (n.e. = not estimable:
almost no censoring).</p>
<h2>Model and priors as used</h2><pre>{html.escape(json.dumps(model, indent=1))}</pre>
{priors.to_html()}
<h2>Diagnostics</h2>{verdict}{diag.table.to_html(float_format=lambda x: f'{x:.4g}')}
<ul>{expl}</ul>
<h2>Headline results</h2>
{table.to_html(float_format=lambda x: f'{x:.3f}', na_rep='')}
{_horizon_note(table)}
<p class="note">Estimand {html.escape(str(table.attrs['estimand']))};
{table.attrs['prob']:.0%} equal-tailed credible intervals (the spec's [report] table sets the
estimand, the interval, the landmarks, the RMST horizon and the HR thresholds); MCSE = Monte
Carlo standard error. Also as CSV, Markdown and LaTeX:
{html.escape(stem.name)}.csv / .md / .tex.</p>
{_figures_and_provenance(figs, attrs)}"""
    path.write_text(body, encoding="utf-8")
    return path


def _illness_death_report(fit, path: Path, *, overwrite: bool = False) -> Path:
    """The HTML report of an illness-death fit: the data's progression/death patterns by
    arm, the model and priors, the sampler diagnostics, the transition HRs, the OS, PFS and
    TTP medians and RMST (``IllnessDeathFit.endpoint_table``), P(superiority) on every scale,
    the state-occupation and OS hazard-ratio figures, each endpoint's curve over its
    non-parametric estimate, the posterior predictive check of OS, and the provenance."""
    from bayes_hcc.convergence import sampler_rows, thresholds_for
    from bayes_hcc.io.plots import (plot_os_hazard_ratio, plot_ppc, plot_state_probabilities,
                                    plot_survival)

    stem = path.with_name(path.stem + "_summary")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    attrs = fit.datatree.attrs
    data = fit.data
    spec = fit.spec
    rep = dict(spec.report) if spec is not None else {"prob": 0.95}
    table = headline_table(fit)  # the RMST to the spec's tau, shortened to the follow-up
    tau, estimand = table.attrs["tau"], table.attrs["estimand"]
    write_tables(table, stem, overwrite=overwrite)
    patterns = pd.DataFrame({
        arm: {"patients": int((data.arm == i).sum()),
              "progression seen": int((data.progressed & (data.arm == i)).sum()),
              "... of which in a scan interval": int((data.interval & (data.arm == i)).sum()),
              "deaths": int(data.death[data.arm == i].sum()),
              "deaths without a progression seen": int(
                  (data.death.astype(bool) & ~data.progressed & (data.arm == i)).sum())}
        for i, arm in enumerate(data.arms)})
    limits, mode = thresholds_for(fit.datatree)
    rows = sampler_rows(fit.datatree, limits)
    diag = pd.DataFrame([{"check": k, "value": v[0], "needs": v[1], "ok": v[2], "where": v[3]}
                         for k, v in rows.items()]).set_index("check")
    problems = fit.convergence_problems()
    verdict = (f"<p class='ok'>Diagnostics ({mode} thresholds): OK</p>" if not problems else
               "<p class='fail'>Diagnostics FAILED: the posterior may be unreliable.</p><ul>"
               + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>")
    priors = pd.DataFrame({t: {k: str(p) for k, p in pr.items()}
                           for t, pr in zip(fit.hazard_ratio()["transition"].values,
                                            fit.priors)})
    figs = [("state occupation probabilities",
             _png(plot_state_probabilities(fit, estimand=estimand))),
            ("marginal OS hazard ratio over time",
             _png(plot_os_hazard_ratio(fit, estimand=estimand)))]
    # each endpoint's curve from the one model over the data's own estimate of it
    figs += [(f"{name.upper()} from the joint model over its "
              f"{'Kaplan-Meier' if name == 'os' else 'Turnbull'} estimate",
              _png(plot_survival(fit, endpoint=name, estimand=estimand)))
             for name in ("os", "pfs", "ttp")]
    # the trial replicated from the model, observed as the data were (bh.plot_ppc gives the
    # PFS and TTP checks too, with endpoint=)
    figs.append(("posterior predictive check of OS (replicated trials, 95% band)",
                 _png(plot_ppc(fit, endpoint="os", random_seed=fit.random_seed))))
    probs = fit.prob_superiority(tau=tau, estimand=estimand)
    sup = probs.to_frame().assign(note=[probs.attrs["notes"].get(k, "") for k in probs.index])
    c, t = data.arms
    versions = json.loads(attrs.get("package_versions", "{}"))
    fmt = lambda x: f"{x:.3f}"  # noqa: E731
    body = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>bayes-hcc report: illness-death model</title><style>{_CSS}</style></head>
<body><h1>Bayesian illness-death analysis of progression and death:
{html.escape(t)} vs {html.escape(c)}</h1>
<p class="note">{html.escape(repr(fit))}. Hazard ratio = hazard({html.escape(t)}) /
hazard({html.escape(c)}) of each transition; superiority means HR &lt; 1. OS and PFS hazards are
not proportional under this model: their comparisons are medians and RMST. Curves for the
estimand {html.escape(estimand)}. Times in {html.escape(data.time_unit)}. bayes-hcc
{html.escape(versions.get('bayes-hcc', '?'))}; data fingerprint
<code>{html.escape(str(fit.data_fingerprint or 'arrays')[:16])}</code>; seed {fit.random_seed}.</p>
<h2>Data</h2>{data_notes_html(fit.data_notes)}{patterns.to_html()}
<h2>Model and priors as used</h2><pre>{html.escape(json.dumps(fit.model.settings(), indent=1))}</pre>
{priors.to_html()}
<h2>Diagnostics</h2>{verdict}{diag.to_html(float_format=lambda x: f'{x:.4g}')}
<h2>Transition hazard ratios</h2>{fit.summary(prob=rep.get('prob', 0.95)).to_html(float_format=fmt)}
<h2>OS, PFS and time to progression</h2>{table.to_html(float_format=fmt, na_rep='')}
<p class="note">A median with status "beyond" lies past the arm's longest follow-up: the
model's extrapolation, not an estimate from these data. Also as CSV, Markdown and LaTeX:
{html.escape(stem.name)}.csv / .md / .tex.</p>
<h2>Probability that {html.escape(t)} is better</h2>{sup.to_html(float_format=fmt)}
{_figures_and_provenance(figs, attrs)}"""
    path.write_text(body, encoding="utf-8")
    return path
