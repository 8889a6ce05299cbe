# One entry point for people and CI. Every target creates the virtualenv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-stamp
TEST_STAMP := $(VENV)/.test-stamp
EXTRAS ?= test,dev,ble,sim,loadtest

.PHONY: run test lint typecheck importcheck bench venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# What running needs: the project and its own dependencies, nothing else.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $(RUN_STAMP)

# What testing needs besides: test tools, linters, the optional radio, simulator and load tools.
$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(RUN_STAMP) $(TEST_STAMP)

venv: $(TEST_STAMP)

## run: every service in one process on http://127.0.0.1:8080 (embedded stores under ./data)
run: $(RUN_STAMP)
	$(BIN)/robert dev $(ARGS)

## test: lint, import rules, strict type checks, then the whole test suite
test: $(TEST_STAMP) lint importcheck typecheck
	$(BIN)/python -m pytest -q

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

importcheck: $(TEST_STAMP)
	$(BIN)/lint-imports

typecheck: $(TEST_STAMP)
	$(BIN)/mypy --strict protocol kit server codes phone cli beds drugs citizens sidep sivic contact ble samu client_sim loadtest

## bench: protocol micro-benchmarks (one core)
bench: $(TEST_STAMP)
	$(BIN)/python -m loadtest.bench_protocol

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
