"""Compile a PyMC model for nutpie with C callbacks that numba caches on disk.

``nutpie.compile_pymc_model`` wraps PyTensor's log-density function in numba C callbacks
(``numba.cfunc``) that cannot be cached: they close over per-process objects. Every new
process therefore spent 7-9 s in numba type inference before sampling a single draw, even when
PyTensor's own compiled code came from the on-disk cache (profiled: the time is in
``numba.core.ccallback._compile_uncached``; about half of it in the generic ``out[...] = grad``
slice assignment).

Here the two callbacks are generated as plain source without closures and registered with
PyTensor's numba cache locator under a key made of their source, the cache key of the PyTensor
function they call and the layout of the data record. A second process loads them from
``<base_compiledir>/numba`` in well under a second. The callbacks read the data through the
same pointer record as nutpie's, so ``CompiledPyMCModel.with_data`` refits work unchanged, and
they evaluate the same PyTensor function (its numba graph function, called without PyTensor's
forwarding wrappers: ``_graph_function``): draws are bit-identical to ``nutpie.compile_pymc_model``
for the same seed (tested).

The PyTensor functions themselves (log density with gradient, expansion) are built, rewritten
and compiled once per graph and stored in ``<compiledir>/bayes_hcc_graphs`` without their
data (``_graph_cache_file``); a new process loads them instead of rebuilding them.

This uses nutpie's internal helpers (``_make_functions``, ``make_user_data``,
``CompiledPyMCModel``); pyproject pins nutpie to a minor series. If they change,
``compile_model`` falls back to ``nutpie.compile_pymc_model`` (slower to start, same draws)
and records why in ``FALLBACK_REASON``; the test suite asserts the fast path is active, so a
silent regression cannot land.
"""

from __future__ import annotations

import copyreg
import dataclasses
import functools
import hashlib
import hmac
import importlib
import inspect
import io
import logging
import os
import pickle
import platform
import secrets
import stat
import sys
import tempfile
import threading
import time
import types
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Why the last compile fell back to ``nutpie.compile_pymc_model`` (None: it did not).
FALLBACK_REASON: str | None = None

_LOGP_TEMPLATE = """
def logp_callback(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    ud = numba.carray(user_data_, (), RECORD)['shared']
    x = numba.carray(x_, ({n_dim},))
    out = numba.carray(out_, ({n_dim},))
    logp = numba.carray(logp_, ())
{unpack}
    try:
        logp_val, grad = inner({args})
    except Exception:
        return 1
    logp[()] = logp_val
    for i in range({n_dim}):
        out[i] = grad[i]
    for i in range({n_dim}):
        if not np.isfinite(out[i]):
            return 3
    if not np.isfinite(logp_val):
        return 4
    return 0
"""

_EXPAND_TEMPLATE = """
def expand_callback(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    ud = numba.carray(user_data_, (), RECORD)['shared']
    x = numba.carray(x_, ({n_dim},))
    out = numba.carray(out_, ({n_expanded},))
{unpack}
    try:
        (values,) = inner({args})
    except Exception:
        return -2
    for i in range({n_expanded}):
        out[i] = values[i]
    return 0
"""
# Only the graph function's call is inside ``try``: numba compiles every call in a try block
# with its exception handling, and with the data views there the wrapper's own compile took
# longer than the graph's (a new exponential or Gompertz graph, per-op code cached: log
# density callback 5.9 -> 3.3 s and 7.0 -> 3.7 s; piecewise 15.4 -> 14.2 s, its graph's own
# code most of it; same code called, same draws). The views cannot raise: a data array whose size is not the product of
# its shape (the one way ``reshape`` fails) is caught before it is viewed, and returns the
# code a failure in the try block gives (1 in the log density, -2 in the expansion).
# Return codes as nutpie's own callbacks: 0 ok, -1/-2 bad sizes or failure in the expansion,
# 1 exception in the log density, 3 non-finite gradient, 4 non-finite log density.


class _DeferredModule(types.ModuleType):
    """Stands in for a module until an attribute is used, then imports it and forwards."""

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self.__name__), attr)


