"""models/*.toml specs: loading, round trip, validation errors, fitting, provenance."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

import bayes_hcc as bh
from bayes_hcc.families.registry import FAMILIES as REGISTRY
from bayes_hcc.models.base import MODELS_BY_KEY
from bayes_hcc.spec import spec_families

MODELS = Path(__file__).resolve().parents[2] / "models"
SPECS = ["primary_os", "secondary_pfs", "secondary_ttp"]


@pytest.mark.parametrize("name", SPECS)
def test_shipped_specs_load_and_round_trip(name):
    spec = bh.load_spec(MODELS / f"{name}.toml")
    assert spec.name == name
    again = bh.load_spec(bh.dump_spec(spec))
    assert again == spec and again.hash == spec.hash
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"


@pytest.mark.parametrize("key", list(REGISTRY))
def test_registry_matches_model_classes(key):
    """Every registered family has a model class, and the spec accepts exactly the priors
    the model class accepts (read from the registry, not a hand-kept list)."""
    trial = bh.datasets.load_example_trial()
    m = MODELS_BY_KEY[key]()
    fam = m.family_for(*(lambda e: (e.time, e.event))(trial.endpoint("os")))
    assert type(fam) is REGISTRY[key]
    accepted = set({**bh.DEFAULT_PRIORS, **fam.default_priors()})
    assert accepted == set(spec_families()[key]["priors"]), key


BASE = {"name": "x", "endpoint": "os", "family": "weibull_ph"}
SHIPPED = Path(__file__).resolve().parents[2] / "models"
VARIANT = '[[variants]]\nname = "a"\noverrides = { "site.effect" = "none" }\n'


@pytest.mark.parametrize("change, match", [
    ({"familly": "weibull_ph"}, r"unknown key\(s\) familly; valid keys: name, description"),
    ({"family": "cox"}, r"'cox' is not valid; choose one of piecewise_exponential, weibull_ph, "
                        r"exponential_ph, lognormal_aft, loglogistic_aft"),
    ({"site": {"effect": "sometimes"}}, r"site.effect: 'sometimes' is not valid; choose one of "
                                        r"random, fixed, none"),
    ({"site": {"efect": "random"}}, r"site: unknown key\(s\) efect; valid keys: effect"),
    ({"sampler": {"draws": "many"}}, r"sampler.draws: must be an integer"),
    ({"sampler": {"draws": 0}}, r"sampler.draws: must be >= 1"),
    ({"sampler": {"target_accept": 1.5}}, r"strictly between 0 and 1"),
    ({"priors": {"log_hr_trt": {"dist": "Normal", "mu": 0, "sigma": 1}}},
     r"priors.log_hr_trt: unknown prior 'log_hr_trt'; weibull_ph priors: site_sd, .*log_hr"),
    ({"priors": {"log_hr": {"dist": "Normal", "mu": 0, "sigma": -1}}}, r"must be > 0"),
    ({"priors": {"log_hr": {"dist": "Cauchy", "mu": 0}}}, r"unknown prior distribution 'Cauchy'"),
    # a prior whose support is not the parameter's: refused on reading, not at the fit
    ({"priors": {"log_hr": {"dist": "HalfNormal", "sigma": 1}}},
     r"priors.log_hr: priors\['log_hr'\] = HalfNormal\(sigma=1\) has no mass below 0"),
    ({"priors": {"site_sd": {"dist": "Normal", "mu": 0, "sigma": 1}}},
     r"priors.site_sd: .*puts mass below 0, but site_sd is a standard deviation"),
    ({"illness_death": {"progression": "os"}},
     r"illness_death.progression: 'os' is also the death endpoint"),
    ({"covariates": ["age", "ecog", "age"]},
     r"covariates: 'age' listed more than once: give each column once"),
    ({"site": {"effect": "fixed"},
      "priors": {"site_effect": {"dist": "Normal", "mu": 1, "sigma": 1}}},
     r"priors.site_effect: Normal\(mu=1, sigma=1\): fixed site effects are sum-to-zero"),
    ({"illness_death": {}, "priors": {"progression": {"log_hr": {"dist": "HalfNormal",
                                                                 "sigma": 1}}}},
     r"priors.progression.log_hr: .*no mass below 0.*HR >= 1 on every draw"),
    ({"options": {"n_intervals": 4}},
     r"options: unknown key\(s\) n_intervals; valid keys: prior_reference_time"),
    ({"family": "piecewise_exponential", "options": {"cuts": [3, 2]}}, r"cut points must increase"),
    ({"report": {"estimand": "everyone"}}, r"choose one of standardized, typical_site, new_site"),
    ({"population": "pp"}, r"choose one of itt, per_protocol"),
    # (the checks below had no test: found by a coverage run)
    ({"name": 3}, r"name: must be a string, got 3"),
    ({"illness_death": {"progression": ""}},
     r"illness_death.progression: must be a non-empty string"),
    ({"illness_death": {"shared_site_effect": "yes"}},
     r"illness_death.shared_site_effect: must be true or false, got 'yes'"),
    ({"options": {"prior_reference_time": 0}},
     r"options.prior_reference_time: must be a number > 0, got 0"),
    ({"options": ["prior_reference_time"]}, r"options: must be a table, got \["),
    ({"strata": "site"}, r"strata: must be a table with a column name, e.g. \{column = "),
    ({"strata": {"column": "site", "pool": "partial"}},
     r"strata: unknown key\(s\) pool; valid: column, pooling"),
    ({"strata": {"column": "site"}, "site": {"effect": "random"}},
     r"strata: column = \"site\" gives every site its own baseline hazard; a random site "
     r"effect on top of it is not identifiable"),
    ({"covariates": "age"}, r"covariates: must be a list of column names, got 'age'"),
    ({"covariates": ["ecog"], "reference_levels": {"ecog": True}},
     r"reference_levels: must be a table of covariate = level"),
    ({"covariates": ["ecog"], "reference_levels": {"sex": "M"}},
     r"reference_levels: sex not among the covariates \(ecog\)"),
    ({"priors": [1]}, r"priors: must be a table, got \[1\]"),
])
def test_spec_errors_list_valid_choices(change, match):
    with pytest.raises(bh.SpecError, match=match):
        bh.load_spec({**BASE, **change})


def test_bad_overrides_are_named():
    spec = bh.load_spec(SHIPPED / "primary_os.toml")
    with pytest.raises(bh.SpecError, match=r"apply_overrides: key 'site..effect' must be a "
                                           r"dotted name such as"):
        bh.apply_overrides(spec, {"site..effect": "none"})
    with pytest.raises(bh.SpecError, match=r"override 'name.x': 'name' is not a table"):
        bh.apply_overrides(spec, {"name.x": 1})
    with pytest.raises(bh.SpecError, match=r"expected an analysis spec \(a ModelSpec, a dict, "
                                           r"TOML text or the path of a TOML file.*got list"):
        bh.load_spec([1])


HALF = {"dist": "HalfNormal", "sigma": 0.5}


@pytest.mark.parametrize("change, match", [
    # each was accepted and had no effect on the fit: a sensitivity analysis varying it
    # would have reported that it does not matter
    ({"site": {"effect": "none"}, "priors": {"site_sd": HALF}},
     r'priors.site_sd: the model has no such term \(site.effect is "none"\), so this prior '
     r'would not be used: set site.effect = "random", or remove the prior'),
    ({"site": {"effect": "fixed"}, "priors": {"site_sd": HALF}}, r"priors.site_sd: .*fixed"),
    ({"strata": {"column": "site"}, "priors": {"site_sd": HALF}},
     r'priors.site_sd: the model has no such term \(each site has its own baseline: '
     r'strata.column = "site"\), so this prior would not be used: stratify by another '
     r'column, or remove the prior'),
    ({"priors": {"site_effect": {"dist": "Normal", "mu": 0, "sigma": 1}}},
     r'priors.site_effect: .*site.effect is "random".*set site.effect = "fixed"'),
    ({"priors": {"arm_site_sd": HALF}},
     r'priors.arm_site_sd: .*site.arm_by_site is "none".*set site.arm_by_site = "random"'),
    ({"priors": {"beta": {"dist": "Normal", "mu": 0, "sigma": 1}}},
     r"priors.beta: .*there are no covariates.*list them in covariates"),
    ({"priors": {"stratum_sd": HALF}}, r"priors.stratum_sd: .*there are no strata"),
    ({"strata": {"column": "ecog", "pooling": "none"}, "priors": {"stratum_sd": HALF}},
     r'priors.stratum_sd: .*strata.pooling is "none"'),
    ({"family": "piecewise_exponential", "options": {"tv_sd": 0.5}},
     r"options.tv_sd: a time-varying HR's step SD, unused while time_varying_hr is false: "
     r"set time_varying_hr = true, or leave tv_sd out"),
    ({"family": "piecewise_exponential",
      "options": {"baseline_prior": "independent", "rw_sd": 0.5}},
     r"options.rw_sd: the rw1 baseline's step SD, unused while baseline_prior is "
     r"'independent'"),
    ({"family": "piecewise_exponential", "options": {"cuts": [3, 6], "n_intervals": 4}},
     r"options: give cuts or n_intervals, not both"),
    ({"family": "mspline_ph", "options": {"knots": [3, 6], "n_knots": 4}},
     r"options: give knots or n_knots, not both"),
    ({"illness_death": {}, "site": {"effect": "none"},
      "priors": {"progression": {"beta": {"dist": "Normal", "mu": 0, "sigma": 1}}}},
     r"priors.progression.beta: .*there are no covariates"),
])
def test_a_setting_the_model_would_not_use_is_refused(change, match):
    with pytest.raises(bh.SpecError, match=match):
        bh.load_spec({**BASE, **change})


def test_a_setting_without_effect_is_refused_by_the_model_classes():
    with pytest.raises(bh.ModelError, match=r"WeibullPH: priors.site_sd: .*set "
                                            r"site_effect=\"random\", or remove the prior"):
        bh.WeibullPH(site_effect="none", priors={"site_sd": bh.Prior("HalfNormal", sigma=1)})
    with pytest.raises(bh.ModelError, match=r"PiecewiseExponential: tv_sd: a time-varying "
                                            r"HR's step SD, unused"):
        bh.PiecewiseExponential(cuts=[3, 6], tv_sd=0.5)
    with pytest.raises(bh.ModelError, match=r"IllnessDeath: priors.site_sd: the model has no "
                                            r"such term \(site_effect='none'\)"):
        bh.IllnessDeath("weibull_ph", site_effect="none",
                        priors={"site_sd": bh.Prior("HalfNormal", sigma=1)})
    # the settings of a fit saved before (bh.load_fit rebuilds the model from them): the
    # prior, which had no effect, is left out
    old = {**bh.IllnessDeath("weibull_ph", site_effect="none").settings(),
           "priors": {"site_sd": HALF}}
    assert "site_sd" not in bh.IllnessDeath.from_settings(old).priors
    with pytest.raises(bh.ModelError, match=r"give cuts or n_intervals, not both"):
        bh.IllnessDeath("piecewise_exponential", cuts=[3, 6], n_intervals=4)  # was ignored
    cut = bh.IllnessDeath("piecewise_exponential", cuts=[3, 6])
    assert bh.IllnessDeath.from_settings(cut.settings()).cuts == (3.0, 6.0)  # a saved fit's
    # what the model uses is accepted
    bh.IllnessDeath("weibull_ph", priors={"site_sd": bh.Prior("HalfNormal", sigma=1)})
    bh.PiecewiseExponential(cuts=[3, 6], time_varying_hr=True, tv_sd=0.5)
    bh.WeibullPH(covariates=["ecog"], priors={"beta": bh.Prior("Normal", mu=0, sigma=1)})


def test_overrides_drop_what_they_leave_unused_from_the_base_and_refuse_their_own():
    """A sensitivity variant "cuts at 3, 6 and 12 months" of the primary spec (which gives
    n_intervals) was refused ("give cuts or n_intervals, not both") with no way to remove
    n_intervals by an override; "sites: none" kept the base's site SD prior, unused."""
    spec = bh.load_spec(SHIPPED / "primary_os.toml")
    cuts = bh.apply_overrides(spec, {"options.cuts": [3, 6, 12]})
    assert dict(cuts.options) == {"baseline_prior": "rw1", "cuts": (3.0, 6.0, 12.0),
                                  "rw_sd": 0.3}
    none = bh.apply_overrides(spec, {"site.effect": "none"})
    assert "site_sd" not in dict(none.priors) and "log_hr" in dict(none.priors)
    independent = bh.apply_overrides(spec, {"options.baseline_prior": "independent"})
    assert "rw_sd" not in dict(independent.options)
    # the same settings given with the overrides: refused
    with pytest.raises(bh.SpecError, match=r"priors.site_sd: the model has no such term"):
        bh.apply_overrides(spec, {"site.effect": "none", "priors.site_sd": HALF})
    with pytest.raises(bh.SpecError, match=r"options.rw_sd: the rw1 baseline's step SD"):
        bh.apply_overrides(spec, {"options.baseline_prior": "independent",
                                  "options.rw_sd": 0.2})
    with pytest.raises(bh.SpecError, match=r"give cuts or n_intervals, not both"):
        bh.apply_overrides(spec, {"options.cuts": [3, 6], "options.n_intervals": 4})
    # a part of a prior given with the overrides is the prior given (refused, not dropped)
    with pytest.raises(bh.SpecError, match=r"priors.site_sd: the model has no such term"):
        bh.apply_overrides(spec, {"site.effect": "none", "priors.site_sd.sigma": 0.25})
    assert dict(bh.apply_overrides(spec, {"priors.site_sd.sigma": 0.25}).priors)[
        "site_sd"].to_dict() == {"dist": "HalfNormal", "sigma": 0.25}
    # a time-varying HR turned off drops the tv_sd the base gave it
    tv = bh.apply_overrides(spec, {"options.time_varying_hr": True, "options.tv_sd": 0.4})
    assert "tv_sd" not in dict(bh.apply_overrides(tv, {"options.time_varying_hr": False})
                               .options)


