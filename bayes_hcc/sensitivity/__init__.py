"""Sensitivity analyses: grids of specs fitted to one trial, as one tidy table."""

from bayes_hcc.sensitivity.grid import GridSpec, load_grid, run_sensitivity, variant_row

__all__ = ["GridSpec", "load_grid", "run_sensitivity", "variant_row"]
