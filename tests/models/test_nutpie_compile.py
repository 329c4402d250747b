"""The disk-cacheable nutpie compile (models/_nutpie.py) samples exactly what nutpie's own
compile samples: same log density, same gradient, hence bit-identical draws for one seed."""

import ctypes
import json
import os

import numpy as np
import nutpie
import pytest

import bayes_hcc as bh
from bayes_hcc.models import _nutpie, graph, sampling


def _model(model, trial, endpoint="os"):
    ep, family, priors, X, scale, data, key = graph.prepare(model, trial, endpoint)
    m = graph.build_pymc(family, priors, data, site_effect=model.site_effect,
                           arm_by_site=model.arm_by_site, n_sites=len(ep.sites),
                           n_cov=X.shape[1],
                           site_parametrization=graph.site_parametrization_for(model, ep))
    return m, data


def _draws(compiled, m=None, **data):
    """Draws of ``compiled``, refitted to ``data`` (initial points too when the model ``m``
    is given: ``_nutpie.with_data``)."""
    known = {v.name for v in compiled.shared_var_keys}
    if data and m is not None:
        compiled = _nutpie.with_data(compiled, m, data)
    elif data:
        compiled = compiled.with_data(**{k: v for k, v in data.items() if k in known})
    tr = nutpie.sample(compiled, draws=150, tune=150, chains=2, cores=1, seed=3,
                       progress_bar=False)
    return tr["posterior"].to_dataset()


@pytest.mark.parametrize("model", [bh.PiecewiseExponential(), bh.WeibullPH()],
                         ids=["piecewise", "weibull"])
def test_cached_callbacks_give_nutpies_draws_and_refit(model, example_trial):
    m, _ = _model(model, example_trial)
    with sampling._strict_math():
        ours = _nutpie.compile_model(m)
        theirs = nutpie.compile_pymc_model(m)
    assert _nutpie.FALLBACK_REASON is None, _nutpie.FALLBACK_REASON  # fast path in use
    a, b = _draws(ours), _draws(theirs)
    for name in ("log_hr", "site_sd"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    # Refit on a data cut (for the Weibull: fewer patients, arrays of another length).
    cut = example_trial.cut("2018-12-31")
    _, data = _model(model, cut)
    a, b = _draws(ours, m, **data), _draws(theirs, m, **data)
    np.testing.assert_array_equal(a["log_hr"].values, b["log_hr"].values)


def test_log_density_and_gradient_match_pytensor(example_trial):
    """The C callback, called through ctypes as nutpie's Rust sampler calls it, returns
    PyTensor's log density and gradient exactly."""
    m, _ = _model(bh.WeibullPH(), example_trial)
    with sampling._strict_math():
        ours = _nutpie.compile_model(m)
    dptr = ctypes.POINTER(ctypes.c_double)
    cb = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, dptr, dptr, dptr,
                          ctypes.c_void_p)(ours.compiled_logp_func.address)
    rng = np.random.default_rng(0)
    out, lp = np.zeros(ours.n_dim), np.zeros(())

    def call(x, dim=ours.n_dim):
        return cb(dim, x.ctypes.data_as(dptr), out.ctypes.data_as(dptr), lp.ctypes.data_as(dptr),
                  ours.user_data.ctypes.data)

    for _ in range(5):
        x = rng.normal(scale=0.5, size=ours.n_dim)
        logp, grad = ours.logp_func(x)
        assert call(x) == 0
        assert float(lp) == float(logp)
        np.testing.assert_array_equal(out, grad)
    # A wrong dimension is refused with nutpie's code (-1), not read out of bounds; a
    # non-finite log density is reported as such (4), as nutpie's callback does.
    assert call(x, dim=ours.n_dim + 1) == -1
    assert call(np.full(ours.n_dim, np.inf)) in (3, 4)


