"""Survival, median and RMST against closed forms on fabricated posteriors (no sampling)."""

import numpy as np
import pytest
from scipy import integrate, optimize, special, stats

import bayes_hcc as bh
from bayes_hcc.errors import BayesHCCError, HorizonError
from bayes_hcc.families.piecewise import PiecewiseFamily
from bayes_hcc.families.weibull import WeibullFamily
from tests.helpers import const, fabricated_fit

LAM, K, LOG_HR = np.exp(-2.3), 1.4, np.log(0.7)
ARM = np.array([0, 1, 0, 1, 0, 1, 1, 0, 1, 0])
SITE = np.array([0, 0, 1, 1, 2, 2, 2, 0, 1, 2])
EFF = np.array([0.25, -0.1, -0.15])
SITE_SD = 0.4


def weibull_fit(site_effect="none"):
    params = {"log_lambda": const(np.log(LAM)), "log_shape": const(np.log(K)),
              "log_hr": const(LOG_HR)}
    if site_effect == "random":
        params["site_effect"] = const(EFF, extra=(3,))
        params["site_sd"] = const(SITE_SD)
    return fabricated_fit(WeibullFamily(), params, arm=ARM, site=SITE, site_effect=site_effect)


def weibull_S(t, eta):
    return np.exp(-LAM * np.exp(eta) * np.asarray(t, float) ** K)


def weibull_rmst(tau, eta):
    c = LAM * np.exp(eta)
    # int_0^tau exp(-c t^k) dt = c^(-1/k) Gamma(1/k) P(1/k, c tau^k) / k
    return c ** (-1 / K) * special.gamma(1 / K) * special.gammainc(1 / K, c * tau ** K) / K


# Tolerances: the quantities are deterministic functions of the draws, so only numerical
# error is allowed: bisection to 2^-80 of the bracket (1e-10 relative), Gauss-Legendre
# quadrature (1e-9 relative) and Gauss-Hermite with 20 nodes for the site integral (1e-6).


def test_weibull_typical_site_closed_forms():
    fit = weibull_fit()
    s = bh.survival(fit, [3.0, 12.0], estimand="typical_site")
    assert s.dims == ("chain", "draw", "arm", "time")
    for a, eta in ((0, 0.0), (1, LOG_HR)):
        np.testing.assert_allclose(s.isel(arm=a).values[0, 0], weibull_S([3.0, 12.0], eta),
                                   rtol=1e-12)
    med = bh.median_survival(fit, estimand="typical_site")
    m0 = (np.log(2) / LAM) ** (1 / K)
    m1 = (np.log(2) / (LAM * 0.7)) ** (1 / K)
    np.testing.assert_allclose(med.sel(arm="sorafenib").values, m0, rtol=1e-10)
    np.testing.assert_allclose(med.sel(arm="tace_sorafenib").values, m1, rtol=1e-10)
    np.testing.assert_allclose(med.sel(arm="difference").values, m1 - m0, rtol=1e-9)
    r = bh.rmst(fit, 24, estimand="typical_site")
    np.testing.assert_allclose(r.sel(arm="sorafenib").values, weibull_rmst(24, 0.0), rtol=1e-9)
    np.testing.assert_allclose(r.sel(arm="difference").values,
                               weibull_rmst(24, LOG_HR) - weibull_rmst(24, 0.0), rtol=1e-8)
    assert r.attrs["estimand"] == "typical_site" and r.attrs["tau"] == 24
    np.testing.assert_allclose(bh.hazard_ratio(fit).values, 0.7)


def test_weibull_rmst_shape_below_one():
    """A falling hazard (k < 1) has a singular derivative at 0; quadrature must cope."""
    params = {"log_lambda": const(-1.0), "log_shape": const(np.log(0.6)), "log_hr": const(0.0)}
    fit = fabricated_fit(WeibullFamily(), params, arm=ARM, site=SITE)
    c, k, tau = np.exp(-1.0), 0.6, 10.0
    exact = c ** (-1 / k) * special.gamma(1 / k) * special.gammainc(1 / k, c * tau ** k) / k
    np.testing.assert_allclose(bh.rmst(fit, tau).sel(arm="sorafenib").values, exact, rtol=1e-8)


