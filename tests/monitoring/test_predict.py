"""Predictions of the trial's future: conditional simulation, event timing and PPoS.

Every fit here is the plan's primary model (piecewise exponential, 6 sites, random site
effects), so the whole module shares one compiled sampler.
"""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayes_hcc as bh
from bayes_hcc.families.piecewise import PiecewiseFamily
from bayes_hcc.families.weibull import WeibullFamily
from bayes_hcc.monitoring.plan import plan_from_dict
from bayes_hcc.monitoring.predict import FutureSimulator, conditional_event_times

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "models" / "monitoring.toml"
#: Refits for PPoS in tests: 2 x 400 draws. P(HR < 1) then has an MCSE below 0.01, small
#: next to the spread of P over completed trials that the PPoS averages.
REFIT = {"draws": 400, "tune": 400, "chains": 2}


@pytest.fixture(scope="module")
def look1(example_trial):
    return bh.interim_analysis(example_trial, bh.load_plan(PLAN), look=1, fast=True,
                               random_seed=11)


@pytest.mark.parametrize("family, params", [
    (WeibullFamily(), {"log_lambda": np.array([-2.2]), "log_shape": np.array([0.25])}),
    (PiecewiseFamily((3.0, 6.0, 12.0), "independent"),
     {"log_baseline_hazard": np.log([[0.05, 0.12, 0.08, 0.2]])}),
])
def test_residual_times_follow_the_closed_form_conditional_survival(family, params):
    """Given survival to t0, P(T > t | T > t0) = exp(-(H0(t) - H0(t0)) exp(eta)). The
    closed form is computed from ``cumhaz`` alone; Kolmogorov-Smirnov on 4000 draws with
    p > 0.01 (a correct sampler would fail for 1 seed in 100; the seed is fixed)."""
    rng = np.random.default_rng(3)
    n, t0, eta = 4000, np.full(4000, 5.0), np.full(4000, -0.4)
    t = conditional_event_times(family, params, eta, t0, rng.exponential(size=n))
    assert np.all(t > t0)
    h = lambda x: family.cumhaz(params, np.atleast_1d(x))[0]  # noqa: E731
    # Probability integral transform with the closed-form conditional survival
    u = np.exp(-(h(t) - h(5.0)) * np.exp(-0.4))
    assert stats.kstest(u, "uniform").pvalue > 0.01


def test_conditional_simulation_never_shortens_observed_follow_up(look1):
    plan = look1.plan
    sim = FutureSimulator(look1.data, look1.fit, plan.prediction)
    ep = look1.data.endpoint("os")
    assert sim.at_risk.sum() > 0 and ep.n_events == sim.event.sum()
    rng = np.random.default_rng(5)
    for s in sim.draws(25, rng):
        completed = sim.simulate(int(s), rng)
        assert len(completed["entry"]) == plan.prediction.sample_size  # accrual completed
        day, reached = sim.final_day(completed, plan.final)
        assert reached and day >= sim.cut_day
        final = sim.completed_trial(completed, day).endpoint("os")
        n0 = len(ep)
        t, e = final.time[:n0], final.event[:n0]
        assert np.all(t >= ep.time - 1e-12)  # never shortened
        assert np.array_equal(t[ep.event == 1], ep.time[ep.event == 1])  # deaths kept
        assert np.all(e[ep.event == 1] == 1)
        lost = ~sim.at_risk & (ep.event == 0)
        assert np.array_equal(t[lost], ep.time[lost]) and not e[lost].any()
        # the look is the day of the 100th death (deaths on the same day all count, as for
        # a real cut); the day before, fewer than 100 were known
        assert final.n_events >= plan.final.events
        assert sim.completed_trial(completed, day - 1).endpoint("os").n_events < 100