def test_a_failure_inside_the_log_density_callback_is_reported_with_nutpies_code():
    """Only the graph function's call is inside the callback's ``try`` (numba compiles a try
    block's calls with exception handling: a new graph's callback compiled in about half
    the time without the data views there). Nothing outside it may raise: an exception
    there would reach nutpie as the C default, 0 ("ok"), with the log density unset. A
    failure in the graph and a data record whose size disagrees with its shape both
    return nutpie's code 1."""
    import pymc as pm
    import pytensor.tensor as pt

    with pm.Model() as m:
        d = pm.Data("d", np.arange(3.0))
        x = pm.Normal("x")
        pm.Potential("p", -0.5 * ((pt.specify_shape(d, (3,)) - x) ** 2).sum())
    with sampling._strict_math():
        ours = _nutpie.compile_model(m)
    assert _nutpie.FALLBACK_REASON is None, _nutpie.FALLBACK_REASON
    dptr = ctypes.POINTER(ctypes.c_double)
    cb = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, dptr, dptr, dptr,
                          ctypes.c_void_p)(ours.compiled_logp_func.address)

    def call(user_data):
        x, out, lp = np.array([0.3]), np.zeros(1), np.zeros(())
        rc = cb(1, x.ctypes.data_as(dptr), out.ctypes.data_as(dptr),
                lp.ctypes.data_as(dptr), user_data.ctypes.data)
        return rc, float(lp), float(out[0])

    # -0.5 * sum((d - x)^2) with d = 0, 1, 2 and x = 0.3, minus the standard normal's
    # -0.5 x^2 + log(2 pi)/2; gradient sum(d - x) - x
    want = -0.5 * np.sum((np.arange(3.0) - 0.3) ** 2) - 0.5 * 0.3 ** 2 - 0.5 * np.log(2 * np.pi)
    rc, lp, g = call(ours.user_data)
    assert rc == 0 and lp == pytest.approx(want) and g == pytest.approx(3.0 - 0.9 - 0.3)
    # the graph raises (its data no longer have the shape it was built for)
    assert call(ours.with_data(d=np.arange(4.0)).user_data)[0] == 1
    # a record whose size is not the product of its shape: refused before it is viewed
    bad = ours.user_data.copy()
    bad["shared"]["size"]["d0"] = 2
    assert call(bad)[0] == 1


