"""Covariates as a user writes them: categorical columns with a chosen reference level,
missing values refused by name, conditional vs marginal HR stated."""

import numpy as np
import pandas as pd
import pytest

import bayes_hcc as bh
from bayes_hcc.models.covariates import AliasedCovariates, covariate_effects, helmert_basis


def _three_level_trial(seed=11, n=450):
    """Weibull PH data (shape 1.3), log HR -0.4 for the arm, a three-level 'stage' with log
    HRs 0 (A), 0.6 (B), -0.5 (C) against A, and a numeric 'age' (0.02 per year)."""
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n)
    stage = rng.choice(["A", "B", "C"], n, p=[0.4, 0.35, 0.25])
    age = rng.normal(62, 9, n)
    eta = -0.4 * arm + np.select([stage == "B", stage == "C"], [0.6, -0.5], 0.0) \
        + 0.02 * (age - 62)
    k, lam = 1.3, 0.05
    t = (rng.exponential(size=n) / (lam * np.exp(eta))) ** (1 / k)
    cens = rng.uniform(6, 30, n)
    time, event = np.minimum(t, cens), (t <= cens).astype(int)
    df = pd.DataFrame({"patient_id": [f"P{i:03d}" for i in range(n)], "site": "one",
                       "arm": np.where(arm == 1, "tace_sorafenib", "sorafenib"),
                       "os_time": time, "os_event": event, "stage": stage, "age": age})
    return bh.read_trial(df, time_unit="months")


def _weibull_mle(trial):
    """lifelines' Weibull AFT with dummy coding (reference A), in the PH view:
    log HR_j = -rho * beta_j, SE by the delta method."""
    from lifelines import WeibullAFTFitter

    f = trial.to_frame()
    df = pd.DataFrame({"T": f["os_time"], "E": f["os_event"],
                       "arm": (f["arm"] == "tace_sorafenib").astype(float),
                       "stage_B": (f["stage"] == "B").astype(float),
                       "stage_C": (f["stage"] == "C").astype(float), "age": f["age"]})
    aft = WeibullAFTFitter().fit(df, "T", "E")
    rho = np.exp(aft.params_.loc[("rho_", "Intercept")])
    out = {}
    for name in ("arm", "stage_B", "stage_C", "age"):
        b = aft.params_.loc[("lambda_", name)]
        keys = [("lambda_", name), ("rho_", "Intercept")]
        V = aft.variance_matrix_.loc[keys, keys].to_numpy()
        grad = np.array([-rho, -rho * b])
        out[name] = (float(-rho * b), float(np.sqrt(grad @ V @ grad)))
    return out


@pytest.fixture(scope="module")
def three_level():
    return _three_level_trial()


VAGUE = {"log_hr": bh.Prior("Normal", mu=0, sigma=10),
         "beta": bh.Prior("Normal", mu=0, sigma=10)}


def test_three_level_covariate_agrees_with_the_weibull_mle(three_level):
    fit = bh.WeibullPH(site_effect="none", covariates=["stage", "age"], priors=VAGUE).fit(
        three_level, "os", random_seed=5)
    eff = fit.posterior["covariate_effect"].median(("chain", "draw"))
    mle = _weibull_mle(three_level)
    ours = {"stage_B": float(eff.sel(term="stage: B vs A")),
            "stage_C": float(eff.sel(term="stage: C vs A")),
            "age": float(eff.sel(term="age (per unit)")),
            "arm": float(fit.posterior["log_hr"].median())}
    # vague priors and 450 patients: the posterior median is within 0.25 SE of the MLE
    # (the likelihood dominates; what is left is the posterior's skew and MC error)
    for k, (est, se) in mle.items():
        assert abs(ours[k] - est) < 0.25 * se, (k, ours[k], est, se)
    table = bh.covariate_effects(fit)
    assert list(table.index) == ["stage: B vs A", "stage: C vs A", "age (per unit)"]
    assert table.loc["stage: B vs A", "HR"] == pytest.approx(np.exp(ours["stage_B"]),
                                                             rel=0.02)
    # the frequentist companion beside it is adjusted as the model is: the arm's Cox HR
    # equals lifelines' Cox with the covariates as a user codes them (age, stage dummies
    # against A), to lifelines' convergence tolerance; it was the unadjusted Cox HR, another
    # estimand than the conditional HR it sat beside
    from lifelines import CoxPHFitter

    f = three_level.to_frame()
    df = pd.DataFrame({"T": f["os_time"], "E": f["os_event"],
                       "arm": (f["arm"] == "tace_sorafenib").astype(float), "age": f["age"],
                       "stage_B": (f["stage"] == "B").astype(float),
                       "stage_C": (f["stage"] == "C").astype(float)})
    ref = CoxPHFitter().fit(df, "T", "E").summary.loc["arm"]
    freq = bh.frequentist(fit)
    cox = freq.loc["Cox HR (tace_sorafenib / sorafenib)"]
    assert cox["estimate"] == pytest.approx(ref["exp(coef)"], rel=1e-6)
    assert cox["upper"] == pytest.approx(ref["exp(coef) upper 95%"], rel=1e-6)
    assert "adjusted for stage, age" in cox["method"]
    assert freq.loc["log-rank test", "note"] == "not adjusted for stage, age"


