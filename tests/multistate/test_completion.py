"""Completing a trial from the state each patient is in (``monitoring.illness_death``):
checked against closed forms with constant transition hazards, where every probability is
known, using a posterior that is a point mass at known parameters (no MCMC)."""

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bayes_hcc as bh
from bayes_hcc.families.exponential import ExponentialFamily
from bayes_hcc.monitoring.illness_death import IllnessDeathFutureSimulator
from bayes_hcc.monitoring.plan import Prediction
from bayes_hcc.multistate.likelihood import TRANSITIONS
from tests.helpers import complete_many

RATES = (0.10, 0.03, 0.12)  # progression, death without and after progression (per month)


def point_fit(trial, rates=RATES, log_hr=(0.0, 0.0, 0.0), scale="markov", draws=20,
              covariates=(), beta=()):
    """An IllnessDeathFit whose posterior is ``draws`` copies of known parameters
    (``beta``: each transition's coefficient per standardized covariate column)."""
    model = bh.IllnessDeath("exponential_ph", time_scale=scale, site_effect="none",
                            covariates=covariates)
    data = bh.IllnessDeathData.from_trial(trial, covariates=covariates)
    shape = (1, draws)
    post = {"log_hr": (("chain", "draw", "transition"),
                       np.broadcast_to(np.asarray(log_hr, float), shape + (3,)).copy())}
    for t, r in zip(TRANSITIONS, rates):
        post[f"{t}::log_lambda"] = (("chain", "draw"), np.full(shape, np.log(r)))
    for t, b in zip(TRANSITIONS, beta):
        post[f"{t}::beta"] = (("chain", "draw", "covariate"),
                              np.broadcast_to(np.atleast_1d(np.asarray(b, float)),
                                              shape + (len(np.atleast_1d(b)),)).copy())
    ds = xr.Dataset(post, coords={"transition": list(TRANSITIONS)})
    dt = xr.DataTree.from_dict({"posterior": ds, "sample_stats": xr.Dataset()})
    dt.attrs["data_fingerprint"] = trial.fingerprint
    fams = (ExponentialFamily(),) * 3
    return bh.IllnessDeathFit(dt, model, data, fams, [model.priors_for(f, t) for f, t in
                                                      zip(fams, TRANSITIONS)])


@pytest.fixture(scope="module")
def cut():
    trial = bh.datasets.load_example_trial()
    return trial.cut(pd.Timestamp("2019-01-31"), warn=False)


def simulator(cut, **kw):
    # accrual declared ended at the cut (sample_size = the patients randomized by then):
    # these tests complete the patients already in the trial
    return IllnessDeathFutureSimulator(cut, point_fit(cut, **kw), Prediction(
        sample_size=len(cut), dropout_per_year=0.0, followup_window_days=10_000))