def import_nutpie():
    """``import nutpie``, with the ArviZ meta-package it imports at module level deferred.

    ``nutpie.sample`` imports ``arviz`` (which imports arviz-plots and matplotlib.pyplot,
    ~0.3 s of every new process) but uses it only to convert traces, which this package does
    itself (``trace_groups``). While nutpie is imported, ``arviz`` is a stand-in that imports
    the real package the first time nutpie uses it; the stand-in is removed from
    ``sys.modules`` right after, so ``import arviz`` anywhere else is the ordinary import."""
    stand_in = None
    if "nutpie" not in sys.modules and "arviz" not in sys.modules:
        stand_in = sys.modules["arviz"] = _DeferredModule("arviz")
    try:
        import nutpie
    finally:
        if stand_in is not None and sys.modules.get("arviz") is stand_in:
            del sys.modules["arviz"]
    return nutpie


def _unpack_lines(fn_pt, keys, data, bad_size: int) -> tuple[str, str]:
    """Source lines that view each shared input of ``fn_pt`` from the pointer record,
    returning ``bad_size`` (the callback's failure code) when an array's size is not the
    product of its shape (the one way the view can fail: checked, so that no exception can
    arise outside the callback's ``try``)."""
    lines, args = [], ["x"]
    for j, var in enumerate(fn_pt.get_shared()):
        k = keys[var]
        a = data[k]
        shape = "(" + "".join(f"s{j}[{i}], " for i in range(a.ndim)) + ")"
        n = " * ".join(f"s{j}[{i}]" for i in range(a.ndim)) or "1"
        lines += [
            f"    p{j} = address_as_void_pointer(ud['data']['{k}'][()])",
            f"    s{j} = ud['shape']['{k}']",
            f"    n{j} = int(ud['size']['{k}'][()])",
            f"    if n{j} != {n}:",
            f"        return {bad_size}",
            f"    a{j} = numba.carray(p{j}, n{j}, np.{a.dtype.name}).reshape({shape})",
        ]
        args.append(f"a{j}")
    return "\n".join(lines), ", ".join(args)


def _graph_function(jit_fn):
    """The numba function of the graph itself, under the forwarding wrappers PyTensor puts
    around it (``def f(*args): return jitable_func(*args)``: one with a Python entry point,
    one for its cache). The callback calls it directly: numba then does not compile those
    wrappers (each a further typing and code generation of the whole graph, the outer one
    with a CPython wrapper the callback never uses). Measured on an empty cache: Weibull
    graph 11.9 -> 10.8 s, piecewise 17.1 -> 14.9 s (docs/performance.md); the same code,
    so the same draws (tested). Stops at anything that is not such a wrapper (``jit_fn``
    itself if PyTensor changes how it wraps)."""
    fn = jit_fn
    for _ in range(4):
        py = getattr(fn, "py_func", None)
        nxt = getattr(py, "__globals__", {}).get("jitable_func")
        if (py is None or not py.__code__.co_flags & inspect.CO_VARARGS
                or py.__code__.co_argcount != 0 or not hasattr(nxt, "py_func")):
            break
        fn = nxt
    return fn


def _callback(kind, fn_pt, keys, data, record, n_dim, n_expanded):
    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor import config
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

    template, name, bad_size = ((_LOGP_TEMPLATE, "logp_callback", 1) if kind == "logp"
                                else (_EXPAND_TEMPLATE, "expand_callback", -2))
    unpack, args = _unpack_lines(fn_pt, keys, data, bad_size)
    src = template.format(n_dim=n_dim, n_expanded=n_expanded, unpack=unpack, args=args)
    double_p = numba.types.CPointer(numba.types.double)
    if kind == "logp":
        sig = numba.types.int64(numba.types.uint64, double_p, double_p, double_p,
                                numba.types.voidptr)
    else:
        sig = numba.types.int64(numba.types.uint64, numba.types.uint64, double_p, double_p,
                                numba.types.voidptr)
    jit_fn = fn_pt.vm.jit_fn
    py_inner = getattr(jit_fn, "py_func", None)
    inner_key = CACHED_SRC_FUNCTIONS.get(py_inner) if py_inner is not None else None
    inner = _graph_function(jit_fn)
    # The cached object code contains the inner function's code, so the key must pin it: its
    # own PyTensor cache key (graph and constants), this source, the record layout and
    # whether the graph function is called under PyTensor's wrappers or directly.
    key = None
    if inner_key is not None and config.numba__cache:  # the flag off: compile, do not cache
        key = hashlib.sha256(repr((src, inner_key, record.descr, numba.__version__,
                                   inner is jit_fn)).encode()).hexdigest()
    env = {"__name__": __name__, "numba": numba, "np": np, "RECORD": record, "inner": inner,
           "address_as_void_pointer": address_as_void_pointer}
    py_func = compile_numba_function_src(src, name, env, cache_key=key)
    return numba.cfunc(sig, cache=key is not None)(py_func)