def test_changing_the_reference_level_changes_only_the_labels(three_level):
    kw = dict(site_effect="none", covariates=["stage"], priors=VAGUE)
    fit_a = bh.WeibullPH(**kw).fit(three_level, "os", random_seed=3, draws=300)
    fit_c = bh.WeibullPH(reference_levels={"stage": "C"}, **kw).fit(three_level, "os",
                                                                    random_seed=3, draws=300)
    # the same model: identical draws of every parameter
    for v in ("log_hr", "beta", "log_lambda", "log_shape"):
        np.testing.assert_array_equal(fit_a.posterior[v], fit_c.posterior[v])
    a, c = fit_a.posterior["covariate_effect"], fit_c.posterior["covariate_effect"]
    assert list(c["term"].values) == ["stage: A vs C", "stage: B vs C"]
    np.testing.assert_allclose(c.sel(term="stage: A vs C"), -a.sel(term="stage: C vs A"),
                               atol=1e-12)
    np.testing.assert_allclose(c.sel(term="stage: B vs C"),
                               a.sel(term="stage: B vs A") - a.sel(term="stage: C vs A"),
                               atol=1e-12)
    assert bh.summarize(fit_a).loc["HR"].equals(bh.summarize(fit_c).loc["HR"])


def test_sum_to_zero_basis():
    for k in (2, 3, 5):
        B = helmert_basis(k)
        np.testing.assert_allclose(B.T @ B, np.eye(k - 1), atol=1e-12)
        np.testing.assert_allclose(B.sum(axis=0), 0.0, atol=1e-12)
    # level effects from the basis: contrasts recovered exactly
    info = {"g": {"kind": "categorical", "levels": ["a", "b", "c"], "reference": "b",
                  "columns": [0, 1]}}
    effect = np.array([[0.3, -0.1, -0.2]])  # sums to zero
    beta = effect @ helmert_basis(3)
    got = covariate_effects(beta, info)
    assert got["g: a vs b"] == pytest.approx(0.4) and got["g: c vs b"] == pytest.approx(-0.1)


def test_missing_covariate_values_are_refused_naming_the_patients(three_level):
    f = three_level.to_frame()
    f.loc[f["patient_id"].isin(["P004", "P017"]), "stage"] = None
    f.loc[f["patient_id"] == "P100", "age"] = np.nan
    trial = bh.read_trial(f[["patient_id", "site", "arm", "os_time", "os_event", "stage",
                             "age"]], time_unit="months")
    with pytest.raises(bh.ModelError) as err:
        bh.WeibullPH(site_effect="none", covariates=["stage", "age"]).fit(trial, "os")
    msg = str(err.value)
    assert "'stage' is missing for 2 patient(s): P004, P017" in msg
    assert "'age' is missing for 1 patient(s): P100" in msg
    assert "impute" in msg and "silently" in msg


