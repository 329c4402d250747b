"""The benchmark's compute floor times the function the sampler evaluates, on the fit's data.

The floor (benchmarks/bench.py) is one log-density-and-gradient evaluation times the
evaluations NUTS used; it is only a floor if the function it times is the one nutpie calls,
reading the refit's own data (not the data the model was compiled with)."""

import ctypes
import sys
from pathlib import Path

import numpy as np

import bayes_hcc as bh
from bayes_hcc.models import _nutpie, graph, sampling

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench  # noqa: E402


def _sampler_evaluation(compiled, x):
    """Log density and gradient through nutpie's C callback, as the sampler calls it."""
    dp = ctypes.POINTER(ctypes.c_double)
    grad, logp = np.zeros(len(x)), np.zeros(1)
    rc = compiled.compiled_logp_func.ctypes(len(x), x.ctypes.data_as(dp),
                                            grad.ctypes.data_as(dp), logp.ctypes.data_as(dp),
                                            ctypes.c_void_p(compiled.user_data.ctypes.data))
    assert rc == 0
    return logp[0], grad


def test_floor_times_the_samplers_function_on_the_refits_data():
    model = bh.PiecewiseExponential()
    first = bh.datasets.load_example_trial()
    second = bh.simulate_trial(130, hr_os=0.7, random_seed=5)
    model.fit(first, "os", random_seed=1, draws=20, tune=20, chains=1, check=False,
              log_likelihood=False)  # compiles (or reuses) the primary model
    *_, data1, key1 = graph.prepare(model, first, "os")
    *_, data2, key2 = graph.prepare(model, second, "os")
    assert key1 == key2  # one compiled model serves both trials
    m, compiled = sampling._CACHE[(key1, "nutpie")]
    refit = _nutpie.with_data(compiled, m, data2)

    inner, args, x = bench.gradient_function(refit)
    logp, grad = inner(x, *args)
    logp_sampler, grad_sampler = _sampler_evaluation(refit, x)
    # The same compiled code on the same data: equal to rounding.
    np.testing.assert_allclose(float(logp), logp_sampler, rtol=1e-12)
    np.testing.assert_allclose(grad, grad_sampler, rtol=1e-10, atol=1e-12)
    # ...and those data are the refit's: the first trial's data give another density.
    other, _ = _sampler_evaluation(_nutpie.with_data(compiled, m, data1), x)
    assert abs(other - logp_sampler) > 1.0