def test_standardized_is_the_patient_average():
    fit = weibull_fit("random")
    etas = EFF[SITE]
    s = bh.survival(fit, [6.0], estimand="standardized").values[0, 0, :, 0]
    for a, shift in ((0, 0.0), (1, LOG_HR)):
        assert s[a] == pytest.approx(weibull_S(6.0, etas + shift).mean(), rel=1e-12)
    med = bh.median_survival(fit).values[0, 0]
    for a, shift in ((0, 0.0), (1, LOG_HR)):
        ref = optimize.brentq(lambda t: weibull_S(t, etas + shift).mean() - 0.5, 0.01, 100,
                              xtol=1e-13)
        assert med[a] == pytest.approx(ref, rel=1e-10)
    r = bh.rmst(fit, 20).values[0, 0]
    for a, shift in ((0, 0.0), (1, LOG_HR)):
        assert r[a] == pytest.approx(weibull_rmst(20, etas + shift).mean(), rel=1e-8)


def test_new_site_integrates_the_site_distribution():
    fit = weibull_fit("random")

    def s_new(t, shift):
        f = lambda b: weibull_S(t, shift + b) * stats.norm(0, SITE_SD).pdf(b)
        return integrate.quad(f, -8 * SITE_SD, 8 * SITE_SD, epsabs=1e-13)[0]

    s = bh.survival(fit, [6.0], estimand="new_site").values[0, 0, :, 0]
    assert s[0] == pytest.approx(s_new(6.0, 0.0), rel=1e-6)
    assert s[1] == pytest.approx(s_new(6.0, LOG_HR), rel=1e-6)
    med = bh.median_survival(fit, estimand="new_site").values[0, 0, 0]
    ref = optimize.brentq(lambda t: s_new(t, 0.0) - 0.5, 0.1, 100, xtol=1e-12)
    assert med == pytest.approx(ref, rel=1e-6)


def test_piecewise_exact_formulas():
    fam = PiecewiseFamily([2.0, 6.0])
    rates = np.array([0.10, 0.05, 0.08])
    params = {"log_baseline_hazard": const(np.log(rates), extra=(3,)), "log_hr": const(LOG_HR)}
    fit = fabricated_fit(fam, params, arm=ARM, site=SITE, model="piecewise_exponential")
    # H(t) at t = 10: 0.1*2 + 0.05*4 + 0.08*4 = 0.72
    s = bh.survival(fit, [1.0, 10.0], estimand="typical_site").values[0, 0]
    np.testing.assert_allclose(s[0], np.exp(-np.array([0.1, 0.72])), rtol=1e-12)
    np.testing.assert_allclose(s[1], np.exp(-0.7 * np.array([0.1, 0.72])), rtol=1e-12)
    # Control median: H(6) = 0.4 < log 2, so t = 6 + (log2 - 0.4) / 0.08.
    med = bh.median_survival(fit, estimand="typical_site")
    assert float(med.sel(arm="sorafenib")[0, 0]) == pytest.approx(6 + (np.log(2) - 0.4) / 0.08,
                                                                  rel=1e-12)
    # RMST to tau = 8 piece by piece: int exp(-(H_a + r (t - a))) = exp(-H_a)(1 - e^{-r w})/r.
    def rmst_exact(scale):
        total, H, edges = 0.0, 0.0, [0, 2, 6, 8]
        for r, a, b in zip(rates * scale, edges[:-1], edges[1:]):
            total += np.exp(-H) * (1 - np.exp(-r * (b - a))) / r
            H += r * (b - a)
        return total

    r = bh.rmst(fit, 8, estimand="typical_site").values[0, 0]
    assert r[0] == pytest.approx(rmst_exact(1.0), rel=1e-10)
    assert r[1] == pytest.approx(rmst_exact(0.7), rel=1e-10)


def test_rmst_horizon_and_estimand_errors():
    fit = weibull_fit()
    with pytest.raises(HorizonError, match="tau = 100 months exceeds the follow-up"):
        bh.rmst(fit, 100)
    assert np.isfinite(bh.rmst(fit, 100, extrapolate=True).values).all()
    with pytest.raises(BayesHCCError, match="estimand='typical'"):
        bh.survival(fit, [1.0], estimand="typical")
    # one horizon per call, said by name (a list failed inside float(); a number written
    # as text is read, as before, and labels the probability as a number)
    with pytest.raises(BayesHCCError, match=r"rmst: tau=\[1, 2\] is several numbers; tau is "
                       r"one \(e.g. tau=18\): call rmst once per value"):
        bh.rmst(fit, [1, 2])
    np.testing.assert_array_equal(bh.rmst(fit, "2").values, bh.rmst(fit, 2).values)
    assert "RMST(2 months) gain > 0 months" in str(bh.prob_rmst_gain(fit, "2"))
    with pytest.raises(BayesHCCError, match=r"summarize: tau='two' must be a number"):
        bh.summarize(fit, tau="two")


