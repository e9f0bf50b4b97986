# `make repro` and `make test` work on a fresh clone: they create .venv when
# missing, install the pinned project, then run the pipeline or the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
# Nothing leaves the machine unless the user opts in.
export WANDB_MODE ?= offline

# The columns `make repro` shows: test metrics and the params people change.
EXP_COLUMNS := Experiment|test_(clean|noisy)\.(accuracy|auroc|sensitivity|specificity)|augment\.name|model\._target_|model\.dropout|train\.optimizer\.lr|seed

.PHONY: install params repro test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Compose params.yaml from conf/ exactly as `dvc exp run` does.
params: install
	$(BIN)/python -m spira.compose_params

repro: params
	$(BIN)/dvc repro
	$(BIN)/dvc exp show --no-pager --md --drop '.*' --keep '$(EXP_COLUMNS)'

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) logs