def test_unseen_progression_probability_and_time(cut):
    """Progression-free at the last scan L = 2, alive at t = 5: with constant hazards
    P(progressed in between) = I / (I + exp(-(l1 + l2) t)), I = int_2^5 exp(-(l1 + l2) u)
    l1 exp(-l3 (5 - u)) du; 20,000 patients reproduce it within 4 MC SE, and the mean
    progression time among them the closed form's within 4 MC SE."""
    sim = simulator(cut)
    l1, l2, l3 = RATES
    n = 20_000
    rng = np.random.default_rng(1)
    params, _, _ = sim.fit.draw_params(0)
    zeros = [np.zeros(n)] * 3
    when = sim._unseen_progression(params, zeros, np.full(n, 2.0), np.full(n, 5.0), rng)
    u = np.linspace(2, 5, 200_001)
    dens = np.exp(-(l1 + l2) * u) * l1 * np.exp(-l3 * (5 - u))
    integral = np.trapezoid(dens, u)
    p = integral / (integral + np.exp(-(l1 + l2) * 5))
    went = np.isfinite(when)
    assert abs(went.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    mean_u = np.trapezoid(u * dens, u) / integral
    sd_u = np.sqrt(np.trapezoid((u - mean_u) ** 2 * dens, u) / integral)
    assert abs(when[went].mean() - mean_u) < 4 * sd_u / np.sqrt(went.sum())
    assert np.all((when[went] > 2) & (when[went] < 5))


@pytest.mark.parametrize("scale", ["markov", "semi_markov"])
def test_from_state0_competing_transitions(cut, scale):
    """From state 0 at t0: progression first with probability l1 / (l1 + l2); the death
    time after a progression is Exp(l3) later on either clock (constant hazard); the time
    in state 0 is Exp(l1 + l2)."""
    sim = simulator(cut, scale=scale)
    l1, l2, l3 = RATES
    n = 40_000
    rng = np.random.default_rng(2)
    params, _, _ = sim.fit.draw_params(0)
    t0 = np.full(n, 3.0)
    prog, death = sim._from_state0(params, [np.zeros(n)] * 3, t0, rng)
    went = np.isfinite(prog)
    p = l1 / (l1 + l2)
    assert abs(went.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    stay = np.where(went, prog, death) - 3.0
    assert abs(stay.mean() - 1 / (l1 + l2)) < 4 * (1 / (l1 + l2)) / np.sqrt(n)
    after = death[went] - prog[went]
    assert abs(after.mean() - 1 / l3) < 4 * (1 / l3) / np.sqrt(went.sum())


def test_a_seen_progression_is_dated_by_its_conditional_density_on_the_clock_reset_scale(cut):
    """Progression seen at a scan at R = 4 (the scan before at L = 2), alive at t0 = 4, and
    a death hazard after progression that falls with time since progression (Weibull,
    shape 0.5): when in (L, R] it happened matters. P(T > t | data) =
    int_L^R f0(u) S12(t - u) du / int_L^R f0(u) S12(t0 - u) du, f0(u) = l1 exp(-(l1 + l2) u),
    by scipy quadrature. 40,000 completions reproduce it within 4 MC SE at three times, and
    the drawn progression times' mean the conditional mean within 4 MC SE. Taking the
    interval's middle (what completions did) is 6-10 MC SE off at these times."""
    from scipy import integrate

    from bayes_hcc.families.weibull import WeibullFamily

    sim = simulator(cut, scale="semi_markov")
    sim.fit.families = (ExponentialFamily(), ExponentialFamily(), WeibullFamily())
    l1, l2, _ = RATES
    lam, k = 0.5, 0.5
    params = [{"log_lambda": np.log([l1])}, {"log_lambda": np.log([l2])},
              {"log_lambda": np.log([lam]), "log_shape": np.log([k])}]
    n, (lo, hi, t0) = 40_000, (2.0, 4.0, 4.0)
    zeros = [np.zeros(n)] * 3
    rng = np.random.default_rng(5)
    u = sim._seen_progression(params, zeros, np.full(n, lo), np.full(n, hi), np.full(n, t0),
                              rng)
    death = sim._after_progression(params, zeros[2], u, np.full(n, t0), rng)

    def f0_s12(t):
        return lambda v: l1 * np.exp(-(l1 + l2) * v - lam * (t - v) ** k)

    norm = integrate.quad(f0_s12(t0), lo, hi)[0]
    for t in (4.5, 5.0, 8.0):
        exact = integrate.quad(f0_s12(t), lo, hi)[0] / norm
        se = np.sqrt(exact * (1 - exact) / n)
        assert abs((death > t).mean() - exact) < 4 * se
        middle = np.exp(-lam * (t - 3) ** k + lam * (t0 - 3) ** k)
        assert abs(middle - exact) > 6 * se  # the test tells the two apart
    mean_u = integrate.quad(lambda v: v * f0_s12(t0)(v), lo, hi)[0] / norm
    sd_u = np.sqrt(integrate.quad(lambda v: (v - mean_u) ** 2 * f0_s12(t0)(v), lo, hi)[0]
                   / norm)
    assert abs(u.mean() - mean_u) < 4 * sd_u / np.sqrt(n)
    assert np.all((u > lo) & (u <= hi))
    # a progression date known exactly (the scan before on the same day) is kept
    same = sim._seen_progression(params, zeros, np.full(n, hi), np.full(n, hi),
                                 np.full(n, t0), rng)
    assert np.all(same == hi)


def test_completed_trials_and_ppos(cut):
    """Completed trials keep every observed death, add deaths only after each patient's
    last contact (on either clock: patients alive after a progression seen at a scan are
    among them), and a PPoS runs with the completion (normal final rule)."""
    os_ = cut.endpoint("os")
    n0 = len(os_)
    dead = os_.event.astype(bool)
    for scale in ("markov", "semi_markov"):
        sim = simulator(cut, scale=scale)
        done = sim.simulate(0, np.random.default_rng(3))
        np.testing.assert_allclose(done["death"][:n0][dead], sim.entry[dead] + sim.obs[dead])
        alive = ~dead & sim.at_risk
        assert (alive & np.isfinite(sim.prog_upper)).sum() > 5
        assert np.all(done["death"][:n0][alive] > sim.entry[alive] + sim.obs[alive])
    plan = bh.load_plan(Path(__file__).resolve().parents[2] / "models" / "monitoring.toml")
    pp = bh.predictive_probability(cut, plan, completion=point_fit(cut, log_hr=(-0.4, -0.36,
                                                                                 -0.36)),
                                   n_sims=20, method="normal", random_seed=4)
    assert 0 <= pp.ppos <= 1 and pp.settings["completion"].startswith("IllnessDeath(")
    with pytest.raises(bh.BayesHCCError, match="not made on these data"):
        bh.predictive_probability(bh.datasets.load_example_trial().cut(
            pd.Timestamp("2018-12-31"), warn=False), plan, completion=point_fit(cut),
            n_sims=5, method="normal")


def test_calibration_summary_scores_and_intervals():
    """Brier scores of the two PPoS against known outcomes, and their paired difference."""
    from bayes_hcc.validation.ppos_calibration import calibration_summary

    table = pd.DataFrame({"outcome": [True, False, True, False],
                          "ppos_os": [0.5, 0.5, 0.5, 0.5],
                          "ppos_illness_death": [0.9, 0.1, 0.8, 0.3]})
    s = calibration_summary(table)
    assert s.loc["OS-only PPoS", "Brier score"] == pytest.approx(0.25)
    assert s.loc["illness-death PPoS", "Brier score"] == pytest.approx(
        (0.01 + 0.01 + 0.04 + 0.09) / 4)
    d = s.loc["difference (OS-only - illness-death)"]
    assert d["Brier score"] == pytest.approx(0.25 - 0.0375)
    assert d["MC lower 95%"] < d["Brier score"] < d["MC upper 95%"]


def test_calibration_study_refuses_a_truth_it_cannot_use():
    """``truth=`` overrides the example recipe; the seed, cut and post-progression HR are
    the study's own, and a misspelt argument is named (before any trial is simulated)."""
    from bayes_hcc.validation.ppos_calibration import ppos_calibration_study

    with pytest.raises(bh.BayesHCCError, match="post_progression_hr"):
        ppos_calibration_study("unused.toml", truth={"post_progression_hr": 2.0})
    with pytest.raises(bh.BayesHCCError, match="hr_tpp"):
        ppos_calibration_study("unused.toml", truth={"hr_tpp": 0.5})


def test_a_patient_randomised_at_the_cut_contributes_nothing():
    """Follow-up 0 (randomised on the day of the cut): left out of the likelihood (its
    contribution is exactly 0); a death at time 0 is refused."""
    from bayes_hcc.families.weibull import WeibullFamily
    from bayes_hcc.multistate.likelihood import layout, loglik_numpy

    kw = dict(arm=[0, 1], site=None, prog_lower=[1.0, 0.0], prog_upper=[2.0, np.inf])
    d = bh.IllnessDeathData.from_arrays(time=[5.0, 0.0], death=[1, 0], **kw)
    fams = [WeibullFamily()] * 3
    lay = layout(d, fams, "markov")
    p = [{"log_lambda": np.array([-2.0]), "log_shape": np.array([np.log(0.7)])}] * 3
    ll = loglik_numpy(fams, p, [np.zeros((1, 2))] * 3, lay, 2)
    assert np.isfinite(ll).all() and ll[0, 1] == 0.0
    with pytest.raises(bh.TrialDataError, match="death at time 0"):
        bh.IllnessDeathData.from_arrays(time=[5.0, 0.0], death=[1, 1], **kw)


def test_medians_past_follow_up_are_labelled_as_extrapolation(cut):
    """With slow transitions the model's OS median lies far past the longest follow-up: it
    is labelled "beyond" (an extrapolation), while the median of fast transitions, inside
    follow-up, is "reached"; the follow-up is each arm's longest."""
    slow = point_fit(cut, rates=(0.01, 0.002, 0.004)).medians(thin=1, horizon=2000.0)
    fast = point_fit(cut).medians(thin=1)
    follow = slow.attrs["follow_up"]["os"]
    os_ = cut.endpoint("os")
    assert follow["sorafenib"] == pytest.approx(float(os_.time[os_.arm == 0].max()))
    for arm in ("sorafenib", "tace_sorafenib"):
        assert float(slow["os"].sel(arm=arm).median()) > follow[arm]
        assert slow.attrs["status"]["os"][arm] == "beyond"
        assert float(fast["os"].sel(arm=arm).median()) < follow[arm]
        assert fast.attrs["status"]["os"][arm] == "reached"


def test_a_median_past_the_grid_is_the_models_extrapolation_not_missing(cut):
    """An immature arm at an interim look: with slow transitions the OS median (about 220
    months) lies far past the medians' default grid (3x the longest follow-up, about 70
    months). It is found further out, as a single-endpoint fit's extrapolated median is,
    and equals the closed form's root (constant hazards: OS(t) = exp(-(l1 + l2) t) + l1 /
    (l1 + l2 - l3) (exp(-l3 t) - exp(-(l1 + l2) t))) within 0.05%: the far grid's steps are
    1.6%, and linear interpolation on them errs by far less. The difference and its P(> 0)
    are computed on every draw (they were NaN and biased towards 0 when a median was
    missing); the status says "beyond"."""
    from scipy.optimize import brentq

    rates = (0.01, 0.002, 0.004)
    med = point_fit(cut, rates=rates, log_hr=(-0.3, 0.0, 0.0)).medians(thin=1)
    assert float(3 * cut.endpoint("os").time.max()) < 80.0  # the grid's end
    for arm, hr in (("sorafenib", 1.0), ("tace_sorafenib", np.exp(-0.3))):
        l1, l2, l3 = rates[0] * hr, rates[1], rates[2]

        def os_minus_half(t):
            s0 = np.exp(-(l1 + l2) * t)
            return s0 + l1 / (l1 + l2 - l3) * (np.exp(-l3 * t) - s0) - 0.5

        root = brentq(os_minus_half, 1.0, 5000.0, xtol=1e-10)
        got = med["os"].sel(arm=arm).values
        assert root > 200.0 and np.allclose(got, root, rtol=5e-4), (arm, got[0], root)
        assert med.attrs["status"]["os"][arm] == "beyond"
    diff = med["os"].sel(arm="difference").values
    assert np.isfinite(diff).all() and (diff > 0).all()
    probs = point_fit(cut, rates=rates, log_hr=(-0.3, 0.0, 0.0)).prob_superiority()
    assert probs["median OS difference > 0"] == 1.0
    # ... and says that it rests on those extrapolated medians (the report shows the note)
    assert "median OS difference > 0" in probs.attrs["notes"]
    assert "sorafenib's median lies beyond its follow-up" in \
        probs.attrs["notes"]["median OS difference > 0"]
    assert "HR progression < 1" not in probs.attrs["notes"]
    fast = point_fit(cut).prob_superiority()
    assert fast.attrs["notes"] == {}   # every median reached: nothing to say


def test_the_endpoint_table_does_not_print_an_extrapolated_median_as_an_estimate(cut):
    """As ``bh.summarize``: a median beyond follow-up is blank ("not reached"), and so is
    the difference ("not estimable"); ``extrapolate=True`` shows the model's values, noted.
    Medians within follow-up are untouched either way."""
    slow = point_fit(cut, rates=(0.01, 0.002, 0.004))
    table = slow.endpoint_table()
    shown = slow.endpoint_table(extrapolate=True)
    med = slow.medians()
    for arm in ("sorafenib", "tace_sorafenib"):
        row = table.loc[("OS", f"median {arm}")]
        assert np.isnan(row["median"]) and np.isnan(row["upper"])
        assert row["note"].startswith("not reached") and row["status"] == "beyond"
        assert shown.loc[("OS", f"median {arm}"), "median"] == pytest.approx(
            float(med["os"].sel(arm=arm).median()))
        assert shown.loc[("OS", f"median {arm}"), "note"].startswith("extrapolated")
    diff = table.loc[("OS", "median difference")]
    assert diff[["median", "lower", "upper", "P(> 0)"]].isna().all()
    assert diff["note"] == "not estimable: a median is not reached"
    assert shown.loc[("OS", "median difference"), "P(> 0)"] == pytest.approx(
        float((med["os"].sel(arm="difference") > 0).mean()))
    fast = point_fit(cut).endpoint_table(tau=12.0)
    assert (fast["status"].isin(["reached", ""])).all()
    assert not fast["note"].str.contains("not reached|extrapolated|not estimable").any()
    assert fast[["median", "lower", "upper"]].notna().all().all()
    assert "RMST difference (12 months)" in fast.xs("OS").index


def test_an_arm_without_scans_has_no_pfs_or_ttp_follow_up(cut):
    """An interim cut at which one arm has had no scan yet: its PFS and TTP are known only
    at time 0, so their RMST is not estimable whatever tau; said so, not computed to 0 or
    to the OS horizon (the table and the probabilities used the OS follow-up before)."""
    frame = cut.to_frame()
    treated = frame["arm"] == "tace_sorafenib"
    frame = frame[["patient_id", "site", "arm", "os_time", "os_event"]].assign(
        ttp_time=np.where(treated, 0.0, cut.endpoint("ttp").time),
        ttp_event=np.where(treated, 0, cut.endpoint("ttp").event))
    with pytest.warns(bh.DataWarning, match="no events"):
        trial = bh.read_trial(frame)
    fit = point_fit(trial)
    assert fit.follow_up_by_arm("ttp")["tace_sorafenib"] == 0.0
    table = fit.endpoint_table(tau=6.0)
    row = table.loc[("TTP", "RMST difference")]
    assert np.isnan(row["median"]) and row["note"].startswith("not estimable")
    assert "RMST difference (6 months)" in table.xs("OS").index
    # PFS is known to each death without a progression seen (the trial's PFS counts it)
    assert fit.follow_up_by_arm("pfs")["tace_sorafenib"] > 6.0
    p = fit.prob_superiority(tau=6.0)
    assert np.isfinite(p).all() and "RMST PFS (6) difference > 0" in p.index


def pfs_simulator(cut, endpoint="pfs", **kw):
    return IllnessDeathFutureSimulator(cut, point_fit(cut, **kw), Prediction(
        sample_size=len(cut), dropout_per_year=0.0, followup_window_days=10_000), endpoint)


def _death_share_by_hand(l1, l2, l3, n, rng, days=30.4375):
    """The same rule written independently, for constant hazards from 3 months: latent
    progression and death, scans at round(91 + k x 60.875) days (k >= 1), a progression seen
    at the first scan on or after its day if that scan is not after the death day."""
    t01, t02 = 3 + rng.exponential(1 / l1, n), 3 + rng.exponential(1 / l2, n)
    prog = t01 < t02
    death = np.where(prog, t01 + rng.exponential(1 / l3, n), t02)
    p_day = np.ceil(t01 * days)
    d_day = np.maximum(np.ceil(death * days), 92.0)
    k = np.maximum(np.ceil((p_day - 91.0) / (2 * days)), 1.0)
    scan = np.round(91.0 + k * 2 * days)
    return 1.0 - np.mean(prog & (scan <= d_day))


@pytest.mark.parametrize("l3", [1e-4, 1.0, 30.0])
def test_pfs_completion_records_progression_at_scans_or_death(cut, l3):
    """40,000 patients progression-free and alive at their last scan (3 months, day 91 on
    their grid), completed for a PFS final rule. The share of PFS events that are deaths
    agrees within 4 MC SE with the rule written independently (and, with almost no death
    after progression, with the closed form l2 / (l1 + l2)); a progression is seen at a
    scan of the patient's 2-monthly grid, one interval (60-61 days) after the scan before
    it, never before the latent progression; a death is an exact event."""
    sim = pfs_simulator(cut, rates=(0.10, 0.03, l3))
    n = 40_000
    rng = np.random.default_rng(5)
    params, _, _ = sim.fit.draw_params(0)
    t0 = np.full(n, 3.0)
    prog, death = sim._state_paths(params, [np.zeros(n)] * 3, t0.copy(), t0, rng)
    entry = np.zeros(n)
    death_day = np.maximum(np.ceil(death * sim.days), np.floor(3.0 * sim.days) + 1)
    known, lower, _ = sim._scans_seen(entry, prog, death_day, np.full(n, np.inf),
                                      np.full(n, 91.0))
    assert np.all(np.isfinite(known))  # no censoring: everyone has a PFS event
    is_death = known == lower
    p = _death_share_by_hand(0.10, 0.03, l3, n, np.random.default_rng(8))
    se = np.sqrt(2 * max(p * (1 - p), 1e-4) / n)  # two independent samples
    assert abs(is_death.mean() - p) < 4 * se
    if l3 < 1e-3:
        closed = 0.03 / 0.13
        assert abs(is_death.mean() - closed) < 4 * np.sqrt(closed * (1 - closed) / n)
    np.testing.assert_array_equal(known[is_death], death_day[is_death])
    seen = ~is_death
    if seen.any():
        gaps = known[seen] - lower[seen]
        assert set(np.unique(gaps)) <= {60.0, 61.0}
        steps = (known[seen] - 91.0) / sim.scan_days
        np.testing.assert_allclose(steps, np.round(steps), atol=0.02)
        assert np.all(known[seen] >= np.ceil(prog[seen] * sim.days))


def _final_rule_plan(tmp_path, endpoint: str, events: int, n_sims: int) -> Path:
    """A plan file whose final rule is on ``endpoint`` (the shipped secondary spec), with
    the normal-approximation PPoS."""
    models = Path(__file__).resolve().parents[2] / "models"
    path = tmp_path / f"{endpoint}_plan.toml"
    path.write_text(f'name = "{endpoint}"\n'
                    f'analysis = "{models / f"secondary_{endpoint}.toml"}"\n'
                    f'[final]\nevents = {events}\nsuccess = 0.975\n'
                    '[prediction]\nsample_size = 130\ndropout_per_year = 0.05\n'
                    f'followup_window_days = 91\nn_sims = {n_sims}\nmethod = "normal"\n')
    return path


def test_ttp_completion_records_progression_at_scans_and_censors_at_death(cut):
    """The same 40,000 patients completed for a TTP final rule (it was refused: the
    single-endpoint TTP completion does not model death, which censors TTP): a progression
    seen at a scan before death is a TTP event, with the share the rule written
    independently gives (1 - its share of PFS events that are deaths), at the same scans as
    for PFS; a death before a progression is seen is no event (censored at the last scan
    done before it)."""
    sim = pfs_simulator(cut, "ttp", rates=(0.10, 0.03, 1.0))
    n = 40_000
    rng = np.random.default_rng(5)
    params, _, _ = sim.fit.draw_params(0)
    t0 = np.full(n, 3.0)
    prog, death = sim._state_paths(params, [np.zeros(n)] * 3, t0.copy(), t0, rng)
    death_day = np.maximum(np.ceil(death * sim.days), np.floor(3.0 * sim.days) + 1)
    known, lower, last = sim._scans_seen(np.zeros(n), prog, death_day, np.full(n, np.inf),
                                         np.full(n, 91.0))
    event = np.isfinite(known)
    p = 1.0 - _death_share_by_hand(0.10, 0.03, 1.0, n, np.random.default_rng(8))
    assert abs(event.mean() - p) < 4 * np.sqrt(2 * p * (1 - p) / n)
    assert set(np.unique(known[event] - lower[event])) <= {60.0, 61.0}
    assert np.all(known[event] <= death_day[event])
    # censored: no lower bound; their last scan was done by the day they died
    assert np.isnan(lower[~event]).all() and np.all(last[~event] <= death_day[~event])
    # and as the PFS completion sees the same paths: PFS events at the same scans
    pfs = pfs_simulator(cut, rates=(0.10, 0.03, 1.0))
    k_pfs, _, _ = pfs._scans_seen(np.zeros(n), prog, death_day, np.full(n, np.inf),
                                  np.full(n, 91.0))
    np.testing.assert_array_equal(k_pfs[event], known[event])


def test_ppos_with_a_ttp_final_rule(cut, tmp_path):
    """A plan whose final rule is on TTP runs with the illness-death completion: each
    observed TTP event kept, TTP carried as a scanned endpoint with more events."""
    plan_path = _final_rule_plan(tmp_path, "ttp", events=90, n_sims=10)
    sim = pfs_simulator(cut, "ttp")
    done = sim.simulate(0, np.random.default_rng(6))
    ttp = cut.endpoint("ttp")
    ev = ttp.event.astype(bool)
    np.testing.assert_allclose(done["death"][:len(ttp)][ev], sim.entry[ev] + sim.scan_time[ev])
    completed = sim.completed_trial(done, float(np.nanmax(done["death"][np.isfinite(
        done["death"])])))
    assert completed.endpoint("ttp").has_bounds
    assert completed.endpoint("ttp").n_events > ttp.n_events
    pp = bh.predictive_probability(cut, bh.load_plan(plan_path), completion=point_fit(cut),
                                   n_sims=10, method="normal", random_seed=7)
    assert 0 <= pp.ppos <= 1


def test_ppos_with_a_pfs_final_rule(cut, tmp_path):
    """A plan whose final rule is on PFS runs with the illness-death completion: completed
    trials keep each observed PFS event and carry PFS as a scanned endpoint."""
    plan_path = _final_rule_plan(tmp_path, "pfs", events=125, n_sims=20)
    sim = pfs_simulator(cut, log_hr=(-0.4, -0.36, -0.36))
    done = sim.simulate(0, np.random.default_rng(6))
    pfs = cut.endpoint("pfs")
    n0 = len(pfs)
    ev = pfs.event.astype(bool)
    np.testing.assert_allclose(done["death"][:n0][ev], sim.entry[ev] + sim.scan_time[ev])
    completed = sim.completed_trial(done, float(np.nanmax(done["death"][np.isfinite(
        done["death"])])))
    assert completed.endpoint("pfs").has_bounds and completed.endpoint("pfs").n_events > \
        pfs.n_events
    pp = bh.predictive_probability(cut, bh.load_plan(plan_path), completion=point_fit(
        cut, log_hr=(-0.4, -0.36, -0.36)), n_sims=20, method="normal", random_seed=7)
    assert 0 <= pp.ppos <= 1 and pp.sims["n_events"].max() >= 125


def test_calibration_study_store_refuses_other_settings(tmp_path):
    """The study's store records its plan and settings: resuming it with another truth (or
    from a file that has results but no settings line) is refused before any trial runs,
    so results of two studies are never mixed under the same trial keys."""
    import json

    from bayes_hcc.validation.ppos_calibration import ppos_calibration_study

    plan = Path(__file__).resolve().parents[2] / "models" / "monitoring.toml"
    store = tmp_path / "study.jsonl"
    meta = {"kind": "ppos_calibration", "plan_hash": bh.load_plan(plan).hash,
            "post_progression_hr": 3.0, "look": 1, "n_sims": 1000,
            "illness_death": {"baseline": "weibull_ph", "time_scale": "markov",
                              "site_effect": "shared"},
            "truth": {}, "random_seed": 2024}
    row = {"seed": 1, "outcome": True, "ppos_os": 0.5, "ppos_illness_death": 0.5,
           "interim_events": 40, "id_converged": True, "os_converged": True}
    store.write_text(json.dumps({"key": "__meta__", "result": meta}) + "\n"
                     + json.dumps({"key": "trial0", "result": row}) + "\n")
    kw = dict(n_trials=1, look=1, n_sims=1000, progress=False, store=store)
    # the same settings: trial 0 is read back, not recomputed
    table = ppos_calibration_study(plan, **kw)
    assert table.to_dict("records") == [row]
    assert table.attrs == meta  # what produced the table travels with it
    with pytest.raises(bh.BayesHCCError, match="different settings"):
        ppos_calibration_study(plan, truth={"hr_os": 1.0, "hr_ttp": 0.5}, **kw)
    with pytest.raises(bh.BayesHCCError, match="different settings"):
        ppos_calibration_study(plan, **{**kw, "n_sims": 100})
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"key": "trial0", "result": row}) + "\n")
    with pytest.raises(bh.BayesHCCError, match="no settings line"):
        ppos_calibration_study(plan, **{**kw, "store": bare})