def test_probabilities_and_mcse():
    rng = np.random.default_rng(3)
    log_hr = rng.normal(np.log(0.8), 0.2, size=(4, 1000))
    params = {"log_lambda": const(-2.0, 4, 1000), "log_shape": const(0.0, 4, 1000),
              "log_hr": log_hr}
    fit = fabricated_fit(WeibullFamily(), params, arm=ARM, site=SITE)
    p = bh.prob_superiority(fit)
    assert p.probability == pytest.approx(np.mean(log_hr < 0))
    # Independent draws: MCSE ~ sqrt(p (1 - p) / n); the ESS-based estimate is noisy (+-10%).
    assert p.mcse == pytest.approx(np.sqrt(p.probability * (1 - p.probability) / 4000), rel=0.15)
    p8 = bh.prob_superiority(fit, threshold=0.8)
    assert p8.probability == pytest.approx(np.mean(np.exp(log_hr) < 0.8))
    # With shape 1 (exponential) the median ratio is 1 / HR: gain = m0 (1/HR - 1).
    m0 = np.log(2) / np.exp(-2.0)
    gain = bh.prob_median_gain(fit, 2.0, estimand="typical_site")
    assert gain.probability == pytest.approx(np.mean(m0 * (np.exp(-log_hr) - 1) > 2.0))


def test_a_median_gain_probability_says_when_it_rests_on_extrapolation():
    """P(median gain > 0) is computed from every draw; where a median lies beyond its arm's
    follow-up the probability leans on the model's extrapolation (the tables blank such
    medians, the probability was shown bare). Exponential, control median ln 2 / e^-2 =
    5.2 months: followed to 60 months nothing is noted; followed to 3 months both medians
    lie beyond, and the note says so, the value being the same computation."""
    log_hr = np.random.default_rng(4).normal(np.log(0.8), 0.2, size=(2, 500))
    params = {"log_lambda": const(-2.0, 2, 500), "log_shape": const(0.0, 2, 500),
              "log_hr": log_hr}
    mature = fabricated_fit(WeibullFamily(), params, arm=ARM, site=SITE)
    early = fabricated_fit(WeibullFamily(), params, arm=ARM, site=SITE, max_follow_up=3.0)
    p, q = bh.prob_median_gain(mature), bh.prob_median_gain(early)
    assert p.note is None and "extrapolation" not in repr(p)
    assert q.probability == p.probability == pytest.approx(np.mean(log_hr < 0))
    assert "sorafenib's median lies beyond its follow-up (3 months)" in q.note
    assert "tace_sorafenib's median lies beyond" in q.note
    assert repr(q).endswith("this probability rests partly on the model's extrapolation")


