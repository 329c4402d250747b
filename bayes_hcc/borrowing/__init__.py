"""Borrowing from historical control arms: the data (History), the robust MAP prior and its
checks."""

from bayes_hcc.borrowing.conflict import borrowing_report
from bayes_hcc.borrowing.history import HistoricalArm, History, read_history
from bayes_hcc.borrowing.map_prior import MAPPrior, map_prior
from bayes_hcc.borrowing.operating import BorrowingDesign, borrowing_design

__all__ = ["History", "HistoricalArm", "read_history", "map_prior", "MAPPrior",
           "borrowing_report", "borrowing_design", "BorrowingDesign"]