def test_reliability_table_and_the_brier_decomposition():
    """Binned calibration of each PPoS: counts, mean PPoS and observed success per bin,
    computed by hand; Murphy's identity Brier = reliability - resolution + uncertainty holds
    exactly when the PPoS is constant within each bin (the OS-only column here), and a
    PPoS whose bins match the observed rates has reliability 0."""
    from bayes_hcc.validation.ppos_calibration import reliability_table

    outcome = [True] * 1 + [False] * 9 + [True] * 7 + [False] * 3
    table = pd.DataFrame({"outcome": outcome,
                          "ppos_os": [0.1] * 10 + [0.7] * 10,
                          "ppos_illness_death": [0.02] * 5 + [0.18] * 5 + [0.9] * 10})
    r = reliability_table(table, bins=(0, 0.2, 0.5, 1))
    os_ = r.loc["OS-only PPoS"]
    assert os_["trials"].tolist() == [10, 10]
    np.testing.assert_allclose(os_["mean PPoS"], [0.1, 0.7])
    np.testing.assert_allclose(os_["succeeded"], [0.1, 0.7])
    assert (os_["lower 95%"] < os_["succeeded"]).all()
    d = r.attrs["decomposition"]
    assert d["OS-only PPoS"]["reliability"] == pytest.approx(0.0, abs=1e-15)
    p = d["OS-only PPoS"]
    assert p["brier"] == pytest.approx(p["reliability"] - p["resolution"] + p["uncertainty"])
    # the illness-death PPoS: bin [0, 0.2] holds 0.02 and 0.18 (mean 0.1), bin (0.5, 1]
    # 0.9 against 0.7 observed
    idd = d["illness-death PPoS"]
    assert idd["reliability"] == pytest.approx(0.5 * 0.0 + 0.5 * 0.2 ** 2)
    assert idd["resolution"] == pytest.approx(0.5 * 0.3 ** 2 + 0.5 * 0.3 ** 2)
    assert idd["uncertainty"] == pytest.approx(0.4 * 0.6)
    # the trials' order does not matter
    shuffled = reliability_table(table.sample(frac=1, random_state=3), bins=(0, 0.2, 0.5, 1))
    for name, terms in d.items():
        assert shuffled.attrs["decomposition"][name] == pytest.approx(terms, abs=1e-12)
    pd.testing.assert_frame_equal(shuffled, r)
    with pytest.raises(bh.BayesHCCError, match="increasing edges"):
        reliability_table(table, bins=(0.1, 1))