def test_event_date_prediction(look1, example_trial):
    """The example trial continued past look 1, so the actual dates of the 70th and 100th
    events are known: each lies inside its 95% predictive interval (one realisation, so a
    miss has probability 5% per target for a calibrated predictor; the slow test checks
    calibration over many trials)."""
    pred = look1.predict_dates(n_sims=1000)
    actual = example_trial.events_by_date("os")
    assert list(pred.index) == [70, 100]
    for k in (70, 100):
        date = actual.iloc[k - 1].normalize()
        assert pred.loc[k, "q0.025"] <= date <= pred.loc[k, "q0.975"]
        assert pred.loc[k, "q0.025"] >= look1.cut_date
    assert (pred["P(not reached)"] == 0).all()
    # Counts already reached report their actual date; the same seed, the same prediction
    plan = look1.plan.prediction
    known = bh.predict_event_dates(look1.data, look1.fit, [30, 70], n_sims=200,
                                   prediction=plan)
    assert known.loc[30, "q0.5"] == look1.data.events_by_date("os").iloc[29].normalize()
    again = bh.predict_event_dates(look1.data, look1.fit, [30, 70], n_sims=200,
                                   prediction=plan)
    assert known.equals(again)



def test_event_dates_of_a_plan_whose_later_looks_are_at_dates(look1):
    """When every later look is at a calendar date there is no date to predict: a named
    error lists those looks and says how to predict a count's date, which then works."""
    import dataclasses

    plan = plan_from_dict({"analysis": "primary_os.toml",
                           "looks": [{"events": 40, "efficacy": 0.999},
                                     {"date": "2019-01-31", "efficacy": 0.995}],
                           "final": {"date": "2019-12-31", "success": 0.975},
                           "prediction": {"sample_size": 130}},
                          base_dir=ROOT / "models")
    look = dataclasses.replace(look1, plan=plan)
    with pytest.raises(bh.BayesHCCError, match=r"at dates: interim 2 \(2019-01-31\), final "
                       r"\(2019-12-31\): predict_events\(\) .*predict_dates\(events=\[\.\.\.\]\)"):
        look.predict_dates()
    pred = look.predict_dates(events=[100], n_sims=200)
    assert list(pred.index) == [100] and pred.loc[100, "P(not reached)"] == 0
    assert pred.loc[100, "q0.025"] > look1.cut_date
    with pytest.raises(bh.TrialDataError, match=r"look 'interim 2' is on 2019-01-31, after the "
                       r"data cut 2018-06-06; the look has not happened yet"):
        bh.interim_analysis(look1.data, plan, look=2, fast=True)
    counts = look.predict_events(n_sims=200)  # the plan's later dates
    assert [str(d.date()) for d in counts.index] == ["2019-01-31", "2019-12-31"]
    with pytest.raises(bh.BayesHCCError, match="no later look of the plan is at a calendar"):
        look1.predict_events()


def test_event_count_prediction(look1, example_trial):
    """The example trial continued past look 1, so its OS events by later dates are known:
    each count lies inside its 95% predictive interval (one realisation, as for the dates);
    a date before the cut gives the count observed by then in every future; and each
    future's count is the number of events the final analysis at that date would count
    (the completed trial cut there, rebuilt here from the same futures)."""
    dates = ["2018-03-31", "2018-12-31", "2019-06-30"]
    pred = look1.predict_events(dates, n_sims=1000, random_seed=2)  # the plan's accrual
    actual = example_trial.events_by_date("os").dt.normalize()
    for d in dates:
        n = int((actual <= pd.Timestamp(d)).sum())
        if pd.Timestamp(d) <= look1.cut_date:
            assert pred.loc[d, "q0.025"] == pred.loc[d, "q0.975"] == n  # known already
        else:
            assert pred.loc[d, "q0.025"] <= n <= pred.loc[d, "q0.975"], (d, n)
    assert (pred["mean"].diff().dropna() > 0).all()
    again = bh.predict_event_counts(look1.data, look1.fit, dates, n_sims=1000, random_seed=2,
                                    prediction=look1.plan.prediction)
    assert again.equals(pred)
    draws = pred.attrs["draws"]
    assert draws.shape == (1000, 3)
    sim = FutureSimulator(look1.data, look1.fit, look1.plan.prediction)
    rng = np.random.default_rng(2)
    picks = sim.draws(1000, rng)
    for i in range(5):  # the same futures, in the same order
        future = sim.simulate(int(picks[i]), rng)
        for j, d in enumerate(dates):
            day = (pd.Timestamp(d) - sim.origin) / np.timedelta64(1, "D")
            assert sim.completed_trial(future, day).endpoint("os").n_events == draws[i, j]
    with pytest.raises(bh.BayesHCCError, match="dates='soon'"):
        bh.predict_event_counts(look1.data, look1.fit, "soon")