# -- rewritten graphs: cached on disk beside PyTensor's own cache ---------------------------------

#: What the last compile did with the graph cache: "hit", "miss" (built and stored), "off"
#: (no key or caching disabled) or "error: ..." (a stored entry could not be used; rebuilt).
GRAPH_CACHE_STATUS: str = "off"


@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """Hash of this package's source: any edit to how graphs are built invalidates them."""
    root = Path(__file__).resolve().parents[1]  # the bayes_hcc package directory
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _graph_cache_file(structure_key: str | None):
    """Where the rewritten log-density and expansion functions of a graph are stored.

    The name hashes everything the compiled functions depend on: the model structure (the
    key under which the running process already reuses compiled models), this package's
    source, the versions of the libraries that build and compile the graph, the interpreter
    and the PyTensor flags that change generated code. Data are not part of it (they are
    shared variables, replaced on load)."""
    from pytensor import config

    if not structure_key or not config.numba__cache:
        return None
    from bayes_hcc._versions import package_versions

    versions = package_versions(("pymc", "pytensor", "nutpie", "numba", "llvmlite", "numpy"))
    ident = repr((structure_key, _code_fingerprint(), versions, sys.version, platform.machine(),
                  config.floatX, config.numba__fastmath, config.optimizer,
                  config.optimizer_excluding, config.optimizer_including))
    name = hashlib.sha256(ident.encode()).hexdigest()[:40]
    return Path(config.compiledir) / "bayes_hcc_graphs" / f"{name}.pkl"


def trusted_cache_file(ident: str | None):
    """``_graph_cache_file(ident)``, or None when caching is off or the cache directory
    cannot be trusted (``unsafe_directory``; the sampler's compile warns about it)."""
    path = _graph_cache_file(ident)
    return None if path is None or unsafe_directory(path.parent) else path


def _shared_of(functions) -> list:
    out = []
    for fn in functions:
        for var in fn.get_shared():
            if var not in out:
                out.append(var)
    return out


# -- trust: graph-cache entries are signed with a key only this user can read -------------------
#
# Entries are pickles, and unpickling runs code: a file planted in the cache directory would
# run on the next fit. So every entry carries an HMAC-SHA256 (over its name and content) made
# with a random key kept in the user's configuration directory (0600), and is unpickled only
# when the HMAC verifies; a cache directory that other users can write to is not used at all.

#: First line of a signed entry.
ENTRY_MAGIC = b"bayes_hcc graph cache v2\n"


class UntrustedCacheEntry(Exception):
    """A graph-cache entry this user's key did not sign (never unpickled)."""


