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

.PHONY: demo test test-slow validate bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PY312)" || { echo "error: Python 3.12 not found (tried python3.12 and ~/.pyenv/versions/3.12*)"; exit 1; }
	$(PY312) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## demo: the main job on the bundled example trial: the data, then the primary analysis
## (OS, piecewise exponential with random site effects)
demo: $(STAMP)
	$(VENV)/bin/bayes-hcc describe example
	$(VENV)/bin/bayes-hcc fit example --model pwe --endpoint os --out out/primary_os --overwrite

## test: the default test suite (fast; slow statistical checks excluded)
test: $(STAMP)
	$(PY) -m pytest

## test-slow: long statistical checks only (SBC, coverage, large simulations)
test-slow: $(STAMP)
	$(PY) -m pytest --run-slow -m slow

## validate: statistical validation (SBC, coverage study, agreement with lifelines and
## statsmodels) on all cores; writes docs/validation/validation.md with figures (~10 min)
validate: $(STAMP)
	$(VENV)/bin/bayes-hcc validate --out docs/validation --overwrite

## bench: benchmarks (ours vs bambi vs long-format piecewise vs the compute floor) at 130,
## 1,300 and 13,000 patients; prints the table and writes benchmarks/results/ (~20 min)
bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) benchmarks/bench.py

clean:
	rm -rf $(VENV) .pytensor_cache .pytest_cache