def test_a_grid_variant_with_its_own_cuts_loads(tmp_path):
    """Refused before: the base's n_intervals beside the variant's cuts."""
    grid = tmp_path / "grid.toml"
    grid.write_text(f'base = "{SHIPPED / "primary_os.toml"}"\n'
                    '[[variants]]\nname = "cuts at 3, 6, 12"\n'
                    'overrides = { "options.cuts" = [3, 6, 12] }\n'
                    '[[variants]]\nname = "SD prior"\n'
                    'overrides = { "priors.site_sd" = { dist = "HalfNormal", sigma = 0.25 } }\n')
    variants = dict(bh.load_grid(grid).variants)
    assert dict(variants["cuts at 3, 6, 12"].options)["cuts"] == (3.0, 6.0, 12.0)
    assert "n_intervals" not in dict(variants["cuts at 3, 6, 12"].options)
    # the grid's overrides remove the site effects: the variant's SD prior goes with them
    # (its row is then marked "same posterior", tests/spec/test_sensitivity.py) ...
    moved = dict(bh.load_grid(grid, overrides={"site.effect": "none"}).variants)
    assert moved["SD prior"].model_settings() == moved["primary: primary_os"].model_settings()
    # ... but a variant that contradicts itself is refused, overrides or not
    grid.write_text(f'base = "{SHIPPED / "primary_os.toml"}"\n[[variants]]\nname = "bad"\n'
                    'overrides = { "site.effect" = "none", "priors.site_sd" = '
                    '{ dist = "HalfNormal", sigma = 0.25 } }\n')
    for overrides in (None, {"site.effect": "none"}):
        with pytest.raises(bh.SpecError, match=r"variant 'bad'.*priors.site_sd: the model has "
                                               r"no such term"):
            bh.load_grid(grid, overrides=overrides)


