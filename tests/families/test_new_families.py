"""The two families added through the registry alone: Gompertz PH against an independent
maximum-likelihood fit, and the M-spline baseline of degree 0 against the piecewise model."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from statsmodels.tools.numdiff import approx_hess3

import bayes_hcc as bh
from bayes_hcc.families.mspline import MSplineFamily
from bayes_hcc.families.piecewise import PiecewiseFamily
from bayes_hcc.models.likelihood import loglik

VAGUE_GOMPERTZ = {"log_hr": bh.Prior("Normal", mu=0.0, sigma=10.0),
                  "log_lambda": bh.Prior("Normal", mu=-2.5, sigma=10.0),
                  "gamma": bh.Prior("Normal", mu=0.0, sigma=2.0)}


def _gompertz_mle(time, event, arm):
    """Maximum likelihood of h(t) = exp(a + b arm + c t), written out here (not with the
    package's family code): log L = sum d (a + b arm + c t) - exp(a + b arm) (e^(ct) - 1) / c.
    Returns estimates (a, b, c) and their standard errors (inverse numeric Hessian)."""
    def nll(theta):
        a, b, c = theta
        lin = a + b * arm
        cum = np.exp(lin) * (np.expm1(c * time) / c if abs(c) > 1e-12 else time)
        return -(np.sum(event * (lin + c * time)) - np.sum(cum))

    res = optimize.minimize(nll, np.array([np.log(event.sum() / time.sum()), 0.0, 0.01]),
                            method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000})
    res = optimize.minimize(nll, res.x, method="BFGS", options={"gtol": 1e-9})
    cov = np.linalg.inv(approx_hess3(res.x, nll))
    return res.x, np.sqrt(np.diag(cov))


@pytest.mark.parametrize("name, endpoint", [("veteran", "os"), ("rats", "tumour")])
def test_gompertz_agrees_with_maximum_likelihood(name, endpoint):
    """Vague priors, no site effect: posterior means of the log HR and of the slope within
    0.25 SE of the MLE (the posterior mean and the MLE differ by O(1/n); with 40-128 events
    that is well under a quarter of an SE, and 4,000 draws add ~0.02 SE of Monte Carlo
    error)."""
    trial = getattr(bh.datasets, f"load_{name}")()
    ep = trial.endpoint(endpoint)
    (a, b, c), (se_a, se_b, se_c) = _gompertz_mle(ep.time, ep.event.astype(float),
                                                   ep.arm.astype(float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.DataWarning)
        fit = bh.GompertzPH(site_effect="none", priors=VAGUE_GOMPERTZ).fit(
            trial, endpoint, random_seed=2)
    assert bh.check(fit, warn=False).ok
    post = fit.posterior
    unit_months = fit.family.unit_months  # c = gamma x unit length in months
    assert abs(float(post["log_hr"].mean()) - b) < 0.25 * se_b
    assert abs(float(post["gamma"].mean()) * unit_months - c) < 0.25 * se_c


@pytest.mark.parametrize("model, names", [
    (bh.GompertzPH(site_effect="none"), ("log_hr", "gamma")),
    (bh.MSplinePH(site_effect="none"), ("log_hr", "log_scale"))], ids=["gompertz", "mspline"])
def test_new_families_do_not_depend_on_the_time_unit(example_trial, model, names):
    """gamma is per month and the M-spline's log_scale is a cumulative hazard at the end of
    follow-up (knots at quantiles rounded in months): the example trial in days and in
    months gives the same posterior (within 3 MCSE of each other)."""
    import arviz_stats as azs

    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for unit in ("months", "days"):
            fits[unit] = model.fit(example_trial.to_unit(unit), random_seed=5)
    for v in names:
        m = [float(fits[u].posterior[v].mean()) for u in fits]
        se = np.hypot(*[float(azs.mcse(fits[u].posterior[v], method="mean")) for u in fits])
        assert abs(m[0] - m[1]) < 3 * se, v


def test_mspline_degree_0_has_the_piecewise_likelihood(example_trial):
    """Exactly: with knots = cuts, log rate_j = log_scale + log c_j - log w_j, the M-spline
    log-likelihood of every patient equals the piecewise model's, for any rates (here 5
    random sets, on the example trial's OS with events on and off the cut points)."""
    ep = example_trial.endpoint("os")
    cuts = (3.0, 6.0, 12.0)
    boundary = float(ep.time.max())
    pw = PiecewiseFamily(cuts)
    ms = MSplineFamily(cuts, boundary, degree=0)
    widths = np.diff(np.concatenate([[0.0], cuts, [boundary]]))
    rng = np.random.default_rng(0)
    time = np.concatenate([ep.time, [3.0, 6.0, boundary, boundary * 1.5]])
    event = np.concatenate([ep.event, [1, 1, 1, 0]]).astype(float)
    eta = rng.normal(0, 0.3, size=(5, len(time)))
    alpha = rng.normal(-2.0, 0.6, size=(5, 4))
    mass = np.exp(alpha) * widths
    ms_params = {"log_scale": np.log(mass.sum(1)), "coefficients": mass / mass.sum(1)[:, None]}
    a = loglik(np, pw, {"log_baseline_hazard": alpha}, eta, time=time, kind=event)
    b = loglik(np, ms, ms_params, eta, time=time, kind=event)
    np.testing.assert_allclose(b, a, rtol=1e-12)


@pytest.mark.slow  # 20,000 patients, patient-level M-spline likelihood: about a minute
def test_mspline_degree_0_gives_the_piecewise_posterior():
    """The same posterior: a simulated trial of 20,000 patients (so the two models' vague
    baseline priors, which differ in form, move the posterior by < 0.001), piecewise with
    independent vague log rates vs M-spline of degree 0 with the same knots; the log HR and
    the log rates agree within 3 MCSE."""
    import arviz_stats as azs

    rng = np.random.default_rng(4)
    n = 20_000
    arm = rng.permutation(np.arange(n) % 2)
    t = rng.weibull(1.2, size=n) * 10.0 * np.exp(0.3 * arm / 1.2)
    admin = 6.0 + 18.0 * rng.uniform(size=n)
    frame = pd.DataFrame({"patient_id": [f"P{i:05d}" for i in range(n)], "site": "s1",
                          "arm": np.where(arm == 1, "tace_sorafenib", "sorafenib"),
                          "os_time": np.minimum(t, admin), "os_event": (t <= admin).astype(int)})
    trial = bh.read_trial(frame)
    cuts = [4.0, 8.0, 14.0]
    boundary = float(frame["os_time"].max())
    vague = {"log_hr": bh.Prior("Normal", mu=0.0, sigma=10.0)}
    kw = dict(random_seed=8, log_likelihood=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pw = bh.PiecewiseExponential(cuts, baseline_prior="independent", site_effect="none",
                                     priors={**vague, "log_baseline_hazard": bh.Prior(
                                         "Normal", mu=-2.5, sigma=10.0)}).fit(trial, **kw)
        ms = bh.MSplinePH(cuts, degree=0, boundary=boundary, site_effect="none",
                          priors={**vague, "log_scale": bh.Prior("Normal", mu=0.0,
                                                                 sigma=10.0)}).fit(trial, **kw)
    widths = np.diff(np.concatenate([[0.0], cuts, [boundary]]))
    ms_rates = (ms.posterior["log_scale"] + np.log(ms.posterior["coefficients"])
                - xr_widths(widths, ms.posterior["coefficients"]))
    pairs = [(pw.posterior["log_hr"], ms.posterior["log_hr"])]
    for j in range(len(widths)):
        pairs.append((pw.posterior["log_baseline_hazard"].isel(interval=j),
                      ms_rates.isel(basis=j)))
    for a, b in pairs:
        se = np.hypot(float(azs.mcse(a, method="mean")), float(azs.mcse(b, method="mean")))
        assert abs(float(a.mean()) - float(b.mean())) < 3 * se


def xr_widths(widths, like):
    import xarray as xr

    return xr.DataArray(np.log(widths), dims=("basis",), coords={"basis": like["basis"]})


def test_mspline_knots_beyond_follow_up_are_an_error(example_trial):
    """A knot at or after the boundary (the longest observed time by default) is refused
    with the fix, never dropped silently."""
    with pytest.raises(bh.ModelError, match="every knot must be before the boundary"):
        bh.MSplinePH([3.0, 500.0]).fit(example_trial)
    fam = bh.MSplinePH([3.0, 50.0], boundary=60.0).family_for(
        example_trial.endpoint("os").time, example_trial.endpoint("os").event)
    assert fam.boundary == 60.0 and list(fam.knots) == [3.0, 50.0]
