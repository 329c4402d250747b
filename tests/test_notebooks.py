"""The notebooks are stored without outputs, start with a parameters cell, and are all on the
documentation site. (`make notebooks` executes them; CI runs it after the tests.)"""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_primary_analysis", "02_interim_monitoring", "03_sensitivity_analysis",
            "04_design_operating_characteristics", "05_real_trial_data"]


def test_all_notebooks_present_and_on_the_site():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED
    index = (ROOT / "docs" / "index.md").read_text()
    for name in EXPECTED:
        assert f"notebooks/{name}" in index


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stripped_and_parametrized(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for c in code:
        assert c["outputs"] == [] and c["execution_count"] is None, \
            f"{path.name}: outputs must be stripped before committing"
    first = code[0]
    assert "parameters" in first["metadata"].get("tags", [])
    assert re.search(r"^FAST = False", "".join(first["source"]), re.M)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_bh_name_a_notebook_uses_exists(path):
    """CI executes the notebooks in FAST mode only, so a name used only on the full-mode
    branch is never run there: notebook 04's `bh.DEFAULT_SCENARIOS` (the scenarios of a
    real design study) did not exist, and the notebook failed at its third cell for
    everyone who ran it as shipped (FAST = False). Every `bh.<name>` in every code cell
    must be an attribute of the package."""
    import bayes_hcc as bh

    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                     if c["cell_type"] == "code")
    used = set(re.findall(r"\bbh\.([A-Za-z_]\w*)", code))
    assert used, f"{path.name}: no bh.<name> found (the pattern is wrong)"
    assert sorted(n for n in used if not hasattr(bh, n)) == []
