# Two commands matter: `make demo` (sets up .venv if missing, runs the embedded default) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_DIR ?= runs/demo
PRESET ?= demo
WORKERS ?= 2
CONFIG ?=
INPUT ?=
N ?= 50
PIPELINE := $(PY) -m pipeline run --preset $(PRESET) --run-dir $(RUN_DIR) --workers $(WORKERS) \
	$(if $(CONFIG),--config $(CONFIG)) $(foreach i,$(INPUT),--input $(i))

.PHONY: setup demo test test-fast ingest dedupe cbrn tokenize train audit pipeline bench chaos clean \
	cbrn-model slurm-pipeline slurm-status plot

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PIPELINE)

pipeline: setup
	$(PIPELINE)

ingest dedupe cbrn tokenize audit: setup
	$(PIPELINE) --stages $@

train: setup
	$(PY) -m pretrain.launch --preset $(PRESET) --run-dir $(RUN_DIR) $(if $(CONFIG),--config $(CONFIG))

plot: setup
	$(PY) -m pretrain.plots $(RUN_DIR)

cbrn-model: setup
	$(PY) -m filters.cbrn build-default

slurm-pipeline: setup
	$(PY) -m pipeline submit --preset $(PRESET) --run-dir $(RUN_DIR) $(if $(CONFIG),--config $(CONFIG)) \
		$(foreach i,$(INPUT),--input $(i))

slurm-status: setup
	$(PY) -m pipeline status $(RUN_DIR)

test: setup
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

test-fast: setup
	$(PY) -m pytest -q -x -m "not slow" tests

bench: setup
	$(PY) bench/run_all.py

chaos: setup
	CHAOS_TRIALS=$(N) $(PY) -m pytest -q -n 2 --dist loadgroup -s tests/chaos

clean:
	rm -rf runs