def test_a_prediction_without_sample_size_warns_while_accrual_goes_on(look1):
    """At look 1 of the example trial patients are still being randomized (the last 23
    days before the cut, one every 5.5 days): a prediction without a sample_size adds no
    patient after the cut, so it says so and names the fix; with the planned total, or with
    the number randomized (accrual declared ended), it is silent. A gap of more than five
    mean gaps (under 1% likely while a Poisson accrual goes on) reads as accrual ended."""
    from bayes_hcc.monitoring.future import ACCRUING_GAPS, _warn_if_accruing

    with pytest.warns(bh.DataWarning, match=r"no sample_size, so no patient .* last "
                      r"randomization was 23 days before it .*sample_size': N"):
        bh.predict_event_dates(look1.data, look1.fit, [70], n_sims=50)
    n = len(look1.data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for size in (130, n):
            bh.predict_event_counts(look1.data, look1.fit, "2019-01-31", n_sims=50,
                                    prediction={"sample_size": size})
        _warn_if_accruing(ACCRUING_GAPS * 5.5 + 1, 5.5)
    with pytest.warns(bh.DataWarning, match="accrual looks ongoing"):
        _warn_if_accruing(ACCRUING_GAPS * 5.5, 5.5)


def _simulated_look(hr, seed):
    trial = bh.simulate_trial(hr_os=hr, random_seed=seed)
    plan = plan_from_dict({"analysis": "primary_os.toml",
                           "looks": [{"events": 40, "efficacy": 0.999}],
                           "final": {"events": 100, "success": 0.975},
                           "prediction": {"sample_size": 130, "n_sims": 20}},
                          base_dir=ROOT / "models")
    return bh.interim_analysis(trial, plan, look=1, fast=True, random_seed=seed)


@pytest.mark.parametrize("hr, expect", [(0.3, "near 1"), (3.0, "near 0")])
def test_ppos_near_one_for_overwhelming_and_near_zero_for_hopeless_evidence(hr, expect):
    res = _simulated_look(hr, seed=7)
    pp = res.ppos(refit=REFIT, random_seed=1)
    assert pp.n_sims == 20 and pp.method == "mcmc"
    if expect == "near 1":
        assert res.probabilities["P(HR < 1)"] > 0.99 and pp.ppos >= 0.9
    else:
        assert res.probabilities["P(HR < 1)"] < 0.05 and pp.ppos <= 0.1
    assert pp.mcse == pytest.approx(np.sqrt(pp.ppos * (1 - pp.ppos) / 20))


def test_normal_approximation_agrees_with_mcmc(look1):
    """Both methods see the same 30 completed trials (same seed). The approximation
    (site-stratified Cox + normal prior) tracks the MCMC final-analysis probability closely:
    mean |difference| < 0.03, and success decisions differ only near the 0.975 boundary
    (both probabilities within 0.04 of it: the approximation's largest error, measured 0.026,
    plus the MCMC refits' Monte Carlo error at 2 x 400 draws, about 0.01). Measured: mean
    0.010-0.015, 1-4 differing decisions of 30 depending on the look's draws."""
    mcmc = look1.ppos(n_sims=30, method="mcmc", refit=REFIT, random_seed=3)
    approx = look1.ppos(n_sims=30, method="normal", random_seed=3)
    assert mcmc.sims["final_date"].equals(approx.sims["final_date"])
    diff = approx.sims["P(HR < 1) final"] - mcmc.sims["P(HR < 1) final"]
    assert diff.abs().mean() < 0.03
    # Every MCMC refit reports the Monte Carlo error of its probability: for NUTS on this
    # model an indicator's effective sample size is within a factor of 4 of the 800 draws,
    # so the MCSE lies within 0.5-2 times the independent-draws error sqrt(p (1 - p) / 800)
    # (p away from 0 and 1, where a few tail draws make the MCSE itself unreliable).
    p, m = mcmc.sims["P(HR < 1) final"], mcmc.sims["MCSE P(HR < 1) final"]
    iid = np.sqrt(p * (1 - p) / 800)
    mid = (p > 0.02) & (p < 0.98)
    assert mid.sum() >= 5 and ((m[mid] > 0.5 * iid[mid]) & (m[mid] < 2 * iid[mid])).all()
    assert approx.sims["MCSE P(HR < 1) final"].isna().all()  # no MCMC, no Monte Carlo error
    unsettled = int(((p - 0.975).abs() < 2 * m).sum())
    assert mcmc.n_unsettled == unsettled and approx.n_unsettled == 0
    assert (f"{unsettled} refit(s) within 2 MCSE" in repr(mcmc)) == (unsettled > 0)
    differ = approx.sims["success"] != mcmc.sims["success"]
    final = bh.load_plan(PLAN).final.success
    for p in (approx.sims["P(HR < 1) final"][differ], mcmc.sims["P(HR < 1) final"][differ]):
        assert (p - final).abs().max() < 0.04 if differ.any() else True
    assert differ.sum() <= 6
    assert abs(approx.ppos - mcmc.ppos) <= 0.1


@pytest.mark.slow
def test_event_predictions_are_calibrated_over_simulated_trials():
    """100 trials simulated from the example trial's recipe (Weibull hazards of shape 1.2,
    HR 0.7, 6 sites, accrual over two years, 5% lost a year), each followed to the end (no
    administrative cut), analysed at the plan's first look (40 deaths) with the plan's own
    model (piecewise exponential) and prediction settings. What each trial then actually
    did, the dates of its 70th and 100th deaths and its deaths 6 and 12 months after the
    look, falls inside the 80% and 95% predictive intervals as often as they say.

    Tolerances: each coverage is a binomial share of 100 trials (SE 0.04 at 80%, 0.022 at
    95%): 80% intervals must cover 70-90% (2.5 SE), 95% intervals at least 89% (2.7 SE).
    The counts' randomized PIT values (P(count < actual) + U x P(count = actual), uniform
    for a calibrated predictor) must average within 3 SE (0.087) of 1/2. Measured on 200
    such trials: coverages 0.80-0.83 (80%) and 0.945 (95%); the 12-month count is on
    average 1.7 (SE 0.5) deaths above the predicted mean, because the model's last piece
    holds the hazard constant while the truth's keeps rising (with an exponential truth,
    111 trials, the same check gives -0.6, SE 0.7)."""
    plan = bh.load_plan(PLAN)
    rows = []
    for seed in range(1000, 1100):
        trial = bh.simulate_trial(hr_os=0.7, random_seed=seed, cut_date="2035-12-31")
        look = bh.interim_analysis(trial, plan, look=1, random_seed=seed)
        actual = trial.events_by_date("os").dt.normalize()
        dates = look.predict_dates(n_sims=1000, random_seed=seed)  # 70 and 100 deaths
        when = [(look.cut_date + pd.DateOffset(months=m)).normalize() for m in (6, 12)]
        counts = look.predict_events(when, n_sims=1000, random_seed=seed)
        row = {}
        for k in (70, 100):
            day = actual.iloc[k - 1]
            row[f"{k} deaths, 80%"] = dates.loc[k, "q0.1"] <= day <= dates.loc[k, "q0.9"]
            row[f"{k} deaths, 95%"] = dates.loc[k, "q0.025"] <= day <= dates.loc[k, "q0.975"]
        rng = np.random.default_rng(seed)
        for j, d in enumerate(when):
            n, x = int((actual <= d).sum()), counts.attrs["draws"][:, j]
            row[f"count {j}, 80%"] = counts.loc[d, "q0.1"] <= n <= counts.loc[d, "q0.9"]
            row[f"count {j}, 95%"] = counts.loc[d, "q0.025"] <= n <= counts.loc[d, "q0.975"]
            row[f"count {j}, PIT"] = (x < n).mean() + rng.uniform() * (x == n).mean()
        rows.append(row)
    table = pd.DataFrame(rows).mean()
    for name, share in table.items():
        if name.endswith("80%"):
            assert 0.70 <= share <= 0.90, (name, share)
        elif name.endswith("95%"):
            assert share >= 0.89, (name, share)
        else:
            assert abs(share - 0.5) <= 3 * np.sqrt(1 / 12 / len(rows)), (name, share)


@pytest.mark.slow
def test_screened_ppos_refits_only_near_the_threshold_and_decides_as_the_posterior(
        look1, monkeypatch):
    """method="fast" on the same 60 completed trials as MCMC (same seed): the pilot
    completions (batches of 20 until 20 of them can calibrate: at this look most completed
    trials have P(HR < 1) so near 1 that MCMC's estimate rests on a handful of draws) are
    MCMC refits identical to the reference's (same data, same refit seed), so are the
    screened completions sent to MCMC; those decided by the Laplace approximation are
    farther than the calibrated margin from the success threshold after the bias
    correction.

    Their decisions are checked against the posterior itself, not only against one short
    MCMC run: each screened completion is refitted with 4 x 5000 draws, and the
    approximation's decision must be the long run's wherever the long run is more than 3 of
    its MCSEs from the threshold (nearer, the posterior's own decision is not resolved).
    Against the short reference run (2 x 1000 draws) at most 2 decisions may differ: the
    calibration expects under 0.1% of them to, and that run's Monte Carlo error near the
    threshold can flip one (it did: completion 58, short run 0.976, long runs 0.965,
    approximation 0.962, threshold 0.975)."""
    from bayes_hcc.models.from_spec import fit_spec
    from bayes_hcc.monitoring import predict

    completed = {}  # refit seed -> (spec, the completed trial the refit reads)
    original = predict._final_analysis

    def recording(payload):
        spec, data, seed = payload[:3]
        completed[seed] = (spec, data)
        return original(payload)

    monkeypatch.setattr(predict, "_final_analysis", recording)  # workers=1: in-process
    refit = {**REFIT, "draws": 1000}  # 2,000 draws resolve P(HR < 1) up to 0.995
    mcmc = look1.ppos(n_sims=60, method="mcmc", refit=refit, random_seed=3)
    fast = look1.ppos(n_sims=60, method="fast", pilot=20, refit=refit, random_seed=3)
    assert fast.method == "fast" and fast.sims["final_date"].equals(mcmc.sims["final_date"])
    s = fast.settings["screening"]
    n_pilot = s["pilot_completions"]
    assert n_pilot % 20 == 0 and s["n_pilot"] >= 20 and s["completions_screened"] == \
        60 - n_pilot > 0
    by_mcmc = (fast.sims["decided_by"] == "mcmc").to_numpy()
    assert by_mcmc[:n_pilot].all()
    np.testing.assert_array_equal(fast.sims["P(HR < 1) final"][by_mcmc],
                                  mcmc.sims["P(HR < 1) final"][by_mcmc])
    assert s["share_sent_to_mcmc"] == pytest.approx(by_mcmc[n_pilot:].mean())
    success = look1.plan.final.success
    z = stats.norm.ppf(fast.sims["P(HR < 1) final"][~by_mcmc])  # bias-corrected already
    assert (np.abs(z - stats.norm.ppf(success)) > s["margin"]).all()
    differ = (fast.sims["success"] != mcmc.sims["success"]).to_numpy()
    assert not (differ & by_mcmc).any() and differ.sum() <= 2
    unresolved = 0
    for i in np.flatnonzero(~by_mcmc):
        spec, data = completed[int(fast.sims.loc[i, "seed"])]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            long = fit_spec(spec, data, check=False, random_seed=1000 + int(i), draws=5000,
                            tune=1000, chains=4, log_likelihood=False)
        p = bh.prob_superiority(long, 1.0)
        if abs(p.probability - success) <= 3 * p.mcse:
            unresolved += 1
            continue
        assert (p.probability > success) == bool(fast.sims.loc[i, "success"]), (i, p)
    assert unresolved <= 2  # the margin keeps screened completions away from the threshold
    with pytest.raises(bh.BayesHCCError, match="pilot=0"):
        look1.ppos(n_sims=40, method="fast", pilot=0)


def test_a_screened_ppos_reuses_an_earlier_calibration(example_trial):
    """A later look's screened PPoS may reuse an earlier one's margin calibration (same
    plan, refit settings, completion model and target) instead of running a pilot: every
    completion is screened with those margins, the report says whose they are, and the
    MCMC-decided completions are the exact method's refits; a calibration made under other
    settings, or no screened calibration at all, is a named error."""
    # the second look (70 events): enough completions end where MCMC can calibrate
    look = bh.interim_analysis(example_trial, bh.load_plan(PLAN), look=2, fast=True,
                               random_seed=12)
    first = look.ppos(n_sims=40, method="fast", pilot=20, refit=REFIT, random_seed=5)
    assert first.calibration is not None
    again = look.ppos(n_sims=40, method="fast", refit=REFIT, random_seed=6,
                       calibration=first)
    s = again.settings["screening"]
    assert s["pilot_completions"] == 0 and s["completions_screened"] == 40
    assert s["calibration_from"].endswith(str(first.cut_date.date()))
    assert s["margins_by_threshold"] == first.settings["screening"]["margins_by_threshold"]
    assert again.calibration is first.calibration
    exact = look.ppos(n_sims=40, method="mcmc", refit=REFIT, random_seed=6)
    by_mcmc = (again.sims["decided_by"] == "mcmc").to_numpy()
    np.testing.assert_array_equal(again.sims["P(HR < 1) final"][by_mcmc],
                                  exact.sims["P(HR < 1) final"][by_mcmc])
    z = stats.norm.ppf(again.sims["P(HR < 1) final"][~by_mcmc])
    margin = first.calibration.margin_for(stats.norm.ppf(look.plan.final.success))
    assert (np.abs(z - stats.norm.ppf(look.plan.final.success)) > margin).all()
    with pytest.raises(bh.BayesHCCError, match="another refit"):
        look.ppos(n_sims=5, method="fast", refit={**REFIT, "draws": 300}, calibration=first)
    with pytest.raises(bh.BayesHCCError, match="another target"):
        look.ppos(n_sims=5, method="fast", refit=REFIT, target=0.01, calibration=first)
    with pytest.raises(bh.BayesHCCError, match="another settle_draws"):
        look.ppos(n_sims=5, method="fast", refit=REFIT, settle_draws=2000,
                  calibration=first)
    with pytest.raises(bh.BayesHCCError, match="method='fast'"):
        look.ppos(n_sims=5, method="mcmc", refit=REFIT, calibration=first)
    with pytest.raises(bh.BayesHCCError, match="earlier"):
        look.ppos(n_sims=5, method="fast", refit=REFIT, calibration=exact)


def test_screened_ppos_without_enough_pilots_is_the_exact_method(look1):
    """Too few completions to calibrate a margin: every one is refitted by MCMC, the PPoS
    is the exact method's on the same completions, and the report says so."""
    fast = look1.ppos(n_sims=8, method="fast", pilot=5, refit=REFIT, random_seed=4)
    mcmc = look1.ppos(n_sims=8, method="mcmc", refit=REFIT, random_seed=4)
    assert fast.ppos == mcmc.ppos and (fast.sims["decided_by"] == "mcmc").all()
    assert fast.settings["screening"]["completions_screened"] == 0
    assert "every completion was refitted by MCMC" in fast.settings["screening"]["note"]


@pytest.mark.slow
def test_screened_ppos_agrees_with_mcmc_at_three_interim_cuts(example_trial):
    """Acceptance of #27: the PPoS of the example trial from 500 completions at 40, 60 and
    80 OS events (final analysis at 100), screened vs MCMC with the plan's refit settings
    on the same completions: within 2 MCSE of the exact PPoS (they differ only where a
    screened decision flipped, expected in under 0.1% of the screened completions)."""
    from bayes_hcc.monitoring.plan import plan_from_dict

    looks = [{"events": k, "efficacy": 0.999} for k in (40, 60, 80)]
    plan = plan_from_dict({"analysis": "primary_os.toml", "looks": looks,
                           "final": {"events": 100, "success": 0.975},
                           "prediction": {"sample_size": 130, "n_sims": 500}},
                          base_dir=ROOT / "models")
    for i, k in enumerate((40, 60, 80), start=1):
        look = bh.interim_analysis(example_trial, plan, look=i, fast=True, random_seed=k)
        exact = look.ppos(method="mcmc", random_seed=k, workers=2)
        fast = look.ppos(method="fast", random_seed=k, workers=2)
        assert abs(fast.ppos - exact.ppos) <= 2 * max(exact.mcse, 1 / 500), (k, fast, exact)
        assert fast.settings["screening"]["share_sent_to_mcmc"] < 1


def test_ppos_futility_rule_at_a_look(example_trial):
    plan = plan_from_dict({"analysis": "primary_os.toml",
                           "looks": [{"events": 40, "futility_ppos": 0.999}],
                           "final": {"events": 100, "success": 0.975},
                           "prediction": {"sample_size": 130, "n_sims": 50,
                                          "method": "normal"}},
                          base_dir=ROOT / "models")
    res = bh.interim_analysis(example_trial, plan, look=1, fast=True, random_seed=11)
    p = res.probabilities["PPoS"]
    assert res.ppos_result.n_sims == 50 and 0 <= p <= 1
    assert res.rule_decision == ("stop for futility" if p < 0.999 else "continue")
    with pytest.raises(bh.BayesHCCError, match="PPoS futility rule"):
        bh.decide(res.fit, plan.look(1))


def test_prediction_errors_are_clear(look1, example_trial):
    with pytest.raises(bh.BayesHCCError, match="already hold"):
        bh.predictive_probability(example_trial, look1.plan, fit=look1.fit)
    with pytest.raises(bh.BayesHCCError, match="not made on these data"):
        bh.predict_event_dates(example_trial, look1.fit, 100)
    with pytest.raises(bh.BayesHCCError, match="positive whole event counts"):
        bh.predict_event_dates(look1.data, look1.fit, "100")
    with pytest.raises(bh.BayesHCCError, match=r"predict_event_counts: dates='2019-06' has no "
                       "day"):  # was June 1st
        bh.predict_event_counts(look1.data, look1.fit, "2019-06")
    with pytest.raises(bh.BayesHCCError, match=r"predict_event_dates: probs=\(50,\) must be "
                       "quantile levels"):  # failed inside numpy
        bh.predict_event_dates(look1.data, look1.fit, 100, probs=(50,))
    with pytest.raises(bh.BayesHCCError, match="n_sims=0"):
        look1.ppos(n_sims=0, method="normal")
    with pytest.raises(bh.BayesHCCError, match="target='0.1%' must be a share"):
        look1.ppos(n_sims=50, method="fast", target="0.1%")
    # the screening's settings with another method were ignored without a word
    with pytest.raises(bh.BayesHCCError, match=r"predictive_probability: pilot is for the "
                       r"screening of method='fast', and method='normal' has none"):
        look1.ppos(n_sims=50, method="normal", pilot=20)
    # and the refits' settings with the normal approximation, which refits nothing
    with pytest.raises(bh.BayesHCCError, match=r"predictive_probability: refit and "
                       r"settle_draws are for the MCMC refits of the completed trials, and "
                       r"method='normal' analyses each with the normal approximation: pass "
                       r"method='mcmc' or 'fast', or leave them out"):
        look1.ppos(n_sims=50, method="normal", refit={"draws": 500}, settle_draws=4000)
    with pytest.raises(bh.BayesHCCError, match="below the"):
        bh.predict_event_dates(look1.data, look1.fit, 100, prediction={"sample_size": 10})


def test_a_ppos_completes_from_the_plan_s_own_analysis(look1):
    """Completions are drawn from the posterior of the plan's analysis and refitted with it.
    A fit of another endpoint given as fit= failed inside ("endpoint 'pfs' is not in these
    data"); a fit of another model (Weibull for a piecewise plan) drew the completions
    without a word."""
    rules = {"looks": [{"events": 40, "efficacy": 0.999}],
             "final": {"events": 125, "success": 0.975}}
    pfs = plan_from_dict({"analysis": "secondary_pfs.toml", **rules},
                         base_dir=ROOT / "models")
    with pytest.raises(bh.BayesHCCError, match=r"predictive_probability: fit= is a fit of "
                       r"OS; the plan's analysis 'secondary_pfs' is of PFS"):
        bh.predictive_probability(look1.data, pfs, fit=look1.fit, n_sims=5, method="normal")
    weibull = bh.apply_overrides(look1.plan.spec, {"family": "weibull_ph"})
    other = plan_from_dict({"analysis": weibull, **rules})
    with pytest.raises(bh.BayesHCCError, match=r"fit= is not a fit of the plan's analysis "
                       r"'primary_os' \(its spec hash differs\).*Leave fit out"):
        bh.predictive_probability(look1.data, other, fit=look1.fit, n_sims=5,
                                  method="normal")
    # the same analysis in another plan (other rules) is the plan's analysis
    same = plan_from_dict({"analysis": look1.plan.spec, **rules})
    pp = bh.predictive_probability(look1.data, same, fit=look1.fit, n_sims=5,
                                   method="normal", random_seed=1)
    assert pp.n_sims == 5


def test_settle_draws_refits_exactly_the_unsettled_completions(look1):
    """``settle_draws``: the completions whose refit (2 x 400 draws) puts P(HR < 1) within 2
    MCSE of the success threshold are refitted with four times the draws (same seed) and
    decided by that refit; every other completion keeps its refit unchanged. The settled
    refits' MCSE shrinks by about sqrt(4) = 2 (the effective sample size grows with the
    draws): each ratio within 0.3-0.8, the run-to-run spread of an indicator's effective
    sample size at these draws (measured 0.41-0.71). Bad values are named errors."""
    a = look1.ppos(n_sims=30, method="mcmc", refit=REFIT, random_seed=3)
    b = look1.ppos(n_sims=30, method="mcmc", refit=REFIT, random_seed=3, settle_draws=1600)
    pa, ma = a.sims["P(HR < 1) final"], a.sims["MCSE P(HR < 1) final"]
    pb, mb = b.sims["P(HR < 1) final"], b.sims["MCSE P(HR < 1) final"]
    expect = ((pa - look1.plan.final.success).abs() < 2 * ma).to_numpy()
    assert expect.sum() >= 2 and (b.sims["settled"].to_numpy() == expect).all()
    np.testing.assert_array_equal(pb[~expect], pa[~expect])
    ratio = (mb[expect] / ma[expect]).to_numpy()
    assert ((ratio > 0.3) & (ratio < 0.8)).all(), ratio
    assert b.settings["settle_draws"] == 1600 and b.n_unsettled < a.n_unsettled
    assert "settled" not in a.sims
    for bad in (0, 2.5, True):
        with pytest.raises(bh.BayesHCCError, match="settle_draws"):
            look1.ppos(n_sims=2, settle_draws=bad)


def test_completions_that_never_reach_the_final_event_count_are_said(look1):
    """A plan whose final count the completed trials may never reach: 125 deaths of 130
    patients with 60% a year lost to follow-up. Such a completion was analysed at its last
    event, with fewer, and the PPoS was shown as any other; now a DataWarning and the
    result's repr give their number (the sims table's ``events_reached``). A plan asking
    for more events than its sample size is refused when it is read."""
    plan = plan_from_dict({"analysis": "primary_os.toml",
                           "looks": [{"events": 40, "efficacy": 0.999}],
                           "final": {"events": 125, "success": 0.975},
                           "prediction": {"sample_size": 130, "dropout_per_year": 0.6}},
                          base_dir=ROOT / "models")
    with pytest.warns(bh.DataWarning, match=r"PPoS: \d+ of 30 completed trials never reach "
                      r"the final 125 OS events"):
        pp = bh.predictive_probability(look1.data, plan, fit=look1.fit, n_sims=30,
                                       method="normal", random_seed=2)
    short = int((~pp.sims["events_reached"]).sum())
    assert short > 0 and (pp.sims.loc[~pp.sims["events_reached"], "n_events"] < 125).all()
    assert f"{short} completion(s) never reached the final event count" in repr(pp)
    with pytest.raises(bh.SpecError, match=r"final: events = 140 exceeds "
                       r"prediction.sample_size = 130"):
        plan_from_dict({"analysis": "primary_os.toml",
                        "final": {"events": 140, "success": 0.975},
                        "prediction": {"sample_size": 130}}, base_dir=ROOT / "models")
