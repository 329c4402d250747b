import pytest


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="run tests marked slow (SBC, coverage, large simulations)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with `make test-slow` (pytest --run-slow)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


#: modules whose module-scoped fixtures are fits (20-60 s each): all their tests run on one
#: xdist worker, which computes each fixture once. Under xdist's default distribution the
#: tests of a module land on both workers, each computing the fixture (in one measured run
#: 137 worker-seconds of duplicated fits). xdist's own `--dist loadgroup` would do this with
#: `xdist_group` marks, but with pytest 9.2 it silently does not group
#: (pytest-dev/pytest-xdist#1386). Add a module here when it gets an expensive fixture.
SHARED_FIXTURE_MODULES = frozenset(f"tests/{m}.py" for m in (
    "multistate/test_mspline", "spec/test_sensitivity", "multistate/test_fit",
    "borrowing/test_interval_map", "validation/test_subgroups", "multistate/test_spec_report",
    "borrowing/test_conflict", "borrowing/test_design", "data/test_reconstruct"))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's default distribution (``-n``, ``--dist load``), each test its own unit, except
    the modules above: one unit each, scheduled first (xdist orders units by their number of
    tests), so the single tests fill both workers to the end."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in SHARED_FIXTURE_MODULES else nodeid

    return SharedFixtureScheduling(config, log)


@pytest.fixture(scope="session")
def example_trial():
    import bayes_hcc as bh

    return bh.datasets.load_example_trial()


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every figure a test leaves open.

    Under xdist a worker runs hundreds of tests in one process; figures a test opens and
    does not close pile up until matplotlib's "more than 20 figures" RuntimeWarning (an
    error here) fails whichever plotting test comes next, depending on how tests are
    shared between workers. Each test starts with no figure open.
    """
    yield
    import sys

    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


@pytest.fixture
def python_linker():
    """Compile PyTensor functions in this test with the Python linker (each Op's ``perform``)
    instead of the default numba one (``tests.helpers.python_linker``).

    For the tests that compare a model's graph with the numpy/scipy model at a few points:
    what they check is the graph's mathematics after PyTensor's rewrites (all but elemwise
    fusion, which only groups the same operations into one kernel), and a numba compile
    costs 3-12 s per graph on an empty compile cache (these tests' files took 151 s on 2
    cores from an empty cache with numba, 78 s with this, the check below included).
    That the numba-compiled density the sampler runs equals the Python-evaluated one is
    tested once per family (``test_numba_and_python_linkers_give_the_same_density`` in
    tests/models/test_likelihood.py), and the samplers' draws by every statistical test.
    Not for fits: nutpie compiles with numba explicitly, but initial points would come
    from Python-linked code."""
    from tests.helpers import python_linker as linker

    with linker():
        yield
