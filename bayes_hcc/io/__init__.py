"""Outputs for people: figures and the self-contained HTML report."""

from bayes_hcc.io.plots import (FIGURES, plot_borrowing_design, plot_hazard_ratio,
                                plot_map_prior, plot_ppc, plot_psense, plot_rank,
                                plot_reconstruction, plot_sensitivity, plot_site_effects,
                                plot_subgroups, plot_survival, plot_time_varying_hr,
                                plot_trace, plot_state_probabilities, plot_os_hazard_ratio)
from bayes_hcc.io.report import data_summary, report, write_tables
from bayes_hcc.io.tables import (disposition, fit_footnotes, look_table, publication_tables,
                                 write_table)

__all__ = ["report", "write_tables", "data_summary", "FIGURES", "plot_survival",
           "plot_hazard_ratio", "plot_site_effects", "plot_trace", "plot_rank", "plot_ppc",
           "plot_psense", "plot_time_varying_hr", "plot_sensitivity", "plot_subgroups",
           "plot_reconstruction", "plot_map_prior", "plot_borrowing_design",
           "plot_state_probabilities", "plot_os_hazard_ratio", "write_table",
           "fit_footnotes", "disposition", "look_table", "publication_tables"]