@pytest.mark.parametrize("change, match", [
    (lambda t: t.drop(columns="ppos_os"), r"no column\(s\) \['ppos_os'\]"),
    (lambda t: t.assign(outcome=["yes"] + [False] * 3), r"'outcome'.*rows \[0\]"),
    (lambda t: t.assign(ppos_illness_death=[0.5, np.nan, 0.2, 1.2]),
     r"'ppos_illness_death'.*rows \[1, 3\]"),
    (lambda t: t.iloc[:1], "at least 2"),
])
def test_calibration_tables_refuse_a_table_they_cannot_read(change, match):
    """A NaN or out-of-range PPoS would be binned (or averaged) silently: both summaries
    name the column, the rows and the fix instead."""
    from bayes_hcc.validation.ppos_calibration import calibration_summary, reliability_table

    table = change(pd.DataFrame({"outcome": [True, False, True, False],
                                 "ppos_os": [0.9, 0.1, 0.6, 0.3],
                                 "ppos_illness_death": [0.8, 0.2, 0.7, 0.4]}))
    for summary in (calibration_summary, reliability_table):
        with pytest.raises(bh.BayesHCCError, match=match):
            summary(table)


def _markov_os(t, arm, b, truth):
    """OS survival at ``t`` months of the simulation's Markov illness-death truth for one
    patient (arm 0/1, site frailty b), by scipy quadrature, from the truth's hazards
    (independent of the package's completion code):
    S0(t) + int_0^t S0(u) a01(u) exp(-(A12(t) - A12(u))) du."""
    from scipy import integrate

    p = truth.params
    ttp, os_ = p["ttp_hazard"], p["os_hazard"]
    m01 = np.exp(b) * (truth.transition_hr["progression"] if arm else 1.0)
    m02 = np.exp(b) * (truth.transition_hr["death_without_progression"] if arm else 1.0)
    m12 = np.exp(b) * p["post_progression_hr"] * (
        truth.transition_hr["death_after_progression"] if arm else 1.0)

    def s0(u):
        return np.exp(-m01 * ttp.cumhaz(u) - m02 * os_.cumhaz(u))

    def f(u):
        return s0(u) * m01 * ttp.hazard(u) * np.exp(-m12 * (os_.cumhaz(t) - os_.cumhaz(u)))

    return float(s0(t) + integrate.quad(f, 0.0, t, limit=200)[0])


