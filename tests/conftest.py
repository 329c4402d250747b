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


# Compile time: a model graph costs 5-40 s to compile the first time (numba), then about 1 s
# from the disk cache in another process and nothing in the same one. CI starts with an empty
# cache, so tests that fit the same models to the example trial (the README's blocks, the
# bundled sensitivity grid, the illness-death spec) are marked
# ``pytest.mark.xdist_group("example_trial_graphs")`` and `make test` runs
# ``--dist loadgroup``: one worker runs them all and compiles each model once, instead of
# both workers compiling the same models at the same time.


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