def test_medians_that_are_never_reached_give_inf_limits_and_no_false_probability():
    """A Gompertz hazard falling to 0 (gamma < 0) levels survival off: with lambda / |gamma|
    below ln 2 it never reaches 0.5 and the median is +inf. Such draws used to give NaN
    quantiles with a RuntimeWarning (prior_predictive, summarize(extrapolate=True)), and
    P(median gain > 0) = 0 "every draw agrees" where both medians were infinite (inf - inf
    is no number, counted as no gain). Now: +inf limits; the gain is not estimable when
    no draw has a finite difference, and where some have none the note gives their share
    and the probability were they gains."""
    from bayes_hcc.families.gompertz import GompertzFamily
    from bayes_hcc.quantities._core import quantiles

    rng = np.random.default_rng(2)
    x, q = rng.normal(size=101), rng.uniform(size=30)
    np.testing.assert_allclose(quantiles(x, q), np.quantile(x, q), rtol=1e-13)
    np.testing.assert_array_equal(quantiles([1.0, 2.0, 3.0, np.inf, np.inf],
                                            [0.0, 0.5, 0.6, 1.0]), [1.0, 3.0, np.inf, np.inf])
    # a difference with an infinite median is -inf or +inf: both tails
    np.testing.assert_array_equal(quantiles([-np.inf, -np.inf, 0.0, 1.0, np.inf],
                                            [0.0, 0.1, 0.3, 0.5, 0.75, 0.9]),
                                  [-np.inf, -np.inf, -np.inf, 0.0, 1.0, np.inf])

    # lambda e^-3 = 0.050, gamma -0.2: H(inf) = 0.25 < ln 2 in both arms (HR 0.8)
    flat = {"log_lambda": const(-3.0, 2, 4), "gamma": const(-0.2, 2, 4),
            "log_hr": const(np.log(0.8), 2, 4)}
    fit = fabricated_fit(GompertzFamily(), flat, arm=ARM, site=SITE, model="gompertz_ph")
    assert np.isposinf(bh.median_survival(fit).sel(arm=["sorafenib", "tace_sorafenib"])).all()
    from bayes_hcc.quantities.summary import _row   # bh.summarize's row (extrapolate=True)

    row = _row(bh.median_survival(fit).sel(arm="sorafenib"), "median", "standardized", 0.95)
    assert np.isposinf([row["median"], row["lower"], row["upper"]]).all()
    assert np.isnan(row["mcse"])   # no Monte Carlo error of a mean of +inf draws
    p = bh.prob_median_gain(fit)
    assert np.isnan(p.probability) and p.note.startswith("not estimable")
    # half the draws with gamma 0.1 (median finite, ln 2 reached): the gain is defined there
    gamma = const(-0.2, 2, 4)
    gamma[:, ::2] = 0.1
    half = fabricated_fit(GompertzFamily(), {**flat, "gamma": gamma}, arm=ARM, site=SITE,
                          model="gompertz_ph")
    diff = bh.median_survival(half).sel(arm="difference").values
    p = bh.prob_median_gain(half)
    assert p.probability == pytest.approx(np.mean(diff > 0)) and 0.4 < p.probability < 0.6
    assert "in 50.0% of draws neither arm's median is finite" in p.note
    assert f"counted as gains, P = {p.probability + 0.5:.4f}" in p.note
    table = bh.prior_predictive(bh.GompertzPH(), bh.datasets.load_example_trial(),
                                random_seed=1)   # no RuntimeWarning (an error in the suite)
    assert np.isposinf(table.loc["median sorafenib", "q97.5"])
    assert np.isfinite(table.loc["median sorafenib", ["q2.5", "q50"]]).all()


@pytest.mark.parametrize("call, match", [
    (lambda f: bh.prob_superiority(f, threshold=0), r"threshold=0 must be a ratio > 0"),
    (lambda f: bh.prob_superiority(f, threshold=np.log(0.8)), r"must be a ratio > 0 .*exp"),
    (lambda f: bh.prob_superiority(f, threshold="0.8x"), r"threshold='0.8x' must be a number"),
    (lambda f: bh.prob_effect(f, threshold=-1), r"prob_effect: threshold=-1"),
    (lambda f: bh.prob_median_gain(f, threshold=np.nan), r"must be a finite number"),
    (lambda f: bh.prob_rmst_gain(f, 5, threshold=None), r"threshold=None must be a number"),
])
def test_a_threshold_that_asks_a_meaningless_question_is_refused(call, match):
    """An HR is never <= 0: P(HR < log 0.8) was silently 0 (a log-HR threshold passed where
    an HR is expected), and a text threshold failed inside numpy."""
    with pytest.raises(BayesHCCError, match=match):
        call(weibull_fit())


def test_new_site_with_treatment_by_site_heterogeneity():
    """Treatment arm at a new site integrates two independent normal deviations."""
    arm_sd = 0.3
    params = {"log_lambda": const(np.log(LAM)), "log_shape": const(np.log(K)),
              "log_hr": const(LOG_HR), "site_effect": const(EFF, extra=(3,)),
              "site_sd": const(SITE_SD), "arm_site_effect": const([0.1, -0.1, 0.0], extra=(3,)),
              "arm_site_sd": const(arm_sd)}
    fit = fabricated_fit(WeibullFamily(), params, arm=ARM, site=SITE, site_effect="random",
                         arm_by_site="random")
    # Sum of independent normals: N(0, sqrt(site_sd^2 + arm_sd^2)).
    total = np.hypot(SITE_SD, arm_sd)
    f = lambda b: weibull_S(6.0, LOG_HR + b) * stats.norm(0, total).pdf(b)
    ref = integrate.quad(f, -8 * total, 8 * total, epsabs=1e-13)[0]
    s = bh.survival(fit, [6.0], estimand="new_site").values[0, 0, 1, 0]
    assert s == pytest.approx(ref, rel=1e-6)
    # Standardized: each patient's own site deviation in the treatment arm.
    s_std = bh.survival(fit, [6.0]).values[0, 0, 1, 0]
    dev = np.array([0.1, -0.1, 0.0])
    assert s_std == pytest.approx(weibull_S(6.0, LOG_HR + EFF[SITE] + dev[SITE]).mean(),
                                  rel=1e-12)


