"""Sensitivity analyses: grids of specs fitted to one trial, as one tidy table."""

from bayes_hcc.sensitivity.grid import GridSpec, load_grid, run_sensitivity, variant_row
from bayes_hcc.sensitivity.subgroups import subgroups

__all__ = ["GridSpec", "load_grid", "run_sensitivity", "variant_row", "subgroups"]
