"""The one list of survival families. Spec validation, fit reloading, the CLI's ``--model``
choices, plots and the family contract tests read it; a new family is one file in this
folder plus one line here."""

from __future__ import annotations

from bayes_hcc.errors import BayesHCCError
from bayes_hcc.families.aft import LogLogisticFamily, LogNormalFamily
from bayes_hcc.families.base import Family
from bayes_hcc.families.exponential import ExponentialFamily
from bayes_hcc.families.gompertz import GompertzFamily
from bayes_hcc.families.mspline import MSplineFamily
from bayes_hcc.families.piecewise import PiecewiseFamily
from bayes_hcc.families.weibull import WeibullFamily

__all__ = ["FAMILIES", "family_class", "family_from_settings", "cli_choices"]

#: key (the spec's ``family``) -> family class
FAMILIES: dict[str, type[Family]] = {cls.key: cls for cls in (
    PiecewiseFamily,
    WeibullFamily,
    ExponentialFamily,
    LogNormalFamily,
    LogLogisticFamily,
    GompertzFamily,
    MSplineFamily,
)}


def family_class(key: str) -> type[Family]:
    """The family registered under ``key``, or an error listing the known ones."""
    try:
        return FAMILIES[key]
    except KeyError:
        raise BayesHCCError(f"unknown family {key!r}; known: {', '.join(FAMILIES)}.") from None


def family_from_settings(settings: dict) -> Family:
    """The family a fit's stored settings (``{"name": ..., ...}``) describe."""
    by_name = {cls.name: cls for cls in FAMILIES.values()}
    name = settings.get("name") if isinstance(settings, dict) else None
    if name not in by_name:
        raise BayesHCCError(f"unknown family {name!r} in the fit's settings; known: "
                            f"{', '.join(by_name)}.")
    return by_name[name].from_settings(settings)


def cli_choices() -> dict[str, str]:
    """The CLI's ``--model`` name -> registry key."""
    return {cls.cli_name: key for key, cls in FAMILIES.items() if cls.cli_name}
