"""Operating characteristics of borrowing from simulate_design: with and without the MAP
prior on the same simulated trials, type I error at every true control median, Monte Carlo
intervals, the robust component's posterior weight, and the figure."""

from pathlib import Path

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.borrowing.operating import ROBUST, TYPE1_POWER
from bayes_hcc.monitoring.plan import plan_from_dict


#: 2 chains x 300 draws per look: these tests check the bookkeeping and the direction of
#: the robust weight, not the accuracy of the operating characteristics (slow test below).
FAST = {"draws": 300, "tune": 300, "chains": 2}


def exponential_plan(final_events=60):
    spec = {"name": "exponential_os", "endpoint": "os", "family": "exponential_ph",
            "site": {"effect": "none"}}
    return plan_from_dict({"name": "borrowing plan", "analysis": spec,
                           "final": {"events": final_events, "success": 0.975}})


@pytest.fixture(scope="module")
def design(robust):
    hist = np.log(2) / np.exp(robust.quantiles([0.5])[0])  # about 9 months
    return bh.borrowing_design(exponential_plan(), robust,
                               control_medians=(hist, 3 * hist), hrs=(1.0, 0.6),
                               n_trials=4, refit=FAST, workers=1, progress=False)


def test_design_table_has_type_i_error_everywhere(design):
    table = design.table()
    t1 = design.type_i_error()
    assert len(t1) == 2  # every true control median
    for analysis in ("borrowing", "no borrowing"):
        est = t1[("estimate", analysis)]
        assert ((t1[("mc_lower", analysis)] <= est) & (est <= t1[("mc_upper", analysis)])).all()
    # both analyses saw the same trials (same seeds)
    b, nb = design.borrowing.records, design.no_borrowing.records
    assert (b["seed"].to_numpy() == nb["seed"].to_numpy()).all()
    assert (b["true_log_hr"].to_numpy() == nb["true_log_hr"].to_numpy()).all()
    # the robust weight is recorded with borrowing only, and rises with the conflict
    w = table.xs(ROBUST, level="measure").xs("borrowing", level="analysis")
    agree = w[w["control_median"] < w["control_median"].max()]["estimate"].mean()
    conflict = w[w["control_median"] == w["control_median"].max()]["estimate"].mean()
    assert conflict > agree
    assert ROBUST not in table.xs("no borrowing", level="analysis").index.get_level_values(
        "measure")
    assert {TYPE1_POWER} <= set(table.index.get_level_values("measure"))


def test_design_figure(design):
    fig = bh.plot_borrowing_design(design)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert any("type I error" in t for t in titles) and any("power" in t for t in titles)
    assert any("robust" in t for t in titles)


def test_design_refuses_a_model_the_prior_does_not_fit(robust):
    plan = plan_from_dict({"name": "pwe", "analysis": "primary_os.toml",
                           "final": {"events": 60, "success": 0.975}},
                          base_dir=Path(__file__).resolve().parents[2] / "models")
    with pytest.raises(bh.SpecError, match="needs an exponential_ph"):
        bh.borrowing_design(plan, robust, n_trials=2)
    # the scenario grid's values are checked before any trial is simulated
    with pytest.raises(bh.BayesHCCError, match=r"borrowing_design: hrs='0.7' is text"):
        bh.borrowing_design(exponential_plan(), robust, hrs="0.7", n_trials=2)
    with pytest.raises(bh.BayesHCCError, match=r"control medians \[-1.0\] and hazard ratios "
                       r"\[0.7\] must be > 0"):
        bh.borrowing_design(exponential_plan(), robust, control_medians=-1, hrs=0.7)
    with pytest.raises(bh.BayesHCCError, match=r"pass a MAPPrior .*got str"):
        bh.borrowing_design(exponential_plan(), "robust")


def test_design_with_a_per_interval_prior():
    """A per-interval MAP prior runs in a piecewise plan on its own cuts (independent
    interval priors); other cuts are refused before anything is simulated."""
    from .test_interval_map import control_trial

    hist = bh.History([{"study": f"H{i}", "source": "simulated",
                        "trial": control_trial(r, i)} for i, r in enumerate([0.07, 0.09])])
    prior = bh.map_prior(hist, cuts=[6.0], draws=1000, random_seed=1).robustify(0.2)
    spec = {"name": "pwe_os", "endpoint": "os", "family": "piecewise_exponential",
            "options": {"cuts": [6.0], "baseline_prior": "independent"},
            "site": {"effect": "none"}}
    plan = plan_from_dict({"name": "p", "analysis": spec,
                           "final": {"events": 40, "success": 0.975}})
    res = bh.borrowing_design(plan, prior, control_medians=(9.0,), hrs=(1.0,), n_trials=2,
                              refit=FAST, workers=1, progress=False)
    assert res.borrowing.records["robust_weight"].notna().all()
    other = plan_from_dict({"name": "p", "analysis": {**spec, "options": {
        "cuts": [4.0], "baseline_prior": "independent"}},
        "final": {"events": 40, "success": 0.975}})
    with pytest.raises(bh.SpecError, match="same cuts"):
        bh.borrowing_design(other, prior, n_trials=2)


@pytest.mark.slow
def test_borrowing_gains_power_in_agreement_and_costs_type_i_error_in_conflict(robust):
    """The operating characteristics borrowing is chosen by, on 150 paired trials per
    scenario (the same trials analysed with and without the prior): with the true control
    median at the historical one, borrowing gains power at HR 0.6 (more trials succeed only
    with borrowing than only without); with a true control median 1.6x the historical one
    (the history makes the control look worse), borrowing raises the type I error at HR 1
    (the reverse count); and the robust component carries more posterior weight there."""
    hist = np.log(2) / np.exp(robust.quantiles([0.5])[0])
    design = bh.borrowing_design(exponential_plan(), robust,
                                 control_medians=(hist, 1.6 * hist), hrs=(1.0, 0.6),
                                 n_trials=150, refit=FAST, workers=2, progress=False)
    b, nb = design.borrowing.records, design.no_borrowing.records
    success = {"stop for efficacy", "success"}
    for (median, hr), sign in (((hist, 0.6), "gain"), ((1.6 * hist, 1.0), "inflation")):
        name = f"control median {median:g}, HR {hr:g}"
        sb = b.loc[b["scenario"] == name, "decision"].isin(success).to_numpy()
        snb = nb.loc[nb["scenario"] == name, "decision"].isin(success).to_numpy()
        only_with, only_without = int((sb & ~snb).sum()), int((~sb & snb).sum())
        assert only_with > only_without, (name, only_with, only_without)
    w = design.table().xs("posterior weight of the robust component", level="measure")
    w = w.xs("borrowing", level="analysis")
    assert w.loc[w["control_median"] > hist, "estimate"].min() > \
        w.loc[w["control_median"] == hist, "estimate"].max()
    t1 = design.type_i_error()
    assert len(t1) == 2 and t1.notna().all().all()