def test_a_grid_variant_with_a_prior_of_the_wrong_support_is_refused_on_loading(tmp_path):
    """A grid whose last variant puts a HalfNormal prior on the log HR used to load, and
    the error came when that variant was fitted, after every other fit of the grid."""
    grid = tmp_path / "grid.toml"
    grid.write_text(f'base = "{SHIPPED / "primary_os.toml"}"\n'
                    '[[variants]]\nname = "vague"\n'
                    'overrides = { "priors.log_hr" = { dist = "Normal", mu = 0, sigma = 10 } }\n'
                    '[[variants]]\nname = "one-sided"\n'
                    'overrides = { "priors.log_hr" = { dist = "HalfNormal", sigma = 1 } }\n')
    with pytest.raises(bh.SpecError, match=r"variant 'one-sided'.*priors.log_hr: .*no mass "
                                           r"below 0.*Give a prior on the whole line"):
        bh.load_grid(grid)


@pytest.mark.parametrize("body, match", [
    # read as true before: the base was fitted as a variant
    ('include_base = "no"\n' + VARIANT, r"include_base = 'no' must be true or false"),
    # no variants: run_sensitivity failed inside pandas (KeyError 'variant') when the base
    # was left out, and fitted the base alone otherwise
    ("include_base = false\n", r"no variants\. Add them as\n\[\[variants\]\]"),
    ("", r"(?s)no variants.*to fit the base spec alone: bh.fit_spec"),
    ('[variants]\nname = "a"\n', r"variants must be an array of tables, each written as"),
    # failed inside dict() (ValueError)
    ('[[variants]]\nname = "a"\noverrides = ["site.effect"]\n',
     r"variant 'a': overrides = \['site.effect'\] must be a table of dotted keys"),
    ('[[variants]]\nname = 3\noverrides = { "site.effect" = "none" }\n',
     r"variants\[0\] needs 'name' \(text\) and 'overrides'"),
    ('name = 5\n' + VARIANT, r"name = 5 must be text"),
    (VARIANT + VARIANT, r"duplicate variant name 'a'"),
])
def test_a_grid_file_s_own_keys_are_checked(tmp_path, body, match):
    grid = tmp_path / "grid.toml"
    grid.write_text(f'base = "{SHIPPED / "primary_os.toml"}"\n' + body)
    with pytest.raises(bh.SpecError, match=match):
        bh.load_grid(grid)
    # overrides of the base given as text, as to the CLI (it failed inside dict())
    with pytest.raises(bh.SpecError, match=r"overrides='family=weibull_ph' must be a dict"):
        bh.load_grid(SHIPPED / "sensitivity_os.toml", overrides="family=weibull_ph")