def test_new_site_with_treatment_by_site_heterogeneity_and_no_site_effect():
    """Without site effects, a new site still has its own treatment-by-site deviation in the
    treatment arm: it was left out (new_site gave the typical site's curve and median).
    The control arm has no deviation: typical and new site agree there."""
    arm_sd = 0.5
    params = {"log_lambda": const(np.log(LAM)), "log_shape": const(np.log(K)),
              "log_hr": const(LOG_HR), "arm_site_effect": const([0.1, -0.1, 0.0], extra=(3,)),
              "arm_site_sd": const(arm_sd)}
    fit = fabricated_fit(WeibullFamily(), params, arm=ARM, site=SITE, site_effect="none",
                         arm_by_site="random")
    f = lambda b: weibull_S(6.0, LOG_HR + b) * stats.norm(0, arm_sd).pdf(b)
    ref = integrate.quad(f, -8 * arm_sd, 8 * arm_sd, epsabs=1e-13)[0]
    s = bh.survival(fit, [6.0], estimand="new_site").values[0, 0]
    assert s[1, 0] == pytest.approx(ref, rel=1e-6)
    assert s[0, 0] == pytest.approx(weibull_S(6.0, 0.0), rel=1e-12)
    # the median where the integrated survival crosses 1/2
    med = bh.median_survival(fit, estimand="new_site").sel(arm="tace_sorafenib").values[0, 0]
    S_new = lambda t: integrate.quad(lambda b: weibull_S(t, LOG_HR + b)
                                     * stats.norm(0, arm_sd).pdf(b), -8 * arm_sd,
                                     8 * arm_sd, epsabs=1e-13)[0]
    assert med == pytest.approx(optimize.brentq(lambda t: S_new(t) - 0.5, 0.1, 100),
                                rel=1e-6)
    # exp(log_hr) is the HR at a typical site, not the trial's marginal HR: the headline
    # table said "marginal (no covariates or site terms: conditional = marginal)" and gave
    # no marginal HR row
    table = bh.summarize(fit, frequentist=False)
    assert table.loc["HR", "note"].startswith("conditional on a typical site's "
                                              "treatment-by-site effect")
    assert any(q.startswith("marginal HR") for q in table.index)
    dev = np.array([0.1, -0.1, 0.0])[SITE]  # each patient's own site, under treatment
    ref = np.log(weibull_S(6.0, LOG_HR + dev).mean()) / np.log(weibull_S(6.0, 0.0))
    assert bh.marginal_hazard_ratio(fit, [6.0]).values[0, 0, 0] == pytest.approx(ref,
                                                                                 rel=1e-9)



def test_lognormal_closed_forms():
    from bayes_hcc.families.aft import LogNormalFamily

    mu, sig, log_tr = 2.0, 0.7, 0.25
    params = {"log_scale": const(mu), "log_sigma": const(np.log(sig)), "log_tr": const(log_tr)}
    fit = fabricated_fit(LogNormalFamily(), params, arm=ARM, site=SITE, model="lognormal_aft")
    med = bh.median_survival(fit, estimand="typical_site")
    assert float(med.sel(arm="sorafenib")[0, 0]) == pytest.approx(np.exp(mu), rel=1e-10)
    assert float(med.sel(arm="tace_sorafenib")[0, 0]) == pytest.approx(np.exp(mu + log_tr),
                                                                       rel=1e-10)
    s = bh.survival(fit, [3.0, 10.0], estimand="typical_site").values[0, 0]
    np.testing.assert_allclose(s[1], stats.lognorm(s=sig, scale=np.exp(mu + log_tr)).sf(
        [3.0, 10.0]), rtol=1e-10)
    r = bh.rmst(fit, 20, estimand="typical_site").sel(arm="sorafenib").values[0, 0]
    ref = integrate.quad(stats.lognorm(s=sig, scale=np.exp(mu)).sf, 0, 20, epsabs=1e-12)[0]
    assert r == pytest.approx(ref, rel=1e-8)
    np.testing.assert_allclose(bh.time_ratio(fit).values, np.exp(log_tr))
    # no hazard ratio: prob_superiority says what superiority is for this family (the error
    # named hazard_ratio, which the user had not called, and not prob_effect)
    with pytest.raises(bh.BayesHCCError, match=r"prob_superiority: lognormal_aft is not a "
                       r"proportional-hazards model.*bh.prob_effect\(fit\)"):
        bh.prob_superiority(fit)
    assert float(bh.prob_effect(fit)) == 1.0  # log_tr 0.25 on every draw: TR > 1