def test_a_numeric_column_made_text_is_refused_not_made_categories(three_level, tmp_path):
    """Age with one 'unknown' in a CSV is read as text; it entered the model as a
    categorical covariate with a level per distinct age (a hazard ratio for each) without
    a word. Refused, naming the text and the patients; numbers stored as text likewise
    (unless declared categories in reference_levels); a real few-level code stays
    categorical."""
    f = three_level.to_frame()[["patient_id", "site", "arm", "os_time", "os_event", "stage",
                                "age"]].copy()
    f["age"] = f["age"].round().astype(object)
    f.loc[f["patient_id"] == "P007", "age"] = "unknown"
    f.to_csv(tmp_path / "t.csv", index=False)
    trial = bh.read_trial(tmp_path / "t.csv")
    model = bh.WeibullPH(site_effect="none", covariates=["age"])
    with pytest.raises(bh.ModelError, match=r"covariate 'age' holds numbers \(\d+ distinct\) "
                       r"and text 'unknown' for 1 patient\(s\): P007\. As text it would be a "
                       r"categorical covariate with \d+ levels"):
        model.fit(trial, "os")
    as_text = f[f["patient_id"] != "P007"].assign(age=lambda d: d["age"].astype(str))
    with pytest.raises(bh.ModelError, match="'age' holds numbers written as text"):
        model.fit(bh.read_trial(as_text), "os")
    from bayes_hcc.models.covariates import covariate_design

    codes = as_text.assign(stage=as_text["stage"].map({"A": "1", "B": "2", "C": "3"}))
    design = covariate_design(bh.read_trial(codes), ["stage"])
    assert design.terms[0]["kind"] == "categorical" and design.terms[0]["levels"] == \
        ["1", "2", "3"]


def test_covariates_the_model_cannot_separate_are_refused_by_name(three_level):
    """A treatment indicator copied in as a covariate used to be fitted: only R-hat hinted
    that the HR was not identified (its posterior was the prior's split of one sum). Now it
    is refused before sampling, as are covariates determined by others (the same variable
    in two units, a factor beside its own recodings); the model's own covariates pass."""
    f = three_level.to_frame()
    f = f.assign(treated=(f["arm"] == "tace_sorafenib").astype(int),
                 regimen=f["arm"].map({"sorafenib": "S", "tace_sorafenib": "T+S"}),
                 age_days=f["age"] * 365.25, stage_c=np.where(f["stage"] == "C", "C", "A/B"),
                 stage_b=(f["stage"] == "B").astype(float))
    trial = bh.read_trial(f, time_unit="months")
    for covs, match in [
            (["treated"], r"covariate\(s\) 'treated' determine the arm"),
            (["age", "regimen"], r"covariate\(s\) 'regimen' determine the arm"),
            (["age", "age_days"], r"covariates 'age', 'age_days' are linearly dependent"),
            (["stage", "stage_c", "stage_b"],
             r"covariates 'stage', 'stage_c', 'stage_b' are linearly dependent")]:
        with pytest.raises(bh.ModelError, match=match):  # before anything is compiled
            bh.WeibullPH(site_effect="none", covariates=covs).fit(trial, "os")
    from bayes_hcc.models.covariates import covariate_design
    # the covariates the data were simulated with: accepted (age, stage's two contrasts)
    assert covariate_design(trial, ["age", "stage"]).X.shape[1] == 3
    # the same with the arms coded 0/1 and the rows shuffled: the check follows the data
    coded = f.assign(arm=(f["arm"] == "tace_sorafenib").astype(int)).sample(
        frac=1.0, random_state=7)
    coded_trial = bh.read_trial(coded, control=0, treatment=1, time_unit="months")
    with pytest.raises(bh.ModelError, match=r"covariate\(s\) 'treated' determine the arm"):
        covariate_design(coded_trial, ["age", "treated"])
    assert covariate_design(coded_trial, ["age", "stage"]).X.shape[1] == 3


def test_bad_reference_levels_are_named(three_level):
    with pytest.raises(bh.ModelError, match="reference level 'D' of covariate 'stage'"):
        bh.WeibullPH(site_effect="none", covariates=["stage"],
                     reference_levels={"stage": "D"}).fit(three_level, "os")
    with pytest.raises(bh.ModelError, match="reference_levels: stage not among"):
        bh.WeibullPH(covariates=["age"], reference_levels={"stage": "A"})


def test_the_headline_table_says_conditional_or_marginal(three_level, example_trial):
    fit = bh.WeibullPH(site_effect="none", covariates=["stage"]).fit(three_level, "os",
                                                                     random_seed=1, draws=300)
    table = bh.summarize(fit, frequentist=False)
    assert table.loc["HR", "note"].startswith("conditional on covariates stage")
    marginal = [q for q in table.index if q.startswith("marginal HR")]
    assert len(marginal) == 1
    # with a strong prognostic covariate the marginal HR is attenuated towards 1
    assert abs(np.log(table.loc[marginal[0], "median"])) < abs(np.log(table.loc["HR",
                                                                                "median"]))
    plain = bh.WeibullPH(site_effect="none").fit(example_trial, "os", random_seed=1)
    assert bh.summarize(plain, frequentist=False).loc["HR", "note"].startswith("marginal")


