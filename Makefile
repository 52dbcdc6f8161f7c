# Every target sets up .venv on first use (and again when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.installed
ARGS ?=

.PHONY: run test bench lint format golden

$(READY): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --editable '.[test]'
	touch $(READY)

## run: every component as a local process on the embedded default (ARGS="--duration 20")
run: $(READY)
	$(BIN)/tradingsystem run $(ARGS)

## test: the whole test suite
test: $(READY)
	$(BIN)/python -m pytest

## bench: throughput and latency against the targets (not tests: nothing is asserted)
bench: $(READY)
	$(BIN)/python -m pip install --quiet --editable '.[test,bench]'  # backtesting.py, to compare
	$(BIN)/python -m benchmarks

lint: $(READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(READY)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## golden: rewrite the operator's golden manifests (tests/operator/golden) and the CRD; review the diff
golden: $(READY)
	UPDATE_GOLDEN=1 $(BIN)/python -m pytest -q tests/operator/test_golden.py
	$(BIN)/tradingsystem crd > crds/tradingsystem.yaml
