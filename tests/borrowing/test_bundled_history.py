"""The bundled historical sorafenib arms: what they say, where it comes from, and that the
grid's borrowing variant is the robust MAP prior those arms give."""

import tomllib
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.errors import DataWarning, SpecError

GRID = Path(__file__).resolve().parents[2] / "models" / "sensitivity_os.toml"
VARIANT = "borrowing: robust MAP control prior (Weibull PH)"
WEEK = 7 / 30.4375  # months per week


def load():
    """The bundled history, whose one warning is the Asia-Pacific cap (the published CIs
    are near symmetric on the log scale: no asymmetry warning)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = bh.datasets.load_sorafenib_history()
    assert [w.category for w in caught] == [DataWarning], [str(w.message) for w in caught]
    assert re.search("Asia-Pacific.*capped at 150", str(caught[0].message))
    return history


def test_bundled_arms_carry_their_numbers_and_sources():
    history = load()
    table = history.table()
    assert list(table.index) == ["Asia-Pacific", "SHARP"]
    sharp, ap = table.loc["SHARP"], table.loc["Asia-Pacific"]
    # SHARP as published in weeks (SmPC Table 3): 46.3 (40.9-57.9), n = 299, converted to
    # months; the effective events follow the documented formula (2 z / log(U/L))^2
    assert sharp["median_months"] == pytest.approx(46.3 * WEEK, rel=1e-9)
    z = 1.959963984540054
    assert sharp["events"] == pytest.approx((2 * z / np.log(57.9 / 40.9)) ** 2, rel=1e-9)
    assert sharp["exposure_months"] == pytest.approx(
        sharp["events"] * 46.3 * WEEK / np.log(2), rel=1e-9)
    # Asia-Pacific: 6.5 (5.56-7.56) months implies 163 events from 150 patients: capped
    assert ap["median_months"] == pytest.approx(6.5) and ap["events"] == 150
    for study, journal in [("SHARP", "N Engl J Med 2008"), ("Asia-Pacific",
                                                            "Lancet Oncol 2009")]:
        assert journal in table.loc[study, "source"]
    assert "Summary of Product Characteristics" in table.loc["SHARP", "source"]
    assert "Table 3" in table.loc["SHARP", "source"]
    text = repr(history)
    assert "SHARP" in text and "…" in text  # long sources shortened in the repr only


def test_an_arm_may_give_its_own_time_unit():
    """Arms are published in different units: a row's time_unit overrides the history's, and
    the same arm in days, weeks or months gives the same events and exposure."""
    base = {"study": "A", "source": "test", "median": 10.0, "median_lower": 8.0,
            "median_upper": 12.5, "n": 300}
    months = bh.History([base])
    days = bh.History([{**base, **{k: base[k] * 30.4375 for k in
                                   ("median", "median_lower", "median_upper")},
                        "time_unit": "days"}], time_unit="weeks")
    assert days.events == pytest.approx(months.events)
    assert days.exposure == pytest.approx(months.exposure)
    with pytest.raises(SpecError, match="study 'A'.*fortnights"):
        bh.History([{**base, "time_unit": "fortnights"}])
    rows = [{"study": "B", "source": "t", "interval_start": 0, "interval_end": 4,
             "events": 10, "exposure": 100, "time_unit": "months"},
            {"study": "B", "source": "t", "interval_start": 4, "interval_end": None,
             "events": 10, "exposure": 100, "time_unit": "weeks"}]
    with pytest.raises(SpecError, match="different time units"):
        bh.History(rows)


def variant_prior():
    grid = tomllib.loads(GRID.read_text())
    (variant,) = [v for v in grid["variants"] if v["name"] == VARIANT]
    return variant["overrides"]


def test_grid_variant_is_a_weibull_fit_with_the_map_prior():
    over = variant_prior()
    assert over["family"] == "weibull_ph"
    prior = over["priors.log_lambda"]
    assert prior["dist"] == "Mixture" and prior["weights"][-1] == pytest.approx(0.2)
    spec = dict(bh.load_grid(GRID).variants)[VARIANT]
    assert spec.family == "weibull_ph"
    assert dict(spec.priors)["log_lambda"].weights[-1] == pytest.approx(0.2)


def test_grid_variant_is_rebuilt_from_the_bundled_history(capsys, tmp_path):
    """`bayes-hcc map-prior sorafenib --robust 0.2 --seed 1` rebuilds the variant's prior
    from the bundled arms: the same distribution, its 1%-99% quantiles within 0.05 on the
    log-hazard scale (6% of the prior's SD), and the same reference time within 1%. Seeded,
    the rebuild is identical on one software stack; across sampler builds the MAP's MCMC
    draws differ, and the fitted mixture with them (component weights by up to 0.04, its
    quantiles by up to 0.02, measured), so the check is on the distribution, not the
    decomposition. A changed history moves it far more (the two arms' medians differ by
    0.5 on this scale)."""
    from scipy import optimize, stats

    from bayes_hcc.cli.app import main

    out = tmp_path / "prior.toml"
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)
        with pytest.raises(SystemExit) as done:
            main(["map-prior", "sorafenib", "--out", str(out), "--robust", "0.2",
                  "--seed", "1"])
    cap = capsys.readouterr()
    assert done.value.code == 0, cap.err
    assert "warning (DataWarning)" in cap.err and "Traceback" not in cap.err
    built = tomllib.loads(out.read_text())["priors"]["log_lambda"]
    want = variant_prior()
    got = want["priors.log_lambda"]

    def quantile(mixture, p):
        def cdf(x):
            return sum(w * stats.norm.cdf(x, c["mu"], c["sigma"])
                       for w, c in zip(mixture["weights"], mixture["components"]))
        return optimize.brentq(lambda x: cdf(x) - p, -30.0, 30.0)

    for p in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99):
        assert quantile(built, p) == pytest.approx(quantile(got, p), abs=0.05), p
    reference = float(out.read_text().split("prior_reference_time = ")[1].split()[0])
    assert want["options.prior_reference_time"] == pytest.approx(reference, rel=1e-2)
