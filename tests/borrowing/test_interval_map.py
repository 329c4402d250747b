"""The per-interval MAP prior of the piecewise-exponential baseline: historical arms per
interval, the meta-analysis per interval against separate constant-hazard ones, and its use
in the piecewise model (only on its own cuts, with independent interval priors)."""

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.borrowing.history import events_exposure

CUTS = [4.0, 10.0]
EDGES = np.r_[0.0, CUTS, np.inf]


def control_trial(rate, seed, n=150, label="sorafenib"):
    """A two-arm trial with constant hazards (the control's ``rate`` per month)."""
    rng = np.random.default_rng(seed)
    arm = np.arange(n) % 2
    t = rng.exponential(1 / (rate * np.where(arm == 1, 0.8, 1.0)))
    c = rng.uniform(12, 36, n)
    return bh.read_trial(pd.DataFrame({
        "patient_id": [f"p{i:03d}" for i in range(n)], "site": "one",
        "arm": np.where(arm == 1, "tace_sorafenib", label),
        "os_time": np.minimum(t, c), "os_event": (t <= c).astype(int)}))


@pytest.fixture(scope="module")
def history():
    return bh.History([{"study": f"H{i}", "source": "simulated", "trial": control_trial(r, i)}
                       for i, r in enumerate([0.070, 0.090, 0.075, 0.080])])


@pytest.fixture(scope="module")
def interval_prior(history):
    return bh.map_prior(history, cuts=CUTS, random_seed=4)


def test_per_interval_map_is_one_meta_analysis_per_interval(history, interval_prior):
    """Independent per interval by construction: the predictive of each interval equals the
    constant-hazard MAP of that interval's events and exposure alone (same model, other
    draws): medians within 0.03 and SDs within 5% (Monte Carlo error of 4 x 5000 draws
    about 0.005 and 1.5%)."""
    d, e = history.per_interval(EDGES)
    theta = interval_prior.draws["theta_new"].to_numpy().reshape(-1, len(CUTS) + 1)
    for j in range(len(CUTS) + 1):
        alone = bh.map_prior(bh.History([{"study": a.study, "source": "simulated",
                                          "events": d[i, j], "exposure": e[i, j]}
                                         for i, a in enumerate(history.arms)]),
                             random_seed=9)
        ref = alone.draws["theta_new"].to_numpy().ravel()
        assert np.median(theta[:, j]) == pytest.approx(np.median(ref), abs=0.03)
        assert np.std(theta[:, j]) == pytest.approx(np.std(ref), rel=0.05)
    assert interval_prior.accuracy["difference"].abs().max() <= 0.02
    assert interval_prior.ess().shape == (3,)
    assert interval_prior.mixture.structure.startswith("IntervalMixture[3x")


def test_per_interval_history_forms(tmp_path, history):
    """Per-interval rows (form a) give the same events and exposure as the patients they
    summarise; files carry interval_start and interval_end (empty: to the end)."""
    arm = history.arms[0]
    d, e = events_exposure(*arm.patients, EDGES)
    rows = [{"study": "x", "source": "table 3", "interval_start": a, "interval_end": b,
             "events": dj, "exposure": ej}
            for a, b, dj, ej in zip(EDGES[:-1], EDGES[1:], d, e)]
    h = bh.History(rows)
    np.testing.assert_allclose(h.per_interval(EDGES)[0][0], d)
    np.testing.assert_allclose(h.per_interval(EDGES)[1][0], e)
    frame = pd.DataFrame(rows).replace(np.inf, np.nan)
    frame.to_csv(tmp_path / "h.csv", index=False)
    np.testing.assert_allclose(bh.read_history(tmp_path / "h.csv").per_interval(EDGES)[1][0], e)
    with pytest.raises(bh.SpecError, match="the analysis cuts make"):
        h.per_interval([0.0, 6.0, np.inf])
    overall = bh.History([{"study": "y", "source": "s", "events": 10, "exposure": 100}])
    with pytest.raises(bh.SpecError, match="per-interval MAP prior needs events and exposure"):
        bh.map_prior(overall, cuts=CUTS)
    with pytest.raises(bh.SpecError, match="without gaps"):
        bh.History([{**rows[0]}, {**rows[2]}])
    with pytest.raises(bh.SpecError, match="mixes per-interval rows"):
        bh.History([rows[0], {"study": "x", "source": "table 3", "events": 1,
                               "exposure": 10}])