def test_a_grid_from_a_dict_or_text_as_in_a_notebook(monkeypatch):
    """A grid written in a notebook (bh.load_grid took only a file): TOML text or a dict,
    its base a path from the current directory, a spec or a dict. The shipped grid so
    written gives the file's variants, spec for spec."""
    monkeypatch.chdir(SHIPPED.parent)
    shipped = bh.load_grid(SHIPPED / "sensitivity_os.toml")
    text = (SHIPPED / "sensitivity_os.toml").read_text().replace(
        'base = "primary_os.toml"', 'base = "models/primary_os.toml"')
    import tomllib

    d = tomllib.loads(text)
    for grid in (bh.load_grid(text), bh.load_grid(d),
                 bh.load_grid({**d, "base": shipped.base}),
                 bh.load_grid({**d, "base": shipped.base.to_dict()})):
        assert grid.name == "sensitivity_os" and grid.variants == shipped.variants
    # twenty prior SDs in a loop, as a statistician writes them
    sds = np.geomspace(0.1, 10, 20)
    loop = bh.load_grid({"base": "models/primary_os.toml", "include_base": False,
                         "variants": [{"name": f"sd {v:.3g}", "overrides":
                                       {"priors.log_hr.sigma": float(v)}} for v in sds]})
    assert loop.name == "grid" and len(loop) == 20
    assert [dict(s.priors)["log_hr"].params["sigma"] for _, s in loop.variants] == \
        pytest.approx(sds)
    with pytest.raises(bh.SpecError, match=r"grid: base: .*primary_os.toml: no such spec "
                       r"file; did you mean models/primary_os.toml\?"):
        bh.load_grid({**d, "base": "primary_os.toml"})
    with pytest.raises(bh.SpecError, match=r"grid: base = 5: give the path of the spec file"):
        bh.load_grid({**d, "base": 5})
    with pytest.raises(bh.SpecError, match=r"grid text: name = 5 must be text"):
        bh.load_grid(text.replace('name = "sensitivity_os"', "name = 5"))


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(bh.SpecError, match="not valid TOML"):
        bh.load_spec(bad)
    with pytest.raises(bh.SpecError, match="no such spec file"):
        bh.load_spec(tmp_path / "missing.toml")
    # not a spec at all (a forgotten variable): the package's error, not pathlib's
    with pytest.raises(bh.SpecError, match="expected an analysis spec .* got NoneType"):
        bh.load_spec(None)
    with pytest.raises(bh.SpecError, match="path of a monitoring plan file .* got int"):
        bh.load_plan(3)



