"""Test helpers: fits with fabricated (exactly known) posteriors, no sampling."""

import contextlib
import json

import numpy as np
import pandas as pd
import xarray as xr

from bayes_hcc.models.fit import Fit
from bayes_hcc.spec.model_spec import dump_spec, spec_from_dict


def fabricated_fit(family, params: dict, *, arm, site, X=None, site_effect="none",
                   arm_by_site=None, sites=None, time=None, event=None, model="weibull_ph",
                   max_follow_up=60.0) -> Fit:
    """A Fit whose posterior holds ``params`` (arrays of shape (chain, draw, ...))."""
    arm = np.asarray(arm, np.int64)
    site = np.asarray(site, np.int64)
    n = len(arm)
    X = np.zeros((n, 0)) if X is None else np.asarray(X, float)
    sites = sites or [f"s{i}" for i in range(int(site.max()) + 1)]
    # Default: everyone followed (censored) to max_follow_up, so the per-arm follow-up that
    # medians, landmarks and RMST are checked against is max_follow_up in both arms.
    time = np.full(n, float(max_follow_up)) if time is None else np.asarray(time, float)
    event = np.zeros(n, np.int64) if event is None else np.asarray(event, np.int64)
    post = {}
    for k, v in params.items():
        v = np.asarray(v, float)
        dims = ("chain", "draw") + tuple(
            {"site_effect": "site", "site_z": "site", "arm_site_effect": "site",
             "log_baseline_hazard": "interval", "beta": "covariate"}[k] for _ in v.shape[2:])
        post[k] = (dims, v)
    spec = spec_from_dict({
        "name": "fabricated", "endpoint": "os", "family": model,
        "site": {"effect": site_effect, "parametrization": "noncentered",
                 "arm_by_site": arm_by_site or "none"},
        "covariates": [f"x{j}" for j in range(X.shape[1])]})
    dt = xr.DataTree.from_dict({
        "/posterior": xr.Dataset(post).assign_coords(
            chain=np.arange(next(iter(post.values()))[1].shape[0]),
            draw=np.arange(next(iter(post.values()))[1].shape[1])),
        "/constant_data": xr.Dataset({"arm": ("patient", arm), "site": ("patient", site),
                                      "X": (("patient", "covariate"), X),
                                      "os": ("patient", event)}),
        "/observed_data": xr.Dataset({"os": ("patient", time)}),
    })
    dt.attrs = {"spec_toml": dump_spec(spec), "spec_hash": spec.hash,
                "bayes_hcc_family": json.dumps(family.settings()), "bayes_hcc_priors": "{}",
                "endpoint": "os", "arms": json.dumps(["sorafenib", "tace_sorafenib"]),
                "sites": json.dumps(list(sites)), "time_unit": "months",
                "max_follow_up": max_follow_up, "data_fingerprint": "fabricated",
                "random_seed": 0}
    return Fit(dt)


def const(value, chains=2, draws=3, extra=()):
    """The same value in every draw."""
    return np.broadcast_to(np.asarray(value, float), (chains, draws) + tuple(extra)).copy()


def assert_same_trial(got, want) -> None:
    """Two TrialData equal as data: the patient table (times to 1e-12), the scan table,
    the cut date and the fingerprint."""
    pd.testing.assert_frame_equal(got.to_frame(), want.to_frame(), check_exact=False,
                                  rtol=1e-12, atol=1e-12)
    if want.assessments is None:
        assert got.assessments is None
    else:
        pd.testing.assert_frame_equal(got.assessments, want.assessments)
    assert got.cut_date == want.cut_date
    assert got.fingerprint == want.fingerprint


@contextlib.contextmanager
def python_linker():
    """PyTensor functions compiled inside use the Python linker (each Op's ``perform``), with
    the default rewrites except elemwise fusion (a performance rewrite whose fused kernels
    the Python linker cannot run beyond 32 operands; it does not change the arithmetic's
    meaning). No numba compile: 3-12 s per graph on an empty compile cache."""
    import pytensor
    from pytensor.compile.mode import Mode

    mode = Mode(linker="py", optimizer="fast_run").excluding("fusion")
    with pytensor.config.change_flags(mode=mode):
        yield


