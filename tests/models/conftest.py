import pytest

import bayes_hcc as bh


@pytest.fixture(scope="session")
def pwe_example_fit(example_trial):
    """The primary analysis at default settings (4 chains x 1000 draws after 1000 tuning)."""
    return bh.PiecewiseExponential().fit(example_trial, "os", random_seed=20200228)


@pytest.fixture(scope="session")
def weibull_example_fit(example_trial):
    return bh.WeibullPH().fit(example_trial, "os", random_seed=20200228)