def test_truth_completion_continues_patients_with_the_true_hazards():
    """The truth's PPoS completes a trial with the simulation's own hazards: cut the
    mediated-effect trial the calibration study uses just after both arms have a patient,
    so the completions re-draw nearly every patient from randomisation, and the
    Kaplan-Meier OS per arm of 300 completed trials (about 20,000 patients per arm;
    censoring is the independent loss to follow-up) must match the truth's OS curve,
    averaged over the patients' site frailties, computed by quadrature here (tolerance
    0.015: about 4 standard errors of the pooled Kaplan-Meier at 6-18 months). A wrong
    transition, HR or frailty moves these curves by more (a post-progression HR of 1
    instead of 3 moves the control arm's 6-month OS by 0.23; measured differences here are
    below 0.003)."""
    from lifelines import KaplanMeierFitter

    from bayes_hcc.validation.ppos_calibration import _study_trial, _truth_simulator

    plan = bh.load_plan(Path(__file__).resolve().parents[2] / "models" / "monitoring.toml")
    trial, _, _ = _study_trial(plan, 11, 3.0, 1, {"hr_os": 1.0, "hr_ttp": 0.5})
    frame = trial.to_frame().sort_values("randomization_date")
    both = frame.groupby("arm")["randomization_date"].min().max()
    sim = _truth_simulator(trial, trial.cut(both, warn=False), plan)
    rng = np.random.default_rng(5)
    rows = [sim.simulate(0, rng) for _ in range(300)]
    sites = np.array(sim.fit.sites)
    b = {s: trial.truth.site_effects[s] for s in sites}
    for arm in (0, 1):
        t_all, e_all, frail = [], [], []
        for r in rows:
            pick = r["arm"] == arm
            end = np.minimum(r["death"], r["censor"])
            t_all.append(((end - r["entry"]) / sim.days)[pick])
            e_all.append((r["death"] <= r["censor"])[pick])
            frail.append(np.array([b[s] for s in sites[r["site"][pick]]]))
        t, e, fr = map(np.concatenate, (t_all, e_all, frail))
        km = KaplanMeierFitter().fit(t, e)
        levels, counts = np.unique(fr, return_counts=True)
        for month in (6.0, 12.0, 18.0):
            truth = sum(c * _markov_os(month, arm, lv, trial.truth)
                        for lv, c in zip(levels, counts)) / counts.sum()
            assert abs(float(km.survival_function_at_times(month).iloc[0]) - truth) < 0.015, \
                (arm, month)


