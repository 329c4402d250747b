"""Covariates as a user writes them: numeric columns and categorical ones, into the design
matrix X of the linear predictor, and the effects a reader wants back from the draws.

* A numeric column is centred and scaled (mean 0, SD 1 over the trial's patients): its
  coefficient is per SD; the reported effect is per unit of the column.
* A categorical column (text, boolean or pandas categorical; or a numeric column named in
  ``reference_levels``) with K levels enters as K - 1 columns of normalised Helmert
  contrasts, an orthonormal basis of the level effects that sum to zero, centred. With
  independent Normal(0, sigma) coefficients the K level effects have exactly a
  ZeroSumNormal(sigma) prior, which treats every level alike: the reference level is then
  a choice of *reporting* only (contrasts ``level vs reference``), so changing it changes
  the labels of the table and nothing else (same graph, same draws).
* Missing values are refused, naming the column, the patients and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_hcc.errors import ModelError

__all__ = ["CovariateDesign", "covariate_design", "helmert_basis", "covariate_effects",
           "grouping_column", "AliasedCovariates", "check_group_aliasing"]


class AliasedCovariates(ModelError):
    """Covariates the model cannot separate from the arm or from each other."""


def grouping_column(trial, column: str, label: str) -> tuple[np.ndarray, tuple]:
    """Each patient's level of a grouping column (strata, subgroups) as text, and the
    levels in order (numbers as numbers, then text). ``label`` starts every message.
    Missing values are refused, naming the patients."""
    frame = trial.to_frame()
    if column not in frame.columns:
        raise ModelError(f"{label}: no such column; available: site, "
                         f"{', '.join(trial.covariates) or '(no other columns)'}.")
    x = frame[column]
    bad = x.isna().to_numpy()
    if bad.any():
        ids = frame["patient_id"].to_numpy()[bad]
        raise ModelError(f"{label} is missing for {bad.sum()} patient(s): "
                         f"{', '.join(map(str, ids[:10]))}{' ...' if len(ids) > 10 else ''}. "
                         "Give every patient a level (e.g. 'unknown') or remove those "
                         "patients explicitly.")
    text = x.astype(str).to_numpy()
    labels = sorted(set(text), key=lambda v: (0, float(v), v) if _is_number(v) else (1, 0, v))
    return text, tuple(labels)


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def helmert_basis(k: int) -> np.ndarray:
    """Orthonormal basis (k, k - 1) of the vectors summing to zero: column j has 1 on the
    first j + 1 levels' ... (normalised Helmert contrasts; fixed, no LAPACK sign choices)."""
    B = np.zeros((k, k - 1))
    for j in range(1, k):
        B[:j, j - 1] = 1.0
        B[j, j - 1] = -float(j)
        B[:, j - 1] /= np.sqrt(j * (j + 1))
    return B


@dataclass(frozen=True)
class CovariateDesign:
    """The design matrix and what each of its columns means."""

    X: np.ndarray
    #: label of each column of X (the ``covariate`` coordinate of ``beta``)
    columns: tuple
    #: one description per covariate (JSON-able): kind, columns of X, scaling or levels
    terms: tuple

    def info(self) -> dict:
        """JSON-able description kept with a fit (``covariate_scaling``)."""
        return {t["name"]: {k: v for k, v in t.items() if k != "name"} for t in self.terms}


def _levels(x: pd.Series) -> list:
    if isinstance(x.dtype, pd.CategoricalDtype):
        present = set(x.dropna().unique())
        return [c for c in x.cat.categories if c in present]
    return sorted(x.dropna().unique(), key=lambda v: (str(type(v)), str(v)))


def _is_categorical(x: pd.Series) -> bool:
    return (isinstance(x.dtype, pd.CategoricalDtype) or x.dtype == bool
            or not np.issubdtype(x.dtype, np.number))


