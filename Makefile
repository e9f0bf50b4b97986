# `make repro` and `make test` work on a fresh clone: they create .venv when
# missing, install the locked dependencies (requirements.lock) and the project,
# then run the pipeline or the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
export PATH := $(abspath $(BIN)):$(PATH)
# Nothing leaves the machine unless the user opts in.
export WANDB_MODE ?= offline

.PHONY: install lock params repro exp-show ct promote verify test test-fast clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Exactly the locked set, then the project from the working tree without
# resolving anything; `pip check` fails when pyproject.toml asks for a package
# the lock lacks (run `make lock`).
$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

# Refresh the lock after changing dependencies in pyproject.toml: pip resolves
# the project and its dev extra (nothing is installed) and every package it
# would install is pinned in requirements.lock.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --dry-run --ignore-installed --report $(VENV)/lock-report.json '.[dev]'
	$(BIN)/python scripts/write_lock.py $(VENV)/lock-report.json $(LOCK)

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

# Rewrite the run figures quoted in README.md and docs/ (the generated blocks) from
# metrics/, eval/, reports/machine.json and benchmarks/results/; `make docs` leaves git
# clean when they are current. `python scripts/make_docs.py --check` only compares.
.PHONY: docs
docs: install
	$(BIN)/python scripts/make_docs.py

# The continuous-training loop (docs/continuous-training.md): compose params,
# re-run what changed (the gate judges the new model against prod), commit the
# run's record, promote when the gate passed, push data and models to the DVC remote.
CT_RECORD := params.yaml dvc.lock metrics reports eval
ct: params
	$(BIN)/dvc repro
	$(MAKE) --no-print-directory promote
	@if [ -n "$$($(BIN)/dvc remote list)" ]; then $(BIN)/dvc push; else echo "no DVC remote configured: nothing pushed"; fi

# After `make repro`: commit the run's record when it differs from HEAD's (promotion
# trusts only what is committed), then register the model and assign it `prod` when
# the gate passed. `spira serve --model prod` serves it.
promote: install
	git add $(CT_RECORD)
	git diff --cached --quiet || git commit -qm "ct: dvc repro ($$(date -u +%Y-%m-%d))"
	@if grep -q '"decision": "pass"' metrics/gate.json; then $(BIN)/spira promote; \
	else echo "gate refused the challenger: see reports/gate.md; prod unchanged"; fi

# Rerun the committed pipeline from scratch in a scratch clone and compare every
# metric with the committed one: identical on the machine that made them, within
# a tolerance elsewhere (docs/reliability.md).
verify: install
	$(BIN)/spira verify

# Two test processes (pytest-xdist): much of an end-to-end test's time is DVC and
# Python start-up, which the second core overlaps. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest --numprocesses $(TEST_WORKERS) --dist worksteal

# Unit and component tests: everything but the tests marked `slow` (those that run
# the pipeline or train a model; tests/tier_guard.py keeps the marking honest).
test-fast: install
	$(BIN)/python -m pytest --numprocesses $(TEST_WORKERS) --dist worksteal -m "not slow"

clean:
	rm -rf $(VENV) logs
