"""`bayes-hcc validate` (bh.validation_report) end to end, on a run too small to judge the
checks that need power."""

import pytest
from typer.testing import CliRunner

from bayes_hcc.cli.app import app
from bayes_hcc.families.registry import FAMILIES
from bayes_hcc.validation.report import MIN_REPS_ALARM, MIN_TRIALS_COVERAGE


@pytest.mark.slow
def test_a_small_validation_run_judges_only_what_it_can(tmp_path):
    """8 SBC replications and 8 coverage trials (about 2 minutes on 2 cores): every
    registered family is calibrated by SBC, the uniformity checks and the agreement with
    lifelines and statsmodels are judged (and pass: the package is correct), while the
    narrowed-posterior alarm and the coverage band are "not judged": 8 replications reject
    a posterior narrowed by half for every parameter of a family with probability about
    0.01, and 8 trials cannot place a coverage within 85-95%. They were reported as FAIL
    for a correct package. The exit code says the run validates nothing (1), with the
    reason; the command had no test at all."""
    assert 8 < MIN_REPS_ALARM and 8 < MIN_TRIALS_COVERAGE
    out = tmp_path / "validation"
    res = CliRunner().invoke(app, ["validate", "--out", str(out), "--reps", "8", "--trials",
                                   "8", "--workers", "2"])
    assert res.exit_code == 1, res.output
    assert "not judged: too few replications or trials" in res.output
    assert "FAILED" not in res.output
    text = (out / "validation.md").read_text()
    summary = text.split("## Summary", 1)[1].split("## 1.", 1)[0]
    cells = [[c.strip() for c in line.split("|")[1:3]] for line in summary.splitlines()
             if line.startswith("| ")]
    assert cells[0] == ["check", "result"]
    rows = dict(cells[1:])
    for family in FAMILIES:
        assert rows[f"SBC {family}: uniform (all p > 0.01)"] == "pass"
        assert rows[f"SBC {family}: narrowed posterior rejected"] == \
            f"not judged: 8 < {MIN_REPS_ALARM} replications"
        assert (out / f"sbc_{family}.csv").exists() and (out / f"sbc_{family}.png").exists()
    for family in ("weibull_ph", "piecewise_exponential"):
        assert rows[f"coverage {family}: 90% intervals cover 85-95%"] == \
            f"not judged: 8 < {MIN_TRIALS_COVERAGE} trials"
    for ds in ("veteran", "leukemia", "rats", "example"):
        assert rows[f"agreement {ds}: all checks within tolerance"] == "pass"
    # each coverage study says whether any trial's data warned (the planned trial: none)
    assert text.count("Trials whose data warned: none.") == 2
    assert "A check is not judged when the run is too small" in summary
    assert not (out / ".runs").exists()  # the intermediate results are removed
    # never replaced silently
    again = CliRunner().invoke(app, ["validate", "--out", str(out), "--reps", "8"])
    assert again.exit_code != 0 and "validation.md exists; pass --overwrite to replace it" in \
        again.output  # it said "pass --overwrite (--overwrite)"