def covariate_design(trial, names, reference_levels=None) -> CovariateDesign:
    """Build X for the covariates ``names`` of ``trial`` (see the module docstring)."""
    reference_levels = dict(reference_levels or {})
    frame = trial.to_frame()
    names = list(names)
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise ModelError(f"covariate(s) {', '.join(missing)} not in the data; available: "
                         f"{', '.join(trial.covariates) or 'none'}.")
    stray = sorted(set(reference_levels) - set(names))
    if stray:
        raise ModelError(f"reference_levels names {', '.join(stray)}, which is not among the "
                         f"covariates ({', '.join(names) or 'none'}).")
    problems = []
    for c in names:
        bad = frame[c].isna().to_numpy()
        if bad.any():
            ids = frame["patient_id"].to_numpy()[bad]
            shown = ", ".join(map(str, ids[:10])) + (" ..." if len(ids) > 10 else "")
            problems.append(f"covariate {c!r} is missing for {bad.sum()} patient(s): {shown}")
    if problems:
        raise ModelError("; ".join(problems) + ". Nothing is dropped silently: impute the "
                         "values, or remove those patients from the data explicitly (and "
                         "say so in the analysis), before fitting.")
    cols, labels, terms = [], [], []
    for c in names:
        x = frame[c]
        if _is_categorical(x) or c in reference_levels:
            _check_numbers_read_as_text(frame, c, explicit=c in reference_levels)
            levels = _levels(x)
            text = [str(v) for v in levels]
            if len(levels) < 2:
                raise ModelError(f"covariate {c!r} has a single level ({text[0]!r}); it "
                                 "cannot be estimated.")
            ref = reference_levels.get(c, text[0])
            if str(ref) not in text:
                raise ModelError(f"reference level {ref!r} of covariate {c!r} is not among "
                                 f"its levels: {', '.join(text)}.")
            index = pd.Categorical(x.astype(str) if not isinstance(x.dtype, pd.CategoricalDtype)
                                   else x.astype(str), categories=text).codes
            B = helmert_basis(len(levels))
            block = B[index]
            mean = block.mean(axis=0)
            start = sum(np.shape(b)[1] for b in cols)
            cols.append(block - mean)
            labels += [f"{c}:contrast{j + 1}" for j in range(len(levels) - 1)]
            terms.append({"name": c, "kind": "categorical", "levels": text,
                          "reference": str(ref),
                          "columns": list(range(start, start + len(levels) - 1)),
                          "mean": mean.tolist()})
        else:
            v = x.to_numpy(float)
            m, s = float(v.mean()), float(v.std(ddof=0))
            if s == 0:
                raise ModelError(f"covariate {c!r} is constant; it cannot be estimated.")
            start = sum(np.shape(b)[1] for b in cols)
            cols.append(((v - m) / s)[:, None])
            labels.append(c)
            terms.append({"name": c, "kind": "numeric", "mean": m, "sd": s,
                          "columns": [start]})
    X = np.hstack(cols) if cols else np.zeros((trial.n_patients, 0))
    if cols:
        arm = (frame["arm"].astype(str) == str(trial.arms[1])).to_numpy(float)
        _check_aliasing(X, terms, arm - arm.mean())
    return CovariateDesign(X, tuple(labels), tuple(terms))


#: A text column with more distinct numbers than this, and some text, is a numeric
#: column with stray text ("unknown", "n/a", "<40"), not categories.
MAX_NUMERIC_LEVELS = 10


def _check_numbers_read_as_text(frame: pd.DataFrame, column: str, explicit: bool) -> None:
    """Refuse a numeric column that text entries, or numbers stored as text, made a text
    column: it would enter the model as a categorical covariate with a level per distinct
    number (age with one 'unknown' became 40 levels, each with its own hazard ratio). A
    pandas categorical column, and numbers-as-text named in ``reference_levels`` (declared
    categories), are categories."""
    x = frame[column]
    if isinstance(x.dtype, pd.CategoricalDtype) or x.dtype == bool:
        return
    as_number = pd.to_numeric(x, errors="coerce")
    text = as_number.isna().to_numpy()
    if text.all() or as_number.dropna().nunique() <= MAX_NUMERIC_LEVELS:
        return
    if not text.any():
        if explicit:
            return
        raise ModelError(
            f"covariate {column!r} holds numbers written as text ({x.nunique()} distinct): "
            f"as text it would be a categorical covariate with {x.nunique()} levels. Fix: "
            f"convert it (frame[{column!r}] = pd.to_numeric(frame[{column!r}])) before "
            "reading the trial; if the numbers are codes of categories, name the column in "
            "reference_levels.")
    ids = frame["patient_id"].to_numpy()[text]
    values = sorted({str(v) for v in x[text]})
    raise ModelError(
        f"covariate {column!r} holds numbers ({as_number.dropna().nunique()} distinct) and "
        f"text {', '.join(map(repr, values[:5]))} for {text.sum()} patient(s): "
        f"{', '.join(map(str, ids[:10]))}{' ...' if len(ids) > 10 else ''}. As text it "
        f"would be a categorical covariate with {x.nunique()} levels. Fix: write a missing "
        "value as an empty cell and impute it (or remove those patients explicitly), so "
        "the column is numeric.")