def cache_key_file() -> Path:
    """Where the signing key lives: $XDG_CONFIG_HOME/bayes_hcc/cache.key (default
    ~/.config/bayes_hcc/cache.key)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "bayes_hcc" / "cache.key"


def _cache_key() -> bytes:
    """The user's signing key, created on first use (32 random bytes, mode 0600). A key file
    that others can read or write, or that another user owns, is refused."""
    path = cache_key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            # another process (a pool's other worker, on first use) created it meanwhile:
            # give it the moment it needs to write the key before reading
            deadline = time.monotonic() + 2.0
            while path.stat().st_size < 32 and time.monotonic() < deadline:
                time.sleep(0.01)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
    st = path.lstat()
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o077 or (
            hasattr(os, "getuid") and st.st_uid != os.getuid()):
        raise UntrustedCacheEntry(f"the cache key {path} must be a regular file of yours with "
                                  "mode 0600; delete it to have a new one made")
    key = path.read_bytes()
    if len(key) < 32:
        raise UntrustedCacheEntry(f"the cache key {path} is truncated; delete it")
    return key


def _signature(key: bytes, path: Path, payload: bytes) -> bytes:
    return hmac.new(key, path.name.encode() + b"\0" + payload, hashlib.sha256).hexdigest() \
        .encode()


def unsafe_directory(path: Path) -> str | None:
    """Why the cache directory (or the folder holding it) cannot be trusted, or None: a
    directory that other users can write to could receive planted files."""
    for d in (path, path.parent):
        if not d.exists():
            continue
        st = d.stat()
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return (f"{d} is writable by other users (mode {stat.filemode(st.st_mode)}); "
                    f"the compile cache is not used. Fix: chmod go-w {d}")
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return (f"{d} belongs to another user; the compile cache is not used. Fix: point "
                    "PYTENSOR_FLAGS=base_compiledir=... at a directory of yours")
    return None


def _read_signed(path: Path) -> bytes:
    raw = path.read_bytes()
    if not raw.startswith(ENTRY_MAGIC):
        raise UntrustedCacheEntry("not a signed bayes_hcc entry (never unpickled)")
    sig, _, payload = raw[len(ENTRY_MAGIC):].partition(b"\n")
    if not hmac.compare_digest(sig, _signature(_cache_key(), path, payload)):
        raise UntrustedCacheEntry("signature does not verify with this user's key (never "
                                  "unpickled)")
    return payload


def _store_functions(path, functions) -> None:
    """Pickle the compiled functions without the data they hold, atomically."""
    store_signed(path, functions, _shared_of(functions[2:4]))


def load_signed(path: Path):
    """The object stored by ``store_signed`` at ``path`` (unpickled only when this user's
    key signed it: else ``UntrustedCacheEntry``)."""
    return pickle.loads(_read_signed(path))


class _GraphPickler(pickle.Pickler):
    """Pickles compiled functions, leaving out what PyTensor's ``OpFromGraph`` caches of its
    own derivatives: the gradient Op it builds on first use, held as a local closure, which
    cannot be pickled. PyTensor's ``LogSumExp`` is such an Op (in ``pm.Mixture``'s log
    density, the simplex transform, and wherever the rewrites find a log-sum-exp), so the
    graphs of mixture and MAP priors, M-splines and the illness-death model failed to store
    ("Can't pickle local object 'OpFromGraph._build_and_cache_lop_op.<locals>.wrapper'")
    and every new process rebuilt them (~1 s each). The compiled functions never call that
    cache; PyTensor rebuilds it if a derivative is asked for again."""

    def reducer_override(self, obj):
        from pytensor.compile.builders import OpFromGraph

        if isinstance(obj, OpFromGraph) and (obj.__dict__.get("_lop_op_cache")
                                             or obj.__dict__.get("_rop_op_cache") is not None):
            state = dict(obj.__dict__, _lop_op_cache={}, _rop_op_cache=None)
            return copyreg.__newobj__, (type(obj),), state
        return NotImplemented


def store_signed(path: Path, obj, shared) -> None:
    """Pickle ``obj`` (compiled functions) signed with this user's key, atomically, without
    the data it holds: the values of the shared variables ``shared`` are swapped for empty
    arrays while pickling (no patient data in the cache)."""
    values = [v.get_value(borrow=True) for v in shared]
    try:
        for v, a in zip(shared, values):
            v.set_value(np.zeros((0,) * a.ndim, dtype=a.dtype))
        buffer = io.BytesIO()
        _GraphPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        payload = buffer.getvalue()
    finally:
        for v, a in zip(shared, values):
            v.set_value(a, borrow=True)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    signed = ENTRY_MAGIC + _signature(_cache_key(), path, payload) + b"\n" + payload
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(signed)
        os.replace(tmp, path)  # concurrent writers: last complete file wins, never a torn one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _prune(path.parent, keep=path)


#: Entries kept in the graph cache (each ~0.1-0.5 MB). Old ones accumulate when the package
#: or a library is updated (their keys change); the least recently written go first.
GRAPH_CACHE_MAX_ENTRIES = 256


def _prune(directory, keep) -> None:
    entries = sorted(directory.glob("*.pkl"), key=lambda f: f.stat().st_mtime)
    for f in entries[:max(0, len(entries) - GRAPH_CACHE_MAX_ENTRIES)]:
        if f != keep:
            f.unlink(missing_ok=True)  # a process loading it meanwhile rebuilds: harmless


def _load_functions(path, m):
    """The stored functions with this model's data put into their shared variables."""
    functions = load_signed(path)  # only what this user's key signed
    n_dim, n_expanded, logp_pt, expand_pt, shape_info, reparameterized = functions
    names = {v.name for v in m.data_vars}
    for var in _shared_of((logp_pt, expand_pt)):
        if var.name not in names:
            raise KeyError(f"stored graph uses data {var.name!r} that the model lacks")
        var.set_value(np.array(m[var.name].get_value(), copy=True))
    return functions


