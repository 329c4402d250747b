"""Agreement with maximum likelihood and recovery of a known truth (slow).

With progression times observed exactly, the illness-death likelihood factorises into one
survival likelihood per transition: progression with death as censoring, death without
progression with progression as censoring, and death after progression (clock forward:
entering at the progression time, a left-truncated fit; clock reset: on the time since
progression). The maximum-likelihood reference fits those three Weibull PH models here,
from their own log-likelihoods (scipy), independently of the package. With vague priors
and no site effects the posterior medians of the transition log HRs are within 0.25 SE of
the MLEs (the prior's pull is far smaller; MCMC error about 0.03 SE at 4 x 1000 draws)."""

import numpy as np
import pytest
from scipy import optimize

import bayes_hcc as bh
from bayes_hcc.multistate.likelihood import TRANSITIONS

pytestmark = pytest.mark.slow

VAGUE = {"log_hr": {"dist": "Normal", "mu": 0.0, "sigma": 10.0},
         "log_lambda": {"dist": "Normal", "mu": -2.5, "sigma": 10.0},
         "log_shape": {"dist": "Normal", "mu": 0.0, "sigma": 2.0}}


def weibull_ml(entry, exit_, event, x):
    """MLE and SE of the log HR of a Weibull PH model with delayed entry."""
    entry, exit_, event, x = (np.asarray(a, float) for a in (entry, exit_, event, x))

    def nll(p):
        log_lam, log_k, beta = p
        k = np.exp(log_k)
        with np.errstate(over="ignore", invalid="ignore"):  # BFGS may try wild steps
            lam = np.exp(log_lam + beta * x)
            log_h = log_lam + log_k + (k - 1) * np.log(exit_) + beta * x
            v = -(np.sum(event * log_h) - np.sum(lam * (exit_ ** k - entry ** k)))
        return v if np.isfinite(v) else 1e300

    res = optimize.minimize(nll, np.array([-3.0, 0.0, 0.0]), method="BFGS",
                            options={"gtol": 1e-8})
    h = 1e-4  # central-difference Hessian
    hess = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            e_i, e_j = np.eye(3)[i] * h, np.eye(3)[j] * h
            hess[i, j] = (nll(res.x + e_i + e_j) - nll(res.x + e_i - e_j)
                          - nll(res.x - e_i + e_j) + nll(res.x - e_i - e_j)) / (4 * h * h)
    return res.x[2], np.sqrt(np.linalg.inv(hess)[2, 2])


def ml_reference(d, time_scale):
    prog = d.progressed
    u = np.where(prog, d.prog_upper, d.time)  # leaves state 0 at u
    zero = np.zeros(len(u))
    out = {"progression": weibull_ml(zero, u, prog, d.arm),
           "death_without_progression": weibull_ml(zero, u, ~prog & (d.death == 1), d.arm)}
    t, r = d.time[prog], d.prog_upper[prog]
    if time_scale == "markov":
        out["death_after_progression"] = weibull_ml(r, t, d.death[prog], d.arm[prog])
    else:
        out["death_after_progression"] = weibull_ml(np.zeros(len(t)), t - r, d.death[prog],
                                                    d.arm[prog])
    return out


def simulate(n, time_scale, seed):
    """Weibull transitions (months), exact progression times, uniform censoring."""
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n)
    lam, k, beta = (0.15, 0.05, 0.12), (1.2, 0.9, 1.1), (-0.4, -0.2, 0.3)

    def draw(j, h):  # the time t with lam e^{beta arm} t^k = h
        return (h / (lam[j] * np.exp(beta[j] * arm))) ** (1 / k[j])

    t01, t02 = draw(0, rng.exponential(size=n)), draw(1, rng.exponential(size=n))
    u = np.minimum(t01, t02)
    e = rng.exponential(size=n)
    if time_scale == "markov":  # H12(t) - H12(u) = e
        t12 = draw(2, e + lam[2] * np.exp(beta[2] * arm) * u ** k[2])
    else:
        t12 = u + draw(2, e)
    death_time = np.where(t01 < t02, t12, t02)
    cens = rng.uniform(12, 36, n)
    time = np.minimum(death_time, cens)
    progressed = (t01 < t02) & (t01 < cens)
    return bh.IllnessDeathData.from_arrays(
        arm=arm, site=None, prog_lower=np.where(progressed, t01, time),
        prog_upper=np.where(progressed, t01, np.inf), time=time,
        death=(death_time <= cens).astype(int)), beta


def check_agreement(d, time_scale, seed):
    fit = bh.IllnessDeath("weibull_ph", time_scale=time_scale, site_effect="none",
                          priors=VAGUE).fit(d, random_seed=seed)
    assert not fit.convergence_problems()
    post = fit.datatree["posterior"]["log_hr"]
    ref = ml_reference(d, time_scale)
    for t in TRANSITIONS:
        mle, se = ref[t]
        med = float(post.sel(transition=t).median())
        assert abs(med - mle) < 0.25 * se, (t, med, mle, se)
        # the posterior SD agrees with the ML standard error too (normal approximation at
        # this size: within 15%)
        assert float(post.sel(transition=t).std()) == pytest.approx(se, rel=0.15)
    return fit


@pytest.mark.parametrize("time_scale", ["markov", "semi_markov"])
def test_agreement_with_ml_on_simulated_data(time_scale):
    d, beta = simulate(500, time_scale, seed=7)
    fit = check_agreement(d, time_scale, seed=7)
    # and the truth is recovered: each log HR within 3 posterior SD of the value simulated
    post = fit.datatree["posterior"]["log_hr"]
    for t, b in zip(TRANSITIONS, beta):
        x = post.sel(transition=t)
        assert abs(float(x.median()) - b) < 3 * float(x.std()), t


def test_agreement_with_ml_on_the_colon_trial():
    """Recurrence and death of the colon trial (Lev+5FU vs observation; recurrence times
    exact; 5 recurrences recorded on the day of death count as deaths without recurrence,
    reported by a DataWarning)."""
    trial = bh.datasets.load_colon()
    with pytest.warns(bh.DataWarning, match="progression recorded at the time of death"):
        d = bh.IllnessDeathData.from_trial(trial, progression="recurrence", death="os")
    fit = check_agreement(d, "markov", seed=3)
    hr = fit.summary()
    # Lev+5FU: recurrence clearly reduced (published: about 40% lower recurrence rate)
    assert hr.loc["progression", "upper"] < 1.0


def test_no_result_depends_on_the_time_unit():
    """The example trial in days and in months: the same transition HRs (posterior medians
    within 0.1 posterior SD: the priors are declared in months and moved to the data's
    unit, so the posteriors are the same; what differs is Monte Carlo error) and the same
    medians once converted."""
    trial = bh.datasets.load_example_trial()
    fits = {u: bh.IllnessDeath("weibull_ph", site_effect="none").fit(
        trial.to_unit(u), random_seed=5) for u in ("months", "days")}
    a, b = (fits[u].datatree["posterior"]["log_hr"] for u in ("months", "days"))
    for t in TRANSITIONS:
        x, y = a.sel(transition=t), b.sel(transition=t)
        assert abs(float(x.median()) - float(y.median())) < 0.1 * float(x.std()), t
    m, d = (fits[u].medians(thin=4)["os"].median("draw") for u in ("months", "days"))
    np.testing.assert_allclose(d.sel(arm="sorafenib") / 30.4375, m.sel(arm="sorafenib"),
                               rtol=0.03)
