"""Subgroup analyses: shrunk (treatment-by-subgroup interaction with a hierarchical prior)
and unshrunk (each subgroup alone) HRs, the forest plot and the table export; with no true
heterogeneity the shrunk HRs are closer to the truth (slow study: 50 simulated trials)."""

from pathlib import Path

import numpy as np
import pytest

import bayes_hcc as bh


def _with_groups(trial, seed=0, k=3):
    """The trial with a 'group' column of k levels, independent of everything (no true
    treatment-by-group heterogeneity)."""
    from bayes_hcc.data.trial import TrialData

    f = trial.to_frame().copy()
    f["group"] = np.random.default_rng(seed).choice([f"g{i}" for i in range(k)], len(f))
    return TrialData(f, endpoints=trial.endpoints, control=trial.control,
                     treatment=trial.treatment, time_unit=trial.time_unit,
                     layout=trial.layout, cut_date=trial.cut_date, truth=trial.truth,
                     source=trial.source, assessments=trial.assessments)


@pytest.fixture(scope="module")
def table(example_trial):
    trial = _with_groups(example_trial)
    fit = bh.WeibullPH().fit(trial, "os", random_seed=3)
    return bh.subgroups(fit, trial, by=["group", "site"], fast=True)


def test_subgroup_table_counts_and_shrinkage(table, example_trial):
    ep = example_trial.endpoint("os")
    assert table.index[0] == ("overall", "all")
    groups = table.loc["group"]
    assert list(groups.index) == ["g0", "g1", "g2"]
    assert groups["patients"].sum() == len(ep)
    for a in ep.arms:
        assert groups[f"events {a}"].sum() == int(ep.event[ep.arm == ep.arms.index(a)].sum())
    sites = table.loc["site"]
    assert list(sites.index) == list(ep.sites)
    # shrinkage: every shrunk log HR is nearer the overall one than the subgroup's own
    overall = np.log(table["HR shrunk"].iloc[0])
    rest = table.iloc[1:]
    shrunk = np.abs(np.log(rest["HR shrunk"]) - overall)
    alone = np.abs(np.log(rest["HR unshrunk"]) - overall)
    assert (shrunk <= alone + 0.02).mean() >= 0.8 and shrunk.mean() < alone.mean()
    # and its credible intervals are narrower
    width = lambda k: np.log(rest[f"upper {k}"]) - np.log(rest[f"lower {k}"])  # noqa: E731
    assert (width("shrunk") < width("unshrunk")).all()
    assert ((rest["P(HR < 1) shrunk"] >= 0) & (rest["P(HR < 1) shrunk"] <= 1)).all()
    assert set(table.attrs["interaction_sd"]) == {"group", "site"}


def test_forest_plot_and_docx(table, tmp_path):
    from docx import Document

    fig = bh.plot_subgroups(table)
    fig.savefig(tmp_path / "forest.png")
    assert (tmp_path / "forest.png").stat().st_size > 10_000
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[0].startswith("Overall") and any(lb.startswith("group: g1") for lb in labels)
    path = bh.write_table(table, tmp_path / "subgroups.docx", title="Subgroups")
    doc = Document(str(path))
    assert len(doc.tables[0].rows) == len(table) + 1
    assert any("Shrunk" in p.text for p in doc.paragraphs)


def test_bad_subgroup_columns(example_trial):
    fit_spec = bh.WeibullPH().spec
    with pytest.raises(bh.BayesHCCError, match="by='ecog': no such column"):
        bh.subgroups(fit_spec, example_trial, by="ecog", fast=True)
    trial = _with_groups(example_trial, k=1)
    with pytest.raises(bh.BayesHCCError, match="single level"):
        bh.subgroups(fit_spec, trial, by="group", fast=True)
    # an illness-death analysis (spec or fit) used to fail with "'IllnessDeathFit' object
    # has no attribute 'family'" after its fit
    spec = Path(__file__).parents[2] / "models" / "illness_death.toml"
    with pytest.raises(bh.ModelError, match="illness-death analysis has no single hazard "
                       "ratio per subgroup.*primary_os.toml"):
        bh.subgroups(spec, example_trial, by="site", fast=True)
    # a model (no endpoint yet) was "expected an analysis spec ..., got WeibullPH"
    with pytest.raises(bh.ModelError, match=r"subgroups takes a fit or an analysis spec, not "
                       r"a model \(WeibullPH: .*bh\.subgroups\(model\.fit\(trial, 'os'\)"):
        bh.subgroups(bh.WeibullPH(), example_trial, by="site", fast=True)