def _make_functions(m, initial, structure_key):
    """nutpie's ``_make_functions`` (graph, gradient, rewrites, compile: ~0.5 s), or the same
    functions from the graph cache (~0.2 s, dominated by numba loading the machine code that
    ``_make_functions`` would load too)."""
    global GRAPH_CACHE_STATUS
    import nutpie.compile_pymc as ncp

    path = _graph_cache_file(structure_key)
    functions, status = None, "off" if path is None else "miss"
    unsafe = None if path is None else unsafe_directory(path.parent)
    if unsafe is not None:
        from bayes_hcc.errors import CacheWarning, warn

        warn(unsafe, CacheWarning)
        path, status = None, f"off: {unsafe}"
    if path is not None and path.exists():
        try:
            functions, status = _load_functions(path, m), "hit"
        except Exception as exc:  # stale or damaged entry: rebuild it, never fail the fit
            status = f"error: {type(exc).__name__}: {exc}"
            log.info("graph cache entry %s unusable (%s); rebuilding", path, exc)
    if functions is None:
        (n_dim, n_expanded, logp_pt, expand_pt, _, shape_info,
         reparameterized) = ncp._make_functions(m, mode="NUMBA", compute_grad=True,
                                                join_expanded=True,
                                                pymc_initial_point_fn=initial, var_names=None)
        functions = (n_dim, n_expanded, logp_pt, expand_pt, shape_info, reparameterized)
        if path is not None:
            try:
                _store_functions(path, functions)
            except Exception as exc:  # e.g. a read-only cache directory: compile anyway
                status = f"error: {type(exc).__name__}: {exc}"
                log.info("could not store graph cache entry %s (%s)", path, exc)
    GRAPH_CACHE_STATUS = status
    n_dim, n_expanded, logp_pt, expand_pt, shape_info, reparameterized = functions
    n_free = len(m.free_RVs)
    initial_fn = ncp._rv_dict_to_flat_array_wrapper(initial, names=shape_info[0][:n_free],
                                                   shapes=shape_info[2][:n_free])
    return (n_dim, n_expanded, logp_pt, expand_pt, initial_fn, shape_info, reparameterized)