def test_per_interval_prior_in_the_piecewise_model(interval_prior, tmp_path):
    """On the MAP's own cuts with independent interval priors: a trial whose control arm
    agrees with the history has, in every interval, a robust weight below its prior 0.2 and
    a narrower posterior than without borrowing; the prior goes into the spec as an
    IntervalMixture and back."""
    robust = interval_prior.robustify(0.2)
    opts = dict(cuts=CUTS, baseline_prior="independent", site_effect="none")
    model = bh.PiecewiseExponential(**opts, priors={"log_baseline_hazard": robust})
    spec = bh.load_spec(bh.dump_spec(model.spec))
    assert spec.priors == model.spec.priors
    trial = control_trial(0.078, seed=21, n=130)
    fit = model.fit(trial, random_seed=3)
    ref = bh.PiecewiseExponential(**opts).fit(trial, random_seed=3)
    table = bh.borrowing_report(fit, robust, reference=ref)
    assert list(table.columns) == robust.interval_labels()
    assert (table.loc["robust weight: posterior"] < 0.2).all()
    assert (table.loc["posterior SD ratio (with / without)"] < 0.95).all()
    assert (table.loc["Box prior-predictive p-value"] > 0.05).all()
    assert fit.mixture_weights()["log_baseline_hazard"].shape == (3, robust.mixture.weights.shape[1])


def test_per_interval_prior_only_where_it_fits(interval_prior):
    with pytest.raises(bh.ModelError, match="baseline_prior='independent'"):
        bh.PiecewiseExponential(cuts=CUTS, priors={"log_baseline_hazard": interval_prior})
    with pytest.raises(bh.ModelError, match="same cuts"):
        bh.PiecewiseExponential(cuts=[3.0, 10.0], baseline_prior="independent",
                                priors={"log_baseline_hazard": interval_prior})
    with pytest.raises(bh.ModelError, match="same cuts"):
        bh.PiecewiseExponential(baseline_prior="independent",
                                priors={"log_baseline_hazard": interval_prior})
    with pytest.raises(bh.ModelError, match="per-interval log hazards"):
        bh.ExponentialPH(priors={"log_lambda": interval_prior})


def test_per_interval_forest_plot(interval_prior):
    fig = bh.plot_map_prior(interval_prior.robustify(0.2), trial=control_trial(0.08, 5))
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 3 and "interval [0, 4)" in panels[0].get_title()
    labels = [t.get_text() for t in panels[0].get_yticklabels()]
    assert len(labels) == 4 + 3 and any("robust MAP" in x for x in labels)


def test_interval_priors_from_a_spec_are_checked_against_the_model(interval_prior):
    """A per-interval prior written into a spec (no MAPPrior object to check it) still
    meets the family's check when the model meets the data: wrong number of intervals or
    the random walk are named errors, not shape errors from inside PyTensor."""
    mix = interval_prior.mixture.to_dict()
    trial = control_trial(0.08, 2)
    wrong_cuts = bh.PiecewiseExponential(cuts=[6.0], baseline_prior="independent",
                                         site_effect="none",
                                         priors={"log_baseline_hazard": mix})
    with pytest.raises(bh.ModelError, match="has 3 intervals; these cuts"):
        wrong_cuts.fit(trial, draws=100, tune=100, check=False)
    walk = bh.PiecewiseExponential(cuts=CUTS, site_effect="none",
                                   priors={"log_baseline_hazard": mix})
    with pytest.raises(bh.ModelError, match="baseline_prior='independent'"):
        walk.fit(trial, draws=100, tune=100, check=False)
    with pytest.raises(bh.ModelError, match="only the piecewise"):
        bh.WeibullPH(site_effect="none", priors={"log_lambda": mix}).fit(
            trial, draws=100, tune=100, check=False)
