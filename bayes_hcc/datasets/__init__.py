"""Bundled data: the synthetic example trial and three real public trials.

Real datasets are converted to months (days / 30.4375, weeks * 7 / 30.4375) and returned as
TrialData in the times layout, with the endpoint named after what it measures.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from bayes_hcc.errors import BayesHCCError
from bayes_hcc.units import DAYS_PER_UNIT
from bayes_hcc.data.read import read_trial
from bayes_hcc.data.trial import TrialData
from bayes_hcc.simulate import WeibullHazard, simulate_trial

__all__ = ["load_example_trial", "make_example_trial", "load_veteran", "load_leukemia_6mp",
           "load_rats", "load_colon", "load_sorafenib_history", "EXAMPLE_RECIPE",
           "list_datasets"]

_DATA = resources.files(__name__) / "data"
_MONTH = DAYS_PER_UNIT["months"]

#: How the example trial was made (see load_example_trial for the sources of each value).
EXAMPLE_RECIPE = dict(
    n_patients=130,
    sites=["SNUH", "AMC", "SMC", "SEV", "KUH", "CNUH"],
    site_sizes=[34, 28, 23, 19, 15, 11],
    accrual_start="2017-04-01",
    accrual_end="2019-05-31",
    cut_date="2020-02-28",
    os_hazard=WeibullHazard(median=6.5, shape=1.2),
    ttp_hazard=WeibullHazard(median=3.0, shape=1.2),
    hr_os=0.70,
    hr_ttp=0.67,
    site_sd=0.2,
    dropout_per_year=0.08,
    assessment_interval=2.0,
    assessment_jitter_days=7.0,
    missed_visit_prob=0.05,
    control="sorafenib",
    treatment="tace_sorafenib",
    id_prefix="HCC",
    random_seed=20200228,
)


def make_example_trial() -> TrialData:
    """Regenerate the example trial from :data:`EXAMPLE_RECIPE` (what the CSV was made from)."""
    return simulate_trial(**EXAMPLE_RECIPE)


def load_example_trial() -> TrialData:
    """The bundled SYNTHETIC example trial, shaped like NCT03518502.

    130 patients randomized 1:1 (permuted blocks within site) at 6 Korean tertiary
    hospitals of unequal size (labels are placeholders), enrolled April 2017 - May 2019,
    administrative cut 2020-02-28, tumour assessment every 2 months (each scan within about
    a week of its scheduled date: normal jitter, SD 7 days; 5% of scans missed). Dates
    layout, with the scans (``trial.assessments``, from ``example_assessments.csv``): TTP
    and PFS are interval-censored between the last scan without progression and the first
    showing it.

    Generating values and where they come from:

    * control (sorafenib) median OS 6.5 months: sorafenib arm of the Asia-Pacific trial
      (Cheng et al., Lancet Oncol 2009: 6.5 months); Korean cohorts with extrahepatic
      metastasis report 4.6 to 6.8 months. Weibull shape 1.2 (hazard rising slowly).
    * OS HR 0.70 (TACE-sorafenib vs sorafenib), the design assumption.
    * control median TTP 3.0 months and TTP HR 0.67: the Korean STAH trial of sorafenib
      with or without TACE (Park et al., J Hepatol 2019) reported TTP HR 0.67 and PFS HR
      0.73. Here PFS follows from OS and TTP (progression and death generated jointly), so
      its true HR is (r_D 0.70 + r_P 0.67) / (r_D + r_P) = 0.68, stated in ``.truth``.
    * site frailty SD 0.2 on the log hazard (modest between-hospital heterogeneity).
    * loss to follow-up 8% per year.

    ``.truth`` carries the true HRs and medians; ``make_example_trial()`` regenerates the
    same data from the recipe.
    """
    trial = read_trial(_DATA / "example_trial.csv", control="sorafenib",
                       treatment="tace_sorafenib",
                       assessments=_DATA / "example_assessments.csv")
    truth = make_example_trial().truth
    return TrialData(trial.to_frame(), endpoints=trial.endpoints, control=trial.control,
                     treatment=trial.treatment, time_unit=trial.time_unit,
                     layout=trial.layout, cut_date=EXAMPLE_RECIPE["cut_date"], truth=truth,
                     source="example_trial (synthetic)", assessments=trial.assessments)


def load_veteran() -> TrialData:
    """Veterans' Administration lung cancer trial (Kalbfleisch & Prentice 1980).

    137 patients; control ``standard``, treatment ``test``; endpoint ``os`` (death),
    months. One site (``VA``); ``celltype``, ``karno``, ``diagtime``, ``age``, ``prior``
    are covariates. Reference: Cox HR about 1.02 (0.71 to 1.45).
    """
    raw = pd.read_csv(_DATA / "veteran.csv")
    frame = pd.DataFrame({
        "patient_id": raw["id"].astype(str), "site": "VA", "arm": raw["arm"],
        "os_time": raw["time_days"] / _MONTH, "os_event": raw["status"],
    })
    for col in ("celltype", "karno", "diagtime", "age", "prior"):
        frame[col] = raw[col]
    return read_trial(frame, control="standard", treatment="test")


def load_leukemia_6mp() -> TrialData:
    """6-MP vs placebo remission maintenance, 21 matched pairs (Freireich et al. 1963).

    Control ``placebo``, treatment ``6-MP``; endpoint ``relapse`` (time in remission),
    months; one site (``all``), the matching ``pair`` kept as a covariate. Reference: Cox
    HR about 0.21; BUGS "Leuk" posterior median HR about 0.22 (0.09 to 0.47).
    """
    raw = pd.read_csv(_DATA / "leukemia_6mp_pairs.csv")
    frame = pd.DataFrame({
        "patient_id": raw["id"].astype(str), "site": "all",
        "arm": np.where(raw["treat"] == 1, "6-MP", "placebo"),
        "relapse_time": raw["time_weeks"] * 7 / _MONTH, "relapse_event": raw["status"],
        "pair": raw["pair"],
    })
    return read_trial(frame, control="placebo", treatment="6-MP")


def load_rats() -> TrialData:
    """Litter-matched rat tumour experiment (Mantel et al. 1977), females only.

    150 rats in 50 litters (the ``site``, 3 rats each); control ``control``, treatment
    ``drug``; endpoint ``tumour``, months. The drug raises the hazard: Cox HR about 2.5.
    """
    raw = pd.read_csv(_DATA / "rats_litter.csv")
    raw = raw[raw["sex"] == "f"].reset_index(drop=True)
    frame = pd.DataFrame({
        "patient_id": raw["id"].astype(str), "site": "litter" + raw["litter"].astype(str),
        "arm": np.where(raw["rx"] == 1, "drug", "control"),
        "tumour_time": raw["time_days"] / _MONTH, "tumour_event": raw["status"],
    })
    return read_trial(frame, control="control", treatment="drug")


def load_colon(treatment: str = "Lev+5FU") -> TrialData:
    """Adjuvant colon cancer trial (Moertel et al. 1990, 1995; R's ``survival::colon``):
    observation (``Obs``, the control) against ``treatment`` (``"Lev+5FU"`` or ``"Lev"``),
    with two endpoints per patient: ``os`` (death) and ``recurrence`` (time to recurrence,
    censored at death or the end of follow-up; recurrence times are exact), in months; one
    site (``NCCTG``); covariates ``age``, ``sex``, ``nodes``, ``obstruct``, ``perfor``,
    ``adhere``, ``extent``. Progression and death of one patient: what an illness-death
    model (``bh.IllnessDeath``, ``progression="recurrence"``) reads. Reference: Lev+5FU
    reduced the recurrence rate by about 40% and the death rate by about 33%."""
    if treatment not in ("Lev+5FU", "Lev"):
        raise BayesHCCError(f"treatment={treatment!r}: the colon trial's arms are 'Lev+5FU' and "
                         "'Lev' (control 'Obs').")
    raw = pd.read_csv(_DATA / "colon.csv")
    raw = raw[raw["rx"].isin(["Obs", treatment])]
    wide = raw.pivot(index="id", columns="endpoint", values=["time_days", "status"])
    first = raw.drop_duplicates("id").set_index("id").loc[wide.index]
    frame = pd.DataFrame({
        "patient_id": wide.index.astype(str), "site": "NCCTG", "arm": first["rx"].to_numpy(),
        "os_time": wide[("time_days", "death")].to_numpy() / _MONTH,
        "os_event": wide[("status", "death")].to_numpy(),
        "recurrence_time": wide[("time_days", "recurrence")].to_numpy() / _MONTH,
        "recurrence_event": wide[("status", "recurrence")].to_numpy(),
    })
    for col in ("age", "sex", "nodes", "obstruct", "perfor", "adhere", "extent"):
        frame[col] = first[col].to_numpy()
    return read_trial(frame, control="Obs", treatment=treatment)


def load_sorafenib_history():
    """Historical sorafenib control arms (OS) for a MAP prior of the control arm
    (:func:`bayes_hcc.map_prior`): SHARP (Llovet et al., N Engl J Med 2008; median and 95% CI
    in weeks from the Nexavar SmPC, section 5.1, Table 3) and the Asia-Pacific trial (Cheng
    et al., Lancet Oncol 2009, abstract), each a published median with its CI and n
    (form (b)); sources in each arm's ``source`` and in ``sorafenib_history.toml``.

    The Asia-Pacific CI is narrower than a constant hazard with 150 patients allows: its
    effective events are capped at n = 150 with a DataWarning (see ``bh.History``). STAH's
    sorafenib arm is not included: its abstract gives no CI or deaths for that arm (the file
    says what would add it).
    """
    from bayes_hcc.borrowing.history import read_history

    with resources.as_file(_DATA / "sorafenib_history.toml") as path:
        return read_history(path)


def list_datasets() -> dict[str, str]:
    """Names accepted by the CLI (``bayes-hcc describe NAME``) and what they are."""
    return {"example": "synthetic NCT03518502-like trial (load_example_trial)",
            "veteran": "VA lung cancer trial (load_veteran)",
            "leukemia": "6-MP vs placebo remission (load_leukemia_6mp)",
            "rats": "litter-matched rat tumours, females (load_rats)",
            "colon": "adjuvant colon cancer, Lev+5FU vs observation: recurrence and death "
                     "(load_colon)"}


LOADERS = {"example": load_example_trial, "veteran": load_veteran,
           "leukemia": load_leukemia_6mp, "rats": load_rats, "colon": load_colon}