def _compile_cached(m, structure_key=None):
    import_nutpie()
    import nutpie.compile_pymc as ncp
    from pymc.initial_point import make_initial_point_fn

    # As nutpie.compile_pymc_model with its defaults (support-point start, jittered).
    initial = ncp._wrap_with_lock(make_initial_point_fn(
        model=m, overrides=None, default_strategy="support_point",
        jitter_rvs=set(m.free_RVs), return_transformed=True))
    (n_dim, n_expanded, logp_pt, expand_pt, initial_fn, shape_info,
     reparameterized) = _make_functions(m, initial, structure_key)
    shared = _shared_of((logp_pt, expand_pt))
    # Deterministic record field names (nutpie uses random ones): part of the cache key.
    keys = {var: f"d{i}" for i, var in enumerate(shared)}
    data = {keys[v]: np.array(v.get_value(), order="C", copy=True) for v in shared}
    for a in data.values():
        a.flags.writeable = False
    user_data = ncp.make_user_data(keys, data)
    record = user_data.dtype
    logp_c = _callback("logp", logp_pt, keys, data, record, n_dim, n_expanded)
    expand_c = _callback("expand", expand_pt, keys, data, record, n_dim, n_expanded)
    dims, coords = ncp._prepare_dims_and_coords(m, shape_info, reparameterized)
    return ncp.CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info)},
        compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=initial_fn, shared_data=data, shared_var_keys=keys,
        user_data=user_data, n_expanded=n_expanded, shape_info=shape_info,
        logp_func=logp_pt, expand_func=expand_pt, reparameterized_names=reparameterized)


def compile_model(m, structure_key: str | None = None):
    """A nutpie ``CompiledPyMCModel`` for ``m`` whose C callbacks come from the disk cache
    when this graph was compiled before (in any process). With ``structure_key`` (what
    defines the graph apart from its data) the rewritten PyTensor functions are cached on
    disk too (``GRAPH_CACHE_STATUS``)."""
    global FALLBACK_REASON
    try:
        compiled = _compile_cached(m, structure_key)
    except (ImportError, AttributeError, TypeError) as exc:  # nutpie internals changed
        nutpie = import_nutpie()

        FALLBACK_REASON = f"{type(exc).__name__}: {exc}"
        log.info("cached nutpie callbacks unavailable (%s); using nutpie.compile_pymc_model",
                 FALLBACK_REASON)
        return nutpie.compile_pymc_model(m)
    FALLBACK_REASON = None
    return compiled


#: Serializes setting a model's data containers and computing an initial point from them.
_INITIAL_LOCK = threading.Lock()


def with_data(compiled, m, data: dict):
    """``compiled`` refitted to ``data``: the log density's data *and* the initial points.

    nutpie's ``with_data`` replaces the data the log density reads, but the initial-point
    function (PyMC support points + jitter) reads the model's own data containers, which
    still hold the data the model was compiled with. Initial points depend on data (prior
    parameters are data; intercepts start at their prior location moved by data-dependent
    offsets), so a refit would start from where the first data put it, and the same data
    and seed would give different draws in a process that compiled the model for other
    data first. Here the initial-point function sets the containers to ``data`` (under a
    lock: refits of one model in several threads each see their own data) before it runs.
    """
    known = {v.name for v in compiled.shared_var_keys}  # data the graph actually uses
    refitted = compiled.with_data(**{k: v for k, v in data.items() if k in known})
    containers = {v.name: v for v in m.data_vars if v.name in data}
    # In the containers' own dtypes (PyMC stores index data as int32).
    values = {k: np.asarray(data[k], dtype=var.dtype) for k, var in containers.items()}
    inner = compiled.initial_point_func

    def initial_point(seed):
        with _INITIAL_LOCK:
            for name, var in containers.items():
                var.set_value(values[name])
            return inner(seed)

    return dataclasses.replace(refitted, initial_point_func=initial_point)


# -- draws: from nutpie's raw Arrow trace straight to xarray ------------------------------------

#: Sample-stat columns nutpie itself leaves out with its default settings (they are empty
#: unless storing gradients, mass matrices, divergence paths or transformed draws is switched
#: on, which this package never does), and the chain/draw indices (the dataset's coordinates).
_SKIPPED_STATS = frozenset({
    "gradient", "unconstrained_draw", "mass_matrix_inv", "mass_matrix_eigvals",
    "mass_matrix_stds", "divergence_start", "divergence_end", "divergence_momentum",
    "divergence_start_gradient", "transformed_position", "transformed_gradient",
    "transformation_mu", "chain", "draw"})

#: Why the last conversion fell back to nutpie's own (None: it did not).
TRACE_FALLBACK_REASON: str | None = None