def test_a_spec_named_without_its_folder_or_suffix_is_found_for_the_user(monkeypatch):
    """``bh.load_spec("primary_os")`` from the repository root said only "no such spec
    file"; it now names models/primary_os.toml, and a relative path that is nowhere says
    which directory it was read from."""
    monkeypatch.chdir(MODELS.parent)
    with pytest.raises(bh.SpecError, match=r"primary_os: no such spec file; did you mean "
                       r"models/primary_os\.toml\?"):
        bh.load_spec("primary_os")
    with pytest.raises(bh.SpecError, match=r"no such spec file in .* \(a relative path is "
                       r"read from the current directory\)"):
        bh.load_spec("nowhere.toml")


def test_overrides():
    spec = bh.load_spec(MODELS / "primary_os.toml")
    w = bh.apply_overrides(spec, {"family": "weibull_ph"}, name="weibull")
    assert w.family == "weibull_ph" and dict(w.options) == {}
    assert "log_baseline_hazard" not in w.prior_dict and w.name == "weibull"
    f = bh.apply_overrides(spec, {"site.effect": "fixed"})
    assert dict(f.site)["effect"] == "fixed" and f.hash != spec.hash
    with pytest.raises(bh.SpecError, match="site.effect"):
        bh.apply_overrides(spec, {"site.effect": "sideways"})
    # a list of pairs (as dict.items() gives) failed with AttributeError
    with pytest.raises(bh.SpecError, match=r"overrides=\[\('family', 'weibull_ph'\)\] must be "
                       "a dict of dotted keys"):
        bh.apply_overrides(spec, [("family", "weibull_ph")])
    # the base spec's options and priors stay behind with its family, but an option or a
    # prior given with the new family is read, so one it does not take is refused (the
    # Weibull "cuts" below were dropped without a word); one it takes is kept
    with pytest.raises(bh.SpecError, match=r"options: unknown key\(s\) cuts"):
        bh.apply_overrides(spec, {"family": "weibull_ph", "options.cuts": [3.0]})
    with pytest.raises(bh.SpecError, match="unknown prior 'log_baseline_hazard'"):
        bh.apply_overrides(spec, {"family": "weibull_ph", "priors": {
            "log_baseline_hazard": {"dist": "Normal", "mu": 0, "sigma": 1}}})
    ms = bh.apply_overrides(spec, {"family": "mspline_ph", "options": {"n_knots": 5}})
    assert dict(ms.options) == {"n_knots": 5}