def test_subgroups_arguments_checked_before_any_fit(example_trial):
    """``by=[]`` failed with UnboundLocalError, ``by=3`` inside ``list()`` and ``prob=95``
    inside numpy's quantile, after the fits."""
    spec = bh.WeibullPH().spec
    for by in ([], 3, ["site", 3]):
        with pytest.raises(bh.BayesHCCError, match="give a column name or a list of them"):
            bh.subgroups(spec, example_trial, by=by, fast=True)
    with pytest.raises(bh.BayesHCCError, match="prob=95 must be strictly between 0 and 1"):
        bh.subgroups(spec, example_trial, by="site", prob=95, fast=True)


def test_a_fit_s_subgroups_come_from_its_own_data(example_trial):
    """With a fit, the overall row is the fit's posterior: the table of another data cut
    used to print it beside that cut's patients and subgroups. A per-protocol analysis
    counts its own population: the overall and subgroup rows add up to the per-protocol
    patients (they used to count every randomized patient beside per-protocol fits)."""
    fit = bh.WeibullPH().fit(example_trial, "os", random_seed=3)  # the fixture's model
    with pytest.raises(bh.BayesHCCError, match=r"subgroups: trial \(cut 2018-06-30\) is not "
                       "the data the fit was made on.*overall row would describe other"):
        bh.subgroups(fit, example_trial.cut("2018-06-30"), by="site", fast=True)
    trial = _with_groups(example_trial, k=2)
    f = trial.to_frame().copy()
    f["per_protocol"] = (np.arange(len(f)) % 5 != 0).astype(int)
    trial = bh.read_trial(f[[c for c in f.columns if not c.startswith(("os_", "pfs_", "ttp_"))]])
    spec = bh.apply_overrides(bh.WeibullPH().spec, {"population": "per_protocol"})
    table = bh.subgroups(spec, trial, by="group", fast=True, random_seed=2)
    n_pp = int(f["per_protocol"].sum())
    assert table.loc[("overall", "all"), "patients"] == n_pp
    assert table.loc["group", "patients"].sum() == n_pp
    pp = f[f["per_protocol"] == 1]
    assert table.loc["group", "events sorafenib"].sum() == int(
        pp.loc[pp["arm"] == "sorafenib", "os_event"].sum())


def test_a_covariate_equal_to_the_arm_within_a_subgroup_is_left_out_there(example_trial):
    """In a small subgroup a binary covariate can coincide with the arm by chance; the
    subgroup's unshrunk fit leaves it out (its HR would not be identified) and says so in
    that row's note, instead of the whole table failing."""
    from bayes_hcc.data.trial import TrialData

    f = _with_groups(example_trial, k=2).to_frame().copy()
    rng = np.random.default_rng(5)
    f["x"] = rng.integers(0, 2, len(f))
    in_g1 = (f["group"] == "g1").to_numpy()
    f.loc[in_g1, "x"] = (f.loc[in_g1, "arm"] == "tace_sorafenib").astype(int)
    trial = TrialData(f, endpoints=example_trial.endpoints, control=example_trial.control,
                      treatment=example_trial.treatment, time_unit=example_trial.time_unit,
                      layout=example_trial.layout, cut_date=example_trial.cut_date,
                      source="x = arm in g1")
    spec = bh.apply_overrides(bh.WeibullPH(site_effect="none").spec, {"covariates": ["x"]})
    table = bh.subgroups(spec, trial, by="group", fast=True, random_seed=2)
    assert "covariate 'x' left out of the unshrunk fit" in table.loc[("group", "g1"), "note"]
    assert "left out" not in table.loc[("group", "g0"), "note"]
    assert np.isfinite(table.loc[("group", "g1"), "HR unshrunk"])


@pytest.mark.slow
def test_shrunk_subgroup_hrs_are_closer_to_the_truth():
    """50 simulated trials (300 patients, HR 0.7 everywhere), a 3-level subgroup with no
    treatment-by-subgroup heterogeneity: the mean squared error of the subgroup log HRs
    (posterior medians, against the true log HR) is smaller shrunk than unshrunk, beyond
    Monte Carlo error."""
    truth = np.log(0.7)
    se_shrunk, se_alone = [], []
    for seed in range(50):
        trial = _with_groups(bh.simulate_trial(300, hr_os=0.7, random_seed=500 + seed), seed)
        t = bh.subgroups(bh.WeibullPH().spec, trial, by="group", fast=True, random_seed=seed)
        rest = t.loc["group"]
        se_shrunk += list((np.log(rest["HR shrunk"]) - truth) ** 2)
        se_alone += list((np.log(rest["HR unshrunk"]) - truth) ** 2)
    d = np.array(se_alone) - np.array(se_shrunk)
    # paired difference of squared errors, its MC SE over trials (3 levels per trial);
    # measured: MSE shrunk 0.0201, unshrunk 0.0450, difference 0.0249 (MC SE 0.0033)
    per_trial = d.reshape(50, 3).mean(axis=1)
    mc = per_trial.std(ddof=1) / np.sqrt(50)
    print(f"MSE shrunk {np.mean(se_shrunk):.4f}, unshrunk {np.mean(se_alone):.4f}, "
          f"difference {per_trial.mean():.4f} (MC SE {mc:.4f})")
    assert per_trial.mean() > 2 * mc


