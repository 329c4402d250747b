"""What the data warned of when a fit was made stays with the fit: its report and table
footnotes say it, after saving and loading too."""

import html
import warnings

import pytest

import bayes_hcc as bh
from bayes_hcc.validation.coverage import DEFAULT_SCENARIO


@pytest.fixture(scope="module")
def tiny_sites():
    """A simulated trial with sites of 3 and 2 patients; with this seed the 3-patient site
    has no deaths (checked below from the data)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bh.DataWarning)
        return bh.simulate_trial(**{**DEFAULT_SCENARIO, "site_sizes": [40, 30, 30, 25, 3, 2]},
                                 random_seed=3)


def test_a_fit_keeps_what_its_data_warned_of(tiny_sites, tmp_path):
    ep = tiny_sites.endpoint("os")
    quiet = [s for i, s in enumerate(ep.sites) if ep.event[ep.site == i].sum() == 0]
    assert quiet == ["site05"]
    # what the data say of themselves, as when they were read
    with warnings.catch_warnings(record=True) as read:
        warnings.simplefilter("always")
        tiny_sites.data_warnings(["os"])
    own = [str(w.message).rstrip(".") for w in read]
    assert len(own) == 1 and "'site06' (2)" in own[0]
    # the model's warning is still shown, from the user's line
    with pytest.warns(bh.DataWarning, match=r"site\(s\) 'site05' have no events") as shown:
        fit = bh.WeibullPH(site_effect="fixed").fit(tiny_sites, "os", draws=100, tune=100,
                                                    chains=1, random_seed=1, check=False)
    assert all(w.filename == __file__ for w in shown)
    model_note = str(shown[0].message).rstrip(".")
    assert fit.data_notes == own + [model_note]
    fit.save(tmp_path / "fit.nc")
    loaded = bh.load_fit(tmp_path / "fit.nc")
    assert loaded.data_notes == fit.data_notes
    assert "The data warned: " + "; ".join(fit.data_notes) + "." in bh.fit_footnotes(loaded)
    # the report says them too, and builds for a fit of one chain (the rank plot, which
    # compares chains, says why it is empty: it raised from inside arviz-plots)
    text = bh.report(loaded, tmp_path / "report.html").read_text()
    assert "The data warned:" in text and "site05" in text and "site06" in text
    fig = bh.plot_rank(loaded)
    assert "compares chains" in fig.axes[0].texts[0].get_text()
    # and a notebook shows them, with the failed checks of this one short chain
    shown = loaded._repr_html_()
    problems = loaded.convergence_problems()
    assert problems and "Diagnostics FAILED" in shown and "OK" not in shown
    assert all(html.escape(n) in shown for n in fit.data_notes + problems)


def test_a_fit_of_data_that_warn_of_nothing_has_no_notes(example_trial):
    fit = bh.WeibullPH().fit(example_trial, "os", draws=100, tune=100, chains=2,
                             random_seed=1, check=False)
    assert fit.data_notes == []
    assert not any(n.startswith("The data warned") for n in bh.fit_footnotes(fit))


def test_an_illness_death_fit_keeps_what_its_data_warned_of(example_trial):
    """The example trial with no progression seen in the TACE-sorafenib arm: the model
    warns that two transitions have no events there (still shown), and the fit keeps it
    with the data's own warning (TTP: an arm without events) for its footnotes."""
    frame = example_trial.to_frame()
    raw = frame[["patient_id", "site", "arm", "randomization_date", "progression_date",
                 "death_date", "last_followup_date", "last_progression_free_date"]].copy()
    t = raw["arm"] == "tace_sorafenib"
    raw.loc[t, "last_progression_free_date"] = raw.loc[
        t, ["last_progression_free_date", "progression_date"]].max(axis=1)
    raw.loc[t, "progression_date"] = None
    with pytest.warns(bh.DataWarning, match="ttp: arm 'tace_sorafenib' has no events"):
        trial = bh.read_trial(raw)
    with pytest.warns(bh.DataWarning, match="no events seen for: progression in arm "
                      "'tace_sorafenib'; death after progression") as shown:
        fit = bh.IllnessDeath("weibull_ph").fit(trial, draws=100, tune=100, chains=2,
                                                random_seed=1, check=False)
    assert all(w.filename == __file__ for w in shown)
    assert len(fit.data_notes) == 2
    assert fit.data_notes[0].startswith("ttp: arm 'tace_sorafenib' has no events")
    assert fit.data_notes[1] == str(shown[0].message).rstrip(".")
    assert "The data warned: " + "; ".join(fit.data_notes) + "." in bh.fit_footnotes(fit)
    # a notebook shows each transition's HR (as fit.summary), the verdict and the notes
    shown = fit._repr_html_()
    hr = fit.hazard_ratio()
    table = fit.summary()
    for t in hr["transition"].values:
        assert f"<td>{float(hr.sel(transition=t).median()):.3g}</td>" in shown
        assert f"<td>{table.loc[t, 'P(HR < 1) MCSE']:.3g}</td>" in shown  # with its MCSE
    assert "P(HR &lt; 1) MCSE" in shown
    verdict = "Diagnostics FAILED" if fit.convergence_problems() else "Diagnostics OK"
    assert verdict in shown and all(html.escape(n) in shown for n in fit.data_notes)


def test_the_data_notes_of_endpoints_not_in_the_data_are_refused(example_trial):
    assert example_trial.data_notes(["os"]) == []
    with pytest.raises(bh.TrialDataError, match=r"endpoint\(s\) 'xyz' not in these data; "
                       "available: os, pfs, ttp"):
        example_trial.data_notes(["os", "xyz"])  # a KeyError for a column before
    with pytest.raises(bh.TrialDataError, match=r"a list of endpoint names, e.g. \['os'\]"):
        example_trial.data_notes("os")
