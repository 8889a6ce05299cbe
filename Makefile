# One entry point for people and CI. Every target creates the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= test,dev,ble,sim,loadtest

.PHONY: run test lint typecheck bench sim venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

## run: the ROBERT server on 127.0.0.1:8080 with the embedded store (keys made on first use)
run: $(STAMP)
	$(BIN)/robert serve

## test: lint, strict type check of protocol/, then the whole test suite
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy protocol

## bench: protocol micro-benchmarks (one core)
bench: $(STAMP)
	$(BIN)/python -m loadtest.bench_protocol

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