def test_truth_comparison_removes_the_outcome_noise():
    """Against the truth's PPoS q: mean (PPoS - q)^2 per method, their difference, and
    the check of q (mean outcome - q), by hand on a small table."""
    from bayes_hcc.validation.ppos_calibration import (calibration_summary,
                                                       reliability_table, truth_comparison)

    table = pd.DataFrame({"outcome": [True, False, True, False],
                          "ppos_os": [0.5, 0.5, 0.5, 0.5],
                          "ppos_illness_death": [0.9, 0.1, 0.8, 0.3],
                          "ppos_truth": [0.8, 0.2, 0.6, 0.4]})
    s = truth_comparison(table)
    os_err = np.mean([0.09, 0.09, 0.01, 0.01])
    id_err = np.mean([0.01, 0.01, 0.04, 0.01])
    assert s.iloc[0]["estimate"] == pytest.approx(os_err)
    assert s.iloc[1]["estimate"] == pytest.approx(id_err)
    d = s.loc["difference (OS-only - illness-death)"]
    assert d["estimate"] == pytest.approx(os_err - id_err)
    assert d["MC lower 95%"] < d["estimate"] < d["MC upper 95%"]
    assert s.loc["truth's PPoS: mean (outcome - PPoS)", "estimate"] == pytest.approx(
        np.mean([0.2, -0.2, 0.4, -0.4]))
    # the Brier scores and the reliability table score the truth's PPoS beside the others
    assert calibration_summary(table).loc["truth's PPoS", "Brier score"] == pytest.approx(
        np.mean([0.04, 0.04, 0.16, 0.16]))
    assert "truth's PPoS" in reliability_table(table).index.get_level_values("method")
    with pytest.raises(bh.BayesHCCError, match="add_truth_ppos"):
        truth_comparison(table.drop(columns="ppos_truth"))
    with pytest.raises(bh.BayesHCCError, match=r"'ppos_truth'.*rows \[2\]"):
        truth_comparison(table.assign(ppos_truth=[0.8, 0.2, 1.5, 0.4]))


def test_add_truth_ppos_checks_it_has_the_study_s_trials():
    """The truth's PPoS is added for the table's own trials (re-simulated from their seeds,
    outcomes checked); settings a CSV table no longer carries must be given, and settings
    that contradict the table's are refused."""
    from bayes_hcc.validation.ppos_calibration import _study_trial, add_truth_ppos

    path = Path(__file__).resolve().parents[2] / "models" / "monitoring.toml"
    plan = bh.load_plan(path)
    seeds = [7, 8]
    y = [_study_trial(plan, s, 3.0, 1, {})[2] for s in seeds]
    table = pd.DataFrame({"seed": seeds, "outcome": y, "ppos_os": [0.3, 0.6],
                          "ppos_illness_death": [0.4, 0.5]})
    with pytest.raises(bh.BayesHCCError, match="post_progression_hr is not in"):
        add_truth_ppos(table, path, look=1, n_sims=20, progress=False)
    out = add_truth_ppos(table, path, n_sims=20, post_progression_hr=3.0, look=1,
                         progress=False)
    assert out["ppos_truth"].between(0, 1).all()
    assert out.attrs["truth_ppos"]["n_sims"] == 20
    blind = add_truth_ppos(out, path, n_sims=20, post_progression_hr=3.0, look=1,
                           progress=False, know_progression=False)
    assert blind["ppos_truth_os_only"].between(0, 1).all()
    assert blind["ppos_truth"].equals(out["ppos_truth"])  # kept beside it
    assert blind.attrs["truth_ppos_os_only"]["know_progression"] is False
    flipped = table.assign(outcome=[not v for v in y])
    with pytest.raises(bh.BayesHCCError, match="outcome differs"):
        add_truth_ppos(flipped, path, n_sims=20, post_progression_hr=3.0, look=1,
                       progress=False)
    table.attrs.update({"post_progression_hr": 3.0, "look": 1, "truth": {}})
    with pytest.raises(bh.BayesHCCError, match="made with 1"):
        add_truth_ppos(table, path, n_sims=20, look=2, progress=False)


def test_truth_completion_keeps_lost_patients_lost():
    """In the simulation a patient lost to follow-up before the cut is never seen again:
    the truth's completions keep them censored at their last contact (the plan's 91-day
    follow-up window would continue those lost shortly before the cut) and continue
    everyone else alive at the cut."""
    from bayes_hcc.validation.ppos_calibration import _study_trial, _truth_simulator

    plan = bh.load_plan(Path(__file__).resolve().parents[2] / "models" / "monitoring.toml")
    trial, interim, _ = _study_trial(plan, 13, 3.0, 1, {})
    sim = _truth_simulator(trial, interim, plan)
    frame = interim.to_frame()
    alive = frame["death_date"].isna().to_numpy()
    lost = alive & (pd.to_datetime(frame["last_followup_date"]) < interim.cut_date).to_numpy()
    assert lost.sum() >= 1  # this trial has such patients
    assert np.array_equal(sim.at_risk, alive & ~lost)
    r = sim.simulate(0, np.random.default_rng(0))
    n0 = len(frame)
    assert np.isinf(r["death"][:n0][lost]).all()
    assert np.allclose(r["censor"][:n0][lost], (sim.entry + sim.obs)[lost])


def test_truth_ppos_refuses_what_it_cannot_compute():
    """A trial without a simulation truth (read from a file), a number of completions that
    is not a positive whole number, or an interim that is not a cut of the trial: each a
    named error before any completion is simulated."""
    from bayes_hcc.validation.ppos_calibration import _study_trial, truth_ppos

    path = Path(__file__).resolve().parents[2] / "models" / "monitoring.toml"
    plan = bh.load_plan(path)
    trial, interim, _ = _study_trial(plan, 7, 3.0, 1, {})
    with pytest.raises(bh.BayesHCCError, match="n_sims=0"):
        truth_ppos(trial, interim, plan, n_sims=0)
    read = copy.copy(trial)
    read.truth = None  # as a trial read from a file has it
    with pytest.raises(bh.BayesHCCError, match="no simulation truth"):
        truth_ppos(read, interim, plan, n_sims=10)
    other, _, _ = _study_trial(plan, 8, 3.0, 1, {})
    with pytest.raises(bh.BayesHCCError, match="interim is not a cut of trial"):
        truth_ppos(other, interim.cut(interim.cut_date - pd.Timedelta(days=200), warn=False),
                   plan, n_sims=10)


def test_truth_completion_without_the_progressions_draws_from_the_marginal_os():
    """``know_progression=False`` forgets what the scans showed of the patients still
    followed: each one's future must then be the truth's marginal OS given alive at their
    time on study t, S(t + 6) / S(t) by quadrature here (``_markov_os``), whatever the scans
    showed, while the known-state completion gives the patients seen progressed less (the
    truth's death hazard is 3 times higher after progression). 1,000 completions of a
    first-look cut of the mediated-effect study trial (24 patients followed, 9 seen
    progressed); the tolerance 0.02 is about 5 standard errors of the smaller group's mean
    6-month survival (binomial, 9 x 1,000 draws at about 0.2: 0.004; measured differences
    0.001 and 0.006). The known-state completion gives the progressed group 0.10 less."""
    from bayes_hcc.validation.ppos_calibration import _study_trial, _truth_simulator

    plan = bh.load_plan(Path(__file__).resolve().parents[2] / "models" / "monitoring.toml")
    trial, interim, _ = _study_trial(plan, 11, 3.0, 1, {"hr_os": 1.0, "hr_ttp": 0.5})
    known = _truth_simulator(trial, interim, plan)
    blind = _truth_simulator(trial, interim, plan, know_progression=False)
    idx = np.flatnonzero(blind.at_risk)
    assert np.array_equal(known.at_risk, blind.at_risk)
    seen = np.isfinite(known.prog_upper[idx])
    assert seen.sum() >= 8 and (~seen).sum() >= 8  # both groups are there at this cut
    assert (blind.prog_lower[idx] == 0).all() and np.isinf(blind.prog_upper[idx]).all()
    others = ~blind.at_risk  # everything known of everyone else is kept
    assert np.array_equal(known.prog_lower[others], blind.prog_lower[others])
    t0 = blind.obs[idx] / blind.days
    sites = np.array(blind.fit.sites)
    frailty = [trial.truth.site_effects[s] for s in sites[blind.site[idx]]]
    marginal = np.array([_markov_os(t + 6.0, a, b, trial.truth) / _markov_os(t, a, b,
                                                                             trial.truth)
                         for t, a, b in zip(t0, blind.arm[idx], frailty)])

    def six_months(sim, seed):
        rng = np.random.default_rng(seed)
        days = np.array([sim.simulate(0, rng)["death"][idx] for _ in range(1000)])
        return ((days - sim.entry[idx]) / sim.days > t0 + 6.0).mean(axis=0)

    got_blind, got_known = six_months(blind, 1), six_months(known, 2)
    for group in (seen, ~seen):
        assert abs(got_blind[group].mean() - marginal[group].mean()) < 0.02
    assert got_known[seen].mean() < marginal[seen].mean() - 0.05