def _check_aliasing(X: np.ndarray, terms: list, arm: np.ndarray) -> None:
    """Covariates the model cannot separate, refused by name: ones that determine the arm
    (a treatment indicator copied in as a covariate: the HR would not be identified, only
    its sum with the covariate's effect), or ones determined by the others (the same
    variable twice, or a combination of others). The columns and the arm are centred, so
    the intercept is implied."""
    rank = np.linalg.matrix_rank
    names = [t["name"] for t in terms]
    r = rank(X)
    if rank(np.column_stack([X, arm])) == r:
        culprits = [t["name"] for t in terms
                    if rank(np.column_stack([np.delete(X, t["columns"], axis=1), arm]))
                    > rank(np.delete(X, t["columns"], axis=1))]
        raise AliasedCovariates(
            f"covariate(s) {', '.join(map(repr, culprits or names))} determine the arm "
            "(with the other covariates, if any): the arm effect (the HR) cannot be "
            "separated from them. Leave them out: a treatment indicator is the arm itself.")
    if r < X.shape[1]:
        culprits = [t["name"] for t in terms
                    if r - rank(np.delete(X, t["columns"], axis=1)) < len(t["columns"])]
        raise AliasedCovariates(
            f"covariates {', '.join(map(repr, culprits))} are linearly dependent (the same "
            "variable twice, or one a combination of the others): their effects cannot be "
            "separated. Leave one of them out.")


def check_group_aliasing(X: np.ndarray, info: dict, groups, where: str, term: str,
                         fix: str) -> None:
    """Covariates determined by a grouping that has a fixed term of its own (fixed site
    effects, separate stratum baselines), refused by name: that term absorbs them, so
    their effects would be their priors', not the data's. ``groups``: each patient's
    group; ``info``: the design's ``info()``; ``where``, ``term`` and ``fix`` word the
    error ("each site", "the fixed site effects (site_effect='fixed')", what to do)."""
    if X.shape[1] == 0:
        return
    labels = np.unique(np.asarray(groups), return_inverse=True)[1]
    G = np.eye(labels.max() + 1)[labels]
    G = (G - G.mean(axis=0))[:, 1:]  # centred as X is: the intercept is implied
    rank = np.linalg.matrix_rank
    r0 = rank(G)
    culprits = [name for name, t in info.items()
                if rank(np.column_stack([G, X[:, t["columns"]]])) < r0 + len(t["columns"])]
    if not culprits and rank(np.column_stack([G, X])) == r0 + rank(X):
        return
    names = ", ".join(map(repr, culprits or list(info)))
    raise AliasedCovariates(
        f"covariate(s) {names} are the same within {where} (with the other covariates, if "
        f"any), so {term} absorb them: their effects would be their priors', not the "
        f"data's. {fix}")


def covariate_effects(beta: np.ndarray, info: dict) -> dict:
    """The effects a reader wants, from coefficient draws ``beta`` (S, p) and a fit's
    ``covariate_scaling`` info: label -> (S,) draws on the family's log-ratio scale.
    Numeric: per unit of the column (``name (per unit)``); categorical: each level against
    the reference (``name: level vs reference``)."""
    out = {}
    beta = np.asarray(beta, float)
    for name, t in info.items():
        if t.get("kind", "numeric") == "numeric":
            j = t["columns"][0] if "columns" in t else list(info).index(name)
            out[f"{name} (per unit)"] = beta[:, j] / t["sd"]
        else:
            B = helmert_basis(len(t["levels"]))
            effect = beta[:, t["columns"]] @ B.T  # (S, K): the sum-to-zero level effects
            r = t["levels"].index(t["reference"])
            for k, level in enumerate(t["levels"]):
                if k != r:
                    out[f"{name}: {level} vs {t['reference']}"] = effect[:, k] - effect[:, r]
    return out


def column_labels(info: dict) -> list:
    """Label of each column of X, from a fit's ``covariate_scaling`` info."""
    labels = {}
    for name, t in info.items():
        if t.get("kind", "numeric") == "numeric":
            labels[t["columns"][0]] = name
        else:
            for j, col in enumerate(t["columns"]):
                labels[col] = f"{name}:contrast{j + 1}"
    return [labels[j] for j in sorted(labels)]