def complete_many(sim, reps: int, rng, at, group, draw=lambda r: 0):
    """``reps`` trial completions by a prediction simulator (``monitoring.future``): the
    residual days (after their observed follow-up) of the enrolled patients ``at``, shape
    (reps, len(at)); the days from randomization to the event of the new control-arm
    patients, by the ``group`` (one value per enrolled patient) of the enrolled patient
    each was drawn from; the drawn rows and the new patients' sites; and the last
    completion. ``draw(r)``: the posterior draw of completion r."""
    n0 = len(sim.entry)
    residual = np.empty((reps, len(at)))
    new = {g: [] for g in np.unique(group)}
    rows, sites = [], []
    for r in range(reps):
        out = sim.simulate(draw(r), rng)
        residual[r] = out["death"][at] - sim.entry[at] - sim.obs[at]
        src = out["covariate_row"][n0:]
        rows.append(src)
        sites.append(out["site"][n0:])
        control = out["arm"][n0:] == 0
        for g in new:
            m = control & (group[src] == g)
            new[g].extend(out["death"][n0:][m] - out["entry"][n0:][m])
    return (residual, {g: np.asarray(v) for g, v in new.items()}, np.concatenate(rows),
            np.concatenate(sites), out)


def mspline_hazards(knots, boundary: float, p: dict, eta: float):
    """An M-spline baseline's hazard and cumulative hazard written from the definition, for
    checking the package's (``families.mspline``): h(t) = exp(log_scale + eta) sum_j c_j
    M_j(t), with M_j the cubic B-spline B_j on the knots (ends repeated 4 times) times
    4 / (t_(j+4) - t_j), constant beyond the boundary. H(t) integrates h: Gauss-Legendre
    with 8 nodes is exact for a cubic on each knot interval (not the family's I-spline
    antiderivative). ``p``: log_scale (a number) and coefficients (a simplex)."""
    from scipy import integrate
    from scipy.interpolate import BSpline

    knots = np.asarray(knots, float)
    t_knots = np.concatenate([np.zeros(4), knots, np.full(4, boundary)])
    n_basis = len(t_knots) - 4
    scale = 4.0 / (t_knots[4:4 + n_basis] - t_knots[:n_basis])
    spline = BSpline(t_knots, np.asarray(p["coefficients"], float) * scale, 3,
                     extrapolate=False)
    level = float(np.exp(p["log_scale"] + eta))
    edges = np.concatenate([[0.0], knots, [boundary]])

    def h(t):
        return level * float(spline(min(t, boundary)))

    def H(t):
        inside = sum(integrate.fixed_quad(np.vectorize(h), a, min(t, b), n=8)[0]
                     for a, b in zip(edges[:-1], edges[1:]) if t > a)
        return inside + max(t - boundary, 0.0) * h(boundary)

    return h, H


def six_patient_trial(os_time, os_event):
    """A six-patient trial at one site: three controls, then three treated, with these OS
    times and event indicators. For the tables' behaviour on data with little
    information."""
    import bayes_hcc as bh

    df = pd.DataFrame({"patient_id": [f"P{i}" for i in range(6)], "site": "A",
                       "arm": ["sorafenib"] * 3 + ["tace_sorafenib"] * 3,
                       "os_time": os_time, "os_event": os_event})
    return bh.read_trial(df)


def six_patient_fit(os_time, os_event):
    """An exponential fit (one site, no site effect, 2 x 200 draws, unchecked) of
    ``six_patient_trial``."""
    import bayes_hcc as bh

    return bh.ExponentialPH(site_effect="none").fit(six_patient_trial(os_time, os_event),
                                                    "os", draws=200, tune=200, chains=2,
                                                    random_seed=1, check=False)