def test_progression_information_by_hand():
    """mean (q - q0)^2 less each q's Monte Carlo variance (q(1 - q) / (n_sims - 1)), next
    to the illness-death PPoS's measured gain, by hand on a small table; n_sims must be
    known, and a column that is not a probability is refused with its rows."""
    from bayes_hcc.validation.ppos_calibration import progression_information

    table = pd.DataFrame({"outcome": [True, False, True, False],
                          "ppos_os": [0.5, 0.5, 0.5, 0.5],
                          "ppos_illness_death": [0.9, 0.1, 0.8, 0.3],
                          "ppos_truth": [0.8, 0.2, 0.6, 0.0],
                          "ppos_truth_os_only": [0.6, 0.2, 0.7, 0.1]})
    with pytest.raises(bh.BayesHCCError, match="give n_sims"):
        progression_information(table)
    r = progression_information(table, n_sims=11)
    q, q0 = table["ppos_truth"].to_numpy(), table["ppos_truth_os_only"].to_numpy()
    want = np.mean((q - q0) ** 2 - q * (1 - q) / 10 - q0 * (1 - q0) / 10)
    assert r.iloc[0]["estimate"] == pytest.approx(want)
    assert r.iloc[0]["MC lower 95%"] < want < r.iloc[0]["MC upper 95%"]
    gain = np.mean((0.5 - q) ** 2 - (table["ppos_illness_death"].to_numpy() - q) ** 2)
    assert r.iloc[1]["estimate"] == pytest.approx(gain)
    assert r.attrs["share"] == pytest.approx(want / np.mean((0.5 - q) ** 2))
    table.attrs["truth_ppos"] = {"n_sims": 11}
    with pytest.raises(bh.BayesHCCError, match="came from 11"):
        progression_information(table, n_sims=20)
    with pytest.raises(bh.BayesHCCError, match=r"'ppos_truth_os_only'.*rows \[1\]"):
        progression_information(table.assign(ppos_truth_os_only=[0.6, -1, 0.7, 0.1]),
                                n_sims=11)
    with pytest.raises(bh.BayesHCCError, match="know_progression=False"):
        progression_information(table.drop(columns="ppos_truth_os_only"), n_sims=11)


def test_truth_ppos_study_screens_a_design_without_fitting(tmp_path):
    """One row per simulated trial, the calibration study's own trials (its CSV's seeds
    and outcomes for the same settings), q and q0 each as ``truth_ppos`` computes them;
    ``progression_information`` reads it (no PPoS of either method: the first row only).
    Resumable from its store, refused with other settings."""
    from bayes_hcc.validation.ppos_calibration import (_study_trial, progression_information,
                                                       truth_ppos, truth_ppos_study)

    root = Path(__file__).resolve().parents[2]
    path = root / "models" / "monitoring.toml"
    mediated = {"hr_os": 1.0, "hr_ttp": 0.5}
    store = tmp_path / "s.jsonl"
    t = truth_ppos_study(path, n_trials=2, look=2, n_sims=20, truth=mediated,
                         progress=False, store=store)
    study = pd.read_csv(root / "docs" / "validation" / "ppos_calibration_look2_mediated.csv")
    assert t["seed"].tolist() == study["seed"][:2].tolist()
    assert t["outcome"].tolist() == study["outcome"][:2].tolist()
    plan = bh.load_plan(path)
    trial, interim, _ = _study_trial(plan, int(t["seed"][1]), 3.0, 2, mediated)
    s = int(t["seed"][1])
    assert t["ppos_truth"][1] == truth_ppos(trial, interim, plan, n_sims=20, random_seed=s)
    assert t["ppos_truth_os_only"][1] == truth_ppos(trial, interim, plan, n_sims=20,
                                                    random_seed=[s, 1],
                                                    know_progression=False)
    assert (t["interim_events"] == 70).all() and (t["followed"] > 0).all()
    r = progression_information(t)
    assert len(r) == 1 and "share" not in r.attrs
    again = truth_ppos_study(path, n_trials=2, look=2, n_sims=20, truth=mediated,
                             progress=False, store=store)  # read back from the store
    assert again.equals(t)
    with pytest.raises(bh.BayesHCCError, match="settings|meta"):
        truth_ppos_study(path, n_trials=2, look=1, n_sims=20, truth=mediated,
                         progress=False, store=store)


@pytest.mark.parametrize("study", ["ppos_calibration_study", "truth_ppos_study"])
@pytest.mark.parametrize("change, match", [
    ({"n_trials": 0}, "n_trials=0"),
    ({"n_trials": 2.5}, "n_trials=2.5"),
    ({"post_progression_hr": 0.0}, "post_progression_hr=0.0: give a positive"),
    ({"post_progression_hr": "three"}, "post_progression_hr='three'"),
    ({"look": 3}, "look=3 is the final analysis"),
    ({"look": 7}, "has no look 7"),
])
def test_studies_refuse_a_design_they_cannot_run(study, change, match, tmp_path):
    """Both studies check their design before any trial is simulated or a store records
    it: a named error with the fix (a look past the plan's is the plan's own error)."""
    from bayes_hcc.validation import ppos_calibration

    path = Path(__file__).resolve().parents[2] / "models" / "monitoring.toml"
    store = tmp_path / "s.jsonl"
    kw = {"n_trials": 2, "look": 1, "progress": False, "store": store, **change}
    with pytest.raises((bh.BayesHCCError, bh.SpecError), match=match):
        getattr(ppos_calibration, study)(path, **kw)
    assert not store.exists()


def test_studies_refuse_a_plan_not_on_os(tmp_path):
    """The studies' looks count OS deaths and their outcome is the final rule: a plan
    whose analysis is on PFS is refused by name, not run on the wrong endpoint."""
    from bayes_hcc.validation.ppos_calibration import truth_ppos_study

    models = Path(__file__).resolve().parents[2] / "models"
    (tmp_path / "secondary_pfs.toml").write_text((models / "secondary_pfs.toml").read_text())
    plan = (models / "monitoring.toml").read_text().replace('"primary_os.toml"',
                                                            '"secondary_pfs.toml"')
    (tmp_path / "pfs_plan.toml").write_text(plan)
    with pytest.raises(bh.BayesHCCError, match="analysis is on PFS"):
        truth_ppos_study(tmp_path / "pfs_plan.toml", n_trials=2, look=1, progress=False)
    from bayes_hcc.validation.ppos_calibration import _study_trial, truth_ppos

    trial, interim, _ = _study_trial(bh.load_plan(models / "monitoring.toml"), 7, 3.0, 1, {})
    with pytest.raises(bh.BayesHCCError, match="analysis is on PFS"):
        truth_ppos(trial, interim, tmp_path / "pfs_plan.toml", n_sims=10)


