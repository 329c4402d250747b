"""The model-layer rebuild must not change posteriors: posterior means of log HR, site SD
and the medians for the example trial and two bundled real datasets, both families,
against the numbers recorded before the rebuild (tests/reference/
posteriors_before_rebuild.json, with the commit they came from)."""

import json
from pathlib import Path

import numpy as np
import pytest

import bayes_hcc as bh

REFERENCE = json.loads((Path(__file__).resolve().parents[1] / "reference" /
                        "posteriors_before_rebuild.json").read_text())
CASES = {"example os": ("load_example_trial", "os", "random"),
         "veteran os": ("load_veteran", "os", "none"),
         "rats tumour": ("load_rats", "tumour", "random")}


@pytest.mark.parametrize("case", list(REFERENCE["fits"]))
def test_posterior_means_as_before_the_rebuild(case):
    import arviz_stats as azs

    data, fam = case.rsplit(" ", 1)
    loader, endpoint, site = CASES[data]
    trial = getattr(bh.datasets, loader)()
    cls = bh.PiecewiseExponential if fam == "piecewise" else bh.WeibullPH
    fit = cls(site_effect=site).fit(trial, endpoint, draws=2000, random_seed=20200228,
                                    check=False)
    med = bh.median_survival(fit)
    for name, ref in REFERENCE["fits"][case].items():
        da = med.sel(arm=name.split(" ", 1)[1]) if name.startswith("median ") else \
            fit.posterior[name]
        now, mcse = float(da.mean()), float(azs.mcse(da, method="mean"))
        # 3 Monte Carlo SEs of the difference of two runs: a false alarm ~0.3% per number
        assert abs(now - ref["mean"]) <= 3 * np.hypot(mcse, ref["mcse"]), (case, name, now,
                                                                          ref["mean"])
