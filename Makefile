# `make repro` and `make test` work on a fresh clone: they create .venv when
# missing, install the pinned project, then run the pipeline or the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
# Nothing leaves the machine unless the user opts in.
export WANDB_MODE ?= offline

.PHONY: install params repro exp-show ct test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Compose params.yaml from conf/ exactly as `dvc exp run` does.
params: install
	$(BIN)/spira params

# The params people change and the clean/noisy test metrics, one row per experiment.
EXP_SHOW_COLUMNS := Experiment|model\.dropout|augment\.name|train\.batch_size|train\.optimizer\.lr|trainer\.max_epochs|test_(clean|noisy)\.(auroc|accuracy|balanced_accuracy)

repro: params
	$(BIN)/dvc repro
	$(MAKE) --no-print-directory exp-show

exp-show: install
	$(BIN)/dvc exp show --no-pager --md --drop '.*' --keep '$(EXP_SHOW_COLUMNS)'

# The continuous-training loop (README "Continuous training"): compose params,
# re-run what changed (the gate judges the new model against prod), commit the
# run's record, promote when the gate passed, push data and models to the DVC remote.
CT_RECORD := params.yaml dvc.lock metrics reports eval/plots
ct: params
	$(BIN)/dvc repro
	git add $(CT_RECORD)
	git diff --cached --quiet || git commit -qm "ct: dvc repro ($$(date -u +%Y-%m-%d))"
	@if grep -q '"decision": "pass"' metrics/gate.json; then $(BIN)/spira promote; \
	else echo "gate refused the challenger: see reports/gate.md; prod unchanged"; fi
	@if [ -n "$$($(BIN)/dvc remote list)" ]; then $(BIN)/dvc push; else echo "no DVC remote configured: nothing pushed"; fi

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) logs
