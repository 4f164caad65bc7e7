# winmodel — every target documents itself: `make` or `make help` lists them.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
WINMODEL := $(BIN)/winmodel
TRAIN_CONFIG ?= pipelines/train.yaml
SCORE_CONFIG ?= pipelines/score.yaml
DEMO_DIR ?= data/demo
SCORED ?= outputs/scored.csv
MLFLOW_PORT ?= 5000
# The suite measured 94 % line coverage of src/winmodel when this floor was set.
COVERAGE_FLOOR ?= 90

# MLflow 3.x makes one outbound telemetry lookup; everything here runs offline.
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export MPLBACKEND := Agg
export OMP_WAIT_POLICY := PASSIVE

.PHONY: help setup train score profile forecast validate audit demo test lint format bench bench-quality ui clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	@touch $@

setup: $(VENV)/.installed ## create .venv and install winmodel with its dev tools (idempotent)

demo: setup ## generate the demo CRM history into data/demo (if missing)
	@test -f $(DEMO_DIR)/opportunities.parquet || $(WINMODEL) generate --out $(DEMO_DIR)

validate: setup ## validate the training data named in the train config
	$(WINMODEL) validate --config $(TRAIN_CONFIG)

train: setup ## train, backtest, calibrate, log to MLflow, register; generates demo data if none is configured
	$(WINMODEL) train --config $(TRAIN_CONFIG)

score: setup ## score the open deals with winmodel@champion into outputs/scored.csv
	$(WINMODEL) score --config $(SCORE_CONFIG) --output $(SCORED)

profile: demo ## where we win: win rates by dimension and the strongest win/loss scenarios
	$(WINMODEL) profile --data $(DEMO_DIR) --out outputs/profile

forecast: setup ## expected bookings with P10/P50/P90 from the scored file
	$(WINMODEL) forecast --input $(SCORED) --out outputs/forecast.csv

audit: setup ## leakage and data-sufficiency report of the configured training data
	$(WINMODEL) audit --config $(TRAIN_CONFIG)

test: lint ## lint, then the whole test suite (notebooks included) with coverage; fails if no test ran
	$(BIN)/pytest --cov --cov-report=term --cov-fail-under=$(COVERAGE_FLOOR) --durations=30

lint: setup ## ruff (lint and format check), the import contract (docs/architecture.md), mypy --strict
	$(BIN)/ruff check src tests benchmarks notebooks
	$(BIN)/ruff format --check src tests benchmarks notebooks
	$(BIN)/lint-imports
	$(BIN)/mypy

format: setup ## apply ruff's formatting and fixable lint fixes
	$(BIN)/ruff format src tests benchmarks notebooks
	$(BIN)/ruff check --fix src tests benchmarks notebooks

bench: setup ## measure training and scoring speed against the reference path; writes benchmarks/results.md
	$(BIN)/python benchmarks/run.py --out benchmarks/results.md

bench-quality: setup ## winmodel vs HistGB / LightGBM / logistic peers on 16 unseen worlds (+ Maven); writes benchmarks/quality.md (~30-45 min)
	$(BIN)/python benchmarks/quality.py --out benchmarks/quality.md

ui: setup ## open the MLflow UI on the embedded store (http://127.0.0.1:5000 by default)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --port $(MLFLOW_PORT) --host 127.0.0.1

clean: ## remove generated data and outputs (keeps the MLflow store and the venv)
	rm -rf data outputs .pytest_cache .ruff_cache
