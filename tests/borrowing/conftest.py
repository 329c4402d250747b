"""One MAP prior for the borrowing tests (4 x 10,000 draws of the meta-analysis of the four
historical arms in ``test_map_prior.ARMS``), computed once per test session."""

import pytest

import bayes_hcc as bh

from .test_map_prior import history


@pytest.fixture(scope="session")
def prior():
    return bh.map_prior(history(), draws=10000, random_seed=3)


@pytest.fixture(scope="session")
def robust(prior):
    return prior.robustify(0.2)