def test_progression_information_removes_the_completions_monte_carlo_error():
    """When knowing who has progressed is worth nothing (q = q0 for every trial), q and q0
    estimated from n completions each still differ by Monte Carlo noise, so the raw mean
    (q - q0)^2 is about 2 q(1 - q) / n > 0; the corrected estimate must be 0 within its
    own interval, and recover a known positive value (q - q0 = 0.05 in every trial: 0.0025)
    within it. 2,000 synthetic trials, q spread over (0.05, 0.95), n = 200 completions;
    fixed seed. The raw mean is 0.0019 here, far above the interval's half-width of about
    0.0001, so a missing correction fails the first assertion."""
    from bayes_hcc.validation.ppos_calibration import progression_information

    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 2000)
    n = 200
    for shift, want in ((0.0, 0.0), (0.05, 0.0025)):
        q = rng.binomial(n, p) / n
        q0 = rng.binomial(n, np.clip(p - shift, 0, 1)) / n
        table = pd.DataFrame({"outcome": rng.uniform(size=len(p)) < p, "ppos_truth": q,
                              "ppos_truth_os_only": q0})
        r = progression_information(table, n_sims=n).iloc[0]
        assert r["MC lower 95%"] < want < r["MC upper 95%"], (shift, r.to_dict())
        if shift == 0.0:
            assert np.mean((q - q0) ** 2) > r["MC upper 95%"] + 0.001
        # the rows' order does not matter
        again = progression_information(table.sample(frac=1, random_state=1), n_sims=n)
        assert again.iloc[0]["estimate"] == pytest.approx(r["estimate"])


def test_the_screened_plan_variants_reproduce_their_rows():
    """The scan of designs in the illness-death guide is reproducible from the repository:
    every plan variant it screened (``docs/validation/plans``) still loads with the hash its
    rows record, and a row on a plan whose final analysis is at a calendar date (not an
    event count) comes out the same again, q and q0 to the last digit (same seeds, same 400
    completions)."""
    from bayes_hcc.validation.ppos_calibration import truth_ppos_study

    root = Path(__file__).resolve().parents[2]
    scan = pd.read_csv(root / "docs" / "validation" / "progression_information_scan.csv")
    for plan, rows in scan.groupby("plan"):
        assert bh.load_plan(root / plan).hash == rows["plan_hash"].iloc[0], plan
    plan = "docs/validation/plans/final_2019-12-31.toml"
    assert bh.load_plan(root / plan).final.date == "2019-12-31"
    row = scan[(scan["plan"] == plan) & (scan["scenario"] == "same effect")].iloc[0]
    assert row["trial"] == 0
    t = truth_ppos_study(root / plan, n_trials=1, post_progression_hr=row["post_progression_hr"],
                         look=int(row["look"]), n_sims=400, progress=False)
    for col in ("seed", "outcome", "interim_events", "followed", "ppos_truth",
                "ppos_truth_os_only"):
        assert t[col].iloc[0] == row[col], col


def test_the_fast_accrual_calibration_study_reproduces_its_trials():
    """The MCMC calibration study run on the most favourable design screened (every patient
    randomized by 2017-09-30, final analysis on 2018-03-31, treatment through progression
    only; ``docs/validation/ppos_calibration_fast_accrual.csv``) is reproducible from the
    repository: its first trials are the study's trials for those settings (same seeds and
    actual outcomes), and the first row's q comes out the same again (1,000 completions)."""
    from bayes_hcc.validation.ppos_calibration import (_study_trial, truth_ppos,
                                                       truth_ppos_study)

    root = Path(__file__).resolve().parents[2]
    study = pd.read_csv(root / "docs" / "validation" / "ppos_calibration_fast_accrual.csv")
    plan_path = root / "docs" / "validation" / "plans" / "final_2018-03-31.toml"
    truth = {"accrual_end": "2017-09-30", "hr_os": 1.0, "hr_ttp": 0.5}
    t = truth_ppos_study(plan_path, n_trials=3, look=2, n_sims=10, truth=truth,
                         progress=False)
    for col in ("seed", "outcome", "interim_events"):
        assert t[col].tolist() == study[col][:3].tolist(), col
    plan = bh.load_plan(plan_path)
    seed = int(study["seed"][0])
    trial, interim, _ = _study_trial(plan, seed, 3.0, 2, truth)
    assert truth_ppos(trial, interim, plan, n_sims=1000,
                      random_seed=seed) == study["ppos_truth"][0]


def test_completions_use_each_patients_covariates(cut):
    """With a 0/1 covariate of coefficients (0.8, 0.4, 1.0) per SD on the three transitions:
    a patient alive after a progression dies at rate l3 exp(1.0 z_i) (clock forward, so
    exponential from the cut), and a new patient, from randomization, has mean OS
    1 / (a1 + a2) + a1 / ((a1 + a2) a3) with a_j = l_j exp(beta_j z) of the covariate value
    z they carry, which is that of an enrolled patient of their site. 4,000 completions;
    means within 4.5 Monte Carlo SE (many patients at once), days being whole adds under
    one day to means of months."""
    frame = cut.to_frame()
    rng = np.random.default_rng(8)
    frame["ecog"] = (rng.uniform(size=len(frame)) < 0.35).astype(int)
    trial = bh.TrialData(frame, endpoints=cut.endpoints, control=cut.control,
                         treatment=cut.treatment, time_unit=cut.time_unit, layout=cut.layout,
                         cut_date=cut.cut_date, assessments=cut.assessments)
    beta = (0.8, 0.4, 1.0)
    sim = IllnessDeathFutureSimulator(trial, point_fit(trial, covariates=["ecog"], beta=beta),
                                      Prediction(sample_size=len(trial) + 40,
                                                 dropout_per_year=0.0,
                                                 followup_window_days=10_000))
    x = frame["ecog"].to_numpy(float)
    z = (x - x.mean()) / x.std()  # standardized by hand: mean 0, SD 1 (ddof 0)
    month = sim.days
    after = np.flatnonzero(sim.at_risk & np.isfinite(sim.prog_upper))
    assert len(after) >= 3 and len(np.unique(x[after])) == 2
    n0, reps = len(sim.entry), 4000
    residual, new, rows, sites, out = complete_many(sim, reps, rng, after, x,
                                                    draw=lambda r: r % 20)
    l1, l2, l3 = RATES
    mean = month / (l3 * np.exp(beta[2] * z[after]))
    score = (residual.mean(axis=0) - 0.5 - mean) / (mean / np.sqrt(reps))
    assert np.abs(score).max() < 4.5, score
    for v in (0, 1):
        zv = z[x == v][0]
        a1, a2, a3 = (r * np.exp(b * zv) for r, b in zip(RATES, beta))
        expect = month * (1 / (a1 + a2) + a1 / ((a1 + a2) * a3))
        got = new[v]
        assert abs(got.mean() - 0.5 - expect) < 4.5 * got.std() / np.sqrt(len(got)), v
    assert np.array_equal(sim.site[rows], sites)
    # the completed trial carries every patient's covariate (drawn for the new ones)
    done = sim.completed_trial(out, float(out["entry"].max()) + 1)
    ecog = done.to_frame()["ecog"].to_numpy()
    assert np.array_equal(ecog[:n0], x.astype(int))
    assert np.array_equal(ecog[n0:], x[out["covariate_row"][n0:]].astype(int))