def test_callbacks_call_the_graph_function_without_pytensors_wrappers():
    """The callbacks call the numba function of the graph itself, not PyTensor's forwarding
    wrappers around it (compiling those costs a further pass over the whole graph: 0.5-1.6 s
    of a first compile). If PyTensor stops wrapping this way, the helper returns the
    function it was given (still correct, as the ctypes test above checks); this test
    says the saving is gone. The function found computes what the PyTensor function does."""
    import inspect

    import pytensor
    import pytensor.tensor as pt

    x = pt.vector("x")
    fn = pytensor.function([x], [pt.exp(x).sum(), pt.log1p(x ** 2)], mode="NUMBA")
    inner = _nutpie._graph_function(fn.vm.jit_fn)
    assert inner is not fn.vm.jit_fn
    assert inner.targetoptions.get("no_cpython_wrapper") is True
    assert not inner.py_func.__code__.co_flags & inspect.CO_VARARGS
    v = np.array([0.5, -1.0, 2.0])
    # called from numba as the callback calls it (no Python entry point of its own)
    call = __import__("numba").njit(lambda a: inner(a))
    for got, want in zip(call(v), fn(v)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("model", [bh.PiecewiseExponential(),
                                   bh.WeibullPH(arm_by_site="random")],
                         ids=["piecewise", "weibull-armbysite"])
def test_trace_conversion_equals_nutpies(model, example_trial):
    """Draws and sample stats read straight from nutpie's Arrow trace are identical to
    nutpie's own ArviZ conversion (variables, dims, coordinates, dtypes, values, including
    the missing values of the divergence columns), with the warm-up rows dropped."""
    import xarray as xr

    m, _ = _model(model, example_trial)
    with sampling._strict_math():
        compiled = _nutpie.compile_model(m)
    kw = dict(draws=120, tune=80, chains=3, cores=2, seed=5, progress_bar=False,
              save_warmup=False)
    ours = _nutpie.sample(compiled, **kw)
    assert _nutpie.TRACE_FALLBACK_REASON is None, _nutpie.TRACE_FALLBACK_REASON
    theirs = nutpie.sample(compiled, **kw)
    for group in ("posterior", "sample_stats"):
        xr.testing.assert_identical(ours[group].drop_attrs(),
                                    theirs[group].to_dataset().drop_attrs())
    assert ours["posterior"].sizes["draw"] == 120 and ours["posterior"].sizes["chain"] == 3


def _graph_cached_compile(model, trial, path, monkeypatch):
    """compile_model with the graph cache at ``path`` (the process's compiledir is fixed)."""
    monkeypatch.setattr(_nutpie, "_graph_cache_file", lambda key: path if key else None)
    m, data = _model(model, trial)
    with sampling._strict_math():
        compiled = _nutpie.compile_model(m, structure_key="k")
    return compiled, data, _nutpie.GRAPH_CACHE_STATUS, m


def test_graph_cache_stores_no_data_and_gives_the_same_draws(example_trial, tmp_path,
                                                              monkeypatch):
    import pickle

    path = tmp_path / "g.pkl"
    built, _, status, built_model = _graph_cached_compile(bh.WeibullPH(), example_trial, path,
                                                          monkeypatch)
    assert status == "miss" and path.exists()
    # The stored functions hold no data: arrays are empty, scalars (prior parameters) 0.
    stored = pickle.loads(_nutpie._read_signed(path))
    values = {v.name: np.asarray(v.get_value()) for fn in stored[2:4] for v in fn.get_shared()}
    assert set(values) >= {"tf__log_t", "event", "arm", "site_idx", "prior__log_hr__sigma"}
    assert all(a.size == 0 if a.ndim else a == 0 for a in values.values())
    # Loaded for a data cut: the cut's data are in the functions, and the draws equal those
    # of the functions built in this process given the same data.
    cut = example_trial.cut("2018-12-31")
    loaded, data, status, _ = _graph_cached_compile(bh.WeibullPH(), cut, path, monkeypatch)
    assert status == "hit"
    np.testing.assert_array_equal(loaded.logp_func.get_shared()[0].get_value(),
                                  data[loaded.logp_func.get_shared()[0].name])
    a, b = _draws(loaded), _draws(built, built_model, **data)
    for name in ("log_hr", "site_sd", "log_shape"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_graph_cache_stores_graphs_holding_an_opfromgraph(example_trial, tmp_path,
                                                          monkeypatch):
    """A mixture prior's graph holds a PyTensor OpFromGraph whose cached gradient Op cannot
    be pickled: the entry is stored without that cache (it used to fail to store, so every
    new process rebuilt such graphs), and loaded it gives the same draws."""
    mixture = bh.Prior.mixture([bh.Prior("Normal", mu=-0.3, sigma=0.15),
                                bh.Prior("Normal", mu=0.0, sigma=2.0)], weights=[0.8, 0.2])
    model = bh.WeibullPH(priors={"log_hr": mixture})
    path = tmp_path / "g.pkl"
    built, data, status, built_model = _graph_cached_compile(model, example_trial, path,
                                                             monkeypatch)
    assert status == "miss" and path.exists(), status
    loaded, _, status, _ = _graph_cached_compile(model, example_trial, path, monkeypatch)
    assert status == "hit", status
    a, b = _draws(loaded), _draws(built, built_model, **data)
    for name in ("log_hr", "log_shape"):
        np.testing.assert_array_equal(a[name].values, b[name].values)


def test_damaged_graph_cache_entry_is_rebuilt(example_trial, tmp_path, monkeypatch):
    path = tmp_path / "g.pkl"
    path.write_bytes(b"not a pickle")
    compiled, _, status, _ = _graph_cached_compile(bh.PiecewiseExponential(), example_trial,
                                                path, monkeypatch)
    assert status.startswith("error: UntrustedCacheEntry")
    assert _draws(compiled)["log_hr"].size == 300  # the fit itself is unaffected
    _, _, status, _ = _graph_cached_compile(bh.PiecewiseExponential(), example_trial, path,
                                         monkeypatch)
    assert status == "hit"  # the rebuilt entry replaced the damaged one


def test_graph_cache_key_changes_with_what_the_graph_depends_on(monkeypatch):
    base = _nutpie._graph_cache_file("structure")
    assert base is not None and base == _nutpie._graph_cache_file("structure")
    assert _nutpie._graph_cache_file("other structure") != base
    assert _nutpie._graph_cache_file(None) is None
    monkeypatch.setattr(_nutpie, "_code_fingerprint", lambda: "edited source")
    assert _nutpie._graph_cache_file("structure") != base


def test_graph_cache_keeps_a_bounded_number_of_entries(example_trial, tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(_nutpie, "GRAPH_CACHE_MAX_ENTRIES", 3)
    for i in range(4):  # older entries, e.g. from earlier package versions
        old = tmp_path / f"old{i}.pkl"
        old.write_bytes(b"x")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    _, _, status, _ = _graph_cached_compile(bh.PiecewiseExponential(), example_trial,
                                         tmp_path / "new.pkl", monkeypatch)
    assert status == "miss"
    assert sorted(f.name for f in tmp_path.glob("*.pkl")) == ["new.pkl", "old2.pkl", "old3.pkl"]


def test_unwritable_graph_cache_does_not_fail_the_compile(example_trial, tmp_path,
                                                           monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory should be")
    compiled, _, status, _ = _graph_cached_compile(bh.WeibullPH(), example_trial,
                                                blocker / "g.pkl", monkeypatch)
    assert status.startswith("error: ")
    assert _draws(compiled)["log_hr"].size == 300
    # The next compile with a usable location reports a plain miss (no stale status).
    _, _, status, _ = _graph_cached_compile(bh.WeibullPH(), example_trial, tmp_path / "g.pkl",
                                         monkeypatch)
    assert status == "miss"


class _Planted:
    """Unpickling this creates the marker file: what a planted cache entry could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("form", ["raw pickle", "forged signature", "another user's key"])
def test_planted_cache_entry_is_not_executed(example_trial, tmp_path, monkeypatch, form):
    """A file put in the cache directory in place of an entry never runs: entries are
    unpickled only when their HMAC verifies with this user's key; the fit recompiles."""
    import hashlib
    import hmac
    import pickle

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    path = cache / "g.pkl"
    marker = tmp_path / "planted-code-ran"
    payload = pickle.dumps(_Planted(marker))
    if form == "raw pickle":
        path.write_bytes(payload)
    elif form == "forged signature":
        path.write_bytes(_nutpie.ENTRY_MAGIC + b"0" * 64 + b"\n" + payload)
    else:
        sig = hmac.new(b"k" * 32, path.name.encode() + b"\0" + payload,
                       hashlib.sha256).hexdigest().encode()
        path.write_bytes(_nutpie.ENTRY_MAGIC + sig + b"\n" + payload)
    compiled, _, status, _ = _graph_cached_compile(bh.WeibullPH(), example_trial, path,
                                                monkeypatch)
    assert not marker.exists()
    assert status.startswith("error: UntrustedCacheEntry"), status
    assert _draws(compiled)["log_hr"].size == 300
    _, _, status, _ = _graph_cached_compile(bh.WeibullPH(), example_trial, path, monkeypatch)
    assert status == "hit" and not marker.exists()  # the rebuilt entry is signed
    key = tmp_path / "config" / "bayes_hcc" / "cache.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"


def test_cache_directory_writable_by_others_is_not_used(example_trial, tmp_path,
                                                        monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.warns(bh.errors.CacheWarning, match="writable by other users"):
        compiled, _, status, _ = _graph_cached_compile(bh.WeibullPH(), example_trial,
                                                    shared / "g.pkl", monkeypatch)
    assert status.startswith("off: ") and not (shared / "g.pkl").exists()
    assert _draws(compiled)["log_hr"].size == 300


def test_key_readable_by_others_is_refused(example_trial, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    key = tmp_path / "config" / "bayes_hcc" / "cache.key"
    key.parent.mkdir(parents=True)
    key.write_bytes(b"x" * 32)
    key.chmod(0o644)
    cache = tmp_path / "c"
    cache.mkdir(mode=0o700)
    _, _, status, _ = _graph_cached_compile(bh.WeibullPH(), example_trial, cache / "g.pkl",
                                         monkeypatch)
    assert status.startswith("error: UntrustedCacheEntry") and "mode 0600" in status


def test_key_created_by_another_worker_at_the_same_moment_is_waited_for(tmp_path,
                                                                        monkeypatch):
    """On first use a pool's two workers can both find no key: one creates the file, the
    other's exclusive create fails. That one must read the key once written, not refuse
    the empty file as truncated (the writer here takes 0.2 s; the reader waits up to 2 s).
    A key still short after that is refused as before."""
    import threading

    from bayes_hcc.models import _nutpie

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    key = _nutpie.cache_key_file()
    real_open = os.open

    def other_worker_first(path, flags, mode=0o777):
        os.close(real_open(path, flags, 0o600))  # the other worker's create
        threading.Timer(0.2, lambda: key.write_bytes(b"k" * 32)).start()
        raise FileExistsError(path)

    monkeypatch.setattr(_nutpie.os, "open", other_worker_first)
    assert _nutpie._cache_key() == b"k" * 32
    key.unlink()

    def other_worker_never_writes(path, flags, mode=0o777):
        os.close(real_open(path, flags, 0o600))
        raise FileExistsError(path)

    monkeypatch.setattr(_nutpie.os, "open", other_worker_never_writes)
    with pytest.raises(_nutpie.UntrustedCacheEntry, match="truncated"):
        _nutpie._cache_key()


def test_step_sds_are_data_so_one_compile_serves_every_value(example_trial):
    """The piecewise random walk's step SD (``rw_sd``) and a time-varying HR's (``tv_sd``)
    reach the graph as data, as the priors' parameters do: a sensitivity analysis of
    either compiles once. The graph compiled for one pair of values, given another pair's
    data, has the log density of a model built for that pair (PyMC's own, uncompiled)."""
    kw = dict(time_varying_hr=True)  # as test_time_varying_hr's: the same compiled graph
    a = bh.PiecewiseExponential(rw_sd=0.3, tv_sd=0.2, **kw)
    b = bh.PiecewiseExponential(rw_sd=1.0, tv_sd=0.6, **kw)
    assert graph.prepare(a, example_trial, "os")[-1] == graph.prepare(b, example_trial, "os")[-1]
    ma, _ = _model(a, example_trial)
    mb, data_b = _model(b, example_trial)
    with sampling._strict_math():
        compiled = _nutpie.with_data(_nutpie.compile_model(ma), ma, data_b)
    reference = mb.compile_logp(mode="FAST_COMPILE")  # built for b: python linker
    n_free = len(mb.value_vars)  # the sampler's coordinates: the free variables, first
    names, slices, shapes = (part[:n_free] for part in compiled.shape_info)
    assert set(names) == {v.name for v in mb.value_vars}
    dptr = ctypes.POINTER(ctypes.c_double)
    cb = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, dptr, dptr, dptr,
                          ctypes.c_void_p)(compiled.compiled_logp_func.address)
    out, lp = np.zeros(compiled.n_dim), np.zeros(())
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.normal(scale=0.5, size=compiled.n_dim)
        assert cb(compiled.n_dim, x.ctypes.data_as(dptr), out.ctypes.data_as(dptr),
                  lp.ctypes.data_as(dptr), compiled.user_data.ctypes.data) == 0
        point = {n: x[s].reshape(sh) for n, s, sh in zip(names, slices, shapes)}
        assert float(lp) == pytest.approx(float(reference(point)), rel=1e-10)
    # and a's own model gives another density at the last point: the SDs do matter
    assert float(ma.compile_logp(mode="FAST_COMPILE")(point)) != pytest.approx(float(lp))
    # End to end: the second variant reuses the compiled sampler.
    fits = [m.fit(example_trial, draws=50, tune=50, chains=1, random_seed=1, check=False)
            for m in (a, b)]
    assert json.loads(fits[1].datatree.attrs["timing_seconds"])["compile"] == 0
