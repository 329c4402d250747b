"""Reconstruction from published figures, round trip over every bundled real dataset, both
arms, two model families (slow; the example trial's round trip runs by default in
tests/data/test_reconstruct.py).

Each dataset's true KM curves are digitised as a person would (``digitise_km``: 40 step
corners, times +-0.2% of the axis, survival +-0.004), its numbers at risk taken at
published-style times, and the reconstruction compared with the truth at the tolerances of
#25 (``validation.reconstruction.TOLERANCES``): KM mean absolute difference < 0.02, medians
inside the true KM's 95% CI, Cox log HR within 0.1, the posterior median log HR within 0.25
posterior SD of the fit on the true patients (same compiled model, same seed)."""

import pytest

import bayes_hcc as bh
from bayes_hcc.validation.reconstruction import reconstruction_round_trip

DATASETS = {"example": bh.datasets.load_example_trial, "veteran": bh.datasets.load_veteran,
            "leukemia": bh.datasets.load_leukemia_6mp, "rats": bh.datasets.load_rats}
MODELS = {}


def model(name):
    if name not in MODELS:  # compiled once, refitted for every dataset
        MODELS[name] = getattr(bh, name)(site_effect="none")
    return MODELS[name]


@pytest.mark.slow
@pytest.mark.parametrize("family", ["PiecewiseExponential", "WeibullPH"])
@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("seed", [0, 1])
def test_round_trip_every_dataset(dataset, family, seed):
    table = reconstruction_round_trip(DATASETS[dataset](), model=model(family), seed=seed)
    failed = table[~table["passed"]]
    assert failed.empty, failed.to_string()