def _decimal_marginal_hr(t, etas):
    """log S_1(t) / log S_0(t) of the patient-averaged Weibull curves, in 60-digit decimal
    arithmetic: exact where S(t) rounds to 1 or underflows in double precision."""
    from decimal import Decimal, getcontext

    getcontext().prec = 60

    def cumhaz(shift):
        n = Decimal(len(etas))
        s = sum(((-Decimal(LAM) * Decimal(float(np.exp(e + shift)))
                  * Decimal(t) ** Decimal(K)).exp() for e in etas), Decimal(0)) / n
        return -s.ln()

    return float(cumhaz(LOG_HR) / cumhaz(0.0))


def test_marginal_hazard_ratio_where_survival_rounds_to_one_or_underflows():
    """The marginal HR is log S_1(t) / log S_0(t) of the standardised curves. Computed as
    the log of S(t) it was NaN early on (S(1e-12 months) is 1 to double precision: 0 / 0)
    and late (S(1,000 months) = e^-1,600 underflows: inf / inf); each cumulative hazard is
    now accumulated where it is accurate. Reference: the same ratio in 60-digit decimal
    arithmetic (relative 1e-10; measured 8e-16, double rounding of the per-patient hazards:
    the margin is for other platforms' exp and log)."""
    fit = weibull_fit("random")
    etas = EFF[SITE]
    times = [1e-12, 1e-3, 6.0, 60.0, 400.0, 1000.0]
    got = bh.marginal_hazard_ratio(fit, times)
    assert got.attrs["quantity"] == "marginal_hazard_ratio"  # it said "survival"
    got = got.values[0, 0]
    ref = [_decimal_marginal_hr(t, etas) for t in times]
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    # at t = 0 both cumulative hazards are 0: no ratio; said, not a column of NaN
    with pytest.raises(BayesHCCError, match=r"marginal_hazard_ratio: times=\[0\.0, 6\.0\] "
                       r"must be > 0"):
        bh.marginal_hazard_ratio(fit, [0.0, 6.0])


def test_a_marginal_hazard_ratio_beyond_follow_up_is_marked():
    """bh.survival marks each time beyond an arm's follow-up (the model's extrapolation);
    the marginal HR, a ratio of the two arms' curves, kept the mark only where the arms
    happened to agree (xarray drops a coordinate two operands disagree on), so a ratio at
    ten times the follow-up looked like an estimate. It is marked where either arm's
    follow-up is passed, with the follow-up per arm in its attrs."""
    params = {"log_lambda": const(np.log(LAM)), "log_shape": const(np.log(K)),
              "log_hr": const(LOG_HR)}
    # control followed to 30 months, treatment to 20
    time = np.where(np.asarray(ARM) == 0, 30.0, 20.0)
    fit = fabricated_fit(WeibullFamily(), params, arm=ARM, site=SITE, site_effect="none",
                         time=time)
    follow = fit.follow_up_by_arm()
    assert sorted(follow.values()) == [20.0, 30.0]
    times = [10.0, 25.0, 300.0]
    s = bh.survival(fit, times)
    assert s["beyond_follow_up"].values.tolist() == [[False, False, True],
                                                     [False, True, True]]
    got = bh.marginal_hazard_ratio(fit, times)
    assert got["beyond_follow_up"].dims == ("time",)
    assert got["beyond_follow_up"].values.tolist() == [False, True, True]
    assert got.attrs["follow_up"] == follow
    # kept by selection, as bh.survival's marks are
    assert bool(got.sel(time=times[-1])["beyond_follow_up"])