def test_a_time_unit_override_keeps_the_spec_s_times():
    """A spec's time_unit is the unit of its times. Overriding it alone (a grid variant or
    ``--override time_unit=days``, to check the answer does not depend on the unit) kept
    the numbers: RMST at tau = 24 days and landmarks at 12 and 24 days beside the others'
    months. The times now move with the unit; a time given in the same overrides is read in
    the new unit."""
    from bayes_hcc.quantities.summary import spec_tau

    spec = bh.load_spec(MODELS / "primary_os.toml")
    days = bh.apply_overrides(spec, {"time_unit": "days"})
    assert days.time_unit == "days"
    assert dict(days.report)["times"] == pytest.approx((365.25, 730.5))
    assert spec_tau(days, "months") == pytest.approx(spec_tau(spec, "months")) == 24.0
    own = bh.apply_overrides(spec, {"time_unit": "days", "report.tau": 365.0})
    assert dict(own.report)["tau"] == 365.0  # given in days, kept
    assert dict(own.report)["times"] == pytest.approx((365.25, 730.5))
    # family options that are times: knots and boundary (M-spline), cut points, the Weibull
    # prior's reference time; counts and prior scales are not times
    ms = bh.apply_overrides(spec, {"family": "mspline_ph", "options.knots": [3.0, 9.0],
                                   "options.boundary": 30.0})
    weeks = bh.apply_overrides(ms, {"time_unit": "weeks"})
    assert dict(weeks.options)["knots"] == pytest.approx((3.0 * 30.4375 / 7,
                                                          9.0 * 30.4375 / 7))
    assert dict(weeks.options)["boundary"] == pytest.approx(30.0 * 30.4375 / 7)
    cuts = {"cuts": [6.0, 12.0], "rw_sd": 0.3}
    pwe = bh.apply_overrides(spec, {"options": cuts})
    assert dict(bh.apply_overrides(pwe, {"time_unit": "years"}).options)["cuts"] == \
        pytest.approx((0.5, 1.0))
    assert dict(bh.apply_overrides(pwe, {"time_unit": "years"}).options)["rw_sd"] == 0.3
    # cut points given with the unit are in that unit
    assert dict(bh.apply_overrides(spec, {"options": {"cuts": [0.5, 1.0]},
                                          "time_unit": "years"}).options)["cuts"] == (0.5, 1.0)
    assert bh.apply_overrides(days, {"time_unit": "months"}).hash == spec.hash