def test_subgroups_by_a_site_level_column(example_trial):
    """Subgroups by region, a column that is the same for every patient of a site: the
    shrunk model's fixed subgroup effects absorb the trial's sites (every site lies in one
    region), so they are left out of that fit, and the rows say so; the HRs are estimated
    as for any column: with no true heterogeneity (every patient's HR is the example
    trial's 0.70), each region's shrunk interval covers it, and the shrunk HRs lie nearer
    the overall HR than the unshrunk ones (0.02 on the log scale: Monte Carlo error of the
    fast fits' medians, as in the test above)."""
    f = example_trial.to_frame()
    sites = sorted(f["site"].unique())
    f["region"] = f["site"].map({s: "north" if i < 3 else "south" for i, s in enumerate(sites)})
    trial = bh.read_trial(f[[c for c in f.columns if not c.startswith(("os_", "pfs_", "ttp_"))]])
    fit = bh.WeibullPH().fit(trial, "os", random_seed=3)  # the fixture's model: compiled
    table = bh.subgroups(fit, trial, by="region", fast=True)
    rows = table.loc["region"]
    assert list(rows.index) == ["north", "south"]
    assert rows["note"].str.contains("the trial sites left out of the shrunk fit").all()
    for k in ("shrunk", "unshrunk"):
        assert np.isfinite(rows[f"HR {k}"]).all()
        assert (rows[f"lower {k}"] < rows[f"HR {k}"]).all()
        assert (rows[f"HR {k}"] < rows[f"upper {k}"]).all()
    true_hr = example_trial.truth.hr["os"]
    assert ((rows["lower shrunk"] < true_hr) & (true_hr < rows["upper shrunk"])).all()
    overall = np.log(table["HR shrunk"].iloc[0])
    assert (np.abs(np.log(rows["HR shrunk"]) - overall)
            <= np.abs(np.log(rows["HR unshrunk"]) - overall) + 0.02).all()


def test_a_subgroup_without_events_has_no_unshrunk_estimate(example_trial):
    """At an early interim cut three of the six sites have no death yet: the table used to
    fail on their fits alone ("os: no events at all"). Their rows now carry the shrunk HR
    (the model's, borrowed from the other sites) and no unshrunk one, with a note; the
    other rows are estimated as always, and the forest plot draws the table."""
    early = example_trial.cut("2017-09-30")
    table = bh.subgroups(bh.WeibullPH(site_effect="none").spec, early, by="site", fast=True,
                         random_seed=4)
    sites = table.loc["site"]
    events = sites["events sorafenib"] + sites["events tace_sorafenib"]
    empty = events == 0
    assert empty.sum() >= 2 and (~empty).sum() >= 2      # both kinds of rows are exercised
    assert sites.loc[empty, "HR unshrunk"].isna().all()
    assert sites.loc[empty, "note"].str.contains("no events: no unshrunk estimate").all()
    assert np.isfinite(sites.loc[~empty, "HR unshrunk"]).all()
    assert np.isfinite(sites["HR shrunk"]).all()
    assert not sites.loc[~empty, "note"].str.contains("no unshrunk estimate").any()
    bh.plot_subgroups(table)


def test_a_subgroup_fit_s_data_warning_is_in_its_note(example_trial):
    """Subgroup 'g0' of an analysis with fixed site effects: within it AMC's patients are
    all censored, so the subgroup's own fit gives AMC the prior's effect. The subgroup fits
    kept only their convergence warnings for the note; their DataWarnings are there now."""
    from bayes_hcc.data.trial import TrialData

    trial = _with_groups(example_trial, k=2)
    f = trial.to_frame()
    amc = f["site"] == "AMC"
    f["group"] = np.where(amc, np.where(f["os_event"] == 1, "g1", "g0"), f["group"])
    trial = TrialData(f, endpoints=trial.endpoints, control=trial.control,
                      treatment=trial.treatment, time_unit=trial.time_unit,
                      layout=trial.layout, cut_date=trial.cut_date, source=trial.source)
    spec = bh.apply_overrides(bh.WeibullPH().spec, {"site.effect": "fixed"})
    table = bh.subgroups(spec, trial, by="group", fast=True, random_seed=1)
    assert "os: site(s) 'AMC' have no events: with site_effect='fixed'" in \
        table.loc[("group", "g0"), "note"]
    assert "have no events" not in table.loc[("group", "g1"), "note"]
