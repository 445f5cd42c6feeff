# The README's two commands: `make run` and `make test`. Both set themselves up on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/trellis run

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Two workers share the tests (each with its own Redis database and PostgreSQL database); the
# benchmarks then run alone, as measurements must.
test: lint
	$(BIN)/pytest -n 2 --dist loadgroup -m "not benchmark"
	$(BIN)/pytest -m benchmark

bench-quick: $(VENV)/.installed-test
	$(BIN)/python bench/receiver.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache trellis.db*