def test_prior_distribution_names_read_as_people_write_them():
    """``dist = "normal"`` in a hand-written TOML was refused with a list containing
    "Normal". Case, ``_`` and ``-`` do not matter; the spec is stored (and hashed) with the
    canonical name, so both spellings are the same analysis. numpy numbers are numbers."""
    spec = bh.load_spec(MODELS / "primary_os.toml")
    canonical = bh.apply_overrides(spec, {"priors.log_hr": {"dist": "Normal", "mu": 0,
                                                            "sigma": 1}})
    for name in ("normal", "NORMAL"):
        s = bh.apply_overrides(spec, {"priors.log_hr": {"dist": name, "mu": 0, "sigma": 1}})
        assert s.prior_dict["log_hr"].dist == "Normal" and s.hash == canonical.hash
    assert bh.Prior("half_normal", sigma=1).dist == "HalfNormal"
    assert bh.Prior("student-t", nu=3, mu=0, sigma=np.int64(2)).params["sigma"] == 2.0
    with pytest.raises(bh.SpecError, match="unknown prior distribution 'Gaussian'"):
        bh.Prior("Gaussian", mu=0, sigma=1)


def test_a_prior_written_as_text_is_refused_with_the_form_it_needs():
    """`priors.log_hr = "Normal(0, 1)"` (as a prior prints) raised a bare ValueError from
    dict(); `WeibullPH(priors="...")` an AttributeError. Each names the key and the form."""
    spec = bh.load_spec(MODELS / "primary_os.toml")
    form = r'a prior is a table like \{dist = "Normal", mu = 0, sigma = 1\}'
    with pytest.raises(bh.SpecError, match=r"priors.log_hr: " + form + r".*got 'Normal\(0, 1\)'"):
        bh.apply_overrides(spec, {"priors.log_hr": "Normal(0, 1)"})
    with pytest.raises(bh.SpecError, match=r"WeibullPH: priors\['log_hr'\]: " + form):
        bh.WeibullPH(priors={"log_hr": "Normal(0, 1)"})
    with pytest.raises(bh.ModelError, match=r"WeibullPH: priors= is a dict of parameter name"):
        bh.WeibullPH(priors="Normal(0, 1)")


def test_fit_spec_records_spec_and_matches_direct_fit():
    trial = bh.datasets.load_example_trial()
    spec = bh.load_spec(MODELS / "primary_os.toml")
    from bayes_hcc.models.from_spec import FAST

    fit = bh.fit_spec(spec, trial, fast=True)  # passes the exploratory thresholds
    # the analysis as pre-specified, and the spec as run (its sampler table: fast mode)
    assert fit.datatree.attrs["analysis_spec_hash"] == spec.hash
    assert fit.analysis_mode == "exploratory" and bh.check(fit).mode == "exploratory"
    stored = bh.load_spec(fit.datatree.attrs["spec_toml"])
    assert stored == fit.spec and stored.hash == fit.datatree.attrs["spec_hash"]
    assert {**stored.to_dict(), "sampler": None} == {**spec.to_dict(), "sampler": None}
    assert {k: dict(stored.sampler)[k] for k in FAST} == FAST
    assert bh.build(fit.spec) == bh.build(spec)
    direct = bh.PiecewiseExponential(n_intervals=6).fit(trial, "os", random_seed=20200228,
                                                         check=False, **FAST)
    # Same model, data and seed: identical draws.
    np.testing.assert_array_equal(fit.posterior["log_hr"], direct.posterior["log_hr"])


def test_per_protocol_population():
    trial = bh.datasets.load_example_trial()
    frame = trial.to_frame()
    frame["per_protocol"] = (np.arange(len(frame)) % 10 != 0).astype(int)
    pp_trial = bh.read_trial(frame.drop(columns=[c for c in frame if c.endswith(("_time",
                                                                                 "_event"))]))
    spec = bh.apply_overrides(bh.load_spec(MODELS / "primary_os.toml"),
                              {"population": "per_protocol"})
    from bayes_hcc.models.from_spec import population

    assert population(spec, pp_trial).n_patients == int(frame["per_protocol"].sum())
    with pytest.raises(bh.SpecError, match="needs a per_protocol column"):
        population(spec, trial)