def _column(batch, name):
    """One Arrow column of one chain as numpy: (rows, *shape), its dims (None if unnamed)."""
    import pyarrow

    col = batch.column(name)
    meta = col.field.metadata or {}
    shape = tuple(int(s) for s in meta.get(b"shape", b"").decode().split(",") if s)
    dims = [d for d in meta.get(b"dims", b"").decode().split(",") if d] or None
    arr = pyarrow.array(col)
    if shape:  # one list of fixed length per draw: flatten and reshape
        if arr.null_count:
            raise ValueError(f"column {name!r} has missing draws")
        values = arr.flatten().to_numpy(zero_copy_only=False)
        return values.reshape((len(arr),) + shape), dims
    dtype = np.dtype(arr.type.to_pandas_dtype())
    if not arr.null_count:
        return arr.to_numpy(zero_copy_only=False).astype(dtype, copy=False), dims
    fill = np.nan if dtype.kind == "f" else (None if dtype.kind == "O" else 0)
    out = np.full(len(arr), fill, dtype=dtype)
    present = ~arr.is_null().to_numpy(zero_copy_only=False)
    out[present] = arr.drop_null().to_numpy(zero_copy_only=False)
    return out, dims


def _dataset(batches, keep_rows, names, coords):
    import xarray as xr

    variables, used = {}, {}
    for name in names:
        parts = [_column(b, name) for b in batches]
        dims = parts[0][1]
        values = np.stack([v[rows] for (v, _), rows in zip(parts, keep_rows)])
        extra = values.shape[2:]
        if dims is None or len(dims) != len(extra):
            dims = [f"{name}_dim_{i}" for i in range(len(extra))]
        for d, size in zip(dims, extra):
            used[d] = coords[d] if d in coords and len(coords[d]) == size else np.arange(size)
        variables[name] = xr.Variable(("chain", "draw", *dims), values)
    n_chains, n_draws = len(batches), int(keep_rows[0].sum())
    return xr.Dataset(variables, coords={"chain": np.arange(n_chains),
                                         "draw": np.arange(n_draws), **used})


def trace_groups(raw, compiled) -> dict:
    """The posterior and sample stats of a ``nutpie.sample(..., return_raw_trace=True)`` run
    as xarray Datasets: the same variables, dims, coordinates, dtypes and values as nutpie's
    own conversion (tested), without building an ArviZ object first. That conversion took
    ~45 ms of every refit (a third of a refit at FAST settings); this one takes a few."""
    nutpie = import_nutpie()

    draws, stats = raw.get_arrow_trace()
    # Tuning rows come first in each chain; only the draws after tuning are kept.
    keep = [~np.asarray(_column(s, "tuning")[0], bool) for s in stats]
    if len({int(k.sum()) for k in keep}) != 1:
        raise ValueError("chains have different numbers of draws")
    coords = {k: np.asarray(v) for k, v in compiled.coords.items()}
    skip = set(getattr(compiled, "reparameterized_names", None) or ())
    post = _dataset(draws, keep, [n for n in draws[0].column_names if n not in skip], coords)
    sst = _dataset(stats, keep, [n for n in stats[0].column_names if n not in _SKIPPED_STATS],
                   {})
    sst.attrs = {"inference_library": "nutpie",
                 "inference_library_version": nutpie.__version__}
    return {"posterior": post, "sample_stats": sst}


def sample(compiled, **kwargs) -> dict:
    """``nutpie.sample`` returning {"posterior", "sample_stats"} Datasets (see
    ``trace_groups``). Falls back to nutpie's own conversion, recording why in
    ``TRACE_FALLBACK_REASON``, if its raw trace format changed."""
    global TRACE_FALLBACK_REASON
    nutpie = import_nutpie()

    raw = nutpie.sample(compiled, return_raw_trace=True, **kwargs)
    try:
        groups = trace_groups(raw, compiled)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        TRACE_FALLBACK_REASON = f"{type(exc).__name__}: {exc}"
        log.info("fast trace conversion unavailable (%s); using nutpie's", TRACE_FALLBACK_REASON)
        trace = nutpie.sample(compiled, **kwargs)  # same seed: the same draws
        return {g: trace[g].to_dataset() for g in ("posterior", "sample_stats")}
    TRACE_FALLBACK_REASON = None
    return groups