def test_spec_round_trip_keeps_the_reference(tmp_path):
    model = bh.WeibullPH(covariates=["stage"], reference_levels={"stage": "C"})
    text = bh.dump_spec(model.spec)
    assert "[reference_levels]" in text and bh.load_spec(text) == model.spec
    # specs without categorical covariates keep their hash (the key is omitted)
    assert "reference_levels" not in bh.dump_spec(bh.WeibullPH().spec)


def test_marginal_hr_beyond_follow_up_is_labelled(three_level):
    fit = bh.WeibullPH(site_effect="none", covariates=["stage"]).fit(three_level, "os",
                                                                     random_seed=1)
    table = bh.summarize(fit, tau=60, extrapolate=True, frequentist=False)
    assert "extrapolated: tau beyond follow-up" in table.loc["marginal HR to 60 months",
                                                            "note"]


def test_covariates_a_fixed_per_site_or_per_stratum_term_absorbs_are_refused(example_trial):
    """A site-level covariate (hospital volume, region, or the site copied in as a factor)
    beside fixed site effects was fitted: the fixed effects absorb it, so its 'effect' was
    its prior's, silently. Refused by name before anything compiles; the same beside
    separate stratum baselines (``pooling="none"``). Random site effects and partially
    pooled strata keep them (estimated from the differences between sites, shrunk), and a
    patient-level covariate is kept beside fixed sites."""
    from bayes_hcc.models.graph import prepare

    f = example_trial.to_frame()
    sites = sorted(f["site"].unique())
    rng = np.random.default_rng(3)
    f = f.assign(volume=f["site"].map({s: 10.0 * (i + 1) for i, s in enumerate(sites)}),
                 region=f["site"].map({s: "north" if i < 3 else "south"
                                       for i, s in enumerate(sites)}),
                 hospital=f["site"], age=rng.normal(60, 10, len(f)))
    trial = bh.read_trial(f[[c for c in f.columns if not c.startswith(("os_", "pfs_", "ttp_"))]])
    for model, match in [
            (bh.WeibullPH(site_effect="fixed", covariates=["volume"]),
             r"covariate\(s\) 'volume' .*each site.*site_effect='fixed'.*site_effect='random'"),
            (bh.WeibullPH(site_effect="fixed", covariates=["age", "hospital"]),
             r"covariate\(s\) 'hospital' .*each site"),
            (bh.WeibullPH(site_effect="fixed", covariates=["volume", "age", "region"]),
             r"covariate\(s\) 'volume', 'region' .*each site"),
            (bh.PiecewiseExponential(site_effect="none", strata="site", pooling="none",
                                     covariates=["age", "region"]),
             r"covariate\(s\) 'region' .*each stratum of strata='site'.*pooling='partial'"),
            (bh.WeibullPH(site_effect="none", strata="region", pooling="none",
                          covariates=["volume"]),
             None)]:
        if match is None:  # volume varies within each region: kept
            prepare(model, trial, "os")
            continue
        with pytest.raises(AliasedCovariates, match=match):
            model.fit(trial, "os")
    for model in [bh.WeibullPH(site_effect="random", covariates=["volume", "region"]),
                  bh.WeibullPH(site_effect="fixed", covariates=["age"]),
                  bh.PiecewiseExponential(site_effect="none", strata="site",
                                          covariates=["age", "region"])]:
        X = prepare(model, trial, "os")[3]
        assert X.shape[1] == len(model.covariates)
    # the same with the arms coded 0/1 and the rows shuffled: the check follows the data
    coded = f.assign(arm=(f["arm"] == example_trial.treatment).astype(int)).sample(
        frac=1.0, random_state=5)
    coded = bh.read_trial(coded[[c for c in coded.columns
                                 if not c.startswith(("os_", "pfs_", "ttp_"))]],
                          control=0, treatment=1)
    with pytest.raises(AliasedCovariates, match=r"covariate\(s\) 'volume', 'region' "):
        bh.WeibullPH(site_effect="fixed", covariates=["volume", "age", "region"]).fit(
            coded, "os")
    assert prepare(bh.WeibullPH(site_effect="fixed", covariates=["age"]), coded,
                   "os")[3].shape[1] == 1
