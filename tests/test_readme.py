"""The README's Python examples, run as a user pastes them into a notebook.

Every ```python block of README.md runs in order in one namespace, a statement at a time
as IPython does (an expression's value is shown, with ``repr``, and kept in ``_``), in a
directory holding the files the README reads: ``my_trial.csv`` (the example trial in the
dates layout), ``patients.csv`` with ``scans.csv``, ``adtte.xpt`` and the repository's
``models/``. A name the README uses before defining it, a renamed argument or a path the
package does not create fails here, which is how README examples went stale before (stop 48:
``tau=24`` beyond the example trial's follow-up).

The default run keeps to about a minute: its copy of ``models/monitoring.toml`` completes
20 trials per PPoS instead of 200, its copy of ``models/sensitivity_os.toml`` keeps the
base and the three log-HR prior variants (the whole grid runs in
``tests/spec/test_sensitivity.py``), the illness-death block (three joint fits, a
PPoS refitting 200 completions and the joint report: about three minutes) is left to the
slow test, and the design block, behind ``if __name__ == "__main__":``, does not run under
the name ``readme``. The slow test runs every block as written, the design simulation (500
trials) as a script. The illness-death block's API names are checked in the default run by
``tests/test_docs_examples.py``.
"""

import ast
import re
import shutil
import time
from pathlib import Path

import pytest

import bayes_hcc as bh
from bayes_hcc.data.assessments import LPF_COLUMN

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def readme_blocks():
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def write_user_files(trial, where: Path, *, quick: bool = False):
    """The files the README reads, as a data manager would export them (``quick``: the
    monitoring plan completes 20 trials per PPoS)."""
    f = trial.to_frame()
    raw = f.drop(columns=[c for c in f.columns if c.endswith(("_time", "_event", "_lower"))])
    raw.drop(columns=[LPF_COLUMN], errors="ignore").assign(progression_date=None) \
        .to_csv(where / "patients.csv", index=False)
    trial.assessments.to_csv(where / "scans.csv", index=False)
    raw.drop(columns=[LPF_COLUMN], errors="ignore").to_csv(where / "my_trial.csv", index=False)
    bh.write_adtte(trial, where / "adtte.xpt")
    shutil.copytree(ROOT / "models", where / "models")
    if quick:
        plan = where / "models" / "monitoring.toml"
        text = plan.read_text()
        assert text.count("n_sims = 200") == 1, "the plan's PPoS size moved: update the test"
        plan.write_text(text.replace("n_sims = 200", "n_sims = 20"))
        # the base and its three log-HR prior variants (one compile, the primary's): the
        # whole shipped grid runs in tests/spec/test_sensitivity.py and in the slow test
        grid = where / "models" / "sensitivity_os.toml"
        blocks = grid.read_text().split("[[variants]]")
        assert len(blocks) > 4 and "log-HR prior: enthusiastic" in blocks[3], \
            "the grid's first variants moved: update the test"
        grid.write_text("[[variants]]".join(blocks[:4]))


def run_like_ipython(source: str, namespace: dict, label: str, timings: list | None = None):
    """Run ``source`` a top-level statement at a time; an expression's value goes to ``_``."""
    for stmt in ast.parse(source).body:
        where = f"{label}, line {stmt.lineno}: {ast.get_source_segment(source, stmt)!r}"
        t0 = time.perf_counter()
        try:
            if isinstance(stmt, ast.Expr):
                value = eval(compile(ast.Expression(stmt.value), label, "eval"), namespace)
                if value is not None:
                    repr(value)
                    namespace["_"] = value
            else:
                exec(compile(ast.Module([stmt], type_ignores=[]), label, "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"README {where} raised {type(exc).__name__}: {exc}") from exc
        if timings is not None:
            timings.append((time.perf_counter() - t0, where))


def run_readme(where: Path, *, name: str, skip=lambda block: False):
    blocks = readme_blocks()
    assert len(blocks) >= 6, "the README's Python blocks were not found"
    namespace, timings = {"__name__": name}, []
    for i, block in enumerate(blocks, 1):
        if not skip(block):
            run_like_ipython(block, namespace, f"python block {i}", timings)
    for seconds, label in sorted(timings, reverse=True)[:8]:
        print(f"{seconds:6.1f} s  {label[:110]}")
    # what the examples promise to write, written where they say
    for path in ["example_adtte.xpt", "fits/os_pwe.nc", "tables", "monitoring/audit.jsonl",
                 "report.html"]:
        assert (where / path).exists(), path
    return namespace


def test_every_readme_example_runs_in_order(tmp_path, monkeypatch, example_trial):
    write_user_files(example_trial, tmp_path, quick=True)
    monkeypatch.chdir(tmp_path)
    ns = run_readme(tmp_path, name="readme", skip=lambda block: "bh.IllnessDeath(" in block)
    assert "res" not in ns  # the design block's guard held
    assert ns["look"].ppos().n_sims == 20  # the quick plan was the one read
    assert len(ns["table"]) == 4  # and the quick grid


@pytest.mark.slow
def test_every_readme_example_runs_as_written(tmp_path, monkeypatch, example_trial):
    write_user_files(example_trial, tmp_path)
    monkeypatch.chdir(tmp_path)
    ns = run_readme(tmp_path, name="__main__")  # the design block runs, as in a script
    assert (tmp_path / "design.jsonl").is_file() and (tmp_path / "out/joint.html").is_file()
    assert ns["res"].summary() is not None
