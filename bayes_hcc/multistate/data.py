"""Progression and death of each patient, as an illness-death model reads them.

State 0 is alive without progression, state 1 alive after progression, state 2 dead. For each
patient: ``prog_lower`` L, the last time known progression-free (0 when never assessed),
``prog_upper`` R, the first time progression was seen (inf: never seen; R = L: observed
exactly), ``time`` T, death or the end of follow-up, and ``death``. A progression seen at a
scan is interval-censored in (L, R]; a patient who died or was censored without a progression
seen may still have progressed, unseen, between L and T (the likelihood integrates over it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_hcc.data.trial import EXACT, INTERVAL, LEFT
from bayes_hcc.errors import BayesHCCError, DataWarning, TrialDataError, warn

__all__ = ["IllnessDeathData"]


def _rows(ids, mask, limit=5) -> str:
    bad = [str(x) for x in np.asarray(ids)[mask]]
    return ", ".join(bad[:limit]) + (f" and {len(bad) - limit} more" if len(bad) > limit else "")


@dataclass(frozen=True)
class IllnessDeathData:
    """Per patient: arm (0/1), site index, L, R, T and death (see the module docstring)."""

    arm: np.ndarray
    site: np.ndarray
    prog_lower: np.ndarray
    prog_upper: np.ndarray
    time: np.ndarray
    death: np.ndarray
    patient_id: np.ndarray
    arms: tuple
    sites: tuple
    time_unit: str
    #: covariates: the design matrix (n, p; ``models.covariates``: numeric columns centred
    #: and scaled, categorical ones as centred sum-to-zero contrasts) and its terms
    X: np.ndarray | None = None
    covariate_info: tuple = ()
    covariate_labels: tuple = ()
    #: per patient, the longest follow-up they could have had (randomization to the data
    #: cut; without dates the longest time observed): how long a replicated patient is
    #: followed in the posterior predictive check. None for data given as arrays.
    admin_time: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time)

    @property
    def progressed(self) -> np.ndarray:
        """A progression was seen (exactly or in an interval)."""
        return np.isfinite(self.prog_upper)

    @property
    def exact(self) -> np.ndarray:
        return self.progressed & (self.prog_upper == self.prog_lower)

    @property
    def interval(self) -> np.ndarray:
        return self.progressed & (self.prog_upper > self.prog_lower)

    def endpoint(self, name: str):
        """One endpoint as the trial's own endpoints count it (``bh.read_trial``): time (the
        scan that showed progression, a death, else the censoring), event, and the bounds
        (lower, upper] of each event (upper inf: censored; None for OS, whose events are
        exact). ``name``: "os"; "ttp" (progression seen in (L, R], else censored at L, the
        last progression-free scan, also at a death); "pfs" (as TTP, and an event at a death
        without a progression seen)."""
        L, R, T = self.prog_lower, self.prog_upper, self.time
        death, prog = np.asarray(self.death).astype(bool), self.progressed
        if name == "os":
            return np.asarray(T, float), death.astype(int), None
        if name == "ttp":
            lower, upper = L, R
        elif name == "pfs":
            lower = np.where(prog, L, np.where(death, T, L))
            upper = np.where(prog, R, np.where(death, T, np.inf))
        else:
            raise BayesHCCError(f"endpoint {name!r}: choose 'os', 'pfs' or 'ttp'.")
        event = np.isfinite(upper)
        return np.where(event, upper, lower), event.astype(int), (lower, upper)

    def counts(self) -> dict:
        """Patients per observed pattern."""
        p, d = self.progressed, self.death.astype(bool)
        return {"progression then death": int((p & d).sum()),
                "progression, alive": int((p & ~d).sum()),
                "death without a progression seen": int((~p & d).sum()),
                "alive without a progression seen": int((~p & ~d).sum())}

    def empty_transitions(self) -> list[tuple[str, str]]:
        """(transition, arm) pairs with no event seen: no progression seen in the arm, no
        death without a progression seen, no death after one. Such a transition's hazard
        in that arm, and its log HR, are informed by the prior only."""
        p, d = self.progressed, self.death.astype(bool)
        seen = {"progression": p, "death without progression": ~p & d,
                "death after progression": p & d}
        return [(name, str(self.arms[a])) for name, mask in seen.items()
                for a in (0, 1) if not (mask & (self.arm == a)).any()]

    @classmethod
    def from_trial(cls, trial, progression: str = "ttp", death: str = "os", *,
                   covariates=(), reference_levels=None):
        """From a TrialData: progression from the ``progression`` endpoint (TTP: exact or
        interval-censored between scans, censored at the last progression-free scan) and
        death from the ``death`` endpoint (OS); ``covariates``: columns of the data, as
        the single-endpoint models take them (missing values are errors naming the
        patients)."""
        if progression == death:  # every death would have been "a progression at death"
            raise TrialDataError(f"progression={progression!r} is also the death endpoint: "
                                 "the progression endpoint is the one whose events are "
                                 "progressions (TTP: 'ttp'), the death endpoint OS ('os').")
        missing = [ep for ep in (progression, death) if ep not in trial.endpoints]
        if missing:
            # another endpoint may be the progression (colon cancer's 'recurrence')
            others = [e for e in trial.endpoints if e not in (death, "pfs")]
            named = (f" If {others[0]!r} is the progression, name it: fit(trial, "
                     f"progression={others[0]!r}) (in a spec: [illness_death] progression = "
                     f"\"{others[0]}\")." if progression in missing and others else "")
            raise TrialDataError(
                f"an illness-death model needs progression ({progression!r}) and death "
                f"({death!r}) for every patient; these data have {', '.join(trial.endpoints)} "
                f"but not {' or '.join(map(repr, missing))}.{named} Otherwise read the dates "
                "layout (with progression_date), or give ttp_time/ttp_event and "
                "os_time/os_event.")
        prog, os_ = trial.endpoint(progression), trial.endpoint(death)
        if not np.array_equal(prog.patient_id, os_.patient_id):
            raise TrialDataError(f"endpoints {progression!r} and {death!r} list different "
                                 "patients; an illness-death model needs both for everyone.")
        kind = prog.kind
        t = np.asarray(prog.time, float)
        lower = np.where(kind == INTERVAL, np.asarray(prog.interval_lower, float)
                         if prog.interval_lower is not None else t, t)
        lower = np.where(kind == LEFT, 0.0, lower)
        upper = np.where(np.isin(kind, (EXACT, INTERVAL, LEFT)), t, np.inf)
        from dataclasses import replace

        from bayes_hcc.models.assemble import administrative_follow_up

        data = cls.from_arrays(arm=os_.arm, site=os_.site, prog_lower=lower,
                               prog_upper=upper, time=os_.time, death=os_.event,
                               patient_id=os_.patient_id, arms=os_.arms, sites=os_.sites,
                               time_unit=os_.time_unit,
                               names=(f"{progression} time", f"{death} time"))
        data = replace(data, admin_time=administrative_follow_up(trial, os_))
        if not covariates:
            return data
        from bayes_hcc.models.covariates import covariate_design

        design = covariate_design(trial, list(covariates), reference_levels)
        # the design's rows follow the data's table; put them in the endpoint's patient order
        row = {p: i for i, p in enumerate(np.asarray(trial.to_frame()["patient_id"]))}
        order = np.array([row[p] for p in np.asarray(os_.patient_id)])
        return replace(data, X=np.asarray(design.X, float)[order],
                       covariate_info=tuple(design.info().items()),
                       covariate_labels=tuple(design.columns))

    @classmethod
    def from_arrays(cls, *, arm, site, prog_lower, prog_upper, time, death, patient_id=None,
                    arms=("control", "treatment"), sites=None, time_unit="months",
                    names=("progression time", "death time")):
        """Checked arrays (errors name the patients and the fix)."""
        time = np.asarray(time, float)
        n = len(time)
        pid = np.asarray(patient_id if patient_id is not None else np.arange(1, n + 1))
        lower, upper = np.asarray(prog_lower, float), np.asarray(prog_upper, float)
        death = np.asarray(death, float)
        site = np.zeros(n, int) if site is None else np.asarray(site, int)
        sites = tuple(sites) if sites is not None else tuple(str(s) for s in np.unique(site))
        pname, dname = names
        bad = ~np.isfinite(time) | (time < 0) | ~np.isfinite(lower) | (lower < 0)
        if bad.any():
            raise TrialDataError(f"{dname} / {pname}: missing, infinite or negative values for "
                                 f"patients {_rows(pid, bad)}; give every patient both.")
        bad = (time == 0) & (death == 1)
        if bad.any():
            raise TrialDataError(f"{dname}: death at time 0 for patients {_rows(pid, bad)}; "
                                 "a death is at least one day after randomisation.")
        bad = upper == 0
        if bad.any():
            raise TrialDataError(f"{pname}: progression at time 0 for patients "
                                 f"{_rows(pid, bad)}; a progression is seen at least one day "
                                 "after randomisation (as for deaths: bh.read_trial's "
                                 "zero_time_events='half_day' moves events at 0 to half a "
                                 "day).")
        bad = upper < lower
        if bad.any():
            raise TrialDataError(f"{pname}: progression seen before the last progression-free "
                                 f"assessment for patients {_rows(pid, bad)}.")
        bad = np.isfinite(upper) & (upper > time + 1e-9)
        if bad.any():
            raise TrialDataError(f"{pname}: progression after death or the end of follow-up "
                                 f"for patients {_rows(pid, bad)}: check the dates (progression "
                                 f"cannot follow the {dname}).")
        bad = ~np.isfinite(upper) & (lower > time + 1e-9)
        if bad.any():
            raise TrialDataError(f"{pname}: a progression-free assessment after death or the "
                                 f"end of follow-up for patients {_rows(pid, bad)}.")
        lower = np.minimum(lower, time)
        upper = np.where(np.isfinite(upper), np.minimum(upper, time), np.inf)
        # progression observed exactly at death: no time in state 1 to model; PFS counts
        # these patients as deaths, and so does this model (reported)
        same = (upper == lower) & (upper == time) & (death == 1)
        if same.any():
            warn(f"{pname}: progression recorded at the time of death for patients "
                          f"{_rows(pid, same)}; counted as death without progression.",
                          DataWarning)
            upper = np.where(same, np.inf, upper)
        return cls(np.asarray(arm, int), site, lower, upper, time, death, pid, tuple(arms),
                   sites, time_unit)
