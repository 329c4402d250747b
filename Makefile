# Set-up and everyday commands. Every target creates the virtual environment when it is missing.
SHELL := /bin/bash
# Python 3.12: plain `python3` is 3.11 on these machines and the pyenv shim for
# `python3.12` may not resolve, so try the usual places in order.
PY312 := $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
            $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Per-project PyTensor/numba compile cache, so a second process does not recompile.
export PYTENSOR_FLAGS ?= base_compiledir=$(CURDIR)/.pytensor_cache
export MPLBACKEND ?= Agg

DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: demo test test-slow validate bench notebooks docs venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PY312)" || { echo "error: Python 3.12 not found (tried python3.12 and ~/.pyenv/versions/3.12*)"; exit 1; }
	$(PY312) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,cluster]"
	touch $(STAMP)

## demo: the main job on the bundled example trial: the data, then the primary analysis
## (OS, piecewise exponential with random site effects)
demo: $(STAMP)
	$(VENV)/bin/bayes-hcc describe example
	$(VENV)/bin/bayes-hcc fit example --model pwe --endpoint os --out out/primary_os --overwrite

## test: the default test suite (fast; slow statistical checks excluded)
test: $(STAMP)
	$(PY) -m pytest -n auto --durations=25

## test-slow: long statistical checks only (SBC, coverage, large simulations)
test-slow: $(STAMP)
	$(PY) -m pytest --run-slow -m slow

## validate: statistical validation (SBC, coverage study, agreement with lifelines and
## statsmodels) on all cores, SBC for every registered family; writes
## docs/validation/validation.md with figures (~6 min on 2 cores)
validate: $(STAMP)
	$(VENV)/bin/bayes-hcc validate --out docs/validation --overwrite

## bench: benchmarks (ours vs bambi vs long-format piecewise vs the compute floor) at 130,
## 1,300 and 13,000 patients, then design simulations and PPoS in fast vs exact mode
## (benchmarks/screening.py: exact mode on 200 trials per scenario, fast mode on 1,000 with
## the same seeds, 200 completions at three cuts), then cheaper MCMC refits measured
## (benchmarks/refits.py: warm starts, draws sized to the decision); prints the tables and
## writes benchmarks/results/ (~60 min).
## Runs in its own environment (.venv-bench): the package as `pip install bayes-hcc` installs
## it (no dask, see the cluster extra) plus bambi.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	@test -n "$(PY312)" || { echo "error: Python 3.12 not found"; exit 1; }
	$(PY312) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[bench]"
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/bench.py
	$(BENCH_VENV)/bin/python benchmarks/screening.py --n-trials 200 --fast-trials 1000 \
	    --ppos-sims 200 \
	    --work benchmarks/results/screening_work/bench_$$(date +%Y%m%dT%H%M%S)
	$(BENCH_VENV)/bin/python benchmarks/refits.py --n-trials 40

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

## notebooks: execute every notebook in FAST mode (papermill injects FAST = True) into
## docs/notebooks/, where the documentation site renders them (~5 min)
notebooks: $(DOCS_STAMP)
	mkdir -p docs/notebooks
	for nb in notebooks/*.ipynb; do \
	  echo "executing $$nb"; \
	  $(VENV)/bin/papermill "$$nb" "docs/notebooks/$$(basename $$nb)" -p FAST True \
	    --cwd notebooks -k python3 --no-progress-bar || exit 1; \
	done

## docs: the documentation site (Sphinx + myst-nb, warnings are errors) with the executed
## notebooks, into docs/_build/html
docs: notebooks
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html
	@echo "site: docs/_build/html/index.html"

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytensor_cache .pytest_cache docs/_build docs/notebooks