@pytest.mark.parametrize("reader, name, kind", [
    (bh.load_spec, "monitoring.toml", r"a monitoring plan: read it with bh.load_plan"),
    (bh.load_spec, "sensitivity_os.toml", r"a sensitivity grid: read it with bh.load_grid"),
    (bh.load_plan, "primary_os.toml", r"an analysis spec: read it with bh.load_spec"),
    (bh.load_grid, "primary_os.toml", r"an analysis spec: read it with bh.load_spec"),
    (bh.read_history, "primary_os.toml", r"an analysis spec: read it with bh.load_spec"),
])
def test_a_file_given_to_the_wrong_reader_is_named(reader, name, kind):
    """A monitoring plan given to bh.load_spec listed its four keys as unknown; the error
    now says what the file is and which reader reads it."""
    with pytest.raises(bh.SpecError, match=r"unknown key.*\(this file is " + kind + r"\)"):
        reader(MODELS / name)


def test_a_spec_path_from_home_in_a_plan_or_a_grid(tmp_path, monkeypatch):
    """A plan's analysis and a grid's base written as "~/..." (as the plan or grid file
    itself may be) were joined to the folder unexpanded ("models/~/primary_os.toml: no
    such spec file"). Both are read through one reference reader."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "primary_os.toml").write_text((SHIPPED / "primary_os.toml").read_text())
    spec = bh.load_spec(SHIPPED / "primary_os.toml")
    grid = bh.load_grid({"base": "~/primary_os.toml",
                         "variants": [{"name": "none", "overrides": {"site.effect": "none"}}]})
    assert grid.base == spec
    import tomllib

    plan = tomllib.loads((SHIPPED / "monitoring.toml").read_text())
    assert bh.load_plan({**plan, "analysis": "~/primary_os.toml"}).spec == spec


def test_a_fit_saved_with_a_setting_now_refused_still_loads(tmp_path):
    """A saved fit records its spec; one written before unused settings were refused (a
    site SD prior without site effects) must still load, its spec as recorded (hash
    checked), and its draws unchanged."""
    from bayes_hcc.families.weibull import WeibullFamily
    from bayes_hcc.models.fit import Fit
    from bayes_hcc.spec.model_spec import dump_spec, spec_from_dict
    from tests.helpers import fabricated_fit

    fit = fabricated_fit(WeibullFamily(), {"log_hr": np.full((2, 3), -0.2),
                                           "log_lambda": np.full((2, 3), -2.5),
                                           "log_shape": np.zeros((2, 3))},
                         arm=[0, 1], site=[0, 0])
    old = {**fit.spec.to_dict(), "priors": {"site_sd": HALF}}  # as it was written then
    with pytest.raises(bh.SpecError, match="priors.site_sd"):
        bh.load_spec(old)
    spec = spec_from_dict(old, keep_unused=True)
    dt = fit.datatree.copy()
    dt.attrs = {**dt.attrs, "spec_toml": dump_spec(spec), "spec_hash": spec.hash}
    assert dict(Fit(dt).spec.priors)["site_sd"].to_dict() == HALF
    Fit(dt).save(tmp_path / "old.nc")
    back = bh.load_fit(tmp_path / "old.nc")
    assert back.spec.hash == spec.hash
    np.testing.assert_array_equal(back.posterior["log_hr"], fit.posterior["log_hr"])


@pytest.mark.parametrize("spec, keywords, match", [
    ("primary_os.toml", {"endpoint": "pfs"},
     r"fit_spec: endpoint='pfs': a spec fits its own endpoint \(os\); for another, fit a "
     r"spec naming it: bh.apply_overrides"),
    ("primary_os.toml", {"drawz": 100},
     r"fit_spec: unknown keyword\(s\) 'drawz' \(did you mean 'draws'\?\); it takes fast, "
     r"check and draws, tune, chains, cores, random_seed, sampler, target_accept"),
    ("primary_os.toml", {"seed": 3}, r"'seed' \(the spec's seed is the keyword random_seed\)"),
    # dropped without a word before (the spec itself refuses another sampler)
    ("illness_death.toml", {"sampler": "pymc"},
     r"fit_spec: sampler='pymc': an illness-death model samples with nutpie"),
    ("illness_death.toml", {"log_likelihood": False}, r"unknown keyword\(s\) 'log_likelihood'"),
])
def test_fit_spec_names_a_keyword_it_does_not_take(example_trial, spec, keywords, match):
    """Each was a TypeError naming neither fit_spec nor what it takes (before any fit)."""
    with pytest.raises(bh.BayesHCCError, match=match):
        bh.fit_spec(SHIPPED / spec, example_trial, fast=True, **keywords)
