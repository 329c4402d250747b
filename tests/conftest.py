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
