"""Warnings point at the user's line, not at the package's internals (a notebook showed
``bayes_hcc/models/base.py:335`` and the package's source line under every convergence
warning)."""

import warnings

import bayes_hcc as bh


def _caught(action):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
    assert caught, "the action was expected to warn"
    return caught


def test_data_and_convergence_warnings_name_the_calling_line(example_trial):
    frame = example_trial.to_frame()[["patient_id", "site", "arm", "os_time", "os_event"]]
    frame.loc[0, "site"] = "tiny"
    for w in _caught(lambda: bh.read_trial(frame)):  # found four calls deep in data/
        assert issubclass(w.category, bh.DataWarning) and w.filename == __file__
    fits = []
    caught = _caught(lambda: fits.append(bh.WeibullPH(site_effect="none").fit(
        example_trial, "os", chains=1, draws=100, tune=100, random_seed=1)))
    caught += _caught(lambda: bh.check(fits[0]))
    convergence = [w for w in caught if issubclass(w.category, bh.ConvergenceWarning)]
    assert len(convergence) == 2 and all(w.filename == __file__ for w in convergence)


def test_the_package_warns_through_one_function():
    """Every warning of the package goes through ``errors.warn`` (which skips the package's
    frames): a direct ``warnings.warn`` would point inside the package again."""
    from pathlib import Path

    root = Path(bh.__file__).parent
    direct = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
              for i, line in enumerate(p.read_text().splitlines(), 1)
              if "warnings.warn(" in line and p.name != "errors.py"]
    assert direct == [], direct
