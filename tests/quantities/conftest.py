import pytest

import bayes_hcc as bh


@pytest.fixture(scope="session")
def example_weibull_fit(example_trial):
    return bh.WeibullPH().fit(example_trial, "os", random_seed=20200228)
